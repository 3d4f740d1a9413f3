//! The child's stdin is its own: `/dev/null` by default, or a pipe fed by
//! `I` and closed by `C`. It never shares the control channel.

mod support;

use std::time::{Duration, Instant};
use support::*;

#[test]
fn default_stdin_is_dev_null() {
    let t0 = Instant::now();
    let mut h = Helper::port(&[], &["head", "-c", "1"]);
    h.started();
    let (reason, fields) = h.finish(SOON);
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "head waited for input"
    );
    assert!(h.out.is_empty(), "{:?}", h.out);
    assert_eq!((reason, int(&fields, key::EXIT_STATUS)), (Reason::Exit, 0));
    assert_eq!(h.exit_code(SOON), 0);
}

#[test]
fn piped_stdin_is_echoed_exactly() {
    let bin = testbin("stdin_echo");
    let mut h = Helper::port(&["--stdin", "pipe"], &[&bin]);
    h.started();
    // Several frames, one bigger than a pipe buffer, so the helper queues.
    let data: Vec<u8> = (0..300_000u64).map(pattern).collect();
    for part in [&data[..1], &data[1..70_000], &data[70_000..]] {
        h.send(&Down::Stdin(part.to_vec()));
    }
    h.send(&Down::CloseStdin);
    let (reason, fields) = h.finish(SOON);
    assert_pattern(&h.out, 300_000);
    assert_eq!(h.stdin_written, 300_000, "W frames confirm every byte");
    assert_eq!((reason, int(&fields, key::EXIT_STATUS)), (Reason::Exit, 0));
    assert_eq!(h.exit_code(SOON), 0);
}

#[test]
fn cat_never_sees_control_frames() {
    let mut h = Helper::port(&["--stdin", "pipe"], &["cat"]);
    h.started();
    // Acks go out as each echo arrives, while cat is still reading.
    h.send(&Down::Stdin(b"hello\n".to_vec()));
    h.until("the first echo", SOON, |h| h.out.len() >= 6);
    h.send(&Down::Stdin(b"world\n".to_vec()));
    h.until("the second echo", SOON, |h| h.out.len() >= 12);
    h.send(&Down::CloseStdin);
    h.finish(SOON);
    assert_eq!(h.out_text(), "hello\nworld\n");
    assert_eq!(h.exit_code(SOON), 0);
}

#[test]
fn cat_with_default_stdin_reads_nothing_while_acks_flow() {
    // cat's stdin is /dev/null; the acks for the other stream must not
    // reach it.
    let mut h = Helper::port(
        &["--stderr", "pipe"],
        &["sh", "-c", "head -c 100000 /dev/zero >&2; cat"],
    );
    h.ack = Ack::Batch(1000);
    h.started();
    h.finish(SOON);
    assert_eq!(h.err.len(), 100_000);
    assert!(h.out.is_empty(), "cat read {:?}", h.out_text());
    assert_eq!(h.exit_code(SOON), 0);
}

#[test]
fn stdin_frames_are_ignored_without_a_pipe() {
    let mut h = Helper::port(&[], &["cat"]);
    h.send(&Down::Stdin(b"ignored".to_vec()));
    h.send(&Down::CloseStdin);
    h.started();
    h.finish(SOON);
    assert!(h.out.is_empty());
    assert_eq!(h.exit_code(SOON), 0);
}

/// Sends `data` in `I` frames of at most 64 KiB as the BEAM does: only
/// while what the helper has not confirmed with `W` is below `window`,
/// handling the helper's frames (acking output) while it waits.
fn send_windowed(h: &mut Helper, data: &[u8], window: u64) {
    let mut sent = 0u64;
    for part in data.chunks(65536) {
        while sent - h.stdin_written >= window {
            assert!(h.step(Duration::from_secs(20)), "no W frame in 20 s");
        }
        h.send(&Down::Stdin(part.to_vec()));
        sent += part.len() as u64;
    }
}

#[test]
fn stdin_larger_than_the_window_while_output_is_windowed() {
    // Input and output windows at once: the helper must keep taking
    // control frames (acks, input) while the child is blocked on a full
    // output window, or this deadlocks.
    let bin = testbin("stdin_echo");
    let mut h = Helper::port(&["--stdin", "pipe", "--stdio-window", "65536"], &[&bin]);
    h.ack = Ack::Batch(16384);
    let n = 5_000_000u64;
    let data: Vec<u8> = (0..n).map(pattern).collect();
    send_windowed(&mut h, &data, 65536);
    h.send(&Down::CloseStdin);
    h.started();
    let (reason, fields) = h.finish(Duration::from_secs(20));
    assert_pattern(&h.out, n);
    assert_eq!(h.stdin_written, n, "W frames confirm every byte");
    assert_eq!((reason, int(&fields, key::EXIT_STATUS)), (Reason::Exit, 0));
}

#[test]
fn child_closing_its_stdin_early_does_not_hurt_the_helper() {
    let script = "exec 0<&-; echo ready; sleep 0.3; echo done";
    let mut h = Helper::port(&["--stdin", "pipe"], &["sh", "-c", script]);
    h.ready();
    for _ in 0..20 {
        h.send(&Down::Stdin(vec![b'x'; 70_000]));
    }
    h.send(&Down::CloseStdin);
    let (reason, fields) = h.finish(SOON);
    assert_eq!(h.out_text(), "ready\ndone\n");
    assert_eq!((reason, int(&fields, key::EXIT_STATUS)), (Reason::Exit, 0));
    assert_eq!(h.exit_code(SOON), 0);
}

/// A child that never reads holds a window of input in the helper, no more:
/// a peer that keeps sending `I` frames past the window breaks the protocol,
/// and the helper ends the run (exit 65, no `X`) instead of queueing it all
/// (512 MiB grew a helper to 553 MB).
#[test]
fn input_past_the_window_is_a_protocol_error() {
    let mut h = Helper::port(
        &["--stdin", "pipe", "--stdio-window", "65536"],
        &["sleep", "30"],
    );
    let child = h.started();
    // 64 MiB in 64 KiB frames, without waiting for W.
    let frame = Down::Stdin(vec![b'x'; 65536]).encode();
    for _ in 0..1024 {
        h.send_raw(&frame);
    }
    assert_eq!(h.exit_code(SOON), 65, "{}", h.stderr());
    assert!(h.exit.is_none(), "no X after a protocol error");
    let err = h.stderr_all(SOON);
    assert!(
        err.contains("protocol error") && err.contains("window"),
        "{err}"
    );
    assert!(
        wait_gone(&[child], SOON).is_empty(),
        "the child outlived it"
    );
}

/// The same child with a sender that keeps to the window: nothing breaks,
/// the input waits, and the run ends as the child does.
#[test]
fn input_up_to_the_window_waits_for_a_child_that_does_not_read() {
    let mut h = Helper::port(
        &["--stdin", "pipe", "--stdio-window", "65536"],
        &["sh", "-c", "sleep 0.5"],
    );
    h.started();
    // 64 KiB fill the pipe and are confirmed; another window then waits in
    // the helper, and the sender stops there.
    h.send(&Down::Stdin(vec![b'x'; 65536]));
    h.until("W for the pipe's 64 KiB", SOON, |h| {
        h.stdin_written == 65536
    });
    for _ in 0..4 {
        h.send(&Down::Stdin(vec![b'y'; 16384]));
    }
    let (reason, fields) = h.finish(SOON);
    assert_eq!((reason, int(&fields, key::EXIT_STATUS)), (Reason::Exit, 0));
    assert_eq!(h.exit_code(SOON), 0);
}
