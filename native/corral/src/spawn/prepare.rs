//! The parent's side of the spawn, before the fork: everything that
//! allocates or may take a lock (resolving the program and the user and
//! group names, building argv and envp, opening pipes and cgroup files)
//! happens here, so that the child needs none of it.

use super::child::ChildSetup;
use super::creds::Creds;
use super::{Error, Spec, Stage};
use crate::args::Stdio;
use nix::errno::Errno;
use nix::unistd::{Gid, Uid};
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// What the child needs, resolved and opened before the fork. It owns
/// the memory and the descriptors [`ChildSetup`] points to, so it must
/// outlive the child's exec (or its report of failure).
pub(super) struct Prepared {
    /// The program found, for messages.
    program: PathBuf,
    c_program: CString,
    /// Owns what `c_argv` points to.
    _argv: Vec<CString>,
    /// Owns what `c_envp` points to.
    _envp: Vec<CString>,
    c_argv: Vec<*const libc::c_char>,
    c_envp: Vec<*const libc::c_char>,
    cwd: Option<CString>,
    creds: Creds,
    c_groups: Option<Vec<libc::gid_t>>,
    fds: ChildFds,
    /// The helper's ends of the child's stdin, stdout and stderr pipes.
    parent_ends: [Option<OwnedFd>; 3],
    cgroup_fds: Vec<OwnedFd>,
    /// The v2 directory, for `CLONE_INTO_CGROUP`.
    pub(super) cgroup_v2: Option<OwnedFd>,
    /// The child's report of failure comes out here.
    err_read: OwnedFd,
    err_write: OwnedFd,
    announce: Option<Vec<u8>>,
    /// The BEAM's end, kept open past the stdio dup2s; closed by exec.
    announce_fd: Option<OwnedFd>,
    new_process_group: bool,
    /// The pseudo-terminal's master (`--pty`), which the helper keeps.
    pub(super) terminal: Option<OwnedFd>,
    nice: Option<i32>,
}

impl Prepared {
    /// Resolves and opens everything `spec` asks for.
    ///
    /// # Errors
    /// A program that is not there or not executable (stage `exec`), a
    /// user or group that is not there (`user`), a cgroup file that cannot
    /// be opened (`cgroup`), anything else (`spawn`).
    pub(super) fn new(spec: &Spec) -> Result<Prepared, Error> {
        let program = resolve_program(
            spec.command
                .first()
                .map(OsString::as_os_str)
                .unwrap_or_default(),
            spec.beam_lookup,
        )?;
        check_executable(&program, spec.cwd.as_deref())?;
        let c_program = cstring(program.as_os_str().as_bytes())?;
        let mut argv: Vec<CString> = Vec::with_capacity(spec.command.len());
        let arg0 = match &spec.arg0 {
            Some(arg0) => arg0.as_os_str(),
            None if spec.beam_lookup => program.as_os_str(),
            None => spec.command[0].as_os_str(),
        };
        argv.push(cstring(arg0.as_bytes())?);
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
        let cgroup_fds = spec
            .cgroup_procs
            .iter()
            .map(|p| open_cgroup_file(p, true))
            .collect::<Result<Vec<_>, _>>()?;
        let cgroup_v2 = spec
            .cgroup_v2
            .as_ref()
            .map(|dir| open_cgroup_file(dir, false))
            .transpose()?;

        let mut parent_ends: [Option<OwnedFd>; 3] = [None, None, None];
        let mut fds = ChildFds {
            targets: [None; 3],
            _keep: Vec::new(),
        };
        let null = dev_null()?;
        let mut stdout_write: Option<RawFd> = None;
        let mut terminal = None;
        if let Some(size) = spec.pty {
            let ends = crate::pty::prepare(size, spec.stdio[0] == Stdio::Pipe)
                .map_err(|e| Error::new(Stage::Pty, e, "opening a pseudo-terminal"))?;
            parent_ends = [ends.stdin, Some(ends.stdout), None];
            fds.targets = [Some(ends.slave.as_raw_fd()); 3];
            fds._keep.push(ends.slave);
            terminal = Some(ends.master);
        }
        for (i, mode) in spec.stdio.iter().enumerate().filter(|_| spec.pty.is_none()) {
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
        fds._keep.push(null);
        let (err_read, err_write) = pipe()?;
        let announce = spec.announce.clone();
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
        let c_argv = nul_terminated(&argv);
        let c_envp = nul_terminated(&envp);
        let c_groups = creds
            .groups
            .as_ref()
            .map(|g| g.iter().map(|g| g.as_raw()).collect());
        Ok(Prepared {
            program,
            c_program,
            _argv: argv,
            _envp: envp,
            c_argv,
            c_envp,
            cwd,
            creds,
            c_groups,
            fds,
            parent_ends,
            cgroup_fds,
            cgroup_v2,
            err_read,
            err_write,
            announce,
            announce_fd,
            new_process_group: spec.new_process_group,
            terminal,
            nice: spec.nice,
        })
    }

    /// The pointers and numbers the child uses, into `self`.
    pub(super) fn setup(&mut self) -> ChildSetup<'_> {
        ChildSetup {
            program: self.c_program.as_ptr(),
            argv: self.c_argv.as_ptr(),
            envp: self.c_envp.as_ptr(),
            cwd: self.cwd.as_ref().map(|c| c.as_ptr()),
            groups: self.c_groups.as_deref(),
            gid: self.creds.gid.map(Gid::as_raw),
            uid: self.creds.uid.map(Uid::as_raw),
            stdio: self.fds.targets,
            new_process_group: self.new_process_group,
            pty: self.terminal.is_some(),
            nice: self.nice,
            cgroup_fds: self.cgroup_fds.iter().map(|f| f.as_raw_fd()).collect(),
            err_fd: self.err_write.as_raw_fd(),
            #[cfg(target_os = "linux")]
            parent: std::process::id() as libc::pid_t,
            #[cfg(target_os = "linux")]
            unbatch: crate::sys::batched(),
            announce: match (&mut self.announce, &self.announce_fd) {
                (Some(frame), Some(fd)) if frame.len() >= corral_proto::Up::STARTED_PID_AT + 4 => {
                    Some((fd.as_raw_fd(), frame.as_mut_ptr(), frame.len()))
                }
                _ => None,
            },
            #[cfg(target_os = "linux")]
            parent_death_signal: !crate::sys::portable(),
            last_signal: crate::sys::last_signal(),
            handlers_cleared: false,
            ignored: crate::sys::ignored_signals(),
        }
    }

    /// After the fork: closes the helper's copies of what only the child
    /// needed (its pipe ends, the error pipe's write end, the cgroup files,
    /// the BEAM's end), so that the error pipe reads end of file once the
    /// child has exec'd. Returns the error pipe's read end, the helper's
    /// ends of the child's pipes, and the program.
    pub(super) fn after_fork(self) -> (OwnedFd, [Option<OwnedFd>; 3], PathBuf) {
        (self.err_read, self.parent_ends, self.program)
    }
}

/// Pointers to `strings` and a NULL, as `execve(2)` takes them.
fn nul_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Opens a cgroup file or directory (`cgroup.procs` to write, a v2
/// directory to read for `CLONE_INTO_CGROUP`).
///
/// # Errors
/// The OS error, stage `cgroup`.
pub(super) fn open_cgroup_file(p: &Path, write: bool) -> Result<OwnedFd, Error> {
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
}

impl Spec {
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

/// Finds `program` in the helper's own `PATH`: as `execvp(3)` would, or
/// with `beam` as `:os.find_executable/1` does ([`Spec::beam_lookup`]).
///
/// # Errors
/// `ENOENT` (stage `exec`) when no `PATH` entry has an executable file of that name.
fn resolve_program(program: &OsStr, beam: bool) -> Result<PathBuf, Error> {
    use std::os::unix::fs::PermissionsExt;
    if program.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(program);
        let found = if beam {
            std::fs::metadata(&candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        } else {
            nix::unistd::access(&candidate, nix::unistd::AccessFlags::X_OK).is_ok()
                && candidate.is_file()
        };
        if found {
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
