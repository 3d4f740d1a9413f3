//! The child's pipes and the helper's side of the wire: output read under
//! the flow-control window and framed, stdin queued and written as the
//! child takes it.

use corral_proto::{tag, InputCredit, Window, HEADER};
use nix::errno::Errno;
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

mod direct;
mod sink;
use direct::{Direct, Pumped};
pub use sink::Sink;

/// The most bytes one data frame carries: as many as the BEAM takes in one
/// read ([`corral_proto::MAX_DATA`]). Bigger frames would mean fewer here,
/// but cost the BEAM a second copy of each.
pub const MAX_CHUNK: usize = corral_proto::MAX_DATA;

/// The size asked for the child's output pipes (`F_SETPIPE_SZ`, `fcntl(2)`),
/// so a fast writer fills one big read instead of many small ones.
pub const OUTPUT_PIPE_SIZE: i32 = 1 << 20;

/// Makes `fd` non-blocking.
pub fn set_nonblocking(fd: RawFd) -> nix::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Bytes ready in a pipe (`FIONREAD`, `ioctl_list(2)`).
fn ready_bytes(fd: RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which is valid.
    let rc = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    if rc == 0 && n > 0 {
        n as usize
    } else {
        0
    }
}

/// One of the child's output pipes.
pub struct Output {
    /// The read end, non-blocking.
    pub fd: OwnedFd,
    /// `O` or `E`.
    pub tag: u8,
    /// Edge-triggered readiness: true until a read says `EAGAIN`.
    pub readable: bool,
    /// The child side closed and everything was read.
    pub eof: bool,
    /// Whether `splice(2)` may move its bytes: a pipe, not a terminal.
    splice: bool,
    /// Whether its bytes go out in `O` frames, or as they are to a
    /// person's stdout (`--pty` without `--port`).
    framed: bool,
    /// Registered in the event loop (out of it while the window has no
    /// room for it).
    pub watched: bool,
    /// Its bytes go to the BEAM through a data pipe (`--direct-output`).
    direct: Option<Direct>,
    /// The BEAM refused a data pipe once: frames to the end.
    relayed: bool,
}

impl Output {
    /// Wraps a pipe's read end as stream `tag`.
    pub fn new(fd: OwnedFd, tag: u8) -> Output {
        // A bigger pipe is an optimisation; a refusal (pipe-max-size) is fine.
        crate::sys::grow_pipe(fd.as_raw_fd(), OUTPUT_PIPE_SIZE);
        Output {
            fd,
            tag,
            readable: true,
            eof: false,
            splice: true,
            framed: true,
            watched: true,
            direct: None,
            relayed: false,
        }
    }

    /// Wraps a pseudo-terminal's master (`--pty`) as stdout. Read, never
    /// spliced (`splice(2)` takes no terminal); its end is `EIO` once no
    /// process holds the slave, which reads as end of file. Unless
    /// `framed`, the bytes go to stdout as they are, for a person.
    pub fn terminal(fd: OwnedFd, framed: bool) -> Output {
        Output {
            fd,
            tag: tag::STDOUT,
            readable: true,
            eof: false,
            splice: false,
            framed,
            watched: true,
            direct: None,
            relayed: false,
        }
    }

    /// Sends one frame of at most `room` bytes of what the pipe holds.
    /// Returns the payload size (0 at EOF or when nothing was ready).
    ///
    /// When the pipe says how much it holds, the frame header is written
    /// first and the payload spliced after it; otherwise one `read(2)` tells
    /// EOF from data.
    ///
    /// With `direct`, once the pipe holds more than a frame (a child that
    /// writes faster than frames go out), its bytes go through a data pipe
    /// the BEAM reads itself ([`Direct`]), and this returns the bytes a
    /// `P` frame named.
    pub fn pump_once(
        &mut self,
        buf: &mut [u8],
        room: usize,
        sink: &mut Sink,
        direct: bool,
    ) -> usize {
        if let Some(d) = self.direct.as_mut() {
            let from = self.fd.as_raw_fd();
            match d.pump(
                from,
                self.tag,
                &mut self.readable,
                &mut self.eof,
                room,
                sink,
                buf,
            ) {
                Pumped::Sent(n) => return n,
                Pumped::Done => {
                    self.direct = None;
                    self.relayed = true;
                }
            }
        }
        if self.eof || !self.readable || room == 0 {
            return 0;
        }
        let fd = self.fd.as_raw_fd();
        let held = ready_bytes(fd);
        if direct && held > MAX_CHUNK && sink.splice && self.splice && self.framed && !self.relayed
        {
            match Direct::new() {
                Some(d) => {
                    self.direct = Some(d);
                    return self.pump_once(buf, room, sink, direct);
                }
                None => self.relayed = true,
            }
        }
        let ready = held.min(room).min(MAX_CHUNK);
        if ready > 0 && sink.splice && self.splice {
            sink.send_spliced(&data_head(self.tag, ready), fd, ready, buf);
            return ready;
        }
        let start = HEADER + 1;
        let end = start + room.min(buf.len() - start);
        loop {
            match nix::unistd::read(fd, &mut buf[start..end]) {
                Ok(0) => {
                    self.eof = true;
                    return 0;
                }
                Ok(n) if !self.framed => {
                    sink.send(&buf[start..start + n]);
                    return n;
                }
                Ok(n) => {
                    buf[..start].copy_from_slice(&data_head(self.tag, n));
                    sink.send(&buf[..start + n]);
                    return n;
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => {
                    self.readable = false;
                    return 0;
                }
                Err(_) => {
                    self.eof = true;
                    return 0;
                }
            }
        }
    }

    /// Reads and discards what is buffered (when nobody listens any more),
    /// with what waits for the BEAM in a data pipe.
    pub fn discard(&mut self, buf: &mut [u8]) {
        self.direct = None;
        while !self.eof && self.readable {
            match nix::unistd::read(self.fd.as_raw_fd(), buf) {
                Ok(0) => self.eof = true,
                Ok(_) | Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => self.readable = false,
                Err(_) => self.eof = true,
            }
        }
    }
}

/// The length prefix and tag of an `O` or `E` frame of `n` payload bytes.
fn data_head(tag: u8, n: usize) -> [u8; HEADER + 1] {
    let mut head = [tag; HEADER + 1];
    head[..HEADER].copy_from_slice(&corral_proto::header(n + 1));
    head
}

/// Reads the child's output pipes in turn while the window has room.
/// Returns true if anything was sent.
/// With `direct`, a pipe a fast child keeps full is handed to the BEAM
/// ([`Output::pump_once`]).
pub fn pump(
    outputs: &mut [Option<Output>; 2],
    window: &mut Window,
    buf: &mut [u8],
    sink: &mut Sink,
    direct: bool,
) -> bool {
    let mut sent_any = false;
    loop {
        let mut progressed = false;
        for out in outputs.iter_mut().flatten() {
            let n = out.pump_once(buf, window.room(), sink, direct);
            if n > 0 {
                window.sent(n);
                if !out.framed {
                    // A person's terminal took them as write(2) returned;
                    // nobody else will ack them.
                    window.acked(n as u32);
                }
                progressed = true;
                sent_any = true;
            }
        }
        if !progressed {
            return sent_any;
        }
    }
}

/// The child's stdin pipe and what is queued for it.
///
/// The queue is bounded by the BEAM, which sends `I` payload only while
/// less than a window of it is unconfirmed, and the helper confirms bytes
/// (a `W` frame) once they are in the pipe (`docs/protocol.md`, "Flow
/// control").
pub struct Input {
    /// The write end, non-blocking.
    pub fd: OwnedFd,
    queue: VecDeque<Vec<u8>>,
    offset: usize,
    /// Edge-triggered readiness.
    pub writable: bool,
    /// The BEAM sent `C`: close once the queue is empty.
    pub closing: bool,
    /// Bytes written to the pipe and not yet confirmed with `W`.
    pub credit: InputCredit,
    /// The last byte written, for a terminal's end of input.
    last_written: Option<u8>,
    /// A pseudo-terminal's master (`--pty`), not a pipe: `C` writes its
    /// end-of-file character, which is never confirmed, instead of closing.
    terminal: bool,
    /// That character, still to be written.
    end_of_input: Option<Vec<u8>>,
}

impl Input {
    /// Wraps a pipe's write end, for a helper given `window`.
    pub fn new(fd: OwnedFd, window: u64) -> Input {
        Input {
            fd,
            queue: VecDeque::new(),
            offset: 0,
            writable: true,
            closing: false,
            credit: InputCredit::new(window),
            last_written: None,
            terminal: false,
            end_of_input: None,
        }
    }

    /// Wraps a pseudo-terminal's master (`--pty`).
    pub fn terminal(fd: OwnedFd, window: u64) -> Input {
        Input {
            terminal: true,
            ..Input::new(fd, window)
        }
    }

    /// Whether nothing waits to be written.
    pub fn is_drained(&self) -> bool {
        self.queue.is_empty()
    }

    /// Input the BEAM still counts against the window: bytes queued for
    /// the pipe and bytes written but not yet confirmed with `W`.
    pub fn outstanding(&self) -> u64 {
        self.queued() + self.credit.unconfirmed()
    }

    /// Whether the BEAM kept within its window: another `I` frame may come.
    pub fn admits_more(&self) -> bool {
        self.credit.admits(self.queued())
    }

    fn queued(&self) -> u64 {
        let queued: usize = self.queue.iter().map(Vec::len).sum();
        (queued - self.offset) as u64
    }

    /// Queues bytes for the child.
    pub fn push(&mut self, data: Vec<u8>) {
        if !data.is_empty() {
            self.queue.push_back(data);
        }
    }

    /// Writes what the pipe takes. Returns false when the pipe should be
    /// closed: everything is written after `C`, or the child closed its end.
    pub fn flush(&mut self) -> bool {
        while self.writable {
            let Some(front) = self.queue.front() else {
                break;
            };
            match nix::unistd::write(&self.fd, &front[self.offset..]) {
                Ok(n) => {
                    self.last_written = front[..self.offset + n].last().copied();
                    self.offset += n;
                    self.credit.written(n as u64);
                    if self.offset == front.len() {
                        self.queue.pop_front();
                        self.offset = 0;
                    }
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => self.writable = false,
                Err(_) => return false,
            }
        }
        if self.terminal && self.closing && self.queue.is_empty() {
            return self.write_end_of_input();
        }
        !(self.closing && self.queue.is_empty())
    }

    /// Writes the terminal's end-of-file character(s) once the queue is
    /// empty. Returns false once written (the input is done), true while
    /// they wait for room.
    fn write_end_of_input(&mut self) -> bool {
        let last = self.last_written;
        let eof = self
            .end_of_input
            .get_or_insert_with(|| crate::pty::end_of_input(&self.fd, last));
        while self.writable && !eof.is_empty() {
            match nix::unistd::write(&self.fd, eof) {
                Ok(n) => {
                    eof.drain(..n);
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => self.writable = false,
                Err(_) => return false,
            }
        }
        !eof.is_empty()
    }
}

/// The tag for an output stream's frames.
pub fn tag_for(index: usize) -> u8 {
    if index == 0 {
        tag::STDOUT
    } else {
        tag::STDERR
    }
}
