//! Starting the child: fork, set it up, exec. Never through a shell.
//!
//! Everything that allocates or may take a lock (resolving the program and
//! user names, building argv and envp, opening files) happens before
//! `fork(2)`. Between fork and exec the child makes only raw system calls,
//! which are async-signal-safe (`signal-safety(7)`), and reports a failure
//! through a close-on-exec pipe: no bytes means exec succeeded.
//!
//! - `prepare.rs`: the parent's work before the fork, and `creds.rs` the
//!   user and group lookups in it;
//! - this file: the fork itself, with signals blocked, and reading the
//!   child's report;
//! - `clone.rs`: Linux's `clone(2)` and `clone3(2)` (the portable backend
//!   uses `fork(2)`, [`fork_child`]);
//! - `child.rs`: the child's work between fork and exec;
//! - `stage.rs`: the stages either side names.

use crate::args::Stdio;
use nix::errno::Errno;
use nix::unistd::Pid;
use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

mod child;
#[cfg(target_os = "linux")]
mod clone;
mod creds;
mod prepare;
mod stage;

pub use crate::error::Error;
use child::{child_after_fork, ChildSetup};
use prepare::Prepared;
pub use stage::Stage;

/// What to run and how.
#[derive(Debug)]
pub struct Spec {
    /// The program and its arguments; `argv[0]` is replaced by `arg0` if set.
    pub command: Vec<OsString>,
    /// Replacement `argv[0]`.
    pub arg0: Option<OsString>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
    /// Start from an empty environment.
    pub clear_env: bool,
    /// `KEY=VALUE` to set.
    pub set_env: Vec<OsString>,
    /// Keys to remove.
    pub unset_env: Vec<OsString>,
    /// User to run as.
    pub uid: Option<String>,
    /// Group to run as.
    pub gid: Option<String>,
    /// Supplementary groups.
    pub groups: Vec<String>,
    /// The child's stdin, stdout and stderr.
    pub stdio: [Stdio; 3],
    /// Give the child its own process group.
    pub new_process_group: bool,
    /// `cgroup.procs` files the child joins before exec.
    pub cgroup_procs: Vec<PathBuf>,
    /// The cgroup v2 directory the child is born in (`CLONE_INTO_CGROUP`),
    /// or joins before exec where `clone3(2)` cannot do that.
    pub cgroup_v2: Option<PathBuf>,
    /// An encoded `S` frame the child writes to the helper's stdout (the
    /// BEAM) just before exec, with its own pid at
    /// [`corral_proto::Up::STARTED_PID_AT`]. Written by the child, the
    /// frame is in the BEAM's pipe before the program runs a single
    /// instruction: a helper SIGKILLed at any moment after that leaves the
    /// BEAM knowing what to clean up (the process group and the cgroups).
    pub announce: Option<Vec<u8>>,
    /// Look a program named without a `/` up as `:os.find_executable/1`
    /// does, for `System.cmd/3`'s semantics: the first `PATH` entry with a
    /// regular file of that name with an execute bit for anyone; and make
    /// its path `argv[0]` (unless `arg0`), as the BEAM's `spawn_executable`
    /// does. Otherwise as `execvp(3)`: a file the helper may execute, and
    /// `argv[0]` the name as given.
    pub beam_lookup: bool,
    /// Run on a pseudo-terminal of this size (`--pty`): the child's stdin,
    /// stdout and stderr are its slave, in a session of its own.
    pub pty: Option<crate::pty::Size>,
    /// `setpriority(2)` for the child (`--nice`), before it drops privileges.
    pub nice: Option<i32>,
}

/// A child that is running.
#[derive(Debug)]
pub struct Child {
    /// Its pid (and process group id when it has its own group).
    pub pid: Pid,
    /// The write end of its stdin pipe.
    pub stdin: Option<OwnedFd>,
    /// The read end of its stdout pipe.
    pub stdout: Option<OwnedFd>,
    /// The read end of its stderr pipe.
    pub stderr: Option<OwnedFd>,
    /// The pseudo-terminal's master (`--pty`), for its window size and its
    /// end-of-file character; `stdin` and `stdout` are copies of it.
    pub terminal: Option<OwnedFd>,
}

/// Starts the child.
///
/// # Errors
/// [`Error`] with the stage that failed: name resolution and pipes before
/// fork, or whatever the child reported before exec.
pub fn spawn(spec: &Spec) -> Result<Child, Error> {
    let mut prepared = Prepared::new(spec)?;
    let pid = fork(spec, &mut prepared)?;
    let terminal = prepared.terminal.take();
    let (err_read, parent_ends, program) = prepared.after_fork();

    let mut report = [0u8; 5];
    let n = read_full(&err_read, &mut report);
    if n == 5 {
        let _ = nix::sys::wait::waitpid(pid, None);
        let stage = Stage::from_code(report[0]).unwrap_or(Stage::Spawn);
        let errno = Errno::from_raw(i32::from_ne_bytes([
            report[1], report[2], report[3], report[4],
        ]));
        let what = match stage {
            Stage::Exec => program.display().to_string(),
            Stage::Chdir => spec
                .cwd
                .as_deref()
                .unwrap_or(Path::new(""))
                .display()
                .to_string(),
            Stage::Cgroup => "joining the cgroup".to_owned(),
            Stage::Nice => format!(
                "setting the priority to {} (a value below the current one needs CAP_SYS_NICE)",
                spec.nice.unwrap_or(0)
            ),
            Stage::Pty => "taking the terminal as the controlling one".to_owned(),
            other => other.name().to_owned(),
        };
        return Err(Error::new(stage, errno, what));
    }
    let [stdin, stdout, stderr] = parent_ends;
    Ok(Child {
        pid,
        stdin,
        stdout,
        stderr,
        terminal,
    })
}

/// Starts the child on `prepared` with every signal blocked, so no
/// handler of the helper runs in the child before it resets them; the
/// helper's mask is restored right after.
fn fork(spec: &Spec, prepared: &mut Prepared) -> Result<Pid, Error> {
    let v2_dir = prepared.cgroup_v2.as_ref().map(|d| d.as_raw_fd());
    let mut setup = prepared.setup();
    let all = nix::sys::signal::SigSet::all();
    let mut old = nix::sys::signal::SigSet::empty();
    nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&all),
        Some(&mut old),
    )
    .map_err(|e| Error::new(Stage::Spawn, e, "sigprocmask"))?;
    let restore_mask = || {
        let _ = nix::sys::signal::pthread_sigmask(
            nix::sys::signal::SigmaskHow::SIG_SETMASK,
            Some(&old),
            None,
        );
    };
    let mut pid = -1;
    // Only Linux has cgroups, so only Linux gets here with a directory.
    #[cfg(target_os = "linux")]
    if let Some(dir) = v2_dir {
        setup.handlers_cleared = true;
        pid = clone::clone_into_cgroup(&setup, dir);
        setup.handlers_cleared = false;
    }
    #[cfg(not(target_os = "linux"))]
    let _ = v2_dir;
    // Where clone3 cannot place the child, it joins through cgroup.procs
    // before exec; that file is opened only then, and closed when this
    // returns, after the fork.
    let mut procs = None;
    if pid < 0 {
        if let Some(dir) = &spec.cgroup_v2 {
            match prepare::open_cgroup_file(&dir.join("cgroup.procs"), true) {
                Ok(fd) => setup.cgroup_fds.push(procs.insert(fd).as_raw_fd()),
                Err(e) => {
                    restore_mask();
                    return Err(e);
                }
            }
        }
        pid = start(&setup);
    }
    let fork_errno = Errno::last();
    restore_mask();
    if pid < 0 {
        return Err(Error::new(Stage::Spawn, fork_errno, "fork"));
    }
    Ok(Pid::from_raw(pid))
}

/// Starts the child on the platform's way: Linux's `clone(2)` sharing the
/// address space, or on the portable backend `fork(2)`. Both run
/// [`child_after_fork`] in the child. Returns the pid, or -1 with errno set.
fn start(setup: &ChildSetup) -> libc::pid_t {
    #[cfg(target_os = "linux")]
    if !crate::sys::portable() {
        return clone::clone_vfork(setup);
    }
    fork_child(setup)
}

/// `fork(2)`, then [`child_after_fork`] in the child. The helper has one
/// thread, so the child's copy of it holds no lock another thread took.
fn fork_child(setup: &ChildSetup) -> libc::pid_t {
    // SAFETY: fork(2) has no preconditions; the child runs only
    // child_after_fork, which is async-signal-safe and never returns.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: we are the child of fork(2).
        unsafe { child_after_fork(setup) }
    }
    pid
}

fn read_full(fd: &OwnedFd, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        match nix::unistd::read(fd.as_raw_fd(), &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    got
}
