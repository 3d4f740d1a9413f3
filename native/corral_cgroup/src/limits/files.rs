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
    let flag = |b: bool| if b { "1" } else { "0" }.to_owned();
    let unsupported = |key: &str| Error::Unsupported {
        key: key.to_owned(),
        layout,
    };
    let l = limits;
    let text = |v: Max| v.to_string();
    let mut steps = Vec::new();
    if api == Api::V2 {
        let cpu = |c: &CpuMax| format!("{} {}", c.quota_us, c.period_us);
        each(
            &mut steps,
            [
                (Cpuset, "cpuset.cpus", l.cpuset_cpus.clone()),
                (Cpuset, "cpuset.mems", l.cpuset_mems.clone()),
                (Memory, "memory.max", l.memory_max.map(text)),
                (Memory, "memory.high", l.memory_high.map(text)),
                (Memory, "memory.swap.max", l.memory_swap_max.map(text)),
                (Memory, "memory.oom.group", l.memory_oom_group.map(flag)),
                (Memory, "memory.min", l.memory_min.map(text)),
                (Memory, "memory.low", l.memory_low.map(text)),
                (Cpu, "cpu.max", l.cpu_max.as_ref().map(cpu)),
                (Cpu, "cpu.weight", l.cpu_weight.map(|v| v.to_string())),
                (Cpu, "cpu.idle", l.cpu_idle.map(flag)),
                (Pids, "pids.max", l.pids_max.map(text)),
                (Io, "io.weight", l.io_weight.map(|v| format!("default {v}"))),
            ],
        );
        return Ok(steps);
    }
    for (key, set) in [
        ("memory_oom_group", l.memory_oom_group.is_some()),
        ("memory_min", l.memory_min.is_some()),
        ("memory_low", l.memory_low.is_some()),
        ("io_weight", l.io_weight.is_some()),
    ] {
        if set {
            return Err(unsupported(key));
        }
    }
    each(
        &mut steps,
        [
            (Cpuset, "cpuset.cpus", l.cpuset_cpus.clone()),
            (Cpuset, "cpuset.mems", l.cpuset_mems.clone()),
        ],
    );
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
    each(
        &mut steps,
        [(
            Memory,
            "memory.soft_limit_in_bytes",
            l.memory_high.map(|v| v.v1()),
        )],
    );
    if let Some(c) = &l.cpu_max {
        let period = w(Cpu, "cpu.cfs_period_us", c.period_us.to_string());
        steps.push(Step::Pair(
            period,
            w(Cpu, "cpu.cfs_quota_us", c.quota_us.v1()),
        ));
    }
    each(
        &mut steps,
        [
            (
                Cpu,
                "cpu.shares",
                l.cpu_weight.map(|v| weight_to_shares(v).to_string()),
            ),
            (Cpu, "cpu.idle", l.cpu_idle.map(flag)),
            (Pids, "pids.max", l.pids_max.map(text)),
        ],
    );
    Ok(steps)
}

/// One [`Step::One`] per limit that is set, in the order given.
fn each<const N: usize>(
    steps: &mut Vec<Step>,
    writes: [(Controller, &'static str, Option<String>); N],
) {
    for (controller, file, value) in writes {
        if let Some(value) = value {
            steps.push(Step::One(w(controller, file, value)));
        }
    }
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
