//! The Corral wire protocol, version 1: the bytes between the BEAM and one
//! `corral` helper. No I/O lives here; the helper and the tests feed it bytes.
//!
//! The full description, byte by byte, is `docs/protocol.md`. In short, every
//! frame is `len:u32be, tag:u8, payload` (Erlang's `{:packet, 4}`):
//!
//! | direction | tag | frame | payload |
//! |---|---|---|---|
//! | helper → BEAM | `S` | [`Up::Started`] | `version:u8, os_pid:u32, containment:u8, paths` |
//! | helper → BEAM | `O` | [`Up::Stdout`] | data (counts against the window) |
//! | helper → BEAM | `E` | [`Up::Stderr`] | data (counts against the window) |
//! | helper → BEAM | `F` | [`Up::Failed`] | `version:u8, fields` |
//! | helper → BEAM | `X` | [`Up::Exit`] | `reason:u8, fields` |
//! | BEAM → helper | `A` | [`Down::Ack`] | `bytes:u32` |
//! | BEAM → helper | `I` | [`Down::Stdin`] | data |
//! | BEAM → helper | `C` | [`Down::CloseStdin`] | none |
//! | BEAM → helper | `K` | [`Down::Signal`] | signal name |
//! | BEAM → helper | `Q` | [`Down::Stop`] | none |
//! | BEAM → helper | `R` | [`Down::Run`] | the command line, NUL-separated |
//! | BEAM → helper | `T` | [`Down::Resize`] | `cols:u16, rows:u16` |
//! | helper → BEAM | `P` | [`Up::Pipe`] | `stream:u8, pid:u32, fd:u32, bytes:u32` |
//! | BEAM → helper | `D` | [`Down::Pipe`] | `stream:u8, state:u8` |
//!
//! # Flow control
//! [`Window`] does the ack arithmetic: the helper never has more than
//! `stdio_window` unacknowledged bytes of `O` and `E` payload in flight.
//! [`Acks`] and [`InputCredit`] are the other two sides, and [`batch`] the
//! quarter-window rule they share; [`DEFAULT_WINDOW`] is 1 MiB.

pub mod containment;
mod fields;
mod window;

pub use containment::{CgroupKind, Containment};
pub use fields::{key, Field, Fields};
pub use window::{batch, Acks, InputCredit, Window, DEFAULT_WINDOW};

/// The protocol version this crate speaks.
pub const VERSION: u8 = 1;
/// The largest frame either side accepts, tag included.
pub const MAX_FRAME: usize = 16 << 20;
/// Bytes of the length prefix.
pub const HEADER: usize = 4;
/// What the BEAM's port driver reads from the helper per wake-up
/// (`ERTS_SYS_READ_BUF_SZ`, 64 KiB). Each whole frame in one such read
/// becomes a binary with one copy; a frame bigger than the read, or cut
/// by its end, is gathered in a buffer of its own over further wake-ups
/// and copied twice.
pub const BEAM_READ: usize = 64 << 10;
/// The most payload one `O` or `E` frame carries: a frame, header and
/// tag included, fills at most one [`BEAM_READ`].
pub const MAX_DATA: usize = BEAM_READ - HEADER - 1;

/// Tags of frames the helper sends.
pub mod tag {
    /// The child runs.
    pub const STARTED: u8 = b'S';
    /// Child stdout data.
    pub const STDOUT: u8 = b'O';
    /// Child stderr data.
    pub const STDERR: u8 = b'E';
    /// The child never ran.
    pub const FAILED: u8 = b'F';
    /// The exit report; always the last frame.
    pub const EXIT: u8 = b'X';
    /// Stdin credit: bytes written to the child's stdin.
    pub const WRITTEN: u8 = b'W';
    /// Flow-control credit.
    pub const ACK: u8 = b'A';
    /// Data for the child's stdin.
    pub const STDIN: u8 = b'I';
    /// EOF on the child's stdin.
    pub const CLOSE_STDIN: u8 = b'C';
    /// Send a signal to the child.
    pub const SIGNAL: u8 = b'K';
    /// End the tree and report.
    pub const STOP: u8 = b'Q';
    /// The command line for a pre-started (`--pooled`) helper.
    pub const RUN: u8 = b'R';
    /// The window size of the child's pseudo-terminal (`--pty`).
    pub const RESIZE: u8 = b'T';
    /// Output for the BEAM to read from the pipe itself (`--direct-output`).
    pub const PIPE: u8 = b'P';
    /// The BEAM read it, or could not.
    pub const PIPE_DONE: u8 = b'D';
}

/// The BEAM's answer to a [`Up::Pipe`] frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PipeState {
    /// It could not open the pipe: the helper relays those bytes and the
    /// rest of the stream in `O`/`E` frames, as without `--direct-output`.
    Refused = 0,
    /// It read the bytes: the pipe is the helper's again.
    Read = 1,
}

/// Why the child ended, as carried in the `X` frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Reason {
    /// The child exited by itself.
    Exit = 0,
    /// A signal nobody in Corral sent killed the child.
    Signal = 1,
    /// Wall time ran out.
    Timeout = 2,
    /// CPU time ran out.
    CpuTime = 3,
    /// The memory limit was hit.
    Memory = 4,
    /// The process limit was hit.
    MaxProcesses = 5,
    /// No CPU progress and no output for too long.
    Idle = 6,
    /// The BEAM sent `Q`.
    Stopped = 7,
}

impl Reason {
    /// Decodes the reason byte.
    pub fn from_u8(b: u8) -> Option<Reason> {
        use Reason::*;
        [
            Exit,
            Signal,
            Timeout,
            CpuTime,
            Memory,
            MaxProcesses,
            Idle,
            Stopped,
        ]
        .into_iter()
        .find(|r| *r as u8 == b)
    }

    /// The name used by the CLI summary and the JSON report.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Exit => "exit",
            Reason::Signal => "signal",
            Reason::Timeout => "timeout",
            Reason::CpuTime => "cpu_time",
            Reason::Memory => "memory",
            Reason::MaxProcesses => "max_processes",
            Reason::Idle => "idle",
            Reason::Stopped => "stopped",
        }
    }
}

/// A frame from the helper to the BEAM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Up {
    /// The child runs as `os_pid`, contained as `containment` (0..=7) in `paths`.
    Started {
        /// Protocol version.
        version: u8,
        /// The child's pid.
        os_pid: u32,
        /// [`Containment::code`]: 0 none, 1 cgroup v2, 2 cgroup v1, 3
        /// hybrid; plus [`containment::NO_SUBREAPER`] without the subreaper.
        containment: u8,
        /// Absolute cgroup directories.
        paths: Vec<String>,
    },
    /// Child stdout bytes.
    Stdout(Vec<u8>),
    /// Child stderr bytes.
    Stderr(Vec<u8>),
    /// The child never ran.
    Failed {
        /// Protocol version.
        version: u8,
        /// errno, errno_name, stage, message.
        fields: Fields,
    },
    /// How the child ended and what the tree used.
    Exit {
        /// Why it ended.
        reason: Reason,
        /// Status and usage.
        fields: Fields,
    },
    /// This many bytes of `I` payload reached the child's stdin pipe: the
    /// BEAM may send that much more.
    Written(u32),
    /// The next `bytes` of stream `stream` (`O` or `E`) wait in the pipe
    /// `/proc/<pid>/fd/<fd>`: the BEAM reads them itself (they count
    /// against the window as `O` and `E` payload does), and the helper
    /// leaves the pipe alone until it answers with `D`.
    Pipe {
        /// `O` or `E`.
        stream: u8,
        /// The helper's pid.
        pid: u32,
        /// The helper's descriptor of the pipe's read end.
        fd: u32,
        /// How many bytes to read.
        bytes: u32,
    },
}

/// A frame from the BEAM to the helper.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Down {
    /// The BEAM consumed this many output bytes.
    Ack(u32),
    /// Bytes for the child's stdin.
    Stdin(Vec<u8>),
    /// EOF on the child's stdin after queued data.
    CloseStdin,
    /// Send this signal (`"SIGHUP"` or `"HUP"`) to the child.
    Signal(String),
    /// End the tree, deliver output, report.
    Stop,
    /// The helper's command line after `--port --protocol N`, for a helper
    /// started with `--pooled` before its command was known.
    Run(Vec<Vec<u8>>),
    /// Set the window size of the child's pseudo-terminal (`--pty`); the
    /// kernel sends `SIGWINCH` to its foreground process group. Ignored
    /// without a pseudo-terminal.
    Resize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// The answer to the `P` frame of stream `stream`.
    Pipe {
        /// `O` or `E`.
        stream: u8,
        /// Read, or refused.
        state: PipeState,
    },
}

/// A frame that could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// A zero-length frame, which has no tag.
    Empty,
    /// A tag this version does not know.
    UnknownTag(u8),
    /// The payload is shorter than its layout.
    Truncated(u8),
    /// Text that is not UTF-8.
    BadText(u8),
    /// An exit reason this version does not know.
    UnknownReason(u8),
    /// A length prefix above [`MAX_FRAME`].
    TooLong(usize),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Empty => write!(f, "empty frame"),
            DecodeError::UnknownTag(t) => write!(f, "unknown frame tag 0x{t:02x}"),
            DecodeError::Truncated(t) => write!(f, "truncated frame 0x{t:02x}"),
            DecodeError::BadText(t) => write!(f, "frame 0x{t:02x} carries text that is not UTF-8"),
            DecodeError::UnknownReason(r) => write!(f, "unknown exit reason {r}"),
            DecodeError::TooLong(n) => write!(f, "frame of {n} bytes is over the limit"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Appends the 4-byte length prefix for a frame whose tag+payload is `body_len` bytes.
pub fn put_header(out: &mut Vec<u8>, body_len: usize) {
    out.extend_from_slice(&(body_len as u32).to_be_bytes());
}

/// The length prefix of a frame whose tag+payload is `body_len` bytes.
pub fn header(body_len: usize) -> [u8; HEADER] {
    (body_len as u32).to_be_bytes()
}

fn frame(tag: u8, payload: &[&[u8]]) -> Vec<u8> {
    let len = 1 + payload.iter().map(|p| p.len()).sum::<usize>();
    let mut out = Vec::with_capacity(HEADER + len);
    put_header(&mut out, len);
    out.push(tag);
    for p in payload {
        out.extend_from_slice(p);
    }
    out
}

fn text(tag: u8, bytes: &[u8]) -> Result<String, DecodeError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::BadText(tag))
}

impl Up {
    /// Where the big-endian `os_pid` of an encoded [`Up::Started`] frame
    /// begins: after the length prefix, the tag and the version byte. The
    /// helper encodes `S` before the spawn and the child writes its own
    /// pid there just before exec (`docs/protocol.md`, "Start").
    pub const STARTED_PID_AT: usize = HEADER + 2;

    /// The frame with its length prefix.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Up::Started {
                version,
                os_pid,
                containment,
                paths,
            } => frame(
                tag::STARTED,
                &[
                    &[*version],
                    &os_pid.to_be_bytes(),
                    &[*containment],
                    paths.join("\n").as_bytes(),
                ],
            ),
            Up::Stdout(d) => frame(tag::STDOUT, &[d]),
            Up::Stderr(d) => frame(tag::STDERR, &[d]),
            Up::Failed { version, fields } => frame(tag::FAILED, &[&[*version], &fields.encode()]),
            Up::Exit { reason, fields } => frame(tag::EXIT, &[&[*reason as u8], &fields.encode()]),
            Up::Written(n) => frame(tag::WRITTEN, &[&n.to_be_bytes()]),
            Up::Pipe {
                stream,
                pid,
                fd,
                bytes,
            } => frame(
                tag::PIPE,
                &[
                    &[*stream],
                    &pid.to_be_bytes(),
                    &fd.to_be_bytes(),
                    &bytes.to_be_bytes(),
                ],
            ),
        }
    }

    /// Decodes one frame body (tag and payload, without the length prefix).
    ///
    /// # Errors
    /// [`DecodeError`] when the body does not follow `docs/protocol.md`.
    pub fn decode(body: &[u8]) -> Result<Up, DecodeError> {
        let (&t, p) = body.split_first().ok_or(DecodeError::Empty)?;
        match t {
            tag::STARTED => {
                if p.len() < 6 {
                    return Err(DecodeError::Truncated(t));
                }
                let paths = text(t, &p[6..])?;
                Ok(Up::Started {
                    version: p[0],
                    os_pid: u32::from_be_bytes([p[1], p[2], p[3], p[4]]),
                    containment: p[5],
                    paths: if paths.is_empty() {
                        Vec::new()
                    } else {
                        paths.split('\n').map(str::to_owned).collect()
                    },
                })
            }
            tag::STDOUT => Ok(Up::Stdout(p.to_vec())),
            tag::STDERR => Ok(Up::Stderr(p.to_vec())),
            tag::FAILED => {
                let (&version, rest) = p.split_first().ok_or(DecodeError::Truncated(t))?;
                Ok(Up::Failed {
                    version,
                    fields: Fields::decode(t, rest)?,
                })
            }
            tag::EXIT => {
                let (&r, rest) = p.split_first().ok_or(DecodeError::Truncated(t))?;
                let reason = Reason::from_u8(r).ok_or(DecodeError::UnknownReason(r))?;
                Ok(Up::Exit {
                    reason,
                    fields: Fields::decode(t, rest)?,
                })
            }
            tag::WRITTEN => {
                let b: [u8; 4] = p.try_into().map_err(|_| DecodeError::Truncated(t))?;
                Ok(Up::Written(u32::from_be_bytes(b)))
            }
            tag::PIPE => {
                let b: [u8; 13] = p.try_into().map_err(|_| DecodeError::Truncated(t))?;
                Ok(Up::Pipe {
                    stream: b[0],
                    pid: u32::from_be_bytes([b[1], b[2], b[3], b[4]]),
                    fd: u32::from_be_bytes([b[5], b[6], b[7], b[8]]),
                    bytes: u32::from_be_bytes([b[9], b[10], b[11], b[12]]),
                })
            }
            other => Err(DecodeError::UnknownTag(other)),
        }
    }
}

impl Down {
    /// The frame with its length prefix.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Down::Ack(n) => frame(tag::ACK, &[&n.to_be_bytes()]),
            Down::Stdin(d) => frame(tag::STDIN, &[d]),
            Down::CloseStdin => frame(tag::CLOSE_STDIN, &[]),
            Down::Signal(name) => frame(tag::SIGNAL, &[name.as_bytes()]),
            Down::Stop => frame(tag::STOP, &[]),
            Down::Run(args) => frame(tag::RUN, &[&args.join(&0u8)]),
            Down::Resize { cols, rows } => {
                frame(tag::RESIZE, &[&cols.to_be_bytes(), &rows.to_be_bytes()])
            }
            Down::Pipe { stream, state } => frame(tag::PIPE_DONE, &[&[*stream, *state as u8]]),
        }
    }

    /// Decodes one frame body (tag and payload, without the length prefix).
    ///
    /// # Errors
    /// [`DecodeError`] when the body does not follow `docs/protocol.md`.
    pub fn decode(body: &[u8]) -> Result<Down, DecodeError> {
        let (&t, p) = body.split_first().ok_or(DecodeError::Empty)?;
        match t {
            tag::ACK => {
                let b: [u8; 4] = p.try_into().map_err(|_| DecodeError::Truncated(t))?;
                Ok(Down::Ack(u32::from_be_bytes(b)))
            }
            tag::STDIN => Ok(Down::Stdin(p.to_vec())),
            tag::CLOSE_STDIN => Ok(Down::CloseStdin),
            tag::SIGNAL => Ok(Down::Signal(text(t, p)?)),
            tag::STOP => Ok(Down::Stop),
            tag::RUN if p.is_empty() => Ok(Down::Run(Vec::new())),
            tag::RUN => Ok(Down::Run(
                p.split(|&b| b == 0).map(<[u8]>::to_vec).collect(),
            )),
            tag::RESIZE => {
                let b: [u8; 4] = p.try_into().map_err(|_| DecodeError::Truncated(t))?;
                Ok(Down::Resize {
                    cols: u16::from_be_bytes([b[0], b[1]]),
                    rows: u16::from_be_bytes([b[2], b[3]]),
                })
            }
            tag::PIPE_DONE => match p {
                [stream, 0] => Ok(Down::Pipe {
                    stream: *stream,
                    state: PipeState::Refused,
                }),
                [stream, 1] => Ok(Down::Pipe {
                    stream: *stream,
                    state: PipeState::Read,
                }),
                _ => Err(DecodeError::Truncated(t)),
            },
            other => Err(DecodeError::UnknownTag(other)),
        }
    }
}

/// Splits whole frames off the front of a byte stream, for the reading side
/// that has no `{:packet, 4}` driver to do it.
#[derive(Default, Debug)]
pub struct Deframer {
    buf: Vec<u8>,
}

impl Deframer {
    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held that are not yet a whole frame returned.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether [`Deframer::next_frame`] has something to return: a whole
    /// frame, or a length prefix it refuses.
    pub fn frame_ready(&self) -> bool {
        let Some(prefix) = self.buf.get(..HEADER) else {
            return false;
        };
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        len == 0 || len > MAX_FRAME || self.buf.len() >= HEADER + len
    }

    /// The next whole frame body (tag and payload), if one is buffered.
    ///
    /// # Errors
    /// [`DecodeError::TooLong`] or [`DecodeError::Empty`] for a bad length prefix.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        if self.buf.len() < HEADER {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        if len == 0 {
            return Err(DecodeError::Empty);
        }
        if len > MAX_FRAME {
            return Err(DecodeError::TooLong(len));
        }
        if self.buf.len() < HEADER + len {
            return Ok(None);
        }
        let body = self.buf[HEADER..HEADER + len].to_vec();
        self.buf.drain(..HEADER + len);
        Ok(Some(body))
    }
}

#[cfg(test)]
mod golden;
