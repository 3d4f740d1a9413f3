//! The grammar of option values: durations, sizes, CPU shares and
//! booleans, as people type them and the BEAM sends them.

use clap::builder::BoolishValueParser;
use corral_cgroup::{CpuMax, Max};
use nix::sys::signal::Signal;
use std::time::Duration;

/// playpen's booleans, as its users type them: yes/no, on/off,
/// true/false, 1/0 (and y/n, t/f), in any case.
pub fn boolish() -> BoolishValueParser {
    BoolishValueParser::new()
}

/// Splits `"1.5G"` into `(1.5, "G")`; `None` when it does not start with a number.
fn number_and_unit(text: &str) -> Option<(f64, &str)> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    Some((num.parse().ok()?, unit.trim()))
}

/// The longest duration any option takes: `u64::MAX` milliseconds, the
/// range the BEAM sends (`:timeout` and the others are `u64` milliseconds).
/// A deadline past the end of the clock is never reached, so no larger
/// value could mean anything else.
pub const MAX_DURATION: Duration = Duration::from_millis(u64::MAX);

/// Parses a duration: a number with `ms`, `s`, `m` or `h`; a bare number
/// is seconds, as in `timeout(1)`. At most [`MAX_DURATION`]; a whole
/// number is read exactly, a fraction through `f64`.
pub fn duration(text: &str) -> Result<Duration, String> {
    let (n, unit) = number_and_unit(text)
        .ok_or_else(|| format!("{text:?} is not a duration like 500ms, 2s, 1.5m"))?;
    let ms_per_unit: u64 = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        u => return Err(format!("unknown unit {u:?} in {text:?}; use ms, s, m or h")),
    };
    let too_long = || {
        format!(
            "{text:?} is out of range: at most {}ms",
            MAX_DURATION.as_millis()
        )
    };
    let whole = text.trim().trim_end_matches(unit).trim();
    if let Ok(n) = whole.parse::<u64>() {
        let ms = n.checked_mul(ms_per_unit).ok_or_else(too_long)?;
        return Ok(Duration::from_millis(ms));
    }
    let d = Duration::try_from_secs_f64(n * ms_per_unit as f64 / 1000.0).map_err(|_| too_long())?;
    if d > MAX_DURATION {
        return Err(too_long());
    }
    Ok(d)
}

/// Parses a size: bytes, or a number with `K`, `M`, `G` or `T` (powers of
/// 1024, as systemd's `MemoryMax=`).
pub fn size(text: &str) -> Result<u64, String> {
    let (n, unit) =
        number_and_unit(text).ok_or_else(|| format!("{text:?} is not a size like 50M"))?;
    let shift = match unit.trim_end_matches(['b', 'B', 'i']) {
        "" => 0,
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        "T" | "t" => 40,
        u => return Err(format!("unknown unit {u:?} in {text:?}; use K, M, G or T")),
    };
    let bytes = n * (1u64 << shift) as f64;
    if !(1.0..=u64::MAX as f64).contains(&bytes) {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(bytes as u64)
}

/// The period of `--cpu-limit`'s `cpu_max`: the kernel's default, 100 ms.
pub const CPU_PERIOD_US: u64 = 100_000;

/// The largest `--cpu-limit`: the kernel's largest quota per period.
pub const MAX_PERCENT: u64 = CpuMax::MAX_QUOTA_US * 100 / CPU_PERIOD_US;

/// Parses a CPU share: `50%` or `50` is half a core, `200%` two cores.
/// From 1% to [`MAX_PERCENT`].
pub fn percent(text: &str) -> Result<u64, String> {
    let n: u64 = text
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{text:?} is not a percentage like 50%"))?;
    if n == 0 {
        return Err("a CPU limit of 0% would never run".into());
    }
    if n > MAX_PERCENT {
        return Err(format!(
            "{text:?} is out of range: at most {MAX_PERCENT}%, the kernel's largest quota"
        ));
    }
    Ok(n)
}

/// The quota of a `--cpu-limit` of `pct` percent ([`percent`] bounds it).
pub fn cpu_max(pct: u64) -> CpuMax {
    CpuMax {
        quota_us: Max::Limit(pct.saturating_mul(CPU_PERIOD_US / 100)),
        period_us: CPU_PERIOD_US,
    }
}

/// The signal `name` names: `"SIGINT"`, `"INT"`, any case.
pub fn signal_named(name: &str) -> Option<Signal> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    full.parse().ok()
}

/// Parses `--kill-signal`, the first signal of the teardown: a signal
/// whose default action ends a process (`signal(7)`), by name (`INT`,
/// `SIGINT`, any case) or number. Stopping, continuing and ignored-by-default
/// signals (`SIGSTOP`, `SIGCONT`, `SIGCHLD`, `SIGWINCH`...) would end nothing.
pub fn kill_signal(text: &str) -> Result<Signal, String> {
    let sig = match text.trim().parse::<i32>() {
        Ok(n) => Signal::try_from(n).ok(),
        Err(_) => signal_named(text),
    }
    .ok_or_else(|| format!("{text:?} is not a signal name like INT, QUIT or TERM"))?;
    use Signal::*;
    if matches!(
        sig,
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU | SIGCONT | SIGCHLD | SIGURG | SIGWINCH
    ) {
        return Err(format!(
            "{text:?} does not end a process: the first signal of the teardown \
             must be one whose default action terminates (INT, QUIT, TERM, HUP, USR1...)"
        ));
    }
    Ok(sig)
}

/// A terminal's window size (`--pty`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TermSize {
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
}

/// Parses `COLSxROWS` (`100x40`), each from 1 to 65535. `--pty` without
/// a size is `80x24`, the classic VT100's, which `xterm` and most terminal
/// emulators open with.
pub fn term_size(text: &str) -> Result<TermSize, String> {
    let bad = || format!("{text:?} is not a terminal size like 80x24 (COLSxROWS, 1 to 65535)");
    let (cols, rows) = text.trim().split_once(['x', 'X']).ok_or_else(bad)?;
    let n = |s: &str| s.parse::<u16>().ok().filter(|n| *n > 0).ok_or_else(bad);
    Ok(TermSize {
        cols: n(cols)?,
        rows: n(rows)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert!(duration("2 fortnights").is_err());
        assert!(duration("soon").is_err());
        assert_eq!(duration("18446744073709551615ms"), Ok(MAX_DURATION));
        assert_eq!(duration("0.5ms"), Ok(Duration::from_micros(500)));
        for too_long in [
            "18446744073709551616ms",
            "10000000000000000000",
            "9223372036854775807",
            "99999999999999999999999999999999999999h",
            "18446744073709552s",
        ] {
            let e = duration(too_long).unwrap_err();
            assert!(e.contains("out of range"), "{too_long}: {e}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(size("50M"), Ok(50 << 20));
        assert_eq!(size("1K"), Ok(1024));
        assert_eq!(size("1.5G"), Ok(3 << 29));
        assert_eq!(size("4096"), Ok(4096));
        assert_eq!(size("64MiB"), Ok(64 << 20));
        assert!(size("0").is_err());
        assert!(size("lots").is_err());
    }

    #[test]
    fn percents() {
        assert_eq!(percent("50%"), Ok(50));
        assert_eq!(percent("200"), Ok(200));
        assert!(percent("0%").is_err());
        assert_eq!(cpu_max(50).quota_us, Max::Limit(50_000));
        assert_eq!(percent(&MAX_PERCENT.to_string()), Ok(MAX_PERCENT));
        assert!(
            matches!(cpu_max(MAX_PERCENT).quota_us, Max::Limit(q) if q <= CpuMax::MAX_QUOTA_US)
        );
        // 2305843009213693957 * 1000 wrapped to a 5% quota.
        assert!(percent("2305843009213693957").is_err());
        assert!(percent(&(MAX_PERCENT + 1).to_string()).is_err());
    }
    #[test]
    fn kill_signals() {
        assert_eq!(kill_signal("INT"), Ok(Signal::SIGINT));
        assert_eq!(kill_signal("sigquit"), Ok(Signal::SIGQUIT));
        assert_eq!(kill_signal("SIGTERM"), Ok(Signal::SIGTERM));
        assert_eq!(kill_signal("1"), Ok(Signal::SIGHUP));
        assert_eq!(kill_signal("usr1"), Ok(Signal::SIGUSR1));
        for bad in ["STOP", "SIGCONT", "chld", "WINCH", "0", "99", "FOO", ""] {
            assert!(kill_signal(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(signal_named("hup"), Some(Signal::SIGHUP));
    }
}
