//! Ending the tree: on a closed control channel, on `Q`, on a timeout; `K`
//! signals; an idle helper sleeps.

mod support;

use std::time::{Duration, Instant};
use support::*;

in_both_modes!(
    closing_the_control_channel_ends_every_process,
    sigterm_ignorer_lives_until_delay_to_sigkill,
    stop_frame_ends_the_tree_and_reports_stopped,
    timeout_ends_the_tree,
    leftovers_of_an_exited_child_are_ended,
    closed_output_pipe_ends_the_tree,
    sigterm_to_the_helper_ends_the_tree,
    timeout_escalates_to_sigkill_for_a_sigterm_ignorer,
    every_member_gets_the_first_signal_once,
);

/// A child and a setsid grandchild that each log every SIGTERM and carry
/// on (SIGKILL ends them after the grace); the grandchild first runs
/// `grandchild`, Python at the top level.
fn term_loggers(grandchild: &str) -> String {
    format!(
        "
import os, signal, sys, time
me = 'parent'
if os.fork() == 0:
    os.setsid()
    me = 'child'
{grandchild}
def got(sig, frame):
    os.write(1, (me + ' ' + signal.Signals(sig).name + '\\n').encode())
signal.signal(signal.SIGTERM, got)
os.write(1, (me + ' ready\\n').encode())
while True:
    time.sleep(1)
"
    )
}

/// Once both [`term_loggers`] are ready, stops the run and checks that
/// each logged SIGTERM exactly once. Returns false, having checked
/// nothing, when `needs_cgroup` and the run has none.
fn each_logs_the_first_signal_once(mut h: Helper, needs_cgroup: bool) -> bool {
    h.until("both ready", SOON, |h| {
        h.out_text().matches("ready").count() == 2
    });
    if needs_cgroup && h.containment.unwrap_or(0) & 3 == 0 {
        h.close_control();
        return false;
    }
    h.send(&Down::Stop);
    let (reason, _) = h.finish(SOON);
    assert_eq!(reason, Reason::Stopped);
    let mut lines: Vec<String> = h.out_text().lines().map(str::to_owned).collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "child SIGTERM",
            "child ready",
            "parent SIGTERM",
            "parent ready"
        ],
        "helper stderr {:?}",
        h.stderr()
    );
    true
}

fn every_member_gets_the_first_signal_once(mode: Mode) {
    // The process group is signalled before the scan, and every member the
    // scan finds after it, all while they are stopped: each handler runs
    // once, the setsid grandchild's too, in the polite round.
    let h = Helper::port(
        &with(mode, &["--grace=300ms"]),
        &["python3", "-c", &term_loggers("")],
    );
    assert!(each_logs_the_first_signal_once(h, false));
}

fn closing_the_control_channel_ends_every_process(mode: Mode) {
    let bin = testbin("fork_tree");
    let mut h = Helper::port(mode, &[&bin, "3"]);
    let pids = h.ready();
    // fork_tree, two intermediates, three grandchildren (one setsid'd and
    // orphaned).
    assert_eq!(pids.len(), 6, "{pids:?}");
    assert_eq!(pids[0], h.child_pid.expect("S"));
    assert!(pids.iter().all(|&p| alive(p)));
    h.close_control();
    let left = wait_gone(&pids, Duration::from_secs(1));
    kill_all(&left);
    assert!(left.is_empty(), "still alive 1 s after EOF: {left:?}");
    h.wait(Duration::from_secs(2));
    // Nobody is listening: no X frame.
    h.until("EOF", SOON, |h| h.eof);
    assert!(h.exit.is_none(), "X sent to a closed channel");
}

fn sigterm_ignorer_lives_until_delay_to_sigkill(mode: Mode) {
    let bin = testbin("ignore_sigterm");
    let mut h = Helper::port(&with(mode, &["--grace", "300ms"]), &[&bin]);
    h.ready();
    let pid = h.child_pid.expect("S");
    let t0 = Instant::now();
    h.close_control();
    // Still alive well inside the 300 ms grace...
    std::thread::sleep(Duration::from_millis(100).saturating_sub(t0.elapsed()));
    let alive_at_100ms = alive(pid);
    // ...and gone soon after it.
    let left = wait_gone(&[pid], Duration::from_secs(1).saturating_sub(t0.elapsed()));
    kill_all(&left);
    assert!(alive_at_100ms, "SIGKILL came before the grace period");
    assert!(left.is_empty(), "still alive 1 s after EOF");
    assert!(
        t0.elapsed() >= Duration::from_millis(250),
        "gone after {:?}",
        t0.elapsed()
    );
    h.wait(SOON);
}

fn stop_frame_ends_the_tree_and_reports_stopped(mode: Mode) {
    let bin = testbin("fork_tree");
    let mut h = Helper::port(mode, &[&bin, "2"]);
    let pids = h.ready();
    h.send(&Down::Stop);
    let (reason, fields) = h.finish(SOON);
    let left = wait_gone(&pids, Duration::from_secs(1));
    kill_all(&left);
    assert!(left.is_empty(), "alive after Q: {left:?}");
    assert_eq!(reason, Reason::Stopped);
    assert_eq!(int(&fields, key::EXIT_STATUS), 128 + 15);
    assert_eq!(int(&fields, key::SIGNAL), 15);
    assert_eq!(h.exit_code(SOON), 143);
}

#[test]
fn stop_frame_delivers_output_written_while_terminating() {
    let script = "trap 'echo bye; exit 3' TERM; echo ready; while :; do sleep 0.05; done";
    let mut h = Helper::port(&[], &["sh", "-c", script]);
    h.ready();
    h.send(&Down::Stop);
    let (reason, fields) = h.finish(SOON);
    assert_eq!(h.out_text(), "ready\nbye\n");
    assert_eq!(reason, Reason::Stopped);
    assert_eq!(int(&fields, key::EXIT_STATUS), 3);
    assert_eq!(h.exit_code(SOON), 3);
}

#[test]
fn signal_frame_reaches_the_child() {
    let script = "trap 'echo got-hup; exit 5' HUP; echo ready; while :; do sleep 0.05; done";
    for name in ["SIGHUP", "HUP"] {
        let mut h = Helper::port(&[], &["sh", "-c", script]);
        h.ready();
        h.send(&Down::Signal(name.to_owned()));
        let (reason, fields) = h.finish(SOON);
        assert_eq!(h.out_text(), "ready\ngot-hup\n", "K {name}");
        assert_eq!(reason, Reason::Exit, "K {name}");
        assert_eq!(int(&fields, key::EXIT_STATUS), 5, "K {name}");
        assert_eq!(h.exit_code(SOON), 5, "K {name}");
    }
}

fn timeout_ends_the_tree(mode: Mode) {
    let mut h = Helper::port(&with(mode, &["--timeout", "300ms"]), &["sleep", "10"]);
    let pid = h.started();
    let (reason, fields) = h.finish(SOON);
    assert_eq!(reason, Reason::Timeout);
    let wall = int(&fields, key::WALL_TIME_US);
    assert!((250_000..=800_000).contains(&wall), "wall_time_us {wall}");
    assert_eq!(int(&fields, key::EXIT_STATUS), 143);
    assert_eq!(text(&fields, key::SIGNAL_NAME), "SIGTERM");
    assert!(!alive(pid));
    assert_eq!(h.exit_code(SOON), 143);
}

fn leftovers_of_an_exited_child_are_ended(mode: Mode) {
    // The child exits at once; the background sleep it leaves is ended, and
    // the report is the child's own exit.
    let mut h = Helper::port(mode, &["sh", "-c", "sleep 30 & echo ready $!; exit 4"]);
    let pids = h.ready();
    let (reason, fields) = h.finish(SOON);
    let left = wait_gone(&pids, Duration::from_secs(1));
    kill_all(&left);
    assert!(left.is_empty(), "background sleep survived");
    assert_eq!(reason, Reason::Exit);
    assert_eq!(int(&fields, key::EXIT_STATUS), 4);
    assert_eq!(h.exit_code(SOON), 4);
}

#[test]
fn idle_helper_does_not_wake_up() {
    let mut h = Helper::port(&[], &["sleep", "5"]);
    h.started();
    assert_idle(h.pid, "child sleeping");
    h.send(&Down::Stop);
    h.until("X", SOON, |h| h.exit.is_some());
    // Waiting for the BEAM to close the port after X is idle too.
    assert_idle(h.pid, "after X");
    h.finish(SOON);
}

#[test]
fn helper_with_a_full_window_does_not_spin() {
    let bin = testbin("print_lots");
    let mut h = Helper::port(&["--stdio-window", "65536"], &[&bin, "10000000"]);
    h.ack = Ack::Never;
    h.started();
    h.until("a full window", SOON, |h| h.received == 65536);
    assert_idle(h.pid, "window full");
    h.ack = Ack::Every;
    h.ack(h.in_flight);
    h.finish(SOON);
    assert_pattern(&h.out, 10_000_000);
}

#[test]
fn a_full_window_stops_the_childs_writes_from_waking_the_helper() {
    // The child goes on writing (100 bytes every few ms, far from filling
    // the pipe) while the BEAM acks nothing: the helper sleeps all the same.
    let script = "while :; do printf %0100d 0; sleep 0.003; done";
    let mut h = Helper::port(&["--stdio-window", "4096"], &["/bin/sh", "-c", script]);
    h.ack = Ack::Never;
    h.started();
    h.until("a full window", SOON, |h| h.received == 4096);
    assert_idle(h.pid, "window full, child writing");
    // An ack brings the pipe back: output flows again.
    h.ack = Ack::Every;
    h.ack(h.in_flight);
    h.until("output after the ack", SOON, |h| h.received >= 8192);
    h.send(&Down::Stop);
    h.finish(SOON);
    assert!(h.out.iter().all(|b| *b == b'0'));
}

fn closed_output_pipe_ends_the_tree(mode: Mode) {
    // The BEAM's read end goes away while the control channel stays open:
    // the next write fails with EPIPE and the helper must end the tree.
    let script = "sleep 30 & echo ready $$ $!; while :; do echo tick; sleep 0.02; done";
    let mut h = Helper::port(mode, &["sh", "-c", script]);
    let pids = h.ready();
    assert_eq!(pids.len(), 2);
    h.close_output();
    let left = wait_gone(&pids, Duration::from_secs(2));
    kill_all(&left);
    assert!(left.is_empty(), "alive after EPIPE: {left:?}");
    h.wait(SOON);
}

fn sigterm_to_the_helper_ends_the_tree(mode: Mode) {
    let bin = testbin("fork_tree");
    let mut h = Helper::port(mode, &[&bin, "2"]);
    let pids = h.ready();
    // SAFETY: kill(2) with plain integers; the helper is our child.
    unsafe { libc::kill(h.pid, libc::SIGTERM) };
    let left = wait_gone(&pids, Duration::from_secs(1));
    kill_all(&left);
    assert!(
        left.is_empty(),
        "alive after SIGTERM to the helper: {left:?}"
    );
    h.finish(SOON);
    h.wait(SOON);
}

fn timeout_escalates_to_sigkill_for_a_sigterm_ignorer(mode: Mode) {
    let bin = testbin("ignore_sigterm");
    let mut h = Helper::port(
        &with(mode, &["--timeout", "200ms", "--grace", "200ms"]),
        &[&bin],
    );
    let pid = h.started();
    let (reason, fields) = h.finish(SOON);
    assert_eq!(reason, Reason::Timeout);
    assert_eq!(int(&fields, key::SIGNAL), 9);
    assert_eq!(int(&fields, key::EXIT_STATUS), 137);
    let wall = int(&fields, key::WALL_TIME_US);
    assert!((350_000..=1_000_000).contains(&wall), "wall_time_us {wall}");
    assert!(!alive(pid));
    assert_eq!(h.exit_code(SOON), 137);
}

#[test]
fn usage_counts_cpu_and_memory_of_the_tree() {
    let burn = testbin("burn_cpu");
    let alloc = testbin("alloc_mb");
    // CPU burnt by one grandchild, memory held by the next one; the helper
    // reaps them all, so both count.
    let script = format!("{burn} 1 0.3; {alloc} 64");
    let mut h = Helper::port(&["--timeout", "2000ms"], &["sh", "-c", &script]);
    h.started();
    h.until("both ready", SOON, |h| {
        h.out.iter().filter(|&&b| b == b'\n').count() >= 2
    });
    h.send(&Down::Stop);
    let (reason, fields) = h.finish(SOON);
    assert_eq!(reason, Reason::Stopped);
    let cpu = int(&fields, key::USER_TIME_US) + int(&fields, key::SYSTEM_TIME_US);
    assert!(cpu >= 50_000, "tree CPU {cpu} us for a 0.3 s burner");
    let peak = int(&fields, key::PEAK_MEMORY);
    assert!(peak >= 64 << 20, "peak memory {peak} for a 64 MiB child");
}

#[test]
fn fork_burst_without_a_cgroup_ends_at_max_processes_and_leaves_nothing() {
    // 300 sleeps forked as fast as one shell can, each printing its pid,
    // under a limit of 16: the run ends for max_processes (from fork
    // events where the helper may subscribe, else from /proc polls), the
    // burst is cut short, and every process it started is gone.
    let script = "for i in $(seq 300); do sleep 100 & echo $!; done; wait";
    let mut h = Helper::port(
        &["--no-cgroup", "--max-processes", "16", "--grace", "100ms"],
        &["sh", "-c", script],
    );
    h.started();
    let (reason, fields) = h.finish(Duration::from_secs(30));
    let pids: Vec<i32> = h
        .out_text()
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let left = wait_gone(&pids, Duration::from_secs(5));
    kill_all(&left);
    assert_eq!(reason, Reason::MaxProcesses);
    assert!(left.is_empty(), "{} of the burst survived", left.len());
    assert!(pids.len() < 300, "the burst ran to its end");
    assert!(
        int(&fields, key::PEAK_PROCESSES) > 16,
        "the peak passed the limit"
    );
}

/// Moves the grandchild of [`term_loggers`] out of the run's cgroup, into
/// its parent (root may).
const ESCAPE: &str = "
if me == 'child':
    rel = [l.split(':', 2)[2].strip() for l in open('/proc/self/cgroup') if l.startswith('0::')][0]
    root = [l.split()[4] for l in open('/proc/self/mountinfo') if ' - cgroup2 ' in l][0]
    with open(root + os.path.dirname(rel) + '/cgroup.procs', 'w') as f:
        f.write(str(os.getpid()))
";

#[test]
fn a_member_moved_out_of_the_cgroup_still_gets_the_first_signal_once() {
    // The polite round reads only cgroup.procs; the walk after it finds
    // the setsid grandchild the cgroup no longer lists, and a second round
    // signals it alone: each handler runs once.
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED a_member_moved_out_of_the_cgroup...: needs root to move a process");
        return;
    }
    let script = term_loggers(ESCAPE);
    let h = Helper::port(&["--grace=300ms"], &["python3", "-c", &script]);
    if !each_logs_the_first_signal_once(h, true) {
        eprintln!("SKIPPED a_member_moved_out_of_the_cgroup...: no cgroup here");
    }
}
