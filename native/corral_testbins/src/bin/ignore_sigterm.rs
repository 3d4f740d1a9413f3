//! Ignores SIGTERM, prints `ready`, then waits forever: only SIGKILL ends it.

use nix::sys::signal::{signal, SigHandler, Signal};

fn main() {
    // SAFETY: SIG_IGN installs no handler, so no code runs on delivery.
    unsafe { signal(Signal::SIGTERM, SigHandler::SigIgn) }.expect("ignore SIGTERM");
    corral_testbins::ready(&[]);
    corral_testbins::pause_forever()
}
