//! The golden vectors in `test/fixtures/proto/`, shared with the Elixir tests.

use crate::fields::key;
use crate::{Acks, Deframer, Down, Fields, InputCredit, Reason, Up, VERSION};
use std::path::PathBuf;

fn load(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../test/fixtures/proto")
        .join(format!("{name}.hex"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let hex: String = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// The body of the single frame in `bytes`, checking that nothing trails it.
fn body(bytes: &[u8]) -> Vec<u8> {
    let mut d = Deframer::default();
    d.push(bytes);
    let b = d.next_frame().expect("valid frame").expect("whole frame");
    assert_eq!(d.next_frame(), Ok(None), "bytes after the frame");
    b
}

fn up(name: &str, expected: Up) {
    let bytes = load(name);
    assert_eq!(
        Up::decode(&body(&bytes)).expect(name),
        expected,
        "{name} decodes"
    );
    assert_eq!(expected.encode(), bytes, "{name} encodes");
}

fn down(name: &str, expected: Down) {
    let bytes = load(name);
    assert_eq!(
        Down::decode(&body(&bytes)).expect(name),
        expected,
        "{name} decodes"
    );
    assert_eq!(expected.encode(), bytes, "{name} encodes");
}

#[test]
fn helper_to_beam() {
    up(
        "started",
        Up::Started {
            version: VERSION,
            os_pid: 4242,
            containment: 3,
            paths: vec![
                "/sys/fs/cgroup/unified/corral-1".into(),
                "/sys/fs/cgroup/memory/corral-1".into(),
            ],
        },
    );
    up(
        "started_no_subreaper",
        Up::Started {
            version: VERSION,
            os_pid: 4242,
            containment: 1 | crate::containment::NO_SUBREAPER,
            paths: vec!["/sys/fs/cgroup/unified/corral-1".into()],
        },
    );
    up("stdout", Up::Stdout(b"hello\n".to_vec()));
    up("stderr", Up::Stderr(b"oops".to_vec()));
    up("written", Up::Written(65536));
    up(
        "pipe",
        Up::Pipe {
            stream: b'O',
            pid: 4242,
            fd: 9,
            bytes: 1 << 20,
        },
    );
    up(
        "exit_code",
        Up::Exit {
            reason: Reason::Exit,
            fields: Fields::default()
                .int(key::EXIT_STATUS, 3)
                .int(key::EXIT_CODE, 3)
                .int(key::WALL_TIME_US, 1_500_000)
                .int(key::USER_TIME_US, 250_000)
                .int(key::SYSTEM_TIME_US, 50_000)
                .int(key::PEAK_MEMORY, 64 << 20)
                .int(key::PEAK_PROCESSES, 4)
                .int(key::OOM_KILLS, 0)
                .int(key::PIDS_LIMIT_HITS, 0)
                .int(key::CONTAINMENT, 3),
        },
    );
    up(
        "exit_signal",
        Up::Exit {
            reason: Reason::Signal,
            fields: Fields::default()
                .int(key::EXIT_STATUS, 137)
                .int(key::SIGNAL, 9)
                .text(key::SIGNAL_NAME, "SIGKILL")
                .int(key::WALL_TIME_US, 2000),
        },
    );
    up(
        "failed",
        Up::Failed {
            version: VERSION,
            fields: Fields::default()
                .int(key::ERRNO, 2)
                .text(key::ERRNO_NAME, "enoent")
                .text(key::STAGE, "exec")
                .text(key::MESSAGE, "/no/such: No such file or directory"),
        },
    );
}

#[test]
fn beam_to_helper() {
    down("ack", Down::Ack(65536));
    down("stdin", Down::Stdin(b"hi".to_vec()));
    down("close_stdin", Down::CloseStdin);
    down("signal", Down::Signal("SIGHUP".into()));
    down("stop", Down::Stop);
    down(
        "run",
        Down::Run(vec![
            b"--cd".to_vec(),
            b"/tmp".to_vec(),
            b"--".to_vec(),
            b"/bin/echo".to_vec(),
            b"hi".to_vec(),
        ]),
    );
    down(
        "resize",
        Down::Resize {
            cols: 100,
            rows: 40,
        },
    );
    down(
        "pipe_read",
        Down::Pipe {
            stream: b'O',
            state: crate::PipeState::Read,
        },
    );
    down(
        "pipe_refused",
        Down::Pipe {
            stream: b'E',
            state: crate::PipeState::Refused,
        },
    );
}

#[test]
fn unknown_field_keys_are_skipped() {
    // reason exit, then key 200 (unknown, 2 bytes), then exit_status 0
    let body = [
        b'X', 0, 200, 0, 2, 0xAB, 0xCD, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let Up::Exit { fields, .. } = Up::decode(&body).expect("decodes") else {
        panic!("not X")
    };
    assert_eq!(fields, Fields::default().int(key::EXIT_STATUS, 0));
}

#[test]
fn malformed_frames_are_errors() {
    use crate::DecodeError::*;
    assert_eq!(Down::decode(&[]), Err(Empty));
    assert_eq!(Down::decode(b"Z"), Err(UnknownTag(b'Z')));
    assert_eq!(Down::decode(b"A\x00\x01"), Err(Truncated(b'A')));
    assert_eq!(Down::decode(b"T\x00\x50\x00"), Err(Truncated(b'T')));
    assert_eq!(Up::decode(b"X\x09"), Err(UnknownReason(9)));
    assert_eq!(Up::decode(b"X\x00\x01\x00\x08\x00"), Err(Truncated(b'X')));
    let mut d = Deframer::default();
    d.push(&[0xFF, 0xFF, 0xFF, 0xFF]);
    assert!(matches!(d.next_frame(), Err(TooLong(_))));
}

#[test]
fn deframer_waits_for_whole_frames() {
    let bytes = [Down::Ack(7).encode(), Down::Stop.encode()].concat();
    let mut d = Deframer::default();
    for b in &bytes[..bytes.len() - 1] {
        d.push(&[*b]);
    }
    assert_eq!(d.next_frame(), Ok(Some(b"A\0\0\0\x07".to_vec())));
    assert_eq!(d.next_frame(), Ok(None));
    d.push(&bytes[bytes.len() - 1..]);
    assert_eq!(d.next_frame(), Ok(Some(b"Q".to_vec())));
}

/// The frames of a flow vector, one after another.
fn frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut d = Deframer::default();
    d.push(bytes);
    let mut out = Vec::new();
    while let Some(body) = d.next_frame().expect("valid frame") {
        out.push(body);
    }
    assert_eq!(d.buffered(), 0, "bytes after the last frame");
    out
}

#[test]
fn acks_follow_the_quarter_window_rule() {
    let mut acks = Acks::new(8);
    let sent: Vec<u8> = [1, 1, 3, 1, 0, 7]
        .into_iter()
        .filter_map(|n| acks.consumed(n))
        .flat_map(|n| Down::Ack(n).encode())
        .collect();
    let golden = load("flow/acks_window_8");
    assert_eq!(sent, golden);
    assert_eq!(frames(&golden).len(), 3);
}

#[test]
fn written_follows_the_quarter_window_rule() {
    let mut credit = InputCredit::new(8);
    let mut sent = Vec::new();
    // (bytes written, whether nothing more waits to be written)
    for (n, idle) in [(1, false), (1, false), (1, true)] {
        credit.written(n);
        if let Some(w) = credit.confirm(idle) {
            sent.extend(Up::Written(w).encode());
        }
    }
    let golden = load("flow/written_window_8");
    assert_eq!(sent, golden);
    assert_eq!(frames(&golden).len(), 2);
}
