//! The child's process tree: finding every member and ending them all.
//!
//! The tree is the child's process group, plus every descendant of the
//! helper found in the process table (on Linux the helper is a child
//! subreaper, see `PR_SET_CHILD_SUBREAPER` in `prctl(2)`, so orphans
//! re-parent to it instead of escaping to init), plus the members of its
//! cgroup when it has one. The portable backend (`crate::sys`) has only
//! the process group, found by a full scan of the process table; the kill
//! sequence (`kill.rs`) is the same for both.

mod kill;

pub use kill::remember_ancestors;

use corral_cgroup::Group;
use nix::errno::Errno;
use nix::unistd::Pid;
use std::collections::{HashMap, HashSet};

use crate::sys::{descendants, has_live_threads, scan_all, stat_of};

/// One process as read from `/proc/<pid>/stat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStat {
    /// Process id.
    pub pid: i32,
    /// Parent's pid.
    pub ppid: i32,
    /// Process group.
    pub pgrp: i32,
    /// `R`, `S`, `Z`, ...
    pub state: u8,
    /// User CPU in clock ticks.
    pub utime: u64,
    /// System CPU in clock ticks.
    pub stime: u64,
    /// User CPU of children it reaped, in clock ticks.
    pub cutime: u64,
    /// System CPU of children it reaped, in clock ticks.
    pub cstime: u64,
    /// Resident pages.
    pub rss_pages: u64,
}

/// The length of a clock tick, the unit of `utime` and `stime`.
pub fn clock_tick() -> std::time::Duration {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    std::time::Duration::from_secs(1) / u32::try_from(hz).ok().filter(|h| *h > 0).unwrap_or(100)
}

/// The size of a page, the unit of `rss`.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|n| *n > 0).unwrap_or(4096)
}

/// The members of the tree rooted at `root`, zombies included: its
/// descendants by parent links, and every process in group `pgrp`.
pub fn members(all: &[ProcStat], root: i32, pgrp: Option<i32>) -> Vec<ProcStat> {
    let mut children: HashMap<i32, Vec<&ProcStat>> = HashMap::new();
    for p in all {
        children.entry(p.ppid).or_default().push(p);
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        for c in children.get(&pid).into_iter().flatten() {
            if seen.insert(c.pid) {
                stack.push(c.pid);
                out.push(**c);
            }
        }
    }
    if let Some(g) = pgrp {
        out.extend(
            all.iter()
                .filter(|p| p.pgrp == g && seen.insert(p.pid))
                .copied(),
        );
    }
    out.retain(|p| p.pid != root);
    out
}

/// What the processes this run reaped used, from the `rusage` that
/// `wait4(2)` returns for each (its own use plus that of the children it
/// reaped): per run, where `RUSAGE_CHILDREN` would add up every run a
/// pooled helper ever served.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reaped {
    user: std::time::Duration,
    system: std::time::Duration,
    /// In `ru_maxrss` units ([`crate::sys::MAXRSS_UNIT`] bytes).
    max_rss: u64,
}

impl Reaped {
    fn add(&mut self, r: &libc::rusage) {
        let d = |t: libc::timeval| {
            std::time::Duration::from_secs(t.tv_sec as u64)
                + std::time::Duration::from_micros(t.tv_usec as u64)
        };
        self.user += d(r.ru_utime);
        self.system += d(r.ru_stime);
        self.max_rss = self.max_rss.max(r.ru_maxrss as u64);
    }

    /// User CPU, system CPU and the largest peak RSS in bytes.
    pub fn totals(&self) -> (std::time::Duration, std::time::Duration, u64) {
        (
            self.user,
            self.system,
            self.max_rss.saturating_mul(crate::sys::MAXRSS_UNIT),
        )
    }
}

/// What a teardown round looks at (`tree/kill.rs`).
#[derive(Debug)]
enum Round {
    /// The `/proc` walk, the process group and the cgroup: every round
    /// but the two below.
    Walk,
    /// `cgroup.procs` alone: the polite round of a tree with a cgroup.
    CgroupOnly,
    /// The walk's members that the polite round did not reach (these
    /// pids), and not the process group.
    Escapees(HashSet<i32>),
}

/// The tree of one child, as the helper sees it.
///
/// Dropping a `Tree` that may still have members kills them all, so an
/// early return or a panic in the helper cannot leak processes; dropping its
/// [`Group`] then removes the cgroup directories it created.
#[derive(Debug)]
pub struct Tree {
    /// The helper's own pid: the root of the subreaper tree.
    pub root: i32,
    /// The child's process group, when it has its own.
    pub pgrp: Option<i32>,
    /// The child's cgroup, when it has one.
    pub group: Option<Group>,
    /// Find members by scanning all of `/proc` (parent links and the
    /// process group) rather than walking the helper's descendants: set
    /// when the helper is not a subreaper, so orphans leave its subtree
    /// and only their process group still names them.
    pub full_scan: bool,
    /// This teardown round stopped and signalled the process group before
    /// its scan ([`corral_cgroup::teardown::Members::signal_held`]).
    held: bool,
    /// This teardown round asked the cgroup to freeze.
    frozen: bool,
    /// Teardown rounds may signal the process group before their scan
    /// ([`Tree::terminate`]).
    group_first: bool,
    /// What this teardown round looks at ([`Tree::terminate`]).
    round: Round,
    /// The first signal and the pids a polite round reached, when that
    /// round looked only at the cgroup and the `/proc` walk for members
    /// outside it is still to come ([`Tree::terminate`]).
    unwalked: Option<(nix::sys::signal::Signal, HashSet<i32>)>,
    /// The helper reaped the process group's leader, its own child: the
    /// group's id may name someone else's group from now on.
    leader_reaped: bool,
    /// False once the tree was seen empty.
    armed: bool,
    /// What the members reaped so far used.
    pub reaped: Reaped,
}

impl Tree {
    /// The tree of the current process's descendants, group `pgrp` and
    /// cgroup `group`.
    pub fn new(pgrp: Option<Pid>, group: Option<Group>) -> Tree {
        Tree {
            root: std::process::id() as i32,
            pgrp: pgrp.map(Pid::as_raw),
            group,
            full_scan: false,
            held: false,
            frozen: false,
            group_first: true,
            round: Round::Walk,
            unwalked: None,
            leader_reaped: false,
            armed: true,
            reaped: Reaped::default(),
        }
    }

    /// Reaps one exited child of the helper (any child: orphans re-parent
    /// to it) and adds what it used to [`Tree::reaped`]. `flags` as for
    /// `waitpid(2)`; `StillAlive` when nothing was ready under `WNOHANG`.
    ///
    /// # Errors
    /// `ECHILD` when the helper has no children left, `EINTR`.
    pub fn reap_one(
        &mut self,
        flags: Option<nix::sys::wait::WaitPidFlag>,
    ) -> nix::Result<nix::sys::wait::WaitStatus> {
        self.reap(-1, flags)
    }

    /// [`Tree::reap_one`] of `pid` as `wait4(2)` reads it (-1: any child).
    fn reap(
        &mut self,
        pid: i32,
        flags: Option<nix::sys::wait::WaitPidFlag>,
    ) -> nix::Result<nix::sys::wait::WaitStatus> {
        let mut status = 0;
        // SAFETY: an all-zero rusage is valid; wait4 writes both out-params.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let flags = flags.map_or(0, |f| f.bits());
        // SAFETY: wait4 with pointers to locals we own.
        let pid = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
        match pid {
            -1 => Err(Errno::last()),
            0 => Ok(nix::sys::wait::WaitStatus::StillAlive),
            pid => {
                self.reaped.add(&usage);
                self.leader_reaped |= self.pgrp == Some(pid);
                nix::sys::wait::WaitStatus::from_raw(Pid::from_raw(pid), status)
            }
        }
    }

    /// The live members now: descendants, the process group (which the
    /// subreaper keeps among the descendants, but a full scan also checks),
    /// and whoever is in the cgroup.
    pub fn members(&self) -> Vec<ProcStat> {
        self.live_members().0
    }

    /// [`Tree::members`], and the pids the cgroup listed among them.
    pub(crate) fn live_members(&self) -> (Vec<ProcStat>, HashSet<i32>) {
        let (mut found, in_group) = self.scan();
        found.retain(|p| p.state != b'Z' || has_live_threads(p.pid));
        (found, in_group)
    }

    /// [`Tree::members`] plus zombies not yet reaped by their parents,
    /// whose CPU time is not yet in anyone else's account.
    pub fn members_with_zombies(&self) -> Vec<ProcStat> {
        self.scan().0
    }

    /// Everyone a scan finds, zombies included, and the pids that the
    /// cgroup's `cgroup.procs` listed.
    fn scan(&self) -> (Vec<ProcStat>, HashSet<i32>) {
        let walked = if self.full_scan {
            None
        } else {
            descendants(self.root)
        };
        let mut found = match walked {
            Some(d) => d,
            None => members(&scan_all(), self.root, self.pgrp),
        };
        let in_group: HashSet<i32> = self
            .group
            .as_ref()
            .and_then(|g| g.pids().ok())
            .unwrap_or_default()
            .into_iter()
            .collect();
        if !in_group.is_empty() {
            let known: HashSet<i32> = found.iter().map(|p| p.pid).collect();
            found.extend(
                in_group
                    .iter()
                    .filter(|p| !known.contains(p))
                    .filter_map(|&p| stat_of(p)),
            );
        }
        found.retain(|p| p.pid != self.root);
        (found, in_group)
    }

    /// True when no live member is left. The first look after a polite
    /// round that read only the cgroup also signals the members it missed
    /// ([`Tree::terminate`]).
    ///
    /// The helper first yields its CPU once (`sched_yield(2)`): a look
    /// comes when the child exits or a member is reaped, while the rest
    /// of the tree is dying of the signal, often woken onto this very CPU,
    /// where the walk would keep them from running their exit (seen at
    /// 200-800 µs per teardown in a trace). With nothing else runnable
    /// here, the yield returns at once.
    pub fn is_empty(&mut self) -> bool {
        std::thread::yield_now();
        let members = self.walk_for_escapees().unwrap_or_else(|| self.members());
        let empty = members.is_empty();
        self.armed = !empty;
        empty
    }

    /// Removes the cgroup directories this run created; the tree must be empty.
    pub fn remove_group(&mut self) -> Result<(), corral_cgroup::Error> {
        match self.group.take() {
            Some(g) => g.remove(),
            None => Ok(()),
        }
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        if self.armed {
            self.kill_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: i32, ppid: i32, pgrp: i32, state: u8) -> ProcStat {
        ProcStat {
            pid,
            ppid,
            pgrp,
            state,
            utime: 0,
            stime: 0,
            cutime: 0,
            cstime: 0,
            rss_pages: 0,
        }
    }

    #[test]
    fn members_follow_parents_and_the_group() {
        let all = [
            p(10, 1, 10, b'S'),  // the helper
            p(11, 10, 11, b'S'), // the child
            p(12, 11, 11, b'S'), // grandchild
            p(13, 10, 13, b'S'), // orphan re-parented to the helper, setsid
            p(14, 13, 13, b'Z'), // zombie: not counted
            p(15, 1, 11, b'S'),  // escaped to init but still in the group
            p(16, 1, 16, b'S'),  // unrelated
        ];
        let mut got: Vec<i32> = members(&all, 10, Some(11))
            .iter()
            .filter(|p| p.state != b'Z')
            .map(|p| p.pid)
            .collect();
        got.sort();
        assert_eq!(got, vec![11, 12, 13, 15]);
    }
}
