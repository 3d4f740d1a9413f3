//! Ending the tree: the tree as [`teardown::Members`] of the one
//! freeze-then-kill routine (`corral_cgroup::teardown`), and the
//! processes no teardown may touch.

use super::{Round, Tree};
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
    /// [`teardown::signal_stopped`]). `group_first`: the process group may
    /// get `first` before the scan ([`Tree::signal_held`]); if not, the
    /// cgroup is frozen before anyone is signalled ([`Tree::stop`]).
    ///
    /// With a cgroup, the round looks only at `cgroup.procs`, one read
    /// where the `/proc` walk reads two files per member, so the signal
    /// goes out sooner. The walk comes at the tree's next look
    /// ([`Tree::is_empty`]), once the members that die of the signal had
    /// the CPU to do so, for members the cgroup does not list (moved out
    /// by a privileged member). Should it find any, a second round stops
    /// and signals them, and only them: not the group, nor anyone the
    /// first round reached.
    pub fn terminate(&mut self, first: Signal, group_first: bool) {
        self.group_first = group_first;
        let cgroup_only = group_first && self.group.is_some();
        if cgroup_only {
            self.round = Round::CgroupOnly;
        }
        let found = teardown::signal_stopped(self, first).unwrap_or_default();
        self.round = Round::Walk;
        self.group_first = true;
        if cgroup_only {
            self.unwalked = Some((first, found.into_iter().collect()));
        }
    }

    /// The walk that [`Tree::terminate`] left for later, if it did: the
    /// second round, for the members its first round did not reach.
    /// Returns the walk's live members when it sent nothing, as they still
    /// are; `None` when there was no walk to make or it signalled.
    pub(super) fn walk_for_escapees(&mut self) -> Option<Vec<super::ProcStat>> {
        let (first, reached) = self.unwalked.take()?;
        let (members, in_cgroup) = self.live_members();
        let escaped = members
            .iter()
            .any(|p| !reached.contains(&p.pid) && !in_cgroup.contains(&p.pid) && may_signal(p.pid));
        if !escaped {
            return Some(members);
        }
        self.round = Round::Escapees(reached);
        let _ = teardown::signal_stopped(self, first);
        self.round = Round::Walk;
        None
    }

    /// SIGKILL every member: rounds of stop, SIGKILL (with `cgroup.kill`
    /// and `killpg(2)` too) and let go, until a scan finds nobody
    /// ([`teardown::kill`]). Zombies are left for the caller to reap.
    pub fn kill_all(&mut self) {
        self.unwalked = None;
        if let Ok(left) = teardown::kill(self, KILL_PATIENCE) {
            self.armed = !left.is_empty();
        }
    }

    /// [`Tree::stop`] of a polite round that looks only at the cgroup
    /// ([`Tree::terminate`]): SIGSTOPs each process `cgroup.procs` lists
    /// and reads it again until it names nobody new (a process stopped
    /// after the read may have forked before). Returns the pids stopped.
    ///
    /// A process still in the group that [`Tree::signal_held`] stopped
    /// (`getpgid(2)`, no `/proc` read) was stopped before the read, so it
    /// needs no SIGSTOP of its own and no read after it: a tree that stayed
    /// in its group is read once, and its child's signal is not kept
    /// waiting behind a second read.
    fn stop_cgroup(&self) -> Vec<i32> {
        let mut stopped = HashSet::new();
        if let Some(g) = &self.group {
            for _ in 0..100 {
                let fresh: Vec<i32> = g
                    .pids()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|p| !stopped.contains(p) && may_signal(*p))
                    .collect();
                let mut outside = false;
                for pid in fresh {
                    if !self.held_by_group(pid) {
                        signal(pid, Signal::SIGSTOP);
                        outside = true;
                    }
                    stopped.insert(pid);
                }
                if !outside {
                    break;
                }
            }
        }
        stopped.into_iter().collect()
    }

    /// Whether `pid` is in the process group that this round's
    /// [`Tree::signal_held`] stopped.
    fn held_by_group(&self, pid: i32) -> bool {
        self.held
            && self.pgrp.is_some_and(|g| {
                nix::unistd::getpgid(Some(Pid::from_raw(pid))).is_ok_and(|p| p.as_raw() == g)
            })
    }

    /// Signals the child's process group with one `killpg(2)` for each of
    /// `sigs`, in order. The kernel delivers each to every member under
    /// one lock, and a fork racing with it fails (`copy_process` checks
    /// for a pending group signal), so a fork bomb that stays in its group
    /// cannot outrun it, as it can outrun a `/proc` scan. Only while the
    /// group is provably ours: its leader is the helper's own child, and
    /// while the helper has not reaped it (alive or a zombie) its pid, and
    /// so the group's id, cannot be reused. Known without a look at
    /// `/proc`, whose first read of a process costs tens of microseconds
    /// before the first signal. Returns whether every signal was sent.
    fn signal_group(&self, sigs: &[Signal]) -> bool {
        // A second round of a terminate leaves the group to the first.
        let escapees = matches!(self.round, Round::Escapees(_));
        let Some(g) = self.pgrp.filter(|_| !escapees && !self.leader_reaped) else {
            return false;
        };
        may_signal(g)
            && g != nix::unistd::getpgrp().as_raw()
            && sigs
                .iter()
                .all(|&sig| nix::sys::signal::killpg(Pid::from_raw(g), sig).is_ok())
    }
}

/// The tree as [`teardown::Members`]: its cgroup, its process group and
/// every member a scan finds.
impl teardown::Members for Tree {
    /// Before any scan: the process group stopped and then signalled with
    /// two `killpg(2)`s (a fork with a stop pending fails, and the group's
    /// signal reaches a child forked under it). The child and whatever
    /// stayed in its group get `sig` first; a default-action SIGTERM ends
    /// them at once, stopped or not, while the scan looks for the rest.
    ///
    /// Only under the subreaper: a member dying now hands its children to
    /// the helper, where the walk looks again after it is done
    /// ([`crate::sys::descendants`]). Without it they would go to init,
    /// out of reach, so the group is signalled after the scan instead, in
    /// [`Tree::signal`], with everyone still in place. Nor after an OOM
    /// kill (`group_first`, see [`Tree::terminate`]).
    fn signal_held(&mut self, sig: Signal) {
        self.held =
            self.group_first && !self.full_scan && self.signal_group(&[Signal::SIGSTOP, sig]);
    }

    /// SIGSTOPs the process group and every member outside it, rescanning
    /// until no new member appears, so nothing can fork behind the signal.
    /// Returns the pids found.
    ///
    /// A member the group's `killpg(2)` stopped before the scan began
    /// cannot have forked since; one outside it, stopped on its own after
    /// the scan found it, may have, so it costs another scan. When that
    /// scan finds yet more outside the group, the cgroup is frozen, which
    /// stops all of its members at once (a fork bomb outside the group
    /// cannot outrun it), and scanned again. A tree that stayed in its
    /// process group, the usual case, is scanned once and never frozen;
    /// one with a setsid member, twice.
    fn stop(&mut self) -> corral_cgroup::Result<Vec<i32>> {
        if matches!(self.round, Round::CgroupOnly) {
            return Ok(self.stop_cgroup());
        }
        let group_stopped = self.held || self.signal_group(&[Signal::SIGSTOP]);
        let mut frozen = false;
        // After an OOM kill the cgroup is frozen before anything is
        // signalled: v1 tells of the OOM before its SIGKILL lands, and
        // the freeze completes only once the victim is frozen or dead, so
        // the first signal cannot overtake the kernel's.
        if !self.group_first {
            if let Some(g) = &self.group {
                self.frozen = true;
                frozen = g.freeze().is_ok();
            }
        }
        let mut rescanned = false;
        let mut stopped = HashSet::new();
        for _ in 0..100 {
            let (members, in_cgroup) = self.live_members();
            let mut outside = Vec::new();
            for p in members {
                let done = matches!(&self.round, Round::Escapees(d) if d.contains(&p.pid));
                if done || stopped.contains(&p.pid) || !may_signal(p.pid) {
                    continue;
                }
                let held = (group_stopped && Some(p.pgrp) == self.pgrp)
                    || (frozen && in_cgroup.contains(&p.pid));
                if held {
                    stopped.insert(p.pid);
                } else {
                    outside.push(p.pid);
                }
            }
            if outside.is_empty() {
                break;
            }
            if rescanned && !self.frozen {
                if let Some(g) = &self.group {
                    // Thawed in resume even when the freeze timed out: the
                    // request stays in force.
                    self.frozen = true;
                    frozen = g.freeze().is_ok();
                    if frozen {
                        continue;
                    }
                }
            }
            for pid in outside {
                signal(pid, Signal::SIGSTOP);
                stopped.insert(pid);
            }
            rescanned = true;
        }
        Ok(stopped.into_iter().collect())
    }

    /// The cgroup's own kill first (`cgroup.kill`), then the process group
    /// unless [`Tree::signal_held`] did, then every member found (a second
    /// copy to a group member merges with the first, still pending while
    /// it is stopped).
    fn signal(&mut self, found: &[i32], sig: Signal) -> corral_cgroup::Result<()> {
        if let Some(g) = self.group.as_ref().filter(|_| sig == Signal::SIGKILL) {
            let _ = g.kill_at_once();
        }
        if !self.held {
            self.signal_group(&[sig]);
        }
        for &pid in found {
            signal(pid, sig);
        }
        Ok(())
    }

    fn resume(&mut self, found: &[i32]) -> corral_cgroup::Result<()> {
        self.held = false;
        self.signal_group(&[Signal::SIGCONT]);
        for &pid in found {
            signal(pid, Signal::SIGCONT);
        }
        if let Some(g) = self
            .group
            .as_ref()
            .filter(|_| std::mem::take(&mut self.frozen))
        {
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

    #[test]
    // The tree reaps the child, as the helper's does: not `Child::wait`.
    #[allow(clippy::zombie_processes)]
    fn the_group_is_signalled_until_the_helper_reaps_its_leader() {
        use std::os::unix::process::CommandExt;
        let child = std::process::Command::new("sleep")
            .arg("100")
            .process_group(0)
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as i32;
        let mut tree = Tree::new(Some(Pid::from_raw(pid)), None);
        assert!(tree.signal_group(&[Signal::SIGKILL]), "the leader is ours");
        // Dead but not reaped: the id still cannot be anyone else's.
        assert!(tree.signal_group(&[Signal::SIGCONT]));
        let status = tree.reap(pid, None).expect("reaped");
        assert!(matches!(
            status,
            nix::sys::wait::WaitStatus::Signaled(_, Signal::SIGKILL, _)
        ));
        // Reaped: the id may be reused, and killpg(2) would still succeed
        // for whoever leads a group of that id now.
        assert!(!tree.signal_group(&[Signal::SIGCONT]));
        tree.armed = false;
    }
}
