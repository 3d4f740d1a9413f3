//! The BEAM's side of a run: frames from the control channel, stdin for
//! the child under its credit, the child's output under the window.

use super::{Session, OUTPUT};
use crate::stdio;
use corral_proto::{Down, PipeState, Reason};
use mio::unix::SourceFd;
use mio::Interest;
use std::os::fd::AsRawFd;
use std::time::Instant;

impl Session<'_> {
    pub(super) fn read_control(&mut self) {
        // Read in bounded pieces, handling the frames of each before the
        // next: what waits in the deframer stays below a frame and a read.
        let mut closed = false;
        while !closed {
            let Some(control) = self.base.open_control() else {
                return;
            };
            let read = control.read();
            closed = read.eof;
            loop {
                match self.base.buffered_frame() {
                    Ok(Some(frame)) => self.handle(frame),
                    Ok(None) => break,
                    Err(e) => self.phase.break_protocol(e),
                }
                if self.phase.protocol_broken() {
                    // A protocol error ends the run as a closed channel
                    // does, and nothing more is read.
                    closed = true;
                    break;
                }
            }
            if read.drained {
                break;
            }
        }
        if closed {
            self.base.close_control();
            self.orphan();
        }
    }

    /// The BEAM is gone: end the tree and stop sending.
    pub(super) fn orphan(&mut self) {
        self.phase.orphan();
        self.base.sink.open = false;
        self.end(Reason::Stopped);
    }

    pub(super) fn handle(&mut self, frame: Down) {
        match frame {
            Down::Ack(n) => self.window.acked(n),
            Down::Stdin(data) => {
                if let Some(input) = self.input.as_mut() {
                    // The BEAM sends I only while less than a window is
                    // unconfirmed (docs/protocol.md, "Flow control"), so the
                    // helper never holds more than a window and a frame.
                    // Past that it is not the protocol, and the input would
                    // grow without bound in a child that does not read.
                    if !input.admits_more() {
                        self.phase.break_protocol(format!(
                            "an I frame of {} bytes with {} bytes of input \
                             unconfirmed, a full window of {}",
                            data.len(),
                            input.outstanding(),
                            input.credit.window()
                        ));
                        return;
                    }
                    input.push(data);
                    self.write_input(false);
                }
            }
            Down::CloseStdin => {
                if let Some(input) = self.input.as_mut() {
                    input.closing = true;
                    self.write_input(false);
                }
            }
            Down::Signal(name) => {
                if let Some(sig) = crate::values::signal_named(&name) {
                    let _ = nix::sys::signal::kill(self.child, sig);
                }
            }
            Down::Stop => self.end(Reason::Stopped),
            Down::Resize { cols, rows } => {
                // Without a terminal there is nothing to resize; a size of
                // 0 is the kernel's "unknown" and is passed on as such.
                if let Some(t) = &self.terminal {
                    let _ = crate::pty::resize(t, crate::pty::Size { cols, rows });
                }
            }
            Down::Pipe { stream, state } => self.pipe_answer(stream, state),
            Down::Run(_) => {
                self.phase
                    .break_protocol("R after the child started".into());
            }
        }
    }

    pub(super) fn write_input(&mut self, now_writable: bool) {
        let Some(input) = self.input.as_mut() else {
            return;
        };
        if now_writable {
            input.writable = true;
        }
        let open = input.flush();
        if !self.phase.orphaned() {
            if let Some(n) = input.credit.confirm(input.is_drained() || !open) {
                self.base.sink.send_up(&corral_proto::Up::Written(n));
            }
        }
        if !open {
            let _ = self
                .base
                .poll
                .registry()
                .deregister(&mut SourceFd(&input.fd.as_raw_fd()));
            self.input = None;
        }
    }

    pub(super) fn pump(&mut self) {
        if !self.base.sink.open && !self.phase.orphaned() {
            // A write to the BEAM failed: it is gone.
            self.orphan();
        }
        if self.phase.orphaned() {
            for out in self.outputs.iter_mut().flatten() {
                out.discard(&mut self.base.buf);
            }
            return;
        }
        if stdio::pump(
            &mut self.outputs,
            &mut self.window,
            &mut self.base.buf,
            &mut self.base.sink,
            self.cfg.direct_output,
        ) {
            self.watch.output_seen(Instant::now());
        }
    }

    /// Takes the output pipes out of the event loop while the window is
    /// full, and puts them back once an ack makes room. Otherwise every
    /// write of the child wakes the helper for nothing: 1 GB of `head`
    /// behind a slow BEAM made 100,000 context switches, 9 per frame.
    /// Registering again reports a pipe that filled meanwhile (epoll checks
    /// readiness on `EPOLL_CTL_ADD`), so nothing is missed.
    pub(super) fn park_outputs(&mut self) {
        let room = self.window.room();
        let registry = self.base.poll.registry();
        for (i, out) in self.outputs.iter_mut().enumerate() {
            let Some(out) = out.as_mut().filter(|o| !o.eof) else {
                continue;
            };
            let watch = out.wants(room);
            if watch == out.watched {
                continue;
            }
            let mut fd = SourceFd(&out.fd.as_raw_fd());
            if !watch {
                let _ = registry.deregister(&mut fd);
                out.watched = false;
            } else if registry
                .register(&mut fd, OUTPUT[i], Interest::READABLE)
                .is_ok()
            {
                out.readable = true;
                out.watched = true;
            }
        }
    }

    /// The BEAM's answer to a `P` frame: it read the bytes, or could not
    /// (they and the rest of the stream are relayed, and count against the
    /// window again as they go).
    fn pipe_answer(&mut self, stream: u8, state: PipeState) {
        let answer = self
            .outputs
            .iter_mut()
            .flatten()
            .filter(|o| o.tag == stream)
            .find_map(|o| o.answered(state == PipeState::Read));
        match answer {
            Some(back) => self.window.acked(back as u32),
            None => self
                .phase
                .break_protocol(format!("D for stream {stream}, which has no P out")),
        }
    }
}
