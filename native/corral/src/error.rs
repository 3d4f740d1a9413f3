//! The helper's one error type: why a run could not start, with the stage
//! that failed, the OS error and a message for people. In port mode it
//! becomes the `F` frame ([`Error::fields`]); for a person, a line on
//! stderr (its `Display`); either way the helper's exit status
//! ([`Error::exit_code`]).

use crate::exit_code;
use crate::spawn::Stage;
use corral_proto::{key, Fields};
use nix::errno::Errno;
use std::fmt;

/// Why the child could not be started.
#[derive(Debug)]
pub struct Error {
    /// What failed.
    pub stage: Stage,
    /// The OS error (the `F` frame's `errno`).
    pub errno: Errno,
    /// For people: what was being done, and why it failed.
    pub message: String,
}

impl Error {
    /// `what` failed at `stage` with `errno`; the message says both.
    pub fn new(stage: Stage, errno: Errno, what: impl fmt::Display) -> Error {
        Error {
            stage,
            errno,
            message: format!("{what}: {}", errno.desc()),
        }
    }

    /// A failure no system call reported (a user the database does not
    /// have, a limit out of range): the message alone says it, and
    /// `errno` is only what the `F` frame must carry.
    pub fn plain(stage: Stage, errno: Errno, message: String) -> Error {
        Error {
            stage,
            errno,
            message,
        }
    }

    /// The helper's exit status, as `env(1)` and shells use them: not
    /// found, a usage error (the cgroup asked for), or cannot execute.
    pub fn exit_code(&self) -> i32 {
        match (self.stage, self.errno) {
            (Stage::Exec, Errno::ENOENT) => exit_code::NOT_FOUND,
            (Stage::Cgroup, _) => exit_code::USAGE_ERROR,
            _ => exit_code::CANNOT_EXECUTE,
        }
    }

    /// The `F` frame's fields, in the order `docs/protocol.md` lists them.
    pub fn fields(&self) -> Fields {
        Fields::default()
            .int(key::ERRNO, self.errno as i32 as u64)
            .text(key::ERRNO_NAME, &errno_name(self.errno))
            .text(key::STAGE, self.stage.name())
            .text(key::MESSAGE, &self.message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.stage, self.message)
    }
}

impl std::error::Error for Error {}

/// `ENOENT` → `"enoent"`, the spelling of Elixir's `File.posix()` atoms.
fn errno_name(e: Errno) -> String {
    format!("{e:?}").to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f_fields_exit_codes_and_the_line_for_people() {
        let e = Error::new(Stage::Exec, Errno::ENOENT, "/no/such");
        assert_eq!(e.to_string(), "exec: /no/such: No such file or directory");
        assert_eq!(e.exit_code(), exit_code::NOT_FOUND);
        let f = e.fields();
        assert_eq!(f.get_int(key::ERRNO), Some(2));
        assert_eq!(f.get_text(key::ERRNO_NAME), Some("enoent"));
        assert_eq!(f.get_text(key::STAGE), Some("exec"));
        let cgroup = Error::plain(Stage::Cgroup, Errno::EINVAL, "bad limit".into());
        assert_eq!(cgroup.to_string(), "cgroup: bad limit");
        assert_eq!(cgroup.exit_code(), exit_code::USAGE_ERROR);
        let denied = Error::new(Stage::Setuid, Errno::EPERM, "setuid");
        assert_eq!(denied.exit_code(), exit_code::CANNOT_EXECUTE);
    }
}
