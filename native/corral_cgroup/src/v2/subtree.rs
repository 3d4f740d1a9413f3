//! Enabling v2 controllers for a group through its ancestors'
//! `cgroup.subtree_control` ("Enabling and Disabling" and "Delegation" in
//! `Documentation/admin-guide/cgroup-v2.rst`).

use std::path::Path;

use crate::error::{Error, Result};
use crate::fs;

/// True if `file` lists `controller` (as `memory` or `+memory`).
fn lists(file: &Path, controller: &str) -> bool {
    std::fs::read_to_string(file)
        .map(|s| {
            s.split_whitespace()
                .any(|c| c.trim_start_matches('+') == controller)
        })
        .unwrap_or(false)
}

/// Makes each of `controllers` available in `root/rel`: finds the deepest
/// ancestor that has it in `cgroup.controllers`, then enables it in
/// `cgroup.subtree_control` from there down to the group's parent, with one
/// write (`+cpu +memory`) per directory.
///
/// # Errors
///
/// [`Error::Controller`] naming the controller(s) and saying how to
/// delegate them, if no ancestor has one or a write is refused (`EBUSY`
/// from the no-internal-processes rule, `EACCES` without delegation).
pub(crate) fn enable(root: &Path, rel: &str, controllers: &[&str]) -> Result<()> {
    let chain = fs::chain(root, rel);
    let Some((leaf, ancestors)) = chain.split_last() else {
        return Ok(());
    };
    // For each controller still missing in the leaf: where to start enabling.
    let mut starts = Vec::new();
    for &ctrl in controllers {
        if lists(&leaf.join("cgroup.controllers"), ctrl) {
            continue;
        }
        let Some(start) = ancestors
            .iter()
            .rposition(|d| lists(&d.join("cgroup.controllers"), ctrl))
        else {
            return Err(Error::Controller {
                controller: ctrl.to_owned(),
                path: root.to_path_buf(),
                hint: format!(
                    "it is not in {}/cgroup.controllers (bound to a v1 hierarchy, or not built into this kernel)",
                    root.display()
                ),
            });
        };
        starts.push((ctrl, start));
    }
    for (i, dir) in ancestors.iter().enumerate() {
        let control = dir.join("cgroup.subtree_control");
        let todo: Vec<&str> = starts
            .iter()
            .filter(|(c, start)| *start <= i && !lists(&control, c))
            .map(|(c, _)| *c)
            .collect();
        if todo.is_empty() {
            continue;
        }
        let value = todo
            .iter()
            .map(|c| format!("+{c}"))
            .collect::<Vec<_>>()
            .join(" ");
        fs::write(&control, &value).map_err(|e| Error::Controller {
            controller: todo.join(" "),
            path: dir.clone(),
            hint: hint(e.errno(), &value, &control),
        })?;
    }
    Ok(())
}

/// Says why writing `value` (`+memory`) failed and how to delegate.
fn hint(errno: Option<i32>, value: &str, control: &Path) -> String {
    let parent = control.parent().unwrap_or(control).display();
    match errno {
        Some(libc::EBUSY) => format!(
            "{parent} has processes of its own, and the no-internal-processes rule forbids \
             enabling controllers for its children; place the group under a cgroup without \
             processes (:cgroup_base or :cgroup_path) or move those processes into a leaf first"
        ),
        Some(libc::EACCES | libc::EPERM | libc::EROFS) => format!(
            "it is not delegated to this user; as root run `echo {value:?} > {}`, \
             or run under a systemd unit with Delegate=yes",
            control.display()
        ),
        Some(n) => format!(
            "writing {value:?} to {} failed: {}",
            control.display(),
            std::io::Error::from_raw_os_error(n)
        ),
        None => format!("writing {value:?} to {} failed", control.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs as stdfs;

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        stdfs::create_dir_all(r.join("a/b")).unwrap();
        stdfs::write(r.join("cgroup.controllers"), "cpuset cpu io memory pids\n").unwrap();
        stdfs::write(r.join("cgroup.subtree_control"), "cpu\n").unwrap();
        stdfs::write(r.join("a/cgroup.controllers"), "cpu\n").unwrap();
        stdfs::write(r.join("a/cgroup.subtree_control"), "").unwrap();
        stdfs::write(r.join("a/b/cgroup.controllers"), "").unwrap();
        stdfs::write(r.join("a/b/cgroup.subtree_control"), "").unwrap();
        t
    }

    #[test]
    fn enables_from_the_deepest_ancestor_down() {
        let t = tree();
        let r = t.path();
        enable(r, "/a/b", &["memory"]).unwrap();
        assert_eq!(
            stdfs::read_to_string(r.join("cgroup.subtree_control")).unwrap(),
            "+memory"
        );
        assert_eq!(
            stdfs::read_to_string(r.join("a/cgroup.subtree_control")).unwrap(),
            "+memory"
        );
        stdfs::write(r.join("cgroup.subtree_control"), "cpu\n").unwrap();
        stdfs::write(r.join("a/cgroup.subtree_control"), "").unwrap();
        enable(r, "/a/b", &["cpu", "io", "pids"]).unwrap();
        assert_eq!(
            stdfs::read_to_string(r.join("cgroup.subtree_control")).unwrap(),
            "+io +pids"
        );
        assert_eq!(
            stdfs::read_to_string(r.join("a/cgroup.subtree_control")).unwrap(),
            "+cpu +io +pids"
        );
        assert_eq!(
            stdfs::read_to_string(r.join("a/b/cgroup.subtree_control")).unwrap(),
            ""
        );
    }

    #[test]
    fn skips_ancestors_that_already_have_it() {
        let t = tree();
        let r = t.path();
        enable(r, "a/b", &["cpu"]).unwrap();
        assert_eq!(
            stdfs::read_to_string(r.join("cgroup.subtree_control")).unwrap(),
            "cpu\n"
        );
        assert_eq!(
            stdfs::read_to_string(r.join("a/cgroup.subtree_control")).unwrap(),
            "+cpu"
        );
    }

    #[test]
    fn missing_controller_is_named() {
        let t = tree();
        let err = enable(t.path(), "a/b", &["hugetlb"]).unwrap_err();
        assert!(
            matches!(&err, Error::Controller { controller, .. } if controller == "hugetlb"),
            "{err}"
        );
        assert!(err.to_string().contains("cgroup.controllers"), "{err}");
    }

    #[test]
    fn refusals_say_how_to_delegate() {
        let control = Path::new("/sys/fs/cgroup/user.slice/cgroup.subtree_control");
        let busy = hint(Some(libc::EBUSY), "+memory", control);
        assert!(busy.contains("no-internal-processes"), "{busy}");
        let denied = hint(Some(libc::EACCES), "+memory", control);
        assert!(
            denied.contains("echo \"+memory\" > /sys/fs/cgroup/user.slice/cgroup.subtree_control"),
            "{denied}"
        );
        assert!(denied.contains("Delegate=yes"), "{denied}");
    }
}
