//! [`Group`]: one logical cgroup across every hierarchy it lives in.
//! Creation, placement and teardown; membership, limits and raw files are
//! in `access.rs`, freezing and killing in `control.rs`, statistics in
//! `stats.rs`.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::detect::{Hierarchy, System};
use crate::error::{Error, IoContext, Result};
use crate::limits::{self, Api, Limits};
use crate::placement::{is_named, targets, Placement, Spot};
use crate::{fs, v1, v2, validate_path, validate_raw_write, Containment};

/// How long [`Group::remove`] waits for a busy directory (its last task
/// still exiting) before giving up.
const REMOVE_PATIENCE: Duration = Duration::from_secs(1);

/// A MuonTrap 1.x raw write (`:cgroup_sets`): `value` into `file` of the
/// group's directory for `controller`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSet {
    /// The controller, e.g. `"memory"`.
    pub controller: String,
    /// The file, e.g. `"memory.limit_in_bytes"`.
    pub file: String,
    /// What to write.
    pub value: String,
}

/// The group's directory in one hierarchy.
#[derive(Debug, Clone)]
pub(crate) struct Dir {
    pub(crate) hierarchy: Hierarchy,
    pub(crate) rel: String,
    pub(crate) path: PathBuf,
}

/// One logical cgroup across every hierarchy it lives in: the v2 tree
/// and/or v1 hierarchies. It remembers which directories it created;
/// dropping it removes those (one attempt each, errors ignored), and
/// [`Group::remove`] removes them with retries and reports errors.
#[derive(Debug)]
pub struct Group {
    pub(crate) sys: System,
    pub(crate) spot: Spot,
    pub(crate) v2: Option<Dir>,
    pub(crate) v1: Vec<Dir>,
    /// Directories this group made, in creation order (parents first).
    pub(crate) created: Vec<PathBuf>,
    /// For an exact path, the `flock(2)` that says a run holds it
    /// ([`Group::claim`]); released when the group is dropped, or by the
    /// kernel when the holder dies.
    pub(crate) claim: Option<std::fs::File>,
}

impl Group {
    /// Creates a group, applies `limits` and the MuonTrap 1.x
    /// `raw_controllers` (groups to join) and `raw_sets` (raw writes).
    ///
    /// Which hierarchies it joins: on unified, the v2 tree (needed
    /// controllers are enabled in the ancestors' `cgroup.subtree_control`);
    /// on hybrid, the v2 tree for membership, freeze, kill and CPU
    /// accounting plus the v1 hierarchies the limits need; on legacy, the v1
    /// hierarchies the limits need. On hybrid and legacy, the `memory` and
    /// `pids` (and on legacy `freezer` and `cpuacct`) hierarchies are joined
    /// too when writable, for statistics and teardown.
    ///
    /// # Errors
    ///
    /// - [`Error::Unavailable`] when the group cannot be created at all:
    ///   no cgroupfs, no delegation (`EACCES`/`EPERM`), a read-only
    ///   hierarchy (`EROFS`). A caller that asked for no limits may then
    ///   run without a cgroup; with limits it should fail.
    /// - [`Error::Invalid`] for a bad path, file name or value;
    ///   [`Error::Unsupported`] for a limit with no equivalent on this layout;
    ///   [`Error::Controller`] for a missing or undelegated controller;
    ///   [`Error::Io`] for any other failure. Nothing is left behind.
    pub fn create(
        sys: &System,
        placement: &Placement,
        limits: &Limits,
        raw_controllers: &[String],
        raw_sets: &[RawSet],
    ) -> Result<Group> {
        match placement {
            Placement::Default => {}
            Placement::Base(p) | Placement::Path(p) => validate_path(p)?,
        }
        for s in raw_sets {
            validate_raw_write(&s.file)?;
        }
        let api = Api::of(sys.layout());
        limits::plan(limits, api, sys.layout())?;
        let mut needed: Vec<String> = limits
            .controllers_needed()
            .iter()
            .map(|c| {
                if api == Api::V1 {
                    c.v1_name()
                } else {
                    c.name()
                }
                .to_owned()
            })
            .collect();
        needed.extend(raw_controllers.iter().cloned());
        needed.extend(raw_sets.iter().map(|s| s.controller.clone()));
        for c in &needed {
            if c.is_empty() || !c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                return Err(Error::invalid(
                    "cgroup controller",
                    c,
                    "expected a name like `memory`",
                ));
            }
        }
        needed.sort();
        needed.dedup();
        let targets = targets(sys, &needed)?;
        let group = Group::make(sys, placement, &targets)?;
        group.init_cpusets()?;
        if api == Api::V2 {
            group.enable_v2(&needed.iter().map(String::as_str).collect::<Vec<_>>())?;
        }
        group.set(limits)?;
        for s in raw_sets {
            fs::write(&group.dir_of(&s.controller)?.join(&s.file), &s.value)?;
        }
        Ok(group)
    }

    /// Opens an existing group at `path` (relative to each hierarchy root)
    /// in every hierarchy where that directory exists. Nothing is removed
    /// when it is dropped (see [`Group::adopt`]).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for a bad path; [`Error::Io`] with `ENOENT` if
    /// the directory exists in no hierarchy.
    pub fn open(sys: &System, path: &str) -> Result<Group> {
        validate_path(path)?;
        let spot = Spot::Exact(path.to_owned());
        let dir = |h: &Hierarchy| {
            let rel = spot.rel(h);
            let path = h.dir(&rel);
            path.is_dir().then(|| Dir {
                hierarchy: h.clone(),
                rel,
                path,
            })
        };
        let v2 = sys.v2().and_then(dir);
        let v1: Vec<Dir> = sys
            .v1()
            .iter()
            .filter(|h| !is_named(h))
            .filter_map(dir)
            .collect();
        if v2.is_none() && v1.is_empty() {
            let probe = sys
                .v2()
                .or(sys.v1().first())
                .map_or_else(|| PathBuf::from(path), |h| h.dir(path));
            return Err(io::Error::from_raw_os_error(libc::ENOENT)).at("open", &probe);
        }
        Ok(Group {
            sys: sys.clone(),
            spot,
            v2,
            v1,
            created: Vec::new(),
            claim: None,
        })
    }

    /// Opens the group made of exactly these absolute directories, at most
    /// one per hierarchy, such as the paths in the helper's `S` frame. Their
    /// paths relative to each hierarchy root may differ (in hybrid the v2
    /// group sits under `/`, the v1 memory one under the memory hierarchy's
    /// own path), so [`Group::open`] cannot find them from one name.
    /// Directories that no longer exist are skipped. Nothing is removed
    /// when it is dropped (see [`Group::adopt`]).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for a directory that is not below the mount point
    /// of one of `sys`'s hierarchies (named v1 hierarchies excluded), whose
    /// path there fails [`validate_path`], or whose hierarchy was already
    /// given; [`Error::Io`] with `ENOENT` if none of them exists.
    pub fn open_dirs(sys: &System, dirs: &[PathBuf]) -> Result<Group> {
        let mut group = Group {
            sys: sys.clone(),
            spot: Spot::Exact(String::new()),
            v2: None,
            v1: Vec::new(),
            created: Vec::new(),
            claim: None,
        };
        let hierarchies = || {
            sys.v2()
                .map(|h| (h, true))
                .into_iter()
                .chain(sys.v1().iter().filter(|h| !is_named(h)).map(|h| (h, false)))
        };
        for path in dirs {
            let shown = path.to_string_lossy();
            let bad = |reason: &str| Error::invalid("cgroup directory", &shown, reason);
            // The deepest mount point wins, should one hierarchy be mounted
            // inside another's directory.
            let (hierarchy, is_v2, rest) = hierarchies()
                .filter_map(|(h, v2)| Some((h, v2, path.strip_prefix(&h.mount_point).ok()?)))
                .max_by_key(|(h, _, _)| h.mount_point.components().count())
                .ok_or_else(|| bad("is not below the mount point of a cgroup hierarchy"))?;
            let rel = format!("/{}", rest.to_str().ok_or_else(|| bad("is not UTF-8"))?);
            validate_path(&rel).map_err(|_| {
                bad("must name a cgroup below the mount point, without `.` or `..`")
            })?;
            let taken = group.all().any(|d| d.hierarchy == *hierarchy);
            if taken {
                return Err(bad("is a second directory in the same hierarchy"));
            }
            let path = hierarchy.dir(&rel);
            if !path.is_dir() {
                continue;
            }
            if group.v2.is_none() && group.v1.is_empty() {
                group.spot = Spot::Exact(rel.clone());
            }
            let dir = Dir {
                hierarchy: hierarchy.clone(),
                rel,
                path,
            };
            if is_v2 {
                group.v2 = Some(dir);
            } else {
                group.v1.push(dir);
            }
        }
        if group.v2.is_none() && group.v1.is_empty() {
            let probe = dirs.first().cloned().unwrap_or_default();
            return Err(io::Error::from_raw_os_error(libc::ENOENT)).at("open", &probe);
        }
        Ok(group)
    }

    /// Takes the group for one run (the helper does, for an exact path it
    /// may share with others): an exclusive `flock(2)` on its first
    /// directory (held until the group is dropped; the kernel drops it
    /// when the holder dies), then a check that no process is in it yet.
    ///
    /// # Errors
    ///
    /// [`Error::InUse`] (`EBUSY`) when another run holds the lock or the
    /// group already has processes; [`Error::Io`] if the directory cannot
    /// be opened or its `cgroup.procs` read.
    pub fn claim(&mut self) -> Result<()> {
        use std::os::fd::AsRawFd;
        let Some(first) = self.all().next().map(|d| d.path.clone()) else {
            return Ok(());
        };
        let dir = std::fs::File::open(&first).at("open", &first)?;
        // SAFETY: flock on an fd we own; it only reads its arguments.
        if unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(Error::InUse {
                    path: first,
                    reason: "another run uses this cgroup_path".into(),
                });
            }
            return Err(e).at("flock", &first);
        }
        let pids = self.pids()?;
        if !pids.is_empty() {
            return Err(Error::InUse {
                path: first,
                reason: format!("it already holds processes {pids:?}"),
            });
        }
        self.claim = Some(dir);
        Ok(())
    }

    /// How this group contains its processes, for the exit report.
    pub fn containment(&self) -> Containment {
        match (self.v2.is_some(), self.v1.is_empty()) {
            (true, true) => Containment::V2,
            (true, false) => Containment::Hybrid,
            (false, false) => Containment::V1,
            (false, true) => Containment::None,
        }
    }

    /// The group's directories, one per hierarchy (v2 first).
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.all().map(|d| d.path.clone()).collect()
    }

    /// The `cgroup.procs` files a child writes `0` into between fork and
    /// exec, so it never runs outside the group (v1 hierarchies first, the
    /// v2 tree last). Open them before forking, so the child only has to
    /// `write(2)` (no allocation after fork) and the parent reports open
    /// errors.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.v1
            .iter()
            .chain(&self.v2)
            .map(|d| d.path.join("cgroup.procs"))
            .collect()
    }

    /// The group's directory in the v2 tree, if it has one: a child can be
    /// born in it with `clone3(2)`'s `CLONE_INTO_CGROUP`, which skips the
    /// migration a `cgroup.procs` write costs.
    pub fn v2_dir(&self) -> Option<&Path> {
        self.v2.as_ref().map(|d| d.path.as_path())
    }

    /// [`Group::procs_files`] of the v1 hierarchies only.
    pub fn v1_procs_files(&self) -> Vec<PathBuf> {
        self.v1
            .iter()
            .map(|d| d.path.join("cgroup.procs"))
            .collect()
    }

    /// Forgets which directories this group created: neither drop nor
    /// [`Group::remove`] will delete anything.
    pub fn persist(&mut self) {
        self.created.clear();
    }

    /// Takes ownership of the group's own directories (not their parents),
    /// so [`Group::remove`] deletes them, e.g. after [`Group::open`].
    pub fn adopt(&mut self) {
        for d in self.dirs() {
            if !self.created.contains(&d) {
                self.created.push(d);
            }
        }
    }

    /// Removes every directory this group created, deepest first. Busy
    /// group directories (a task still exiting) are retried for up to a
    /// second; parents it created are removed only if nothing else uses them.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `rmdir(2)`, typically `EBUSY` while processes are
    /// still in the group: [`Group::kill`] first.
    pub fn remove(mut self) -> Result<()> {
        self.remove_created(REMOVE_PATIENCE)
    }

    fn remove_created(&mut self, patience: Duration) -> Result<()> {
        let own = self.dirs();
        let mut first = None;
        while let Some(dir) = self.created.pop() {
            let leaf = own.contains(&dir);
            match fs::rmdir(&dir, if leaf { patience } else { Duration::ZERO }) {
                Ok(()) => {}
                Err(e) if !leaf && matches!(e.errno(), Some(libc::EBUSY | libc::ENOTEMPTY)) => {}
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = &Dir> {
        self.v2.iter().chain(&self.v1)
    }

    pub(crate) fn v1_dir(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|d| d.hierarchy.has(controller))
            .map(|d| d.path.as_path())
    }

    fn init_cpusets(&self) -> Result<()> {
        self.v1
            .iter()
            .filter(|d| d.hierarchy.has("cpuset"))
            .try_for_each(|d| v1::cpuset::init(&d.hierarchy.mount_point, &d.rel))
    }

    pub(crate) fn enable_v2(&self, controllers: &[&str]) -> Result<()> {
        match &self.v2 {
            Some(d) if !controllers.is_empty() => {
                v2::subtree::enable(&d.hierarchy.mount_point, &d.rel, controllers)
            }
            _ => Ok(()),
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = self.remove_created(Duration::ZERO);
    }
}

#[cfg(test)]
#[path = "group_tests.rs"]
mod tests;
