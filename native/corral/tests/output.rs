//! Output through the window: byte-exact, bounded, tagged, delivered before
//! the exit report.

mod support;

use std::time::Duration;
use support::*;

/// Runs `print_lots n` under `ack` and checks every byte and the report.
fn exact(n: u64, opts: &[&str], ack: Ack) {
    let bin = testbin("print_lots");
    let count = n.to_string();
    let mut h = Helper::port(opts, &[&bin, &count]);
    h.ack = ack;
    h.started();
    let (reason, fields) = h.finish(Duration::from_secs(20));
    assert_pattern(&h.out, n);
    assert!(h.err.is_empty());
    assert_eq!(reason, Reason::Exit);
    assert_eq!(int(&fields, key::EXIT_STATUS), 0);
    assert_eq!(int(&fields, key::EXIT_CODE), 0);
    assert_eq!(h.exit_code(SOON), 0);
}

#[test]
fn exact_1_byte() {
    exact(1, &[], Ack::Every);
}

#[test]
fn exact_10000_bytes() {
    exact(10_000, &[], Ack::Every);
}

#[test]
fn exact_20000_bytes() {
    exact(20_000, &[], Ack::Every);
}

#[test]
fn exact_100000_bytes() {
    exact(100_000, &[], Ack::Batch(DEFAULT_WINDOW / 4));
}

#[test]
fn exact_1000000_bytes() {
    exact(1_000_000, &[], Ack::Batch(DEFAULT_WINDOW / 4));
}

#[test]
fn exact_50000000_bytes() {
    exact(50_000_000, &[], Ack::Batch(DEFAULT_WINDOW / 4));
}

#[test]
fn exact_with_a_small_window_and_full_window_acks() {
    exact(1_000_000, &["--stdio-window", "4096"], Ack::Batch(4096));
}

#[test]
fn a_small_frame_reaches_the_beam_whole() {
    // A child that writes 1000 bytes at a time with pauses, so the reader
    // waits in read(2) each time a frame comes. Header and payload enter
    // the pipe together: no read ends inside a frame (the BEAM's port
    // driver would wake for the header alone, then read page by page).
    let script = "for i in $(seq 60); do printf %01000d 0; sleep 0.003; done";
    let mut h = Helper::port(&[], &["/bin/sh", "-c", script]);
    h.started();
    let (reason, _) = h.finish(Duration::from_secs(20));
    assert_eq!(reason, Reason::Exit);
    assert_eq!(h.out, vec![b'0'; 60_000]);
    let frames = h.tags.iter().filter(|t| **t == b'O').count();
    assert!(
        frames >= 10,
        "{frames} frames: the pauses did not split the output"
    );
    assert_eq!(
        h.cut_reads.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "reads that ended inside a frame, of {frames} frames"
    );
}

/// The helper's flag for output the BEAM reads itself.
const DIRECT: &[&str] = &["--direct-output"];

/// Runs `print_lots n` behind a reader that acks a quarter window at a
/// time after `delay` (so the child fills its pipe), with `direct` for
/// `P` frames; checks every byte and the exit.
fn slow_reader(opts: &[&str], n: u64, delay: Duration, direct: Direct) -> Helper {
    let bin = testbin("print_lots");
    let count = n.to_string();
    let mut h = Helper::port(opts, &[&bin, &count]);
    h.ack = Ack::Batch(DEFAULT_WINDOW / 4);
    h.ack_delay = delay;
    h.direct = direct;
    h.started();
    let (reason, _) = h.finish(Duration::from_secs(30));
    assert_eq!(reason, Reason::Exit);
    assert_pattern(&h.out, n);
    h
}

#[test]
fn no_frame_is_bigger_than_what_the_beam_reads_at_once() {
    // A slow reader lets the child fill its pipe (1 MiB) while the window
    // is full, so each ack finds far more than 64 KiB ready. The BEAM's
    // port driver reads 64 KiB per wake-up: a bigger frame would be
    // gathered over several and copied twice. Without --direct-output
    // nothing is left in a pipe for the BEAM.
    let h = slow_reader(&[], 4_000_000, Duration::from_millis(30), Direct::Read);
    assert!(!h.tags.contains(&b'P'), "a P frame");
    assert_eq!(h.largest, corral_proto::MAX_DATA, "the largest payload");
    assert_eq!(
        corral_proto::HEADER + 1 + h.largest,
        corral_proto::BEAM_READ
    );
}

#[test]
fn window_bounds_unacked_output_and_acks_resume_it() {
    let bin = testbin("print_lots");
    let mut h = Helper::port(&["--stdio-window", "65536"], &[&bin, "1000000"]);
    h.ack = Ack::Never;
    h.started();
    // Take frames until nothing has come for 300 ms (within a deadline).
    let deadline = std::time::Instant::now() + SOON;
    while h.step(Duration::from_millis(300)) {
        assert!(std::time::Instant::now() < deadline, "output never stalled");
    }
    assert!(!h.eof, "the helper finished without acks");
    assert_eq!(
        h.received, 65536,
        "with no acks the helper sends exactly one window, then stalls"
    );
    assert!(
        !h.step(Duration::from_millis(300)),
        "sent past a full window"
    );
    h.ack = Ack::Every;
    h.ack(h.in_flight);
    let (reason, fields) = h.finish(SOON);
    assert_pattern(&h.out, 1_000_000);
    assert_eq!((reason, int(&fields, key::EXIT_STATUS)), (Reason::Exit, 0));
    assert_eq!(h.exit_code(SOON), 0);
}

const BOTH: &str = "echo out; echo err >&2; echo out2; echo err2 >&2";

#[test]
fn stdout_and_stderr_are_tagged_separately() {
    let mut h = Helper::port(&["--stderr", "pipe"], &["sh", "-c", BOTH]);
    h.started();
    h.finish(SOON);
    assert_eq!(h.out_text(), "out\nout2\n");
    assert_eq!(String::from_utf8_lossy(&h.err), "err\nerr2\n");
    assert_eq!(h.exit_code(SOON), 0);
}

#[test]
fn stderr_to_stdout_merges_into_o_frames_in_order() {
    let mut h = Helper::port(&["--stderr", "stdout"], &["sh", "-c", BOTH]);
    h.started();
    h.finish(SOON);
    assert_eq!(h.out_text(), "out\nerr\nout2\nerr2\n");
    assert!(!h.tags.contains(&b'E'), "no E frames: {:?}", h.tags);
    assert_eq!(h.exit_code(SOON), 0);
}

#[test]
fn stderr_counts_against_the_window_too() {
    // Both streams flood; the window bounds their sum.
    let mut h = Helper::port(
        &["--stderr", "pipe", "--stdio-window", "8192"],
        &[
            "sh",
            "-c",
            "head -c 300000 /dev/zero >&2 & head -c 300000 /dev/zero; wait",
        ],
    );
    h.ack = Ack::Batch(2048);
    h.started();
    h.finish(SOON);
    assert_eq!(h.out.len(), 300_000);
    assert_eq!(h.err.len(), 300_000);
    assert!(h.out.iter().chain(&h.err).all(|&b| b == 0));
}

#[test]
fn exit_report_comes_after_all_output_with_a_slow_consumer() {
    let mut h = Helper::port(&[], &["sh", "-c", "head -c 3000000 /dev/zero; exit 7"]);
    h.ack_delay = Duration::from_millis(3);
    h.started();
    let (reason, fields) = h.finish(Duration::from_secs(20));
    assert_eq!(h.out.len(), 3_000_000);
    assert!(h.out.iter().all(|&b| b == 0));
    assert_eq!(reason, Reason::Exit);
    assert_eq!(int(&fields, key::EXIT_STATUS), 7);
    assert_eq!(int(&fields, key::EXIT_CODE), 7);
    assert_eq!(h.exit_code(SOON), 7);
}

#[test]
fn output_of_a_child_that_exits_at_once_is_kept() {
    // The MuonTrap fault: output lost when the command exits.
    for _ in 0..20 {
        let mut h = Helper::port(&[], &["head", "-c", "20000", "/dev/zero"]);
        h.started();
        h.finish(SOON);
        assert_eq!(h.out.len(), 20_000);
        assert_eq!(h.exit_code(SOON), 0);
    }
}

#[test]
fn a_fast_child_s_output_is_read_by_the_beam_from_the_pipe() {
    // Past a frame's worth in its pipe, the helper tells the BEAM to read
    // the child's output (P) instead of relaying it, and counts it in the
    // window (the harness checks that on every P it reads).
    let h = slow_reader(DIRECT, 20_000_000, Duration::from_millis(5), Direct::Read);
    assert!(h.tags.contains(&b'P'), "no P frame");
    assert!(h.read_directly > 0);
    assert_eq!(h.tags.last(), Some(&b'X'));
    assert_eq!(h.after_last, 0);
}

#[test]
fn refused_output_is_relayed_to_the_end() {
    let h = slow_reader(DIRECT, 4_000_000, Duration::from_millis(30), Direct::Refuse);
    assert_eq!(h.tags.iter().filter(|t| **t == b'P').count(), 1, "one P");
    assert_eq!(h.read_directly, 0);
}
