//! The portable backend (macOS, FreeBSD), run here on Linux under
//! `CORRAL_TEST_PORTABLE=1`: the child is forked into its own process
//! group, the helper is no subreaper, makes no cgroup and has no
//! parent-death signal; the tree is the process group, ended by the same
//! SIGSTOP/SIGTERM/grace/SIGKILL sequence; limits are measured from the
//! process table and `wait4`. `make portable` also type-checks the crates
//! for macOS and FreeBSD.

mod support;

use corral_proto::containment::NO_SUBREAPER;
use corral_proto::{key, Reason};
use std::time::Duration;
use support::*;

/// Every test in this binary wants the switch, so setting it for the
/// whole process (and so every helper it starts) is the same to all.
fn portable() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::env::set_var("CORRAL_TEST_PORTABLE", "1"));
}

#[test]
fn output_is_exact_and_containment_is_the_process_group() {
    portable();
    // No --no-cgroup: this host has cgroups, and the portable backend
    // still makes none.
    let bin = testbin("print_lots");
    let mut h = Helper::port(&[], &[&bin, "10000000"]);
    h.ack = Ack::Batch(DEFAULT_WINDOW / 4);
    h.started();
    assert_eq!(h.containment, Some(NO_SUBREAPER));
    assert!(h.cgroups.is_empty(), "{:?}", h.cgroups);
    let (reason, fields) = h.finish(Duration::from_secs(30));
    assert_pattern(&h.out, 10_000_000);
    assert_eq!(reason, Reason::Exit);
    assert_eq!(int(&fields, key::EXIT_STATUS), 0);
    assert_eq!(int(&fields, key::CONTAINMENT), u64::from(NO_SUBREAPER));
    assert_eq!(h.exit_code(SOON), 0);
}

#[test]
fn stdout_stderr_and_the_exit_status() {
    portable();
    let mut h = Helper::port(
        &["--stderr", "pipe"],
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
    );
    h.started();
    let (reason, fields) = h.finish(SOON);
    assert_eq!(h.out_text(), "out\n");
    assert_eq!(h.err, b"err\n");
    assert_eq!(reason, Reason::Exit);
    assert_eq!(int(&fields, key::EXIT_STATUS), 3);
    assert_eq!(h.exit_code(SOON), 3);
}

#[test]
fn cgroup_options_are_refused_with_a_clear_message() {
    portable();
    for opts in [
        &["--cgroup-set", "memory_max=67108864"][..],
        &["--cgroup-base", "corral-portable"],
        &["--cpu-limit", "50"],
    ] {
        let mut h = Helper::port(opts, &["echo", "never"]);
        h.until("F", SOON, |h| h.failed.is_some() || h.eof);
        h.close_control();
        let fields = h.failed.clone().unwrap_or_else(|| panic!("{opts:?}: no F"));
        assert_eq!(text(&fields, key::STAGE), "cgroup", "{opts:?}");
        assert_eq!(text(&fields, key::ERRNO_NAME), "enosys", "{opts:?}");
        let message = text(&fields, key::MESSAGE);
        assert!(
            message.contains("cgroups are not available"),
            "{opts:?}: {message}"
        );
        assert!(h.out.is_empty(), "{opts:?}: the command ran");
        assert_eq!(h.exit_code(SOON), 125, "{opts:?}");
    }
}

#[test]
fn timeout_ends_the_process_group() {
    portable();
    let script = "sleep 300 & echo ready $!; exec sleep 300";
    let mut h = Helper::port(&["--timeout", "300ms"], &["sh", "-c", script]);
    let mut pids = h.ready();
    pids.push(h.child_pid.expect("S"));
    let (reason, fields) = h.finish(SOON);
    let left = wait_gone(&pids, Duration::from_secs(2));
    kill_all(&left);
    assert_eq!(reason, Reason::Timeout);
    assert_eq!(int(&fields, key::EXIT_STATUS), 143);
    assert!(left.is_empty(), "still alive after the timeout: {left:?}");
    assert_eq!(h.exit_code(SOON), 143);
}

#[test]
fn closing_the_control_channel_ends_the_process_group_and_its_orphans() {
    portable();
    // The inner shell starts a sleep and exits: the sleep is orphaned away
    // from the helper (no subreaper) but stays in the process group.
    let script = "sh -c 'sleep 300 >/dev/null 2>&1 & echo ready $! $$'; exec sleep 300";
    let mut h = Helper::port(&[], &["sh", "-c", script]);
    let pids = h.ready();
    let (orphan, inner) = (pids[0], pids[1]);
    let child = h.child_pid.expect("S");
    let inner_left = wait_gone(&[inner], SOON);
    h.close_control();
    let left = wait_gone(&[orphan, child], Duration::from_secs(2));
    kill_all(&left);
    assert!(inner_left.is_empty(), "the inner shell never exited");
    assert!(left.is_empty(), "still alive 2 s after EOF: {left:?}");
    h.wait(Duration::from_secs(2));
}

#[test]
fn a_descendant_in_its_own_session_is_killed_with_its_parent() {
    portable();
    // The shell ignores SIGTERM (and so do its children), so it lives to
    // the SIGKILL; the setsid'd sleep is in no group of the tree, found only
    // through the shell: it must be found before the shell dies.
    let script = "trap '' TERM; setsid sleep 300 & echo ready $!; sleep 300 & wait";
    let mut h = Helper::port(&["--grace", "100ms"], &["sh", "-c", script]);
    let mut pids = h.ready();
    pids.push(h.child_pid.expect("S"));
    h.close_control();
    let left = wait_gone(&pids, Duration::from_secs(2));
    kill_all(&left);
    assert!(left.is_empty(), "still alive 2 s after EOF: {left:?}");
    h.wait(SOON);
}

#[test]
fn a_sigterm_ignorer_is_killed_after_the_grace() {
    portable();
    let bin = testbin("ignore_sigterm");
    let mut h = Helper::port(&["--timeout", "200ms", "--grace", "200ms"], &[&bin]);
    let pid = h.started();
    let (reason, fields) = h.finish(SOON);
    assert_eq!(reason, Reason::Timeout);
    assert_eq!(int(&fields, key::EXIT_STATUS), 137);
    assert!(wait_gone(&[pid], SOON).is_empty());
    assert_eq!(h.exit_code(SOON), 137);
}

#[test]
fn cpu_time_limit_is_measured_from_the_process_table() {
    portable();
    let bin = testbin("burn_cpu");
    let mut h = Helper::port(&["--cpu-time", "300ms", "--timeout", "20s"], &[&bin]);
    let pid = h.started();
    let (reason, fields) = h.finish(Duration::from_secs(25));
    assert_eq!(reason, Reason::CpuTime);
    let cpu = int(&fields, key::USER_TIME_US) + int(&fields, key::SYSTEM_TIME_US);
    assert!(cpu >= 300_000, "tree CPU {cpu} us under a 300 ms limit");
    assert!(wait_gone(&[pid], SOON).is_empty());
}

#[test]
fn the_child_has_no_parent_death_signal() {
    portable();
    // Linux gives the child PR_SET_PDEATHSIG; the portable backend cannot,
    // so a SIGKILLed helper leaves its group for the BEAM to end
    // (Corral.Orphans kills process group os_pid). This is how the tests
    // know the child was started the portable way.
    let mut h = Helper::port(&[], &["sleep", "300"]);
    let pid = h.started();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(h.pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the helper");
    h.wait(SOON);
    let alive = wait_gone(&[pid], Duration::from_millis(300));
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    kill_all(&alive);
    assert_eq!(alive, vec![pid], "the child died with the helper");
}

#[test]
fn the_command_line_says_what_is_not_contained() {
    portable();
    let out = std::process::Command::new(CORRAL)
        .args(["--", "sh", "-c", "echo hi"])
        .output()
        .expect("run corral");
    assert_eq!(out.stdout, b"hi\n");
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has no subreaper or cgroups"), "stderr: {err}");
}

#[test]
fn pty_nice_and_kill_signal_on_the_fork_path() {
    portable();
    let mut h = Helper::port(
        &["--pty=100x40", "--nice=19", "--stdin=pipe"],
        &["sh", "-c", "stty size; cut -d' ' -f19 /proc/$$/stat; cat"],
    );
    h.started();
    h.until("the size and the nice value", SOON, |h| {
        h.out_text().contains("40 100\r\n19\r\n")
    });
    h.send(&Down::Stdin(b"x\n".to_vec()));
    h.send(&Down::CloseStdin);
    let (_, fields) = h.finish(SOON);
    assert_eq!(int(&fields, key::EXIT_STATUS), 0, "{:?}", h.stderr());
    assert_eq!(h.out_text(), "40 100\r\n19\r\nx\r\nx\r\n");

    // The child leads its own session there too, so the teardown's
    // killpg reaches it with the chosen first signal.
    let mut h = Helper::port(
        &["--pty", "--kill-signal=HUP", "--grace=1h"],
        &[
            "sh",
            "-c",
            "trap 'echo HUP; exit 3' HUP; echo ready; while :; do sleep 0.05; done",
        ],
    );
    h.started();
    h.until("ready", SOON, |h| h.out_text().contains("ready"));
    h.send(&Down::Stop);
    let (reason, fields) = h.finish(SOON);
    assert_eq!(reason, Reason::Stopped);
    assert_eq!(int(&fields, key::EXIT_CODE), 3, "{:?}", h.out_text());
}
