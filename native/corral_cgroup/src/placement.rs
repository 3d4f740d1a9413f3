//! Where a [`Group`]'s directories go: the hierarchies it joins, the
//! placement (`:cgroup_base`, `:cgroup_path`, or a child of our own
//! cgroup), fresh names, and `mkdir -p` that remembers what it made.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::detect::{Hierarchy, Layout, System};
use crate::error::{Error, Result};
use crate::fs;
use crate::group::{Dir, Group};

/// How many fresh names to try before giving up on `EEXIST`.
const NAME_ATTEMPTS: u32 = 16;

/// Hierarchies joined when mounted and writable even without limits, so
/// the group can be frozen, killed and measured.
const OPTIONAL_LEGACY: &[&str] = &["freezer", "memory", "pids", "cpuacct"];
/// In hybrid the v2 tree already freezes, kills and counts CPU, so v1
/// hierarchies are joined only for the limits that need them: joining one
/// means migrating the task (a `cgroup.procs` write), and the first
/// migration waits for an RCU grace period, milliseconds on every spawn.
const OPTIONAL_HYBRID: &[&str] = &[];

/// Where a new group goes (`:cgroup_base`, `:cgroup_path`, or neither).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// A fresh child `corral-<pid>-<n>` under this process's own cgroup in
    /// each hierarchy.
    Default,
    /// A fresh child `corral-<pid>-<n>` under this path (relative to each
    /// hierarchy root). A missing base is created, and removed again by the
    /// group that created it if no other group is using it by then.
    Base(String),
    /// Exactly this path (relative to each hierarchy root). Created if
    /// missing and then removed on teardown; left in place if it existed.
    Path(String),
}

/// Where the group sits relative to each hierarchy.
#[derive(Debug, Clone)]
pub(crate) enum Spot {
    /// A child of this process's own cgroup.
    Own(String),
    /// This path from the hierarchy root.
    Exact(String),
}

impl Spot {
    pub(crate) fn rel(&self, h: &Hierarchy) -> String {
        match self {
            Spot::Own(name) => format!("{}/{name}", h.own_path.trim_end_matches('/')),
            Spot::Exact(p) => format!("/{}", p.trim_start_matches('/')),
        }
    }
}

/// A hierarchy to create the group in, and whether failing there is fatal.
pub(crate) struct Target<'a> {
    hierarchy: &'a Hierarchy,
    v2: bool,
    required: bool,
}

impl Group {
    /// Creates the directories, retrying with a fresh name on `EEXIST`.
    pub(crate) fn make(
        sys: &System,
        placement: &Placement,
        targets: &[Target<'_>],
    ) -> Result<Group> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let fresh = !matches!(placement, Placement::Path(_));
        for _ in 0..NAME_ATTEMPTS {
            let name = format!(
                "corral-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let spot = match placement {
                Placement::Default => Spot::Own(name),
                Placement::Base(b) => Spot::Exact(format!("{}/{name}", b.trim_end_matches('/'))),
                Placement::Path(p) => Spot::Exact(p.clone()),
            };
            let mut group = Group {
                sys: sys.clone(),
                spot,
                v2: None,
                v1: Vec::new(),
                created: Vec::new(),
                claim: None,
            };
            match group.make_dirs(targets, fresh) {
                Ok(()) if group.v2.is_none() && group.v1.is_empty() => {
                    return Err(Error::Unavailable {
                        reason: "no cgroup hierarchy is writable".into(),
                        path: None,
                        errno: None,
                    })
                }
                Ok(()) => return Ok(group),
                Err(None) => continue,
                Err(Some(e)) => return Err(e),
            }
        }
        Err(Error::invalid(
            "cgroup name",
            "corral-<pid>-<n>",
            "every fresh name was taken",
        ))
    }

    /// `Err(None)`: the fresh name is taken, try another.
    pub(crate) fn make_dirs(
        &mut self,
        targets: &[Target<'_>],
        fresh: bool,
    ) -> Result<(), Option<Error>> {
        for t in targets {
            let rel = self.spot.rel(t.hierarchy);
            let path = t.hierarchy.dir(&rel);
            match mkdir_p(&t.hierarchy.mount_point, &path, fresh, &mut self.created) {
                Ok(()) => {}
                Err((_, e)) if fresh && e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(None)
                }
                Err(_) if !t.required => continue,
                Err((at, e)) => return Err(Some(mkdir_error(at, e))),
            }
            let dir = Dir {
                hierarchy: t.hierarchy.clone(),
                rel,
                path,
            };
            if t.v2 {
                self.v2 = Some(dir);
            } else {
                self.v1.push(dir);
            }
        }
        Ok(())
    }
}

pub(crate) fn is_named(h: &Hierarchy) -> bool {
    h.controllers.iter().all(|c| c.starts_with("name="))
}

pub(crate) fn not_mounted(controller: &str) -> Error {
    Error::Controller {
        controller: controller.to_owned(),
        path: PathBuf::from("/proc/self/mountinfo"),
        hint: format!(
            "no cgroup v1 hierarchy has it mounted; mount it (`mount -t cgroup -o {controller} cgroup \
             /sys/fs/cgroup/{controller}`) or drop the limits that need it"
        ),
    }
}

/// The hierarchies to create the group in, for `needed` controllers.
pub(crate) fn targets<'a>(sys: &'a System, needed: &[String]) -> Result<Vec<Target<'a>>> {
    let mut out: Vec<Target<'a>> = Vec::new();
    let v2 = |h| Target {
        hierarchy: h,
        v2: true,
        required: true,
    };
    let optional = match sys.layout() {
        Layout::Unified => return Ok(sys.v2().map(v2).into_iter().collect()),
        Layout::Hybrid => OPTIONAL_HYBRID,
        Layout::Legacy => OPTIONAL_LEGACY,
    };
    out.extend(sys.v2().map(v2));
    let wanted = needed
        .iter()
        .map(|c| (c.as_str(), true))
        .chain(optional.iter().map(|c| (*c, false)));
    for (ctrl, required) in wanted {
        let h = match sys.v1_for(ctrl) {
            Some(h) => h,
            None if required => return Err(not_mounted(ctrl)),
            None => continue,
        };
        match out.iter_mut().find(|t| std::ptr::eq(t.hierarchy, h)) {
            Some(t) => t.required |= required,
            None => out.push(Target {
                hierarchy: h,
                v2: false,
                required,
            }),
        }
    }
    Ok(out)
}

/// `mkdir -p` below `root` (the mount point, never created): tries `dir`
/// first (usually only the leaf is missing), and creates missing parents on
/// `ENOENT`. Records what it made in `created`. With `fresh`, an existing
/// `dir` is an error.
pub(crate) fn mkdir_p(
    root: &Path,
    dir: &Path,
    fresh: bool,
    created: &mut Vec<PathBuf>,
) -> Result<(), (PathBuf, io::Error)> {
    if dir == root || !dir.starts_with(root) {
        return match root.is_dir() {
            true => Ok(()),
            false => Err((
                root.to_path_buf(),
                io::Error::from_raw_os_error(libc::ENOENT),
            )),
        };
    }
    let once = |created: &mut Vec<PathBuf>| match fs::mkdir(dir) {
        Ok(()) => {
            created.push(dir.to_path_buf());
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && !fresh => Ok(()),
        Err(e) => Err(e),
    };
    match once(created) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            mkdir_p(root, dir.parent().unwrap_or(root), false, created)?;
            once(created).map_err(|e| (dir.to_path_buf(), e))
        }
        r => r.map_err(|e| (dir.to_path_buf(), e)),
    }
}

/// Permission-like failures mean "no cgroup for us here": [`Error::Unavailable`].
pub(crate) fn mkdir_error(at: PathBuf, e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(n @ (libc::EACCES | libc::EPERM | libc::EROFS | libc::ENOENT)) => Error::Unavailable {
            reason: format!("cannot create {}: {e}", at.display()),
            path: Some(at),
            errno: Some(n),
        },
        _ => Error::Io {
            op: "mkdir",
            path: at,
            value: None,
            source: e,
        },
    }
}
