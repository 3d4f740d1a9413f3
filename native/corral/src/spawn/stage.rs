//! The stages of starting a child: one table for the helper, which names
//! them in the `F` frame, and for the child, which reports the stage that
//! failed as one byte through the error pipe.

use std::fmt;

/// Where starting the child failed.
///
/// The `F` frame's `stage` field carries [`Stage::name`]
/// (`docs/protocol.md`, "Start"); between fork and exec the child writes
/// [`Stage::code`] and the helper reads it back with [`Stage::from_code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Stage {
    /// `execve(2)`, or finding the program before the fork.
    Exec = 0,
    /// `chdir(2)` to the working directory.
    Chdir = 1,
    /// `setgroups(2)`.
    Setgroups = 2,
    /// `setgid(2)`.
    Setgid = 3,
    /// `setuid(2)`.
    Setuid = 4,
    /// Choosing, creating or joining the cgroup.
    Cgroup = 5,
    /// Anything else about starting: pipes, fork, argv and environment.
    Spawn = 6,
    /// Looking up a user or group name (before the fork only).
    User = 7,
    /// `setpriority(2)` (`--nice`).
    Nice = 8,
    /// Opening the pseudo-terminal, or making it the child's controlling
    /// terminal (`--pty`).
    Pty = 9,
}

/// Every stage, in code order.
const ALL: [Stage; 10] = [
    Stage::Exec,
    Stage::Chdir,
    Stage::Setgroups,
    Stage::Setgid,
    Stage::Setuid,
    Stage::Cgroup,
    Stage::Spawn,
    Stage::User,
    Stage::Nice,
    Stage::Pty,
];

impl Stage {
    /// The stage's name, as the `F` frame and the CLI print it.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Exec => "exec",
            Stage::Chdir => "chdir",
            Stage::Setgroups => "setgroups",
            Stage::Setgid => "setgid",
            Stage::Setuid => "setuid",
            Stage::Cgroup => "cgroup",
            Stage::Spawn => "spawn",
            Stage::User => "user",
            Stage::Nice => "nice",
            Stage::Pty => "pty",
        }
    }

    /// The byte the child writes to the error pipe.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The stage the child reported; `None` for a byte no stage has.
    pub fn from_code(code: u8) -> Option<Stage> {
        ALL.into_iter().find(|s| s.code() == code)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_names_are_distinct() {
        for (i, s) in ALL.into_iter().enumerate() {
            assert_eq!(usize::from(s.code()), i, "{s} out of order");
            assert_eq!(Stage::from_code(s.code()), Some(s));
        }
        assert_eq!(Stage::from_code(ALL.len() as u8), None);
        let mut names: Vec<_> = ALL.iter().map(|s| s.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
    }

    #[test]
    fn names_are_the_protocol_s() {
        // docs/protocol.md lists these texts for the F frame's stage.
        let names: Vec<_> = ALL.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            names,
            [
                "exec",
                "chdir",
                "setgroups",
                "setgid",
                "setuid",
                "cgroup",
                "spawn",
                "user",
                "nice",
                "pty"
            ]
        );
    }
}
