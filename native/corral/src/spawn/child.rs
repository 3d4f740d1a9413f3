//! The child's side of the spawn: what it runs between fork and exec.
//!
//! Nothing here allocates or takes a lock. The parent prepared every
//! pointer and number in a [`ChildSetup`] (see `prepare.rs`); the child
//! makes only raw system calls, which are async-signal-safe
//! (`signal-safety(7)`), and reports a failure as its [`Stage`] and errno
//! through a close-on-exec pipe, so no bytes means exec succeeded.

use super::Stage;
use nix::errno::Errno;
use std::os::fd::RawFd;

/// Raw pointers and numbers the child uses between fork and exec.
pub(crate) struct ChildSetup<'a> {
    /// The program to exec, resolved.
    pub(super) program: *const libc::c_char,
    /// NULL-terminated argument vector.
    pub(super) argv: *const *const libc::c_char,
    /// NULL-terminated environment.
    pub(super) envp: *const *const libc::c_char,
    /// Directory to change to.
    pub(super) cwd: Option<*const libc::c_char>,
    /// Supplementary groups to set.
    pub(super) groups: Option<&'a [libc::gid_t]>,
    /// Group id to set.
    pub(super) gid: Option<libc::gid_t>,
    /// User id to set.
    pub(super) uid: Option<libc::uid_t>,
    /// What to place on 0, 1 and 2; `None` leaves it inherited.
    pub(super) stdio: [Option<RawFd>; 3],
    /// `setpgid(0, 0)`.
    pub(super) new_process_group: bool,
    /// `stdio` is a pseudo-terminal's slave: take it as the controlling
    /// terminal of a new session (which is also a new process group).
    pub(super) pty: bool,
    /// `setpriority(2)` ([`super::Spec::nice`]).
    pub(super) nice: Option<i32>,
    /// Open `cgroup.procs` files to write `0` to.
    pub(super) cgroup_fds: Vec<RawFd>,
    /// The write end of the error pipe.
    pub(super) err_fd: RawFd,
    /// The helper's pid, to tell after `PR_SET_PDEATHSIG` whether it died
    /// before the child asked to follow it.
    #[cfg(target_os = "linux")]
    pub(super) parent: libc::pid_t,
    /// [`super::Spec::announce`]: the descriptor of the BEAM's pipe and the frame
    /// (pointer, length), which only the child touches until it execs.
    pub(super) announce: Option<(RawFd, *mut u8, usize)>,
    /// Ask for `PR_SET_PDEATHSIG` (Linux; not on the portable backend).
    #[cfg(target_os = "linux")]
    pub(super) parent_death_signal: bool,
    /// Go back from the helper's `SCHED_BATCH` to `SCHED_OTHER`
    /// ([`crate::sys::relay_quietly`]).
    #[cfg(target_os = "linux")]
    pub(super) unbatch: bool,
    /// The highest signal number, for resetting every disposition.
    pub(super) last_signal: libc::c_int,
    /// The kernel reset every handler (`CLONE_CLEAR_SIGHAND`): only the
    /// ignored signals are left to reset.
    pub(super) handlers_cleared: bool,
    /// The helper's ignored signals ([`crate::sys::ignored_signals`]).
    pub(super) ignored: &'static [libc::c_int],
}

/// Writes the `S` frame at `frame` with the child's pid to `fd`, whole,
/// waiting for room if the pipe is full (the descriptor may be
/// non-blocking). Returns false if the BEAM's end is gone.
///
/// # Safety
/// Only getpid(2), write(2) and poll(2), all async-signal-safe; `frame`
/// points to `len` bytes no one else uses until exec.
unsafe fn announce(fd: RawFd, frame: *mut u8, len: usize) -> bool {
    // SAFETY: see above; a raw getpid, as libc's may cache across clone.
    unsafe {
        let pid = crate::sys::raw_getpid() as u32;
        let at = corral_proto::Up::STARTED_PID_AT;
        std::ptr::copy_nonoverlapping(pid.to_be_bytes().as_ptr(), frame.add(at), 4);
        let mut done = 0;
        while done < len {
            let n = libc::write(fd, frame.add(done).cast(), len - done);
            if n > 0 {
                done += n as usize;
                continue;
            }
            match Errno::last_raw() {
                libc::EINTR => {}
                libc::EAGAIN => {
                    let mut p = libc::pollfd {
                        fd,
                        events: libc::POLLOUT,
                        revents: 0,
                    };
                    libc::poll(&mut p, 1, -1);
                }
                _ => return false,
            }
        }
        true
    }
}

/// Sets `sig` to its default action. On Linux with the raw system call: a
/// zeroed kernel `sigaction` is `SIG_DFL` with no flags and an empty mask
/// whatever the architecture's layout, and the call also reaches the two
/// signals glibc keeps for itself (32 and 33), which `signal(3)` refuses,
/// so that one the helper's parent left ignored is not ignored in the
/// program. `last` is the highest signal number: the kernel's sigset holds
/// that many bits.
///
/// # Safety
/// A system call on a local buffer; async-signal-safe.
unsafe fn default_action(sig: libc::c_int, last: libc::c_int) {
    #[cfg(target_os = "linux")]
    // SAFETY: the kernel reads at most a `struct sigaction` from `act`,
    // which is larger, and writes nothing (no old action asked for).
    unsafe {
        let act = [0u64; 6];
        let sigset_size = (last as usize).div_ceil(8);
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            act.as_ptr(),
            std::ptr::null_mut::<u64>(),
            sigset_size,
        );
    }
    #[cfg(not(target_os = "linux"))]
    // SAFETY: signal(3) is async-signal-safe.
    unsafe {
        let _ = last;
        libc::signal(sig, libc::SIG_DFL);
    }
}

/// Reports `stage` and errno to the parent and exits.
///
/// # Safety
/// Only write(2) and _exit(2), both async-signal-safe.
unsafe fn fail(err_fd: RawFd, stage: Stage) -> ! {
    // errno is thread-local and readable after fork.
    let errno = Errno::last_raw();
    let e = errno.to_ne_bytes();
    let msg = [stage.code(), e[0], e[1], e[2], e[3]];
    // SAFETY: write(2) and _exit(2) are async-signal-safe; msg outlives the call.
    unsafe {
        libc::write(err_fd, msg.as_ptr().cast(), msg.len());
        libc::_exit(127)
    }
}

/// The child's work between fork and exec.
///
/// # Safety
/// Must run only in the child of `fork(2)`. It makes only async-signal-safe
/// system calls (sigaction, sigprocmask, setpgid, sched_setscheduler, setsid, write, dup2,
/// ioctl, setpriority, chdir, setgroups, setgid, setuid, prctl, getppid,
/// execve, _exit) on memory the
/// parent prepared and does not allocate.
pub(crate) unsafe fn child_after_fork(s: &ChildSetup) -> ! {
    // SAFETY: all calls below are async-signal-safe and use prepared data.
    unsafe {
        // Handlers are reset by exec, but ignored signals stay ignored
        // (Rust ignores SIGPIPE), so restore every default first. Until
        // then a handler of the helper's would run on memory the helper
        // shares: all signals are blocked until the end of this loop.
        if s.handlers_cleared {
            for &sig in s.ignored {
                default_action(sig, s.last_signal);
            }
        } else {
            for sig in 1..=s.last_signal {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    default_action(sig, s.last_signal);
                }
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());

        if s.new_process_group && !s.pty {
            libc::setpgid(0, 0);
        }
        // The policy the helper had, and the BEAM gave it. The nice value
        // is kept; it cannot fail unless a filter forbids the call, and
        // then the child runs as a batch process, which is no reason not
        // to run it.
        #[cfg(target_os = "linux")]
        if s.unbatch {
            let param = libc::sched_param { sched_priority: 0 };
            libc::sched_setscheduler(0, libc::SCHED_OTHER, &param);
        }
        for &fd in &s.cgroup_fds {
            if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                fail(s.err_fd, Stage::Cgroup);
            }
        }
        for (target, src) in s.stdio.iter().enumerate() {
            if let Some(src) = *src {
                // dup2 onto itself would keep close-on-exec; clear it then.
                if src == target as RawFd {
                    libc::fcntl(src, libc::F_SETFD, 0);
                } else if libc::dup2(src, target as RawFd) < 0 {
                    fail(s.err_fd, Stage::Spawn);
                }
            }
        }
        if s.pty && !crate::pty::take_as_controlling(0) {
            fail(s.err_fd, Stage::Pty);
        }
        // Before the credentials change: a privileged caller may raise
        // the priority of a child that then runs unprivileged.
        if let Some(n) = s.nice {
            if libc::setpriority(libc::PRIO_PROCESS, 0, n) != 0 {
                fail(s.err_fd, Stage::Nice);
            }
        }
        if let Some(groups) = s.groups {
            if libc::setgroups(groups.len() as _, groups.as_ptr()) != 0 {
                fail(s.err_fd, Stage::Setgroups);
            }
        }
        if let Some(gid) = s.gid {
            if libc::setgid(gid) != 0 {
                fail(s.err_fd, Stage::Setgid);
            }
        }
        if let Some(uid) = s.uid {
            if libc::setuid(uid) != 0 {
                fail(s.err_fd, Stage::Setuid);
            }
        }
        if let Some(cwd) = s.cwd {
            if libc::chdir(cwd) != 0 {
                fail(s.err_fd, Stage::Chdir);
            }
        }
        // Should the helper be SIGKILLed, the child goes with it, even
        // with no cgroup to end the tree (prctl(2), PR_SET_PDEATHSIG). Set
        // after the credentials change, which clears it; exec keeps it
        // unless the program is set-user-ID or has file capabilities. A
        // helper that died before this line is not seen by the kernel, so
        // look: the child was re-parented if so.
        #[cfg(target_os = "linux")]
        if s.parent_death_signal {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            if libc::getppid() != s.parent {
                libc::_exit(127);
            }
        }
        if let Some((fd, frame, len)) = s.announce {
            if !announce(fd, frame, len) {
                fail(s.err_fd, Stage::Spawn);
            }
        }
        libc::execve(s.program, s.argv, s.envp);
        fail(s.err_fd, Stage::Exec)
    }
}
