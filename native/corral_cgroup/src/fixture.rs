//! Fixture cgroupfs trees in a temporary directory, laid out like the real
//! thing, for unit tests that need neither root nor a kernel. New
//! directories made under them are filled from their parent by
//! `fs::mkdir` (test builds only), as the kernel would.

use std::fs;
use std::path::{Path, PathBuf};

use crate::detect::tests::{
    HYBRID_CGROUP, HYBRID_MOUNTINFO, LEGACY_CGROUP, LEGACY_MOUNTINFO, UNIFIED_CGROUP,
    UNIFIED_MOUNTINFO,
};
use crate::System;

/// A fixture tree and the [`System`] pointing at it.
pub(crate) struct Fixture {
    pub dir: tempfile::TempDir,
    pub sys: System,
}

impl Fixture {
    /// The absolute path of `rel` inside the fixture (`sys/fs/cgroup/...`).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel.trim_start_matches('/'))
    }

    /// Reads a fixture file.
    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }
}

/// Creates `dir` with `files` (name, content).
fn cgroup_dir(dir: &Path, files: &[(&str, &str)]) {
    fs::create_dir_all(dir).unwrap();
    for (name, content) in files {
        fs::write(dir.join(name), content).unwrap();
    }
}

/// The files of a v2 cgroup with every controller enabled. The core
/// `cgroup.freeze`/`cgroup.kill` are included so children copy them.
const V2_FILES: &[(&str, &str)] = &[
    ("cgroup.controllers", "cpuset cpu io memory pids\n"),
    ("cgroup.subtree_control", ""),
    ("cgroup.procs", ""),
    ("cgroup.events", "populated 0\nfrozen 0\n"),
    ("cgroup.freeze", "0\n"),
    ("cgroup.kill", ""),
    ("cpu.stat", "usage_usec 0\nuser_usec 0\nsystem_usec 0\n"),
    ("cpu.max", "max 100000\n"),
    ("cpu.weight", "100\n"),
    ("cpu.idle", "0\n"),
    ("cpuset.cpus", ""),
    ("cpuset.mems", ""),
    ("io.weight", "default 100\n"),
    ("memory.max", "max\n"),
    ("memory.high", "max\n"),
    ("memory.low", "0\n"),
    ("memory.min", "0\n"),
    ("memory.swap.max", "max\n"),
    ("memory.oom.group", "0\n"),
    (
        "memory.events",
        "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
    ),
    ("memory.current", "0\n"),
    ("memory.peak", "0\n"),
    ("pids.max", "max\n"),
    ("pids.current", "0\n"),
    ("pids.peak", "0\n"),
    ("pids.events", "max 0\n"),
];

/// A pure v2 host with every controller, this process in a session scope.
pub(crate) fn unified() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("sys/fs/cgroup");
    cgroup_dir(&root, V2_FILES);
    cgroup_dir(
        &root.join("user.slice/user-1000.slice/session-2.scope"),
        V2_FILES,
    );
    for d in ["user.slice", "user.slice/user-1000.slice"] {
        fs::write(
            root.join(d).join("cgroup.subtree_control"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
    }
    let sys = System::from_parts(UNIFIED_MOUNTINFO, UNIFIED_CGROUP)
        .unwrap()
        .with_root_prefix(dir.path());
    Fixture { dir, sys }
}

/// v1 files per controller.
fn v1_files(controller: &str) -> Vec<(&'static str, &'static str)> {
    let mut files = vec![
        ("cgroup.procs", ""),
        ("tasks", ""),
        ("cgroup.clone_children", "0\n"),
    ];
    files.extend(match controller {
        "memory" => &[
            ("memory.limit_in_bytes", "9223372036854771712\n"),
            ("memory.memsw.limit_in_bytes", "9223372036854771712\n"),
            ("memory.soft_limit_in_bytes", "9223372036854771712\n"),
            ("memory.max_usage_in_bytes", "0\n"),
            ("memory.usage_in_bytes", "0\n"),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
            ),
        ][..],
        "cpu" => &[
            ("cpu.cfs_quota_us", "-1\n"),
            ("cpu.cfs_period_us", "100000\n"),
            ("cpu.shares", "1024\n"),
            ("cpu.idle", "0\n"),
        ][..],
        "cpuacct" => &[
            ("cpuacct.usage", "0\n"),
            ("cpuacct.stat", "user 0\nsystem 0\n"),
        ][..],
        "cpuset" => &[("cpuset.cpus", "0-3\n"), ("cpuset.mems", "0\n")][..],
        "pids" => &[
            ("pids.max", "max\n"),
            ("pids.current", "0\n"),
            ("pids.events", "max 0\n"),
        ][..],
        "freezer" => &[("freezer.state", "THAWED\n")][..],
        _ => &[][..],
    });
    files
}

/// v1 hierarchies as mounted by `mountinfo`, own cgroups from `cgroup`.
fn v1_tree(sys: &System) {
    for h in sys.v1() {
        let mut files = Vec::new();
        for c in &h.controllers {
            files.extend(v1_files(c));
        }
        cgroup_dir(&h.mount_point, &files);
        let own = h.dir(&h.own_path);
        cgroup_dir(&own, &files);
        // Intermediate own-path directories need the files too.
        for anc in own
            .ancestors()
            .take_while(|a| a.starts_with(&h.mount_point) && *a != h.mount_point)
        {
            cgroup_dir(anc, &files);
        }
    }
}

/// A pure v1 host (cpu,cpuacct co-mounted), this process in user.slice.
pub(crate) fn legacy() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let sys = System::from_parts(LEGACY_MOUNTINFO, LEGACY_CGROUP)
        .unwrap()
        .with_root_prefix(dir.path());
    v1_tree(&sys);
    Fixture { dir, sys }
}

/// This machine: v1 controllers plus a v2 tree with no controllers.
pub(crate) fn hybrid() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let sys = System::from_parts(HYBRID_MOUNTINFO, HYBRID_CGROUP)
        .unwrap()
        .with_root_prefix(dir.path());
    v1_tree(&sys);
    let core: Vec<(&str, &str)> = V2_FILES
        .iter()
        .copied()
        .filter(|(f, _)| f.starts_with("cgroup.") || *f == "cpu.stat")
        .map(|(f, c)| {
            if f == "cgroup.controllers" {
                (f, "")
            } else {
                (f, c)
            }
        })
        .collect();
    cgroup_dir(&dir.path().join("sys/fs/cgroup/unified"), &core);
    Fixture { dir, sys }
}
