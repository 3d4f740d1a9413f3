//! A pre-started helper (`--pooled`) that takes its command line from an
//! `R` frame, as the BEAM's pool hands them out.

mod support;

use std::time::Duration;
use support::*;

const SOON: Duration = Duration::from_secs(5);

fn pooled() -> Helper {
    Helper::spawn(&["--port", "--protocol", "1", "--pooled"])
}

fn run_frame(args: &[&str]) -> Down {
    Down::Run(args.iter().map(|a| a.as_bytes().to_vec()).collect())
}

#[test]
fn r_brings_the_command_line_and_frames_after_it_are_kept() {
    let mut h = pooled();
    let echo = testbin("stdin_echo");
    // R, then at once stdin and EOF: the helper must not swallow them
    // while it reads R.
    h.send(&run_frame(&["--stdin", "pipe", "--", &echo]));
    h.send(&Down::Stdin(b"hello".to_vec()));
    h.send(&Down::CloseStdin);
    let (reason, fields) = h.finish(SOON);
    assert_eq!(reason, Reason::Exit);
    assert_eq!(int(&fields, key::EXIT_STATUS), 0);
    assert_eq!(h.out_text(), "hello");
    assert_eq!(h.exit_code(SOON), 0);
}

#[test]
fn a_waiting_helper_is_idle_and_leaves_quietly_when_the_port_closes() {
    let mut h = pooled();
    assert_idle(h.pid, "a pooled helper waiting for R");
    h.close_control();
    assert_eq!(h.exit_code(SOON), 0);
    assert!(h.tags.is_empty(), "it sent {:?}", h.tags);
}

#[test]
fn anything_but_r_first_is_a_protocol_error() {
    let mut h = pooled();
    h.send(&Down::Ack(1));
    assert_eq!(h.exit_code(SOON), 65);
}

#[test]
fn a_bad_command_line_in_r_is_a_usage_error() {
    let mut h = pooled();
    h.send(&run_frame(&["--no-such-flag", "--", "true"]));
    assert_eq!(h.exit_code(SOON), 125);
}

fn open_fds(pid: i32) -> Vec<String> {
    let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the helper's fd directory")
        .map(|e| {
            e.expect("an fd entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    fds.sort();
    fds
}

fn cpu_ms(fields: &Fields) -> u64 {
    (int(fields, key::USER_TIME_US) + int(fields, key::SYSTEM_TIME_US)) / 1000
}

#[test]
fn one_helper_serves_runs_one_after_another_each_accounted_alone() {
    let mut h = pooled();
    let pid = h.pid;

    // A run that uses CPU and memory, then frames its caller sent after
    // the child was gone (input the child never read, a late ack).
    h.send(&run_frame(&[
        "--stdin",
        "pipe",
        "--",
        &testbin("burn_cpu"),
        "1",
        "0.3",
    ]));
    let (reason, first) = h.end_run(SOON);
    assert_eq!(reason, Reason::Exit);
    let fds_after_first = open_fds(pid);
    assert!(
        cpu_ms(&first) >= 250,
        "first run used {} ms",
        cpu_ms(&first)
    );
    h.send(&Down::Stdin(b"never read".to_vec()));
    h.send(&Down::Ack(1));
    h.send(&Down::CloseStdin);

    h.send(&run_frame(&["--", &testbin("alloc_mb"), "64"]));
    h.ready();
    let child = h.started();
    assert_eq!(h.pid, pid, "the same helper serves the second run");
    h.send(&Down::Stop);
    let (reason, second) = h.end_run(SOON);
    assert_eq!(reason, Reason::Stopped);
    // Nothing of a run stays open in the helper.
    assert_eq!(
        open_fds(pid),
        fds_after_first,
        "descriptors after the second run"
    );
    assert_eq!(wait_gone(&[child], SOON), Vec::<i32>::new());
    let peak = int(&second, key::PEAK_MEMORY);
    assert!(peak >= 64 << 20, "second run's peak {peak}");

    // The third run is charged for neither: CPU and peak memory are its own.
    h.send(&run_frame(&[
        "--stdin",
        "pipe",
        "--",
        &testbin("stdin_echo"),
    ]));
    h.send(&Down::Stdin(b"third".to_vec()));
    h.send(&Down::CloseStdin);
    h.started();
    let (reason, fields) = h.finish(SOON);
    assert_eq!(reason, Reason::Exit);
    assert_eq!(h.out_text(), "third");
    assert!(
        cpu_ms(&fields) < 100,
        "third run charged {} ms",
        cpu_ms(&fields)
    );
    let peak = int(&fields, key::PEAK_MEMORY);
    assert!(peak < 32 << 20, "third run charged a peak of {peak} bytes");
    assert_eq!(h.exit_code(SOON), 0);
}

#[test]
fn a_spawn_failure_leaves_the_helper_ready_for_the_next_run() {
    let mut h = pooled();
    h.send(&run_frame(&["--", "/nonexistent/corral-test"]));
    h.until("F", SOON, |h| h.failed.is_some());
    h.failed = None;
    h.tags.clear();
    h.send(&run_frame(&["--", "/bin/echo", "after"]));
    let (reason, _) = h.finish(SOON);
    assert_eq!(reason, Reason::Exit);
    assert_eq!(h.out_text(), "after\n");
}

#[test]
fn sigterm_ends_a_helper_waiting_between_runs() {
    let mut h = pooled();
    h.send(&run_frame(&["--", "/bin/true"]));
    h.end_run(SOON);
    assert_idle(h.pid, "a pooled helper waiting for its next R");
    // SAFETY: kill(2) on the helper this test started.
    assert_eq!(unsafe { libc::kill(h.pid, libc::SIGTERM) }, 0);
    assert_eq!(h.exit_code(SOON), 0);
}

/// Values that begin with `-` are values, in an `R` frame as on a fresh
/// helper's command line, in both the `--opt value` and `--opt=value`
/// forms: a login shell's `argv[0]`, a directory, an environment key.
#[test]
fn values_that_begin_with_a_dash_are_values() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let dash = dir.path().join("-dir");
    std::fs::create_dir(&dash).expect("mkdir -dir");
    // A shell hides variables whose names are not identifiers from `env`,
    // so the script reads the environment it was given from /proc.
    let script = "echo \"$0\"; pwd; tr '\\0' '\\n' < /proc/$$/environ | grep -c '^-x=1$'";
    let pairs = [
        ("--arg0", "-sh".to_owned()),
        // Relative to the helper's own directory, the temp dir.
        ("--cd", "-dir".to_owned()),
        ("--env", "-x=1".to_owned()),
        ("--unset", "-y".to_owned()),
    ];
    for split in [true, false] {
        let mut args: Vec<String> = Vec::new();
        for (opt, value) in &pairs {
            if split {
                args.extend([opt.to_string(), value.clone()]);
            } else {
                args.push(format!("{opt}={value}"));
            }
        }
        args.extend(["--", "sh", "-c", script].map(String::from));
        let mut h = Helper::spawn_in(&["--port", "--protocol", "1", "--pooled"], Some(dir.path()));
        h.send(&Down::Run(
            args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        ));
        let (reason, fields) = h.finish(SOON);
        assert_eq!(reason, Reason::Exit, "{}", h.stderr());
        assert_eq!(int(&fields, key::EXIT_STATUS), 0, "{}", h.stderr());
        let want = format!("-sh\n{}\n1\n", dash.display());
        assert_eq!(h.out_text(), want, "split: {split}");
    }
}
