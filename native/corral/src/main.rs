//! `corral`: runs a program with its whole process tree contained.
//!
//! Port mode (`--port`) serves one child for the BEAM over the protocol in
//! `docs/protocol.md`; without it, the same core runs a child for a person
//! at a terminal.

mod args;
mod cli;
mod contain;
mod exit_code;
mod limits;
mod pooled;
mod report;
mod run;
mod session;
mod spawn;
mod stdio;
mod tree;

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
    // A pooled helper does what needs no command line before its R frame
    // arrives, while nobody is waiting for it.
    let ready = run::Ready::new(args.pooled);
    let args = if args.pooled {
        match pooled::await_command(&args) {
            Some(args) => args,
            None => std::process::exit(0),
        }
    } else {
        args
    };
    std::process::exit(run::run(args, ready));
}
