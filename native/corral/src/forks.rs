//! Counting the tree's processes as they fork and exit, from the kernel's
//! process events connector (`Documentation/driver-api/connector.rst`,
//! `include/uapi/linux/cn_proc.h`), for `--max-processes` without a
//! cgroup: a fork bomb is seen at its first fork past the limit instead of
//! at the next poll of `/proc`.
//!
//! The connector needs `CAP_NET_ADMIN`; without it [`Forks::open`] fails
//! and the helper polls as before. Events are system-wide: the helper keeps
//! the set of its tree's process ids (thread-group ids), adds a child when
//! its parent is in the set and drops a process when it exits.

use std::collections::HashSet;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const NETLINK_CONNECTOR: libc::c_int = 11;
const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const PROC_CN_MCAST_IGNORE: u32 = 2;
const PROC_EVENT_FORK: u32 = 0x0000_0001;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;
/// `struct nlmsghdr`.
const NLMSG_HDR: usize = 16;
/// `struct cn_msg` without its data.
const CN_MSG: usize = 20;
/// `what`, `cpu`, `timestamp_ns` of `struct proc_event`.
const EVENT_HEAD: usize = 16;
/// Room for the events of a burst of forks before the kernel drops some.
const RCVBUF: libc::c_int = 8 << 20;

/// The subscription and the tree's live processes.
#[derive(Debug)]
pub struct Forks {
    fd: OwnedFd,
    members: HashSet<u32>,
    /// Events were lost (`ENOBUFS`): the set may be short and must be
    /// rebuilt from `/proc` by the caller.
    pub lost: bool,
    /// The most members seen at once.
    pub peak: u64,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// One connector control message: `op` for the process events.
fn control(fd: RawFd, op: u32) -> std::io::Result<()> {
    let len = NLMSG_HDR + CN_MSG + 4;
    let mut msg = Vec::with_capacity(len);
    msg.extend_from_slice(&(len as u32).to_ne_bytes()); // nlmsg_len
    msg.extend_from_slice(&(libc::NLMSG_DONE as u16).to_ne_bytes()); // nlmsg_type
    msg.extend_from_slice(&0u16.to_ne_bytes()); // nlmsg_flags
    msg.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_seq
    msg.extend_from_slice(&std::process::id().to_ne_bytes()); // nlmsg_pid
    msg.extend_from_slice(&CN_IDX_PROC.to_ne_bytes()); // id.idx
    msg.extend_from_slice(&CN_VAL_PROC.to_ne_bytes()); // id.val
    msg.extend_from_slice(&0u32.to_ne_bytes()); // seq
    msg.extend_from_slice(&0u32.to_ne_bytes()); // ack
    msg.extend_from_slice(&4u16.to_ne_bytes()); // len
    msg.extend_from_slice(&0u16.to_ne_bytes()); // flags
    msg.extend_from_slice(&op.to_ne_bytes());
    // SAFETY: send(2) of a buffer we own, of its length.
    let n = unsafe { libc::send(fd, msg.as_ptr().cast(), msg.len(), 0) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

impl Forks {
    /// Subscribes to process events. Call it before the child is spawned,
    /// so no fork of the tree comes before the subscription.
    ///
    /// # Errors
    /// The socket errors; `EPERM` without `CAP_NET_ADMIN`.
    pub fn open() -> std::io::Result<Forks> {
        // SAFETY: socket(2) with constant arguments; the result is checked.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                NETLINK_CONNECTOR,
            )
        };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh fd we own from here on.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: an all-zero sockaddr_nl is valid; we set what matters.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        addr.nl_groups = CN_IDX_PROC;
        // SAFETY: bind(2) with a sockaddr_nl we own and its size.
        let rc = unsafe {
            libc::bind(
                raw,
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
            // SAFETY: setsockopt(2) with an int we own; failure only
            // means a smaller buffer.
            let rc = unsafe {
                libc::setsockopt(
                    raw,
                    libc::SOL_SOCKET,
                    opt,
                    (&RCVBUF as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc == 0 {
                break;
            }
        }
        control(raw, PROC_CN_MCAST_LISTEN)?;
        Ok(Forks {
            fd,
            members: HashSet::new(),
            lost: false,
            peak: 0,
        })
    }

    /// Starts counting the tree rooted at `pid`, the child just spawned.
    pub fn track(&mut self, pid: i32) {
        self.members.clear();
        self.members.insert(pid as u32);
        self.peak = self.peak.max(1);
    }

    /// Replaces the set with the members a `/proc` scan found, after
    /// events were lost.
    pub fn resync(&mut self, pids: impl IntoIterator<Item = i32>) {
        self.members = pids.into_iter().map(|p| p as u32).collect();
        self.lost = false;
    }

    /// Live processes of the tree, as the events tell.
    pub fn count(&self) -> u64 {
        self.members.len() as u64
    }

    /// Reads every pending event and updates the set. Never blocks.
    pub fn read(&mut self) {
        let mut buf = [0u8; 16 << 10];
        loop {
            // SAFETY: recv(2) into a buffer we own, of its length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                match std::io::Error::last_os_error().raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::ENOBUFS) => {
                        self.lost = true;
                        continue;
                    }
                    _ => return,
                }
            }
            if n == 0 {
                return;
            }
            self.parse(&buf[..n as usize]);
        }
    }

    /// Handles the netlink messages in one datagram.
    fn parse(&mut self, mut b: &[u8]) {
        while let Some(len) = u32_at(b, 0).map(|l| l as usize) {
            if len < NLMSG_HDR || len > b.len() {
                return;
            }
            self.event(&b[NLMSG_HDR..len]);
            // Messages are aligned to 4 bytes (NLMSG_ALIGN).
            let next = (len + 3) & !3;
            b = b.get(next..).unwrap_or(&[]);
        }
    }

    /// One `cn_msg` carrying one `proc_event`.
    fn event(&mut self, cn: &[u8]) {
        let ev = cn.get(CN_MSG..).unwrap_or(&[]);
        let data = EVENT_HEAD;
        match u32_at(ev, 0) {
            Some(PROC_EVENT_FORK) => {
                // parent_pid, parent_tgid, child_pid, child_tgid
                let (Some(parent), Some(pid), Some(tgid)) = (
                    u32_at(ev, data + 4),
                    u32_at(ev, data + 8),
                    u32_at(ev, data + 12),
                ) else {
                    return;
                };
                // A new thread is not a new process.
                if pid == tgid && self.members.contains(&parent) {
                    self.members.insert(pid);
                    self.peak = self.peak.max(self.members.len() as u64);
                }
            }
            Some(PROC_EVENT_EXIT) => {
                // process_pid, process_tgid, ...
                if let (Some(pid), Some(tgid)) = (u32_at(ev, data), u32_at(ev, data + 4)) {
                    if pid == tgid {
                        self.members.remove(&pid);
                    }
                }
            }
            _ => {}
        }
    }
}

impl AsRawFd for Forks {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Drop for Forks {
    fn drop(&mut self) {
        // Kernels that count listeners stop sending when nobody listens.
        let _ = control(self.fd.as_raw_fd(), PROC_CN_MCAST_IGNORE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forks_and_exits_of_the_tree_are_counted() {
        let Ok(mut forks) = Forks::open() else {
            // The connector needs CAP_NET_ADMIN; the helper then polls.
            assert_ne!(nix::unistd::geteuid().as_raw(), 0, "root may subscribe");
            return;
        };
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 0.2 & sleep 0.2 & sleep 0.2 & read x"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("spawn sh");
        forks.track(child.id() as i32);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while forks.peak < 4 && std::time::Instant::now() < deadline {
            forks.read();
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert_eq!(forks.peak, 4, "sh and its three sleeps");
        drop(child.stdin.take());
        child.wait().expect("reaped");
        while forks.count() > 0 && std::time::Instant::now() < deadline {
            forks.read();
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert_eq!(forks.count(), 0, "every exit was seen");
    }
}
