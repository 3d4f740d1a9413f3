//! Freezing, thawing and killing a [`Group`]: the v2 `cgroup.freeze` and
//! `cgroup.kill` where the kernel has them, else the v1 freezer, else
//! signals alone (`kill(2)`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::group::Group;
use crate::{fs, teardown, v1, v2};

/// How long [`Group::freeze`] waits for every task to stop.
const FREEZE_PATIENCE: Duration = Duration::from_secs(1);
/// How long one kill round waits for the freeze before killing anyway.
const KILL_FREEZE_PATIENCE: Duration = Duration::from_millis(100);
/// How long [`Group::kill`] keeps trying before [`Error::Timeout`].
const KILL_PATIENCE: Duration = Duration::from_secs(2);
/// How long a kill round waits for the group to empty before the next.
const KILL_SETTLE: Duration = Duration::from_millis(50);

/// The freezer chosen for a group: v2 `cgroup.freeze` or v1 `freezer.state`.
#[derive(Clone, Copy)]
enum Freezer<'a> {
    V2(&'a Path),
    V1(&'a Path),
}

impl Freezer<'_> {
    fn set(self, frozen: bool) -> Result<()> {
        match self {
            Freezer::V2(d) => v2::freezer::set(d, frozen),
            Freezer::V1(d) => v1::freezer::set(d, frozen),
        }
    }

    fn is_frozen(self) -> bool {
        match self {
            Freezer::V2(d) => v2::freezer::is_frozen(d),
            Freezer::V1(d) => v1::freezer::is_frozen(d),
        }
        .unwrap_or(false)
    }

    /// Waits up to `patience` for the freeze to complete: v2 is woken by
    /// `cgroup.events` changing, v1 (`FREEZING` to `FROZEN`) is polled.
    fn wait_frozen(self, patience: Duration) -> bool {
        match self {
            Freezer::V2(d) => {
                fs::poll_watching(&v2::freezer::events(d), patience, v2::freezer::frozen_in)
            }
            Freezer::V1(_) => fs::poll(patience, || self.is_frozen()),
        }
    }

    fn dir(self) -> PathBuf {
        match self {
            Freezer::V2(d) | Freezer::V1(d) => d.to_path_buf(),
        }
    }
}

impl Group {
    fn freezer(&self) -> Result<Freezer<'_>> {
        if let Some(d) = self.v2.as_ref().filter(|d| v2::freezer::available(&d.path)) {
            return Ok(Freezer::V2(&d.path));
        }
        if let Some(d) = self.v1_dir("freezer") {
            return Ok(Freezer::V1(d));
        }
        Err(Error::Controller {
            controller: "freezer".into(),
            path: self.dirs().into_iter().next().unwrap_or_default(),
            hint: "the group has no freezer: v2 cgroup.freeze needs Linux 5.2+, on v1 mount the freezer controller"
                .into(),
        })
    }

    /// Freezes every process in the group and waits (up to a second) until
    /// they are all stopped. Uses v2 `cgroup.freeze` where the group is in
    /// the v2 tree, else v1 `freezer.state`.
    ///
    /// # Errors
    ///
    /// [`Error::Controller`] if the group has no freezer; [`Error::Io`] if
    /// the write fails; [`Error::Timeout`] if the tasks do not stop in time
    /// (v1 may hang in `FREEZING`; the request stays in force).
    pub fn freeze(&self) -> Result<()> {
        let f = self.freezer()?;
        f.set(true)?;
        if f.wait_frozen(FREEZE_PATIENCE) {
            return Ok(());
        }
        Err(Error::Timeout {
            op: "freeze",
            path: f.dir(),
            pids: self.pids().unwrap_or_default(),
        })
    }

    /// Thaws the group.
    ///
    /// # Errors
    ///
    /// [`Error::Controller`] if the group has no freezer; [`Error::Io`] if
    /// the write fails.
    pub fn thaw(&self) -> Result<()> {
        self.freezer()?.set(false)
    }

    /// SIGKILLs every process in the group and waits until `cgroup.procs`
    /// is empty everywhere. With v2 `cgroup.kill` (Linux 5.14+) the kernel
    /// does it atomically; otherwise each round freezes the group (so
    /// nothing can fork or exit and have its pid reused meanwhile), sends
    /// SIGKILL to every pid, and thaws so the signals are delivered: the
    /// rounds of [`crate::teardown::kill`].
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] if the calling process itself is in the group (it
    /// is never killed); [`Error::Io`] if the group's files cannot be used;
    /// [`Error::Timeout`] with the remaining pids if processes are still
    /// there after two seconds (e.g. stuck in uninterruptible sleep).
    pub fn kill(&self) -> Result<()> {
        self.kill_within(KILL_PATIENCE)
    }

    pub(crate) fn kill_within(&self, patience: Duration) -> Result<()> {
        let me = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
        let pids = self.pids()?;
        if pids.contains(&me) {
            let dir = self.dirs().into_iter().next().unwrap_or_default();
            return Err(Error::invalid(
                "cgroup",
                &dir.to_string_lossy(),
                "it holds the calling process; refusing to kill it",
            ));
        }
        if pids.is_empty() {
            return Ok(());
        }
        let at_once = self.kill_file();
        let mut members = GroupMembers {
            group: self,
            me,
            // cgroup.kill needs no freeze: the kernel signals the whole
            // group under its lock, and a fork racing with it fails.
            freezer: at_once.is_none().then(|| self.freezer().ok()).flatten(),
            at_once,
            frozen: false,
        };
        if teardown::kill(&mut members, patience)?.is_empty() {
            return Ok(());
        }
        Err(Error::Timeout {
            op: "kill",
            path: self.dirs().into_iter().next().unwrap_or_default(),
            pids: self.pids().unwrap_or_default(),
        })
    }

    /// `cgroup.kill`, where the group is in the v2 tree and the kernel has
    /// it (Linux 5.14+).
    fn kill_file(&self) -> Option<PathBuf> {
        self.v2
            .as_ref()
            .and_then(|d| v2::freezer::kill_file(&d.path))
    }

    /// SIGKILLs every process in the group at once with `cgroup.kill`,
    /// without waiting for them to go. Returns false, having done nothing,
    /// where the kernel has no `cgroup.kill` (see [`Group::kill`]).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `cgroup.kill` cannot be written.
    pub fn kill_at_once(&self) -> Result<bool> {
        match self.kill_file() {
            Some(file) => fs::write(&file, "1").map(|()| true),
            None => Ok(false),
        }
    }
}

/// A group's processes as [`teardown::Members`]: found in `cgroup.procs`,
/// stopped by the freezer (when the group has one and no `cgroup.kill`).
struct GroupMembers<'a> {
    group: &'a Group,
    /// The caller, never signalled.
    me: i32,
    freezer: Option<Freezer<'a>>,
    at_once: Option<PathBuf>,
    /// The freezer was set by this round's stop.
    frozen: bool,
}

impl teardown::Members for GroupMembers<'_> {
    fn stop(&mut self) -> Result<Vec<i32>> {
        if let Some(f) = self.freezer {
            self.frozen = f.set(true).is_ok();
            if self.frozen {
                // Kill anyway if it takes longer: a v1 freezer can hang.
                f.wait_frozen(KILL_FREEZE_PATIENCE);
            }
        }
        let me = self.me;
        Ok(self
            .group
            .pids()?
            .into_iter()
            .filter(|p| *p != me && *p > 0)
            .collect())
    }

    fn signal(&mut self, found: &[i32], sig: Signal) -> Result<()> {
        if let Some(file) = self.at_once.as_ref().filter(|_| sig == Signal::SIGKILL) {
            return fs::write(file, "1");
        }
        for &pid in found {
            // ESRCH: it exited meanwhile, which is what we want.
            let _ = signal::kill(Pid::from_raw(pid), sig);
        }
        Ok(())
    }

    fn resume(&mut self, _: &[i32]) -> Result<()> {
        match self.freezer.filter(|_| std::mem::take(&mut self.frozen)) {
            Some(f) => f.set(false),
            None => Ok(()),
        }
    }

    fn settle(&mut self, up_to: Duration) -> bool {
        fs::poll(up_to.min(KILL_SETTLE), || {
            self.group.pids().is_ok_and(|p| p.is_empty())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;
    use crate::{Limits, Placement};

    fn create(fx: &fixture::Fixture) -> Group {
        Group::create(&fx.sys, &Placement::Default, &Limits::default(), &[], &[]).unwrap()
    }

    #[test]
    fn v2_freeze_thaw_and_kill_use_core_files() {
        let fx = fixture::hybrid();
        let g = create(&fx);
        let v2 = g.dirs()[0].clone();
        std::fs::write(v2.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        g.freeze().unwrap();
        assert_eq!(
            std::fs::read_to_string(v2.join("cgroup.freeze")).unwrap(),
            "1"
        );
        g.thaw().unwrap();
        assert_eq!(
            std::fs::read_to_string(v2.join("cgroup.freeze")).unwrap(),
            "0"
        );

        // cgroup.kill is written; the fixture never empties, so it times out.
        std::fs::write(v2.join("cgroup.procs"), "2147483600\n").unwrap();
        let err = g.kill_within(Duration::from_millis(30)).unwrap_err();
        assert!(
            matches!(&err, Error::Timeout { op: "kill", pids, .. } if pids == &[2_147_483_600]),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(v2.join("cgroup.kill")).unwrap(),
            "1"
        );

        // Never kills the caller.
        std::fs::write(v2.join("cgroup.procs"), format!("{}\n", std::process::id())).unwrap();
        assert!(matches!(g.kill(), Err(Error::Invalid { .. })));
        std::fs::write(v2.join("cgroup.procs"), "").unwrap();
        g.kill().unwrap();
    }

    #[test]
    fn v2_freeze_times_out_clearly() {
        let fx = fixture::unified();
        let g = create(&fx);
        let err = g.freeze().unwrap_err();
        assert!(matches!(err, Error::Timeout { op: "freeze", .. }), "{err}");
    }

    #[test]
    fn v1_kill_freezes_signals_and_thaws() {
        let fx = fixture::legacy();
        let g = create(&fx);
        let freezer = g.v1_dir("freezer").unwrap().to_path_buf();
        g.freeze().unwrap();
        assert_eq!(
            std::fs::read_to_string(freezer.join("freezer.state")).unwrap(),
            "FROZEN"
        );
        g.thaw().unwrap();

        // A real child of ours stands in for a member; the fixture's procs file
        // never empties, so kill times out, but the child got SIGKILL.
        let mut child = std::process::Command::new("sleep")
            .arg("1000")
            .spawn()
            .unwrap();
        std::fs::write(freezer.join("cgroup.procs"), format!("{}\n", child.id())).unwrap();
        let err = g.kill_within(Duration::from_millis(30)).unwrap_err();
        assert!(matches!(err, Error::Timeout { op: "kill", .. }), "{err}");
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert_eq!(
            std::fs::read_to_string(freezer.join("freezer.state")).unwrap(),
            "THAWED"
        );
        std::fs::write(freezer.join("cgroup.procs"), "").unwrap();
    }
}
