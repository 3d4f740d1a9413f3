//! The limit keys. Each key's name, controller, kind and files are written
//! down once, in [`Key::spec`]; parsing, printing, checking, translation to
//! kernel files and the NIF's terms all follow from it.

use std::fmt;

use super::{Controller, CpuMax, Max, Value, PIDS_MAX_LIMIT};
use crate::error::{Error, Result};

/// A limit key, such as `memory_max`. [`Key::ALL`] lists them in the order
/// they are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// `cpuset_cpus`: the CPUs the tree may run on.
    CpusetCpus,
    /// `cpuset_mems`: the memory nodes the tree may allocate from.
    CpusetMems,
    /// `memory_max`: the hard memory limit.
    MemoryMax,
    /// `memory_high`: the memory throttling threshold.
    MemoryHigh,
    /// `memory_swap_max`: the swap limit.
    MemorySwapMax,
    /// `memory_oom_group`: kill the whole group on OOM.
    MemoryOomGroup,
    /// `memory_min`: protected memory.
    MemoryMin,
    /// `memory_low`: best-effort protected memory.
    MemoryLow,
    /// `cpu_max`: CPU bandwidth.
    CpuMax,
    /// `cpu_weight`: CPU weight.
    CpuWeight,
    /// `cpu_idle`: schedule as `SCHED_IDLE`.
    CpuIdle,
    /// `pids_max`: the most tasks.
    PidsMax,
    /// `io_weight`: IO weight.
    IoWeight,
}

/// What a key's value is: how it parses, prints and is checked, and which
/// [`Value`] variant holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bytes, or `max` ([`Value::Max`]); `-1` means `max` in v1 files.
    Size,
    /// A number of tasks up to [`PIDS_MAX_LIMIT`], or `max` ([`Value::Max`]).
    Count,
    /// `0`/`1`, also read as `false`/`true` ([`Value::Flag`]).
    Flag,
    /// `QUOTA PERIOD` in microseconds, `max` for no quota ([`Value::CpuMax`]).
    CpuMax,
    /// 1 to 10000, default 100 ([`Value::Weight`]).
    Weight,
    /// A list like `0-3,6` ([`Value::List`]).
    List,
}

/// Everything known about one key.
struct Spec {
    name: &'static str,
    controller: Controller,
    kind: Kind,
    v2_file: &'static str,
    /// The v1 file that holds the key, `None` if v1 has no equivalent.
    /// `memory_max` also writes `memory_swap_max`'s file and `cpu_max` also
    /// the CFS period; `limits::files` owns those pairs.
    v1_file: Option<&'static str>,
}

impl Key {
    /// Every key, in the order limits are applied: cpusets first (a
    /// cpuset must be populated before anything runs in it), then memory,
    /// CPU, pids and IO.
    pub const ALL: [Key; 13] = [
        Key::CpusetCpus,
        Key::CpusetMems,
        Key::MemoryMax,
        Key::MemoryHigh,
        Key::MemorySwapMax,
        Key::MemoryOomGroup,
        Key::MemoryMin,
        Key::MemoryLow,
        Key::CpuMax,
        Key::CpuWeight,
        Key::CpuIdle,
        Key::PidsMax,
        Key::IoWeight,
    ];

    /// The one table of keys (`Documentation/admin-guide/cgroup-v2.rst`,
    /// `Documentation/admin-guide/cgroup-v1/`).
    #[rustfmt::skip]
    const fn spec(self) -> Spec {
        use Controller::*;
        const fn s(
            name: &'static str,
            controller: Controller,
            kind: Kind,
            v2_file: &'static str,
            v1_file: Option<&'static str>,
        ) -> Spec {
            Spec {
                name,
                controller,
                kind,
                v2_file,
                v1_file,
            }
        }
        match self {
            Key::CpusetCpus => s("cpuset_cpus", Cpuset, Kind::List, "cpuset.cpus", Some("cpuset.cpus")),
            Key::CpusetMems => s("cpuset_mems", Cpuset, Kind::List, "cpuset.mems", Some("cpuset.mems")),
            Key::MemoryMax => s("memory_max", Memory, Kind::Size, "memory.max", Some("memory.limit_in_bytes")),
            Key::MemoryHigh => s("memory_high", Memory, Kind::Size, "memory.high", Some("memory.soft_limit_in_bytes")),
            Key::MemorySwapMax => s("memory_swap_max", Memory, Kind::Size, "memory.swap.max", Some("memory.memsw.limit_in_bytes")),
            Key::MemoryOomGroup => s("memory_oom_group", Memory, Kind::Flag, "memory.oom.group", None),
            Key::MemoryMin => s("memory_min", Memory, Kind::Size, "memory.min", None),
            Key::MemoryLow => s("memory_low", Memory, Kind::Size, "memory.low", None),
            Key::CpuMax => s("cpu_max", Cpu, Kind::CpuMax, "cpu.max", Some("cpu.cfs_quota_us")),
            Key::CpuWeight => s("cpu_weight", Cpu, Kind::Weight, "cpu.weight", Some("cpu.shares")),
            Key::CpuIdle => s("cpu_idle", Cpu, Kind::Flag, "cpu.idle", Some("cpu.idle")),
            Key::PidsMax => s("pids_max", Pids, Kind::Count, "pids.max", Some("pids.max")),
            // blkio.weight went with the CFQ scheduler.
            Key::IoWeight => s("io_weight", Io, Kind::Weight, "io.weight", None),
        }
    }

    /// The key's name, as users write it (`"memory_max"`).
    pub const fn name(self) -> &'static str {
        self.spec().name
    }

    /// The key named `name`, if there is one.
    pub fn parse(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The controller whose files hold the key.
    pub const fn controller(self) -> Controller {
        self.spec().controller
    }

    /// What the key's value is.
    pub const fn kind(self) -> Kind {
        self.spec().kind
    }

    /// The key's v2 file (`memory.max`).
    pub const fn v2_file(self) -> &'static str {
        self.spec().v2_file
    }

    /// The key's v1 file (`memory.limit_in_bytes`), or `None` if v1 has no
    /// equivalent: setting or reading the key there is
    /// [`Error::Unsupported`].
    pub const fn v1_file(self) -> Option<&'static str> {
        self.spec().v1_file
    }

    /// Parses `text`, the syntax of the v2 file (see
    /// [`super::Limits::set_str`]), into a checked value of this key's kind.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] naming the key and the value if `text` does not
    /// parse or is out of range.
    pub fn value(self, text: &str) -> Result<Value> {
        let bad = |reason: &str| Error::Invalid {
            what: "cgroup limit",
            value: format!("{self}={text}"),
            reason: reason.to_owned(),
        };
        let max = || Max::parse(text).ok_or_else(|| bad("expected a number or `max`"));
        let value = match self.kind() {
            Kind::Size | Kind::Count => Value::Max(max()?),
            Kind::Flag => Value::Flag(match text.trim() {
                "1" | "true" => true,
                "0" | "false" => false,
                _ => return Err(bad("expected 0, 1, true or false")),
            }),
            Kind::CpuMax => {
                let mut parts = text.split_whitespace();
                let quota = parts.next().and_then(Max::parse);
                let period = parts.next().map_or(Some(100_000), |p| p.parse().ok());
                let (Some(quota_us), Some(period_us), None) = (quota, period, parts.next()) else {
                    return Err(bad(
                        "expected `max`, `QUOTA`, `max PERIOD` or `QUOTA PERIOD`",
                    ));
                };
                Value::CpuMax(CpuMax {
                    quota_us,
                    period_us,
                })
            }
            Kind::Weight => {
                Value::Weight(text.trim().parse().map_err(|_| bad("expected a number"))?)
            }
            Kind::List => Value::List(text.trim().to_owned()),
        };
        self.check(&value)?;
        Ok(value)
    }

    /// Checks that `value` is of this key's kind and in its range.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] naming the key and the value.
    pub fn check(self, value: &Value) -> Result<()> {
        let bad = |reason: String| {
            Err(Error::invalid(
                "cgroup limit",
                &format!("{self}={value}"),
                reason,
            ))
        };
        match (self.kind(), value) {
            (Kind::Size, Value::Max(_)) | (Kind::Flag, Value::Flag(_)) => Ok(()),
            (Kind::Count, Value::Max(n)) => match n {
                Max::Limit(n) if *n > PIDS_MAX_LIMIT => bad(format!(
                    "at most {PIDS_MAX_LIMIT} (the kernel's PID_MAX_LIMIT), or `max`"
                )),
                _ => Ok(()),
            },
            (Kind::CpuMax, Value::CpuMax(c)) => {
                let quota_ok = match c.quota_us {
                    Max::Unlimited => true,
                    Max::Limit(q) => (CpuMax::MIN_QUOTA_US..=CpuMax::MAX_QUOTA_US).contains(&q),
                };
                if quota_ok && CpuMax::PERIOD_US.contains(&c.period_us) {
                    return Ok(());
                }
                bad(format!(
                    "quota must be {} to {} us and period {} to {} us",
                    CpuMax::MIN_QUOTA_US,
                    CpuMax::MAX_QUOTA_US,
                    CpuMax::PERIOD_US.start(),
                    CpuMax::PERIOD_US.end()
                ))
            }
            (Kind::Weight, Value::Weight(w)) => match w {
                1..=10_000 => Ok(()),
                _ => bad("weights run from 1 to 10000".into()),
            },
            (Kind::List, Value::List(s)) => {
                let number = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
                let ok = !s.is_empty()
                    && s.split(',').all(|r| match r.split_once('-') {
                        Some((a, b)) => number(a) && number(b),
                        None => number(r),
                    });
                if ok {
                    Ok(())
                } else {
                    bad("expected a list like 0-3,6".into())
                }
            }
            (kind, _) => bad(format!("expected a {kind:?} value")),
        }
    }
}

impl fmt::Display for Key {
    /// The name (`memory_max`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The key names, in [`Key::ALL`] order.
pub const KEYS: [&str; 13] = {
    let mut names = [""; 13];
    let mut i = 0;
    while i < names.len() {
        names[i] = Key::ALL[i].name();
        i += 1;
    }
    names
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;

    #[test]
    fn every_key_round_trips_its_name() {
        for key in Key::ALL {
            assert_eq!(Key::parse(key.name()), Some(key));
            assert_eq!(key.to_string(), key.name());
        }
        assert_eq!(Key::parse("memory"), None);
        assert_eq!(Key::parse("Memory_max"), None);
        assert_eq!(KEYS.map(|n| Key::parse(n).unwrap()), Key::ALL);
    }

    #[test]
    fn keys_are_listed_once_each() {
        let mut all = Key::ALL.to_vec();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), Key::ALL.len());
        let mut names = KEYS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KEYS.len());
    }

    #[test]
    fn every_key_has_a_controller_and_a_v2_file_of_it() {
        for key in Key::ALL {
            let (controller, file) = (key.controller().name(), key.v2_file());
            assert_eq!(
                file.split_once('.').map(|(c, _)| c),
                Some(controller),
                "{key}"
            );
            // MuonTrap's key is the v2 file name with `_` for `.`.
            assert_eq!(file.replace('.', "_"), key.name(), "{key}");
            if let Some(v1) = key.v1_file() {
                assert!(v1.starts_with(&format!("{}.", key.controller().v1_name())));
            }
        }
    }

    #[test]
    fn v1_unsupported_keys_are_the_documented_four() {
        let unsupported: Vec<&str> = Key::ALL
            .into_iter()
            .filter(|k| k.v1_file().is_none())
            .map(Key::name)
            .collect();
        assert_eq!(
            unsupported,
            ["memory_oom_group", "memory_min", "memory_low", "io_weight"]
        );
    }

    #[test]
    fn values_parse_by_kind_and_print_back() {
        for (key, text, value) in [
            (Key::MemoryMax, "max", Value::Max(Max::Unlimited)),
            (Key::PidsMax, "20", Value::Max(Max::Limit(20))),
            (Key::CpuIdle, "true", Value::Flag(true)),
            (Key::CpuWeight, "100", Value::Weight(100)),
            (Key::CpusetCpus, " 0-3,6\n", Value::List("0-3,6".into())),
            (
                Key::CpuMax,
                "max 50000",
                Value::CpuMax(CpuMax {
                    quota_us: Max::Unlimited,
                    period_us: 50_000,
                }),
            ),
        ] {
            let parsed = key.value(text).unwrap();
            assert_eq!(parsed, value, "{key}");
            assert_eq!(key.value(&parsed.to_string()).unwrap(), value, "{key}");
        }
    }

    /// `Limits::get` and `set` map each key to its own field, of its kind.
    #[test]
    fn every_key_has_its_own_field_in_limits() {
        for key in Key::ALL {
            let value = match key.kind() {
                Kind::Size => Value::Max(Max::Limit(4096)),
                Kind::Count => Value::Max(Max::Limit(20)),
                Kind::Flag => Value::Flag(true),
                Kind::CpuMax => Value::CpuMax(CpuMax {
                    quota_us: Max::Limit(50_000),
                    period_us: 100_000,
                }),
                Kind::Weight => Value::Weight(200),
                Kind::List => Value::List("0".into()),
            };
            let mut l = Limits::default();
            l.set(key, value.clone()).unwrap();
            assert_eq!(l.iter().collect::<Vec<_>>(), [(key, value.clone())]);
            assert_eq!(l.to_pairs(), [(key.name(), value.to_string())]);
            assert_eq!(l.controllers_needed(), [key.controller()]);
        }
    }

    #[test]
    fn values_of_another_kind_are_refused_naming_the_key() {
        for (key, value) in [
            (Key::MemoryMax, Value::Flag(true)),
            (Key::CpuIdle, Value::Max(Max::Limit(1))),
            (Key::IoWeight, Value::List("1".into())),
            (Key::CpusetMems, Value::Weight(1)),
        ] {
            let err = key.check(&value).unwrap_err();
            assert!(err.to_string().contains(key.name()), "{err}");
        }
    }
}
