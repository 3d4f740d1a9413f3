//! Corral's NIF: thin Elixir bindings over [`corral_cgroup`], loaded by
//! `Corral.Native` and wrapped by `Corral.Cgroup`. Nothing here knows a
//! cgroup file name or format: that stays in `corral_cgroup`, so the helper
//! and the VM never disagree about paths or formats.
//!
//! # Functions
//!
//! Every NIF is named `cgroup_<verb>` (or `process_<verb>` for the one
//! that is about processes, `pipe_<verb>` for the output pipes the VM
//! reads itself, [`pipe`]), as are the Elixir stubs in `Corral.Native`.
//! The cgroup and process ones touch cgroupfs or `/proc`, so they run on
//! dirty IO schedulers (`erl_nif(3)`, "Dirty NIF"): a slow sysfs write or
//! the bounded waits of kill and freeze never block a normal scheduler.
//! The pipe ones never wait and run on normal schedulers.
//!
//! # Handles
//!
//! A group handle is a resource ([`handle::Handle`]) owning one
//! [`corral_cgroup::Group`]. Garbage collection of the last reference never
//! removes the group: like MuonTrap's, a group lives until
//! `Corral.Cgroup.delete/1` asks. A deleted handle answers `{:error, :enoent}`.
//!
//! # Errors
//!
//! NIFs never raise for runtime failures: they return `{:error, reason}`
//! with the matchable terms of [`error::Reason`]. Rustler also catches
//! panics, but no code path here relies on that: there is no `unwrap()`.
//! Arguments of the wrong type raise `ArgumentError`, which `Corral.Cgroup`
//! prevents with guards.
//!
//! # Limits
//!
//! Limits arrive as `[{key, value}]` text pairs in the syntax of
//! [`corral_cgroup::Limits::set_str`] (the helper's `--cgroup-set`), so one
//! parser checks them; `Corral.Cgroup` formats Elixir terms into it.

mod encode;
mod error;
mod group;
mod handle;
mod pipe;
mod process;
mod system;

mod atoms {
    rustler::atoms! {
        ok,
        error,
        max,
        // Layouts.
        v1,
        v2,
        hybrid,
        // layout/0 keys.
        layout,
        mounts,
        own,
        // Error reasons without an errno.
        unavailable,
        missing_controller,
        unsupported,
        invalid,
        parse,
        timeout,
        populated,
        errno,
        eio,
        // stats/1 keys, as MuonTrap 2 names its statistics.
        memory_peak,
        memory_current,
        oom_kills,
        cpu_usage_usec,
        user_usec,
        system_usec,
        pids_current,
        pids_peak,
        pids_limit_hits,
    }
}

rustler::init!("Elixir.Corral.Native");
