//! Typed limits, and the one place where they become kernel file writes
//! (and where kernel files are read back into the same syntax).
//!
//! Keys and value syntax follow MuonTrap 2 and the v2 files
//! (`Documentation/admin-guide/cgroup-v2.rst`). On v1
//! (`Documentation/admin-guide/cgroup-v1/`) they are translated:
//!
//! | key               | v2 file             | v1 file(s)                                          |
//! |-------------------|---------------------|-----------------------------------------------------|
//! | `memory_max`      | `memory.max`        | `memory.limit_in_bytes` + `memory.memsw.limit_in_bytes` (same value) |
//! | `memory_high`     | `memory.high`       | `memory.soft_limit_in_bytes`                        |
//! | `memory_swap_max` | `memory.swap.max`   | `memory.memsw.limit_in_bytes` = max + swap (needs `memory_max`) |
//! | `memory_oom_group`| `memory.oom.group`  | unsupported                                         |
//! | `memory_min`      | `memory.min`        | unsupported                                         |
//! | `memory_low`      | `memory.low`        | unsupported                                         |
//! | `cpu_max`         | `cpu.max`           | `cpu.cfs_period_us` + `cpu.cfs_quota_us` (`-1` = max) |
//! | `cpu_weight`      | `cpu.weight`        | `cpu.shares` (see [`weight_to_shares`])             |
//! | `cpu_idle`        | `cpu.idle`          | `cpu.idle` (kernel 5.15+)                           |
//! | `pids_max`        | `pids.max`          | `pids.max`                                          |
//! | `io_weight`       | `io.weight`         | unsupported (`blkio.weight` went with CFQ)          |
//! | `cpuset_cpus`     | `cpuset.cpus`       | `cpuset.cpus`                                       |
//! | `cpuset_mems`     | `cpuset.mems`       | `cpuset.mems`                                       |

use std::fmt;

use crate::error::{Error, Result};

/// A limit that can also be lifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Max {
    /// No limit (`max` on v2, `-1` on v1).
    Unlimited,
    /// A limit, in the key's unit (bytes, microseconds, processes).
    Limit(u64),
}

impl Max {
    /// Parses `"max"` or a decimal number.
    pub fn parse(s: &str) -> Option<Max> {
        match s.trim() {
            "max" => Some(Max::Unlimited),
            n => n.parse().ok().map(Max::Limit),
        }
    }

    fn v1(self) -> String {
        match self {
            Max::Unlimited => "-1".into(),
            Max::Limit(n) => n.to_string(),
        }
    }
}

impl fmt::Display for Max {
    /// The v2 syntax: `max` or the number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Max::Unlimited => f.write_str("max"),
            Max::Limit(n) => write!(f, "{n}"),
        }
    }
}

/// `cpu_max`: at most `quota_us` of CPU time every `period_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuMax {
    /// CPU time per period, in microseconds ([`CpuMax::MIN_QUOTA_US`] to
    /// [`CpuMax::MAX_QUOTA_US`]), or unlimited.
    pub quota_us: Max,
    /// The period, in microseconds (1000 to 1_000_000; the kernel's default is 100_000).
    pub period_us: u64,
}

impl CpuMax {
    /// The smallest quota the kernel takes: 1 ms (`min_cfs_quota_period`
    /// in `kernel/sched/core.c`).
    pub const MIN_QUOTA_US: u64 = 1000;
    /// The largest quota the kernel takes: `max_cfs_runtime`, the 44 bits
    /// of bandwidth left by `BW_SHIFT` (`kernel/sched/core.c`), about 203
    /// days per period. A larger value is `EINVAL` from `cpu.max`.
    pub const MAX_QUOTA_US: u64 = (1 << 44) - 1;
    /// The period range, 1 ms to 1 s (`{min,max}_cfs_quota_period`).
    pub const PERIOD_US: std::ops::RangeInclusive<u64> = 1000..=1_000_000;
}

/// The largest `pids_max` the kernel takes: `PID_MAX_LIMIT` on 64-bit
/// (`include/linux/threads.h`; `kernel/cgroup/pids.c` refuses anything
/// from `PIDS_MAX = PID_MAX_LIMIT + 1` up). No tree holds more tasks.
pub const PIDS_MAX_LIMIT: u64 = 4 * 1024 * 1024;

/// A controller that limits need, by its v2 name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Controller {
    /// `cpu` (v1 also `cpuacct` for accounting).
    Cpu,
    /// `cpuset`.
    Cpuset,
    /// `io` (v1 `blkio`).
    Io,
    /// `memory`.
    Memory,
    /// `pids`.
    Pids,
}

impl Controller {
    /// The v2 name (`"io"`).
    pub fn name(self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Cpuset => "cpuset",
            Controller::Io => "io",
            Controller::Memory => "memory",
            Controller::Pids => "pids",
        }
    }

    /// The v1 name (`"blkio"` for io).
    pub fn v1_name(self) -> &'static str {
        match self {
            Controller::Io => "blkio",
            c => c.name(),
        }
    }
}

/// The limit keys, in the order they are applied.
pub const KEYS: [&str; 13] = [
    "cpuset_cpus",
    "cpuset_mems",
    "memory_max",
    "memory_high",
    "memory_swap_max",
    "memory_oom_group",
    "memory_min",
    "memory_low",
    "cpu_max",
    "cpu_weight",
    "cpu_idle",
    "pids_max",
    "io_weight",
];

/// The typed `:cgroup` map. `None` leaves a setting as the kernel has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Hard memory limit in bytes.
    pub memory_max: Option<Max>,
    /// Memory throttling threshold in bytes.
    pub memory_high: Option<Max>,
    /// Swap limit in bytes.
    pub memory_swap_max: Option<Max>,
    /// Kill the whole group on OOM.
    pub memory_oom_group: Option<bool>,
    /// Protected memory in bytes.
    pub memory_min: Option<Max>,
    /// Best-effort protected memory in bytes.
    pub memory_low: Option<Max>,
    /// CPU bandwidth.
    pub cpu_max: Option<CpuMax>,
    /// CPU weight, 1..=10000 (default 100).
    pub cpu_weight: Option<u64>,
    /// Schedule as SCHED_IDLE.
    pub cpu_idle: Option<bool>,
    /// Maximum number of tasks.
    pub pids_max: Option<Max>,
    /// IO weight, 1..=10000 (default 100).
    pub io_weight: Option<u64>,
    /// CPUs, as a list like `0-3,6`.
    pub cpuset_cpus: Option<String>,
    /// Memory nodes, as a list like `0`.
    pub cpuset_mems: Option<String>,
}

impl Limits {
    /// True if no limit is set.
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// The controllers these limits need, sorted and without duplicates.
    pub fn controllers_needed(&self) -> Vec<Controller> {
        let mut out: Vec<Controller> = self
            .to_pairs()
            .iter()
            .map(|(key, _)| controller_of(key))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Sets one key from its text form (the v2 file syntax): sizes and
    /// `pids_max` as a number or `max`; `cpu_max` as `max`, `QUOTA`,
    /// `max PERIOD` or `QUOTA PERIOD`; booleans as `0`/`1`/`true`/`false`;
    /// weights as a number; cpusets as a list like `0-3,6`.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for an unknown key or a value that does not parse
    /// or is out of range.
    pub fn set_str(&mut self, key: &str, value: &str) -> Result<()> {
        let bad = |reason: &str| Error::Invalid {
            what: "cgroup limit",
            value: format!("{key}={value}"),
            reason: reason.to_owned(),
        };
        let max = || Max::parse(value).ok_or_else(|| bad("expected a number or `max`"));
        let flag = || match value.trim() {
            "1" | "true" => Ok(true),
            "0" | "false" => Ok(false),
            _ => Err(bad("expected 0, 1, true or false")),
        };
        let weight = || {
            let w = value.trim().parse().map_err(|_| bad("expected a number"))?;
            check_weight(key, w).map(|()| w)
        };
        let list = || check_list(key, value.trim()).map(|()| value.trim().to_owned());
        match key {
            "memory_max" => self.memory_max = Some(max()?),
            "memory_high" => self.memory_high = Some(max()?),
            "memory_swap_max" => self.memory_swap_max = Some(max()?),
            "memory_oom_group" => self.memory_oom_group = Some(flag()?),
            "memory_min" => self.memory_min = Some(max()?),
            "memory_low" => self.memory_low = Some(max()?),
            "cpu_max" => {
                let mut parts = value.split_whitespace();
                let quota = parts.next().and_then(Max::parse);
                let period = parts.next().map_or(Some(100_000), |p| p.parse().ok());
                let (Some(quota_us), Some(period_us), None) = (quota, period, parts.next()) else {
                    return Err(bad(
                        "expected `max`, `QUOTA`, `max PERIOD` or `QUOTA PERIOD`",
                    ));
                };
                let cpu = CpuMax {
                    quota_us,
                    period_us,
                };
                check_cpu_max(&cpu)?;
                self.cpu_max = Some(cpu);
            }
            "cpu_weight" => self.cpu_weight = Some(weight()?),
            "cpu_idle" => self.cpu_idle = Some(flag()?),
            "pids_max" => {
                let n = max()?;
                if matches!(n, Max::Limit(n) if n > PIDS_MAX_LIMIT) {
                    return Err(bad(&format!(
                        "at most {PIDS_MAX_LIMIT} (the kernel's PID_MAX_LIMIT), or `max`"
                    )));
                }
                self.pids_max = Some(n);
            }
            "io_weight" => self.io_weight = Some(weight()?),
            "cpuset_cpus" => self.cpuset_cpus = Some(list()?),
            "cpuset_mems" => self.cpuset_mems = Some(list()?),
            _ => return Err(bad("unknown key")),
        }
        Ok(())
    }

    /// Every set key with its value in the syntax [`Limits::set_str`]
    /// accepts, in [`KEYS`] order.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let flag = |b: bool| if b { "1" } else { "0" }.to_owned();
        let cpu = |c: &CpuMax| format!("{} {}", c.quota_us, c.period_us);
        let all = [
            ("cpuset_cpus", self.cpuset_cpus.clone()),
            ("cpuset_mems", self.cpuset_mems.clone()),
            ("memory_max", self.memory_max.map(|m| m.to_string())),
            ("memory_high", self.memory_high.map(|m| m.to_string())),
            (
                "memory_swap_max",
                self.memory_swap_max.map(|m| m.to_string()),
            ),
            ("memory_oom_group", self.memory_oom_group.map(flag)),
            ("memory_min", self.memory_min.map(|m| m.to_string())),
            ("memory_low", self.memory_low.map(|m| m.to_string())),
            ("cpu_max", self.cpu_max.as_ref().map(cpu)),
            ("cpu_weight", self.cpu_weight.map(|w| w.to_string())),
            ("cpu_idle", self.cpu_idle.map(flag)),
            ("pids_max", self.pids_max.map(|m| m.to_string())),
            ("io_weight", self.io_weight.map(|w| w.to_string())),
        ];
        all.into_iter().filter_map(|(k, v)| Some((k, v?))).collect()
    }
}

/// The controller a limit key belongs to.
fn controller_of(key: &str) -> Controller {
    match key.split('_').next() {
        Some("memory") => Controller::Memory,
        Some("cpu") => Controller::Cpu,
        Some("cpuset") => Controller::Cpuset,
        Some("pids") => Controller::Pids,
        _ => Controller::Io,
    }
}

/// Converts a v2 `cpu.weight` (1..=10000, default 100) to v1 `cpu.shares`
/// (2..=262144, default 1024), linearly as systemd does:
/// `shares = round(weight * 1024 / 100)`, clamped to the v1 range.
pub fn weight_to_shares(weight: u64) -> u64 {
    ((weight.saturating_mul(1024) + 50) / 100).clamp(2, 262_144)
}

/// The inverse of [`weight_to_shares`]: `round(shares * 100 / 1024)`,
/// clamped to 1..=10000.
pub fn shares_to_weight(shares: u64) -> u64 {
    ((shares.saturating_mul(100) + 512) / 1024).clamp(1, 10_000)
}

fn check_weight(key: &str, w: u64) -> Result<()> {
    if (1..=10_000).contains(&w) {
        Ok(())
    } else {
        Err(Error::invalid(
            "cgroup limit",
            &format!("{key}={w}"),
            "weights run from 1 to 10000",
        ))
    }
}

fn check_cpu_max(c: &CpuMax) -> Result<()> {
    let quota_ok = match c.quota_us {
        Max::Unlimited => true,
        Max::Limit(q) => (CpuMax::MIN_QUOTA_US..=CpuMax::MAX_QUOTA_US).contains(&q),
    };
    if quota_ok && CpuMax::PERIOD_US.contains(&c.period_us) {
        return Ok(());
    }
    Err(Error::invalid(
        "cgroup limit",
        &format!("cpu_max={} {}", c.quota_us, c.period_us),
        format!(
            "quota must be {} to {} us and period {} to {} us",
            CpuMax::MIN_QUOTA_US,
            CpuMax::MAX_QUOTA_US,
            CpuMax::PERIOD_US.start(),
            CpuMax::PERIOD_US.end()
        ),
    ))
}

/// A cpuset list: `N`, `N-M`, comma separated.
fn check_list(key: &str, s: &str) -> Result<()> {
    let number = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
    let ok = !s.is_empty()
        && s.split(',').all(|r| match r.split_once('-') {
            Some((a, b)) => number(a) && number(b),
            None => number(r),
        });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "cgroup limit",
            &format!("{key}={s}"),
            "expected a list like 0-3,6",
        ))
    }
}

mod files;

pub(crate) use files::{apply, get, plan, Api};

#[cfg(test)]
mod tests;
