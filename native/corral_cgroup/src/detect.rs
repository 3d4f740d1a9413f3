//! Layout detection from `/proc/self/mountinfo` and `/proc/self/cgroup`.
//!
//! See `proc(5)` for both file formats, and
//! `Documentation/admin-guide/cgroup-v2.rst` ("Mounting") and
//! `Documentation/admin-guide/cgroup-v1/cgroups.rst` for the hierarchies.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// The v1 controllers this crate recognises in mount options. Anything else
/// in the options (`rw`, `clone_children`, `release_agent=...`) is ignored.
const V1_CONTROLLERS: &[&str] = &[
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "freezer",
    "hugetlb",
    "memory",
    "misc",
    "net_cls",
    "net_prio",
    "perf_event",
    "pids",
    "rdma",
];

/// How cgroups are mounted on this system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Only the v2 unified hierarchy (or v1 hierarchies without controllers).
    Unified,
    /// Only v1 hierarchies.
    Legacy,
    /// v1 controllers plus a v2 tree without them (systemd's "hybrid").
    /// Membership, kill, freeze and CPU accounting use the v2 tree; limits
    /// use the v1 controllers.
    Hybrid,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::Unified => "unified (v2)",
            Layout::Legacy => "legacy (v1)",
            Layout::Hybrid => "hybrid (v1 controllers + v2)",
        })
    }
}

/// One mounted cgroup hierarchy and this process's place in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// v1 controllers bound to it (`["cpu", "cpuacct"]`, `["name=systemd"]`);
    /// empty for the v2 tree.
    pub controllers: Vec<String>,
    /// Where it is mounted, e.g. `/sys/fs/cgroup/memory`.
    pub mount_point: PathBuf,
    /// This process's cgroup, relative to the mount point, with a leading
    /// `/` (`/` or `/user.slice/...`).
    pub own_path: String,
}

impl Hierarchy {
    /// True if `controller` is bound to this (v1) hierarchy.
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    /// The absolute directory of `rel` (a path relative to the hierarchy root).
    pub fn dir(&self, rel: &str) -> PathBuf {
        self.mount_point.join(rel.trim_start_matches('/'))
    }
}

/// The cgroup hierarchies visible to this process, found once by detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct System {
    layout: Layout,
    v2: Option<Hierarchy>,
    v1: Vec<Hierarchy>,
}

impl System {
    /// Detects the layout from `/proc/self/mountinfo` and `/proc/self/cgroup`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if either file cannot be read, and
    /// [`Error::Unavailable`] if no cgroup filesystem is mounted, or the
    /// system is not Linux (cgroups are Linux's alone).
    pub fn detect() -> Result<System> {
        if cfg!(not(target_os = "linux")) {
            return Err(Error::Unavailable {
                reason: format!(
                    "cgroups are a Linux feature, and this is {}",
                    std::env::consts::OS
                ),
                path: None,
                errno: Some(libc::ENOSYS),
            });
        }
        let mountinfo_path = Path::new("/proc/self/mountinfo");
        let cgroup_path = Path::new("/proc/self/cgroup");
        let mountinfo = std::fs::read_to_string(mountinfo_path).at("read", mountinfo_path)?;
        let cgroup = std::fs::read_to_string(cgroup_path).at("read", cgroup_path)?;
        System::from_parts(&mountinfo, &cgroup)
    }

    /// Detects the layout from the text of `/proc/self/mountinfo` and
    /// `/proc/self/cgroup`. Pure: touches no files.
    ///
    /// Hierarchies this process has no line for in `proc_self_cgroup` are
    /// skipped, as are duplicate mounts of one hierarchy (the first wins).
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] if no usable cgroup hierarchy is mounted.
    pub fn from_parts(mountinfo: &str, proc_self_cgroup: &str) -> Result<System> {
        let own = parse_proc_cgroup(proc_self_cgroup);
        let mut v2: Option<Hierarchy> = None;
        let mut v1: Vec<Hierarchy> = Vec::new();
        for mount in mountinfo.lines().filter_map(parse_mount_line) {
            match mount.fstype {
                "cgroup2" if v2.is_none() => {
                    if let Some((_, path)) = own.iter().find(|(c, _)| c.is_empty()) {
                        v2 = Some(mount.hierarchy(Vec::new(), path));
                    }
                }
                "cgroup" => {
                    let mut ctrls: Vec<String> = mount
                        .superopts
                        .split(',')
                        .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                        .map(str::to_owned)
                        .collect();
                    ctrls.sort();
                    if ctrls.is_empty() || v1.iter().any(|h| h.controllers == ctrls) {
                        continue;
                    }
                    if let Some((_, path)) = own.iter().find(|(c, _)| *c == ctrls) {
                        v1.push(mount.hierarchy(ctrls, path));
                    }
                }
                _ => {}
            }
        }
        let v1_controllers = v1
            .iter()
            .any(|h| h.controllers.iter().any(|c| !c.starts_with("name=")));
        let layout = match (&v2, v1_controllers) {
            (Some(_), true) => Layout::Hybrid,
            (Some(_), false) => Layout::Unified,
            (None, true) => Layout::Legacy,
            (None, false) => {
                return Err(Error::Unavailable {
                    reason: "no cgroup filesystem is mounted (see /proc/self/mountinfo)".into(),
                    path: None,
                    errno: None,
                })
            }
        };
        Ok(System { layout, v2, v1 })
    }

    /// Moves every mount point under `prefix` (`/sys/fs/cgroup/memory`
    /// becomes `<prefix>/sys/fs/cgroup/memory`), for fixture trees in a
    /// temporary directory or a host filesystem mounted elsewhere.
    pub fn with_root_prefix(mut self, prefix: &Path) -> System {
        let relocate = |h: &mut Hierarchy| {
            let rel = h.mount_point.strip_prefix("/").unwrap_or(&h.mount_point);
            h.mount_point = prefix.join(rel);
        };
        self.v2.iter_mut().for_each(relocate);
        self.v1.iter_mut().for_each(relocate);
        self
    }

    /// The layout found by detection.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The v2 tree, if mounted.
    pub fn v2(&self) -> Option<&Hierarchy> {
        self.v2.as_ref()
    }

    /// The v1 hierarchies, in mount order (named ones included).
    pub fn v1(&self) -> &[Hierarchy] {
        &self.v1
    }

    /// The v1 hierarchy that has `controller` bound to it, if mounted.
    pub fn v1_for(&self, controller: &str) -> Option<&Hierarchy> {
        self.v1.iter().find(|h| h.has(controller))
    }
}

/// One cgroup line of mountinfo, borrowed from the text.
struct MountLine<'a> {
    root: &'a str,
    mount_point: PathBuf,
    fstype: &'a str,
    superopts: &'a str,
}

impl MountLine<'_> {
    /// Builds the hierarchy, making `own` (from `/proc/self/cgroup`, relative
    /// to the hierarchy's root) relative to this mount's root instead.
    fn hierarchy(&self, controllers: Vec<String>, own: &str) -> Hierarchy {
        let own_path = match own.strip_prefix(self.root) {
            _ if self.root == "/" => own.to_owned(),
            Some("") => "/".to_owned(),
            Some(rest) if rest.starts_with('/') => rest.to_owned(),
            _ => own.to_owned(),
        };
        Hierarchy {
            controllers,
            mount_point: self.mount_point.clone(),
            own_path,
        }
    }
}

/// Parses `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS`.
fn parse_mount_line(line: &str) -> Option<MountLine<'_>> {
    let (left, right) = line.split_once(" - ")?;
    let left: Vec<&str> = left.split(' ').collect();
    let mut right = right.split(' ');
    let fstype = right.next()?;
    if fstype != "cgroup" && fstype != "cgroup2" {
        return None;
    }
    let _source = right.next()?;
    Some(MountLine {
        root: left.get(3)?,
        mount_point: PathBuf::from(unescape(left.get(4)?)),
        fstype,
        superopts: right.next().unwrap_or(""),
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `/proc/self/cgroup` into (sorted controllers, path); the v2 line
/// (`0::/path`) has no controllers.
fn parse_proc_cgroup(text: &str) -> Vec<(Vec<String>, &str)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let ctrls = parts.next()?;
            let path = parts.next()?;
            let mut ctrls: Vec<String> = ctrls
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
            ctrls.sort();
            Some((ctrls, path))
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// This machine's layout: v1 controllers plus an empty v2 tree.
    pub(crate) const HYBRID_MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    pub(crate) const HYBRID_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/abc
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";
    /// A systemd host on pure v2, inside a user slice.
    pub(crate) const UNIFIED_MOUNTINFO: &str = "\
25 1 0:23 / /sys rw,nosuid - sysfs sysfs rw
35 25 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
    pub(crate) const UNIFIED_CGROUP: &str = "0::/user.slice/user-1000.slice/session-2.scope\n";
    /// An older host on pure v1, with cpu and cpuacct co-mounted.
    pub(crate) const LEGACY_MOUNTINFO: &str = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/systemd rw,nosuid shared:10 - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:15 - cgroup cgroup rw,cpu,cpuacct
35 30 0:31 / /sys/fs/cgroup/memory rw,nosuid shared:16 - cgroup cgroup rw,memory
36 30 0:32 / /sys/fs/cgroup/pids rw,nosuid shared:17 - cgroup cgroup rw,pids
37 30 0:33 / /sys/fs/cgroup/freezer rw,nosuid shared:18 - cgroup cgroup rw,freezer
38 30 0:34 / /sys/fs/cgroup/cpuset rw,nosuid shared:19 - cgroup cgroup rw,cpuset,clone_children
";
    pub(crate) const LEGACY_CGROUP: &str = "\
6:cpuset:/
5:freezer:/
4:pids:/user.slice
3:memory:/user.slice
2:cpu,cpuacct:/user.slice
1:name=systemd:/user.slice/session-1.scope
";

    #[test]
    fn detects_hybrid() {
        let sys = System::from_parts(HYBRID_MOUNTINFO, HYBRID_CGROUP).unwrap();
        assert_eq!(sys.layout(), Layout::Hybrid);
        let v2 = sys.v2().unwrap();
        assert_eq!(v2.mount_point, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(v2.own_path, "/");
        assert_eq!(sys.v1().len(), 9);
        let mem = sys.v1_for("memory").unwrap();
        assert_eq!(mem.mount_point, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(mem.own_path, "/process_api/abc");
        assert_eq!(
            mem.dir("/process_api/abc/x"),
            Path::new("/sys/fs/cgroup/memory/process_api/abc/x")
        );
        assert!(sys.v1_for("systemd").is_none());
        assert!(sys.v1().iter().any(|h| h.controllers == ["name=systemd"]));
    }

    #[test]
    fn detects_unified() {
        let sys = System::from_parts(UNIFIED_MOUNTINFO, UNIFIED_CGROUP).unwrap();
        assert_eq!(sys.layout(), Layout::Unified);
        let v2 = sys.v2().unwrap();
        assert_eq!(v2.mount_point, Path::new("/sys/fs/cgroup"));
        assert_eq!(v2.own_path, "/user.slice/user-1000.slice/session-2.scope");
        assert!(sys.v1().is_empty());
    }

    #[test]
    fn detects_legacy_with_comounted_controllers() {
        let sys = System::from_parts(LEGACY_MOUNTINFO, LEGACY_CGROUP).unwrap();
        assert_eq!(sys.layout(), Layout::Legacy);
        assert!(sys.v2().is_none());
        let cpu = sys.v1_for("cpuacct").unwrap();
        assert_eq!(cpu.controllers, ["cpu", "cpuacct"]);
        assert_eq!(cpu.mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(cpu.own_path, "/user.slice");
        assert!(sys.v1_for("cpuset").unwrap().has("cpuset"));
    }

    #[test]
    fn v1_named_only_with_v2_is_unified() {
        let mountinfo = "\
1 0 0:1 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
2 0 0:2 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
";
        let sys = System::from_parts(mountinfo, "1:name=systemd:/\n0::/a\n").unwrap();
        assert_eq!(sys.layout(), Layout::Unified);
    }

    #[test]
    fn no_cgroupfs_is_unavailable() {
        let err =
            System::from_parts("22 27 0:21 / /proc rw - proc proc rw\n", "0::/\n").unwrap_err();
        assert!(err.is_unavailable(), "{err}");
    }

    #[test]
    fn own_path_is_made_relative_to_the_mount_root() {
        let mountinfo = "1 0 0:1 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let sys = System::from_parts(mountinfo, "4:memory:/docker/abc/inner\n").unwrap();
        assert_eq!(sys.v1_for("memory").unwrap().own_path, "/inner");
        let sys = System::from_parts(mountinfo, "4:memory:/docker/abc\n").unwrap();
        assert_eq!(sys.v1_for("memory").unwrap().own_path, "/");
    }

    #[test]
    fn mount_points_are_unescaped_and_relocated() {
        let mountinfo = "1 0 0:1 / /mnt/my\\040cgroups rw - cgroup2 cgroup2 rw\n";
        let sys = System::from_parts(mountinfo, "0::/\n").unwrap();
        assert_eq!(sys.v2().unwrap().mount_point, Path::new("/mnt/my cgroups"));
        let sys = sys.with_root_prefix(Path::new("/tmp/fx"));
        assert_eq!(
            sys.v2().unwrap().mount_point,
            Path::new("/tmp/fx/mnt/my cgroups")
        );
    }

    #[test]
    fn detect_reads_this_machine() {
        // Whatever the host is, detection must not fail where /proc exists
        // and some cgroupfs is mounted.
        match System::detect() {
            Ok(sys) => assert!(sys.v2().is_some() || !sys.v1().is_empty()),
            Err(e) => assert!(e.is_unavailable(), "{e}"),
        }
    }
}
