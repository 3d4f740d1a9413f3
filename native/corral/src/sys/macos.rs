//! macOS's process table: `libproc` (`proc_listallpids`, `proc_pidinfo`).
//!
//! CPU time and resident size come from `PROC_PIDTASKINFO`, whose times
//! are Mach absolute time units (nanoseconds on Intel, converted with
//! `mach_timebase_info` on Apple silicon). A zombie has no task info left:
//! it counts as a member with no CPU, and what it used reaches the tree's
//! account when its parent reaps it (the helper's own `wait4` usage, or
//! the parent's, which macOS does not show per process: CPU of children a
//! member reaped itself is not counted).

use crate::tree::ProcStat;

/// `SSTOP` of `sys/proc.h`.
const SSTOP: u32 = 4;

fn bsd_info(pid: i32) -> Option<libc::proc_bsdinfo> {
    // SAFETY: an all-zero proc_bsdinfo is valid; proc_pidinfo writes at
    // most its size into it.
    let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
    // SAFETY: a buffer of `size` bytes we own.
    let n = unsafe {
        libc::proc_pidinfo(
            pid,
            libc::PROC_PIDTBSDINFO,
            0,
            (&mut info as *mut libc::proc_bsdinfo).cast(),
            size,
        )
    };
    (n == size).then_some(info)
}

fn task_info(pid: i32) -> Option<libc::proc_taskinfo> {
    // SAFETY: as for bsd_info.
    let mut info: libc::proc_taskinfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::proc_taskinfo>() as libc::c_int;
    // SAFETY: a buffer of `size` bytes we own.
    let n = unsafe {
        libc::proc_pidinfo(
            pid,
            libc::PROC_PIDTASKINFO,
            0,
            (&mut info as *mut libc::proc_taskinfo).cast(),
            size,
        )
    };
    (n == size).then_some(info)
}

/// `mach_timebase_info_data_t` of `mach/mach_time.h`; declared here, as
/// libc's copy is deprecated in favour of the `mach2` crate.
#[repr(C)]
struct Timebase {
    numer: u32,
    denom: u32,
}

extern "C" {
    fn mach_timebase_info(info: *mut Timebase) -> libc::c_int;
}

/// Mach absolute time units to clock ticks (the unit of [`ProcStat`]).
fn ticks(mach: u64) -> u64 {
    static BASE: std::sync::OnceLock<(u32, u32)> = std::sync::OnceLock::new();
    let (numer, denom) = *BASE.get_or_init(|| {
        let mut tb = Timebase { numer: 1, denom: 1 };
        // SAFETY: writes the struct we own.
        if unsafe { mach_timebase_info(&mut tb) } != 0 || tb.denom == 0 {
            return (1, 1);
        }
        (tb.numer, tb.denom)
    });
    let ns = u128::from(mach) * u128::from(numer) / u128::from(denom);
    let tick = crate::tree::clock_tick().as_nanos().max(1);
    u64::try_from(ns / tick).unwrap_or(u64::MAX)
}

/// Reads one process, if it still exists.
pub fn stat_of(pid: i32) -> Option<ProcStat> {
    let bsd = bsd_info(pid)?;
    let state = match bsd.pbi_status {
        libc::SZOMB => b'Z',
        SSTOP => b'T',
        _ => b'S',
    };
    let task = task_info(pid);
    let page = crate::tree::page_size();
    Some(ProcStat {
        pid,
        ppid: bsd.pbi_ppid as i32,
        pgrp: bsd.pbi_pgid as i32,
        state,
        utime: task.map_or(0, |t| ticks(t.pti_total_user)),
        stime: task.map_or(0, |t| ticks(t.pti_total_system)),
        cutime: 0,
        cstime: 0,
        rss_pages: task.map_or(0, |t| t.pti_resident_size / page),
    })
}

/// Every process on the system. Processes that vanish while being read
/// are skipped.
pub fn scan_all() -> Vec<ProcStat> {
    let mut pids: Vec<libc::pid_t> = Vec::new();
    for _ in 0..4 {
        // SAFETY: a null buffer asks for the count only.
        let n = unsafe { libc::proc_listallpids(std::ptr::null_mut(), 0) };
        if n <= 0 {
            return Vec::new();
        }
        // Room for processes started since.
        pids.resize(n as usize + 64, 0);
        let bytes = (pids.len() * std::mem::size_of::<libc::pid_t>()) as libc::c_int;
        // SAFETY: a buffer of `bytes` bytes we own.
        let got = unsafe { libc::proc_listallpids(pids.as_mut_ptr().cast(), bytes) };
        if got < 0 {
            return Vec::new();
        }
        if (got as usize) < pids.len() {
            pids.truncate(got as usize);
            break;
        }
    }
    pids.into_iter()
        .filter(|p| *p > 0)
        .filter_map(stat_of)
        .collect()
}

/// macOS shows no exited leader with live threads as a zombie.
pub fn has_live_threads(_pid: i32) -> bool {
    false
}

/// No per-process children list: the caller scans the whole table.
pub fn descendants(_root: i32) -> Option<Vec<ProcStat>> {
    None
}
