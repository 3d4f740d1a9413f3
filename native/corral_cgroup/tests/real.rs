//! Real-kernel tests: create groups under this process's own cgroup in each
//! hierarchy, put `sleep` children in them, and tear everything down.
//!
//! They need writable cgroups (root, or a delegated subtree). Where there
//! are none they say why on stderr and return; on the project's hybrid test
//! machine they run.

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use corral_cgroup::{Containment, CpuMax, Error, Group, Layout, Limits, Max, Placement, System};

/// Kills our children and removes the group even when an assertion fails.
struct Guard {
    children: Vec<Child>,
    group: Option<Group>,
}

impl Guard {
    fn group(&self) -> &Group {
        self.group.as_ref().expect("group present until teardown")
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(g) = self.group.take() {
            let _ = g.thaw();
            let _ = g.kill();
            if let Err(e) = g.remove() {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

/// The detected system and a first group, or `None` (with the reason on
/// stderr) where cgroups cannot be used.
fn setup(limits: &Limits) -> Option<(System, Guard)> {
    let sys = match System::detect() {
        Ok(sys) => sys,
        Err(e) => {
            eprintln!("SKIPPED: no cgroups on this host: {e}");
            return None;
        }
    };
    match Group::create(&sys, &Placement::Default, limits, &[], &[]) {
        Ok(g) => Some((
            sys,
            Guard {
                children: Vec::new(),
                group: Some(g),
            },
        )),
        Err(e) if e.is_unavailable() => {
            eprintln!("SKIPPED: cgroups are not writable here: {e}");
            None
        }
        Err(e) => panic!("create: {e}"),
    }
}

fn sleeper() -> Child {
    Command::new("sleep")
        .arg("1000")
        .spawn()
        .expect("spawn sleep")
}

/// `/proc/<pid>/cgroup` as (sorted controllers, path).
fn proc_cgroup(pid: u32) -> Vec<(Vec<String>, String)> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("read /proc/pid/cgroup");
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let _ = parts.next()?;
            let mut ctrls: Vec<String> = parts
                .next()?
                .split(',')
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect();
            ctrls.sort();
            Some((ctrls, parts.next()?.to_owned()))
        })
        .collect()
}

/// Asserts `pid` is in each of the group's directories, per /proc/<pid>/cgroup.
fn assert_member(sys: &System, g: &Group, pid: u32) {
    let lines = proc_cgroup(pid);
    for dir in g.dirs() {
        let (ctrls, mount) = sys
            .v2()
            .into_iter()
            .chain(sys.v1())
            .filter(|h| dir.starts_with(&h.mount_point))
            .max_by_key(|h| h.mount_point.as_os_str().len())
            .map(|h| (h.controllers.clone(), h.mount_point.clone()))
            .expect("directory belongs to a hierarchy");
        let want = format!("/{}", dir.strip_prefix(&mount).unwrap().display());
        let got = lines
            .iter()
            .find(|(c, _)| *c == ctrls)
            .map(|(_, p)| p.clone());
        assert_eq!(
            got.as_deref(),
            Some(want.as_str()),
            "pid {pid} in {ctrls:?}: {lines:?}"
        );
    }
}

/// True once `pid` no longer exists (`kill(pid, 0)` gives ESRCH).
fn gone(pid: u32) -> bool {
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    nix::sys::signal::kill(pid, None) == Err(nix::errno::Errno::ESRCH)
}

fn assert_removed(dirs: &[PathBuf]) {
    for d in dirs {
        let parent = d.parent().unwrap();
        let name = d.file_name().unwrap();
        let listing: Vec<_> = fs::read_dir(parent)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            !listing.iter().any(|n| n == name),
            "{} left behind",
            d.display()
        );
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_owned()
}

#[test]
fn default_group_lifecycle() {
    // A memory limit from the start: on hybrid, v1 hierarchies are joined
    // only for the limits a group is created with.
    let initial = Limits {
        memory_max: Some(Max::Limit(256 << 20)),
        pids_max: Some(Max::Limit(1000)),
        ..Limits::default()
    };
    let Some((sys, mut guard)) = setup(&initial) else {
        return;
    };
    let g = guard.group();
    if sys.layout() == Layout::Hybrid {
        assert_eq!(g.containment(), Containment::Hybrid);
    }
    let child = sleeper();
    let pid = child.id();
    guard.children.push(child);
    let g = guard.group();
    g.add(pid as i32).unwrap();
    assert_eq!(g.pids().unwrap(), [pid as i32]);
    assert_member(&sys, g, pid);

    // Limits: memory goes to v1 files on hybrid, in whichever order v1's
    // limit <= memsw rule allows (down, up, down again).
    for mib in [64u64, 128, 32] {
        g.set(&Limits {
            memory_max: Some(Max::Limit(mib << 20)),
            ..Limits::default()
        })
        .unwrap();
        assert_eq!(g.get("memory_max").unwrap(), (mib << 20).to_string());
        if let Some(mem) = sys
            .v1_for("memory")
            .filter(|_| sys.layout() != Layout::Unified)
        {
            let dir = g
                .dirs()
                .into_iter()
                .find(|d| d.starts_with(&mem.mount_point))
                .unwrap();
            assert_eq!(
                read(&dir.join("memory.limit_in_bytes")),
                (mib << 20).to_string()
            );
            if dir.join("memory.memsw.limit_in_bytes").exists() {
                assert_eq!(
                    read(&dir.join("memory.memsw.limit_in_bytes")),
                    (mib << 20).to_string()
                );
            }
        }
    }

    let s = g.stats();
    eprintln!("stats: {s:?}");
    assert_eq!(s.pids_current, Some(1));
    assert!(
        s.memory_current.is_some() && s.cpu_usage_usec.is_some(),
        "{s:?}"
    );

    g.freeze().unwrap();
    let state = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    eprintln!(
        "frozen: {}",
        state
            .lines()
            .find(|l| l.starts_with("State:"))
            .unwrap_or("")
    );
    if let Ok(events) = g.read("cgroup.events") {
        assert!(events.contains("frozen 1"), "{events}");
    }
    g.thaw().unwrap();
    if let Ok(events) = g.read("cgroup.events") {
        assert!(events.contains("frozen 0"), "{events}");
    }

    g.kill().unwrap();
    let status = guard.children[0].wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(gone(pid));
    guard.children.clear();

    let g = guard.group.take().unwrap();
    let dirs = g.dirs();
    g.remove().unwrap();
    assert_removed(&dirs);
}

#[test]
fn limits_are_written_to_kernel_files() {
    let limits = Limits {
        memory_max: Some(Max::Limit(64 << 20)),
        cpu_max: Some(CpuMax {
            quota_us: Max::Limit(50_000),
            period_us: 100_000,
        }),
        cpu_weight: Some(50),
        pids_max: Some(Max::Limit(20)),
        cpuset_cpus: Some("0".into()),
        ..Limits::default()
    };
    let Some((sys, mut guard)) = setup(&limits) else {
        return;
    };
    let g = guard.group();
    for (key, want) in [
        ("memory_max", "67108864"),
        ("cpu_max", "50000 100000"),
        ("cpu_weight", "50"),
        ("pids_max", "20"),
        ("cpuset_cpus", "0"),
    ] {
        assert_eq!(g.get(key).unwrap(), want, "{key}");
    }
    if sys.layout() != Layout::Unified {
        assert_eq!(g.read("cpu.shares").unwrap().trim(), "512");
        assert_eq!(g.read("cpu.cfs_quota_us").unwrap().trim(), "50000");
        assert!(
            !g.read("cpuset.mems").unwrap().trim().is_empty(),
            "v1 cpuset initialised from the parent"
        );
        // A child can join: cpuset is usable.
        let child = sleeper();
        let pid = child.id();
        guard.children.push(child);
        guard.group().add(pid as i32).unwrap();
        assert_member(&sys, guard.group(), pid);
        // No v1 equivalent: a clear error naming the key.
        let err = Group::create(
            &sys,
            &Placement::Default,
            &Limits {
                memory_min: Some(Max::Limit(1)),
                ..Limits::default()
            },
            &[],
            &[],
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::Unsupported { key, .. } if key == "memory_min"),
            "{err}"
        );
    }
    let dirs = guard.group().dirs();
    drop(guard);
    assert_removed(&dirs);
}

/// The child joins between fork and exec by writing `0` into pre-opened
/// `cgroup.procs` files, as the helper does, so even its first fork is
/// counted against `pids_max`.
#[test]
fn child_joins_before_exec_and_pids_max_holds() {
    let limits = Limits {
        pids_max: Some(Max::Limit(3)),
        ..Limits::default()
    };
    let Some((sys, mut guard)) = setup(&limits) else {
        return;
    };
    // The shell waits for a line before its fork storm, so it is certainly
    // alive (an exiting task shows `/` in every v1 hierarchy) when checked.
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "read go; for i in 1 2 3 4 5 6; do sleep 1000 & done; wait",
    ]);
    cmd.stdin(std::process::Stdio::piped());
    let mut child = spawn_in(guard.group(), cmd);
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    guard.children.push(child);
    assert_member(&sys, guard.group(), pid);
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(5);
    let hits = loop {
        let s = guard.group().stats();
        if s.pids_limit_hits.unwrap_or(0) > 0 || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    eprintln!("stats: {hits:?}");
    assert!(hits.pids_limit_hits.unwrap_or(0) > 0, "{hits:?}");
    assert!(guard.group().pids().unwrap().len() <= 3);
    let members = guard.group().pids().unwrap();
    guard.group().kill().unwrap();
    let _ = guard.children[0].wait();
    guard.children.clear();
    // Grandchildren were reparented; they are gone or zombies awaiting init.
    for p in members {
        let state = fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        assert!(
            gone(p as u32) || state.contains(") Z"),
            "pid {p} survived: {state}"
        );
    }
    let g = guard.group.take().unwrap();
    let dirs = g.dirs();
    g.remove().unwrap();
    assert_removed(&dirs);
}

/// Spawns `cmd` so that it joins `group` between fork and exec, by writing
/// `0` into pre-opened `cgroup.procs` files, as the helper does.
fn spawn_in(group: &Group, mut cmd: Command) -> Child {
    let files: Vec<File> = group
        .procs_files()
        .iter()
        .map(|p| fs::OpenOptions::new().write(true).open(p).unwrap())
        .collect();
    let fds: Vec<i32> = files.iter().map(|f| f.as_raw_fd()).collect();
    // SAFETY: the closure only calls write(2), which is async-signal-safe,
    // on descriptors opened before fork, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            for fd in &fds {
                if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.spawn().expect("spawn joined child")
}

/// `tail /dev/zero` keeps an ever longer "line" in memory: under
/// `memory_max` it is OOM-killed, and the kill is counted. On v1 memsw
/// gets the same limit, so swap is no way out.
#[test]
fn oom_kill_is_counted() {
    let limits = Limits {
        memory_max: Some(Max::Limit(32 << 20)),
        ..Limits::default()
    };
    let Some((_sys, mut guard)) = setup(&limits) else {
        return;
    };
    let mut cmd = Command::new("tail");
    cmd.arg("/dev/zero");
    let child = spawn_in(guard.group(), cmd);
    guard.children.push(child);
    let status = guard.children[0].wait().unwrap();
    guard.children.clear();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    let s = guard.group().stats();
    eprintln!("stats: {s:?}");
    assert!(s.oom_kills.unwrap_or(0) >= 1, "{s:?}");
    let peak = s.peak_memory.expect("peak memory");
    assert!(peak > (16 << 20) && peak <= (32 << 20), "{s:?}");
    let g = guard.group.take().unwrap();
    let dirs = g.dirs();
    g.remove().unwrap();
    assert_removed(&dirs);
}
