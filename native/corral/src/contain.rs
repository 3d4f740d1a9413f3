//! Choosing the child's cgroup from the command line, or none.

use crate::args::Args;
use crate::error::Error;
use crate::spawn::Stage;
use corral_cgroup::{Group, Key, Layout, Limits, Max, Placement, RawSet, System};
use nix::errno::Errno;

/// Why containment could not be set up as asked: stage `cgroup`, the OS
/// error behind it (EINVAL for what was asked wrong) and, for people,
/// what was asked and what to do about it.
fn invalid(message: String) -> Error {
    Error::plain(Stage::Cgroup, Errno::EINVAL, message)
}

/// The typed limits and raw writes asked for.
fn requested(args: &Args) -> Result<(Limits, Vec<RawSet>), Error> {
    let mut limits = Limits::default();
    for kv in &args.cgroup_sets {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| invalid(format!("--cgroup-set {kv:?}: expected KEY=VALUE")))?;
        limits.set_str(k, v).map_err(|e| invalid(e.to_string()))?;
    }
    let mut raw = Vec::new();
    for spec in &args.cgroup_raw {
        let parsed = spec
            .split_once(':')
            .and_then(|(c, rest)| rest.split_once('=').map(|(f, v)| (c, f, v)));
        let Some((controller, file, value)) = parsed else {
            return Err(invalid(format!(
                "--cgroup-raw {spec:?}: expected CONTROLLER:FILE=VALUE"
            )));
        };
        raw.push(RawSet {
            controller: controller.into(),
            file: file.into(),
            value: value.into(),
        });
    }
    // A run's tree needs its first process, and memory to load it: with
    // pids_max 0 a v1 child joins anyway (migration is not a fork), with
    // memory below a page the program's loader fails and the run would look
    // like a program that exited 127.
    let page = crate::tree::page_size();
    for (what, m) in [
        ("--memory-limit", args.memory),
        (Key::MemoryMax.name(), limits.memory_max.and_then(limit)),
    ] {
        if let Some(m) = m.filter(|m| *m < page) {
            return Err(invalid(format!(
                "a {what} of {m} bytes is below one page ({page} bytes), \
                 the smallest the kernel can enforce: the program could not start"
            )));
        }
    }
    if limits.pids_max == Some(Max::Limit(0)) {
        return Err(invalid(format!(
            "{}=0: the program could not start, as it counts itself; the least is 1",
            Key::PidsMax
        )));
    }
    if let Some(pct) = args.cpu_limit {
        limits.cpu_max = Some(crate::values::cpu_max(pct));
    }
    Ok((limits, raw))
}

fn limit(m: Max) -> Option<u64> {
    match m {
        Max::Limit(n) => Some(n),
        Max::Unlimited => None,
    }
}

/// The cgroup layout, as [`System::detect`] found it.
pub type Detected = corral_cgroup::Result<System>;

/// Reads the cgroup layout (`/proc/self/mountinfo` and
/// `/proc/self/cgroup`), the costliest part of choosing a cgroup.
pub fn detect() -> Detected {
    System::detect()
}

/// The cgroup for this run (or `None` when the system offers none and
/// nothing was asked that needs one), and which of `--memory` and
/// `--max-processes` it enforces itself. `detected` is the layout if it
/// was read already (see [`detect`]).
///
/// # Errors
/// Bad limit syntax, or a cgroup that was asked for (a path, a base, a
/// limit) and cannot be had.
pub fn group(args: &Args, detected: Option<&Detected>) -> Result<Contained, Error> {
    let (limits, raw) = requested(args)?;
    let needs_cgroup = !limits.is_empty()
        || !raw.is_empty()
        || !args.cgroup_controllers.is_empty()
        || args.cgroup_path.is_some()
        || args.cgroup_base.is_some();
    if crate::sys::portable() {
        // No cgroups here: the process group holds the tree, and an option
        // that needs a cgroup is refused before anything runs.
        return if needs_cgroup {
            Err(Error::plain(
                Stage::Cgroup,
                Errno::ENOSYS,
                format!(
                    "cgroups are not available on {}, where Corral holds the command's \
                     tree by its process group only: the cgroup options (:cgroup, \
                     :cgroup_path, :cgroup_base, :cgroup_controllers, :cgroup_sets; \
                     --cgroup-*, --cpu-limit) cannot be honoured",
                    crate::sys::platform()
                ),
            ))
        } else {
            Ok(Contained::default())
        };
    }
    if args.no_cgroup {
        return if needs_cgroup {
            Err(invalid(
                "--no-cgroup conflicts with the cgroup options given".into(),
            ))
        } else {
            Ok(Contained::default())
        };
    }
    let placement = match (&args.cgroup_path, &args.cgroup_base) {
        (Some(p), _) => Placement::Path(p.clone()),
        (None, Some(b)) => Placement::Base(b.clone()),
        (None, None) => Placement::Default,
    };
    let fresh;
    let detected = match detected {
        Some(d) => d,
        None => {
            fresh = detect();
            &fresh
        }
    };
    let sys = match detected {
        Ok(sys) => sys,
        Err(e) if e.is_unavailable() && !needs_cgroup => return Ok(Contained::default()),
        Err(e) => return Err(from_cgroup(e)),
    };
    // An exact path is one run's at a time: ending a run kills everything
    // in its cgroup (Group::claim).
    let create = |l: &Limits| {
        let mut g = Group::create(sys, &placement, l, &args.cgroup_controllers, &raw)?;
        if matches!(placement, Placement::Path(_)) {
            g.claim()?;
        }
        Ok::<_, corral_cgroup::Error>(g)
    };
    // --memory and --max-processes prefer the kernel's enforcement; where
    // the cgroup cannot take them the helper polls instead.
    let mut with_tree_limits = limits.clone();
    if let Some(m) = args.memory {
        with_tree_limits.memory_max = Some(Max::Limit(m));
    }
    if let Some(n) = args.max_processes {
        with_tree_limits.pids_max = Some(Max::Limit(n));
    }
    // OOMPolicy=stop: an OOM kill of any member ends the whole tree. The
    // helper watches for it (`Group::oom_watch`) whenever the group has a
    // memory limit, typed or raw; on v2 the kernel also kills the whole
    // group at once (`memory.oom.group`), unless asked otherwise.
    let oom_group = |l: &mut Limits| {
        if sys.layout() == Layout::Unified && l.memory_max.is_some() {
            l.memory_oom_group.get_or_insert(true);
        }
    };
    let raw_memory = raw.iter().any(|r| r.controller == "memory");
    let watch_oom = |l: &Limits| l.memory_max.is_some() || raw_memory;
    oom_group(&mut with_tree_limits);
    let mut limits = limits;
    oom_group(&mut limits);
    if with_tree_limits != limits {
        if let Ok(g) = create(&with_tree_limits) {
            return Ok(Contained {
                group: Some(g),
                memory: args.memory.is_some(),
                processes: args.max_processes.is_some(),
                watch_oom: watch_oom(&with_tree_limits),
            });
        }
    }
    match create(&limits) {
        Ok(g) => Ok(Contained {
            group: Some(g),
            watch_oom: watch_oom(&limits),
            ..Contained::default()
        }),
        Err(e) if e.is_unavailable() && !needs_cgroup => Ok(Contained::default()),
        Err(e) => Err(from_cgroup(&e)),
    }
}

/// The cgroup of a run and which tree limits it enforces.
#[derive(Debug, Default)]
pub struct Contained {
    /// The cgroup, if any.
    pub group: Option<Group>,
    /// Its `memory_max` is `--memory`.
    pub memory: bool,
    /// Its `pids_max` is `--max-processes`.
    pub processes: bool,
    /// It has a memory limit, so an OOM kill in it ends the run.
    pub watch_oom: bool,
}

fn from_cgroup(e: &corral_cgroup::Error) -> Error {
    Error::plain(
        Stage::Cgroup,
        Errno::from_raw(e.errno().unwrap_or(libc::EINVAL)),
        e.to_string(),
    )
}
