//! Rust values to Elixir terms: maps, [`Stats`], and one limit read back
//! as the same typed value `Corral.Cgroup.set/2` takes.

use corral_cgroup::{Key, Max, Stats, Value};
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
/// term `set/2` takes, by the key's [`corral_cgroup::Kind`]: an integer or
/// `:max` for sizes and `pids_max`, a boolean for flags,
/// `{quota | :max, period}` for `cpu_max`, an integer for weights, a string
/// for cpusets. [`Key::value`] parses `text`, so there is one grammar for
/// both directions.
pub(crate) fn limit<'a>(env: Env<'a>, key: &str, text: &str) -> Result<Term<'a>, Reason> {
    let key = Key::parse(key)
        .ok_or_else(|| Reason::invalid(format!("unknown cgroup limit key {key:?}")))?;
    Ok(match key.value(text)? {
        Value::Max(m) => max(env, m),
        Value::Flag(b) => b.encode(env),
        Value::CpuMax(c) => (max(env, c.quota_us), c.period_us).encode(env),
        Value::Weight(w) => w.encode(env),
        Value::List(s) => s.encode(env),
    })
}
