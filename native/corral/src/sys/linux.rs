//! Linux's process table: `/proc` (`proc(5)`).

use crate::tree::ProcStat;
use std::collections::HashSet;

/// Parses the text of `/proc/<pid>/stat` (`proc(5)`). The command name may
/// hold spaces and parentheses, so fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    parse_stat_and_threads(text).map(|(st, _)| st)
}

/// [`parse_stat`], and the number of threads (field 20).
fn parse_stat_and_threads(text: &str) -> Option<(ProcStat, u64)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let rest: Vec<&str> = text.get(close + 2..)?.split_ascii_whitespace().collect();
    // rest[0] is field 3 (state); field n is rest[n - 3].
    let field = |n: usize| rest.get(n - 3).and_then(|s| s.parse::<u64>().ok());
    let stat = ProcStat {
        pid,
        state: *rest.first()?.as_bytes().first()?,
        ppid: rest.get(1)?.parse().ok()?,
        pgrp: rest.get(2)?.parse().ok()?,
        utime: field(14)?,
        stime: field(15)?,
        cutime: field(16)?,
        cstime: field(17)?,
        rss_pages: field(24)?,
    };
    Some((stat, field(20)?))
}

/// The text of a small `/proc` file, read into a buffer that holds a whole
/// `stat` line: two `read(2)`s, the second saying end of file. (A
/// seq_file may stop short before a record that does not fit, so only
/// `0` ends it.) `read_to_string` would `statx` first and then read in
/// probes of 32, 32, 64, ... bytes: eight system calls for each process a
/// teardown scans.
fn read_proc(path: &str) -> Option<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
    let mut buf = vec![0u8; 1024];
    let mut len = 0;
    loop {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if len == buf.len() {
                    buf.resize(buf.len() * 2, 0);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    buf.truncate(len);
    String::from_utf8(buf).ok()
}

/// Every process on the system, read from `/proc`. Processes that vanish
/// while being read are skipped.
pub fn scan_all() -> Vec<ProcStat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let name = e.ok()?.file_name();
        let name = name.to_str()?;
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        parse_stat(&read_proc(&format!("/proc/{name}/stat"))?)
    })
    .collect()
}

/// A thread-group leader that has exited shows `Z` while its other threads
/// still run: such a process is alive, and its CPU time is not yet anyone's.
pub fn has_live_threads(pid: i32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/task")).is_ok_and(|tasks| tasks.count() > 1)
}

/// Reads one process's stat, if it still exists.
pub fn stat_of(pid: i32) -> Option<ProcStat> {
    stat_and_threads(pid).map(|(st, _)| st)
}

/// [`stat_of`], and the process's number of threads.
fn stat_and_threads(pid: i32) -> Option<(ProcStat, u64)> {
    parse_stat_and_threads(&read_proc(&format!("/proc/{pid}/stat"))?)
}

/// The `children` files of `pid`'s threads: the one of its only thread
/// when `threads` says it has one, else those `/proc/<pid>/task` lists
/// (five system calls more, which each member of a teardown's scan would
/// pay).
fn children_files(pid: i32, threads: Option<u64>) -> Vec<String> {
    if threads == Some(1) {
        return vec![format!("/proc/{pid}/task/{pid}/children")];
    }
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| t.path().join("children").to_str().map(str::to_owned))
        .collect()
}

/// Whether the calling process has any child, live or zombie, of any kind
/// (`__WALL`). Nothing is reaped (`WNOWAIT`).
fn has_children() -> bool {
    // SAFETY: waitid only writes the siginfo we own.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT | libc::__WALL;
        libc::waitid(libc::P_ALL, 0, &mut info, flags) == 0
            || *libc::__errno_location() != libc::ECHILD
    }
}

/// The descendants of `root`, walked through each task's `children` file
/// (`proc(5)`, `/proc/<pid>/task/<tid>/children`): a few reads per member
/// instead of one per process on the system. `None` when the kernel does
/// not provide the file, and the caller must scan all of `/proc`.
pub fn descendants(root: i32) -> Option<Vec<ProcStat>> {
    static SUPPORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let supported = *SUPPORTED.get_or_init(|| {
        let me = std::process::id();
        std::path::Path::new(&format!("/proc/{me}/task/{me}/children")).exists()
    });
    if !supported {
        return None;
    }
    // Every descendant is a child of ours or below one (orphans re-parent
    // to us, the subreaper), so with no child there is nothing to walk.
    // This is the common case once the child has exited and been reaped.
    if root == std::process::id() as i32 && !has_children() {
        return Some(Vec::new());
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    // A member that dies during the walk hands its children to its
    // subreaper, the helper, in one step: a child missing from its dying
    // parent's list when the walk read it was already in the helper's.
    // So once the walk is done, the helper's own list is read again, until
    // it names nobody new.
    let subreaper = root == std::process::id() as i32;
    loop {
        let before = seen.len();
        let mut stack = vec![(root, None)];
        while let Some((pid, threads)) = stack.pop() {
            for file in children_files(pid, threads) {
                let Some(text) = read_proc(&file) else {
                    continue;
                };
                for child in text
                    .split_ascii_whitespace()
                    .filter_map(|c| c.parse::<i32>().ok())
                {
                    if seen.insert(child) {
                        match stat_and_threads(child) {
                            Some((st, n)) => {
                                out.push(st);
                                stack.push((child, Some(n)));
                            }
                            None => stack.push((child, None)),
                        }
                    }
                }
            }
        }
        if !subreaper || seen.len() == before {
            return Some(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_awkward_command_name() {
        let text = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 100 1000 55 18446744073709551615";
        let s = parse_stat(text).expect("parses");
        assert_eq!((s.pid, s.state, s.ppid, s.pgrp), (4242, b'S', 1, 4242));
        assert_eq!((s.utime, s.stime, s.rss_pages), (7, 3, 55));
    }

    #[test]
    fn a_single_threaded_process_is_walked_through_its_one_children_file() {
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as i32;
        let (st, threads) = stat_and_threads(pid).expect("stat");
        assert_eq!((st.pid, threads), (pid, 1));
        assert_eq!(
            children_files(pid, Some(threads)),
            [format!("/proc/{pid}/task/{pid}/children")]
        );
        // Unknown: every thread's file, listed.
        let me = std::process::id() as i32;
        let all = children_files(me, None);
        assert!(
            all.contains(&format!("/proc/{me}/task/{me}/children")),
            "{all:?}"
        );
        assert!(descendants(me).expect("walk").iter().any(|p| p.pid == pid));
        child.kill().expect("kill");
        child.wait().expect("reaped");
    }

    #[test]
    fn own_stat_parses() {
        let me = std::process::id() as i32;
        let s =
            parse_stat(&std::fs::read_to_string("/proc/self/stat").expect("read")).expect("parses");
        assert_eq!(s.pid, me);
        assert!(scan_all().iter().any(|p| p.pid == me));
    }
}
