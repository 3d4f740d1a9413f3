//! Cgroups for Corral: detection of the v2, v1 and hybrid layouts, one
//! [`Group`] per child tree across every hierarchy, typed [`Limits`],
//! freeze / kill / remove, and [`Stats`]. Used by the `corral` helper and
//! the `corral_nif` bindings, so both agree on paths and formats.
//!
//! # Layouts
//!
//! [`System::detect`] reads `/proc/self/mountinfo` and `/proc/self/cgroup`
//! and tells three layouts apart ([`Layout`]):
//!
//! - **unified**: only the v2 tree (`Documentation/admin-guide/cgroup-v2.rst`);
//! - **legacy**: only v1 hierarchies (`Documentation/admin-guide/cgroup-v1/`);
//! - **hybrid**: v1 controllers plus a v2 tree without them. Membership,
//!   kill, freeze and CPU accounting use the v2 tree; limits use the v1
//!   controllers.
//!
//! # Placement
//!
//! [`Placement::Default`] makes a fresh `corral-<pid>-<n>` under this
//! process's own cgroup in each hierarchy; [`Placement::Base`] a fresh child
//! under a given path; [`Placement::Path`] an exact path. Paths are relative
//! to each hierarchy root and checked by [`validate_path`].
//!
//! # Falling back
//!
//! When no cgroup can be created (no cgroupfs, no delegation, a read-only
//! hierarchy), [`System::detect`] or [`Group::create`] return
//! [`Error::Unavailable`]. A caller that asked for no limits can then run
//! without a cgroup and report [`Containment::None`]; with limits it should
//! fail. Every other error is a hard one.
//!
//! # Limits
//!
//! [`Limits`] uses MuonTrap 2's keys. [`Key`] is the only place that
//! names them and their files, and the translation to v2 and v1 writes
//! (in [`limits`]) the only place that knows value formats. Keys with no
//! v1 equivalent give [`Error::Unsupported`] naming the key.
//!
//! # Testing
//!
//! Every constructor works from the hierarchy mount points recorded in
//! [`System`], so [`System::from_parts`] plus [`System::with_root_prefix`]
//! point the whole crate at a fixture tree in a temporary directory.

#![warn(missing_docs)]

mod access;
mod control;
mod detect;
mod error;
mod fs;
mod group;
pub mod limits;
mod oom;
mod placement;
mod stats;
pub mod teardown;
mod v1;
mod v2;

#[cfg(test)]
mod fixture;

pub use detect::{Hierarchy, Layout, System};
pub use error::{Error, Result};
pub use group::{Group, RawSet};
pub use limits::{Controller, CpuMax, Key, Kind, Limits, Max, Value, PIDS_MAX_LIMIT};
pub use oom::{OomSignal, OomWatch};
pub use placement::Placement;
pub use stats::Stats;

/// The cgroup kind that holds a [`Group`] (`Group::containment`): the
/// low two bits of the wire's containment code, defined once in
/// `corral_proto` with the names that go with it.
pub use corral_proto::CgroupKind as Containment;

/// Checks a cgroup path given by a user (`:cgroup_path`, `:cgroup_base`):
/// relative to the hierarchy root (one leading `/` is allowed and means
/// the same), with no `.` or `..` components, no empty components, and no
/// newline or NUL, so it can never escape the hierarchy.
///
/// # Errors
///
/// [`Error::Invalid`] saying what is wrong.
pub fn validate_path(p: &str) -> Result<()> {
    let bad = |reason: &str| Err(Error::invalid("cgroup path", p, reason));
    let rest = p.strip_prefix('/').unwrap_or(p);
    if rest.is_empty() {
        return bad("must name a cgroup below the hierarchy root");
    }
    if rest.contains(['\0', '\n', '\r']) {
        return bad("must not contain newlines or NUL");
    }
    for part in rest.split('/') {
        match part {
            "" => return bad("must not contain empty components (`//` or a trailing `/`)"),
            "." | ".." => return bad("must not contain `.` or `..` components"),
            _ => {}
        }
    }
    Ok(())
}

/// Checks a raw cgroup file name for [`Group::read`], [`Group::write`] and
/// [`RawSet`]: `<controller>.<name>` or `cgroup.<name>`, such as
/// `memory.max` or `memory.memsw.limit_in_bytes`, and nothing that could
/// leave the group's directory.
///
/// # Errors
///
/// [`Error::Invalid`] saying what is wrong.
pub fn validate_file(name: &str) -> Result<()> {
    let bad = |reason: &str| Err(Error::invalid("cgroup file name", name, reason));
    let Some((prefix, rest)) = name.split_once('.') else {
        return bad("must look like <controller>.<name>");
    };
    let word = |s: &str, extra: &[u8]| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || extra.contains(&b))
    };
    if !word(prefix, b"")
        || !word(rest, b".")
        || rest.starts_with('.')
        || rest.ends_with('.')
        || name.contains("..")
    {
        return bad("must look like <controller>.<name>, letters, digits, `_` and `.` only");
    }
    Ok(())
}

/// Files that move or signal processes, or change which controllers the
/// group's children get: a raw write to one of them could pull any process
/// (PID 1 included) into the group, where ending the run would kill it.
pub const FORBIDDEN_RAW_FILES: &[&str] = &[
    "cgroup.procs",
    "cgroup.threads",
    "cgroup.kill",
    "cgroup.freeze",
    "cgroup.subtree_control",
    "tasks",
];

/// Checks the file of a raw write ([`RawSet`], the helper's
/// `--cgroup-raw`, MuonTrap's `cgroup_sets`): [`validate_file`], and none
/// of [`FORBIDDEN_RAW_FILES`].
///
/// # Errors
///
/// [`Error::Invalid`] saying what is wrong.
pub fn validate_raw_write(name: &str) -> Result<()> {
    if FORBIDDEN_RAW_FILES.contains(&name) {
        return Err(Error::invalid(
            "cgroup file name",
            name,
            "moves, freezes or kills processes; a run's cgroup is Corral's to manage",
        ));
    }
    validate_file(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        for ok in [
            "corral",
            "/corral",
            "a/b/c",
            "/user.slice/app-1.scope",
            "muontrap test",
        ] {
            validate_path(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
        for bad in [
            "", "/", "..", "a/../b", "a/./b", "a//b", "a/", "//a", "a\nb", "a\0b", "../etc",
            "/a/..",
        ] {
            assert!(validate_path(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn file_names() {
        for ok in [
            "memory.max",
            "cgroup.procs",
            "memory.memsw.limit_in_bytes",
            "cpu.cfs_quota_us",
            "io.weight",
        ] {
            validate_file(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
        for bad in [
            "",
            "tasks",
            ".max",
            "memory.",
            "memory..max",
            "../memory.max",
            "memory.max/x",
            "a/b.c",
            "memory.max\n",
            "memory max",
            "..",
            "memory.max.",
        ] {
            assert!(validate_file(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn raw_writes_never_move_or_signal_processes() {
        for bad in FORBIDDEN_RAW_FILES {
            assert!(validate_raw_write(bad).is_err(), "{bad:?} accepted");
        }
        for ok in ["memory.limit_in_bytes", "memory.swappiness", "cpu.shares"] {
            validate_raw_write(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
    }

    #[test]
    fn handles_can_cross_threads() {
        // The NIF keeps groups in resources shared across schedulers.
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Group>();
        send_sync::<System>();
        send_sync::<Error>();
    }

    #[test]
    fn containment_codes() {
        let codes: Vec<u8> = [
            Containment::None,
            Containment::V2,
            Containment::V1,
            Containment::Hybrid,
        ]
        .iter()
        .map(|c| c.code())
        .collect();
        assert_eq!(codes, [0, 1, 2, 3]);
    }
}
