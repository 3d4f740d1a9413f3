//! The exit report: how the child ended and what its tree used.

use corral_proto::{key, Containment, Fields, Reason};
use nix::sys::signal::Signal;
use std::time::Duration;

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
}
