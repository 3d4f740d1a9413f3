//! The v2 unified tree (`Documentation/admin-guide/cgroup-v2.rst`): core
//! files shared by every cgroup, and delegation of controllers.
//!
//! Limits on v2 are plain writes planned in [`crate::limits`]; what is
//! v2-specific lives here: `cgroup.subtree_control` ([`subtree`]) and
//! `cgroup.freeze` / `cgroup.kill` ([`freezer`]).

pub(crate) mod freezer;
pub(crate) mod subtree;
