//! Ending the tree: the tree as [`teardown::Members`] of the one
//! freeze-then-kill routine (`corral_cgroup::teardown`), and the
//! processes no teardown may touch.

use super::Tree;
use crate::sys::stat_of;
use corral_cgroup::teardown;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::HashSet;

/// How long [`Tree::kill_all`] keeps sending SIGKILL rounds before it
/// gives up on members that outlast every signal (uninterruptible sleep).
const KILL_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

impl Tree {
    /// The polite half of ending the tree: stop everyone, send `first`
    /// (`--kill-signal`, SIGTERM by default) to everyone, then SIGCONT and
    /// thaw so stopped processes can act on it (one round of
    /// [`teardown::signal_stopped`]).
    pub fn terminate(&mut self, first: Signal) {
        let _ = teardown::signal_stopped(self, first);
    }

    /// SIGKILL every member: rounds of stop, SIGKILL (with `cgroup.kill`
    /// and `killpg(2)` too) and let go, until a scan finds nobody
    /// ([`teardown::kill`]). Zombies are left for the caller to reap.
    pub fn kill_all(&mut self) {
        if let Ok(left) = teardown::kill(self, KILL_PATIENCE) {
            self.armed = !left.is_empty();
        }
    }

    /// Signals the child's process group with one `killpg(2)`. The kernel
    /// delivers it to every member under one lock, and a fork racing with
    /// it fails (`copy_process` checks for a pending group signal), so a
    /// fork bomb that stays in its group cannot outrun it, as it can
    /// outrun a `/proc` scan. Only while the group is provably ours: its
    /// leader, our own child, is still there (alive or not yet reaped), so
    /// the id cannot have been reused.
    /// Returns whether the group was signalled.
    fn signal_group(&self, sig: Signal) -> bool {
        let Some(g) = self.pgrp else {
            return false;
        };
        let ours = stat_of(g).is_some_and(|p| p.pgrp == g && p.ppid == self.root);
        ours && may_signal(g)
            && g != nix::unistd::getpgrp().as_raw()
            && nix::sys::signal::killpg(Pid::from_raw(g), sig).is_ok()
    }
}

/// The tree as [`teardown::Members`]: its cgroup, its process group and
/// every member a scan finds.
impl teardown::Members for Tree {
    /// The process group, stopped and then signalled with two `killpg(2)`s
    /// (a fork with a stop pending fails, and the group's signal reaches a
    /// child forked under it), before any scan: the child and whatever
    /// stayed in its group get `sig` first, a default-action SIGTERM ends
    /// them at once, stopped or not. [`Tree::signal`] then sends it to
    /// every member found, these included: a second copy of a signal still
    /// pending while they are stopped is merged with the first.
    ///
    /// Only with a cgroup, whose `cgroup.procs` lists every member however
    /// its parents died. Without one, members that left the group are
    /// found by walking parent links, and a group member dying meanwhile
    /// moves its children to the subreaper under the walk, which can miss
    /// them (a setsid grandchild then waited out the grace in 1 of 100
    /// runs of `bench/teardown.exs`): there the group is signalled after
    /// the scan, in [`Tree::signal`], with everyone still in place.
    fn signal_held(&mut self, sig: Signal) {
        self.held =
            self.group.is_some() && self.signal_group(Signal::SIGSTOP) && self.signal_group(sig);
    }

    /// Freezes the cgroup and SIGSTOPs the process group and every member
    /// outside the frozen cgroup, rescanning until no new member appears,
    /// so nothing can fork behind the signal. Returns the pids stopped.
    ///
    /// A member held before the scan began cannot have forked since: one
    /// in the cgroup once it is frozen, or one in the process group that
    /// `killpg(2)` stopped. Only a member held by neither, stopped on its
    /// own after the scan found it, may have forked in between, so only
    /// such a member costs another scan.
    fn stop(&mut self) -> corral_cgroup::Result<Vec<i32>> {
        let frozen = self.group.as_ref().is_some_and(|g| g.freeze().is_ok());
        let group_stopped = self.held || self.signal_group(Signal::SIGSTOP);
        let mut stopped = HashSet::new();
        for _ in 0..100 {
            let (members, in_cgroup) = self.live_members();
            let mut rescan = false;
            for p in members {
                if stopped.contains(&p.pid) || !may_signal(p.pid) {
                    continue;
                }
                let held_by_freeze = frozen && in_cgroup.contains(&p.pid);
                let held_by_group = group_stopped && Some(p.pgrp) == self.pgrp;
                if !held_by_freeze {
                    signal(p.pid, Signal::SIGSTOP);
                }
                rescan |= !(held_by_freeze || held_by_group);
                stopped.insert(p.pid);
            }
            if !rescan {
                break;
            }
        }
        Ok(stopped.into_iter().collect())
    }

    /// The cgroup's own kill first (`cgroup.kill`), then the process group
    /// unless [`Tree::signal_held`] did, then every member found.
    fn signal(&mut self, found: &[i32], sig: Signal) -> corral_cgroup::Result<()> {
        if let Some(g) = self.group.as_ref().filter(|_| sig == Signal::SIGKILL) {
            let _ = g.kill_at_once();
        }
        if !self.held {
            self.signal_group(sig);
        }
        for &pid in found {
            signal(pid, sig);
        }
        Ok(())
    }

    fn resume(&mut self, found: &[i32]) -> corral_cgroup::Result<()> {
        self.held = false;
        self.signal_group(Signal::SIGCONT);
        for &pid in found {
            signal(pid, Signal::SIGCONT);
        }
        if let Some(g) = &self.group {
            let _ = g.thaw();
        }
        Ok(())
    }

    /// The next round's scan tells; let the dying run first.
    fn settle(&mut self, _: std::time::Duration) -> bool {
        std::thread::yield_now();
        false
    }
}

/// The processes no teardown may touch, whatever a scan or a cgroup says:
/// PID 1, the helper itself and every ancestor of it (the VM that started
/// it, and what started the VM). Read once; ancestors do not change while
/// they live, and a helper whose parent died was re-parented to one of
/// them or to PID 1.
fn protected() -> &'static HashSet<i32> {
    static PROTECTED: std::sync::OnceLock<HashSet<i32>> = std::sync::OnceLock::new();
    PROTECTED.get_or_init(|| {
        let mut set = HashSet::from([1, std::process::id() as i32]);
        let mut pid = nix::unistd::getppid().as_raw();
        while pid > 1 && set.insert(pid) {
            pid = stat_of(pid).map_or(0, |st| st.ppid);
        }
        set
    })
}

/// Reads [`protected`] now, at the helper's start, so a teardown does not
/// spend its first milliseconds walking the ancestors.
pub fn remember_ancestors() {
    protected();
}

/// Whether teardown may signal `pid`: a real process id (not 0 or
/// negative, which `kill(2)` reads as process groups or everyone) outside
/// [`protected`].
pub fn may_signal(pid: i32) -> bool {
    pid > 1 && !protected().contains(&pid)
}

/// Sends `sig`; a member that is already gone (`ESRCH`) or any other
/// refusal is left to the next scan. The one place teardown signals, so
/// the one place [`may_signal`] is checked.
fn signal(pid: i32, sig: Signal) {
    if may_signal(pid) {
        let _ = kill(Pid::from_raw(pid), sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teardown_never_signals_init_the_helper_or_its_ancestors() {
        let me = std::process::id() as i32;
        let parent = nix::unistd::getppid().as_raw();
        for pid in [-1, 0, 1, me, parent] {
            assert!(!may_signal(pid), "{pid} may be signalled");
        }
        let mut pid = parent;
        while let Some(st) = stat_of(pid).filter(|_| pid > 1) {
            assert!(!may_signal(pid), "ancestor {pid} may be signalled");
            pid = st.ppid;
        }
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as i32;
        assert!(may_signal(pid), "a child of ours must be signallable");
        signal(pid, Signal::SIGKILL);
        child.wait().expect("reaped");
    }
}
