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
mod phase;
mod pooled;
mod pty;
mod report;
mod run;
mod session;
mod spawn;
mod stdio;
mod sys;
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
    let mut ready = match run::Ready::new(&args) {
        Ok(ready) => ready,
        Err(e) => {
            eprintln!("corral: {e}");
            std::process::exit(exit_code::INTERNAL);
        }
    };
    if !args.pooled {
        std::process::exit(run::run(args, &mut ready).0);
    }
    // A pooled helper serves one run after another, each from an R frame,
    // until the BEAM closes the port instead of sending the next.
    let mut waiter = pooled::Waiter::new(&args);
    loop {
        let Some(command) = waiter.next_command(ready.base()) else {
            std::process::exit(0);
        };
        let (code, again) = run::run(command, &mut ready);
        if !again {
            std::process::exit(code);
        }
    }
}
