//! Unit tests for `group.rs` and `control.rs` against fixture trees.

use super::*;
use crate::fixture::{self, Fixture};
use crate::limits::{CpuMax, Max};
use crate::Layout;
use std::time::Duration;

/// Every `corral-*` directory left anywhere in the fixture.
fn leftovers(fx: &Fixture) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                if e.file_name().to_string_lossy().starts_with("corral-") {
                    out.push(p.clone());
                }
                walk(&p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(fx.dir.path(), &mut out);
    out
}

fn create(fx: &Fixture, placement: &Placement, limits: &Limits) -> Result<Group> {
    Group::create(&fx.sys, placement, limits, &[], &[])
}

fn rel(fx: &Fixture, p: &Path) -> String {
    p.strip_prefix(fx.dir.path())
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn unified_default_group_lives_under_own_cgroup() {
    let fx = fixture::unified();
    let g = create(&fx, &Placement::Default, &Limits::default()).unwrap();
    assert_eq!(g.containment(), Containment::V2);
    let dirs = g.dirs();
    assert_eq!(dirs.len(), 1);
    let own = "sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope/corral-";
    assert!(rel(&fx, &dirs[0]).starts_with(own), "{dirs:?}");
    assert_eq!(g.procs_files(), [dirs[0].join("cgroup.procs")]);
    g.add(4242).unwrap();
    assert_eq!(
        std::fs::read_to_string(dirs[0].join("cgroup.procs")).unwrap(),
        "4242"
    );
    assert_eq!(g.pids().unwrap(), [4242]);
    let err = g.remove().unwrap_err();
    assert_eq!(
        err.errno(),
        Some(libc::EBUSY),
        "a populated group is busy: {err}"
    );
    assert!(dirs[0].is_dir());
}

#[test]
fn unified_limits_enable_controllers_and_write_v2_files() {
    let fx = fixture::unified();
    let mut limits = Limits::default();
    for (k, v) in [
        ("memory_max", "67108864"),
        ("pids_max", "20"),
        ("cpu_max", "50000 100000"),
        ("io_weight", "200"),
    ] {
        limits.set_str(k, v).unwrap();
    }
    let g = create(&fx, &Placement::Default, &limits).unwrap();
    let d = &g.dirs()[0];
    let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    assert_eq!(read("memory.max"), "67108864");
    assert_eq!(read("pids.max"), "20");
    assert_eq!(read("cpu.max"), "50000 100000");
    assert_eq!(read("io.weight"), "default 200");
    assert_eq!(read("memory.swap.max"), "max\n", "untouched");
    let scope = "sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope/cgroup.subtree_control";
    assert_eq!(fx.read(scope), "+cpu +io +memory +pids");
    assert_eq!(g.get("memory_max").unwrap(), "67108864");
    assert_eq!(g.get("io_weight").unwrap(), "200");
    g.remove().unwrap();
    assert!(leftovers(&fx).is_empty());
}

#[test]
fn unified_missing_controller_is_named_and_nothing_is_left() {
    let fx = fixture::unified();
    let err = Group::create(
        &fx.sys,
        &Placement::Default,
        &Limits::default(),
        &["hugetlb".into()],
        &[],
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::Controller { controller, .. } if controller == "hugetlb"),
        "{err}"
    );
    assert!(leftovers(&fx).is_empty());
}

#[test]
fn path_placement_creates_and_removes_only_what_it_made() {
    let fx = fixture::unified();
    std::fs::create_dir(fx.path("sys/fs/cgroup/jobs")).unwrap();
    // A real cgroup has one, and new children copy the parent's files.
    std::fs::write(fx.path("sys/fs/cgroup/jobs/cgroup.procs"), "").unwrap();
    let g = create(
        &fx,
        &Placement::Path("/jobs/corral-a/b".into()),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(g.dirs(), [fx.path("sys/fs/cgroup/jobs/corral-a/b")]);
    g.remove().unwrap();
    assert!(
        fx.path("sys/fs/cgroup/jobs").is_dir(),
        "existed before, left in place"
    );
    assert!(leftovers(&fx).is_empty());

    // An existing exact path is used and left alone.
    let g = create(&fx, &Placement::Path("jobs".into()), &Limits::default()).unwrap();
    g.remove().unwrap();
    assert!(fx.path("sys/fs/cgroup/jobs").is_dir());
}

#[test]
fn an_exact_path_serves_one_run_at_a_time() {
    let fx = fixture::unified();
    std::fs::create_dir(fx.path("sys/fs/cgroup/jobs")).unwrap();
    std::fs::write(fx.path("sys/fs/cgroup/jobs/cgroup.procs"), "").unwrap();
    let path = Placement::Path("/jobs/shared".into());
    let claimed = |p: &Placement| {
        let mut g = create(&fx, p, &Limits::default())?;
        g.claim().map(|()| g)
    };
    let first = claimed(&path).unwrap();
    let second = claimed(&path).unwrap_err();
    assert!(matches!(second, Error::InUse { .. }), "{second}");
    assert_eq!(second.errno(), Some(libc::EBUSY));
    assert!(second.to_string().contains("jobs/shared"), "{second}");
    drop(first);

    // Processes that are not a run's make it busy too.
    std::fs::create_dir(fx.path("sys/fs/cgroup/jobs/busy")).unwrap();
    std::fs::write(fx.path("sys/fs/cgroup/jobs/busy/cgroup.procs"), "1\n").unwrap();
    let busy = claimed(&Placement::Path("/jobs/busy".into()));
    assert!(matches!(busy, Err(Error::InUse { .. })), "{busy:?}");

    // Once the first run is gone, the path can be had again, and a group
    // made without a claim (Corral.Cgroup.create/2) takes no lock.
    let again = claimed(&path).unwrap();
    let unclaimed = create(&fx, &path, &Limits::default()).unwrap();
    drop(unclaimed);
    again.remove().unwrap();
}

#[test]
fn raw_writes_to_membership_files_are_refused() {
    let fx = fixture::hybrid();
    for file in crate::FORBIDDEN_RAW_FILES {
        let raw = [RawSet {
            controller: "memory".into(),
            file: (*file).into(),
            value: "1".into(),
        }];
        let r = Group::create(&fx.sys, &Placement::Default, &Limits::default(), &[], &raw);
        assert!(matches!(r, Err(Error::Invalid { .. })), "{file}: {r:?}");
    }
    assert!(leftovers(&fx).is_empty());
}

#[test]
fn base_placement_makes_fresh_children_and_shares_the_base() {
    let fx = fixture::unified();
    let a = create(
        &fx,
        &Placement::Base("corral-base".into()),
        &Limits::default(),
    )
    .unwrap();
    let b = create(
        &fx,
        &Placement::Base("/corral-base".into()),
        &Limits::default(),
    )
    .unwrap();
    assert_ne!(a.dirs(), b.dirs());
    for g in [&a, &b] {
        assert_eq!(
            g.dirs()[0].parent().unwrap(),
            fx.path("sys/fs/cgroup/corral-base")
        );
    }
    b.remove().unwrap();
    assert!(
        fx.path("sys/fs/cgroup/corral-base").is_dir(),
        "made by a, not b"
    );
    let c = create(
        &fx,
        &Placement::Base("corral-base".into()),
        &Limits::default(),
    )
    .unwrap();
    a.remove().unwrap();
    assert!(
        fx.path("sys/fs/cgroup/corral-base").is_dir(),
        "still used by c"
    );
    drop(c);
    crate::fs::rmdir(&fx.path("sys/fs/cgroup/corral-base"), Duration::ZERO).unwrap();
    assert!(leftovers(&fx).is_empty());
    let d = create(
        &fx,
        &Placement::Base("corral-base".into()),
        &Limits::default(),
    )
    .unwrap();
    drop(d);
    assert!(leftovers(&fx).is_empty(), "dropping removes a base it made");
}

#[test]
fn bad_paths_are_rejected_before_anything_is_made() {
    let fx = fixture::unified();
    for p in ["../escape", "a//b", "a\nb", "/"] {
        let err = create(&fx, &Placement::Path(p.into()), &Limits::default()).unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{p:?}: {err}");
    }
    let raw = [RawSet {
        controller: "memory".into(),
        file: "../memory.max".into(),
        value: "1".into(),
    }];
    assert!(Group::create(&fx.sys, &Placement::Default, &Limits::default(), &[], &raw).is_err());
    assert!(leftovers(&fx).is_empty());
}

#[test]
fn no_cgroupfs_is_unavailable() {
    let fx = fixture::unified();
    std::fs::remove_dir_all(fx.path("sys/fs/cgroup")).unwrap();
    let err = create(&fx, &Placement::Default, &Limits::default()).unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert_eq!(err.errno(), Some(libc::ENOENT));
}

#[test]
fn hybrid_default_joins_only_v2() {
    let fx = fixture::hybrid();
    let g = create(&fx, &Placement::Default, &Limits::default()).unwrap();
    assert_eq!(g.containment(), Containment::V2);
    let dirs: Vec<String> = g.dirs().iter().map(|d| rel(&fx, d)).collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert!(
        dirs[0].starts_with("sys/fs/cgroup/unified/corral-"),
        "{dirs:?}"
    );
    assert!(g.v1_procs_files().is_empty());
    assert_eq!(g.v2_dir().map(|d| rel(&fx, d)), Some(dirs[0].clone()));
}

#[test]
fn hybrid_with_limits_joins_v2_plus_memory_and_pids() {
    let fx = fixture::hybrid();
    let limits = Limits {
        memory_max: Some(Max::Limit(64 << 20)),
        pids_max: Some(Max::Limit(20)),
        ..Limits::default()
    };
    let g = create(&fx, &Placement::Default, &limits).unwrap();
    assert_eq!(g.containment(), Containment::Hybrid);
    let dirs: Vec<String> = g.dirs().iter().map(|d| rel(&fx, d)).collect();
    assert_eq!(dirs.len(), 3, "{dirs:?}");
    assert!(
        dirs[0].starts_with("sys/fs/cgroup/unified/corral-"),
        "{dirs:?}"
    );
    assert!(
        dirs[1].starts_with("sys/fs/cgroup/memory/process_api/abc/corral-"),
        "{dirs:?}"
    );
    assert!(
        dirs[2].starts_with("sys/fs/cgroup/pids/corral-"),
        "{dirs:?}"
    );
    // v1 first, v2 last.
    let procs = g.procs_files();
    assert_eq!(procs.len(), 3);
    assert!(rel(&fx, &procs[2]).starts_with("sys/fs/cgroup/unified/"));
    g.add(7).unwrap();
    g.release(7).unwrap();
    assert_eq!(
        fx.read("sys/fs/cgroup/memory/process_api/abc/cgroup.procs"),
        "7"
    );
    assert_eq!(fx.read("sys/fs/cgroup/unified/cgroup.procs"), "7");
}

#[test]
fn hybrid_limits_go_to_v1_files() {
    let fx = fixture::hybrid();
    let limits = Limits {
        memory_max: Some(Max::Limit(64 << 20)),
        memory_high: Some(Max::Limit(32 << 20)),
        cpu_max: Some(CpuMax {
            quota_us: Max::Limit(50_000),
            period_us: 100_000,
        }),
        cpu_weight: Some(200),
        pids_max: Some(Max::Limit(20)),
        cpuset_cpus: Some("1".into()),
        ..Limits::default()
    };
    let g = create(&fx, &Placement::Default, &limits).unwrap();
    let file =
        |ctrl: &str, f: &str| std::fs::read_to_string(g.v1_dir(ctrl).unwrap().join(f)).unwrap();
    assert_eq!(file("memory", "memory.limit_in_bytes"), "67108864");
    assert_eq!(file("memory", "memory.memsw.limit_in_bytes"), "67108864");
    assert_eq!(file("memory", "memory.soft_limit_in_bytes"), "33554432");
    assert_eq!(file("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(file("cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(file("cpu", "cpu.shares"), "2048");
    assert_eq!(file("pids", "pids.max"), "20");
    assert_eq!(file("cpuset", "cpuset.cpus"), "1");
    assert_eq!(
        file("cpuset", "cpuset.mems"),
        "0",
        "initialised from the parent"
    );
    assert_eq!(g.get("cpu_weight").unwrap(), "200");
    assert_eq!(g.get("cpu_max").unwrap(), "50000 100000");
    assert_eq!(g.get("memory_max").unwrap(), "67108864");
    assert_eq!(g.get("memory_swap_max").unwrap(), "0");
    g.set(&Limits {
        memory_max: Some(Max::Unlimited),
        ..Limits::default()
    })
    .unwrap();
    assert_eq!(g.get("memory_max").unwrap(), "max");
    assert_eq!(file("memory", "memory.memsw.limit_in_bytes"), "-1");
    assert_eq!(g.dirs().len(), 5, "v2 + memory + pids + cpu + cpuset");
    g.remove().unwrap();
    assert!(leftovers(&fx).is_empty());
}

#[test]
fn hybrid_unsupported_key_is_named_and_nothing_is_made() {
    let fx = fixture::hybrid();
    let limits = Limits {
        memory_oom_group: Some(true),
        ..Limits::default()
    };
    match create(&fx, &Placement::Default, &limits) {
        Err(Error::Unsupported {
            key,
            layout: Layout::Hybrid,
        }) => assert_eq!(key, "memory_oom_group"),
        other => panic!("{other:?}"),
    }
    assert!(leftovers(&fx).is_empty());
}

#[test]
fn hybrid_unmounted_v1_controller_is_named() {
    let mountinfo: String = crate::detect::tests::HYBRID_MOUNTINFO
        .lines()
        .filter(|l| !l.ends_with(",cpu"))
        .map(|l| format!("{l}\n"))
        .collect();
    let fx = fixture::hybrid();
    let sys = System::from_parts(&mountinfo, crate::detect::tests::HYBRID_CGROUP)
        .unwrap()
        .with_root_prefix(fx.dir.path());
    let limits = Limits {
        cpu_weight: Some(10),
        ..Limits::default()
    };
    let err = Group::create(&sys, &Placement::Default, &limits, &[], &[]).unwrap_err();
    assert!(
        matches!(&err, Error::Controller { controller, .. } if controller == "cpu"),
        "{err}"
    );
    assert!(err.to_string().contains("no cgroup v1 hierarchy"), "{err}");
}

#[test]
fn failed_limit_write_leaves_nothing_behind() {
    let fx = fixture::hybrid();
    std::fs::remove_file(fx.path("sys/fs/cgroup/pids/pids.max")).unwrap();
    let limits = Limits {
        pids_max: Some(Max::Limit(5)),
        ..Limits::default()
    };
    let err = create(&fx, &Placement::Default, &limits).unwrap_err();
    assert_eq!(err.errno(), Some(libc::ENOENT), "{err}");
    assert!(err.to_string().contains("pids.max"), "{err}");
    assert!(leftovers(&fx).is_empty());
}

#[test]
fn raw_controllers_and_sets() {
    let fx = fixture::legacy();
    let raw = [RawSet {
        controller: "memory".into(),
        file: "memory.soft_limit_in_bytes".into(),
        value: "1000".into(),
    }];
    let g = Group::create(
        &fx.sys,
        &Placement::Default,
        &Limits::default(),
        &["cpuset".into()],
        &raw,
    )
    .unwrap();
    assert_eq!(g.containment(), Containment::V1);
    assert_eq!(
        std::fs::read_to_string(
            g.v1_dir("memory")
                .unwrap()
                .join("memory.soft_limit_in_bytes")
        )
        .unwrap(),
        "1000"
    );
    assert_eq!(
        std::fs::read_to_string(g.v1_dir("cpuset").unwrap().join("cpuset.cpus")).unwrap(),
        "0-3"
    );
    assert!(rel(&fx, g.v1_dir("memory").unwrap())
        .starts_with("sys/fs/cgroup/memory/user.slice/corral-"));
    // Raw file access picks the controller's hierarchy.
    g.write("memory.soft_limit_in_bytes", "2000").unwrap();
    assert_eq!(g.read("memory.soft_limit_in_bytes").unwrap(), "2000");
    assert!(
        g.read("cpuacct.usage").is_ok(),
        "cpu,cpuacct is joined by default on legacy"
    );
    assert!(matches!(
        g.read("blkio.weight"),
        Err(Error::Controller { .. })
    ));
    assert!(matches!(
        g.read("../memory.max"),
        Err(Error::Invalid { .. })
    ));
    g.remove().unwrap();
    assert!(leftovers(&fx).is_empty());
}

#[test]
fn open_does_not_remove_unless_adopted() {
    let fx = fixture::legacy();
    std::fs::create_dir(fx.path("sys/fs/cgroup/memory/corral-open")).unwrap();
    let g = Group::open(&fx.sys, "corral-open").unwrap();
    assert_eq!(g.dirs(), [fx.path("sys/fs/cgroup/memory/corral-open")]);
    drop(g);
    assert!(fx.path("sys/fs/cgroup/memory/corral-open").is_dir());
    let mut g = Group::open(&fx.sys, "/corral-open").unwrap();
    g.adopt();
    g.remove().unwrap();
    assert!(leftovers(&fx).is_empty());
    assert_eq!(
        Group::open(&fx.sys, "corral-open").unwrap_err().errno(),
        Some(libc::ENOENT)
    );
}

#[test]
fn persist_keeps_directories() {
    let fx = fixture::unified();
    let mut g = create(&fx, &Placement::Default, &Limits::default()).unwrap();
    g.persist();
    let dirs = g.dirs();
    g.remove().unwrap();
    assert!(dirs[0].is_dir());
}

#[test]
fn open_dirs_finds_each_hierarchy_from_absolute_paths() {
    let fx = fixture::hybrid();
    let limits = Limits {
        memory_max: Some(Max::Limit(64 << 20)),
        ..Limits::default()
    };
    let mut made = create(&fx, &Placement::Default, &limits).unwrap();
    made.persist();
    let dirs = made.dirs();
    let g = Group::open_dirs(&fx.sys, &dirs).unwrap();
    assert_eq!(g.dirs(), dirs);
    assert_eq!(g.containment(), Containment::Hybrid);
    g.add(7).unwrap();
    assert_eq!(g.pids().unwrap(), [7]);
    std::fs::write(dirs[0].join("cgroup.procs"), "").unwrap();
    std::fs::write(dirs[1].join("cgroup.procs"), "").unwrap();
    drop(g);
    assert!(
        dirs.iter().all(|d| d.is_dir()),
        "dropping an opened group removed it"
    );

    // A directory already gone is skipped; all gone is ENOENT.
    std::fs::remove_dir_all(&dirs[1]).unwrap();
    let mut g = Group::open_dirs(&fx.sys, &dirs).unwrap();
    assert_eq!(g.dirs(), [dirs[0].clone()]);
    g.adopt();
    g.remove().unwrap();
    assert!(leftovers(&fx).is_empty());
    let err = Group::open_dirs(&fx.sys, &dirs).unwrap_err();
    assert_eq!(err.errno(), Some(libc::ENOENT), "{err}");
}

#[test]
fn open_dirs_rejects_paths_outside_the_hierarchies() {
    let fx = fixture::hybrid();
    let g = create(&fx, &Placement::Default, &Limits::default()).unwrap();
    let v2 = g.dirs()[0].clone();
    let mount = v2.parent().unwrap().to_path_buf();
    for bad in [
        PathBuf::from("/etc"),
        mount.clone(),
        mount.join("../memory"),
        mount.join("a/../../memory"),
        fx.path("sys/fs/cgroup/systemd/x"),
    ] {
        let err = Group::open_dirs(&fx.sys, std::slice::from_ref(&bad)).unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{bad:?}: {err}");
    }
    let twice = Group::open_dirs(&fx.sys, &[v2.clone(), v2]).unwrap_err();
    assert!(matches!(twice, Error::Invalid { .. }), "{twice}");
}
