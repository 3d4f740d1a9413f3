//! Degraded containment: a helper that cannot become a child subreaper
//! (qemu-user answers `PR_SET_CHILD_SUBREAPER` with EINVAL) still runs the
//! command, holds the tree by its process group (and cgroup), and reports
//! the level it gave. `CORRAL_TEST_NO_SUBREAPER` makes the helper act as if
//! the subreaper were refused; `make cross` checks the real thing under qemu.

mod support;

use corral_proto::containment::NO_SUBREAPER;
use corral_proto::{key, Reason};
use std::time::Duration;
use support::*;

/// Every test in this binary wants the switch, so setting it for the
/// whole process (and so every helper it starts) is the same to all.
fn pretend_no_subreaper() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::env::set_var("CORRAL_TEST_NO_SUBREAPER", "1"));
}

#[test]
fn runs_and_reports_process_group_containment() {
    pretend_no_subreaper();
    let mut h = Helper::port(&["--no-cgroup"], &["sh", "-c", "echo hi; exit 3"]);
    h.started();
    assert_eq!(h.containment, Some(NO_SUBREAPER));
    let (reason, fields) = h.finish(SOON);
    assert_eq!(h.out_text(), "hi\n");
    assert_eq!(reason, Reason::Exit);
    assert_eq!(int(&fields, key::EXIT_STATUS), 3);
    assert_eq!(int(&fields, key::CONTAINMENT), u64::from(NO_SUBREAPER));
    assert_eq!(h.exit_code(SOON), 3);
}

#[test]
fn an_orphan_in_the_process_group_is_ended() {
    pretend_no_subreaper();
    // The inner shell starts a sleep and exits: the sleep is orphaned and
    // re-parented away from the helper, out of its subtree, but stays in
    // the command's process group.
    let script = "sh -c 'sleep 300 >/dev/null 2>&1 & echo ready $! $$'; exec sleep 300";
    let mut h = Helper::port(&["--no-cgroup"], &["sh", "-c", script]);
    let pids = h.ready();
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert_eq!(h.containment, Some(NO_SUBREAPER));
    let (orphan, inner) = (pids[0], pids[1]);
    let child = h.child_pid.expect("S");
    let inner_left = wait_gone(&[inner], SOON);
    let ppid = parent_of(orphan);
    h.close_control();
    let left = wait_gone(&[orphan, child], Duration::from_secs(2));
    kill_all(&left);
    assert!(inner_left.is_empty(), "the inner shell never exited");
    assert!(
        ppid.is_some_and(|p| p != h.pid && p != child),
        "the sleep was not orphaned out of the helper's subtree: parent {ppid:?}"
    );
    assert!(left.is_empty(), "still alive 2 s after EOF: {left:?}");
    h.wait(Duration::from_secs(2));
}

#[test]
fn a_cgroup_still_holds_the_tree_where_one_can_be_made() {
    pretend_no_subreaper();
    let bin = testbin("fork_tree");
    let mut h = Helper::port(&[], &[&bin, "3"]);
    let pids = h.ready();
    let containment = h.containment.expect("S");
    assert_ne!(containment & NO_SUBREAPER, 0, "{containment}");
    h.close_control();
    let left = wait_gone(&pids, Duration::from_secs(2));
    kill_all(&left);
    if containment == NO_SUBREAPER {
        // No cgroup on this host: fork_tree's setsid'd grandchild left the
        // process group, and nothing can hold it. The rest must be gone.
        assert!(left.len() <= 1, "still alive 2 s after EOF: {left:?}");
    } else {
        assert!(left.is_empty(), "still alive 2 s after EOF: {left:?}");
    }
    h.wait(Duration::from_secs(2));
}

/// The parent pid of `pid` (`proc(5)`, field 4 of `/proc/<pid>/stat`).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}
