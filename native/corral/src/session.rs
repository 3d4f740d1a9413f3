//! One run of one child: the event loop that serves the control channel,
//! the child's pipes, signals and deadlines until the tree is gone.
//!
//! Nothing here polls while the child runs without limits: the loop sleeps
//! in `epoll_wait` with no timeout until a pipe, a signal or the BEAM has
//! something. Only while the tree is being ended does it look at the tree,
//! when a SIGCHLD comes or a [`TEARDOWN_TICK`] passes, to see whether the
//! last member has gone.
//!
//! This file holds the loop, the limits and the teardown's steps;
//! `beam.rs` the control channel's frames, stdin and output; `finish.rs`
//! the reaping, the report and the `X` frame. Where the run is and what
//! is known of its end lives in [`Phase`].

mod beam;
mod finish;

use crate::channel::{Base, CONTROL, SIGNALS};
use crate::limits::{Limits, Watch};
pub use crate::phase::Outcome;
use crate::phase::{Phase, Step};
use crate::stdio::{self, Input, Output};
use crate::sys::Forks;
use crate::tree::Tree;
use corral_cgroup::{OomSignal, OomWatch};
use corral_proto::{Reason, Window};
use mio::unix::SourceFd;
use mio::{Events, Interest, Token};
use nix::unistd::Pid;
use signal_hook::consts::SIGCHLD;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const OUTPUT: [Token; 2] = [Token(2), Token(3)];
const INPUT: Token = Token(4);
const OOM: Token = Token(5);
const FORKS: Token = Token(6);

/// How often the loop looks at the tree while waiting for it to empty,
/// when no SIGCHLD tells that a member died.
pub const TEARDOWN_TICK: Duration = Duration::from_millis(5);

/// Limits and timings for one run.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Flow-control window in bytes.
    pub window: u64,
    /// SIGTERM to SIGKILL.
    pub grace: Duration,
    /// Wall-time limit.
    pub timeout: Option<Duration>,
    /// Whether the helper's stdin is the BEAM's control channel.
    pub control: bool,
    /// How the tree is held, for the report.
    pub containment: corral_proto::Containment,
    /// Limits the helper enforces itself.
    pub limits: Limits,
    /// The cgroup's `pids.max` enforces `limits.max_processes`.
    pub cgroup_pids: bool,
    /// After `X`, hand the [`Base`] back for the next run (`--pooled`)
    /// instead of waiting for the BEAM to close the channel.
    pub serve_again: bool,
    /// The cgroup has a memory limit: an OOM kill of any member ends the
    /// whole tree with reason `memory` (systemd's `OOMPolicy=stop`).
    pub watch_oom: bool,
    /// The first signal of the teardown (`--kill-signal`).
    pub kill_signal: nix::sys::signal::Signal,
    /// Hand a fast child's output pipe to the BEAM (`--direct-output`).
    pub direct_output: bool,
}

/// The state of one run, on the helper's [`Base`], which it borrows.
pub struct Session<'b> {
    cfg: Config,
    base: &'b mut Base,
    outputs: [Option<Output>; 2],
    input: Option<Input>,
    window: Window,
    child: Pid,
    tree: Tree,
    started: Instant,
    /// When the wall-time limit ends the run; `None` without one, or when
    /// it lies past the end of the clock (a limit of `u64::MAX` ms).
    deadline: Option<Instant>,
    /// Where the run is and what is known of its end.
    phase: Phase,
    watch: Watch,
    /// Fires when the OOM killer acts in the cgroup ([`Config::watch_oom`]).
    oom: Option<OomWatch>,
    /// The tree's forks and exits as they happen, for `max_processes`
    /// without a cgroup; `None` where the helper polls instead.
    forks: Option<Forks>,
    /// The pseudo-terminal's master (`--pty`), for `T` frames.
    terminal: Option<std::os::fd::OwnedFd>,
    /// A SIGCHLD came since the teardown last looked at the tree.
    reaped_since_look: bool,
    /// When the teardown last looked at the tree (or signalled it).
    looked: Instant,
}

impl<'b> Session<'b> {
    /// Takes over a freshly spawned child.
    ///
    /// # Errors
    /// The OS errors of setting up epoll and the signal pipe.
    pub fn new(
        cfg: Config,
        child: crate::spawn::Child,
        tree: Tree,
        base: &'b mut Base,
        started: Instant,
        mut forks: Option<Forks>,
    ) -> std::io::Result<Session<'b>> {
        let registry = base.poll.registry();
        let mut outputs = [None, None];
        for (i, fd) in [child.stdout, child.stderr].into_iter().enumerate() {
            if let Some(fd) = fd {
                stdio::set_nonblocking(fd.as_raw_fd())?;
                registry.register(
                    &mut SourceFd(&fd.as_raw_fd()),
                    OUTPUT[i],
                    Interest::READABLE,
                )?;
                outputs[i] = Some(match child.terminal {
                    Some(_) => Output::terminal(fd, cfg.control),
                    None => Output::new(fd, stdio::tag_for(i)),
                });
            }
        }
        let input = match child.stdin {
            Some(fd) => {
                stdio::set_nonblocking(fd.as_raw_fd())?;
                registry.register(&mut SourceFd(&fd.as_raw_fd()), INPUT, Interest::WRITABLE)?;
                Some(match child.terminal {
                    Some(_) => Input::terminal(fd, cfg.window),
                    None => Input::new(fd, cfg.window),
                })
            }
            None => None,
        };
        let oom = match tree.group.as_ref().filter(|_| cfg.watch_oom) {
            Some(g) => g.oom_watch().unwrap_or_else(|e| {
                // The exit report still counts the kills; only the
                // prompt end of the rest of the tree is lost.
                eprintln!("corral: cannot watch for OOM kills: {e}");
                None
            }),
            None => None,
        };
        if let Some(w) = &oom {
            registry.register(&mut SourceFd(&w.as_raw_fd()), OOM, Interest::READABLE)?;
        }
        let mut polled = cfg.limits;
        if let Some(f) = forks.as_mut() {
            f.track(child.pid.as_raw());
            registry.register(&mut SourceFd(&f.as_raw_fd()), FORKS, Interest::READABLE)?;
            // The events count the processes; no timer needed for them.
            polled.max_processes = None;
        }
        Ok(Session {
            cfg,
            base,
            outputs,
            input,
            window: Window::new(cfg.window),
            child: child.pid,
            tree,
            started,
            deadline: cfg.timeout.and_then(|t| started.checked_add(t)),
            phase: Phase::new(),
            watch: Watch::new(polled, cfg.cgroup_pids, started),
            oom,
            forks,
            terminal: child.terminal,
            reaped_since_look: false,
            looked: started,
        })
    }

    /// Runs until the tree is gone and its output delivered. True when
    /// the run ended with `X` and the [`Base`] may serve another run
    /// ([`Config::serve_again`]).
    pub fn run(mut self) -> (Outcome, bool) {
        let mut events = Events::with_capacity(16);
        // Frames that came with R were read already: the edge-triggered
        // event loop would not report them again.
        if self.base.open_control().is_some() {
            self.read_control();
        }
        loop {
            self.reap();
            self.advance();
            self.pump();
            self.park_outputs();
            if self.finished() {
                break;
            }
            let timeout = self
                .next_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()));
            if let Err(e) = self.base.poll.poll(&mut events, timeout) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    self.phase.break_protocol(format!("epoll: {e}"));
                    self.end(Reason::Stopped);
                }
                continue;
            }
            for ev in events.iter() {
                match ev.token() {
                    CONTROL => self.read_control(),
                    SIGNALS => self.take_signals(),
                    INPUT => self.write_input(true),
                    OOM => self.oom_event(),
                    FORKS => self.fork_events(),
                    t => {
                        if let Some(out) = OUTPUT
                            .iter()
                            .position(|o| *o == t)
                            .and_then(|i| self.outputs[i].as_mut())
                        {
                            out.readable = true;
                        }
                    }
                }
            }
        }
        self.finish()
    }

    /// Starts ending the tree for `reason`, unless it is already ending.
    fn end(&mut self, reason: Reason) {
        let (tree, grace) = (&mut self.tree, self.cfg.grace);
        let first = self.cfg.kill_signal;
        // The kernel may tell of an OOM before its SIGKILL reaches the
        // victim (v1 does): a `first` signal sent early could get there
        // first, and the victim would die of it, not of the OOM kill. So
        // after an OOM the round freezes the cgroup before it signals
        // anyone (`Tree::terminate`).
        let group_first = reason != Reason::Memory;
        let (looked, reaped) = (&mut self.looked, &mut self.reaped_since_look);
        self.phase.end(reason, || {
            tree.terminate(first, group_first);
            // The next look waits for a SIGCHLD or a tick: the members
            // that die of the signal get the CPU first (on a machine of
            // one or two cores the look would delay their death).
            *reaped = false;
            *looked = Instant::now();
            looked.checked_add(grace)
        });
    }

    /// Whether the teardown looks at the tree now: a member died
    /// (SIGCHLD), or a [`TEARDOWN_TICK`] passed since the last look.
    fn look_due(&mut self, now: Instant) -> bool {
        let due = std::mem::take(&mut self.reaped_since_look) || now >= self.looked + TEARDOWN_TICK;
        if due {
            self.looked = now;
        }
        due
    }

    /// The OOM killer acted in the cgroup: the whole tree ends, whatever
    /// the main child does next, and the reason is `memory`.
    fn oom_event(&mut self) {
        let Some(w) = &self.oom else {
            return;
        };
        w.drain();
        let killed = match w.kind() {
            // v1 tells of the OOM itself; the kill follows it.
            OomSignal::UnderOom => true,
            OomSignal::EventsChanged => self
                .tree
                .group
                .as_ref()
                .and_then(|g| g.oom_kills())
                .is_some_and(|n| n > 0),
        };
        if killed {
            self.phase.blame_memory();
            self.end(Reason::Memory);
        }
    }

    /// Processes forked or exited: past `max_processes`, the tree ends at
    /// once rather than at the next look at `/proc`.
    fn fork_events(&mut self) {
        let Some(f) = self.forks.as_mut() else {
            return;
        };
        f.read();
        if f.lost {
            // The kernel dropped events in a burst: count from /proc.
            f.resync(self.tree.members().iter().map(|p| p.pid));
        }
        let over = self
            .cfg
            .limits
            .max_processes
            .is_some_and(|limit| f.count() > limit);
        if over && self.phase.child_running() {
            self.end(Reason::MaxProcesses);
        }
    }

    /// Moves the phase on: limits, the child's exit, the tree emptying.
    fn advance(&mut self) {
        let now = Instant::now();
        let running = self.phase.child_running();
        match self.phase.step() {
            Step::Running => {
                if running && self.deadline.is_some_and(|t| now >= t) {
                    return self.end(Reason::Timeout);
                }
                if running {
                    if let Some(reason) = self.watch.check(&self.tree, now) {
                        return self.end(reason);
                    }
                } else if self.tree.is_empty() {
                    self.phase.gone();
                } else {
                    // The child is gone; whatever it left behind goes too.
                    self.end(Reason::Exit);
                }
            }
            Step::Terminating { kill_at } => {
                if self.look_due(now) && self.tree.is_empty() {
                    self.phase.gone();
                } else if kill_at.is_some_and(|t| now >= t) {
                    self.tree.kill_all();
                    self.phase.gone();
                }
            }
            Step::Gone => {}
        }
        if self.phase.step() == Step::Gone {
            self.reap();
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        match self.phase.step() {
            Step::Running if self.phase.child_running() => {
                match (self.deadline, self.watch.deadline()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            // The child exited but its tree is still being looked at.
            Step::Running => Some(Instant::now()),
            Step::Terminating { kill_at } => {
                let tick = self.looked + TEARDOWN_TICK;
                Some(kill_at.map_or(tick, |t| t.min(tick)))
            }
            Step::Gone => None,
        }
    }

    fn finished(&self) -> bool {
        self.phase
            .finished(self.outputs.iter().flatten().all(Output::done))
    }

    fn take_signals(&mut self) {
        let pending: Vec<i32> = self.base.signals.pending().collect();
        for sig in pending {
            if sig == SIGCHLD {
                self.reaped_since_look = true;
            } else {
                self.end(Reason::Stopped);
            }
        }
    }
}
