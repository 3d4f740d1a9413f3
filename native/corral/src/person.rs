//! Person mode: `corral [OPTIONS] -- COMMAND` at a terminal or in a
//! pipeline, in the spirit of playpen and `systemd-run --wait`.

use crate::args::{Args, Stdio};
use crate::cli;
use crate::exit_code;
use crate::report::Report;
use crate::run::{self, Mode, Ran, Ready};
use crate::session::Outcome;
use corral_proto::Reason;
use std::ffi::OsString;
use std::io::IsTerminal;

/// A person's side of [`Mode`]: the command shares corral's terminal and
/// process group, gets playpen's small environment, and corral speaks only
/// on stderr.
pub struct Person {
    quiet: bool,
}

impl Mode for Person {
    fn default_stdio(&self) -> [Stdio; 3] {
        [Stdio::Inherit; 3]
    }

    /// Playpen's rules: only a small base environment (and PATH) unless
    /// `--capture-env`.
    fn environment(&self, args: &Args) -> (bool, Vec<OsString>) {
        // --clear-env: nothing but what --env sets, not even the base set.
        if args.clear_env {
            return (true, Vec::new());
        }
        match cli::env_allowlist(
            args.capture_env.unwrap_or(false),
            args.capture_path.unwrap_or(true),
        ) {
            Some(keep) => (true, cli::captured(&keep)),
            None => (false, Vec::new()),
        }
    }

    fn control(&self) -> bool {
        false
    }

    fn own_group(&self) -> bool {
        false
    }

    fn announce(&self, _containment: u8, _paths: Vec<String>) -> Option<Vec<u8>> {
        None
    }

    fn warn(&self, text: &str) {
        if !self.quiet {
            eprintln!("corral: {text}");
        }
    }
}

/// Runs the command for a person. Returns corral's exit status.
pub fn main(args: Args) -> i32 {
    if let Some(option) = protocol_on_a_terminal(&args) {
        eprintln!(
            "corral: {option} pipe writes the Corral protocol (binary, for the BEAM), \
             and stdout is a terminal; use {option} inherit (the default) or null, \
             or redirect stdout"
        );
        return exit_code::USAGE_ERROR;
    }
    let person = Person { quiet: args.quiet };
    let mut ready = match Ready::new(&args, &person) {
        Ok(ready) => ready,
        Err(e) => {
            eprintln!("corral: {e}");
            return exit_code::INTERNAL;
        }
    };
    match run::run(&args, &person, &mut ready) {
        Ran::Ended(Outcome::Finished(report) | Outcome::Orphaned(report), _) => {
            tell(&args, &report);
            exit_status(&report)
        }
        Ran::Ended(Outcome::ProtocolError(e), _) => {
            eprintln!("corral: protocol error: {e}");
            exit_code::PROTOCOL
        }
        Ran::Failed(e) => {
            eprintln!("corral: {e}");
            e.exit_code()
        }
        Ran::Broken => exit_code::INTERNAL,
    }
}

/// The `--stdout`/`--stderr` option that would write protocol bytes to a
/// terminal (`pipe` sends the command's output as the BEAM reads it, in
/// `O`/`E` frames on corral's stdout; `docs/helper.md`).
fn protocol_on_a_terminal(args: &Args) -> Option<&'static str> {
    let framed = [("--stdout", args.stdout), ("--stderr", args.stderr)]
        .into_iter()
        .find(|(_, mode)| *mode == Some(Stdio::Pipe))?;
    std::io::stdout().is_terminal().then_some(framed.0)
}

/// corral's exit status: the command's, or 124 when the wall-time limit
/// ended it, as `timeout(1)` gives (the JSON report keeps the command's
/// own status, 143 or 137, in `exit_status`).
fn exit_status(report: &Report) -> i32 {
    match report.reason {
        Reason::Timeout => exit_code::TIMEOUT,
        _ => report.status.code(),
    }
}

/// The summary or JSON report on stderr (or in `--report FILE`). Nothing
/// of corral's own ever goes to stdout, which belongs to the command.
fn tell(args: &Args, report: &Report) {
    if args.json || args.report.is_some() {
        let json = cli::json(report);
        match &args.report {
            Some(path) => {
                if let Err(e) = std::fs::write(path, json + "\n") {
                    eprintln!("corral: writing {}: {e}", path.display());
                }
            }
            None => eprintln!("{json}"),
        }
    }
    if !args.quiet && !args.json {
        eprint!("{}", cli::summary(report));
    }
}
