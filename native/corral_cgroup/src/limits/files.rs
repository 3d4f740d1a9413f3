//! The one place where typed [`Limits`] become kernel file writes, and
//! where kernel files are read back into the syntax of [`Limits::set_str`].
//! File names come from [`Key`]; this module owns value formats and the
//! v1 pairs. The table in the [`crate::limits`] docs summarises it.

use super::{shares_to_weight, weight_to_shares, Controller, Key, Kind, Limits, Max, Value, KEYS};
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

/// v2 `io.weight` takes the default weight as `default N` (the other lines
/// of the file are per device).
const IO_WEIGHT_DEFAULT: &str = "default";

/// v1 CPU bandwidth is two files; the quota is [`Key::CpuMax`]'s.
const CFS_PERIOD: &str = "cpu.cfs_period_us";

/// The v1 file of `key`.
///
/// # Errors
///
/// [`Error::Unsupported`] if v1 has no equivalent.
fn v1_file(key: Key, layout: Layout) -> Result<&'static str> {
    key.v1_file().ok_or_else(|| Error::Unsupported {
        key: key.name().to_owned(),
        layout,
    })
}

/// Translates `limits` into kernel writes. This is the only place that
/// knows value formats for writing.
pub(crate) fn plan(limits: &Limits, api: Api, layout: Layout) -> Result<Vec<Step>> {
    // The fields are public, so a struct literal may hold what `set` refuses.
    for (key, value) in limits.iter() {
        key.check(&value)?;
    }
    let mut steps = Vec::new();
    if api == Api::V2 {
        for (key, value) in limits.iter() {
            let text = match key {
                Key::IoWeight => format!("{IO_WEIGHT_DEFAULT} {value}"),
                _ => value.to_string(),
            };
            steps.push(Step::One(w(key.controller(), key.v2_file(), text)));
        }
        return Ok(steps);
    }
    // Name the first key v1 cannot take before any other complaint.
    for (key, _) in limits.iter() {
        v1_file(key, layout)?;
    }
    for (key, value) in limits.iter() {
        let (controller, file) = (key.controller(), v1_file(key, layout)?);
        match (key, value) {
            (Key::MemoryMax, Value::Max(max)) => {
                // memsw limits memory+swap, so with no swap_max it gets the
                // same value as the memory limit: swap cannot be used to
                // escape memory_max.
                let memsw = match (max, limits.memory_swap_max) {
                    (_, None) => max,
                    (Max::Limit(m), Some(Max::Limit(s))) => Max::Limit(m.saturating_add(s)),
                    (_, Some(_)) => Max::Unlimited,
                };
                let swap = Key::MemorySwapMax;
                let mut sw = w(controller, v1_file(swap, layout)?, memsw.v1());
                sw.optional = limits.memory_swap_max.is_none();
                steps.push(Step::Pair(w(controller, file, max.v1()), sw));
            }
            // Written with memory_max, above.
            (Key::MemorySwapMax, s) => {
                if limits.memory_max.is_none() {
                    return Err(Error::invalid(
                        "cgroup limit",
                        &format!("{key}={s}"),
                        format!(
                            "cgroup v1 limits memory and swap together, so {key} needs {}",
                            Key::MemoryMax
                        ),
                    ));
                }
            }
            (Key::CpuMax, Value::CpuMax(c)) => {
                let period = w(controller, CFS_PERIOD, c.period_us.to_string());
                steps.push(Step::Pair(period, w(controller, file, c.quota_us.v1())));
            }
            (Key::CpuWeight, Value::Weight(v)) => {
                let shares = weight_to_shares(v).to_string();
                steps.push(Step::One(w(controller, file, shares)));
            }
            (_, Value::Max(m)) if key.kind() == Kind::Size => {
                steps.push(Step::One(w(controller, file, m.v1())));
            }
            (_, value) => steps.push(Step::One(w(controller, file, value.to_string()))),
        }
    }
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
    let Some(key) = Key::parse(key) else {
        return Err(Error::invalid(
            "cgroup limit key",
            key,
            format!("expected one of {KEYS:?}"),
        ));
    };
    let ctrl = key.controller();
    if api == Api::V2 {
        let text = read(ctrl, key.v2_file())?;
        return Ok(match key {
            Key::IoWeight => text.trim().trim_start_matches(IO_WEIGHT_DEFAULT).trim(),
            _ => text.trim(),
        }
        .to_owned());
    }
    let file = v1_file(key, layout)?;
    let mut bytes = |file| -> Result<Option<u64>> {
        let text = read(ctrl, file)?;
        let n: i64 = text
            .trim()
            .parse()
            .map_err(|_| Error::invalid("v1 value", &text, file))?;
        Ok(u64::try_from(n).ok().filter(|n| *n < V1_UNLIMITED_FLOOR))
    };
    let show = |n: Option<u64>| n.map_or("max".to_owned(), |n| n.to_string());
    Ok(match key {
        Key::MemorySwapMax => {
            let max = bytes(v1_file(Key::MemoryMax, layout)?)?;
            let memsw = bytes(file)?;
            show(max.zip(memsw).map(|(m, s)| s.saturating_sub(m)))
        }
        _ if key.kind() == Kind::Size => show(bytes(file)?),
        Key::CpuMax => {
            let quota = read(ctrl, file)?;
            let period = read(ctrl, CFS_PERIOD)?;
            let quota = if quota.trim() == "-1" {
                "max"
            } else {
                quota.trim()
            };
            format!("{quota} {}", period.trim())
        }
        Key::CpuWeight => {
            let text = read(ctrl, file)?;
            let shares = text
                .trim()
                .parse()
                .map_err(|_| Error::invalid("v1 value", &text, file))?;
            shares_to_weight(shares).to_string()
        }
        _ => read(ctrl, file)?.trim().to_owned(),
    })
}
