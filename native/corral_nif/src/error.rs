//! [`Reason`]: what a NIF returns in `{:error, reason}`, and the one
//! translation from [`corral_cgroup::Error`] to it.

use nix::errno::Errno;
use rustler::{Atom, Encoder, Env, Term};

use crate::atoms;

/// The reason of an `{:error, reason}` reply, each a term Elixir code can
/// match on. Documented for users in `Corral.Cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reason {
    /// A failed system call: its errno as a `File.posix()` atom
    /// (`:enoent`, `:eacces`, `:ebusy`, `:esrch`, ...).
    Posix(i32),
    /// An I/O failure without an errno: `:eio`.
    Io,
    /// No cgroup can be created or used here: `:unavailable`.
    Unavailable,
    /// A controller that is needed is missing or cannot be enabled:
    /// `{:missing_controller, "memory"}`.
    MissingController(String),
    /// A limit key with no equivalent on this layout:
    /// `{:unsupported, "memory_min"}`.
    Unsupported(String),
    /// A bad name, file name, key or value: `{:invalid, message}`, the
    /// message naming the argument, the value and why.
    Invalid(String),
    /// A cgroup file held something unexpected: `{:parse, path}`.
    Parse(String),
    /// Freezing or killing did not finish in time: `{:timeout, pids_left}`.
    Timeout(Vec<i32>),
    /// `delete` without `kill: true` on a group with processes: `:populated`.
    Populated,
}

impl Reason {
    pub(crate) fn invalid(message: impl Into<String>) -> Reason {
        Reason::Invalid(message.into())
    }
}

impl From<corral_cgroup::Error> for Reason {
    fn from(e: corral_cgroup::Error) -> Reason {
        use corral_cgroup::Error as E;
        match e {
            E::Unavailable { .. } => Reason::Unavailable,
            E::Controller { controller, .. } => Reason::MissingController(controller),
            E::Unsupported { key, .. } => Reason::Unsupported(key),
            e @ E::Invalid { .. } => Reason::Invalid(e.to_string()),
            E::Parse { path, .. } => Reason::Parse(path.to_string_lossy().into_owned()),
            E::Timeout { pids, .. } => Reason::Timeout(pids),
            e => e.errno().map_or(Reason::Io, Reason::Posix),
        }
    }
}

/// `ENOENT` → `"enoent"`, the spelling of Elixir's `File.posix()` atoms;
/// `None` for a number the C library does not name.
fn errno_name(n: i32) -> Option<String> {
    match Errno::from_raw(n) {
        Errno::UnknownErrno => None,
        e => Some(format!("{e:?}").to_ascii_lowercase()),
    }
}

impl Encoder for Reason {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        match self {
            Reason::Posix(n) => match errno_name(*n).and_then(|s| Atom::from_str(env, &s).ok()) {
                Some(atom) => atom.encode(env),
                None => (atoms::errno(), *n).encode(env),
            },
            Reason::Io => atoms::eio().encode(env),
            Reason::Unavailable => atoms::unavailable().encode(env),
            Reason::MissingController(c) => (atoms::missing_controller(), c).encode(env),
            Reason::Unsupported(k) => (atoms::unsupported(), k).encode(env),
            Reason::Invalid(m) => (atoms::invalid(), m).encode(env),
            Reason::Parse(p) => (atoms::parse(), p).encode(env),
            Reason::Timeout(pids) => (atoms::timeout(), pids).encode(env),
            Reason::Populated => atoms::populated().encode(env),
        }
    }
}

/// The reply of a NIF that only acts: `:ok` or `{:error, reason}`.
pub(crate) struct Done(pub(crate) Result<(), Reason>);

impl Encoder for Done {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        match &self.0 {
            Ok(()) => atoms::ok().encode(env),
            Err(r) => (atoms::error(), r).encode(env),
        }
    }
}

impl<E: Into<Reason>> From<Result<(), E>> for Done {
    fn from(r: Result<(), E>) -> Done {
        Done(r.map_err(Into::into))
    }
}
