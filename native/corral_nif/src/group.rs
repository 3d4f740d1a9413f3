//! NIFs on one group: create and open it, then membership, limits, raw
//! files, statistics, freeze, kill and delete. Each is a thin call into
//! [`corral_cgroup::Group`].

use std::path::{Path, PathBuf};

use corral_cgroup::{Group, Limits, Placement, System};
use rustler::{Env, ResourceArc, Term};

use crate::encode;
use crate::error::{Done, Reason};
use crate::handle::Handle;

/// True if `dir` has a subdirectory, that is a child cgroup.
fn has_subdir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_type().is_ok_and(|t| t.is_dir()))
    })
}

/// A new handle and the group's directories, one per hierarchy (v2 first).
type Opened = (ResourceArc<Handle>, Vec<String>);

fn opened(sys: System, group: Group) -> Opened {
    let dirs = group
        .dirs()
        .iter()
        .map(|d| d.to_string_lossy().into_owned())
        .collect();
    (Handle::new(sys, group), dirs)
}

/// `[{key, value}]` in [`Limits::set_str`] syntax to [`Limits`].
fn limits(pairs: &[(String, String)]) -> Result<Limits, Reason> {
    let mut l = Limits::default();
    for (key, value) in pairs {
        l.set_str(key, value)?;
    }
    Ok(l)
}

/// Creates (or takes over, if it exists) the group at `name`, relative to
/// each hierarchy root, joining the v1 `controllers` as well as those the
/// limits need, and applies the limits. Nothing is left behind on error.
#[rustler::nif(schedule = "DirtyIo")]
fn cgroup_create(
    name: String,
    limit_pairs: Vec<(String, String)>,
    controllers: Vec<String>,
) -> Result<Opened, Reason> {
    let limits = limits(&limit_pairs)?;
    let sys = System::detect()?;
    let group = Group::create(&sys, &Placement::Path(name), &limits, &controllers, &[])?;
    Ok(opened(sys, group))
}

/// Opens the existing group at `name` in every hierarchy where it exists.
#[rustler::nif(schedule = "DirtyIo")]
fn cgroup_open(name: String) -> Result<Opened, Reason> {
    let sys = System::detect()?;
    let group = Group::open(&sys, &name)?;
    Ok(opened(sys, group))
}

/// Opens the group made of these absolute directories (a helper's `S`
/// frame paths), for cleaning up after a helper that died.
#[rustler::nif(schedule = "DirtyIo")]
fn cgroup_open_dirs(dirs: Vec<String>) -> Result<Opened, Reason> {
    let sys = System::detect()?;
    let dirs: Vec<PathBuf> = dirs.into_iter().map(PathBuf::from).collect();
    let group = Group::open_dirs(&sys, &dirs)?;
    Ok(opened(sys, group))
}

#[rustler::nif(schedule = "DirtyIo")]
fn cgroup_add(h: ResourceArc<Handle>, pid: i32) -> Done {
    Done(h.with(|g| Ok(g.add(pid)?)))
}

/// Moves `pid` back to the group's parent in every hierarchy.
#[rustler::nif(schedule = "DirtyIo")]
fn cgroup_remove_pid(h: ResourceArc<Handle>, pid: i32) -> Done {
    Done(h.with(|g| Ok(g.release(pid)?)))
}

#[rustler::nif(schedule = "DirtyIo")]
fn cgroup_pids(h: ResourceArc<Handle>) -> Result<Vec<i32>, Reason> {
    h.with(|g| Ok(g.pids()?))
}

#[rustler::nif(schedule = "DirtyIo")]
fn cgroup_set(h: ResourceArc<Handle>, limit_pairs: Vec<(String, String)>) -> Done {
    Done(h.with(|g| Ok(g.set(&limits(&limit_pairs)?)?)))
}

/// Limit `key` read back as the typed term `cgroup_set` takes.
#[rustler::nif(schedule = "DirtyIo")]
fn cgroup_get<'a>(env: Env<'a>, h: ResourceArc<Handle>, key: String) -> Result<Term<'a>, Reason> {
    let text = h.with(|g| Ok(g.get(&key)?))?;
    encode::limit(env, &key, &text)
}

#[rustler::nif(schedule = "DirtyIo")]
fn cgroup_read(h: ResourceArc<Handle>, file: String) -> Result<String, Reason> {
    h.with(|g| Ok(g.read(&file)?))
}

#[rustler::nif(schedule = "DirtyIo")]
fn cgroup_write(h: ResourceArc<Handle>, file: String, value: String) -> Done {
    Done(h.with(|g| Ok(g.write(&file, &value)?)))
}

#[rustler::nif(schedule = "DirtyIo")]
fn cgroup_stats<'a>(env: Env<'a>, h: ResourceArc<Handle>) -> Result<Term<'a>, Reason> {
    let stats = h.with(|g| Ok(g.stats()))?;
    encode::stats(env, &stats)
}

#[rustler::nif(schedule = "DirtyIo")]
fn cgroup_freeze(h: ResourceArc<Handle>) -> Done {
    Done(h.with(|g| Ok(g.freeze()?)))
}

#[rustler::nif(schedule = "DirtyIo")]
fn cgroup_thaw(h: ResourceArc<Handle>) -> Done {
    Done(h.with(|g| Ok(g.thaw()?)))
}

#[rustler::nif(schedule = "DirtyIo")]
fn cgroup_kill(h: ResourceArc<Handle>) -> Done {
    Done(h.with(|g| Ok(g.kill()?)))
}

/// Removes the group's directories in every hierarchy, and the parents its
/// creation made if nothing else uses them. With `kill`, kills every
/// process in it first; without, a group with processes is `:populated`.
/// If removal fails the handle stays usable on whatever is left.
#[rustler::nif(schedule = "DirtyIo")]
fn cgroup_delete(h: ResourceArc<Handle>, kill: bool) -> Done {
    let mut slot = h.slot();
    let Some(group) = slot.as_ref() else {
        return Done(Err(Reason::Posix(nix::libc::ENOENT)));
    };
    let emptied = if kill {
        group.kill().map_err(Reason::from)
    } else {
        match group.pids() {
            Ok(pids) if pids.is_empty() => Ok(()),
            Ok(_) => Err(Reason::Populated),
            Err(e) => Err(e.into()),
        }
    };
    if let Err(r) = emptied {
        return Done(Err(r));
    }
    // The kernel refuses to remove a group with child groups (EBUSY). Say
    // so before trying: a failed removal would forget which parent
    // directories this handle made, and they could no longer be removed.
    if group.dirs().iter().any(|d| has_subdir(d)) {
        return Done(Err(Reason::Posix(nix::libc::EBUSY)));
    }
    let Some(mut group) = slot.take() else {
        return Done(Err(Reason::Posix(nix::libc::ENOENT)));
    };
    let dirs = group.dirs();
    group.adopt();
    let removed = group.remove();
    if removed.is_err() {
        *slot = Group::open_dirs(&h.sys, &dirs).ok();
    }
    removed.into()
}
