//! `corral` on the command line, for people: the real binary, run the way a
//! person or a shell pipeline runs it.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const CORRAL: &str = env!("CARGO_BIN_EXE_corral");

fn corral(args: &[&str]) -> Output {
    Command::new(CORRAL)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("corral runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The JSON report, parsed.
fn report(o: &Output) -> serde_json::Value {
    let text = stderr(o);
    let line = text
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON report in {text:?}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

fn usage_us(r: &serde_json::Value, key: &str) -> f64 {
    r["usage"][key]
        .as_f64()
        .unwrap_or_else(|| panic!("usage.{key} in {r}"))
}

const BUSY: &[&str] = &["sh", "-c", "while :; do :; done"];

/// Tests that measure CPU shares take turns: two busy loops at once on a
/// two-core machine would skew each other's figures.
static CPU: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn cpu_turn() -> std::sync::MutexGuard<'static, ()> {
    CPU.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn memory_limit_ends_in_an_oom_kill_near_the_limit() {
    let o = corral(&[
        "-m",
        "50M",
        "--",
        "python3",
        "-c",
        "x = bytearray(200 * 2**20)",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(137), "{err}");
    assert!(err.contains("Finished with result: oom-kill"), "{err}");
    let peak = err
        .lines()
        .find_map(|l| l.strip_prefix("corral: Memory peak: "))
        .unwrap_or_else(|| panic!("no memory peak in {err}"));
    let mib: f64 = peak.trim_end_matches('M').parse().expect("MiB");
    assert!((45.0..=50.5).contains(&mib), "peak {peak}");
    assert!(o.stdout.is_empty(), "corral wrote to stdout");
}

#[test]
fn a_memory_limit_below_a_page_is_refused_clearly() {
    let o = corral(&["-m", "1K", "--", "true"]);
    assert_eq!(o.status.code(), Some(125));
    let err = stderr(&o);
    assert!(err.contains("below one page"), "{err}");
}

#[test]
fn cpu_limit_holds_a_busy_loop_near_half_a_core() {
    let _turn = cpu_turn();
    let mut args = vec!["--json", "-c", "50%", "-t", "2s", "--"];
    args.extend_from_slice(BUSY);
    let o = corral(&args);
    let r = report(&o);
    assert_eq!(r["result"], "timeout", "{r}");
    let share =
        (usage_us(&r, "user_time") + usage_us(&r, "system_time")) / usage_us(&r, "wall_time");
    assert!((0.4..=0.6).contains(&share), "CPU share {share:.3} in {r}");
}

#[test]
fn cpu_time_limit_ends_after_about_one_second_of_cpu() {
    let _turn = cpu_turn();
    let mut args = vec!["--json", "--cpu-time", "1s", "--"];
    args.extend_from_slice(BUSY);
    let o = corral(&args);
    let r = report(&o);
    assert_eq!(r["result"], "cpu-time", "{r}");
    assert_eq!(r["reason"], "cpu_time", "{r}");
    let cpu = (usage_us(&r, "user_time") + usage_us(&r, "system_time")) / 1e6;
    assert!((1.0..=1.1).contains(&cpu), "CPU {cpu:.3} s");
}

#[test]
fn summary_without_json_names_result_runtime_and_cpu() {
    let _turn = cpu_turn();
    let o = corral(&[
        "--cpu-time",
        "300ms",
        "--",
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    let err = stderr(&o);
    for want in [
        "Finished with result: cpu-time",
        "code=killed, signal=TERM",
        "Runtime: ",
        "CPU time consumed: ",
    ] {
        assert!(err.contains(want), "{want:?} missing from {err}");
    }
    assert_eq!(o.status.code(), Some(143));
}

#[test]
fn pipelines_carry_only_the_commands_output() {
    for quiet in [true, false] {
        let q = if quiet { "-q " } else { "" };
        let line = format!("echo x | {CORRAL} {q}-- tr x y | cat");
        let o = Command::new("sh").args(["-c", &line]).output().expect("sh");
        assert_eq!(String::from_utf8_lossy(&o.stdout), "y\n", "quiet={quiet}");
        assert_eq!(o.stderr.is_empty(), quiet, "{}", stderr(&o));
    }
}

#[test]
fn an_interactive_python_works_under_a_pty() {
    // script(1) gives corral a pseudo-terminal; python3 sees a tty and
    // runs its interactive prompt, reading what we type.
    let mut child = Command::new("script")
        .args([
            "-qfec",
            &format!("{CORRAL} -q -- python3 -i -q"),
            "/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(b"import sys; print(sys.stdin.isatty(), 6 * 7)\nexit()\n")
        .expect("type");
    drop(stdin);
    let o = child.wait_with_output().expect("script ends");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("True 42"), "{out}");
}

#[test]
fn exit_codes_follow_env_and_timeout() {
    assert_eq!(corral(&["--", "sh", "-c", "exit 3"]).status.code(), Some(3));
    assert_eq!(
        corral(&["-q", "--", "sh", "-c", "kill -9 $$"])
            .status
            .code(),
        Some(137)
    );
    assert_eq!(
        corral(&["--no-such-flag", "--", "true"]).status.code(),
        Some(125)
    );
    assert_eq!(
        corral(&["-t", "soon", "--", "true"]).status.code(),
        Some(125)
    );
    assert_eq!(corral(&["--", "/no/such/program"]).status.code(), Some(127));
    assert_eq!(corral(&["--", "/etc/passwd"]).status.code(), Some(126));
    assert_eq!(corral(&["--version"]).status.code(), Some(0));
}

#[test]
fn json_goes_to_a_report_file_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("report.json");
    let o = corral(&["-q", "--report", path.to_str().expect("utf8"), "--", "true"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("report")).expect("json");
    assert_eq!(r["result"], "success");
    assert_eq!(r["exit_status"], 0);
    for k in [
        "wall_time",
        "user_time",
        "system_time",
        "peak_memory",
        "peak_processes",
    ] {
        assert!(r["usage"].get(k).is_some(), "usage.{k} in {r}");
    }
}

#[test]
fn environment_follows_playpen() {
    let env = |args: &[&str]| {
        let o = Command::new(CORRAL)
            .args(args)
            .env("CORRAL_TEST_SECRET", "1")
            .output()
            .expect("corral");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let default = env(&["-q", "--", "/usr/bin/env"]);
    assert!(!default.contains("CORRAL_TEST_SECRET"), "{default}");
    assert!(default.contains("PATH="), "{default}");
    let no_path = env(&["-q", "--capture-path", "false", "--", "/usr/bin/env"]);
    assert!(!no_path.contains("PATH="), "{no_path}");
    let all = env(&["-q", "--capture-env", "true", "--", "/usr/bin/env"]);
    assert!(all.contains("CORRAL_TEST_SECRET=1"), "{all}");
    let set = env(&["-q", "--env", "A=b", "--", "/usr/bin/env"]);
    assert!(set.contains("A=b"), "{set}");
}

/// `--capture-env` and `--capture-path` take the booleans playpen's users
/// type, and alone mean yes; anything else is a usage error.
#[test]
fn booleans_take_yes_no_on_off_1_0_true_false() {
    let env = |args: &[&str]| {
        let o = Command::new(CORRAL)
            .args(args)
            .env("CORRAL_TEST_SECRET", "1")
            .stdin(Stdio::null())
            .output()
            .expect("corral");
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    for yes in ["yes", "on", "1", "true", "YES", "y"] {
        let all = env(&["-q", "--capture-env", yes, "--", "/usr/bin/env"]);
        assert!(all.contains("CORRAL_TEST_SECRET=1"), "{yes}: {all}");
        let all = env(&["-q", &format!("--capture-env={yes}"), "--", "/usr/bin/env"]);
        assert!(all.contains("CORRAL_TEST_SECRET=1"), "={yes}: {all}");
    }
    for no in ["no", "off", "0", "false", "Off", "n"] {
        let some = env(&["-q", "--capture-env", no, "--", "/usr/bin/env"]);
        assert!(!some.contains("CORRAL_TEST_SECRET"), "{no}: {some}");
        let no_path = env(&["-q", "--capture-path", no, "--", "/usr/bin/env"]);
        assert!(!no_path.contains("PATH="), "{no}: {no_path}");
    }
    // Flag style: the option alone, before `--` or another option.
    let all = env(&["-q", "--capture-env", "--", "/usr/bin/env"]);
    assert!(all.contains("CORRAL_TEST_SECRET=1"), "{all}");
    let all = env(&["--capture-env", "-q", "--", "/usr/bin/env"]);
    assert!(all.contains("CORRAL_TEST_SECRET=1"), "{all}");
    let path = env(&["-q", "--capture-path", "--", "/usr/bin/env"]);
    assert!(path.contains("PATH="), "{path}");

    let o = corral(&["--capture-env", "maybe", "--", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("'maybe'"), "{}", stderr(&o));
}

/// The wall-time limit ends a run with 124, as timeout(1) does; the JSON
/// report still gives the command's own status (143, its SIGTERM). Other
/// limits keep the signal's status.
#[test]
fn a_timeout_exits_124_like_timeout_1() {
    let o = corral(&["--json", "-t", "200ms", "--", "sleep", "10"]);
    assert_eq!(o.status.code(), Some(124), "{}", stderr(&o));
    let r = report(&o);
    assert_eq!(r["result"], "timeout", "{r}");
    assert_eq!(r["exit_status"], 143, "{r}");
    let o = corral(&["-t", "200ms", "--", "sh", "-c", "exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let o = corral(&["-q", "--idle-timeout", "200ms", "--", "sleep", "10"]);
    assert_eq!(o.status.code(), Some(143), "{}", stderr(&o));
}

/// The lines of `corral ARG` (`-h` or `--help`) on stdout.
fn help(arg: &str) -> String {
    let o = corral(&[arg]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    String::from_utf8(o.stdout).expect("utf-8 help")
}

/// `--help` is for people: their options first, under headings, the
/// BEAM's hidden, no protocol words, examples and exit statuses at the end.
#[test]
fn help_shows_people_s_options_first_under_headings() {
    for arg in ["-h", "--help"] {
        let text = help(arg);
        let first = text
            .lines()
            .find(|l| l.trim_start().starts_with('-'))
            .expect("an option");
        assert!(
            first.trim_start().starts_with("-m, --memory-limit"),
            "{arg}: first option {first:?}"
        );
        let at = |heading: &str| {
            text.find(&format!("\n{heading}:\n"))
                .unwrap_or_else(|| panic!("{arg}: no {heading:?} in {text}"))
        };
        let order = [
            "Limits",
            "Environment",
            "Output",
            "Cgroups",
            "EXAMPLES",
            "EXIT STATUS",
        ]
        .map(at);
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{arg}: {order:?}");
        let lower = text.to_lowercase();
        assert!(!lower.contains("frame"), "{arg}: {text}");
        for hidden in ["--port", "--protocol", "--pooled", "--stdio-window"] {
            assert!(!text.contains(hidden), "{arg} shows {hidden}: {text}");
        }
        let modes = text.replace("pipeline", "");
        assert!(!modes.contains("pipe"), "{arg} shows the pipe mode: {text}");
        assert!(text.contains("124"), "{arg}: no timeout status");
    }
}

/// `--stdout pipe` (the BEAM's framed output) is refused when stdout is a
/// terminal, before the command runs; into a pipe it still works.
#[test]
fn protocol_output_is_refused_on_a_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = dir.path().join("ran");
    let touch = format!("touch {}", ran.display());
    for option in ["--stdout", "--stderr"] {
        // script(1) gives corral a pseudo-terminal; -e passes on its status.
        let line = format!("{CORRAL} -q {option} pipe -- sh -c '{touch}'");
        let o = Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .expect("script runs");
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(125), "{option}: {out}");
        assert!(
            out.contains(&format!("{option} pipe")) && out.contains("terminal"),
            "{option}: {out}"
        );
        assert!(!ran.exists(), "{option}: the command ran");
    }
    let o = corral(&["-q", "--stdout", "pipe", "--", "echo", "hi"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(o.stdout, b"\0\0\0\x04Ohi\n", "one O frame");
}

#[test]
fn sigterm_to_corral_ends_the_tree_and_still_summarises() {
    let mut child = Command::new(CORRAL)
        .args(["--", "sh", "-c", "sleep 1000 & echo $!; wait"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("corral");
    let mut line = String::new();
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    std::io::BufRead::read_line(&mut out, &mut line).expect("pid line");
    let sleeper: i32 = line.trim().parse().expect("pid");
    // SAFETY: kill(2) on the corral we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let o = child.wait_with_output().expect("corral ends");
    let err = stderr(&o);
    assert!(err.contains("Finished with result: signal"), "{err}");
    let deadline = Instant::now() + Duration::from_secs(1);
    while std::path::Path::new(&format!("/proc/{sleeper}")).exists() {
        assert!(Instant::now() < deadline, "sleep {sleeper} survived");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A value that begins with `-` is the option's value, never an option:
/// `--arg0 -sh` (a login shell), `--cd -dir`, `--env -x=1`.
#[test]
fn values_that_begin_with_a_dash_are_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("-dir")).expect("mkdir -dir");
    // A shell hides variables whose names are not identifiers from `env`,
    // so the script reads the environment it was given from /proc.
    let o = Command::new(CORRAL)
        .current_dir(dir.path())
        .args(["-q", "--arg0", "-sh", "--cd", "-dir", "--env", "-x=1", "--"])
        .args([
            "sh",
            "-c",
            "echo \"$0\"; pwd; tr '\\0' '\\n' < /proc/$$/environ | grep -c '^-x=1$'",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("corral runs");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let want = format!("-sh\n{}\n1\n", dir.path().join("-dir").display());
    assert_eq!(String::from_utf8_lossy(&o.stdout), want);
}

/// `(uid, gid)` of every passwd entry, from /etc/passwd.
fn passwd() -> Vec<(u32, u32)> {
    std::fs::read_to_string("/etc/passwd")
        .expect("/etc/passwd")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?))
        })
        .collect()
}

/// The child's `Uid:`, `Gid:` and `Groups:` lines from /proc/self/status,
/// as `"Uid" => [real, effective, saved, fs]`.
fn ids(args: &[&str]) -> (Output, std::collections::HashMap<String, Vec<u32>>) {
    let mut argv = vec!["-q"];
    argv.extend_from_slice(args);
    argv.extend([
        "--",
        "grep",
        "-E",
        "^(Uid|Gid|Groups):",
        "/proc/self/status",
    ]);
    let o = corral(&argv);
    let ids = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let (key, values) = l.split_once(':')?;
            let values = values.split_whitespace().filter_map(|v| v.parse().ok());
            Some((key.to_owned(), values.collect()))
        })
        .collect();
    (o, ids)
}

/// A numeric `--uid` takes the primary group of its passwd entry, as a
/// name does; without an entry it needs `--gid` and is refused (stage
/// `user`) rather than left in root's group. Needs root.
#[test]
fn a_numeric_uid_never_keeps_root_s_group() {
    if !nix::unistd::geteuid().is_root() {
        panic!("this test changes the child's uid and needs root");
    }
    let users = passwd();
    let (uid, gid) = users
        .iter()
        .copied()
        .find(|&(u, g)| u != 0 && g != 0 && g != u)
        .or_else(|| users.iter().copied().find(|&(u, g)| u != 0 && g != 0))
        .expect("an unprivileged user in /etc/passwd");
    let (o, got) = ids(&["--uid", &uid.to_string()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(got["Uid"], [uid; 4]);
    assert_eq!(got["Gid"], [gid; 4], "the passwd entry's group");
    assert_eq!(got["Groups"], [] as [u32; 0]);

    let unused = (54_321..64_000)
        .find(|n| !users.iter().any(|&(u, g)| u == *n || g == *n))
        .expect("a free id");
    let (o, got) = ids(&["--uid", &unused.to_string()]);
    let err = stderr(&o);
    assert_ne!(o.status.code(), Some(0), "{got:?}");
    assert!(
        err.contains("corral: user: uid") && err.contains("give a gid"),
        "{err}"
    );
    assert!(got.is_empty(), "the child must not run: {got:?}");

    let (o, got) = ids(&["--uid", &unused.to_string(), "--gid", &unused.to_string()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(got["Uid"], [unused; 4]);
    assert_eq!(got["Gid"], [unused; 4]);
}

/// Values past what an option can mean are usage errors (125), never a
/// panic or a wrapped number; the largest value each takes works, with a
/// deadline past the end of the clock meaning "never".
#[test]
fn out_of_range_values_are_usage_errors_and_the_largest_work() {
    for args in [
        &["--timeout", "10000000000000000000"][..],
        &["--grace", "9223372036854775807"],
        &["--timeout", "18446744073709551616ms"],
        &["--cpu-time", "99999999999999999999999h"],
        // 2305843009213693957 * 1000 wrapped to a 5% quota.
        &["-c", "2305843009213693957"],
        &["-m", "1000000000000000000000000000000"],
        &["--max-processes", "18446744073709551616"],
        &["--max-processes", "4194305"],
        &["--max-processes", "0"],
        &["--cgroup-set", "pids_max=4194305"],
        &["--cgroup-set", "cpu_max=17592186044416 100000"],
    ] {
        let mut argv = args.to_vec();
        argv.extend(["--", "true"]);
        let o = corral(&argv);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(
            err.contains("out of range")
                || err.contains("at most")
                || err.contains("not in")
                || err.contains("too large")
                || err.contains("must be"),
            "{args:?} should say the range: {err}"
        );
    }
    // The largest durations: the deadline and the SIGKILL would come after
    // the clock ends, so they never come; the run ends as it would anyway.
    let max = "18446744073709551615ms";
    let o = corral(&["-q", "--timeout", max, "--", "sh", "-c", "sleep 0.2"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = corral(&["-q", "-t", "100ms", "--grace", max, "--", "sleep", "5"]);
    // The timeout ended it: 124, as timeout(1) (was 143, the SIGTERM).
    assert_eq!(o.status.code(), Some(124), "{}", stderr(&o));
}

/// A tree needs its first process and memory to load it: `pids_max=0`
/// (which on v1 let the first process join anyway) and a `memory_max`
/// below a page (the loader failed: a run that looked like exit 127) are
/// refused before the command starts.
#[test]
fn limits_that_let_nothing_start_are_refused() {
    for (set, says) in [
        ("pids_max=0", "the least is 1"),
        ("memory_max=0", "below one page"),
        ("memory_max=100", "below one page"),
    ] {
        let o = corral(&["--cgroup-set", set, "--", "echo", "ran"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(125), "{set}: {err}");
        assert!(err.contains(says) && err.contains("could"), "{set}: {err}");
        assert!(o.stdout.is_empty(), "{set}: the command ran");
    }
}
