//! `pipe_<verb>`: the child's output the VM reads itself, straight from
//! the pipe, when the helper says how much is waiting there
//! (`docs/protocol.md`, "Direct output"). The helper's `P` frame names its
//! pid, the pipe's descriptor and a byte count; the VM opens its own
//! description of the same pipe through `/proc/<pid>/fd/<fd>`
//! (non-blocking) and reads that many bytes into one binary: one copy, no
//! port driver between, and as many bytes per read as the pipe held (the
//! port driver reads 64 KiB at a time and copies twice).
//!
//! The helper does not touch the pipe between its `P` and the VM's answer,
//! so the bytes are there and no read waits: these run on normal
//! schedulers.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Mutex, MutexGuard, PoisonError};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::libc;
use nix::sys::stat::{fstat, Mode, SFlag};
use rustler::{Binary, Env, OwnedBinary, Resource, ResourceArc};

use crate::error::{Done, Reason};

/// The most one `read(2)` takes: the pipe's lock is held for the whole
/// copy, and the helper splicing the next bytes in waits on it (spinning,
/// on a busy machine, on the CPU the child needs).
const READ_STEP: usize = 64 << 10;

/// One open read end; `None` once closed.
pub(crate) struct Pipe {
    fd: Mutex<Option<OwnedFd>>,
}

#[rustler::resource_impl]
impl Resource for Pipe {}

impl Pipe {
    fn slot(&self) -> MutexGuard<'_, Option<OwnedFd>> {
        self.fd.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether this build can read pipes itself (`/proc` is Linux's).
#[rustler::nif]
fn pipe_available() -> bool {
    cfg!(target_os = "linux")
}

/// Opens `/proc/<os_pid>/fd/<fd>` for reading, non-blocking: a second
/// description of the helper's read end, so the helper's own flags are
/// untouched. Anything but a pipe is refused (`{:error, {:invalid, _}}`).
#[rustler::nif]
fn pipe_open(os_pid: u32, fd: u32) -> Result<ResourceArc<Pipe>, Reason> {
    let path = format!("/proc/{os_pid}/fd/{fd}");
    let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let fd = open(path.as_str(), flags, Mode::empty()).map_err(|e| Reason::Posix(e as i32))?;
    // SAFETY: `open` just returned this descriptor and nothing else owns it.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let st = fstat(fd.as_raw_fd()).map_err(|e| Reason::Posix(e as i32))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFIFO {
        return Err(Reason::invalid(format!("{path} is not a pipe")));
    }
    Ok(ResourceArc::new(Pipe {
        fd: Mutex::new(Some(fd)),
    }))
}

/// Reads `n` bytes the pipe holds into one binary. Fewer only when the
/// pipe has fewer (end of file, or a helper that broke the protocol):
/// the caller checks the size.
#[rustler::nif]
fn pipe_read<'a>(env: Env<'a>, pipe: ResourceArc<Pipe>, n: usize) -> Result<Binary<'a>, Reason> {
    let slot = pipe.slot();
    let fd = slot.as_ref().ok_or(Reason::Posix(libc::EBADF))?;
    let mut bin = OwnedBinary::new(n);
    let mut got = 0;
    while got < n {
        let end = n.min(got + READ_STEP);
        match nix::unistd::read(fd.as_raw_fd(), &mut bin.as_mut_slice()[got..end]) {
            Ok(0) | Err(Errno::EAGAIN) => break,
            Ok(k) => got += k,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(Reason::Posix(e as i32)),
        }
    }
    if got < n && !bin.realloc(got) {
        return Err(Reason::Posix(libc::ENOMEM));
    }
    // A copy of up to a window: tell the scheduler what it cost (a 1 MiB
    // copy takes a few hundred microseconds, about a quarter of a slice).
    rustler::schedule::consume_timeslice(env, (got >> 12).clamp(1, 100) as i32);
    Ok(bin.release(env))
}

/// Closes the VM's end of the pipe; `:ok` also when it was closed before.
#[rustler::nif]
fn pipe_close(pipe: ResourceArc<Pipe>) -> Done {
    pipe.slot().take();
    Done(Ok(()))
}
