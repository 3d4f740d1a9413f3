//! From parsed arguments to an exit status: contain, spawn, serve, report.

use crate::args::{Args, Stdio};
use crate::channel::Base;
use crate::cli;
use crate::contain;
use crate::error::Error;
use crate::exit_code;
use crate::limits;
use crate::session::{Config, Outcome, Session};
use crate::spawn::{self, Spec};
use crate::stdio::Sink;
use crate::tree::Tree;
use corral_proto::{CgroupKind, Containment, Up, VERSION};
use nix::errno::Errno;
use std::path::Path;
use std::time::Instant;

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
    /// Sets up for `args` (the helper's own command line).
    ///
    /// # Errors
    /// The OS errors of setting up epoll and the signal pipe.
    pub fn new(args: &Args) -> std::io::Result<Ready> {
        crate::tree::remember_ancestors();
        Ok(Ready {
            base: Base::new(Sink::stdout(), args.port)?,
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

/// Runs the child described by `args`. Returns the helper's exit status,
/// and whether the helper may serve another run (pooled, and this one
/// ended with an `X` or `F` frame).
pub fn run(args: Args, ready: &mut Ready) -> (i32, bool) {
    if args.port && args.protocol != Some(VERSION) {
        eprintln!(
            "corral: this helper speaks protocol {VERSION}; the BEAM asked for {:?}",
            args.protocol
        );
        return (exit_code::USAGE, false);
    }
    let default = if args.port {
        [Stdio::Null, Stdio::Pipe, Stdio::Inherit]
    } else {
        [Stdio::Inherit; 3]
    };
    // For people, playpen's rules: only a small base environment (and
    // PATH) unless --capture-env; the BEAM's children inherit, as with
    // System.cmd.
    // --clear-env is asked for: nothing then but what --env sets.
    let keep = if args.port || args.clear_env {
        None
    } else {
        cli::env_allowlist(
            args.capture_env.unwrap_or(false),
            args.capture_path.unwrap_or(true),
        )
    };
    let mut set_env = keep.as_deref().map(cli::captured).unwrap_or_default();
    set_env.extend(args.env.iter().cloned());
    let contained = match contain::group(&args, ready.system.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            return failed(&args, ready, &e);
        }
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
    if !subreaper && group.is_none() && !args.port && !args.quiet {
        if crate::sys::portable() {
            eprintln!(
                "corral: {} has no subreaper or cgroups: \
                 descendants that leave the command's tree are not contained",
                crate::sys::platform()
            );
        } else {
            eprintln!(
                "corral: cannot become a subreaper and have no cgroup: \
                 descendants that leave the command's tree are not contained"
            );
        }
    }
    let paths: Vec<String> = group
        .as_ref()
        .map(|g| g.dirs().iter().map(|d| d.display().to_string()).collect())
        .unwrap_or_default();
    let spec = Spec {
        command: args.command.clone(),
        arg0: args.arg0.clone(),
        cwd: args.cd.clone(),
        clear_env: args.clear_env || keep.is_some(),
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
        // At a terminal the command stays in corral's process group, so it
        // remains the terminal's foreground job (no SIGTTIN on reads).
        new_process_group: args.port,
        cgroup_procs: group
            .as_ref()
            .map(|g| g.v1_procs_files())
            .unwrap_or_default(),
        cgroup_v2: group
            .as_ref()
            .and_then(|g| g.v2_dir())
            .map(Path::to_path_buf),
        // In port mode the child sends S itself, before exec (Spec::announce).
        announce: args.port.then(|| {
            Up::Started {
                version: VERSION,
                os_pid: 0,
                containment: containment.code(),
                paths,
            }
            .encode()
        }),
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
        Err(e) => return failed(&args, ready, &e),
    };
    if let Some(ms) = std::env::var(TEST_SPAWN_PAUSE)
        .ok()
        .and_then(|v| v.parse().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    // A pseudo-terminal's child leads a session, and so a group, of its own.
    let pgrp = (args.port || args.pty.is_some()).then_some(child.pid);
    let mut tree = Tree::new(pgrp, group);
    tree.full_scan = !subreaper;
    let cfg = Config {
        window: args.stdio_window,
        grace: args.grace,
        timeout: args.timeout,
        control: args.port,
        containment,
        limits,
        cgroup_pids,
        serve_again: ready.pooled,
        watch_oom,
        kill_signal: args.kill_signal,
    };
    let session = match Session::new(cfg, child, tree, &mut ready.base, started, forks) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("corral: {e}");
            return (exit_code::INTERNAL, false);
        }
    };
    let (outcome, again) = session.run();
    let code = match outcome {
        Outcome::Finished(report) if !args.port => {
            tell_person(&args, &report);
            report.status.code()
        }
        Outcome::Finished(report) | Outcome::Orphaned(report) => report.status.code(),
        Outcome::ProtocolError(e) => {
            eprintln!("corral: protocol error: {e}");
            exit_code::PROTOCOL
        }
    };
    (code, again)
}

/// The summary or JSON report on stderr (or in `--report FILE`). Nothing
/// of corral's own ever goes to stdout, which belongs to the command.
fn tell_person(args: &Args, report: &crate::report::Report) {
    if args.json || args.report.is_some() {
        let json = cli::json(report);
        match &args.report {
            Some(path) => {
                if let Err(e) = std::fs::write(path, json + "\n") {
                    eprintln!("corral: writing {}: {e}", path.display());
                }
            }
            None => eprintln!("{json}"),
        }
    }
    if !args.quiet && !args.json {
        eprint!("{}", cli::summary(report));
    }
}

/// Tells the BEAM (or the person) that the child never ran.
fn failed(args: &Args, ready: &mut Ready, e: &Error) -> (i32, bool) {
    let code = e.exit_code();
    if args.port {
        let base = &mut ready.base;
        base.sink().send_up(&Up::Failed {
            version: VERSION,
            fields: e.fields(),
        });
        if ready.pooled {
            // Back to waiting; the BEAM closes the port (or sends R).
            return (code, true);
        }
        base.await_close();
    } else {
        eprintln!("corral: {e}");
    }
    (code, false)
}
