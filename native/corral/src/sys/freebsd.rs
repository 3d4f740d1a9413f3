//! FreeBSD's process table: `sysctl(3)` `kern.proc` (`kinfo_proc`), which
//! needs no mounted procfs. CPU times come from `ki_rusage` (the process's
//! own) and `ki_rusage_ch` (children it reaped); resident size from
//! `ki_rssize` pages.

use crate::tree::ProcStat;

fn ticks(t: libc::timeval) -> u64 {
    let us = (t.tv_sec as u64).saturating_mul(1_000_000) + t.tv_usec as u64;
    let tick = crate::tree::clock_tick().as_micros().max(1) as u64;
    us / tick
}

fn from_kinfo(k: &libc::kinfo_proc) -> ProcStat {
    let state = match k.ki_stat {
        libc::SZOMB => b'Z',
        libc::SSTOP => b'T',
        _ => b'S',
    };
    ProcStat {
        pid: k.ki_pid,
        ppid: k.ki_ppid,
        pgrp: k.ki_pgid,
        state,
        utime: ticks(k.ki_rusage.ru_utime),
        stime: ticks(k.ki_rusage.ru_stime),
        cutime: ticks(k.ki_rusage_ch.ru_utime),
        cstime: ticks(k.ki_rusage_ch.ru_stime),
        rss_pages: u64::try_from(k.ki_rssize).unwrap_or(0),
    }
}

/// The `kinfo_proc` records `kern.proc.<what>.<arg>` returns.
fn query(what: libc::c_int, arg: libc::c_int) -> Vec<libc::kinfo_proc> {
    let mib = [libc::CTL_KERN, libc::KERN_PROC, what, arg];
    let size = std::mem::size_of::<libc::kinfo_proc>();
    for _ in 0..4 {
        let mut len: libc::size_t = 0;
        // SAFETY: a null buffer asks for the size only.
        let rc = unsafe {
            libc::sysctl(
                mib.as_ptr(),
                mib.len() as libc::c_uint,
                std::ptr::null_mut(),
                &mut len,
                std::ptr::null(),
                0,
            )
        };
        if rc != 0 {
            return Vec::new();
        }
        // Room for processes started since.
        let cap = len / size + 16;
        let mut buf: Vec<libc::kinfo_proc> = Vec::with_capacity(cap);
        let mut len = cap * size;
        // SAFETY: a buffer of `len` bytes we own; the kernel writes whole
        // records and says how many bytes.
        let rc = unsafe {
            libc::sysctl(
                mib.as_ptr(),
                mib.len() as libc::c_uint,
                buf.as_mut_ptr().cast(),
                &mut len,
                std::ptr::null(),
                0,
            )
        };
        if rc == 0 {
            // SAFETY: the kernel initialised `len / size` records.
            unsafe { buf.set_len(len / size) };
            return buf;
        }
        if nix::errno::Errno::last() != nix::errno::Errno::ENOMEM {
            return Vec::new();
        }
    }
    Vec::new()
}

/// Every process on the system.
pub fn scan_all() -> Vec<ProcStat> {
    query(libc::KERN_PROC_PROC, 0)
        .iter()
        .map(from_kinfo)
        .collect()
}

/// Reads one process, if it still exists.
pub fn stat_of(pid: i32) -> Option<ProcStat> {
    query(libc::KERN_PROC_PID, pid).first().map(from_kinfo)
}

/// `kern.proc.proc` lists processes, not threads; a zombie is a zombie.
pub fn has_live_threads(_pid: i32) -> bool {
    false
}

/// No per-process children list: the caller scans the whole table.
pub fn descendants(_root: i32) -> Option<Vec<ProcStat>> {
    None
}
