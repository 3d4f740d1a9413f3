//! Unit tests for `limits`: parsing, translation and read-back.

use super::files::{Step, Write};
use super::*;
use crate::Layout;
use std::collections::HashMap;
use std::io;

fn all_v2_limits() -> Limits {
    let mut l = Limits::default();
    for (k, v) in [
        ("memory_max", "67108864"),
        ("memory_high", "max"),
        ("memory_swap_max", "0"),
        ("memory_oom_group", "true"),
        ("memory_min", "1048576"),
        ("memory_low", "2097152"),
        ("cpu_max", "50000 100000"),
        ("cpu_weight", "200"),
        ("cpu_idle", "0"),
        ("pids_max", "20"),
        ("io_weight", "300"),
        ("cpuset_cpus", "0-1"),
        ("cpuset_mems", "0"),
    ] {
        l.set_str(k, v).unwrap();
    }
    l
}

/// Flattens a plan to (file, value) in the order files are first tried.
fn files(steps: &[Step]) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for s in steps {
        match s {
            Step::One(a) => out.push((a.file, a.value.clone())),
            Step::Pair(a, b) => {
                out.push((a.file, a.value.clone()));
                out.push((b.file, b.value.clone()));
            }
        }
    }
    out
}

#[test]
fn parses_and_prints_every_key() {
    let l = all_v2_limits();
    assert_eq!(l.memory_max, Some(Max::Limit(64 << 20)));
    assert_eq!(l.memory_high, Some(Max::Unlimited));
    assert_eq!(l.memory_oom_group, Some(true));
    assert_eq!(
        l.cpu_max,
        Some(CpuMax {
            quota_us: Max::Limit(50_000),
            period_us: 100_000
        })
    );
    assert_eq!(l.to_pairs().len(), KEYS.len());
    let mut again = Limits::default();
    for (k, v) in l.to_pairs() {
        again.set_str(k, &v).unwrap();
    }
    assert_eq!(again, l);
    assert!(!l.is_empty());
    assert!(Limits::default().is_empty());
}

#[test]
fn cpu_max_forms() {
    let mut l = Limits::default();
    l.set_str("cpu_max", "max").unwrap();
    assert_eq!(
        l.cpu_max,
        Some(CpuMax {
            quota_us: Max::Unlimited,
            period_us: 100_000
        })
    );
    l.set_str("cpu_max", "max 50000").unwrap();
    assert_eq!(
        l.cpu_max,
        Some(CpuMax {
            quota_us: Max::Unlimited,
            period_us: 50_000
        })
    );
    l.set_str("cpu_max", "25000").unwrap();
    assert_eq!(
        l.cpu_max,
        Some(CpuMax {
            quota_us: Max::Limit(25_000),
            period_us: 100_000
        })
    );
    l.set_str("cpu_max", "17592186044415 1000000").unwrap();
    l.set_str("pids_max", "4194304").unwrap();
    for bad in ["", "1 2 3", "fast", "500 100000", "50000 10"] {
        assert!(l.set_str("cpu_max", bad).is_err(), "{bad:?}");
    }
}

#[test]
fn rejects_bad_values_naming_the_key() {
    let mut l = Limits::default();
    for (k, v) in [
        ("memory_max", "-1"),
        ("memory_max", "64M"),
        ("cpu_weight", "0"),
        ("io_weight", "10001"),
        ("cpu_idle", "yes"),
        ("cpuset_cpus", "0-"),
        ("cpuset_mems", "0\n1"),
        ("cpuset_cpus", ""),
        ("nope", "1"),
        // Past what the kernel takes: u64, PID_MAX_LIMIT, max_cfs_runtime.
        ("memory_max", "1000000000000000000000000000000"),
        ("pids_max", "4194305"),
        ("pids_max", "18446744073709551615"),
        ("cpu_max", "17592186044416 100000"),
        ("cpu_max", "18446744073709551615"),
    ] {
        let err = l.set_str(k, v).unwrap_err();
        assert!(err.to_string().contains(k), "{err}");
    }
    assert!(l.is_empty());
}

#[test]
fn controllers_needed_are_sorted_and_unique() {
    use Controller::*;
    assert_eq!(
        all_v2_limits().controllers_needed(),
        [Cpu, Cpuset, Io, Memory, Pids]
    );
    let l = Limits {
        memory_max: Some(Max::Limit(1)),
        memory_high: Some(Max::Unlimited),
        ..Limits::default()
    };
    assert_eq!(l.controllers_needed(), [Memory]);
    assert_eq!(Io.v1_name(), "blkio");
}

#[test]
fn weight_and_shares_convert_both_ways() {
    assert_eq!(weight_to_shares(100), 1024);
    assert_eq!(weight_to_shares(1), 10);
    assert_eq!(weight_to_shares(10_000), 102_400);
    assert_eq!(shares_to_weight(1024), 100);
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(262_144), 10_000);
    for w in 1..=10_000 {
        assert_eq!(shares_to_weight(weight_to_shares(w)), w, "weight {w}");
    }
}

#[test]
fn v2_plan_writes_v2_files() {
    let steps = plan(&all_v2_limits(), Api::V2, Layout::Unified).unwrap();
    let expected: Vec<(&str, String)> = [
        ("cpuset.cpus", "0-1"),
        ("cpuset.mems", "0"),
        ("memory.max", "67108864"),
        ("memory.high", "max"),
        ("memory.swap.max", "0"),
        ("memory.oom.group", "1"),
        ("memory.min", "1048576"),
        ("memory.low", "2097152"),
        ("cpu.max", "50000 100000"),
        ("cpu.weight", "200"),
        ("cpu.idle", "0"),
        ("pids.max", "20"),
        ("io.weight", "default 300"),
    ]
    .into_iter()
    .map(|(f, v)| (f, v.to_owned()))
    .collect();
    assert_eq!(files(&steps), expected);
}

#[test]
fn v1_plan_translates() {
    let l = Limits {
        memory_max: Some(Max::Limit(64 << 20)),
        memory_high: Some(Max::Unlimited),
        cpu_max: Some(CpuMax {
            quota_us: Max::Unlimited,
            period_us: 100_000,
        }),
        cpu_weight: Some(50),
        cpu_idle: Some(true),
        pids_max: Some(Max::Limit(20)),
        cpuset_cpus: Some("0".into()),
        ..Limits::default()
    };
    let steps = plan(&l, Api::V1, Layout::Hybrid).unwrap();
    let expected: Vec<(&str, String)> = [
        ("cpuset.cpus", "0"),
        ("memory.limit_in_bytes", "67108864"),
        ("memory.memsw.limit_in_bytes", "67108864"),
        ("memory.soft_limit_in_bytes", "-1"),
        ("cpu.cfs_period_us", "100000"),
        ("cpu.cfs_quota_us", "-1"),
        ("cpu.shares", "512"),
        ("cpu.idle", "1"),
        ("pids.max", "20"),
    ]
    .into_iter()
    .map(|(f, v)| (f, v.to_owned()))
    .collect();
    assert_eq!(files(&steps), expected);
    // Without swap_max, memsw is best effort (no swap accounting, no file).
    let Step::Pair(_, memsw) = &steps[1] else {
        panic!("memory is a pair")
    };
    assert!(memsw.optional);
}

#[test]
fn v1_swap_is_memory_plus_swap() {
    let mut l = Limits {
        memory_max: Some(Max::Limit(100)),
        memory_swap_max: Some(Max::Limit(50)),
        ..Limits::default()
    };
    let steps = plan(&l, Api::V1, Layout::Legacy).unwrap();
    assert_eq!(
        files(&steps)[1],
        ("memory.memsw.limit_in_bytes", "150".to_owned())
    );
    let Step::Pair(_, memsw) = &steps[0] else {
        panic!("memory is a pair")
    };
    assert!(
        !memsw.optional,
        "an explicit swap limit must not be skipped"
    );
    l.memory_swap_max = Some(Max::Unlimited);
    assert_eq!(
        files(&plan(&l, Api::V1, Layout::Legacy).unwrap())[1].1,
        "-1"
    );
    l.memory_max = None;
    let err = plan(&l, Api::V1, Layout::Legacy).unwrap_err();
    assert!(
        err.to_string().contains("memory_swap_max needs memory_max"),
        "{err}"
    );
}

#[test]
fn v1_unsupported_keys_are_named() {
    for key in ["memory_oom_group", "memory_min", "memory_low", "io_weight"] {
        let mut l = Limits::default();
        l.set_str(key, "1").unwrap();
        match plan(&l, Api::V1, Layout::Hybrid) {
            Err(Error::Unsupported {
                key: k,
                layout: Layout::Hybrid,
            }) => assert_eq!(k, key),
            other => panic!("{key}: {other:?}"),
        }
    }
}

#[test]
fn plan_rechecks_ranges_of_struct_literals() {
    let l = Limits {
        cpu_weight: Some(0),
        ..Limits::default()
    };
    assert!(plan(&l, Api::V2, Layout::Unified).is_err());
    let l = Limits {
        cpuset_cpus: Some("0\n".into()),
        ..Limits::default()
    };
    assert!(plan(&l, Api::V1, Layout::Legacy).is_err());
}

/// A fake kernel keeping v1's `limit <= memsw` rule.
fn fake_v1_memory(limit: u64, memsw: u64) -> impl FnMut(&Write) -> Result<()> {
    let mut state = HashMap::from([
        ("memory.limit_in_bytes", limit),
        ("memory.memsw.limit_in_bytes", memsw),
    ]);
    move |wr: &Write| {
        let v: u64 = wr.value.parse().unwrap();
        let ok = match wr.file {
            "memory.limit_in_bytes" => v <= state["memory.memsw.limit_in_bytes"],
            _ => v >= state["memory.limit_in_bytes"],
        };
        if !ok {
            return Err(io::Error::from_raw_os_error(libc::EINVAL))
                .writing(std::path::Path::new(wr.file), &wr.value);
        }
        state.insert(wr.file, v);
        Ok(())
    }
}

use crate::error::IoContext;

#[test]
fn memory_pair_is_written_in_whichever_order_the_kernel_accepts() {
    for (from, to) in [(1000, 500), (500, 1000), (1000, 1000)] {
        let l = Limits {
            memory_max: Some(Max::Limit(to)),
            ..Limits::default()
        };
        let steps = plan(&l, Api::V1, Layout::Legacy).unwrap();
        let mut kernel = fake_v1_memory(from, from);
        apply(&steps, &mut kernel).unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
    }
}

#[test]
fn optional_writes_skip_missing_files_only() {
    let l = Limits {
        memory_max: Some(Max::Limit(10)),
        ..Limits::default()
    };
    let steps = plan(&l, Api::V1, Layout::Legacy).unwrap();
    let mut written = Vec::new();
    apply(&steps, &mut |wr: &Write| {
        if wr.file.contains("memsw") {
            return Err(io::Error::from_raw_os_error(libc::ENOENT))
                .at("write", std::path::Path::new(wr.file));
        }
        written.push(wr.file);
        Ok(())
    })
    .unwrap();
    assert_eq!(written, ["memory.limit_in_bytes"]);
    let err = apply(&steps, &mut |_: &Write| {
        Err(io::Error::from_raw_os_error(libc::EACCES)).at("write", std::path::Path::new("x"))
    });
    assert_eq!(err.unwrap_err().errno(), Some(libc::EACCES));
}

#[test]
fn get_normalises_v1_values() {
    let files: HashMap<&str, &str> = HashMap::from([
        ("memory.limit_in_bytes", "67108864\n"),
        ("memory.memsw.limit_in_bytes", "9223372036854771712\n"),
        ("memory.soft_limit_in_bytes", "9223372036854771712\n"),
        ("cpu.cfs_quota_us", "-1\n"),
        ("cpu.cfs_period_us", "100000\n"),
        ("cpu.shares", "512\n"),
        ("pids.max", "max\n"),
        ("cpuset.cpus", "0-1\n"),
    ]);
    let mut read = |_: Controller, f: &'static str| Ok(files[f].to_owned());
    let get1 = |k, read: &mut dyn FnMut(Controller, &'static str) -> Result<String>| {
        get(k, Api::V1, Layout::Hybrid, read).unwrap()
    };
    assert_eq!(get1("memory_max", &mut read), "67108864");
    assert_eq!(get1("memory_high", &mut read), "max");
    assert_eq!(get1("memory_swap_max", &mut read), "max");
    assert_eq!(get1("cpu_max", &mut read), "max 100000");
    assert_eq!(get1("cpu_weight", &mut read), "50");
    assert_eq!(get1("pids_max", &mut read), "max");
    assert_eq!(get1("cpuset_cpus", &mut read), "0-1");
    assert!(matches!(
        get("memory_min", Api::V1, Layout::Legacy, &mut read),
        Err(Error::Unsupported { .. })
    ));
    assert!(matches!(
        get("memory", Api::V1, Layout::Legacy, &mut read),
        Err(Error::Invalid { .. })
    ));
}

#[test]
fn get_reads_v2_files() {
    let mut asked = Vec::new();
    let mut read = |c: Controller, f: &'static str| {
        asked.push((c, f));
        Ok(if f == "io.weight" {
            "default 300\n".into()
        } else {
            "max\n".into()
        })
    };
    for key in KEYS {
        let v = get(key, Api::V2, Layout::Unified, &mut read).unwrap();
        assert_eq!(v, if key == "io_weight" { "300" } else { "max" });
    }
    let files: Vec<&str> = asked.iter().map(|(_, f)| *f).collect();
    assert_eq!(
        files,
        [
            "cpuset.cpus",
            "cpuset.mems",
            "memory.max",
            "memory.high",
            "memory.swap.max",
            "memory.oom.group",
            "memory.min",
            "memory.low",
            "cpu.max",
            "cpu.weight",
            "cpu.idle",
            "pids.max",
            "io.weight"
        ]
    );
    assert_eq!(asked[0].0, Controller::Cpuset);
}
