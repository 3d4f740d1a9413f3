//! Tree-wide limits enforced by the helper: cumulative CPU time, memory,
//! process count and idleness, for the whole tree, with or without cgroups.
//!
//! Enforcement is driven by timers sized from what is left of each budget,
//! never by a fixed fast poll, and a run with no limits sets no timer:
//!
//! - CPU time: the next look is at `remaining / cpus`, the soonest the tree
//!   could spend the rest even with every CPU busy.
//! - memory and processes (when no cgroup enforces them): sooner the closer
//!   the tree is to its limit, between [`MIN_POLL`] and [`MAX_POLL`].
//! - idleness: a quarter of the idle budget, so a hang is seen within
//!   1.25 × `idle_timeout` of the last sign of life.

use crate::tree::{self, Tree};
use corral_proto::Reason;
use std::time::{Duration, Instant};

/// The shortest interval between two looks at the tree.
pub const MIN_POLL: Duration = Duration::from_millis(1);
/// The longest interval for memory and process counts.
pub const MAX_POLL: Duration = Duration::from_millis(50);

/// Limits the helper enforces itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct Limits {
    /// Cumulative CPU of the whole tree, reaped members included.
    pub cpu_time: Option<Duration>,
    /// Resident memory of the tree, when no cgroup limit enforces it.
    pub memory: Option<u64>,
    /// Live processes in the tree. With a cgroup, `pids.max` refuses the
    /// extra forks and a refusal ends the run; without, a count does.
    pub max_processes: Option<u64>,
    /// No CPU progress and no output for this long.
    pub idle: Option<Duration>,
}

impl Limits {
    /// True when nothing needs watching.
    pub fn is_empty(&self) -> bool {
        self.cpu_time.is_none()
            && self.memory.is_none()
            && self.max_processes.is_none()
            && self.idle.is_none()
    }
}

/// What a look at the tree found.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// CPU of the whole tree so far.
    pub cpu: Duration,
    /// Resident bytes of the live members.
    pub memory: u64,
    /// Live members.
    pub processes: u64,
    /// Forks the cgroup's pids limit refused.
    pub pids_limit_hits: u64,
}

/// Reads the tree's usage: the cgroup's own accounting when there is one,
/// else the live members from `/proc` plus what the helper reaped (the
/// helper is every orphan's subreaper).
pub fn sample(tree: &Tree) -> Sample {
    if let Some(g) = &tree.group {
        let st = g.stats();
        if let Some(cpu) = st.cpu_usage_usec {
            return Sample {
                cpu: Duration::from_micros(cpu),
                memory: st.memory_current.unwrap_or(0),
                processes: st
                    .pids_current
                    .unwrap_or_else(|| tree.members().len() as u64),
                pids_limit_hits: st.pids_limit_hits.unwrap_or(0),
            };
        }
    }
    let (user, system, _) = tree.reaped.totals();
    let mut s = Sample {
        cpu: user + system,
        ..Sample::default()
    };
    let tick = tree::clock_tick();
    let page = tree::page_size();
    for p in tree.members_with_zombies() {
        // A member's own time plus that of children it reaped itself;
        // zombies still hold theirs until their parent reaps them.
        s.cpu += tick * (p.utime + p.stime + p.cutime + p.cstime) as u32;
        if p.state != b'Z' {
            s.memory += p.rss_pages * page;
            s.processes += 1;
        }
    }
    s
}

/// The enforcement state of one run.
#[derive(Debug)]
pub struct Watch {
    limits: Limits,
    cpus: u32,
    /// Whether a cgroup enforces `max_processes` (then only refusals count).
    cgroup_pids: bool,
    last_cpu: Duration,
    last_life: Instant,
    next: Option<Instant>,
    /// The highest readings seen.
    pub peak: Sample,
}

impl Watch {
    /// Starts watching at `now`.
    pub fn new(limits: Limits, cgroup_pids: bool, now: Instant) -> Watch {
        // Only the CPU-time limit needs it, and finding it out reads the
        // cgroup's CPU quota (std's available_parallelism).
        let cpus = if limits.cpu_time.is_some() {
            std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
        } else {
            1
        };
        let next = if limits.is_empty() { None } else { Some(now) };
        Watch {
            limits,
            cpus,
            cgroup_pids,
            last_cpu: Duration::ZERO,
            last_life: now,
            next,
            peak: Sample::default(),
        }
    }

    /// When the tree should next be looked at.
    pub fn deadline(&self) -> Option<Instant> {
        self.next
    }

    /// Output counts as a sign of life for the idle limit.
    pub fn output_seen(&mut self, now: Instant) {
        self.last_life = now;
    }

    /// Looks at the tree if a look is due, and says which limit it broke.
    pub fn check(&mut self, tree: &Tree, now: Instant) -> Option<Reason> {
        if self.next.is_none_or(|t| now < t) {
            return None;
        }
        let s = sample(tree);
        self.peak.cpu = self.peak.cpu.max(s.cpu);
        self.peak.memory = self.peak.memory.max(s.memory);
        self.peak.processes = self.peak.processes.max(s.processes);
        self.peak.pids_limit_hits = s.pids_limit_hits;
        if s.cpu > self.last_cpu {
            self.last_cpu = s.cpu;
            self.last_life = now;
        }
        let mut wait = MAX_POLL * 10;
        if let Some(budget) = self.limits.cpu_time {
            if s.cpu >= budget {
                return Some(self.stop(Reason::CpuTime));
            }
            wait = wait.min((budget - s.cpu) / self.cpus);
        }
        if let Some(limit) = self.limits.memory {
            if s.memory > limit {
                return Some(self.stop(Reason::Memory));
            }
            wait = wait.min(closeness(s.memory, limit));
        }
        if let Some(limit) = self.limits.max_processes {
            let broke = if self.cgroup_pids {
                s.pids_limit_hits > 0
            } else {
                s.processes > limit
            };
            if broke {
                return Some(self.stop(Reason::MaxProcesses));
            }
            wait = wait.min(closeness(s.processes, limit));
        }
        if let Some(idle) = self.limits.idle {
            let quiet = now.duration_since(self.last_life);
            if quiet >= idle {
                return Some(self.stop(Reason::Idle));
            }
            wait = wait.min((idle / 4).min(idle - quiet));
        }
        self.next = Some(now + wait.max(MIN_POLL));
        None
    }

    fn stop(&mut self, reason: Reason) -> Reason {
        self.next = None;
        reason
    }
}

/// How soon to look again at a reading `used` of `limit`: [`MAX_POLL`] when
/// far below, [`MIN_POLL`] at the limit.
fn closeness(used: u64, limit: u64) -> Duration {
    let room = limit.saturating_sub(used) as f64 / limit.max(1) as f64;
    MIN_POLL + (MAX_POLL - MIN_POLL).mul_f64(room.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closer_to_the_limit_means_sooner() {
        assert_eq!(closeness(0, 100), MAX_POLL);
        assert_eq!(closeness(100, 100), MIN_POLL);
        assert_eq!(closeness(500, 100), MIN_POLL);
        assert!(closeness(90, 100) < closeness(10, 100));
    }

    #[test]
    fn no_limits_no_timer() {
        let w = Watch::new(Limits::default(), false, Instant::now());
        assert_eq!(w.deadline(), None);
    }
}
