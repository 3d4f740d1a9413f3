//! Starting the child: fork, set it up, exec. Never through a shell.
//!
//! Everything that allocates or may take a lock (resolving the program and
//! user names, building argv and envp, opening files) happens before
//! `fork(2)`. Between fork and exec the child makes only raw system calls,
//! which are async-signal-safe (`signal-safety(7)`), and reports a failure
//! through a close-on-exec pipe: no bytes means exec succeeded.

use crate::args::Stdio;
use nix::errno::Errno;
use nix::unistd::{Gid, Group, Pid, Uid, User};
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

#[cfg(target_os = "linux")]
mod clone;
mod stage;

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
}

/// Why the child could not be started.
#[derive(Debug)]
pub struct Error {
    /// What failed.
    pub stage: Stage,
    /// The OS error.
    pub errno: Errno,
    /// For people.
    pub message: String,
}

impl Error {
    fn new(stage: Stage, errno: Errno, what: impl std::fmt::Display) -> Error {
        Error {
            stage,
            errno,
            message: format!("{what}: {}", errno.desc()),
        }
    }

    /// A user or group that the user database does not have: no system
    /// call failed, so the message is `what` alone (EINVAL is only the
    /// errno the F frame must carry).
    fn lookup(what: String) -> Error {
        Error {
            stage: Stage::User,
            errno: Errno::EINVAL,
            message: what,
        }
    }
}

/// Credentials resolved before fork.
struct Creds {
    uid: Option<Uid>,
    gid: Option<Gid>,
    groups: Option<Vec<Gid>>,
}

/// The user's id and primary group. A number is looked up too: dropping
/// to a uid must also drop root's group, and the passwd entry says which
/// group to take. A number without an entry has no primary group, so it
/// needs `--gid` (`have_gid`); without one it is refused rather than left
/// in GID 0.
fn resolve_user(name: &str, have_gid: bool) -> Result<(Uid, Option<Gid>), Error> {
    let not_found = Error::lookup;
    if let Ok(n) = name.parse::<u32>() {
        let uid = Uid::from_raw(n);
        return match User::from_uid(uid) {
            Ok(Some(u)) => Ok((uid, Some(u.gid))),
            Ok(None) if have_gid => Ok((uid, None)),
            Ok(None) => Err(not_found(format!(
                "uid {n} has no passwd entry to take a primary group from; give a gid"
            ))),
            Err(e) => Err(Error::new(Stage::User, e, format!("looking up uid {n}"))),
        };
    }
    match User::from_name(name) {
        Ok(Some(u)) => Ok((u.uid, Some(u.gid))),
        Ok(None) => Err(not_found(format!("no such user {name:?}"))),
        Err(e) => Err(Error::new(
            Stage::User,
            e,
            format!("looking up user {name:?}"),
        )),
    }
}

fn resolve_group(name: &str) -> Result<Gid, Error> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(Gid::from_raw(n));
    }
    match Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid),
        Ok(None) => Err(Error::lookup(format!("no such group {name:?}"))),
        Err(e) => Err(Error::new(
            Stage::User,
            e,
            format!("looking up group {name:?}"),
        )),
    }
}

impl Spec {
    fn creds(&self) -> Result<Creds, Error> {
        let (uid, user_gid) = match &self.uid {
            Some(u) => {
                let (uid, g) = resolve_user(u, self.gid.is_some())?;
                (Some(uid), g)
            }
            None => (None, None),
        };
        let gid = match &self.gid {
            Some(g) => Some(resolve_group(g)?),
            None => user_gid,
        };
        let groups = if !self.groups.is_empty() {
            Some(
                self.groups
                    .iter()
                    .map(|g| resolve_group(g))
                    .collect::<Result<_, _>>()?,
            )
        } else if uid.is_some() {
            // Dropping to another user must not keep root's supplementary groups.
            Some(Vec::new())
        } else {
            None
        };
        Ok(Creds { uid, gid, groups })
    }

    /// The environment the child gets, as `KEY=VALUE` C strings.
    fn envp(&self) -> Result<Vec<CString>, Error> {
        let mut vars: Vec<(OsString, OsString)> = if self.clear_env {
            Vec::new()
        } else {
            std::env::vars_os().collect()
        };
        for key in &self.unset_env {
            vars.retain(|(k, _)| k != key);
        }
        for kv in &self.set_env {
            let bytes = kv.as_bytes();
            let Some(eq) = bytes.iter().position(|&b| b == b'=') else {
                return Err(Error::new(
                    Stage::Spawn,
                    Errno::EINVAL,
                    format!("--env {kv:?} has no '='"),
                ));
            };
            let key = OsStr::from_bytes(&bytes[..eq]).to_owned();
            let value = OsStr::from_bytes(&bytes[eq + 1..]).to_owned();
            vars.retain(|(k, _)| *k != key);
            vars.push((key, value));
        }
        vars.into_iter()
            .map(|(k, v)| {
                let mut kv = k.into_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                cstring(kv)
            })
            .collect()
    }
}

fn cstring(bytes: impl Into<Vec<u8>>) -> Result<CString, Error> {
    CString::new(bytes)
        .map_err(|_| Error::new(Stage::Spawn, Errno::EINVAL, "argument contains a NUL byte"))
}

/// Finds `program` the way `execvp(3)` would, in the helper's own `PATH`.
///
/// # Errors
/// `ENOENT` (stage `exec`) when no `PATH` entry has an executable file of that name.
pub fn resolve_program(program: &OsStr) -> Result<PathBuf, Error> {
    if program.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(program);
        if nix::unistd::access(&candidate, nix::unistd::AccessFlags::X_OK).is_ok()
            && candidate.is_file()
        {
            return Ok(candidate);
        }
    }
    Err(Error::new(
        Stage::Exec,
        Errno::ENOENT,
        Path::new(program).display(),
    ))
}

/// Refuses, before the fork, a program path that `execve(2)` would refuse
/// as missing or not executable, as [`resolve_program`] does for a name:
/// the child sends `S` just before exec, so a failure caught here is a
/// plain `F` with nothing started. A relative path is looked up from the
/// working directory the child will have. What only exec can tell
/// (`ENOEXEC`, another user's permissions) still fails there, as `F` after
/// `S` (`docs/protocol.md`, "Start").
fn check_executable(program: &Path, cwd: Option<&Path>) -> Result<(), Error> {
    let at = match cwd {
        Some(dir) if program.is_relative() => dir.join(program),
        _ => program.to_path_buf(),
    };
    let fail = |errno| Err(Error::new(Stage::Exec, errno, program.display()));
    match nix::unistd::access(&at, nix::unistd::AccessFlags::X_OK) {
        Err(errno) => fail(errno),
        Ok(()) if at.is_dir() => fail(Errno::EACCES),
        Ok(()) => Ok(()),
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), Error> {
    crate::sys::pipe_cloexec().map_err(|e| Error::new(Stage::Spawn, e, "pipe"))
}

fn dev_null() -> Result<OwnedFd, Error> {
    let fd = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::new(Stage::Spawn, e, "/dev/null"))?;
    // SAFETY: open(2) just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The child's side of its three streams, chosen before fork.
struct ChildFds {
    /// The descriptor to place on 0, 1 and 2; `None` leaves it inherited.
    targets: [Option<RawFd>; 3],
    /// Keeps the child's ends open until after fork.
    _keep: Vec<OwnedFd>,
}

/// Starts the child.
///
/// # Errors
/// [`Error`] with the stage that failed: name resolution and pipes before
/// fork, or whatever the child reported before exec.
pub fn spawn(spec: &Spec) -> Result<Child, Error> {
    let program = resolve_program(
        spec.command
            .first()
            .map(OsString::as_os_str)
            .unwrap_or_default(),
    )?;
    check_executable(&program, spec.cwd.as_deref())?;
    let c_program = cstring(program.as_os_str().as_bytes())?;
    let mut argv: Vec<CString> = Vec::with_capacity(spec.command.len());
    argv.push(cstring(
        spec.arg0.as_ref().unwrap_or(&spec.command[0]).as_bytes(),
    )?);
    for a in &spec.command[1..] {
        argv.push(cstring(a.as_bytes())?);
    }
    let envp = spec.envp()?;
    let creds = spec.creds()?;
    let cwd = spec
        .cwd
        .as_ref()
        .map(|d| cstring(d.as_os_str().as_bytes()))
        .transpose()?;
    let open = |p: &Path, write: bool| {
        std::fs::OpenOptions::new()
            .read(!write)
            .write(write)
            .open(p)
            .map(OwnedFd::from)
            .map_err(|e| {
                Error::new(
                    Stage::Cgroup,
                    Errno::from_raw(e.raw_os_error().unwrap_or(0)),
                    p.display(),
                )
            })
    };
    let cgroup_fds = spec
        .cgroup_procs
        .iter()
        .map(|p| open(p, true))
        .collect::<Result<Vec<_>, _>>()?;
    // The v2 directory for CLONE_INTO_CGROUP.
    let cgroup_v2 = spec
        .cgroup_v2
        .as_ref()
        .map(|dir| open(dir, false))
        .transpose()?;

    let mut parent_ends: [Option<OwnedFd>; 3] = [None, None, None];
    let mut fds = ChildFds {
        targets: [None; 3],
        _keep: Vec::new(),
    };
    let null = dev_null()?;
    let mut stdout_write: Option<RawFd> = None;
    for (i, mode) in spec.stdio.iter().enumerate() {
        let target = match mode {
            Stdio::Inherit => None,
            Stdio::Null => Some(null.as_raw_fd()),
            Stdio::Pipe => {
                let (r, w) = pipe()?;
                let (mine, theirs) = if i == 0 { (w, r) } else { (r, w) };
                let raw = theirs.as_raw_fd();
                if i == 1 {
                    stdout_write = Some(raw);
                }
                parent_ends[i] = Some(mine);
                fds._keep.push(theirs);
                Some(raw)
            }
            Stdio::Stdout => match stdout_write {
                Some(w) => Some(w),
                None => Some(1),
            },
        };
        fds.targets[i] = target;
    }
    let (err_read, err_write) = pipe()?;
    // The BEAM's end, kept open past the stdio dup2s; closed by exec.
    let mut announce = spec.announce.clone();
    let announce_fd = match &announce {
        Some(_) => Some(
            nix::fcntl::fcntl(
                libc::STDOUT_FILENO,
                nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3),
            )
            .map(|fd| {
                // SAFETY: a new descriptor that nothing else owns.
                unsafe { OwnedFd::from_raw_fd(fd) }
            })
            .map_err(|e| Error::new(Stage::Spawn, e, "dup of stdout"))?,
        ),
        None => None,
    };

    let c_argv: Vec<*const libc::c_char> = argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let c_envp: Vec<*const libc::c_char> = envp
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let c_groups: Option<Vec<libc::gid_t>> = creds
        .groups
        .as_ref()
        .map(|g| g.iter().map(|g| g.as_raw()).collect());
    let setup = ChildSetup {
        program: c_program.as_ptr(),
        argv: c_argv.as_ptr(),
        envp: c_envp.as_ptr(),
        cwd: cwd.as_ref().map(|c| c.as_ptr()),
        groups: c_groups.as_deref(),
        gid: creds.gid.map(Gid::as_raw),
        uid: creds.uid.map(Uid::as_raw),
        stdio: fds.targets,
        new_process_group: spec.new_process_group,
        cgroup_fds: cgroup_fds.iter().map(|f| f.as_raw_fd()).collect(),
        err_fd: err_write.as_raw_fd(),
        #[cfg(target_os = "linux")]
        parent: std::process::id() as libc::pid_t,
        announce: match (&mut announce, &announce_fd) {
            (Some(frame), Some(fd)) if frame.len() >= corral_proto::Up::STARTED_PID_AT + 4 => {
                Some((fd.as_raw_fd(), frame.as_mut_ptr(), frame.len()))
            }
            _ => None,
        },
        #[cfg(target_os = "linux")]
        parent_death_signal: !crate::sys::portable(),
        last_signal: crate::sys::last_signal(),
    };

    // Block every signal across fork so no handler of the helper runs in the
    // child before it resets them; the parent restores its mask right after.
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
    let mut setup = setup;
    let mut pid = -1;
    // Only Linux has cgroups, so only Linux gets here with a directory.
    #[cfg(target_os = "linux")]
    if let Some(dir) = &cgroup_v2 {
        pid = clone::clone_into_cgroup(&setup, dir.as_raw_fd());
    }
    // Where clone3 cannot place the child, it joins through cgroup.procs
    // before exec; that file is opened only then.
    let mut procs = None;
    if pid < 0 {
        if let Some(dir) = &spec.cgroup_v2 {
            match open(&dir.join("cgroup.procs"), true) {
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
    drop(err_write);
    drop(announce_fd);
    drop(fds);
    drop(cgroup_fds);
    drop(cgroup_v2);
    drop(procs);
    let pid = Pid::from_raw(pid);

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
    })
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

/// Raw pointers and numbers the child uses between fork and exec.
pub(crate) struct ChildSetup<'a> {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: Option<*const libc::c_char>,
    groups: Option<&'a [libc::gid_t]>,
    gid: Option<libc::gid_t>,
    uid: Option<libc::uid_t>,
    stdio: [Option<RawFd>; 3],
    new_process_group: bool,
    cgroup_fds: Vec<RawFd>,
    err_fd: RawFd,
    /// The helper's pid, to tell after `PR_SET_PDEATHSIG` whether it died
    /// before the child asked to follow it.
    #[cfg(target_os = "linux")]
    parent: libc::pid_t,
    /// [`Spec::announce`]: the descriptor of the BEAM's pipe and the frame
    /// (pointer, length), which only the child touches until it execs.
    announce: Option<(RawFd, *mut u8, usize)>,
    /// Ask for `PR_SET_PDEATHSIG` (Linux; not on the portable backend).
    #[cfg(target_os = "linux")]
    parent_death_signal: bool,
    /// The highest signal number, for resetting every disposition.
    last_signal: libc::c_int,
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
/// system calls (sigaction, sigprocmask, setpgid, write, dup2, chdir,
/// setgroups, setgid, setuid, prctl, getppid, execve, _exit) on memory the
/// parent prepared and does not allocate.
pub(crate) unsafe fn child_after_fork(s: &ChildSetup) -> ! {
    // SAFETY: all calls below are async-signal-safe and use prepared data.
    unsafe {
        // Handlers are reset by exec, but ignored signals stay ignored
        // (Rust ignores SIGPIPE), so restore every default first.
        for sig in 1..s.last_signal {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());

        if s.new_process_group {
            libc::setpgid(0, 0);
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
