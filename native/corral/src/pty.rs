//! The child's pseudo-terminal (`--pty`): for programs that colour, buffer
//! or prompt differently when their output is a terminal.
//!
//! The helper opens the pair before the spawn (`openpty(3)`, on Linux,
//! macOS and FreeBSD alike). The child starts a session of its own
//! (`setsid(2)`), puts the slave on its stdin, stdout and stderr and makes
//! it its controlling terminal (`TIOCSCTTY`, `ioctl_tty(2)`). The helper
//! keeps the master: what the terminal produces is read from it as the
//! child's stdout, under the same window as a pipe; `I` frames are written
//! to it; `C` writes the terminal's end-of-file character (`VEOF`,
//! `termios(3)`) rather than closing it, as a person types Ctrl-D; and `T`
//! frames set its window size (`TIOCSWINSZ`), which makes the kernel send
//! `SIGWINCH` to the terminal's foreground process group.

use nix::errno::Errno;
use nix::pty::Winsize;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

pub use crate::values::TermSize as Size;

impl Size {
    fn winsize(self) -> Winsize {
        Winsize {
            ws_row: self.rows,
            ws_col: self.cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        }
    }
}

/// Opens a pseudo-terminal of `size`: `(master, slave)`, both
/// close-on-exec (the child gets the slave through `dup2(2)`).
///
/// # Errors
/// The errno of `openpty(3)` or `fcntl(2)`.
pub fn open(size: Size) -> nix::Result<(OwnedFd, OwnedFd)> {
    let pair = nix::pty::openpty(Some(&size.winsize()), None)?;
    for fd in [&pair.master, &pair.slave] {
        nix::fcntl::fcntl(
            fd.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )?;
    }
    Ok((pair.master, pair.slave))
}

/// A terminal opened for one spawn.
pub struct Ends {
    /// The master, which the helper keeps for `T` frames and `VEOF`.
    pub master: OwnedFd,
    /// The slave, for the child's stdin, stdout and stderr.
    pub slave: OwnedFd,
    /// A copy of the master that `I` frames are written to, with a stdin
    /// pipe; `None` otherwise.
    pub stdin: Option<OwnedFd>,
    /// A copy of the master that is read as the child's stdout.
    pub stdout: OwnedFd,
}

/// Opens a terminal of `size` for a child. Without `input` (no stdin
/// pipe) the terminal's input is at its end from the start, as
/// `/dev/null` would be: its `VEOF` waits in the terminal for the first read.
///
/// # Errors
/// The errno of opening, duplicating or writing to the master.
pub fn prepare(size: Size, input: bool) -> nix::Result<Ends> {
    let (master, slave) = open(size)?;
    let copy = |fd: &OwnedFd| {
        fd.try_clone()
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
    };
    let stdin = if input {
        Some(copy(&master)?)
    } else {
        nix::unistd::write(&master, &end_of_input(&master, None))?;
        None
    };
    Ok(Ends {
        stdout: copy(&master)?,
        stdin,
        master,
        slave,
    })
}

/// Sets the window size of the terminal whose master is `master`.
///
/// # Errors
/// The errno of `ioctl(TIOCSWINSZ)`.
pub fn resize(master: &OwnedFd, size: Size) -> nix::Result<()> {
    let ws = size.winsize();
    // SAFETY: TIOCSWINSZ reads one winsize through the pointer, which is valid.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ as _, &ws) };
    Errno::result(rc).map(drop)
}

/// What closing the terminal's input writes: its `VEOF` character (Ctrl-D
/// unless the program changed it), twice when the last byte written did
/// not end a line, since in canonical mode the first one only hands the
/// partial line to `read(2)` and the second is the end of file.
pub fn end_of_input(master: &OwnedFd, last_written: Option<u8>) -> Vec<u8> {
    let veof = nix::sys::termios::tcgetattr(master.as_fd())
        .map(|t| t.control_chars[nix::sys::termios::SpecialCharacterIndices::VEOF as usize])
        .unwrap_or(4);
    match last_written {
        Some(b) if b != b'\n' && b != b'\r' => vec![veof, veof],
        _ => vec![veof],
    }
}

/// In the child, after the slave was placed on `fd`: a new session, whose
/// controlling terminal the slave becomes. Returns false if the kernel
/// refused (errno set).
///
/// # Safety
/// Only `setsid(2)` and `ioctl(2)`, both async-signal-safe; for the child
/// between fork and exec.
pub unsafe fn take_as_controlling(fd: RawFd) -> bool {
    // SAFETY: see above. setsid fails only for a group leader, which a
    // fresh child is not.
    unsafe { libc::setsid() >= 0 && libc::ioctl(fd, libc::TIOCSCTTY as _, 0) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::term_size as size;

    #[test]
    fn sizes() {
        assert_eq!(
            size("100x40"),
            Ok(Size {
                cols: 100,
                rows: 40
            })
        );
        assert_eq!(size("80X24"), Ok(Size { cols: 80, rows: 24 }));
        for bad in ["", "100", "0x40", "100x0", "x", "65536x10", "-1x5", "axb"] {
            assert!(size(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn eof_is_doubled_after_a_partial_line() {
        let (master, _slave) = open(Size { cols: 80, rows: 24 }).expect("openpty");
        let veof = end_of_input(&master, None);
        assert_eq!(veof, vec![4], "a fresh terminal's VEOF is Ctrl-D");
        assert_eq!(end_of_input(&master, Some(b'\n')), veof);
        assert_eq!(end_of_input(&master, Some(b'x')), vec![4, 4]);
    }

    #[test]
    fn resize_sets_the_window_size() {
        let (master, slave) = open(Size { cols: 80, rows: 24 }).expect("openpty");
        resize(
            &master,
            Size {
                cols: 100,
                rows: 40,
            },
        )
        .expect("resize");
        // SAFETY: an all-zero winsize is valid.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: TIOCGWINSZ writes one winsize through a valid pointer.
        let rc = unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCGWINSZ as _, &mut ws) };
        assert_eq!(rc, 0);
        assert_eq!((ws.ws_col, ws.ws_row), (100, 40));
    }
}
