//! A helper started before its command is known, which then serves one
//! run after another: the BEAM keeps a few waiting so a spawn pays for
//! neither the helper's own `execve` nor its setup.
//!
//! Such a helper (`--port --protocol N --pooled`) sends nothing and does
//! nothing until an `R` frame brings the rest of its command line. After
//! the run's `X` (or `F`) frame it waits for the next `R`; if the port
//! closes instead it exits quietly.

use crate::args::Args;
use crate::exit_code;
use crate::session::Base;
use clap::Parser;
use corral_proto::Down;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// Waits for the next `R` frame and returns the whole command line it
/// completes, or `None` when the port closed (or a signal asked the
/// helper to go) first. `served` is how many runs came before.
///
/// Frames before `R` are the last run's: acks and input its caller sent
/// after the child had gone. They are dropped. Before the first run there
/// are none, and anything but `R` breaks the protocol. Frames after `R`
/// stay buffered in `base` for the run.
pub fn await_command(pooled: &Args, base: &mut Base, served: u64) -> Option<Args> {
    let rest = loop {
        match base.next_frame() {
            Ok(None) => return None,
            Ok(Some(Down::Run(rest))) => break rest,
            Ok(Some(_)) if served > 0 => {}
            Ok(Some(_)) => {
                eprintln!("corral: a pooled helper must get R first");
                std::process::exit(exit_code::PROTOCOL);
            }
            Err(e) => {
                eprintln!("corral: a pooled helper got a bad frame: {e}");
                std::process::exit(exit_code::PROTOCOL);
            }
        }
    };
    let protocol = pooled.protocol.unwrap_or_default().to_string();
    let argv = ["corral", "--port", "--protocol", &protocol]
        .into_iter()
        .map(OsString::from)
        .chain(rest.into_iter().map(OsString::from_vec));
    match Args::try_parse_from(argv) {
        Ok(args) => Some(args),
        Err(e) => {
            let _ = e.print();
            std::process::exit(exit_code::USAGE_ERROR);
        }
    }
}
