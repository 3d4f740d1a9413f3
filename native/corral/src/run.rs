//! One run, whichever mode asked for it: contain, spawn, serve. What
//! differs between the BEAM's helper (`port.rs`) and a person's launcher
//! (`person.rs`) comes in through [`Mode`], picked once in `main`.

use crate::args::{Args, Stdio};
use crate::channel::Base;
use crate::contain;
use crate::error::Error;
use crate::limits;
use crate::session::{Config, Outcome, Session};
use crate::spawn::{self, Spec};
use crate::stdio::Sink;
use crate::tree::Tree;
use corral_proto::{CgroupKind, Containment};
use nix::errno::Errno;
use std::ffi::OsString;
use std::path::Path;
use std::time::Instant;

/// What differs between port mode and person mode. `main` picks one
/// implementation once (`port::Port` or `person::Person`); [`run`] asks it
/// and never looks at `--port` itself.
pub trait Mode {
    /// The child's stdin, stdout and stderr where no option names them.
    fn default_stdio(&self) -> [Stdio; 3];
    /// Whether the child starts from an empty environment, and the
    /// variables set before `--env`'s.
    fn environment(&self, args: &Args) -> (bool, Vec<OsString>);
    /// Whether the helper's stdin is a control channel (the BEAM's)
    /// rather than the command's.
    fn control(&self) -> bool;
    /// Whether the child leads a process group of its own. At a terminal
    /// the command stays in corral's group, so it remains the terminal's
    /// foreground job (no SIGTTIN on reads).
    fn own_group(&self) -> bool;
    /// The `S` frame the child writes before exec, if anyone reads it.
    fn announce(&self, containment: u8, paths: Vec<String>) -> Option<Vec<u8>>;
    /// A program named without a `/` is looked up and named as
    /// `System.cmd/3` does ([`crate::spawn::Spec::beam_lookup`]) rather
    /// than as a shell does.
    fn beam_lookup(&self) -> bool {
        false
    }
    /// Tells whoever watches that containment is weaker than usual.
    fn warn(&self, text: &str);
}

/// How [`run`] ended.
pub enum Ran {
    /// The child ran; and whether the helper may serve another run
    /// (pooled, and this one ended with an `X` frame).
    Ended(Outcome, bool),
    /// The child never ran.
    Failed(Error),
    /// The helper itself failed (already said on stderr).
    Broken,
}

/// What a helper sets up once, whatever it runs: the event loop and the
/// channel to the BEAM, the subreaper, and for a pooled helper the cgroup
/// layout. A pooled helper does this before its first `R` frame, while
/// nobody waits for it, and keeps it for every run it serves.
pub struct Ready {
    /// Borrowed by each run.
    base: Base,
    subreaper: nix::Result<()>,
    system: Option<contain::Detected>,
    pooled: bool,
}

impl Ready {
    /// Sets up for `args` (the helper's own command line) in `mode`.
    ///
    /// # Errors
    /// The OS errors of setting up epoll and the signal pipe.
    pub fn new(args: &Args, mode: &dyn Mode) -> std::io::Result<Ready> {
        crate::tree::remember_ancestors();
        Ok(Ready {
            base: Base::new(Sink::stdout(), mode.control())?,
            // Orphaned grandchildren re-parent to us, not to init, so the
            // tree can always be found and reaped (prctl(2),
            // PR_SET_CHILD_SUBREAPER). Where that is refused (qemu-user
            // answers EINVAL) the run goes on with what still holds the
            // tree, and says so in its containment code.
            // The portable backend has no subreaper (ENOSYS).
            subreaper: if std::env::var_os(TEST_NO_SUBREAPER).is_some() {
                Err(Errno::EINVAL)
            } else {
                crate::sys::become_subreaper()
            },
            // Others may never need it (`--no-cgroup`), and read it once.
            // The portable backend has no cgroups to look for.
            system: (args.pooled && !crate::sys::portable()).then(contain::detect),
            pooled: args.pooled,
        })
    }

    /// The event loop and channel, between runs.
    pub fn base(&mut self) -> &mut Base {
        &mut self.base
    }

    /// Whether this helper serves one run after another (`--pooled`).
    pub fn pooled(&self) -> bool {
        self.pooled
    }
}

/// Set in the helper's environment, it makes the helper behave as if
/// `PR_SET_CHILD_SUBREAPER` were refused. For tests only (the degraded
/// containment on a kernel that has the subreaper); see `docs/helper.md`.
const TEST_NO_SUBREAPER: &str = "CORRAL_TEST_NO_SUBREAPER";

/// Set to a number of milliseconds in the helper's environment, it makes
/// the helper sleep that long right after the spawn, as a helper preempted
/// there would: the BEAM must already hold `S` (the child sends it before
/// exec). For tests only (`test/corral/start_window_test.exs`).
const TEST_SPAWN_PAUSE: &str = "CORRAL_TEST_SPAWN_PAUSE_MS";

/// Runs the child described by `args` in `mode`.
pub fn run(args: &Args, mode: &dyn Mode, ready: &mut Ready) -> Ran {
    let (clear_env, mut set_env) = mode.environment(args);
    set_env.extend(args.env.iter().cloned());
    let contained = match contain::group(args, ready.system.as_ref()) {
        Ok(c) => c,
        Err(e) => return Ran::Failed(e),
    };
    let limits = limits::Limits {
        cpu_time: args.cpu_time,
        memory: args.memory.filter(|_| !contained.memory),
        max_processes: args.max_processes,
        idle: args.idle_timeout,
    };
    let cgroup_pids = contained.processes;
    let watch_oom = contained.watch_oom;
    let group = contained.group;
    let subreaper = ready.subreaper.is_ok();
    let containment = Containment {
        cgroup: group.as_ref().map_or(CgroupKind::None, |g| g.containment()),
        subreaper,
    };
    if !subreaper && group.is_none() {
        if crate::sys::portable() {
            mode.warn(&format!(
                "{} has no subreaper or cgroups: \
                 descendants that leave the command's tree are not contained",
                crate::sys::platform()
            ));
        } else {
            mode.warn(
                "cannot become a subreaper and have no cgroup: \
                 descendants that leave the command's tree are not contained",
            );
        }
    }
    let paths: Vec<String> = group
        .as_ref()
        .map(|g| g.dirs().iter().map(|d| d.display().to_string()).collect())
        .unwrap_or_default();
    let default = mode.default_stdio();
    let spec = Spec {
        command: args.command.clone(),
        arg0: args.arg0.clone(),
        cwd: args.cd.clone(),
        clear_env: args.clear_env || clear_env,
        set_env,
        unset_env: args.unset.clone(),
        uid: args.uid.clone(),
        gid: args.gid.clone(),
        groups: args.groups.clone(),
        stdio: [
            args.stdin.unwrap_or(default[0]),
            args.stdout.unwrap_or(default[1]),
            args.stderr.unwrap_or(default[2]),
        ],
        new_process_group: mode.own_group(),
        cgroup_procs: group
            .as_ref()
            .map(|g| g.v1_procs_files())
            .unwrap_or_default(),
        cgroup_v2: group
            .as_ref()
            .and_then(|g| g.v2_dir())
            .map(Path::to_path_buf),
        announce: mode.announce(containment.code(), paths),
        beam_lookup: mode.beam_lookup(),
        pty: args.pty,
        nice: args.nice,
    };
    // Without a cgroup to hold max_processes, follow the tree's forks as
    // they happen where the kernel lets us (CAP_NET_ADMIN); subscribed
    // before the spawn, so no fork of the tree comes first. Else: polled.
    // CORRAL_PROC_EVENTS=0 forces the polling (bench/nproc_overshoot.exs).
    let events =
        std::env::var_os("CORRAL_PROC_EVENTS").is_none_or(|v| v != "0") && !crate::sys::portable();
    let forks = limits
        .max_processes
        .filter(|_| !cgroup_pids && events)
        .and_then(|_| crate::sys::Forks::open().ok());
    let started = Instant::now();
    let child = match spawn::spawn(&spec) {
        Ok(child) => child,
        Err(e) => return Ran::Failed(e),
    };
    if let Some(ms) = std::env::var(TEST_SPAWN_PAUSE)
        .ok()
        .and_then(|v| v.parse().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    // A pseudo-terminal's child leads a session, and so a group, of its own.
    let pgrp = (mode.own_group() || args.pty.is_some()).then_some(child.pid);
    let mut tree = Tree::new(pgrp, group);
    tree.full_scan = !subreaper;
    let cfg = Config {
        window: args.stdio_window,
        grace: args.grace,
        timeout: args.timeout,
        control: mode.control(),
        containment,
        limits,
        cgroup_pids,
        serve_again: ready.pooled,
        watch_oom,
        kill_signal: args.kill_signal,
        direct_output: args.direct_output,
    };
    let session = match Session::new(cfg, child, tree, &mut ready.base, started, forks) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("corral: {e}");
            return Ran::Broken;
        }
    };
    let (outcome, again) = session.run();
    Ran::Ended(outcome, again)
}
