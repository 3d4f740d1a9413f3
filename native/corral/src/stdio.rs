//! The child's pipes and the helper's side of the wire: output read under
//! the flow-control window and framed, stdin queued and written as the
//! child takes it.

use corral_proto::{tag, Up, Window, HEADER};
use nix::errno::Errno;
use std::collections::VecDeque;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// The most bytes one data frame carries. Big frames mean fewer messages for
/// the BEAM and fewer system calls here; a pipe holds 64 KiB by default, and
/// `OUTPUT_PIPE_SIZE` lets one read take more than that.
pub const MAX_CHUNK: usize = 256 << 10;

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

/// Where frames go: the helper's stdout, written whole and blocking.
///
/// Blocking is safe: the window bounds what is in flight, and the BEAM's
/// port driver reads its end independently of the owning process.
pub struct Sink {
    out: std::io::Stdout,
    /// False once a write failed: the BEAM is gone.
    pub open: bool,
}

impl Sink {
    /// The helper's stdout.
    pub fn stdout() -> Sink {
        Sink {
            out: std::io::stdout(),
            open: true,
        }
    }

    /// Writes a whole frame; a failure marks the sink closed.
    pub fn send(&mut self, frame: &[u8]) {
        if self.open {
            let mut out = self.out.lock();
            if out.write_all(frame).and_then(|_| out.flush()).is_err() {
                self.open = false;
            }
        }
    }

    /// Encodes and sends an [`Up`] frame.
    pub fn send_up(&mut self, frame: &Up) {
        self.send(&frame.encode());
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
}

impl Output {
    /// Wraps a pipe's read end as stream `tag`.
    pub fn new(fd: OwnedFd, tag: u8) -> Output {
        // A bigger pipe is an optimisation; a refusal (pipe-max-size) is fine.
        let _ = nix::fcntl::fcntl(
            fd.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETPIPE_SZ(OUTPUT_PIPE_SIZE),
        );
        Output {
            fd,
            tag,
            readable: true,
            eof: false,
        }
    }

    /// Reads once into `buf[HEADER + 1..]`, at most `room` bytes, and sends
    /// the frame. Returns the payload size (0 at EOF or when nothing was ready).
    pub fn pump_once(&mut self, buf: &mut [u8], room: usize, sink: &mut Sink) -> usize {
        if self.eof || !self.readable || room == 0 {
            return 0;
        }
        let start = HEADER + 1;
        let end = start + room.min(buf.len() - start);
        loop {
            match nix::unistd::read(self.fd.as_raw_fd(), &mut buf[start..end]) {
                Ok(0) => {
                    self.eof = true;
                    return 0;
                }
                Ok(n) => {
                    buf[..HEADER].copy_from_slice(&corral_proto::header(n + 1));
                    buf[HEADER] = self.tag;
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

    /// Reads and discards what is buffered (when nobody listens any more).
    pub fn discard(&mut self, buf: &mut [u8]) {
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

/// Reads the child's output pipes in turn while the window has room.
/// Returns true if anything was sent.
pub fn pump(
    outputs: &mut [Option<Output>; 2],
    window: &mut Window,
    buf: &mut [u8],
    sink: &mut Sink,
) -> bool {
    let mut sent_any = false;
    loop {
        let mut progressed = false;
        for out in outputs.iter_mut().flatten() {
            let n = out.pump_once(buf, window.room(), sink);
            if n > 0 {
                window.sent(n);
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
pub struct Input {
    /// The write end, non-blocking.
    pub fd: OwnedFd,
    queue: VecDeque<Vec<u8>>,
    offset: usize,
    /// Edge-triggered readiness.
    pub writable: bool,
    /// The BEAM sent `C`: close once the queue is empty.
    pub closing: bool,
}

impl Input {
    /// Wraps a pipe's write end.
    pub fn new(fd: OwnedFd) -> Input {
        Input {
            fd,
            queue: VecDeque::new(),
            offset: 0,
            writable: true,
            closing: false,
        }
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
                    self.offset += n;
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
        !(self.closing && self.queue.is_empty())
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
