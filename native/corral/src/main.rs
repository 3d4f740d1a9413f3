//! `corral`: runs a program with its whole process tree contained.
//!
//! Port mode (`--port`) serves one child for the BEAM over the protocol in
//! `docs/protocol.md`; without it, the same core runs a child for a person
//! at a terminal.

mod args;
mod contain;
mod exit_code;
mod limits;
mod report;
mod run;
mod session;
mod spawn;
mod stdio;
mod tree;

use clap::Parser;

fn main() {
    let args = args::Args::parse();
    std::process::exit(run::run(args));
}
