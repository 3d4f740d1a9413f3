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
