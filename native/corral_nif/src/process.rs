//! `process_group_kill`: what the VM can still end of a tree whose helper
//! died without an exit report and without a cgroup.

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{getpgrp, getpid, Pid};

use crate::error::Reason;

/// SIGKILLs process group `pgid` (`killpg(3)`): the child's own group,
/// which the helper's `S` frame names (its pid is the group's id). Refuses
/// `pgid` 0 and 1, the VM's own pid and the VM's own group, so a stale or
/// wrong id can never take the VM or the whole system down.
/// `{:error, :esrch}` when the group is already empty.
#[rustler::nif]
fn process_group_kill(pgid: i64) -> Result<(), Reason> {
    let pgid = i32::try_from(pgid).map_err(|_| Reason::invalid("process group out of range"))?;
    if pgid <= 1 || pgid == getpid().as_raw() || pgid == getpgrp().as_raw() {
        return Err(Reason::invalid(format!(
            "process group {pgid} is init's, the VM's or not a group"
        )));
    }
    killpg(Pid::from_raw(pgid), Signal::SIGKILL).map_err(|e: Errno| Reason::Posix(e as i32))
}
