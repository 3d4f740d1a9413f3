//! Ending a set of processes that may fork while it is being ended: the
//! one freeze-then-kill routine, for a cgroup ([`crate::Group::kill`]) and
//! for the helper's whole tree (`corral`'s `tree/kill.rs`, which adds the
//! process group and the processes the subreaper adopted).
//!
//! A round stops every member before any is signalled, so nothing forks
//! or exits (and has its pid reused) behind the signal: freeze the cgroup,
//! or `SIGSTOP` the members found, rescanning until no new one appears.
//! Then every member found gets the signal, and the set is let go (thawed,
//! `SIGCONT`) so the signal is delivered: a frozen v1 task cannot die.
//! A set that one call stops and signals at once (a process group) may be
//! signalled first, before the scan ([`Members::signal_held`]).
//! [`signal_stopped`] is one round, the polite `SIGTERM` of a teardown;
//! [`kill`] repeats rounds of `SIGKILL` until nobody is left.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::error::Result;

/// The processes one teardown acts on, and how to stop and signal them.
pub trait Members {
    /// Before a round's scan: stops, then sends `sig` to, the members that
    /// one call reaches at once and that nothing can fork away from
    /// behind it (a process group, `killpg(2)`), so a tree that is one
    /// process group has its signal before any scan. [`Members::stop`]
    /// still finds them, and [`Members::signal`] may send them the signal
    /// again: a copy sent while the first is still pending is merged with
    /// it. By default, none.
    fn signal_held(&mut self, sig: Signal) {
        let _ = sig;
    }

    /// Stops every member so that none can fork or exit behind the signal
    /// that follows (freezes a cgroup, sends `SIGSTOP`), and returns the
    /// live members it found; none when nobody is left.
    ///
    /// # Errors
    /// The set's files cannot be read.
    fn stop(&mut self) -> Result<Vec<i32>>;

    /// Sends `sig` to `found`, and to whatever reaches the whole set at
    /// once (`cgroup.kill`, `killpg(2)`). A member already gone is fine.
    ///
    /// # Errors
    /// A file that reaches the set at once cannot be written.
    fn signal(&mut self, found: &[i32], sig: Signal) -> Result<()>;

    /// Undoes [`Members::stop`] (thaws, sends `SIGCONT`), so that the
    /// signal is delivered.
    ///
    /// # Errors
    /// The freezer cannot be written.
    fn resume(&mut self, found: &[i32]) -> Result<()>;

    /// After a round of `SIGKILL`, gives the members up to `up_to` to die.
    /// Returns true when the set is known to be empty; false sends the
    /// next round, which looks again.
    fn settle(&mut self, up_to: Duration) -> bool;
}

/// One round: stop every member, send `sig` to every member found, let
/// them go. Returns the members found. The set is let go even when the
/// signal could not be sent.
///
/// # Errors
/// Those of [`Members`]; the first one met.
pub fn signal_stopped<M: Members + ?Sized>(m: &mut M, sig: Signal) -> Result<Vec<i32>> {
    m.signal_held(sig);
    let found = m.stop()?;
    let sent = if found.is_empty() {
        Ok(())
    } else {
        m.signal(&found, sig)
    };
    let resumed = m.resume(&found);
    sent.and(resumed).map(|()| found)
}

/// Rounds of `SIGKILL` ([`signal_stopped`]) until a round finds nobody or
/// [`Members::settle`] says the set is empty. After `patience`, gives up
/// and returns the members the last round found (a process in
/// uninterruptible sleep can outlast any signal); empty when all are gone.
///
/// # Errors
/// Those of [`Members`]; the first one met ends the teardown.
pub fn kill<M: Members + ?Sized>(m: &mut M, patience: Duration) -> Result<Vec<i32>> {
    let deadline = Instant::now() + patience;
    loop {
        let found = signal_stopped(m, Signal::SIGKILL)?;
        if found.is_empty() {
            return Ok(found);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if m.settle(left) {
            return Ok(Vec::new());
        }
        if left.is_zero() {
            return Ok(found);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A set whose members die after `lives` rounds of SIGKILL, recording
    /// the order of the calls.
    #[derive(Default)]
    struct Script {
        lives: usize,
        calls: Vec<String>,
    }

    impl Members for Script {
        fn signal_held(&mut self, sig: Signal) {
            self.calls.push(format!("held {sig}"));
        }
        fn stop(&mut self) -> Result<Vec<i32>> {
            self.calls.push("stop".into());
            Ok(if self.lives > 0 { vec![7] } else { Vec::new() })
        }
        fn signal(&mut self, found: &[i32], sig: Signal) -> Result<()> {
            self.calls.push(format!("{sig} {found:?}"));
            if sig == Signal::SIGKILL {
                self.lives = self.lives.saturating_sub(1);
            }
            Ok(())
        }
        fn resume(&mut self, _: &[i32]) -> Result<()> {
            self.calls.push("resume".into());
            Ok(())
        }
        fn settle(&mut self, _: Duration) -> bool {
            self.calls.push("settle".into());
            false
        }
    }

    #[test]
    fn every_signal_comes_between_a_stop_and_a_resume() {
        let mut s = Script {
            lives: 2,
            ..Script::default()
        };
        assert_eq!(signal_stopped(&mut s, Signal::SIGTERM).unwrap(), [7]);
        assert_eq!(kill(&mut s, Duration::from_secs(10)).unwrap(), []);
        assert_eq!(
            s.calls,
            [
                "held SIGTERM",
                "stop",
                "SIGTERM [7]",
                "resume", // the polite round
                "held SIGKILL",
                "stop",
                "SIGKILL [7]",
                "resume",
                "settle", //
                "held SIGKILL",
                "stop",
                "SIGKILL [7]",
                "resume",
                "settle", //
                "held SIGKILL",
                "stop",
                "resume", // nobody left: nothing is signalled
            ]
        );
    }

    #[test]
    fn kill_gives_up_after_its_patience_with_who_is_left() {
        let mut s = Script {
            lives: usize::MAX,
            ..Script::default()
        };
        assert_eq!(kill(&mut s, Duration::ZERO).unwrap(), [7]);
        assert_eq!(
            s.calls,
            ["held SIGKILL", "stop", "SIGKILL [7]", "resume", "settle"]
        );
    }
}
