//! A helper started before its command is known, which then serves one
//! run after another: the BEAM keeps a few waiting so a spawn pays for
//! neither the helper's own `execve` nor its setup.
//!
//! Such a helper (`--port --protocol N --pooled`) sends nothing and does
//! nothing until an `R` frame brings the rest of its command line. After
//! the run's `X` (or `F`) frame it waits for the next `R`; if the port
//! closes instead it exits quietly.

use crate::args::Args;
use crate::channel::Base;
use crate::exit_code;
use clap::{CommandFactory, FromArgMatches};
use corral_proto::Down;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// Waits between runs and turns each `R` frame into the run's command
/// line. The argument parser is built once, for every run the helper
/// serves.
pub struct Waiter {
    protocol: String,
    parser: clap::Command,
    served: u64,
}

impl Waiter {
    /// For a helper started with `pooled` (its own command line).
    pub fn new(pooled: &Args) -> Waiter {
        Waiter {
            protocol: pooled.protocol.unwrap_or_default().to_string(),
            parser: Args::command(),
            served: 0,
        }
    }

    /// Waits for the next `R` frame and returns the whole command line it
    /// completes, or `None` when the port closed (or a signal asked the
    /// helper to go) first.
    ///
    /// Frames before `R` are the last run's: acks and input its caller sent
    /// after the child had gone. They are dropped. Before the first run
    /// there are none, and anything but `R` breaks the protocol. Frames
    /// after `R` stay buffered in `base` for the run.
    pub fn next_command(&mut self, base: &mut Base) -> Option<Args> {
        let rest = loop {
            match base.next_frame() {
                Ok(None) => return None,
                Ok(Some(Down::Run(rest))) => break rest,
                Ok(Some(_)) if self.served > 0 => {}
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
        self.served += 1;
        let argv = ["corral", "--port", "--protocol", &self.protocol]
            .into_iter()
            .map(OsString::from)
            .chain(rest.into_iter().map(OsString::from_vec));
        match self
            .parser
            .try_get_matches_from_mut(argv)
            .and_then(|m| Args::from_arg_matches(&m))
        {
            Ok(args) => Some(args),
            Err(e) => {
                let _ = e.print();
                std::process::exit(exit_code::USAGE_ERROR);
            }
        }
    }
}
