//! What `corral` shows a person: the environment rules borrowed from
//! playpen, the systemd-run-like summary, and the JSON report.

use crate::report::{Report, Status};
use corral_proto::Reason;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::time::Duration;

/// Variables a command gets when the environment is not captured: enough
/// for a terminal program to behave (playpen runs under systemd-run, whose
/// services get a similar minimal set).
const BASE_ENV: &[&str] = &[
    "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "LC_ALL", "TZ",
];

/// The variables to pass when `--capture-env` is false: the base set, and
/// `PATH` when `--capture-path` is true. `None` means keep everything.
pub fn env_allowlist(capture_env: bool, capture_path: bool) -> Option<Vec<&'static str>> {
    if capture_env {
        return None;
    }
    let mut keep = BASE_ENV.to_vec();
    if capture_path {
        keep.push("PATH");
    }
    Some(keep)
}

/// `KEY=VALUE` pairs for the allowed variables that are set now.
pub fn captured(keep: &[&str]) -> Vec<OsString> {
    keep.iter()
        .filter_map(|k| {
            let v = std::env::var_os(k)?;
            let mut kv = OsString::from(k);
            kv.push("=");
            kv.push(v);
            Some(kv)
        })
        .collect()
}

/// systemd-run's word for how a run ended.
pub fn result_name(r: &Report) -> &'static str {
    match (r.reason, r.status) {
        (Reason::Memory, _) => "oom-kill",
        (Reason::Timeout, _) => "timeout",
        (Reason::CpuTime, _) => "cpu-time",
        (Reason::Idle, _) => "idle",
        (Reason::MaxProcesses, _) => "max-processes",
        (_, Status::Signaled(_)) => "signal",
        (_, Status::Exited(0)) => "success",
        (_, Status::Exited(_)) => "exit-code",
    }
}

/// `1.234s`, `103ms`, `2min 3.000s`.
fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.3}s", d.as_secs_f64())
    } else {
        format!("{}min {:.3}s", ms / 60_000, (ms % 60_000) as f64 / 1000.0)
    }
}

/// `50.0M`, as systemd prints memory.
fn human_size(bytes: u64) -> String {
    let units = ["B", "K", "M", "G", "T"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.1}{}", units[i])
    }
}

/// The summary printed to stderr after the command ends.
pub fn summary(r: &Report) -> String {
    let u = &r.usage;
    let how = match r.status {
        Status::Exited(c) => format!("code=exited, status={c}"),
        Status::Signaled(s) => format!(
            "code=killed, signal={}",
            s.as_str().trim_start_matches("SIG")
        ),
    };
    let mut out = String::new();
    let _ = writeln!(out, "corral: Finished with result: {}", result_name(r));
    let _ = writeln!(out, "corral: Main process terminated with: {how}");
    let _ = writeln!(out, "corral: Runtime: {}", human_duration(u.wall));
    let _ = writeln!(
        out,
        "corral: CPU time consumed: {}",
        human_duration(u.user + u.system)
    );
    if let Some(m) = u.peak_memory {
        let _ = writeln!(out, "corral: Memory peak: {}", human_size(m));
    }
    if let Some(p) = u.peak_processes {
        let _ = writeln!(out, "corral: Processes peak: {p}");
    }
    out
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_opt(v: Option<u64>) -> String {
    v.map_or_else(|| "null".into(), |n| n.to_string())
}

/// The report as one JSON object, with the field names of `Corral.Result`
/// (times in microseconds, memory in bytes).
pub fn json(r: &Report) -> String {
    let u = &r.usage;
    let (code, signal) = match r.status {
        Status::Exited(c) => (c.to_string(), "null".to_owned()),
        Status::Signaled(s) => ("null".to_owned(), json_str(s.as_str())),
    };
    let containment = r.containment.name();
    format!(
        concat!(
            "{{\"result\":{},\"reason\":{},\"exit_status\":{},\"exit_code\":{},\"signal\":{},",
            "\"usage\":{{\"wall_time\":{},\"user_time\":{},\"system_time\":{},",
            "\"peak_memory\":{},\"peak_processes\":{}}},",
            "\"oom_kills\":{},\"pids_limit_hits\":{},\"containment\":{}}}"
        ),
        json_str(result_name(r)),
        json_str(r.reason.name()),
        r.status.code(),
        code,
        signal,
        u.wall.as_micros(),
        u.user.as_micros(),
        u.system.as_micros(),
        json_opt(u.peak_memory),
        json_opt(u.peak_processes),
        json_opt(u.oom_kills),
        json_opt(u.pids_limit_hits),
        json_str(containment),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Usage;
    use corral_proto::{CgroupKind, Containment};
    use nix::sys::signal::Signal;

    fn report(reason: Reason, status: Status) -> Report {
        Report {
            reason,
            status,
            usage: Usage {
                wall: Duration::from_millis(11_423),
                user: Duration::from_millis(100),
                system: Duration::from_millis(3),
                peak_memory: Some(50 << 20),
                peak_processes: Some(1),
                oom_kills: Some(1),
                pids_limit_hits: None,
            },
            containment: Containment {
                cgroup: CgroupKind::Hybrid,
                subreaper: true,
            },
        }
    }

    #[test]
    fn summary_reads_like_systemd_run() {
        let s = summary(&report(Reason::Memory, Status::Signaled(Signal::SIGKILL)));
        assert!(s.contains("Finished with result: oom-kill"), "{s}");
        assert!(s.contains("code=killed, signal=KILL"), "{s}");
        assert!(s.contains("Runtime: 11.423s"), "{s}");
        assert!(s.contains("CPU time consumed: 103ms"), "{s}");
        assert!(s.contains("Memory peak: 50.0M"), "{s}");
    }

    #[test]
    fn results_follow_the_reason_then_the_status() {
        let name = |r, s| result_name(&report(r, s));
        assert_eq!(name(Reason::Exit, Status::Exited(0)), "success");
        assert_eq!(name(Reason::Exit, Status::Exited(3)), "exit-code");
        assert_eq!(
            name(Reason::Signal, Status::Signaled(Signal::SIGSEGV)),
            "signal"
        );
        assert_eq!(
            name(Reason::Stopped, Status::Signaled(Signal::SIGTERM)),
            "signal"
        );
        assert_eq!(
            name(Reason::CpuTime, Status::Signaled(Signal::SIGTERM)),
            "cpu-time"
        );
    }

    #[test]
    fn json_has_result_fields() {
        let j = json(&report(Reason::Memory, Status::Signaled(Signal::SIGKILL)));
        assert!(
            j.starts_with("{\"result\":\"oom-kill\",\"reason\":\"memory\",\"exit_status\":137"),
            "{j}"
        );
        assert!(j.contains("\"usage\":{\"wall_time\":11423000,"), "{j}");
        assert!(j.contains("\"signal\":\"SIGKILL\""), "{j}");
        assert!(j.ends_with("\"containment\":\"hybrid\"}"), "{j}");
        assert_eq!(json_str("a\"b\n"), "\"a\\\"b\\u000a\"");
    }

    #[test]
    fn json_names_the_levels_without_a_subreaper() {
        let mut r = report(Reason::Exit, Status::Exited(0));
        r.containment = Containment {
            cgroup: CgroupKind::None,
            subreaper: false,
        };
        assert!(json(&r).ends_with("\"containment\":\"process_group\"}"));
        r.containment.cgroup = CgroupKind::V2;
        assert!(json(&r).ends_with("\"containment\":\"cgroup_v2_no_subreaper\"}"));
    }

    #[test]
    fn playpen_environment_rules() {
        assert_eq!(env_allowlist(true, false), None);
        assert!(env_allowlist(false, true).is_some_and(|k| k.contains(&"PATH")));
        assert!(env_allowlist(false, false).is_some_and(|k| !k.contains(&"PATH")));
    }
}
