//! Where frames go: the helper's stdout, written whole and blocking, with
//! child output spliced into it through a stage pipe.

use corral_proto::Up;
use nix::errno::Errno;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::OUTPUT_PIPE_SIZE;

/// Where frames go: the helper's stdout, written whole and blocking.
///
/// Blocking is safe: the window bounds what is in flight, and the BEAM's
/// port driver reads its end independently of the owning process.
pub struct Sink {
    /// False once a write failed: the BEAM is gone.
    pub open: bool,
    /// stdout is a pipe, so child output can be spliced into it.
    pub(super) splice: bool,
    /// Where a spliced frame is put together before it goes out whole.
    stage: Option<Stage>,
}

/// A pipe of the helper's own in which a frame's header and payload meet,
/// so that they enter stdout in one `splice(2)`. Written straight to
/// stdout, the header alone would wake the BEAM, whose port driver then
/// reads the payload a page at a time as it is moved in: three or more
/// reads and wake-ups for each small frame instead of one.
struct Stage {
    read: OwnedFd,
    write: OwnedFd,
}

const STDOUT: RawFd = 1;

/// The stage's size: a frame's header takes one of a pipe's slots and its
/// payload, spliced from the child's pipe, up to one slot per page or part
/// of a page, so a default 16-slot pipe could not hold a whole frame.
const STAGE_PIPE_SIZE: i32 = 256 << 10;

impl Sink {
    /// The helper's stdout. When it is a pipe (as under a port) it is
    /// enlarged so the BEAM can take a whole frame per read.
    pub fn stdout() -> Sink {
        let pipe = nix::sys::stat::fstat(STDOUT)
            .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFIFO)
            .unwrap_or(false);
        if pipe {
            crate::sys::grow_pipe(STDOUT, OUTPUT_PIPE_SIZE);
        }
        let splice = pipe && crate::sys::can_splice();
        let stage = if splice {
            crate::sys::pipe_cloexec().ok().map(|(read, write)| {
                crate::sys::grow_pipe(write.as_raw_fd(), STAGE_PIPE_SIZE);
                Stage { read, write }
            })
        } else {
            None
        };
        Sink {
            open: true,
            splice,
            stage,
        }
    }

    /// Writes a whole frame; a failure marks the sink closed.
    pub fn send(&mut self, mut frame: &[u8]) {
        while self.open && !frame.is_empty() {
            // SAFETY: fd 1 stays open for the life of the process.
            let out = unsafe { std::os::fd::BorrowedFd::borrow_raw(STDOUT) };
            match nix::unistd::write(out, frame) {
                Ok(n) => frame = &frame[n..],
                Err(Errno::EINTR) => {}
                Err(_) => self.open = false,
            }
        }
    }

    /// Encodes and sends an [`Up`] frame.
    pub fn send_up(&mut self, frame: &Up) {
        self.send(&frame.encode());
    }

    /// Sends the frame `head` followed by exactly `n` bytes from the pipe
    /// `from` (which holds at least that many), through the [`Stage`] where
    /// there is one: a frame that fits in it (64 KiB, a pipe's default)
    /// reaches the BEAM in one piece, a bigger one in stage-sized pieces.
    pub(super) fn send_spliced(&mut self, head: &[u8], from: RawFd, n: usize, buf: &mut [u8]) {
        let Some(stage) = self.stage.take() else {
            self.send(head);
            self.splice_exact(from, n, buf);
            return;
        };
        let mut held = match nix::unistd::write(&stage.write, head) {
            Ok(k) if k == head.len() => k,
            // A pipe of our own and empty takes a few bytes whole.
            _ => {
                self.send(head);
                self.splice_exact(from, n, buf);
                return;
            }
        };
        let mut left = n;
        while self.open && left > 0 {
            match crate::sys::splice(from, stage.write.as_raw_fd(), left) {
                Ok(0) => self.open = false,
                Ok(k) => {
                    left -= k;
                    held += k;
                }
                Err(Errno::EINTR) => {}
                // The stage is full: out with what it holds, then on.
                Err(Errno::EAGAIN) if held > 0 => {
                    self.drain(&stage, held, buf);
                    held = 0;
                }
                // The kernel refuses: what is staged goes out, the rest
                // the old way, and no stage from now on.
                Err(_) => {
                    self.drain(&stage, held, buf);
                    self.splice_exact(from, left, buf);
                    return;
                }
            }
        }
        self.drain(&stage, held, buf);
        self.stage = Some(stage);
    }

    /// Moves the `held` bytes in the stage to stdout.
    fn drain(&mut self, stage: &Stage, held: usize, buf: &mut [u8]) {
        self.splice_exact(stage.read.as_raw_fd(), held, buf);
    }

    /// Moves exactly `n` bytes from the pipe `from` (which holds at least
    /// that many) to stdout with `splice(2)`: pipe to pipe, the kernel
    /// moves page references instead of copying through this process.
    /// Falls back to read and write if the kernel refuses.
    fn splice_exact(&mut self, from: RawFd, mut n: usize, buf: &mut [u8]) {
        // SAFETY: fd 1 stays open for the life of the process.
        let out = unsafe { std::os::fd::BorrowedFd::borrow_raw(STDOUT) };
        while self.open && n > 0 {
            if self.splice {
                match crate::sys::splice(from, STDOUT, n) {
                    Ok(0) => self.open = false,
                    Ok(k) => n -= k,
                    Err(Errno::EINTR) => {}
                    // splice(2) is non-blocking when either end is, and the
                    // child's pipe is: wait for room in stdout, as write would.
                    Err(Errno::EAGAIN) => wait_writable(out),
                    Err(Errno::EINVAL | Errno::ENOSYS) => self.splice = false,
                    Err(_) => self.open = false,
                }
            } else {
                let want = n.min(buf.len());
                match nix::unistd::read(from, &mut buf[..want]) {
                    Ok(0) => self.open = false,
                    Ok(k) => {
                        self.send(&buf[..k]);
                        n -= k;
                    }
                    Err(Errno::EINTR | Errno::EAGAIN) => {}
                    Err(_) => self.open = false,
                }
            }
        }
    }
}

/// Blocks until `fd` has room for a write (or has failed, which the next
/// write reports).
fn wait_writable(fd: std::os::fd::BorrowedFd) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
    let _ = poll(&mut fds, PollTimeout::NONE);
}
