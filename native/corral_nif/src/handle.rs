//! [`Handle`]: the resource behind a `%Corral.Cgroup{}`.

use std::sync::{Mutex, MutexGuard, PoisonError};

use corral_cgroup::{Group, System};
use rustler::{Resource, ResourceArc};

use crate::error::Reason;

/// One group and the system it was found on. The `Mutex` serialises calls
/// on one handle across dirty schedulers; `None` once the group is deleted.
pub(crate) struct Handle {
    pub(crate) sys: System,
    group: Mutex<Option<Group>>,
}

#[rustler::resource_impl]
impl Resource for Handle {}

impl Handle {
    pub(crate) fn new(sys: System, group: Group) -> ResourceArc<Handle> {
        ResourceArc::new(Handle {
            sys,
            group: Mutex::new(Some(group)),
        })
    }

    /// The group slot. A panic while it was held cannot have left the group
    /// half-updated in memory (its state is the cgroupfs), so a poisoned
    /// lock is simply taken over.
    pub(crate) fn slot(&self) -> MutexGuard<'_, Option<Group>> {
        self.group.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the group; a deleted handle gives `ENOENT`, as its
    /// directories are gone.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&Group) -> Result<T, Reason>) -> Result<T, Reason> {
        match self.slot().as_ref() {
            Some(g) => f(g),
            None => Err(Reason::Posix(nix::libc::ENOENT)),
        }
    }
}

impl Drop for Handle {
    /// The VM dropped the last reference: keep the group's directories, as
    /// only `Corral.Cgroup.delete/1` removes a group.
    fn drop(&mut self) {
        let slot = self.group.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(g) = slot.as_mut() {
            g.persist();
        }
    }
}
