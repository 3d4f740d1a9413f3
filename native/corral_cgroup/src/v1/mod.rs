//! v1 hierarchies (`Documentation/admin-guide/cgroup-v1/`): the controller
//! quirks that are more than a file write. Limit writes themselves are
//! planned in [`crate::limits`].

pub(crate) mod cpuset;
pub(crate) mod freezer;
