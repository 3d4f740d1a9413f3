//! The exit report: how the child ended and what its tree used.

use corral_cgroup::Stats;
use corral_proto::{key, Containment, Fields, Reason};
use nix::sys::signal::Signal;
use std::time::{Duration, Instant};

/// How the child itself ended, as `waitpid(2)` said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// It exited with this code.
    Exited(i32),
    /// A signal killed it.
    Signaled(Signal),
}

impl Status {
    /// The status a shell would show: the code, or 128 + the signal number.
    pub fn code(self) -> i32 {
        match self {
            Status::Exited(c) => c,
            Status::Signaled(s) => 128 + s as i32,
        }
    }
}

/// What the tree used, as far as the helper could tell.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// From spawn to the child's exit.
    pub wall: Duration,
    /// User CPU of the whole tree.
    pub user: Duration,
    /// System CPU of the whole tree.
    pub system: Duration,
    /// Peak memory in bytes.
    pub peak_memory: Option<u64>,
    /// Most processes alive at once.
    pub peak_processes: Option<u64>,
    /// OOM kills the cgroup counted.
    pub oom_kills: Option<u64>,
    /// Times the cgroup's pids limit refused a fork.
    pub pids_limit_hits: Option<u64>,
}

/// The end of one run.
#[derive(Clone, Copy, Debug)]
pub struct Report {
    /// Why it ended.
    pub reason: Reason,
    /// How the child ended.
    pub status: Status,
    /// What the tree used.
    pub usage: Usage,
    /// How the tree was held.
    pub containment: Containment,
}

impl Report {
    /// The `X` frame's fields, in the order `docs/protocol.md` lists them.
    pub fn fields(&self) -> Fields {
        let mut f = Fields::default().int(key::EXIT_STATUS, self.status.code() as u64);
        match self.status {
            Status::Exited(c) => f = f.int(key::EXIT_CODE, c as u64),
            Status::Signaled(s) => {
                f = f
                    .int(key::SIGNAL, s as u64)
                    .text(key::SIGNAL_NAME, s.as_str())
            }
        }
        let u = &self.usage;
        f = f
            .int(key::WALL_TIME_US, u.wall.as_micros() as u64)
            .int(key::USER_TIME_US, u.user.as_micros() as u64)
            .int(key::SYSTEM_TIME_US, u.system.as_micros() as u64);
        for (k, v) in [
            (key::PEAK_MEMORY, u.peak_memory),
            (key::PEAK_PROCESSES, u.peak_processes),
            (key::OOM_KILLS, u.oom_kills),
            (key::PIDS_LIMIT_HITS, u.pids_limit_hits),
        ] {
            if let Some(v) = v {
                f = f.int(k, v);
            }
        }
        f.int(key::CONTAINMENT, u64::from(self.containment.code()))
    }
}

/// What the helper saw of one run, once the tree is gone and reaped:
/// the raw material of its [`Report`].
#[derive(Clone, Copy, Debug)]
pub struct Seen {
    /// When the child was spawned.
    pub started: Instant,
    /// How the child ended and when; `None` if it was never reaped.
    pub status: Option<(Status, Instant)>,
    /// Why the helper ended the tree, if it did before the child ended.
    pub reason: Option<Reason>,
    /// User CPU of the processes the helper reaped.
    pub reaped_user: Duration,
    /// System CPU of the processes the helper reaped.
    pub reaped_system: Duration,
    /// The largest peak RSS among them, in bytes.
    pub reaped_peak_rss: u64,
    /// The highest readings of the helper's own looks at the tree.
    pub polled_memory: u64,
    /// The most processes the helper's looks (or fork events) counted.
    pub polled_processes: u64,
    /// The cgroup's `pids.max` held `max_processes`.
    pub cgroup_pids: bool,
    /// How the tree was held.
    pub containment: Containment,
}

impl Report {
    /// The report of a run from what the helper saw and the cgroup's
    /// statistics (`Stats::default()` without a cgroup). The cgroup's
    /// accounting wins where it has a number: it covers every member,
    /// reaped or not.
    pub fn assemble(seen: &Seen, stats: &Stats) -> Report {
        let (status, ended) = seen
            .status
            .unwrap_or((Status::Signaled(Signal::SIGKILL), Instant::now()));
        let mut user = seen.reaped_user;
        let mut system = seen.reaped_system;
        if let (Some(u), Some(s)) = (stats.user_usec, stats.system_usec) {
            user = user.max(Duration::from_micros(u));
            system = system.max(Duration::from_micros(s));
        }
        let oom_killed = stats.oom_kills.is_some_and(|n| n > 0);
        // A limit the kernel enforced is the cause even when the child then
        // ended by itself (a shell whose fork failed exits 2).
        let pids_refused = seen.cgroup_pids && stats.pids_limit_hits.is_some_and(|n| n > 0);
        let reason = seen.reason.unwrap_or(match status {
            // OOMPolicy=stop: any member's OOM kill is the run's reason,
            // even when the main child then exits 0.
            _ if oom_killed => Reason::Memory,
            _ if pids_refused => Reason::MaxProcesses,
            Status::Exited(_) => Reason::Exit,
            Status::Signaled(_) => Reason::Signal,
        });
        Report {
            reason,
            status,
            usage: Usage {
                wall: ended.duration_since(seen.started),
                user,
                system,
                peak_memory: Some(
                    stats
                        .peak_memory
                        .unwrap_or(seen.reaped_peak_rss.max(seen.polled_memory)),
                ),
                peak_processes: stats
                    .peak_pids
                    .or(Some(seen.polled_processes).filter(|n| *n > 0)),
                oom_kills: stats.oom_kills,
                pids_limit_hits: stats.pids_limit_hits,
            },
            containment: seen.containment,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signaled_reports_name_and_128_plus() {
        let r = Report {
            reason: Reason::Signal,
            status: Status::Signaled(Signal::SIGKILL),
            usage: Usage::default(),
            containment: Containment::default(),
        };
        let f = r.fields();
        assert_eq!(f.get_int(key::EXIT_STATUS), Some(137));
        assert_eq!(f.get_int(key::SIGNAL), Some(9));
        assert_eq!(f.get_text(key::SIGNAL_NAME), Some("SIGKILL"));
        assert_eq!(f.get_int(key::EXIT_CODE), None);
    }

    fn seen(status: Status) -> Seen {
        let started = Instant::now();
        Seen {
            started,
            status: Some((status, started + Duration::from_millis(5))),
            reason: None,
            reaped_user: Duration::from_millis(3),
            reaped_system: Duration::from_millis(1),
            reaped_peak_rss: 4096,
            polled_memory: 8192,
            polled_processes: 0,
            cgroup_pids: true,
            containment: Containment::default(),
        }
    }

    #[test]
    fn the_reason_is_the_helper_s_then_the_kernel_s_then_the_status() {
        let none = Stats::default();
        let r = Report::assemble(&seen(Status::Exited(2)), &none);
        assert_eq!((r.reason, r.status.code()), (Reason::Exit, 2));
        assert_eq!(r.usage.wall, Duration::from_millis(5));
        assert_eq!(r.usage.peak_memory, Some(8192));
        assert_eq!(r.usage.peak_processes, None);
        let r = Report::assemble(&seen(Status::Signaled(Signal::SIGSEGV)), &none);
        assert_eq!(r.reason, Reason::Signal);

        let refused = Stats {
            pids_limit_hits: Some(1),
            ..Stats::default()
        };
        let r = Report::assemble(&seen(Status::Exited(2)), &refused);
        assert_eq!(r.reason, Reason::MaxProcesses);
        let oom = Stats {
            oom_kills: Some(1),
            ..refused
        };
        let r = Report::assemble(&seen(Status::Exited(0)), &oom);
        assert_eq!(r.reason, Reason::Memory);
        let mut timed_out = seen(Status::Signaled(Signal::SIGTERM));
        timed_out.reason = Some(Reason::Timeout);
        assert_eq!(Report::assemble(&timed_out, &oom).reason, Reason::Timeout);
    }

    #[test]
    fn the_cgroup_s_accounting_wins_where_it_has_a_number() {
        let stats = Stats {
            user_usec: Some(10_000),
            system_usec: Some(500),
            peak_memory: Some(1 << 20),
            peak_pids: Some(3),
            ..Stats::default()
        };
        let r = Report::assemble(&seen(Status::Exited(0)), &stats);
        assert_eq!(r.usage.user, Duration::from_millis(10));
        assert_eq!(r.usage.system, Duration::from_millis(1), "the larger");
        assert_eq!(r.usage.peak_memory, Some(1 << 20));
        assert_eq!(r.usage.peak_processes, Some(3));
    }
}
