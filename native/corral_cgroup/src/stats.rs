//! Best-effort statistics of a [`Group`], from whichever files its
//! hierarchies have: v2 first, then v1.
//!
//! v2 files are described in `Documentation/admin-guide/cgroup-v2.rst`
//! (`memory.events`, `memory.peak`, `cpu.stat`, `pids.events`, `pids.peak`);
//! v1 files in `Documentation/admin-guide/cgroup-v1/memory.rst`
//! (`memory.oom_control`, `memory.max_usage_in_bytes`) and
//! `cgroup-v1/cpuacct.rst` (`cpuacct.usage` in ns, `cpuacct.stat` in
//! `USER_HZ` ticks).

use std::path::Path;

use crate::fs;
use crate::group::Group;

/// Counters and peaks of a group. `None` where the kernel does not report
/// the value for this group (controller not joined, older kernel).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Processes killed by the OOM killer (`oom_kill`).
    pub oom_kills: Option<u64>,
    /// Forks refused because of `pids_max` (`pids.events` `max`).
    pub pids_limit_hits: Option<u64>,
    /// Peak memory use in bytes.
    pub peak_memory: Option<u64>,
    /// Current memory use in bytes.
    pub memory_current: Option<u64>,
    /// Total CPU time in microseconds.
    pub cpu_usage_usec: Option<u64>,
    /// User CPU time in microseconds.
    pub user_usec: Option<u64>,
    /// System CPU time in microseconds.
    pub system_usec: Option<u64>,
    /// Current number of tasks.
    pub pids_current: Option<u64>,
    /// Peak number of tasks (Linux 6.1+ for v1 and v2 `pids.peak`).
    pub peak_pids: Option<u64>,
}

impl Group {
    /// Reads the group's statistics. Best effort: files that are missing or
    /// unreadable give `None`.
    ///
    /// A controller bound to a v1 hierarchy is not in the v2 tree (hybrid
    /// layouts), so its v2 files are not looked for: on this layout that
    /// saves six failed opens at the end of every run.
    pub fn stats(&self) -> Stats {
        let v2 = self.v2.as_ref().map(|d| d.path.as_path());
        let in_v2 = |c: &str| v2.filter(|_| c == "cpu" || self.sys.v1_for(c).is_none());
        collect(&in_v2, &|c| self.v1_dir(c))
    }
}

/// `USER_HZ`: the unit of v1 `cpuacct.stat`.
fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions and only reads configuration.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(hz).ok().filter(|hz| *hz > 0).unwrap_or(100)
}

/// Collects [`Stats`] from the v2 directory that may hold a controller's
/// files (`v2("memory")`; `"cpu"` for the core `cpu.stat`) and the v1
/// directory of each controller (`v1("memory")`).
pub(crate) fn collect<'a, 'b>(
    v2: &dyn Fn(&str) -> Option<&'b Path>,
    v1: &dyn Fn(&str) -> Option<&'a Path>,
) -> Stats {
    let in_v2 = |file: &str| {
        let controller = file.split('.').next().unwrap_or(file);
        v2(controller).and_then(|d| std::fs::read_to_string(d.join(file)).ok())
    };
    let in_v1 =
        |ctrl: &str, file: &str| v1(ctrl).and_then(|d| std::fs::read_to_string(d.join(file)).ok());
    let num = |text: Option<String>| text.and_then(|t| t.trim().parse().ok());
    let keyed = |text: Option<String>, key| text.and_then(|t| fs::keyed(&t, key));

    let cpu_stat = in_v2("cpu.stat").filter(|t| fs::keyed(t, "usage_usec").is_some());
    let (cpu_usage_usec, user_usec, system_usec) = match cpu_stat {
        Some(t) => (
            fs::keyed(&t, "usage_usec"),
            fs::keyed(&t, "user_usec"),
            fs::keyed(&t, "system_usec"),
        ),
        None => {
            let ticks = in_v1("cpuacct", "cpuacct.stat");
            let usec = |n: u64| n.saturating_mul(1_000_000) / clock_ticks();
            (
                num(in_v1("cpuacct", "cpuacct.usage")).map(|ns: u64| ns / 1000),
                keyed(ticks.clone(), "user").map(usec),
                keyed(ticks, "system").map(usec),
            )
        }
    };
    Stats {
        oom_kills: keyed(in_v2("memory.events"), "oom_kill")
            .or_else(|| keyed(in_v1("memory", "memory.oom_control"), "oom_kill")),
        pids_limit_hits: keyed(in_v2("pids.events"), "max")
            .or_else(|| keyed(in_v1("pids", "pids.events"), "max")),
        peak_memory: num(in_v2("memory.peak"))
            .or_else(|| num(in_v1("memory", "memory.max_usage_in_bytes"))),
        memory_current: num(in_v2("memory.current"))
            .or_else(|| num(in_v1("memory", "memory.usage_in_bytes"))),
        cpu_usage_usec,
        user_usec,
        system_usec,
        pids_current: num(in_v2("pids.current")).or_else(|| num(in_v1("pids", "pids.current"))),
        peak_pids: num(in_v2("pids.peak")).or_else(|| num(in_v1("pids", "pids.peak"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs as stdfs;

    fn write_all(dir: &Path, files: &[(&str, &str)]) {
        for (f, c) in files {
            stdfs::write(dir.join(f), c).unwrap();
        }
    }

    #[test]
    fn v2_stats() {
        let t = tempfile::tempdir().unwrap();
        write_all(
            t.path(),
            &[
                (
                    "memory.events",
                    "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n",
                ),
                ("memory.peak", "67108864\n"),
                ("memory.current", "4096\n"),
                (
                    "cpu.stat",
                    "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 0\n",
                ),
                ("pids.events", "max 3\n"),
                ("pids.current", "2\n"),
                ("pids.peak", "20\n"),
            ],
        );
        let s = collect(&|_| Some(t.path()), &|_| None);
        assert_eq!(
            s,
            Stats {
                oom_kills: Some(1),
                pids_limit_hits: Some(3),
                peak_memory: Some(64 << 20),
                memory_current: Some(4096),
                cpu_usage_usec: Some(1500),
                user_usec: Some(1000),
                system_usec: Some(500),
                pids_current: Some(2),
                peak_pids: Some(20),
            }
        );
    }

    #[test]
    fn v1_stats_and_hybrid_cpu_from_v2() {
        let t = tempfile::tempdir().unwrap();
        let (mem, pids, acct, uni) = (
            t.path().join("m"),
            t.path().join("p"),
            t.path().join("a"),
            t.path().join("u"),
        );
        for d in [&mem, &pids, &acct, &uni] {
            stdfs::create_dir(d).unwrap();
        }
        write_all(
            &mem,
            &[
                (
                    "memory.oom_control",
                    "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
                ),
                ("memory.max_usage_in_bytes", "1048576\n"),
                ("memory.usage_in_bytes", "8192\n"),
            ],
        );
        write_all(
            &pids,
            &[("pids.events", "max 0\n"), ("pids.current", "1\n")],
        );
        let hz = clock_ticks();
        write_all(
            &acct,
            &[
                ("cpuacct.usage", "2500000\n"),
                (
                    "cpuacct.stat",
                    &format!("user {}\nsystem {}\n", hz * 2, hz / 2),
                ),
            ],
        );
        let v1 = |c: &str| match c {
            "memory" => Some(mem.as_path()),
            "pids" => Some(pids.as_path()),
            "cpuacct" => Some(acct.as_path()),
            _ => None,
        };
        let s = collect(&|_| None, &v1);
        assert_eq!(s.oom_kills, Some(2));
        assert_eq!(s.peak_memory, Some(1 << 20));
        assert_eq!(s.memory_current, Some(8192));
        assert_eq!(s.pids_limit_hits, Some(0));
        assert_eq!(s.pids_current, Some(1));
        assert_eq!(s.peak_pids, None);
        assert_eq!(s.cpu_usage_usec, Some(2500));
        assert_eq!(s.user_usec, Some(2_000_000));
        assert_eq!(s.system_usec, Some(1_000_000 * (hz / 2) / hz));

        // Hybrid: a v2 directory with only core files still gives CPU time,
        // memory comes from v1.
        write_all(
            &uni,
            &[("cpu.stat", "usage_usec 7\nuser_usec 4\nsystem_usec 3\n")],
        );
        let s = collect(&|_| Some(uni.as_path()), &v1);
        assert_eq!(
            (s.cpu_usage_usec, s.user_usec, s.system_usec),
            (Some(7), Some(4), Some(3))
        );
        assert_eq!(s.oom_kills, Some(2));
    }

    #[test]
    fn nothing_readable_is_all_none() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(collect(&|_| Some(t.path()), &|_| None), Stats::default());
    }

    #[test]
    fn stats_combine_v2_cpu_and_v1_memory_in_hybrid() {
        let fx = crate::fixture::hybrid();
        let limits = crate::Limits {
            memory_max: Some(crate::Max::Limit(64 << 20)),
            pids_max: Some(crate::Max::Limit(20)),
            ..crate::Limits::default()
        };
        let g = Group::create(&fx.sys, &crate::Placement::Default, &limits, &[], &[]).unwrap();
        std::fs::write(
            g.dirs()[0].join("cpu.stat"),
            "usage_usec 10\nuser_usec 6\nsystem_usec 4\n",
        )
        .unwrap();
        let mem = g.v1_dir("memory").unwrap();
        std::fs::write(
            mem.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        )
        .unwrap();
        std::fs::write(mem.join("memory.max_usage_in_bytes"), "67108864\n").unwrap();
        // memory is bound to v1 here: a memory file in the v2 directory is
        // not the kernel's, and is not read.
        std::fs::write(g.dirs()[0].join("memory.peak"), "1\n").unwrap();
        let s = g.stats();
        assert_eq!(s.oom_kills, Some(1));
        assert_eq!(s.peak_memory, Some(64 << 20));
        assert_eq!(s.cpu_usage_usec, Some(10));
        assert_eq!(s.pids_limit_hits, Some(0));
    }
}
