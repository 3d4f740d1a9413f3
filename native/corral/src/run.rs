//! From parsed arguments to an exit status: contain, spawn, serve, report.

use crate::args::{Args, Stdio};
use crate::cli;
use crate::contain;
use crate::exit_code;
use crate::limits;
use crate::session::{Config, Outcome, Session};
use crate::spawn::{self, Spec};
use crate::stdio::{self, Sink};
use crate::tree::Tree;
use corral_proto::{key, Fields, Up, VERSION};
use nix::errno::Errno;
use std::path::Path;
use std::time::Instant;

/// The work of a run that does not depend on its command line, done
/// early by a pooled helper, before the BEAM is waiting for it.
pub struct Ready {
    sink: Sink,
    subreaper: nix::Result<()>,
    system: Option<contain::Detected>,
}

impl Ready {
    /// Prepares the output channel and the subreaper; with `detect`, also
    /// reads the cgroup layout, which a pooled helper does before its
    /// command arrives (others may never need it, with `--no-cgroup`).
    pub fn new(detect: bool) -> Ready {
        Ready {
            sink: Sink::stdout(),
            // Orphaned grandchildren re-parent to us, not to init, so the
            // tree can always be found and reaped (prctl(2),
            // PR_SET_CHILD_SUBREAPER).
            subreaper: nix::sys::prctl::set_child_subreaper(true),
            system: detect.then(contain::detect),
        }
    }
}

/// Runs the child described by `args` and returns the helper's exit status.
pub fn run(args: Args, ready: Ready) -> i32 {
    let Ready {
        mut sink,
        subreaper,
        system,
    } = ready;
    if args.port && args.protocol != Some(VERSION) {
        eprintln!(
            "corral: this helper speaks protocol {VERSION}; the BEAM asked for {:?}",
            args.protocol
        );
        return exit_code::USAGE;
    }
    if let Err(e) = subreaper {
        eprintln!("corral: cannot become a subreaper: {e}");
        return exit_code::INTERNAL;
    }
    let default = if args.port {
        [Stdio::Null, Stdio::Pipe, Stdio::Inherit]
    } else {
        [Stdio::Inherit; 3]
    };
    // For people, playpen's rules: only a small base environment (and
    // PATH) unless --capture-env; the BEAM's children inherit, as with
    // System.cmd.
    let keep = if args.port {
        None
    } else {
        cli::env_allowlist(
            args.capture_env.unwrap_or(false),
            args.capture_path.unwrap_or(true),
        )
    };
    let mut set_env = keep.as_deref().map(cli::captured).unwrap_or_default();
    set_env.extend(args.env.iter().cloned());
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
        cgroup_procs: Vec::new(),
        cgroup_v2: None,
    };
    let contained = match contain::group(&args, system) {
        Ok(c) => c,
        Err(e) => {
            let e = spawn::Error {
                stage: "cgroup",
                errno: Errno::from_raw(e.errno),
                message: e.message,
            };
            return failed(args.port, &mut sink, &e);
        }
    };
    let limits = limits::Limits {
        cpu_time: args.cpu_time,
        memory: args.memory.filter(|_| !contained.memory),
        max_processes: args.max_processes,
        idle: args.idle_timeout,
    };
    let cgroup_pids = contained.processes;
    let group = contained.group;
    let containment = group.as_ref().map_or(0, |g| g.containment() as u8);
    let paths: Vec<String> = group
        .as_ref()
        .map(|g| g.dirs().iter().map(|d| d.display().to_string()).collect())
        .unwrap_or_default();
    let spec = Spec {
        cgroup_procs: group
            .as_ref()
            .map(|g| g.v1_procs_files())
            .unwrap_or_default(),
        cgroup_v2: group
            .as_ref()
            .and_then(|g| g.v2_dir())
            .map(Path::to_path_buf),
        ..spec
    };
    let started = Instant::now();
    let child = match spawn::spawn(&spec) {
        Ok(child) => child,
        Err(e) => return failed(args.port, &mut sink, &e),
    };
    let pgrp = args.port.then_some(child.pid);
    let tree = Tree::new(pgrp, group);
    if args.port {
        sink.send_up(&Up::Started {
            version: VERSION,
            os_pid: child.pid.as_raw() as u32,
            containment,
            paths,
        });
    }
    let cfg = Config {
        window: args.stdio_window,
        grace: args.grace,
        timeout: args.timeout,
        control: args.port,
        containment,
        limits,
        cgroup_pids,
    };
    let session = match Session::new(cfg, child, tree, sink, started) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("corral: {e}");
            return exit_code::INTERNAL;
        }
    };
    match session.run() {
        Outcome::Finished(report) if !args.port => {
            tell_person(&args, &report);
            report.status.code()
        }
        Outcome::Finished(report) | Outcome::Orphaned(report) => report.status.code(),
        Outcome::ProtocolError(e) => {
            eprintln!("corral: protocol error: {e}");
            exit_code::PROTOCOL
        }
    }
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
fn failed(port: bool, sink: &mut Sink, e: &spawn::Error) -> i32 {
    if port {
        let fields = Fields::default()
            .int(key::ERRNO, e.errno as i32 as u64)
            .text(key::ERRNO_NAME, &errno_name(e.errno))
            .text(key::STAGE, e.stage)
            .text(key::MESSAGE, &e.message);
        sink.send_up(&Up::Failed {
            version: VERSION,
            fields,
        });
        // As after X: exiting before the BEAM closes the port could fail
        // a write it is making (input sent right after opening) with EPIPE.
        stdio::read_until_eof(0);
    } else {
        eprintln!("corral: {}: {}", e.stage, e.message);
    }
    match (e.stage, e.errno) {
        ("exec", Errno::ENOENT) => exit_code::NOT_FOUND,
        ("cgroup", _) => exit_code::USAGE_ERROR,
        _ => exit_code::CANNOT_EXECUTE,
    }
}

/// `ENOENT` → `"enoent"`, the spelling of Elixir's `File.posix()` atoms.
fn errno_name(e: Errno) -> String {
    format!("{e:?}").to_ascii_lowercase()
}
