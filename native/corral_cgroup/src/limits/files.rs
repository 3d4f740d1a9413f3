//! The one place where typed [`Limits`] become kernel file writes, and
//! where kernel files are read back into the syntax of [`Limits::set_str`].
//! The table in the [`crate::limits`] docs summarises it.

use super::{
    check_cpu_max, check_list, check_weight, controller_of, shares_to_weight, weight_to_shares,
    Controller, CpuMax, Limits, Max, KEYS,
};
use crate::error::{Error, Result};
use crate::Layout;

/// Which file family to translate to: v2 files, or v1 files (legacy and
/// hybrid, where limits live in the v1 controllers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    V1,
    V2,
}

impl Api {
    pub(crate) fn of(layout: Layout) -> Api {
        match layout {
            Layout::Unified => Api::V2,
            Layout::Legacy | Layout::Hybrid => Api::V1,
        }
    }
}

/// One kernel file write, in the directory of `controller`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Write {
    pub controller: Controller,
    pub file: &'static str,
    pub value: String,
    /// Skip quietly if the file does not exist (v1 `memsw` without swap accounting).
    pub optional: bool,
}

/// Writes in order; a `Pair` is two files the kernel keeps ordered
/// (`limit <= memsw`, quota against period): written first-then-second, and
/// if the first is refused with `EINVAL`, second-then-first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    One(Write),
    Pair(Write, Write),
}

fn w(controller: Controller, file: &'static str, value: impl Into<String>) -> Write {
    Write {
        controller,
        file,
        value: value.into(),
        optional: false,
    }
}

/// Translates `limits` into kernel writes. This is the only place that
/// knows limit file names and value formats for writing.
pub(crate) fn plan(limits: &Limits, api: Api, layout: Layout) -> Result<Vec<Step>> {
    use Controller::*;
    if let Some(wt) = limits.cpu_weight {
        check_weight("cpu_weight", wt)?;
    }
    if let Some(wt) = limits.io_weight {
        check_weight("io_weight", wt)?;
    }
    if let Some(c) = &limits.cpu_max {
        check_cpu_max(c)?;
    }
    for (key, list) in [
        ("cpuset_cpus", &limits.cpuset_cpus),
        ("cpuset_mems", &limits.cpuset_mems),
    ] {
        if let Some(l) = list {
            check_list(key, l)?;
        }
    }
    let flag = |b: bool| if b { "1" } else { "0" };
    let unsupported = |key: &str| Error::Unsupported {
        key: key.to_owned(),
        layout,
    };
    let mut steps = Vec::new();
    let mut one = |wr: Write| steps.push(Step::One(wr));
    if api == Api::V2 {
        let l = limits;
        let cpu = |c: &CpuMax| format!("{} {}", c.quota_us, c.period_us);
        l.cpuset_cpus
            .iter()
            .for_each(|v| one(w(Cpuset, "cpuset.cpus", v)));
        l.cpuset_mems
            .iter()
            .for_each(|v| one(w(Cpuset, "cpuset.mems", v)));
        l.memory_max
            .iter()
            .for_each(|v| one(w(Memory, "memory.max", v.to_string())));
        l.memory_high
            .iter()
            .for_each(|v| one(w(Memory, "memory.high", v.to_string())));
        l.memory_swap_max
            .iter()
            .for_each(|v| one(w(Memory, "memory.swap.max", v.to_string())));
        l.memory_oom_group
            .iter()
            .for_each(|v| one(w(Memory, "memory.oom.group", flag(*v))));
        l.memory_min
            .iter()
            .for_each(|v| one(w(Memory, "memory.min", v.to_string())));
        l.memory_low
            .iter()
            .for_each(|v| one(w(Memory, "memory.low", v.to_string())));
        l.cpu_max
            .iter()
            .for_each(|v| one(w(Cpu, "cpu.max", cpu(v))));
        l.cpu_weight
            .iter()
            .for_each(|v| one(w(Cpu, "cpu.weight", v.to_string())));
        l.cpu_idle
            .iter()
            .for_each(|v| one(w(Cpu, "cpu.idle", flag(*v))));
        l.pids_max
            .iter()
            .for_each(|v| one(w(Pids, "pids.max", v.to_string())));
        l.io_weight
            .iter()
            .for_each(|v| one(w(Io, "io.weight", format!("default {v}"))));
        return Ok(steps);
    }
    for (key, set) in [
        ("memory_oom_group", limits.memory_oom_group.is_some()),
        ("memory_min", limits.memory_min.is_some()),
        ("memory_low", limits.memory_low.is_some()),
        ("io_weight", limits.io_weight.is_some()),
    ] {
        if set {
            return Err(unsupported(key));
        }
    }
    let l = limits;
    l.cpuset_cpus
        .iter()
        .for_each(|v| one(w(Cpuset, "cpuset.cpus", v)));
    l.cpuset_mems
        .iter()
        .for_each(|v| one(w(Cpuset, "cpuset.mems", v)));
    // memsw limits memory+swap, so with no swap_max it gets the same value
    // as the memory limit: swap cannot be used to escape memory_max.
    let memsw =
        match (l.memory_max, l.memory_swap_max) {
            (_, None) => l.memory_max,
            (Some(Max::Limit(m)), Some(Max::Limit(s))) => Some(Max::Limit(m.saturating_add(s))),
            (Some(_), Some(_)) => Some(Max::Unlimited),
            (None, Some(s)) => return Err(Error::invalid(
                "cgroup limit",
                &format!("memory_swap_max={s}"),
                "cgroup v1 limits memory and swap together, so memory_swap_max needs memory_max",
            )),
        };
    if let (Some(max), Some(memsw)) = (l.memory_max, memsw) {
        let mut sw = w(Memory, "memory.memsw.limit_in_bytes", memsw.v1());
        sw.optional = l.memory_swap_max.is_none();
        steps.push(Step::Pair(w(Memory, "memory.limit_in_bytes", max.v1()), sw));
    }
    let mut one = |wr: Write| steps.push(Step::One(wr));
    l.memory_high
        .iter()
        .for_each(|v| one(w(Memory, "memory.soft_limit_in_bytes", v.v1())));
    if let Some(c) = &l.cpu_max {
        let period = w(Cpu, "cpu.cfs_period_us", c.period_us.to_string());
        steps.push(Step::Pair(
            period,
            w(Cpu, "cpu.cfs_quota_us", c.quota_us.v1()),
        ));
    }
    let mut one = |wr: Write| steps.push(Step::One(wr));
    l.cpu_weight
        .iter()
        .for_each(|v| one(w(Cpu, "cpu.shares", weight_to_shares(*v).to_string())));
    l.cpu_idle
        .iter()
        .for_each(|v| one(w(Cpu, "cpu.idle", flag(*v))));
    l.pids_max
        .iter()
        .for_each(|v| one(w(Pids, "pids.max", v.to_string())));
    Ok(steps)
}

/// Runs `steps` through `write`, honouring [`Step::Pair`] ordering and
/// [`Write::optional`].
pub(crate) fn apply(steps: &[Step], write: &mut dyn FnMut(&Write) -> Result<()>) -> Result<()> {
    let mut one = |wr: &Write| match write(wr) {
        Err(e) if wr.optional && e.errno() == Some(libc::ENOENT) => Ok(()),
        r => r,
    };
    for step in steps {
        match step {
            Step::One(a) => one(a)?,
            Step::Pair(a, b) => match one(a) {
                Ok(()) => one(b)?,
                Err(e) if e.errno() == Some(libc::EINVAL) => {
                    one(b)?;
                    one(a)?;
                }
                Err(e) => return Err(e),
            },
        }
    }
    Ok(())
}

/// v1 reports "no limit" as the largest page-aligned `i64`; anything this
/// high (allowing 64 KiB pages) reads back as `max`.
const V1_UNLIMITED_FLOOR: u64 = 0x7FFF_FFFF_FFFF_0000;

/// Reads `key` back through `read(controller, file)`, normalised to the
/// syntax [`Limits::set_str`] accepts whatever the layout.
pub(crate) fn get(
    key: &str,
    api: Api,
    layout: Layout,
    read: &mut dyn FnMut(Controller, &'static str) -> Result<String>,
) -> Result<String> {
    use Controller::*;
    if !KEYS.contains(&key) {
        return Err(Error::invalid(
            "cgroup limit key",
            key,
            format!("expected one of {KEYS:?}"),
        ));
    }
    let ctrl = controller_of(key);
    if api == Api::V2 {
        let file = v2_file(key);
        let text = read(ctrl, file)?;
        return Ok(match key {
            "io_weight" => text.trim().trim_start_matches("default").trim().to_owned(),
            _ => text.trim().to_owned(),
        });
    }
    let mut bytes = |file| -> Result<Option<u64>> {
        let text = read(Memory, file)?;
        let n: i64 = text
            .trim()
            .parse()
            .map_err(|_| Error::invalid("v1 value", &text, file))?;
        Ok(u64::try_from(n).ok().filter(|n| *n < V1_UNLIMITED_FLOOR))
    };
    let show = |n: Option<u64>| n.map_or("max".to_owned(), |n| n.to_string());
    Ok(match key {
        "memory_max" => show(bytes("memory.limit_in_bytes")?),
        "memory_high" => show(bytes("memory.soft_limit_in_bytes")?),
        "memory_swap_max" => {
            let max = bytes("memory.limit_in_bytes")?;
            let memsw = bytes("memory.memsw.limit_in_bytes")?;
            show(max.zip(memsw).map(|(m, s)| s.saturating_sub(m)))
        }
        "cpu_max" => {
            let quota = read(Cpu, "cpu.cfs_quota_us")?;
            let period = read(Cpu, "cpu.cfs_period_us")?;
            let quota = if quota.trim() == "-1" {
                "max"
            } else {
                quota.trim()
            };
            format!("{quota} {}", period.trim())
        }
        "cpu_weight" => {
            let text = read(Cpu, "cpu.shares")?;
            let shares = text
                .trim()
                .parse()
                .map_err(|_| Error::invalid("v1 value", &text, "cpu.shares"))?;
            shares_to_weight(shares).to_string()
        }
        "cpu_idle" => read(Cpu, "cpu.idle")?.trim().to_owned(),
        "pids_max" => read(Pids, "pids.max")?.trim().to_owned(),
        "cpuset_cpus" => read(Cpuset, "cpuset.cpus")?.trim().to_owned(),
        "cpuset_mems" => read(Cpuset, "cpuset.mems")?.trim().to_owned(),
        _ => {
            return Err(Error::Unsupported {
                key: key.to_owned(),
                layout,
            })
        }
    })
}

/// The v2 file of a limit key (`memory_max` -> `memory.max`).
fn v2_file(key: &str) -> &'static str {
    match key {
        "memory_max" => "memory.max",
        "memory_high" => "memory.high",
        "memory_swap_max" => "memory.swap.max",
        "memory_oom_group" => "memory.oom.group",
        "memory_min" => "memory.min",
        "memory_low" => "memory.low",
        "cpu_max" => "cpu.max",
        "cpu_weight" => "cpu.weight",
        "cpu_idle" => "cpu.idle",
        "pids_max" => "pids.max",
        "cpuset_cpus" => "cpuset.cpus",
        "cpuset_mems" => "cpuset.mems",
        _ => "io.weight",
    }
}
