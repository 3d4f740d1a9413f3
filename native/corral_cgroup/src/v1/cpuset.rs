//! The v1 cpuset controller (`Documentation/admin-guide/cgroup-v1/cpusets.rst`).
//!
//! A new v1 cpuset starts with empty `cpuset.cpus` and `cpuset.mems`, and
//! the kernel refuses tasks (`ENOSPC`) until both are set. Unless
//! `cgroup.clone_children` is on, nobody fills them in, so we copy the
//! parent's values.

use std::path::Path;

use crate::error::Result;
use crate::fs;

/// Fills empty `cpuset.cpus`/`cpuset.mems` from the parent, from the
/// hierarchy root down to `root/rel`, so tasks can join the group.
///
/// # Errors
///
/// [`crate::Error::Io`] if a file cannot be read or written.
pub(crate) fn init(root: &Path, rel: &str) -> Result<()> {
    let dirs = fs::chain(root, rel);
    for pair in dirs.windows(2) {
        let (parent, child) = (&pair[0], &pair[1]);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if fs::read_trimmed(&child.join(file))?.is_empty() {
                let value = fs::read_trimmed(&parent.join(file))?;
                fs::write(&child.join(file), &value)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_parent_values_top_down_into_empty_files_only() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("a/b")).unwrap();
        for (d, cpus, mems) in [("", "0-3\n", "0\n"), ("a", "", ""), ("a/b", "2\n", "")] {
            std::fs::write(r.join(d).join("cpuset.cpus"), cpus).unwrap();
            std::fs::write(r.join(d).join("cpuset.mems"), mems).unwrap();
        }
        init(r, "/a/b").unwrap();
        let read = |p: &str| std::fs::read_to_string(r.join(p)).unwrap();
        assert_eq!(read("a/cpuset.cpus"), "0-3");
        assert_eq!(read("a/cpuset.mems"), "0");
        assert_eq!(read("a/b/cpuset.cpus"), "2\n");
        assert_eq!(read("a/b/cpuset.mems"), "0");
    }
}
