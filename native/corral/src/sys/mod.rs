//! The platform seam: what the helper does differently on Linux and on the
//! portable backend, in one place.
//!
//! The portable backend is what macOS and FreeBSD get, and what Linux takes
//! under `CORRAL_TEST_PORTABLE=1` (so the tests run it here):
//!
//! | concern | Linux | portable |
//! |---|---|---|
//! | spawn | `clone(CLONE_VM \| CLONE_VFORK)`, `clone3` into the cgroup | `fork(2)` |
//! | holding the tree | cgroup, subreaper, process group | the process group (`setpgid`, `killpg`) |
//! | process table | `/proc` | macOS `libproc`, FreeBSD `sysctl(kern.proc)`, Linux-portable `/proc` |
//! | parent death | `PR_SET_PDEATHSIG` | none: the BEAM kills the group (`Corral.Orphans`) |
//! | output pipes | `F_SETPIPE_SZ`, `splice(2)` | `read(2)` and `write(2)` |
//! | `--max-processes` | `pids.max`, the proc connector, polling | polling |
//!
//! Everything else, the event loop (mio: epoll or kqueue), the protocol,
//! flow control, `wait4(2)` and the one kill sequence of
//! [`crate::tree::Tree`], is the same code on both.

#[cfg(target_os = "freebsd")]
mod freebsd;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "macos")]
mod macos;

#[cfg(target_os = "freebsd")]
pub use freebsd::{descendants, has_live_threads, scan_all, stat_of};
#[cfg(target_os = "linux")]
pub use linux::{descendants, has_live_threads, scan_all, stat_of};
#[cfg(target_os = "macos")]
pub use macos::{descendants, has_live_threads, scan_all, stat_of};

#[cfg(target_os = "linux")]
pub use crate::forks::Forks;

use nix::errno::Errno;
use std::os::fd::{OwnedFd, RawFd};

/// The unit of `ru_maxrss` in `getrusage(2)` and `wait4(2)`, in bytes:
/// kilobytes on Linux and FreeBSD, bytes on macOS.
pub const MAXRSS_UNIT: u64 = if cfg!(target_os = "macos") { 1 } else { 1024 };

/// Set in the helper's environment on Linux, it makes the helper take the
/// portable backend. For tests only; see `docs/helper.md`.
pub const TEST_PORTABLE: &str = "CORRAL_TEST_PORTABLE";

/// Whether this helper runs the portable backend: always off Linux, on
/// Linux only under [`TEST_PORTABLE`]. Read once.
pub fn portable() -> bool {
    if cfg!(not(target_os = "linux")) {
        return true;
    }
    static PORTABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PORTABLE.get_or_init(|| std::env::var_os(TEST_PORTABLE).is_some_and(|v| v != "0"))
}

/// The platform's name, for messages about what it cannot do.
pub fn platform() -> &'static str {
    if cfg!(target_os = "macos") {
        "macOS"
    } else if cfg!(target_os = "freebsd") {
        "FreeBSD"
    } else if cfg!(target_os = "linux") {
        "Linux (CORRAL_TEST_PORTABLE)"
    } else {
        std::env::consts::OS
    }
}

/// Makes the helper a child subreaper (`PR_SET_CHILD_SUBREAPER`), so
/// orphans of the tree re-parent to it. Linux only; `ENOSYS` on the
/// portable backend.
pub fn become_subreaper() -> nix::Result<()> {
    #[cfg(target_os = "linux")]
    if !portable() {
        return nix::sys::prctl::set_child_subreaper(true);
    }
    Err(Errno::ENOSYS)
}

/// Whether [`relay_quietly`] made the helper `SCHED_BATCH`, which the
/// child must not inherit ([`crate::spawn`] resets it before exec).
#[cfg(target_os = "linux")]
static BATCHED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Takes `SCHED_BATCH` for the helper (`sched(7)`) when it runs under the
/// default policy. In port mode the helper is the third busy process of a
/// stream, between the child writing and the BEAM reading; under the
/// default policy each of its many short wake-ups preempts one of them,
/// and on a machine with few cores the BEAM then sits idle. A batch
/// thread still gets its fair share of CPU, only without wake-up
/// preemption. A policy set from outside (`chrt`) is kept. Linux only;
/// an optimisation, so a refusal is ignored.
pub fn relay_quietly() {
    #[cfg(target_os = "linux")]
    if !portable() {
        // SAFETY: plain system calls on this thread, with a valid param.
        unsafe {
            let param = libc::sched_param { sched_priority: 0 };
            if libc::sched_getscheduler(0) == libc::SCHED_OTHER
                && libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) == 0
            {
                BATCHED.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

/// Whether the helper's policy is its own ([`relay_quietly`]), so a child
/// must go back to `SCHED_OTHER`.
#[cfg(target_os = "linux")]
pub fn batched() -> bool {
    BATCHED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Asks for a pipe of `size` bytes (`F_SETPIPE_SZ`). An optimisation only:
/// refusals are ignored, and the portable backend keeps the default.
pub fn grow_pipe(fd: RawFd, size: i32) {
    #[cfg(target_os = "linux")]
    if !portable() {
        let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETPIPE_SZ(size));
    }
    let _ = (fd, size);
}

/// Whether pipe-to-pipe `splice(2)` may be tried ([`splice`]).
pub fn can_splice() -> bool {
    cfg!(target_os = "linux") && !portable()
}

/// Moves up to `n` bytes from the pipe `from` to the pipe `to` in the
/// kernel (`splice(2)`). `ENOSYS` where there is no such call; the caller
/// then reads and writes.
pub fn splice(from: RawFd, to: RawFd, n: usize) -> nix::Result<usize> {
    #[cfg(target_os = "linux")]
    {
        use nix::fcntl::SpliceFFlags;
        // SAFETY: the caller keeps both descriptors open for the call.
        let (src, out) = unsafe {
            (
                std::os::fd::BorrowedFd::borrow_raw(from),
                std::os::fd::BorrowedFd::borrow_raw(to),
            )
        };
        nix::fcntl::splice(src, None, out, None, n, SpliceFFlags::SPLICE_F_MOVE)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (from, to, n);
        Err(Errno::ENOSYS)
    }
}

/// A pipe whose both ends are close-on-exec: `pipe2(O_CLOEXEC)` where
/// there is one, else `pipe` then `FD_CLOEXEC` (macOS; the helper has no
/// other thread that could fork in between).
pub fn pipe_cloexec() -> nix::Result<(OwnedFd, OwnedFd)> {
    #[cfg(any(target_os = "linux", target_os = "freebsd"))]
    {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
    }
    #[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
    {
        use nix::fcntl::{fcntl, FcntlArg, FdFlag};
        use std::os::fd::AsRawFd;
        let (r, w) = nix::unistd::pipe()?;
        for fd in [&r, &w] {
            fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
        }
        Ok((r, w))
    }
}

/// The tree's forks and exits as they happen: the Linux proc connector.
/// Elsewhere there is none; this type cannot be made, and
/// `--max-processes` is polled.
#[cfg(not(target_os = "linux"))]
#[derive(Debug)]
pub struct Forks {
    /// Events were lost.
    pub lost: bool,
    /// The most members seen at once.
    pub peak: u64,
    never: std::convert::Infallible,
}

#[cfg(not(target_os = "linux"))]
impl Forks {
    /// There is no process events connector here.
    ///
    /// # Errors
    /// Always `Unsupported`.
    pub fn open() -> std::io::Result<Forks> {
        Err(std::io::ErrorKind::Unsupported.into())
    }
    /// Never called: no `Forks` exists.
    pub fn track(&mut self, _pid: i32) {
        match self.never {}
    }
    /// Never called: no `Forks` exists.
    pub fn resync(&mut self, _pids: impl IntoIterator<Item = i32>) {
        match self.never {}
    }
    /// Never called: no `Forks` exists.
    pub fn count(&self) -> u64 {
        match self.never {}
    }
    /// Never called: no `Forks` exists.
    pub fn read(&mut self) {
        match self.never {}
    }
}

#[cfg(not(target_os = "linux"))]
impl std::os::fd::AsRawFd for Forks {
    fn as_raw_fd(&self) -> RawFd {
        match self.never {}
    }
}

/// The end of the signal numbers, so the child can reset every
/// disposition: `SIGRTMAX` on Linux; elsewhere 128, past FreeBSD's last
/// (macOS has 31; `signal(3)` refuses numbers past them, harmlessly).
pub fn last_signal() -> libc::c_int {
    #[cfg(target_os = "linux")]
    {
        libc::SIGRTMAX()
    }
    #[cfg(not(target_os = "linux"))]
    {
        128
    }
}

/// The signals the helper ignores (`SIG_IGN`): `SIGPIPE`, which Rust's
/// runtime ignores, and whatever the helper's parent left ignored (read
/// from `SigIgn` in `/proc/self/status`, which also shows the signals glibc
/// keeps for itself). A child started with `CLONE_CLEAR_SIGHAND` has every
/// handler reset by the kernel, but an ignored signal stays ignored across
/// exec, so the child resets these itself. Read once, at the first spawn:
/// the helper ignores nothing later (it handles signals, through
/// `signal-hook`). Empty off Linux, where nothing clears the handlers.
pub fn ignored_signals() -> &'static [libc::c_int] {
    static IGNORED: std::sync::OnceLock<Vec<libc::c_int>> = std::sync::OnceLock::new();
    IGNORED.get_or_init(|| {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let mask = status
            .lines()
            .find_map(|l| l.strip_prefix("SigIgn:"))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .unwrap_or(0);
        (1..=64)
            .filter(|sig| mask & (1 << (sig - 1)) != 0)
            .collect()
    })
}

/// The calling process's pid from the kernel itself. Linux: the raw
/// system call, as a libc may cache its `getpid` across a `clone(2)`
/// sharing the address space. Async-signal-safe.
pub fn raw_getpid() -> libc::pid_t {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getpid has no preconditions.
        unsafe { libc::syscall(libc::SYS_getpid) as libc::pid_t }
    }
    #[cfg(not(target_os = "linux"))]
    {
        // SAFETY: getpid has no preconditions; the portable backend forks.
        unsafe { libc::getpid() }
    }
}
