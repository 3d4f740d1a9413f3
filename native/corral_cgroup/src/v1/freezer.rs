//! The v1 freezer (`Documentation/admin-guide/cgroup-v1/freezer-subsystem.rst`).

use std::path::Path;

use crate::error::Result;
use crate::fs;

/// Writes `FROZEN` or `THAWED` to `freezer.state`.
pub(crate) fn set(dir: &Path, frozen: bool) -> Result<()> {
    fs::write(
        &dir.join("freezer.state"),
        if frozen { "FROZEN" } else { "THAWED" },
    )
}

/// `freezer.state` reads `FROZEN` once every task is frozen (`FREEZING`
/// while it is under way).
pub(crate) fn is_frozen(dir: &Path) -> Result<bool> {
    Ok(fs::read_trimmed(&dir.join("freezer.state"))? == "FROZEN")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freezer_state() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("freezer.state");
        std::fs::write(&state, "THAWED\n").unwrap();
        assert!(!is_frozen(dir.path()).unwrap());
        set(dir.path(), true).unwrap();
        assert_eq!(std::fs::read_to_string(&state).unwrap(), "FROZEN");
        assert!(is_frozen(dir.path()).unwrap());
        std::fs::write(&state, "FREEZING\n").unwrap();
        assert!(!is_frozen(dir.path()).unwrap());
        set(dir.path(), false).unwrap();
        assert_eq!(std::fs::read_to_string(&state).unwrap(), "THAWED");
    }
}
