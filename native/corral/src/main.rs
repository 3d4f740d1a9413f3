//! `corral`: runs a program with its whole process tree contained.
//!
//! Port mode (`--port`) serves one child for the BEAM over the protocol in
//! `docs/protocol.md`; without it, the same core runs a child for a person
//! at a terminal.

mod args;
mod channel;
mod cli;
mod contain;
mod error;
mod exit_code;
#[cfg(target_os = "linux")]
mod forks;
mod limits;
mod person;
mod phase;
mod pooled;
mod port;
mod pty;
mod report;
mod run;
mod session;
mod spawn;
mod stdio;
mod sys;
mod tree;
mod values;

use clap::Parser;

fn main() {
    let args = match args::Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            // --help and --version are not errors; usage errors exit 125,
            // as env(1) and timeout(1) do, apart from the command's codes.
            let code = if e.use_stderr() {
                exit_code::USAGE_ERROR
            } else {
                0
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    // The one place the mode is picked: everything that differs between
    // the BEAM's helper and a person's launcher lives behind it.
    std::process::exit(if args.port {
        port::main(args)
    } else {
        person::main(args)
    });
}
