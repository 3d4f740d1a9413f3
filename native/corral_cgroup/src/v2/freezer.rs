//! v2 `cgroup.freeze`, `cgroup.events` and `cgroup.kill`
//! (`Documentation/admin-guide/cgroup-v2.rst`, "Core Interface Files").

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::fs;

/// Whether this kernel has the v2 freezer (Linux 5.2+) in `dir`.
pub(crate) fn available(dir: &Path) -> bool {
    dir.join("cgroup.freeze").exists()
}

/// Asks the kernel to freeze (`1`) or thaw (`0`) the group; freezing
/// completes asynchronously, see [`is_frozen`].
pub(crate) fn set(dir: &Path, frozen: bool) -> Result<()> {
    fs::write(&dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })
}

/// `frozen 1` in `cgroup.events`: every task in the group is frozen.
pub(crate) fn is_frozen(dir: &Path) -> Result<bool> {
    Ok(frozen_in(&fs::read(&events(dir))?))
}

/// The group's `cgroup.events`, which cgroupfs notifies on change.
pub(crate) fn events(dir: &Path) -> PathBuf {
    dir.join("cgroup.events")
}

/// Whether the text of `cgroup.events` says `frozen 1`.
pub(crate) fn frozen_in(events: &str) -> bool {
    fs::keyed(events, "frozen") == Some(1)
}

/// `cgroup.kill` (Linux 5.14+), if this kernel has it.
pub(crate) fn kill_file(dir: &Path) -> Option<PathBuf> {
    Some(dir.join("cgroup.kill")).filter(|p| p.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freeze_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(!available(d));
        assert!(kill_file(d).is_none());
        for f in ["cgroup.freeze", "cgroup.kill"] {
            std::fs::write(d.join(f), "0\n").unwrap();
        }
        std::fs::write(d.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        assert!(available(d));
        assert_eq!(kill_file(d), Some(d.join("cgroup.kill")));
        set(d, true).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.join("cgroup.freeze")).unwrap(),
            "1"
        );
        assert!(!is_frozen(d).unwrap());
        std::fs::write(d.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        assert!(is_frozen(d).unwrap());
    }
}
