//! Output the BEAM reads itself (`--direct-output`, docs/protocol.md,
//! "Direct output"): once a child writes faster than frames go out, the
//! helper splices its pipe into a pipe of its own, the *data pipe*, and
//! tells the BEAM how much waits there (`P`). The BEAM reads that much from
//! `/proc/<helper>/fd/<fd>` in one binary and answers (`D`). One `P` is
//! out at a time; what the child writes meanwhile gathers in the data pipe
//! and goes in the next, so the slower the BEAM, the bigger its reads.
//!
//! The child's pipe keeps one reader, the helper, whose splices hold its
//! lock for a moment only: a BEAM copying a megabyte out of it would hold
//! it that long against every write of the child.

use corral_proto::Up;
use nix::errno::Errno;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::{data_head, ready_bytes, Output, Sink, MAX_CHUNK, OUTPUT_PIPE_SIZE};

/// The most bytes one `P` frame names: what one read of a grown pipe gives.
pub const MAX_HANDED: usize = OUTPUT_PIPE_SIZE as usize;

/// One output stream's data pipe and what the BEAM knows of it.
pub struct Direct {
    /// The helper's pid, which `P` names (`getpid(2)` once, not per frame).
    pid: u32,
    read: OwnedFd,
    write: OwnedFd,
    /// Bytes in the data pipe not yet named in a `P` frame.
    unreported: usize,
    /// Bytes named in the `P` frame not yet answered.
    pub handed: usize,
    /// The BEAM could not open the pipe: relay what it holds in frames.
    refused: bool,
}

/// What [`Direct::pump`] did.
pub enum Pumped {
    /// Bytes sent (named in `P`, or relayed after a refusal); 0 for none.
    Sent(usize),
    /// Refused and relayed to the last byte: back to frames for good.
    Done,
}

impl Direct {
    /// A data pipe, grown like the child's pipes; `None` when the system
    /// gives no pipe (then the output is relayed as before).
    pub fn new() -> Option<Direct> {
        let (read, write) = crate::sys::pipe_cloexec().ok()?;
        super::set_nonblocking(write.as_raw_fd()).ok()?;
        crate::sys::grow_pipe(write.as_raw_fd(), OUTPUT_PIPE_SIZE);
        Some(Direct {
            pid: std::process::id(),
            read,
            write,
            unreported: 0,
            handed: 0,
            refused: false,
        })
    }

    /// Whether nothing waits here for the BEAM.
    pub fn is_empty(&self) -> bool {
        self.unreported == 0 && self.handed == 0
    }

    /// Room for more of the child's bytes within the window's `room`.
    pub fn room(&self, room: usize) -> usize {
        room.saturating_sub(self.unreported)
    }

    /// Moves what the child's pipe `from` holds into the data pipe (within
    /// the window's `room`) and names what is unreported in a `P` frame
    /// when none is out. After a refusal, relays the data pipe in frames.
    /// Sets `readable` and `eof` as a read of `from` would.
    #[allow(clippy::too_many_arguments)]
    pub fn pump(
        &mut self,
        from: RawFd,
        tag: u8,
        readable: &mut bool,
        eof: &mut bool,
        room: usize,
        sink: &mut Sink,
        buf: &mut [u8],
    ) -> Pumped {
        if self.refused {
            return self.relay(tag, room, sink, buf);
        }
        let want = self.room(room);
        if !*eof && *readable && want > 0 {
            match crate::sys::splice(from, self.write.as_raw_fd(), want) {
                Ok(0) => *eof = true,
                Ok(k) => self.unreported += k,
                // The child's pipe is empty, or the data pipe full (the
                // BEAM's next read makes room; the answer pumps again).
                Err(Errno::EAGAIN) => *readable = ready_bytes(from) > 0,
                Err(Errno::EINTR) => {}
                // The kernel refuses to splice here: once the P that is
                // out is answered, what the data pipe holds is relayed,
                // then the rest of the stream in frames, as after a
                // refusal.
                Err(_) => {
                    self.refused = true;
                    return self.relay(tag, room, sink, buf);
                }
            }
        }
        if self.handed > 0 || self.unreported == 0 {
            return Pumped::Sent(0);
        }
        let n = self.unreported.min(room).min(MAX_HANDED);
        sink.send_up(&Up::Pipe {
            stream: tag,
            pid: self.pid,
            fd: self.read.as_raw_fd() as u32,
            bytes: n as u32,
        });
        self.unreported -= n;
        self.handed = n;
        Pumped::Sent(n)
    }

    /// The BEAM read the bytes of the `P` frame out.
    pub fn read(&mut self) {
        self.handed = 0;
    }

    /// The BEAM could not read them: they and the rest of the data pipe
    /// are relayed in frames. Returns the bytes to take back out of the
    /// window, which counts them again as they are relayed.
    pub fn refused(&mut self) -> usize {
        self.refused = true;
        self.unreported += self.handed;
        std::mem::take(&mut self.handed)
    }

    /// Relays what the data pipe holds in frames, once no `P` waits for
    /// its answer (the BEAM reads its bytes from the front of the pipe);
    /// done when the pipe is empty.
    fn relay(&mut self, tag: u8, room: usize, sink: &mut Sink, buf: &mut [u8]) -> Pumped {
        if self.handed > 0 {
            return Pumped::Sent(0);
        }
        if self.unreported == 0 {
            return Pumped::Done;
        }
        let n = self.unreported.min(room).min(MAX_CHUNK);
        if n == 0 {
            return Pumped::Sent(0);
        }
        sink.send_spliced(&data_head(tag, n), self.read.as_raw_fd(), n, buf);
        self.unreported -= n;
        Pumped::Sent(n)
    }
}

/// What the session asks of an [`Output`] about its data pipe.
impl Output {
    /// Whether everything of this stream is out: its pipe at end of file
    /// and nothing left for the BEAM in a data pipe.
    pub fn done(&self) -> bool {
        self.eof && self.direct.as_ref().is_none_or(Direct::is_empty)
    }

    /// Whether the event loop should watch the pipe with `room` left in
    /// the window: bytes gathered in a data pipe take their share of it,
    /// and while a `P` is out the child's pipe gathers what comes (one
    /// splice takes it all at the answer) instead of waking the helper
    /// at every write of the child.
    pub fn wants(&self, room: usize) -> bool {
        match &self.direct {
            Some(d) => d.handed == 0 && d.room(room) > 0,
            None => room > 0,
        }
    }

    /// The BEAM's answer to this stream's `P` frame; returns the bytes to
    /// take back out of the window, or `None` when no `P` was out.
    pub fn answered(&mut self, read: bool) -> Option<usize> {
        let d = self.direct.as_mut().filter(|d| d.handed > 0)?;
        self.readable = true;
        if read {
            d.read();
            Some(0)
        } else {
            Some(d.refused())
        }
    }
}
