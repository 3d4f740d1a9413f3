//! The end of a run: reaping the tree, the report, the cgroup's removal
//! and the `X` frame.

use super::Session;
use crate::phase::Outcome;
use crate::report::{Report, Seen, Status};
use mio::unix::SourceFd;
use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use std::os::fd::AsRawFd;

impl Session<'_> {
    /// Reaps every exited child; the main child's status is kept.
    pub(super) fn reap(&mut self) {
        self.reap_with(Some(WaitPidFlag::WNOHANG));
    }

    /// Waits for every remaining child to be reaped.
    pub(super) fn reap_blocking(&mut self) {
        self.reap_with(None);
    }

    pub(super) fn reap_with(&mut self, flags: Option<WaitPidFlag>) {
        loop {
            match self.tree.reap_one(flags) {
                Ok(WaitStatus::Exited(pid, code)) if pid == self.child => {
                    self.phase.child_ended(Status::Exited(code));
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == self.child => {
                    self.phase.child_ended(Status::Signaled(sig));
                }
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    }

    /// The end of the run, in order: reap the whole tree, assemble the
    /// report, remove the cgroup, send `X`, and hand the [`Base`] back
    /// for another run if this helper serves one.
    pub(super) fn finish(mut self) -> (Outcome, bool) {
        self.reap_all();
        let report = self.report();
        // The tree is empty. The directories go before the report, so a
        // caller that has it can reuse a :cgroup_path or remove its base.
        if let Err(e) = self.tree.remove_group() {
            eprintln!("corral: {e}");
        }
        match self.phase.outcome(report) {
            Outcome::Finished(report) => {
                let again = self.cfg.control && self.send_exit(&report);
                (Outcome::Finished(report), again)
            }
            other => (other, false),
        }
    }

    /// Every tree member is dead or dying; reaps them all, waiting for the
    /// ones still exiting, so their CPU time is in `tree.reaped` before it
    /// is read. Everything left is our own child (the subreaper adopted
    /// it), so this ends at ECHILD.
    pub(super) fn reap_all(&mut self) {
        self.reap();
        self.reap_blocking();
    }

    /// What the helper saw of the run, with the cgroup's statistics.
    pub(super) fn report(&self) -> Report {
        let (reaped_user, reaped_system, reaped_peak_rss) = self.tree.reaped.totals();
        let stats = self
            .tree
            .group
            .as_ref()
            .map(|g| g.stats())
            .unwrap_or_default();
        let seen = Seen {
            started: self.started,
            status: self.phase.status(),
            reason: self.phase.reason(),
            reaped_user,
            reaped_system,
            reaped_peak_rss,
            polled_memory: self.watch.peak.memory,
            polled_processes: self
                .watch
                .peak
                .processes
                .max(self.forks.as_ref().map_or(0, |f| f.peak)),
            cgroup_pids: self.cfg.cgroup_pids,
            containment: self.cfg.containment,
        };
        Report::assemble(&seen, &stats)
    }

    /// Sends `X` once the run's descriptors (pipes, OOM watch, fork
    /// events) are closed: once the BEAM has `X`, nothing of the run is
    /// open in the helper. Returns true when [`Config::serve_again`] asks
    /// for another run and the BEAM is there; else waits for the BEAM to
    /// close the channel.
    pub(super) fn send_exit(mut self, report: &Report) -> bool {
        self.close_run();
        let base = self.base;
        base.sink.send_up(&corral_proto::Up::Exit {
            reason: report.reason,
            fields: report.fields(),
        });
        if self.cfg.serve_again && base.sink.open {
            return true;
        }
        if base.sink.open {
            base.await_close();
        }
        false
    }

    /// Takes the child's pipes out of the event loop and closes them, with
    /// the OOM watch and the fork events: what the next run must not see.
    pub(super) fn close_run(&mut self) {
        let registry = self.base.poll.registry();
        for out in self.outputs.iter().flatten() {
            let _ = registry.deregister(&mut SourceFd(&out.fd.as_raw_fd()));
        }
        if let Some(input) = &self.input {
            let _ = registry.deregister(&mut SourceFd(&input.fd.as_raw_fd()));
        }
        self.outputs = [None, None];
        self.input = None;
        self.oom = None;
        self.forks = None;
    }
}
