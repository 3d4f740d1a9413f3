//! `fork_tree [n]`: starts `n` (default 3) grandchildren, each through an
//! intermediate child. The first is daemonised the classic way: it calls
//! `setsid(2)`, leaving the process group, and its intermediate parent exits,
//! so it is orphaned out of the group. Prints `ready` and every live pid
//! (itself, the intermediates that stay, the grandchildren), then pauses.

use nix::sys::wait::waitpid;
use nix::unistd::{fork, getpid, pipe, read, setsid, write, ForkResult};
use std::os::fd::{AsRawFd, OwnedFd};

/// Runs in a freshly forked grandchild: report the pid, then wait forever.
fn grandchild(report: &OwnedFd, daemon: bool) -> ! {
    if daemon {
        setsid().expect("setsid");
    }
    let pid = getpid().as_raw().to_ne_bytes();
    assert_eq!(write(report, &pid).expect("report pid"), pid.len());
    corral_testbins::pause_forever()
}

fn main() {
    let n: usize = corral_testbins::arg_or(1, 3);
    let (report_r, report_w) = pipe().expect("pipe");
    let mut pids = vec![getpid().as_raw()];
    for i in 0..n {
        let daemon = i == 0;
        // SAFETY: this program has one thread, so the child may run any code.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                drop(report_r);
                // SAFETY: still single-threaded after the first fork.
                match unsafe { fork() }.expect("fork") {
                    ForkResult::Child => grandchild(&report_w, daemon),
                    ForkResult::Parent { .. } if daemon => std::process::exit(0),
                    ForkResult::Parent { .. } => corral_testbins::pause_forever(),
                }
            }
            ForkResult::Parent { child } => {
                if daemon {
                    // The intermediate exits at once; reap it so it is not
                    // left as a zombie that looks alive in /proc.
                    waitpid(child, None).expect("reap the intermediate");
                } else {
                    pids.push(child.as_raw());
                }
            }
        }
    }
    drop(report_w);
    for _ in 0..n {
        let mut buf = [0u8; 4];
        let mut got = 0;
        while got < buf.len() {
            match read(report_r.as_raw_fd(), &mut buf[got..]).expect("read pid") {
                0 => panic!("a grandchild died before reporting"),
                k => got += k,
            }
        }
        pids.push(i32::from_ne_bytes(buf));
    }
    corral_testbins::ready(&pids);
    corral_testbins::pause_forever()
}
