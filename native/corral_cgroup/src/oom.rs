//! Being told when the OOM killer acts in a [`Group`], without polling.
//!
//! - v2 (`Documentation/admin-guide/cgroup-v2.rst`, "memory.events"): a
//!   change of a value in `memory.events` generates a file-modified event,
//!   so an `inotify(7)` watch on it wakes the reader, who then checks the
//!   `oom_kill` count ([`Group::oom_kills`]).
//! - v1 (`Documentation/admin-guide/cgroup-v1/memory.rst`, "OOM Control"):
//!   an `eventfd(2)` registered through `cgroup.event_control` for
//!   `memory.oom_control` counts up each time the group is under OOM, which
//!   with the OOM killer enabled means it is about to kill a member.
//!
//! Either way [`OomWatch`] is one non-blocking fd for an event loop.

#[cfg(target_os = "linux")]
use std::fs::File;
use std::io;
#[cfg(target_os = "linux")]
use std::os::fd::FromRawFd;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
#[cfg(target_os = "linux")]
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{IoContext, Result};
use crate::fs;
use crate::group::Group;

/// What an [`OomWatch`]'s fd is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OomSignal {
    /// v2: `memory.events` changed; look at [`Group::oom_kills`].
    EventsChanged,
    /// v1: the group went under OOM; the kernel is killing a member.
    UnderOom,
}

/// A readable fd that fires when the OOM killer may have acted in a group.
#[derive(Debug)]
pub struct OomWatch {
    fd: OwnedFd,
    kind: OomSignal,
}

impl OomWatch {
    /// What a readable fd means.
    pub fn kind(&self) -> OomSignal {
        self.kind
    }

    /// Reads and drops whatever is pending, so the fd only fires again on
    /// the next event. Never blocks.
    pub fn drain(&self) {
        let mut buf = [0u8; 4096];
        // SAFETY: read(2) into a buffer we own, of its length; the fd is
        // non-blocking, so this ends at EAGAIN.
        while unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
    }
}

impl AsRawFd for OomWatch {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(target_os = "linux")]
fn last_os_error<T>(what: &'static str, path: &Path) -> Result<T> {
    Err(io::Error::last_os_error()).at(what, path)
}

impl Group {
    /// OOM kills in the group so far: v2 `memory.events` `oom_kill`, else
    /// v1 `memory.oom_control` `oom_kill`. `None` when the group has no
    /// memory controller or the kernel does not count kills.
    pub fn oom_kills(&self) -> Option<u64> {
        let keyed = |p: &Path| {
            std::fs::read_to_string(p)
                .ok()
                .and_then(|t| fs::keyed(&t, "oom_kill"))
        };
        self.v2
            .as_ref()
            .and_then(|d| keyed(&d.path.join("memory.events")))
            .or_else(|| {
                self.v1_dir("memory")
                    .and_then(|d| keyed(&d.join("memory.oom_control")))
            })
    }

    /// A watch on the group's OOM events: the v2 `memory.events` when the
    /// group's v2 directory has the memory controller, else the v1 memory
    /// hierarchy's OOM notification. `None` when the group has neither.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Io`] from `inotify_init1(2)`, `inotify_add_watch(2)`,
    /// `eventfd(2)` or the `cgroup.event_control` write.
    pub fn oom_watch(&self) -> Result<Option<OomWatch>> {
        if let Some(events) = self
            .v2
            .as_ref()
            .map(|d| d.path.join("memory.events"))
            .filter(|p| p.exists())
        {
            return watch_events(&events).map(Some);
        }
        match self.v1_dir("memory") {
            Some(dir) => register_v1(dir).map(Some),
            None => Ok(None),
        }
    }
}

// inotify(7) and eventfd(2) are Linux's; elsewhere there is no cgroupfs,
// so no `Group` to watch, and these are never reached.
#[cfg(not(target_os = "linux"))]
fn watch_events(events: &Path) -> Result<OomWatch> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS)).at("inotify_init1", events)
}

#[cfg(not(target_os = "linux"))]
fn register_v1(dir: &Path) -> Result<OomWatch> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS)).at("eventfd", dir)
}

#[cfg(target_os = "linux")]
fn watch_events(events: &Path) -> Result<OomWatch> {
    // SAFETY: inotify_init1 has no preconditions; the result is checked.
    let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    if raw < 0 {
        return last_os_error("inotify_init1", events);
    }
    // SAFETY: a fresh fd we own from here on.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut name = events.as_os_str().as_bytes().to_vec();
    name.push(0);
    // SAFETY: a NUL-terminated path we own and a valid inotify fd.
    let wd = unsafe { libc::inotify_add_watch(raw, name.as_ptr().cast(), libc::IN_MODIFY) };
    if wd < 0 {
        return last_os_error("inotify_add_watch", events);
    }
    Ok(OomWatch {
        fd,
        kind: OomSignal::EventsChanged,
    })
}

#[cfg(target_os = "linux")]
fn register_v1(dir: &Path) -> Result<OomWatch> {
    let control = dir.join("memory.oom_control");
    // SAFETY: eventfd has no preconditions; the result is checked.
    let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if raw < 0 {
        return last_os_error("eventfd", &control);
    }
    // SAFETY: a fresh fd we own from here on.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // The kernel keeps its own reference to the file once registered; the
    // registration ends when the eventfd is closed or the group removed.
    let oom_control = File::open(&control).at("open", &control)?;
    fs::write(
        &dir.join("cgroup.event_control"),
        &format!("{} {}", fd.as_raw_fd(), oom_control.as_raw_fd()),
    )?;
    Ok(OomWatch {
        fd,
        kind: OomSignal::UnderOom,
    })
}

#[cfg(test)]
mod tests {
    use crate::fixture;
    use crate::{Group, Limits, Max, Placement};

    fn readable(fd: &impl std::os::fd::AsRawFd) -> bool {
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd we own; zero timeout.
        unsafe { libc::poll(&mut p, 1, 0) == 1 }
    }

    #[test]
    fn v2_memory_events_change_wakes_the_watch() {
        let f = fixture::unified();
        let limits = Limits {
            memory_max: Some(Max::Limit(64 << 20)),
            ..Limits::default()
        };
        let g = Group::create(&f.sys, &Placement::Path("w".into()), &limits, &[], &[]).unwrap();
        let dir = g.v2_dir().unwrap().to_path_buf();
        assert_eq!(g.oom_kills(), Some(0));
        let w = g
            .oom_watch()
            .unwrap()
            .expect("a v2 group with memory has a watch");
        assert_eq!(w.kind(), super::OomSignal::EventsChanged);
        assert!(!readable(&w));
        std::fs::write(
            dir.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
        )
        .unwrap();
        assert!(readable(&w), "a write to memory.events must wake the watch");
        w.drain();
        assert!(!readable(&w));
        assert_eq!(g.oom_kills(), Some(1));
    }

    #[test]
    fn no_memory_controller_no_watch() {
        let f = fixture::unified();
        let g = Group::create(
            &f.sys,
            &Placement::Path("n".into()),
            &Limits::default(),
            &[],
            &[],
        )
        .unwrap();
        let events = g.v2_dir().unwrap().join("memory.events");
        let _ = std::fs::remove_file(events);
        assert!(g.oom_watch().unwrap().is_none());
    }
}
