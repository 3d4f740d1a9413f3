//! Rust values to Elixir terms: maps, [`Stats`], and one limit read back
//! as the same typed value `Corral.Cgroup.set/2` takes.

use corral_cgroup::{CpuMax, Limits, Max, Stats};
use rustler::{Encoder, Env, Term};

use crate::atoms;
use crate::error::Reason;

/// A map from key and value terms.
pub(crate) fn map<'a>(env: Env<'a>, pairs: &[(Term<'a>, Term<'a>)]) -> Result<Term<'a>, Reason> {
    let (keys, values): (Vec<Term<'a>>, Vec<Term<'a>>) = pairs.iter().copied().unzip();
    // Fails only for duplicate keys, which a caller here never passes.
    Term::map_from_term_arrays(env, &keys, &values)
        .map_err(|_| Reason::invalid("duplicate keys in a reply map"))
}

/// [`Stats`] keyed as MuonTrap 2 names its statistics; `nil` where the
/// kernel does not report a value for this group.
pub(crate) fn stats<'a>(env: Env<'a>, s: &Stats) -> Result<Term<'a>, Reason> {
    let pairs = [
        (atoms::memory_peak(), s.peak_memory),
        (atoms::memory_current(), s.memory_current),
        (atoms::oom_kills(), s.oom_kills),
        (atoms::cpu_usage_usec(), s.cpu_usage_usec),
        (atoms::user_usec(), s.user_usec),
        (atoms::system_usec(), s.system_usec),
        (atoms::pids_current(), s.pids_current),
        (atoms::pids_peak(), s.peak_pids),
        (atoms::pids_limit_hits(), s.pids_limit_hits),
    ];
    let terms: Vec<_> = pairs
        .iter()
        .map(|(k, v)| (k.encode(env), v.encode(env)))
        .collect();
    map(env, &terms)
}

/// `:max` or the number.
fn max<'a>(env: Env<'a>, m: Max) -> Term<'a> {
    match m {
        Max::Unlimited => atoms::max().encode(env),
        Max::Limit(n) => n.encode(env),
    }
}

/// Limit `key`, read back by [`corral_cgroup::Group::get`] as `text`, as the
/// term `set/2` takes: an integer or `:max` for sizes and `pids_max`, a
/// boolean for flags, `{quota | :max, period}` for `cpu_max`, an integer
/// for weights, a string for cpusets. [`Limits::set_str`] parses `text`,
/// so there is one grammar for both directions.
pub(crate) fn limit<'a>(env: Env<'a>, key: &str, text: &str) -> Result<Term<'a>, Reason> {
    let mut l = Limits::default();
    l.set_str(key, text)?;
    let missing = || Reason::invalid(format!("unknown cgroup limit key {key:?}"));
    let flag = |b: Option<bool>| b.map(|b| b.encode(env));
    let size = |m: Option<Max>| m.map(|m| max(env, m));
    let cpu = |c: Option<CpuMax>| c.map(|c| (max(env, c.quota_us), c.period_us).encode(env));
    let term = match key {
        "memory_max" => size(l.memory_max),
        "memory_high" => size(l.memory_high),
        "memory_swap_max" => size(l.memory_swap_max),
        "memory_oom_group" => flag(l.memory_oom_group),
        "memory_min" => size(l.memory_min),
        "memory_low" => size(l.memory_low),
        "cpu_max" => cpu(l.cpu_max),
        "cpu_weight" => l.cpu_weight.map(|w| w.encode(env)),
        "cpu_idle" => flag(l.cpu_idle),
        "pids_max" => size(l.pids_max),
        "io_weight" => l.io_weight.map(|w| w.encode(env)),
        "cpuset_cpus" => l.cpuset_cpus.map(|s| s.encode(env)),
        "cpuset_mems" => l.cpuset_mems.map(|s| s.encode(env)),
        _ => None,
    };
    term.ok_or_else(missing)
}
