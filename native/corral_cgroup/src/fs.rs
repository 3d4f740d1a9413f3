//! Small cgroupfs file helpers: every read, write, mkdir and rmdir of the
//! crate goes through here so errors always carry the path.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{IoContext, Result};

/// Reads a whole cgroup file.
pub(crate) fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).at("read", path)
}

/// Reads a one-value cgroup file and trims the trailing newline.
pub(crate) fn read_trimmed(path: &Path) -> Result<String> {
    read(path).map(|s| s.trim().to_owned())
}

/// Writes `value` to an existing cgroup file with a single `write(2)`.
///
/// The file is never created: on cgroupfs a missing file means a missing
/// controller, and fixture tests should catch misspelt names the same way.
pub(crate) fn write(path: &Path, value: &str) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .writing(path, value)?;
    file.write_all(value.as_bytes()).writing(path, value)
}

/// Creates one directory. Under `cfg(test)` the new directory is filled the
/// way the kernel would fill a new cgroup (see [`populate_like_parent`]).
pub(crate) fn mkdir(path: &Path) -> io::Result<()> {
    fs::create_dir(path)?;
    #[cfg(test)]
    populate_like_parent(path)?;
    Ok(())
}

/// Removes a cgroup directory, retrying on `EBUSY` until `patience` runs out
/// (a group whose last task is still exiting is briefly busy). A directory
/// that is already gone counts as removed.
pub(crate) fn rmdir(path: &Path, patience: Duration) -> Result<()> {
    let deadline = Instant::now() + patience;
    // Start fine: a freeze or an exit usually lands within tens of
    // microseconds, and a first sleep of 1 ms was most of a teardown
    // (bench/teardown.exs); back off to 20 ms for the slow cases.
    let mut pause = Duration::from_micros(50);
    loop {
        #[cfg(not(test))]
        let removed = fs::remove_dir(path);
        #[cfg(test)]
        let removed = empty_fixture_dir(path).and_then(|()| fs::remove_dir(path));
        match removed {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(e) => return Err(e).at("rmdir", path),
        }
    }
}

/// Looks up `key` in a flat-keyed file (`"key value"` per line), as used by
/// `memory.events`, `cpu.stat`, `pids.events` and `memory.oom_control`.
pub(crate) fn keyed(content: &str, key: &str) -> Option<u64> {
    content.lines().find_map(|line| {
        let (k, v) = line.split_once(char::is_whitespace)?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Polls `done` until it returns true or `patience` runs out, backing off
/// from 50 µs to 20 ms. Returns whether `done` became true.
pub(crate) fn poll(patience: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + patience;
    // Start fine: a freeze or an exit usually lands within tens of
    // microseconds, and a first sleep of 1 ms was most of a teardown
    // (bench/teardown.exs); back off to 20 ms for the slow cases.
    let mut pause = Duration::from_micros(50);
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// [`poll`], waking as soon as the kernfs file `watch` changes instead of
/// at the end of each pause: cgroupfs notifies a change of
/// `cgroup.events` to poll(2) as `POLLPRI` (cgroup-v2.rst, "a file
/// modified event is generated"), so a freeze is seen the moment it
/// completes rather than after a sleep of 50 µs or more (the timer slack
/// makes it 100+). On a file that never notifies (fixture trees) each wait
/// lasts the pause, as in [`poll`].
pub(crate) fn poll_watching(
    watch: &Path,
    patience: Duration,
    mut done: impl FnMut(&str) -> bool,
) -> bool {
    let Ok(mut file) = fs::File::open(watch) else {
        return poll(patience, || {
            fs::read_to_string(watch).is_ok_and(|t| done(&t))
        });
    };
    // Each check reads this descriptor, which also brings its view of the
    // file up to date: poll reports only changes after the last read.
    let mut text = String::new();
    let mut read = |file: &mut fs::File| {
        use io::{Read, Seek};
        text.clear();
        let _ = file.seek(io::SeekFrom::Start(0));
        let _ = file.read_to_string(&mut text);
        done(&text)
    };
    let deadline = Instant::now() + patience;
    let mut pause = Duration::from_micros(50);
    loop {
        if read(&mut file) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        wait_changed(&file, pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Waits up to `pause` for `POLLPRI` on `file` (`ppoll(2)`: poll(2)
/// counts whole milliseconds).
fn wait_changed(file: &fs::File, pause: Duration) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let mut fd = libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLPRI,
            revents: 0,
        };
        let ts = libc::timespec {
            tv_sec: pause.as_secs() as libc::time_t,
            // Below 10^9, so it fits a 32-bit c_long (armv7) too.
            tv_nsec: pause.subsec_nanos() as libc::c_long,
        };
        // SAFETY: one valid pollfd and a valid timespec, no signal mask.
        unsafe { libc::ppoll(&mut fd, 1, &ts, std::ptr::null()) };
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        thread::sleep(pause);
    }
}

/// The directories from the hierarchy root down to `root/rel`, inclusive.
pub(crate) fn chain(root: &Path, rel: &str) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        let next = out[out.len() - 1].join(part);
        out.push(next);
    }
    out
}

/// Fixture trees only: like the kernel, refuse (`EBUSY`) to remove a group
/// with processes or children, and otherwise drop its files so `rmdir`
/// can succeed.
#[cfg(test)]
fn empty_fixture_dir(dir: &Path) -> io::Result<()> {
    let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    let busy = !procs.trim().is_empty();
    let entries = fs::read_dir(dir)?.collect::<io::Result<Vec<_>>>()?;
    let children = entries.iter().any(|e| e.path().is_dir());
    if busy || children {
        return Err(io::Error::from_raw_os_error(libc::EBUSY));
    }
    for entry in entries {
        fs::remove_file(entry.path())?;
    }
    Ok(())
}

/// Fixture trees only: give a new directory the files the kernel would,
/// copied from its parent. Task lists and `subtree_control` start empty,
/// `cgroup.controllers` is the parent's `subtree_control`, and v1
/// `cpuset.cpus`/`cpuset.mems` start empty as on a real kernel.
#[cfg(test)]
fn populate_like_parent(dir: &Path) -> io::Result<()> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    let v1 = !parent.join("cgroup.subtree_control").exists();
    for entry in fs::read_dir(parent)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let content = match &*name {
            "cgroup.procs" | "tasks" | "cgroup.subtree_control" => String::new(),
            "cpuset.cpus" | "cpuset.mems" if v1 => String::new(),
            "cgroup.controllers" => fs::read_to_string(parent.join("cgroup.subtree_control"))?
                .split_whitespace()
                .map(|c| c.trim_start_matches('+'))
                .collect::<Vec<_>>()
                .join(" "),
            _ => fs::read_to_string(entry.path())?,
        };
        fs::write(dir.join(&*name), content)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_files() {
        let events = "low 0\nhigh 3\nmax 0\noom 1\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(keyed(events, "oom_kill"), Some(2));
        assert_eq!(keyed(events, "oom"), Some(1));
        assert_eq!(keyed(events, "nope"), None);
        assert_eq!(keyed("max 7", "max"), Some(7));
    }

    #[test]
    fn write_never_creates_files() {
        let dir = tempfile::tempdir().unwrap();
        let err = write(&dir.path().join("memory.mxa"), "1").unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENOENT));
        fs::write(dir.path().join("memory.max"), "max\n").unwrap();
        write(&dir.path().join("memory.max"), "12").unwrap();
        assert_eq!(read(&dir.path().join("memory.max")).unwrap(), "12");
    }

    #[test]
    fn chain_lists_root_to_leaf() {
        let c = chain(Path::new("/r"), "/x/y/");
        assert_eq!(c, [Path::new("/r"), Path::new("/r/x"), Path::new("/r/x/y")]);
    }

    #[test]
    fn rmdir_of_missing_dir_is_ok() {
        let dir = tempfile::tempdir().unwrap();
        rmdir(&dir.path().join("gone"), Duration::ZERO).unwrap();
    }

    #[test]
    fn poll_watching_checks_until_done_and_gives_up_after_patience() {
        let dir = tempfile::tempdir().unwrap();
        let events = dir.path().join("cgroup.events");
        std::fs::write(&events, "populated 1\nfrozen 0\n").unwrap();
        // A regular file never notifies: each wait is the pause.
        let mut checks = 0;
        assert!(poll_watching(&events, Duration::from_secs(5), |text| {
            assert!(text.contains("frozen 0"), "{text}");
            checks += 1;
            checks == 3
        }));
        assert_eq!(checks, 3);
        assert!(!poll_watching(&events, Duration::from_millis(2), |_| false));
        // No file to watch: the plain backoff.
        let missing = dir.path().join("missing");
        let mut checks = 0;
        assert!(!poll_watching(&missing, Duration::from_millis(2), |_| {
            checks += 1;
            true
        }));
        assert_eq!(checks, 0, "no text to check");
    }
}
