//! The crate's one error type, and the extension trait that attaches a path
//! to an `io::Error` at the call site.

use std::io;
use std::path::{Path, PathBuf};

use crate::Layout;

/// Everything that can go wrong in this crate.
///
/// The variants carry what a person needs to act: the path, the value that
/// was written, the errno. [`Error::errno`] gives the errno where there is
/// one, so bindings can map errors to `File.posix()` atoms.
///
/// [`Error::Unavailable`] is special: it means "no cgroup can be used here"
/// (no cgroupfs, no delegation, a read-only hierarchy). Callers that did not
/// ask for limits may fall back to running without a cgroup; every other
/// variant is a hard error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No cgroup could be created or used on this system.
    #[error("cgroups unavailable: {reason}")]
    Unavailable {
        /// Why, in words, including the path where it failed.
        reason: String,
        /// The directory that could not be created or used, if any.
        path: Option<PathBuf>,
        /// The errno, if an operation failed (`EACCES`, `EROFS`, ...).
        errno: Option<i32>,
    },
    /// A cgroupfs read, write, mkdir or rmdir failed.
    #[error("{op} {}{}: {source}", path.display(), value.as_deref().map(|v| format!(" (value {v:?})")).unwrap_or_default())]
    Io {
        /// The operation: `"read"`, `"write"`, `"mkdir"`, `"rmdir"`, `"open"`.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The value written, for writes.
        value: Option<String>,
        /// The underlying error (its errno is [`Error::errno`]).
        #[source]
        source: io::Error,
    },
    /// A controller that is needed is missing or cannot be enabled.
    #[error("cgroup controller `{controller}` is not usable at {}: {hint}", path.display())]
    Controller {
        /// The controller, e.g. `"memory"`.
        controller: String,
        /// The directory (or mount) where it was looked for or enabled.
        path: PathBuf,
        /// What is wrong and how to delegate the controller.
        hint: String,
    },
    /// A limit key has no equivalent on this layout.
    #[error("`{key}` has no equivalent on {layout} cgroups")]
    Unsupported {
        /// The limit key, e.g. `"memory_oom_group"`.
        key: String,
        /// The layout in use.
        layout: Layout,
    },
    /// A bad argument: path, file name, key or value.
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        /// What was wrong: `"cgroup path"`, `"file name"`, `"cpu_weight"`, ...
        what: &'static str,
        /// The offending value.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A cgroup file held something this crate could not parse.
    #[error("cannot parse {}: {content:?}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What it held.
        content: String,
    },
    /// An exact cgroup path (`Placement::Path`) that another run holds, or
    /// that has processes of its own: a run never shares its cgroup, since
    /// ending the run kills everything in it.
    #[error("cgroup {} is in use: {reason}", path.display())]
    InUse {
        /// The cgroup directory.
        path: PathBuf,
        /// Who holds it.
        reason: String,
    },
    /// Freezing or killing did not finish within its bounded wait.
    #[error("{op} of cgroup {} did not finish in time; processes left: {pids:?}", path.display())]
    Timeout {
        /// `"freeze"` or `"kill"`.
        op: &'static str,
        /// The cgroup directory.
        path: PathBuf,
        /// Processes still in the group when it gave up.
        pids: Vec<i32>,
    },
}

impl Error {
    /// The errno behind this error, if there is one (`libc::EACCES`, ...).
    ///
    /// A [`Error::Timeout`] reports `EBUSY`.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Io { source, .. } => source.raw_os_error(),
            Error::Unavailable { errno, .. } => *errno,
            Error::Timeout { .. } | Error::InUse { .. } => Some(libc::EBUSY),
            _ => None,
        }
    }

    /// True for [`Error::Unavailable`]: no cgroup can be used here, and a
    /// caller that asked for no limits may run without one.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }

    pub(crate) fn invalid(what: &'static str, value: &str, reason: impl Into<String>) -> Error {
        Error::Invalid {
            what,
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches the operation and path to an `io::Result` on one line.
pub(crate) trait IoContext<T> {
    /// `op` on `path` failed.
    fn at(self, op: &'static str, path: &Path) -> Result<T>;
    /// Writing `value` to `path` failed.
    fn writing(self, path: &Path, value: &str) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, op: &'static str, path: &Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            op,
            path: path.to_owned(),
            value: None,
            source,
        })
    }

    fn writing(self, path: &Path, value: &str) -> Result<T> {
        self.map_err(|source| Error::Io {
            op: "write",
            path: path.to_owned(),
            value: Some(value.to_owned()),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_name_path_value_and_errno() {
        let e = Err::<(), _>(io::Error::from_raw_os_error(libc::EINVAL))
            .writing(Path::new("/x/memory.max"), "12")
            .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("/x/memory.max"), "{text}");
        assert!(text.contains("\"12\""), "{text}");
        assert_eq!(e.errno(), Some(libc::EINVAL));
    }
}
