//! erlexec's controls: a pseudo-terminal (`--pty`), `--nice`,
//! `--kill-signal` and `--clear-env`, in port mode and for people.

mod support;

use corral_proto::Deframer;
use std::io::Read;
use std::process::{Command, Stdio};
use support::*;

const ISATTY: &[&str] = &["python3", "-c", "import sys; print(sys.stdout.isatty())"];

#[test]
fn pty_output_arrives_as_the_terminal_produced_it() {
    let mut h = Helper::port(&["--pty"], ISATTY);
    h.started();
    let (reason, fields) = h.finish(SOON);
    assert_eq!(reason, Reason::Exit);
    assert_eq!(int(&fields, key::EXIT_STATUS), 0, "{:?}", h.stderr());
    assert_eq!(h.out_text(), "True\r\n");
    assert_eq!(
        h.tags.iter().filter(|t| **t == b'E').count(),
        0,
        "stderr is the terminal too"
    );
}

#[test]
fn without_pty_output_is_a_pipe() {
    let mut h = Helper::port(&[], ISATTY);
    h.started();
    h.finish(SOON);
    assert_eq!(h.out_text(), "False\n");
}

#[test]
fn pty_size_is_set_and_a_t_frame_resizes_it() {
    let mut h = Helper::port(
        &["--pty=100x40", "--stdin=pipe"],
        &["sh", "-c", "stty size; read line; stty size"],
    );
    h.started();
    h.until("the first size", SOON, |h| {
        h.out_text().contains("40 100\r\n")
    });
    h.send(&Down::Resize {
        cols: 120,
        rows: 50,
    });
    h.send(&Down::Stdin(b"\n".to_vec()));
    let (_, fields) = h.finish(SOON);
    assert_eq!(int(&fields, key::EXIT_STATUS), 0, "{:?}", h.stderr());
    let out = h.out_text();
    assert!(out.starts_with("40 100\r\n"), "{out:?}");
    assert!(out.ends_with("50 120\r\n"), "{out:?}");
}

#[test]
fn a_t_frame_without_a_pty_is_ignored() {
    let mut h = Helper::port(
        &["--stdin=pipe"],
        &["sh", "-c", "read line; echo \"$line\""],
    );
    h.started();
    h.send(&Down::Resize { cols: 10, rows: 10 });
    h.send(&Down::Stdin(b"still here\n".to_vec()));
    let (_, fields) = h.finish(SOON);
    assert_eq!(int(&fields, key::EXIT_STATUS), 0, "{:?}", h.stderr());
    assert_eq!(h.out_text(), "still here\n");
}

#[test]
fn closing_a_pty_input_sends_the_terminal_eof() {
    // No newline: the first VEOF hands "abc" to cat's read, the second is
    // the end of file; cat then exits 0 with the terminal still open.
    let mut h = Helper::port(&["--pty", "--stdin=pipe"], &["cat"]);
    h.started();
    h.send(&Down::Stdin(b"abc".to_vec()));
    h.send(&Down::CloseStdin);
    let (reason, fields) = h.finish(SOON);
    assert_eq!(reason, Reason::Exit);
    assert_eq!(int(&fields, key::EXIT_STATUS), 0, "{:?}", h.stderr());
    // The terminal echoes the input, then cat writes it back.
    assert_eq!(h.out_text(), "abcabc");
    assert_eq!(h.stdin_written, 3, "only the BEAM's bytes are confirmed");
}

#[test]
fn a_pty_without_stdin_pipe_is_at_end_of_file() {
    let mut h = Helper::port(&["--pty"], &["sh", "-c", "cat; echo done"]);
    h.started();
    let (_, fields) = h.finish(SOON);
    assert_eq!(int(&fields, key::EXIT_STATUS), 0);
    assert_eq!(h.out_text(), "done\r\n");
}

/// Field 19 of `/proc/self/stat`, the nice value, as the child sees it.
const NICE_OF_SELF: &[&str] = &["sh", "-c", "cut -d' ' -f19 /proc/$$/stat"];

/// A nice value the helper may give: unprivileged, only one at or above
/// its own (the tests may run under `nice -n 15`).
fn lower_priority() -> &'static str {
    if is_root() {
        "10"
    } else {
        "19"
    }
}

#[test]
fn nice_sets_the_childs_priority() {
    let n = lower_priority();
    let mut h = Helper::port(&[&format!("--nice={n}")], NICE_OF_SELF);
    h.started();
    h.finish(SOON);
    assert_eq!(h.out_text(), format!("{n}\n"));
}

/// `corral ARGS` as user nobody, so that raising a priority is refused.
fn as_nobody(args: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", CORRAL]);
    c.args(args);
    c
}

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

#[test]
fn raising_the_priority_without_privilege_is_a_start_failure() {
    let mut c = if is_root() {
        as_nobody(&["--port", "--protocol", "1", "--nice=-5", "--", "true"])
    } else {
        let mut c = Command::new(CORRAL);
        c.args(["--port", "--protocol", "1", "--nice=-5", "--", "true"]);
        c
    };
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("corral runs");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut d = Deframer::default();
    let mut buf = [0u8; 4096];
    let frame = loop {
        if let Some(body) = d.next_frame().expect("frames") {
            break Up::decode(&body).expect("decodes");
        }
        let n = stdout.read(&mut buf).expect("read");
        assert!(n > 0, "no frame from the helper");
        d.push(&buf[..n]);
    };
    drop(child.stdin.take());
    let status = child.wait().expect("exits");
    let Up::Failed { fields, .. } = frame else {
        panic!("expected F, got {frame:?}")
    };
    assert_eq!(text(&fields, key::STAGE), "nice");
    assert_eq!(text(&fields, key::ERRNO_NAME), "eacces");
    assert!(
        text(&fields, key::MESSAGE).contains("CAP_SYS_NICE"),
        "{fields:?}"
    );
    assert_eq!(status.code(), Some(126));
}

/// Traps INT, TERM, HUP and QUIT, prints each it gets (and `ready`), and
/// exits 7 on INT. SIGKILL cannot be caught: a status of 7 proves it never came.
const TRAPS: &str = "
import os, signal, sys, time
def got(sig, frame):
    os.write(1, (signal.Signals(sig).name + '\\n').encode())
    if sig == signal.SIGINT:
        sys.exit(7)
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
    signal.signal(s, got)
os.write(1, b'ready\\n')
while True:
    time.sleep(1)
";

in_both_modes!(kill_signal_int_ends_a_child_that_exits_on_it);

fn kill_signal_int_ends_a_child_that_exits_on_it(mode: Mode) {
    // A grace far longer than the test: SIGKILL would make the status 137.
    let mut h = Helper::port(
        &with(mode, &["--kill-signal=INT", "--grace=1h"]),
        &["python3", "-c", TRAPS],
    );
    h.ready();
    h.send(&Down::Stop);
    let (reason, fields) = h.finish(SOON);
    assert_eq!(reason, Reason::Stopped);
    assert_eq!(int(&fields, key::EXIT_CODE), 7, "{:?}", h.stderr());
    assert_eq!(fields.get_int(key::SIGNAL), None);
    assert_eq!(h.out_text(), "ready\nSIGINT\n");
}

#[test]
fn the_default_kill_signal_is_term() {
    let mut h = Helper::port(&["--grace=200ms"], &["python3", "-c", TRAPS]);
    h.ready();
    h.send(&Down::Stop);
    let (_, fields) = h.finish(SOON);
    // It logs SIGTERM and carries on; SIGKILL follows the grace.
    assert_eq!(int(&fields, key::SIGNAL), 9);
    assert_eq!(h.out_text(), "ready\nSIGTERM\n");
}

#[test]
fn bad_kill_signals_and_nice_values_are_usage_errors() {
    for args in [
        ["--kill-signal=STOP"],
        ["--kill-signal=NOPE"],
        ["--nice=20"],
        ["--nice=-21"],
    ] {
        let o = Command::new(CORRAL)
            .args(args)
            .args(["--", "true"])
            .output()
            .expect("corral runs");
        assert_eq!(o.status.code(), Some(125), "{args:?}");
    }
    let o = Command::new(CORRAL)
        .args(["--pty=80", "--", "true"])
        .output()
        .expect("corral runs");
    assert_eq!(o.status.code(), Some(125));
}

#[test]
fn clear_env_passes_only_what_was_set() {
    let mut h = Helper::port(&["--clear-env", "--env=A=1"], &["/usr/bin/env"]);
    h.started();
    h.finish(SOON);
    assert_eq!(h.out_text(), "A=1\n");
}

fn person(args: &[&str]) -> std::process::Output {
    Command::new(CORRAL)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("corral runs")
}

#[test]
fn for_people_clear_env_passes_only_what_was_set() {
    let o = person(&["-q", "--clear-env", "--env", "A=1", "--", "env"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "A=1\n");
}

#[test]
fn for_people_pty_output_is_copied_as_it_is() {
    let mut args = vec!["-q", "--pty=100x40", "--"];
    args.extend_from_slice(ISATTY);
    let o = person(&args);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "True\r\n");
    let o = person(&["-q", "--pty=100x40", "--", "stty", "size"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "40 100\r\n");
}

#[test]
fn for_people_nice_and_kill_signal() {
    let n = lower_priority();
    let o = person(&[
        "-q",
        "--nice",
        n,
        "--",
        "sh",
        "-c",
        "cut -d' ' -f19 /proc/$$/stat",
    ]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), format!("{n}\n"));
    // SIGTERM to corral, as a person's `kill`, ends the tree with the
    // kill signal once the command is ready: the trap exits 7.
    let mut corral = Command::new(CORRAL)
        .args(["-q", "--kill-signal", "INT", "--grace", "1h", "--"])
        .args(["python3", "-c", TRAPS])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("corral runs");
    let mut out = std::io::BufReader::new(corral.stdout.take().expect("stdout"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).expect("a line");
    assert_eq!(line, "ready\n");
    // SAFETY: kill(2) on the corral we started.
    unsafe { libc::kill(corral.id() as i32, libc::SIGTERM) };
    let mut rest = String::new();
    out.read_to_string(&mut rest).expect("the rest");
    assert_eq!(rest, "SIGINT\n");
    assert_eq!(corral.wait().expect("exits").code(), Some(7));
    if is_root() {
        let o = as_nobody(&["-q", "--nice=-5", "--", "true"])
            .output()
            .expect("corral runs");
        assert_eq!(o.status.code(), Some(126));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("nice") && err.contains("CAP_SYS_NICE"),
            "{err}"
        );
    }
}
