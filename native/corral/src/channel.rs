//! What a helper keeps for its whole life, whatever it runs: the event
//! loop, the signal pipe, the channel to the BEAM ([`Control`]) and the
//! sink for frames. A [`crate::session::Session`] borrows it for one run;
//! a pooled helper keeps it from one run to the next.

use crate::stdio::{self, Sink};
use corral_proto::{Deframer, Down};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::errno::Errno;
use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

/// The event-loop token of the control channel.
pub const CONTROL: Token = Token(0);
/// The event-loop token of the signal pipe.
pub const SIGNALS: Token = Token(1);

/// How much [`Control::read`] lets wait in the deframer before the frames
/// are handled: one read, or one whole frame when that is larger.
const READ_AHEAD: usize = 64 << 10;

/// The BEAM's control channel: the helper's stdin (non-blocking), read
/// into a deframer. Open until the BEAM closes it, or the helper stops
/// reading it (a protocol error).
pub struct Control {
    deframer: Deframer,
    open: bool,
}

/// What one [`Control::read`] did.
pub struct Read {
    /// Bytes came.
    pub got: bool,
    /// The channel reached end of file (or failed).
    pub eof: bool,
    /// The pipe is empty (`EAGAIN`): the edge-triggered event loop will say
    /// when more comes. Otherwise reading stopped at [`READ_AHEAD`] and the
    /// caller reads again once it has handled the frames.
    pub drained: bool,
}

impl Control {
    /// Reads what stdin has without blocking, until the pipe is empty or
    /// the deframer holds [`READ_AHEAD`] bytes, so a flood is handled
    /// frame by frame rather than buffered whole: the deframer holds at
    /// most a read and the largest frame.
    pub fn read(&mut self) -> Read {
        let mut chunk = [0u8; 64 << 10];
        let mut got = false;
        let done = |got, eof, drained| Read { got, eof, drained };
        // A frame larger than READ_AHEAD is read to its end before it is handled.
        while self.deframer.buffered() < READ_AHEAD || !self.deframer.frame_ready() {
            match nix::unistd::read(0, &mut chunk) {
                Ok(0) => return done(got, true, true),
                Ok(n) => {
                    got = true;
                    self.deframer.push(&chunk[..n]);
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return done(got, false, true),
                Err(_) => return done(got, true, true),
            }
        }
        done(got, false, false)
    }

    /// The next whole frame already read, decoded.
    ///
    /// # Errors
    /// A frame that does not decode.
    pub fn frame(&mut self) -> Result<Option<Down>, String> {
        match self.deframer.next_frame().map_err(|e| e.to_string())? {
            Some(body) => Down::decode(&body).map(Some).map_err(|e| e.to_string()),
            None => Ok(None),
        }
    }
}

/// What outlives one run: the event loop, the signal pipe, the channel
/// to the BEAM, what was read from it but not yet handled, and the output
/// buffer.
pub struct Base {
    /// The event loop; a run registers its pipes here.
    pub poll: Poll,
    /// SIGCHLD and the signals that end a run.
    pub signals: Signals,
    /// Where frames to the BEAM go.
    pub sink: Sink,
    /// The BEAM's channel; `None` for a person at a terminal.
    pub control: Option<Control>,
    /// A frame's worth of buffer for output.
    pub buf: Vec<u8>,
}

impl Base {
    /// Sets up epoll and the signal pipe; with `control`, the BEAM's
    /// channel on stdin too (made non-blocking).
    ///
    /// # Errors
    /// The OS errors of setting those up.
    pub fn new(sink: Sink, control: bool) -> std::io::Result<Base> {
        let poll = Poll::new()?;
        let mut signals = Signals::new([SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT])?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        let control = if control {
            stdio::set_nonblocking(0)?;
            poll.registry()
                .register(&mut SourceFd(&0), CONTROL, Interest::READABLE)?;
            Some(Control {
                deframer: Deframer::default(),
                open: true,
            })
        } else {
            None
        };
        Ok(Base {
            poll,
            signals,
            sink,
            control,
            buf: vec![0; corral_proto::HEADER + 1 + stdio::MAX_CHUNK],
        })
    }

    /// The control channel, while it is open.
    pub fn open_control(&mut self) -> Option<&mut Control> {
        self.control.as_mut().filter(|c| c.open)
    }

    /// The next whole frame already read from the BEAM, decoded; none
    /// once the channel is closed.
    ///
    /// # Errors
    /// A frame that does not decode.
    pub fn buffered_frame(&mut self) -> Result<Option<Down>, String> {
        match self.open_control() {
            Some(control) => control.frame(),
            None => Ok(None),
        }
    }

    /// Stops reading the control channel: the BEAM closed it, or broke
    /// the protocol.
    pub fn close_control(&mut self) {
        if let Some(control) = self.open_control() {
            control.open = false;
            let _ = self.poll.registry().deregister(&mut SourceFd(&0));
        }
    }

    /// After `X` or `F`, reads and drops frames until the BEAM closes the
    /// control channel (or a signal asks the helper to go). Exiting first
    /// would close our stdin under the BEAM while it may still be writing
    /// an ack, and a port whose write fails with `EPIPE` exits with reason
    /// `:epipe`, which kills its owner.
    pub fn await_close(&mut self) {
        while let Ok(Some(_)) = self.next_frame() {}
    }

    /// Where frames to the BEAM go.
    pub fn sink(&mut self) -> &mut Sink {
        &mut self.sink
    }

    /// Waits for the next frame from the BEAM between runs. `None` when the
    /// channel closed or a signal (other than SIGCHLD) asks the helper to
    /// go: with no child there is nothing to end.
    ///
    /// # Errors
    /// A frame that does not decode.
    pub fn next_frame(&mut self) -> Result<Option<Down>, String> {
        let mut events = Events::with_capacity(4);
        let mut closed = false;
        loop {
            if let Some(frame) = self.buffered_frame()? {
                return Ok(Some(frame));
            }
            if closed {
                self.close_control();
            }
            let Some(control) = self.open_control() else {
                return Ok(None);
            };
            let read = control.read();
            closed = read.eof;
            if read.got || !read.drained || closed {
                continue;
            }
            match self.poll.poll(&mut events, None) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("epoll: {e}")),
            }
            if events.iter().any(|ev| ev.token() == SIGNALS)
                && self.signals.pending().any(|s| s != SIGCHLD)
            {
                return Ok(None);
            }
        }
    }
}
