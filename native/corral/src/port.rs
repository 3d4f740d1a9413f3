//! Port mode: one helper per child for the BEAM, speaking the protocol of
//! `docs/protocol.md` on stdin and stdout (`docs/helper.md`).

use crate::args::{Args, Stdio};
use crate::error::Error;
use crate::exit_code;
use crate::pooled;
use crate::run::{self, Mode, Ran, Ready};
use crate::session::Outcome;
use corral_proto::{Up, VERSION};
use std::ffi::OsString;

/// The BEAM's side of [`Mode`]: pipes it serves, its environment, a
/// process group of the child's own, and `S` before exec.
pub struct Port;

impl Mode for Port {
    fn default_stdio(&self) -> [Stdio; 3] {
        [Stdio::Null, Stdio::Pipe, Stdio::Inherit]
    }

    /// The BEAM's children inherit its environment, as with `System.cmd`.
    fn environment(&self, _args: &Args) -> (bool, Vec<OsString>) {
        (false, Vec::new())
    }

    fn control(&self) -> bool {
        true
    }

    fn own_group(&self) -> bool {
        true
    }

    /// The child sends `S` itself, before exec (`Spec::announce`).
    fn announce(&self, containment: u8, paths: Vec<String>) -> Option<Vec<u8>> {
        Some(
            Up::Started {
                version: VERSION,
                os_pid: 0,
                containment,
                paths,
            }
            .encode(),
        )
    }

    /// The BEAM learns the level from `S` and the exit report.
    fn warn(&self, _text: &str) {}

    /// `Corral.cmd("true", [])` leaves the lookup to the helper, which has
    /// the VM's `PATH` (`Corral.Helper.program/1`).
    fn beam_lookup(&self) -> bool {
        true
    }
}

/// Serves the BEAM: one run, or for a pooled helper one run after
/// another. Returns the helper's exit status.
pub fn main(args: Args) -> i32 {
    if args.protocol != Some(VERSION) {
        eprintln!(
            "corral: this helper speaks protocol {VERSION}; the BEAM asked for {:?}",
            args.protocol
        );
        return exit_code::USAGE;
    }
    crate::sys::relay_quietly();
    let mut ready = match Ready::new(&args, &Port) {
        Ok(ready) => ready,
        Err(e) => {
            eprintln!("corral: {e}");
            return exit_code::INTERNAL;
        }
    };
    if !args.pooled {
        return serve(&args, &mut ready).0;
    }
    // A pooled helper serves one run after another, each from an R frame,
    // until the BEAM closes the port instead of sending the next.
    let mut waiter = pooled::Waiter::new(&args);
    loop {
        let Some(command) = waiter.next_command(ready.base()) else {
            return 0;
        };
        let (code, again) = serve(&command, &mut ready);
        if !again {
            return code;
        }
    }
}

/// One run. Returns the helper's exit status, and whether the helper may
/// serve another run (pooled, and this one ended with an `X` or `F` frame).
fn serve(args: &Args, ready: &mut Ready) -> (i32, bool) {
    match run::run(args, &Port, ready) {
        Ran::Ended(Outcome::Finished(report) | Outcome::Orphaned(report), again) => {
            (report.status.code(), again)
        }
        Ran::Ended(Outcome::ProtocolError(e), _) => {
            eprintln!("corral: protocol error: {e}");
            (exit_code::PROTOCOL, false)
        }
        Ran::Failed(e) => (failed(ready, &e), ready.pooled()),
        Ran::Broken => (exit_code::INTERNAL, false),
    }
}

/// Tells the BEAM that the child never ran (`F`). A pooled helper then
/// goes back to waiting (the BEAM closes the port or sends `R`); any other
/// waits for the port to close.
fn failed(ready: &mut Ready, e: &Error) -> i32 {
    let pooled = ready.pooled();
    let base = ready.base();
    base.sink().send_up(&Up::Failed {
        version: VERSION,
        fields: e.fields(),
    });
    if !pooled {
        base.await_close();
    }
    e.exit_code()
}
