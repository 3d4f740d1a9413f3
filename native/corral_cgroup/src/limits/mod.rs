//! Typed limits, and the one place where they become kernel file writes
//! (and where kernel files are read back into the same syntax).
//!
//! Keys and value syntax follow MuonTrap 2 and the v2 files
//! (`Documentation/admin-guide/cgroup-v2.rst`). Each key's name,
//! controller, [`Kind`] and files are written down once, in [`Key`]; the
//! `files` module turns values into writes. On v1
//! (`Documentation/admin-guide/cgroup-v1/`) they are translated:
//!
//! | key               | kind     | v2 file             | v1 file(s)                                          |
//! |-------------------|----------|---------------------|-----------------------------------------------------|
//! | `memory_max`      | size     | `memory.max`        | `memory.limit_in_bytes` + `memory.memsw.limit_in_bytes` (same value) |
//! | `memory_high`     | size     | `memory.high`       | `memory.soft_limit_in_bytes`                        |
//! | `memory_swap_max` | size     | `memory.swap.max`   | `memory.memsw.limit_in_bytes` = max + swap (needs `memory_max`) |
//! | `memory_oom_group`| flag     | `memory.oom.group`  | unsupported                                         |
//! | `memory_min`      | size     | `memory.min`        | unsupported                                         |
//! | `memory_low`      | size     | `memory.low`        | unsupported                                         |
//! | `cpu_max`         | cpu_max  | `cpu.max`           | `cpu.cfs_period_us` + `cpu.cfs_quota_us` (`-1` = max) |
//! | `cpu_weight`      | weight   | `cpu.weight`        | `cpu.shares` (see [`weight_to_shares`])             |
//! | `cpu_idle`        | flag     | `cpu.idle`          | `cpu.idle` (kernel 5.15+)                           |
//! | `pids_max`        | count    | `pids.max`          | `pids.max`                                          |
//! | `io_weight`       | weight   | `io.weight` (`default N`) | unsupported (`blkio.weight` went with CFQ)    |
//! | `cpuset_cpus`     | list     | `cpuset.cpus`       | `cpuset.cpus`                                       |
//! | `cpuset_mems`     | list     | `cpuset.mems`       | `cpuset.mems`                                       |

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

/// One key's value, typed by its [`Kind`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// [`Kind::Size`] and [`Kind::Count`].
    Max(Max),
    /// [`Kind::Flag`].
    Flag(bool),
    /// [`Kind::CpuMax`].
    CpuMax(CpuMax),
    /// [`Kind::Weight`].
    Weight(u64),
    /// [`Kind::List`].
    List(String),
}

impl fmt::Display for Value {
    /// The syntax [`Limits::set_str`] accepts (and v2 files hold, but for
    /// `io.weight`'s `default`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Max(m) => write!(f, "{m}"),
            Value::Flag(b) => f.write_str(if *b { "1" } else { "0" }),
            Value::CpuMax(c) => write!(f, "{} {}", c.quota_us, c.period_us),
            Value::Weight(w) => write!(f, "{w}"),
            Value::List(s) => f.write_str(s),
        }
    }
}

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

    /// The value of `key`, `None` if it is not set.
    pub fn get(&self, key: Key) -> Option<Value> {
        let max = |m: Option<Max>| m.map(Value::Max);
        let flag = |b: Option<bool>| b.map(Value::Flag);
        let weight = |w: Option<u64>| w.map(Value::Weight);
        let list = |s: &Option<String>| s.clone().map(Value::List);
        match key {
            Key::CpusetCpus => list(&self.cpuset_cpus),
            Key::CpusetMems => list(&self.cpuset_mems),
            Key::MemoryMax => max(self.memory_max),
            Key::MemoryHigh => max(self.memory_high),
            Key::MemorySwapMax => max(self.memory_swap_max),
            Key::MemoryOomGroup => flag(self.memory_oom_group),
            Key::MemoryMin => max(self.memory_min),
            Key::MemoryLow => max(self.memory_low),
            Key::CpuMax => self.cpu_max.map(Value::CpuMax),
            Key::CpuWeight => weight(self.cpu_weight),
            Key::CpuIdle => flag(self.cpu_idle),
            Key::PidsMax => max(self.pids_max),
            Key::IoWeight => weight(self.io_weight),
        }
    }

    /// Sets `key` to `value`.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] if `value` is not of the key's [`Kind`] or is out
    /// of range ([`Key::check`]); the limits are then unchanged.
    pub fn set(&mut self, key: Key, value: Value) -> Result<()> {
        key.check(&value)?;
        match (key, value) {
            (Key::CpusetCpus, Value::List(s)) => self.cpuset_cpus = Some(s),
            (Key::CpusetMems, Value::List(s)) => self.cpuset_mems = Some(s),
            (Key::MemoryMax, Value::Max(m)) => self.memory_max = Some(m),
            (Key::MemoryHigh, Value::Max(m)) => self.memory_high = Some(m),
            (Key::MemorySwapMax, Value::Max(m)) => self.memory_swap_max = Some(m),
            (Key::MemoryOomGroup, Value::Flag(b)) => self.memory_oom_group = Some(b),
            (Key::MemoryMin, Value::Max(m)) => self.memory_min = Some(m),
            (Key::MemoryLow, Value::Max(m)) => self.memory_low = Some(m),
            (Key::CpuMax, Value::CpuMax(c)) => self.cpu_max = Some(c),
            (Key::CpuWeight, Value::Weight(w)) => self.cpu_weight = Some(w),
            (Key::CpuIdle, Value::Flag(b)) => self.cpu_idle = Some(b),
            (Key::PidsMax, Value::Max(m)) => self.pids_max = Some(m),
            (Key::IoWeight, Value::Weight(w)) => self.io_weight = Some(w),
            // `check` refuses a value of another kind, so this is a field
            // whose type disagrees with its key's kind in `Key::spec`.
            (key, value) => {
                return Err(Error::invalid(
                    "cgroup limit",
                    &format!("{key}={value}"),
                    format!("the field does not hold a {:?} value", key.kind()),
                ))
            }
        }
        Ok(())
    }

    /// Every set key with its value, in [`Key::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Key, Value)> + '_ {
        Key::ALL
            .into_iter()
            .filter_map(|key| Some((key, self.get(key)?)))
    }

    /// The controllers these limits need, sorted and without duplicates.
    pub fn controllers_needed(&self) -> Vec<Controller> {
        let mut out: Vec<Controller> = self.iter().map(|(key, _)| key.controller()).collect();
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
        let Some(k) = Key::parse(key) else {
            return Err(Error::Invalid {
                what: "cgroup limit",
                value: format!("{key}={value}"),
                reason: "unknown key".to_owned(),
            });
        };
        self.set(k, k.value(value)?)
    }

    /// Every set key with its value in the syntax [`Limits::set_str`]
    /// accepts, in [`KEYS`] order.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        self.iter()
            .map(|(key, value)| (key.name(), value.to_string()))
            .collect()
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

mod files;
mod key;

pub(crate) use files::{apply, get, plan, Api};
pub use key::{Key, Kind, KEYS};

#[cfg(test)]
mod tests;
