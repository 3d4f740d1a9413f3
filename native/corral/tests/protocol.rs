//! The protocol's edges: version check and bad frames from the BEAM.

mod support;

use std::time::Duration;
use support::*;

#[test]
fn wrong_protocol_version_exits_64_before_any_frame() {
    let mut h = Helper::spawn(&["--port", "--protocol", "2", "--", "true"]);
    assert_eq!(h.exit_code(SOON), 64);
    h.until("EOF", SOON, |h| h.eof);
    assert!(h.tags.is_empty(), "frames sent: {:?}", h.tags);
    assert!(
        !h.stderr_all(SOON).trim().is_empty(),
        "no message on stderr"
    );
}

#[test]
fn missing_protocol_version_exits_64() {
    let mut h = Helper::spawn(&["--port", "--", "true"]);
    assert_eq!(h.exit_code(SOON), 64);
    h.until("EOF", SOON, |h| h.eof);
    assert!(h.tags.is_empty(), "frames sent: {:?}", h.tags);
}

/// Sends `bytes` to a helper running `fork_tree` and expects the tree gone
/// and exit status 65.
fn protocol_error(mode: Mode, bytes: &[u8]) {
    let bin = testbin("fork_tree");
    let mut h = Helper::port(mode, &[&bin, "2"]);
    let pids = h.ready();
    h.send_raw(bytes);
    let code = h.exit_code(SOON);
    let left = wait_gone(&pids, Duration::from_secs(1));
    kill_all(&left);
    assert!(left.is_empty(), "alive after a protocol error: {left:?}");
    assert_eq!(code, 65, "helper stderr {:?}", h.stderr());
}

in_both_modes!(unknown_tag_is_a_protocol_error);

fn unknown_tag_is_a_protocol_error(mode: Mode) {
    protocol_error(mode, &[0, 0, 0, 1, b'Z']);
}

#[test]
fn empty_frame_is_a_protocol_error() {
    protocol_error(&[], &[0, 0, 0, 0]);
}

#[test]
fn oversized_frame_is_a_protocol_error() {
    protocol_error(&[], &[0x7f, 0xff, 0xff, 0xff, b'I']);
}

#[test]
fn truncated_ack_is_a_protocol_error() {
    protocol_error(&[], &[0, 0, 0, 3, b'A', 0, 1]);
}

#[test]
fn helper_waits_for_the_control_channel_to_close_after_x() {
    let mut h = Helper::port(&[], &["sh", "-c", "echo hi; exit 6"]);
    h.started();
    h.until("X", SOON, |h| h.exit.is_some());
    // Still there, still reading: a late ack must not fail.
    let t0 = std::time::Instant::now();
    while t0.elapsed() < Duration::from_millis(200) {
        assert!(
            alive(h.pid),
            "helper exited before the BEAM closed the port"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    h.send(&Down::Ack(0));
    assert!(alive(h.pid), "helper exited on a late ack");
    h.close_control();
    assert_eq!(h.exit_code(SOON), 6);
    h.until("EOF", SOON, |h| h.eof);
    assert_eq!(h.out_text(), "hi\n");
    assert_eq!(h.tags, b"SOX");
}
