//! One run of one child: the event loop that serves the control channel,
//! the child's pipes, signals and deadlines until the tree is gone.
//!
//! Nothing here polls while the child runs without limits: the loop sleeps
//! in `epoll_wait` with no timeout until a pipe, a signal or the BEAM has
//! something. Only while the tree is being ended does it tick (every
//! [`TEARDOWN_TICK`]) to see whether the last member has gone.

use crate::limits::{Limits, Watch};
use crate::report::{Report, Status, Usage};
use crate::stdio::{self, Input, Output, Sink};
use crate::sys::Forks;
use crate::tree::Tree;
use corral_cgroup::{OomSignal, OomWatch};
use corral_proto::{Deframer, Down, Reason, Window};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const CONTROL: Token = Token(0);
const SIGNALS: Token = Token(1);
const OUTPUT: [Token; 2] = [Token(2), Token(3)];
const INPUT: Token = Token(4);
const OOM: Token = Token(5);
const FORKS: Token = Token(6);

/// How often the loop looks at the tree while waiting for it to empty.
pub const TEARDOWN_TICK: Duration = Duration::from_millis(5);

/// Where the run is.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    /// The child runs (or has exited and its tree was found empty).
    Running,
    /// SIGTERM was sent; SIGKILL follows at `kill_at` unless the tree
    /// empties (`None`: a grace so long its end is past the clock's).
    Terminating { kill_at: Option<Instant> },
    /// Nobody in the tree is alive.
    Gone,
}

/// How a session ended, for `main` to turn into an exit status.
#[derive(Debug)]
pub enum Outcome {
    /// The child ran; here is its report.
    Finished(Report),
    /// The BEAM went away; the tree was ended and nobody can be told.
    Orphaned(Report),
    /// The BEAM sent something that is not the protocol.
    ProtocolError(String),
}

/// What outlives one run in a helper that serves several (`--pooled`):
/// the event loop, the signal pipe, the channel to the BEAM, what was read
/// from it but not yet handled, and the output buffer.
pub struct Base {
    poll: Poll,
    signals: Signals,
    sink: Sink,
    control: Option<Deframer>,
    buf: Vec<u8>,
}

impl Base {
    /// Sets up epoll and the signal pipe; with `control`, the BEAM's
    /// channel on stdin too (made non-blocking).
    ///
    /// # Errors
    /// The OS errors of setting those up.
    pub fn new(sink: Sink, control: bool) -> std::io::Result<Base> {
        let poll = Poll::new()?;
        let mut signals = Signals::new([SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT])?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        let control = if control {
            stdio::set_nonblocking(0)?;
            poll.registry()
                .register(&mut SourceFd(&0), CONTROL, Interest::READABLE)?;
            Some(Deframer::default())
        } else {
            None
        };
        Ok(Base {
            poll,
            signals,
            sink,
            control,
            buf: vec![0; corral_proto::HEADER + 1 + stdio::MAX_CHUNK],
        })
    }

    /// The next whole frame already read from the BEAM, decoded.
    fn buffered_frame(&mut self) -> Result<Option<Down>, String> {
        let Some(deframer) = self.control.as_mut() else {
            return Ok(None);
        };
        match deframer.next_frame().map_err(|e| e.to_string())? {
            Some(body) => Down::decode(&body).map(Some).map_err(|e| e.to_string()),
            None => Ok(None),
        }
    }

    /// After `X` or `F`, reads and drops frames until the BEAM closes the
    /// control channel (or a signal asks the helper to go). Exiting first
    /// would close our stdin under the BEAM while it may still be writing
    /// an ack, and a port whose write fails with `EPIPE` exits with reason
    /// `:epipe`, which kills its owner.
    pub fn await_close(&mut self) {
        while let Ok(Some(_)) = self.next_frame() {}
    }

    /// Where frames to the BEAM go.
    pub fn sink(&mut self) -> &mut Sink {
        &mut self.sink
    }

    /// Waits for the next frame from the BEAM between runs. `None` when the
    /// channel closed or a signal (other than SIGCHLD) asks the helper to
    /// go: with no child there is nothing to end.
    ///
    /// # Errors
    /// A frame that does not decode.
    pub fn next_frame(&mut self) -> Result<Option<Down>, String> {
        let mut events = Events::with_capacity(4);
        let mut closed = false;
        loop {
            if let Some(frame) = self.buffered_frame()? {
                return Ok(Some(frame));
            }
            let Some(deframer) = self.control.as_mut() else {
                return Ok(None);
            };
            if closed {
                self.control = None;
                return Ok(None);
            }
            let read = read_available(deframer);
            closed = read.eof;
            if read.got || !read.drained || closed {
                continue;
            }
            match self.poll.poll(&mut events, None) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("epoll: {e}")),
            }
            if events.iter().any(|ev| ev.token() == SIGNALS)
                && self.signals.pending().any(|s| s != SIGCHLD)
            {
                return Ok(None);
            }
        }
    }
}

/// What one [`read_available`] did.
struct Read {
    /// Bytes came.
    got: bool,
    /// The channel reached end of file (or failed).
    eof: bool,
    /// The pipe is empty (`EAGAIN`): the edge-triggered event loop will say
    /// when more comes. Otherwise reading stopped at [`READ_AHEAD`] and the
    /// caller reads again once it has handled the frames.
    drained: bool,
}

/// Reads what stdin has into `deframer` without blocking, until the pipe
/// is empty or the deframer holds [`READ_AHEAD`] bytes, so a flood is
/// handled frame by frame rather than buffered whole: the deframer holds
/// at most a read and the largest frame.
fn read_available(deframer: &mut Deframer) -> Read {
    let mut chunk = [0u8; 64 << 10];
    let mut got = false;
    let done = |got, eof, drained| Read { got, eof, drained };
    // A frame larger than READ_AHEAD is read to its end before it is handled.
    while deframer.buffered() < READ_AHEAD || !deframer.frame_ready() {
        match nix::unistd::read(0, &mut chunk) {
            Ok(0) => return done(got, true, true),
            Ok(n) => {
                got = true;
                deframer.push(&chunk[..n]);
            }
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => return done(got, false, true),
            Err(_) => return done(got, true, true),
        }
    }
    done(got, false, false)
}

/// How much [`read_available`] lets wait in the deframer before the frames
/// are handled: one read, or one whole frame when that is larger.
const READ_AHEAD: usize = 64 << 10;

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
    /// Containment mode for the report.
    pub containment: u8,
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
}

/// The state of one run.
pub struct Session {
    cfg: Config,
    base: Base,
    outputs: [Option<Output>; 2],
    input: Option<Input>,
    window: Window,
    child: Pid,
    tree: Tree,
    started: Instant,
    /// When the wall-time limit ends the run; `None` without one, or when
    /// it lies past the end of the clock (a limit of `u64::MAX` ms).
    deadline: Option<Instant>,
    status: Option<(Status, Instant)>,
    phase: Phase,
    reason: Option<Reason>,
    orphaned: bool,
    protocol_error: Option<String>,
    watch: Watch,
    /// Fires when the OOM killer acts in the cgroup ([`Config::watch_oom`]).
    oom: Option<OomWatch>,
    /// The tree's forks and exits as they happen, for `max_processes`
    /// without a cgroup; `None` where the helper polls instead.
    forks: Option<Forks>,
    /// The output pipes are out of the event loop while the window is full.
    parked: bool,
}

impl Session {
    /// Takes over a freshly spawned child.
    ///
    /// # Errors
    /// The OS errors of setting up epoll and the signal pipe.
    pub fn new(
        cfg: Config,
        child: crate::spawn::Child,
        tree: Tree,
        base: Base,
        started: Instant,
        mut forks: Option<Forks>,
    ) -> std::io::Result<Session> {
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
                outputs[i] = Some(Output::new(fd, stdio::tag_for(i)));
            }
        }
        let input = match child.stdin {
            Some(fd) => {
                stdio::set_nonblocking(fd.as_raw_fd())?;
                registry.register(&mut SourceFd(&fd.as_raw_fd()), INPUT, Interest::WRITABLE)?;
                Some(Input::new(fd))
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
            status: None,
            phase: Phase::Running,
            reason: None,
            orphaned: false,
            protocol_error: None,
            watch: Watch::new(polled, cfg.cgroup_pids, started),
            oom,
            forks,
            parked: false,
        })
    }

    /// Runs until the tree is gone and its output delivered. The [`Base`]
    /// comes back after a run that ended with `X` when
    /// [`Config::serve_again`] asks for it.
    pub fn run(mut self) -> (Outcome, Option<Base>) {
        let mut events = Events::with_capacity(16);
        // Frames that came with R were read already: the edge-triggered
        // event loop would not report them again.
        if self.base.control.is_some() {
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
                    self.protocol_error = Some(format!("epoll: {e}"));
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
        if self.reason.is_none() && self.status.is_none() {
            self.reason = Some(reason);
        }
        if self.phase == Phase::Running {
            self.tree.terminate();
            self.phase = Phase::Terminating {
                kill_at: Instant::now().checked_add(self.cfg.grace),
            };
        }
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
            self.reason.get_or_insert(Reason::Memory);
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
        if over && self.status.is_none() {
            self.end(Reason::MaxProcesses);
        }
    }

    /// Moves the phase on: limits, the child's exit, the tree emptying.
    fn advance(&mut self) {
        let now = Instant::now();
        match self.phase {
            Phase::Running => {
                if let Some(t) = self.deadline {
                    if self.status.is_none() && now >= t {
                        self.end(Reason::Timeout);
                        return;
                    }
                }
                if self.status.is_none() {
                    if let Some(reason) = self.watch.check(&self.tree, now) {
                        self.end(reason);
                        return;
                    }
                }
                if self.status.is_some() {
                    // The child is gone; whatever it left behind goes too.
                    if self.tree.is_empty() {
                        self.phase = Phase::Gone;
                    } else {
                        self.end(Reason::Exit);
                    }
                }
            }
            Phase::Terminating { kill_at } => {
                if self.tree.is_empty() {
                    self.phase = Phase::Gone;
                } else if kill_at.is_some_and(|t| now >= t) {
                    self.tree.kill_all();
                    self.phase = Phase::Gone;
                }
            }
            Phase::Gone => {}
        }
        if self.phase == Phase::Gone {
            self.reap();
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Running if self.status.is_none() => {
                match (self.deadline, self.watch.deadline()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            // The child exited but its tree is still being looked at.
            Phase::Running => Some(Instant::now()),
            Phase::Terminating { kill_at } => {
                let tick = Instant::now() + TEARDOWN_TICK;
                Some(kill_at.map_or(tick, |t| t.min(tick)))
            }
            Phase::Gone => None,
        }
    }

    fn finished(&self) -> bool {
        self.phase == Phase::Gone
            && self.status.is_some()
            && (self.orphaned || self.outputs.iter().flatten().all(|o| o.eof))
    }

    /// Reaps every exited child; the main child's status is kept.
    fn reap(&mut self) {
        self.reap_with(Some(WaitPidFlag::WNOHANG));
    }

    /// Waits for every remaining child to be reaped.
    fn reap_blocking(&mut self) {
        self.reap_with(None);
    }

    fn reap_with(&mut self, flags: Option<WaitPidFlag>) {
        loop {
            match self.tree.reap_one(flags) {
                Ok(WaitStatus::Exited(pid, code)) if pid == self.child => {
                    self.status = Some((Status::Exited(code), Instant::now()));
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == self.child => {
                    self.status = Some((Status::Signaled(sig), Instant::now()));
                }
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    }

    fn take_signals(&mut self) {
        let pending: Vec<i32> = self.base.signals.pending().collect();
        for sig in pending {
            if sig != SIGCHLD {
                self.end(Reason::Stopped);
            }
        }
    }

    fn read_control(&mut self) {
        // Read in bounded pieces, handling the frames of each before the
        // next: what waits in the deframer stays below a frame and a read.
        let mut closed = false;
        while !closed {
            let Some(deframer) = self.base.control.as_mut() else {
                return;
            };
            let read = read_available(deframer);
            closed = read.eof;
            loop {
                match self.base.buffered_frame() {
                    Ok(Some(frame)) => self.handle(frame),
                    Ok(None) => break,
                    Err(e) => self.protocol_error = Some(e),
                }
                if self.protocol_error.is_some() {
                    // A protocol error ends the run as a closed channel
                    // does, and nothing more is read.
                    closed = true;
                    break;
                }
            }
            if read.drained {
                break;
            }
        }
        if closed {
            self.base.control = None;
            let _ = self.base.poll.registry().deregister(&mut SourceFd(&0));
            self.orphan();
        }
    }

    /// The BEAM is gone: end the tree and stop sending.
    fn orphan(&mut self) {
        self.orphaned = true;
        self.base.sink.open = false;
        self.end(Reason::Stopped);
    }

    fn handle(&mut self, frame: Down) {
        match frame {
            Down::Ack(n) => self.window.acked(n),
            Down::Stdin(data) => {
                if let Some(input) = self.input.as_mut() {
                    // The BEAM sends I only while less than a window is
                    // unconfirmed (docs/protocol.md, "Flow control"), so the
                    // helper never holds more than a window and a frame.
                    // Past that it is not the protocol, and the input would
                    // grow without bound in a child that does not read.
                    let outstanding = input.outstanding();
                    if outstanding >= self.cfg.window {
                        self.protocol_error = Some(format!(
                            "an I frame of {} bytes with {outstanding} bytes of input \
                             unconfirmed, a full window of {}",
                            data.len(),
                            self.cfg.window
                        ));
                        return;
                    }
                    input.push(data);
                    self.write_input(false);
                }
            }
            Down::CloseStdin => {
                if let Some(input) = self.input.as_mut() {
                    input.closing = true;
                    self.write_input(false);
                }
            }
            Down::Signal(name) => {
                let name = if name.starts_with("SIG") {
                    name
                } else {
                    format!("SIG{name}")
                };
                if let Ok(sig) = name.parse::<Signal>() {
                    let _ = nix::sys::signal::kill(self.child, sig);
                }
            }
            Down::Stop => self.end(Reason::Stopped),
            Down::Run(_) => {
                self.protocol_error = Some("R after the child started".into());
            }
        }
    }

    fn write_input(&mut self, now_writable: bool) {
        let Some(input) = self.input.as_mut() else {
            return;
        };
        if now_writable {
            input.writable = true;
        }
        let open = input.flush();
        // Confirm in batches of a quarter window, and whatever was written
        // once the queue is empty, so the BEAM never waits on a batch.
        let confirm = input.unconfirmed >= (self.cfg.window / 4).max(1)
            || (input.unconfirmed > 0 && (input.is_drained() || !open));
        if confirm && !self.orphaned {
            let n = u32::try_from(input.unconfirmed).unwrap_or(u32::MAX);
            input.unconfirmed -= u64::from(n);
            self.base.sink.send_up(&corral_proto::Up::Written(n));
        }
        if !open {
            let _ = self
                .base
                .poll
                .registry()
                .deregister(&mut SourceFd(&input.fd.as_raw_fd()));
            self.input = None;
        }
    }

    fn pump(&mut self) {
        if !self.base.sink.open && !self.orphaned {
            // A write to the BEAM failed: it is gone.
            self.orphan();
        }
        if self.orphaned {
            for out in self.outputs.iter_mut().flatten() {
                out.discard(&mut self.base.buf);
            }
            return;
        }
        if stdio::pump(
            &mut self.outputs,
            &mut self.window,
            &mut self.base.buf,
            &mut self.base.sink,
        ) {
            self.watch.output_seen(Instant::now());
        }
    }

    /// Takes the output pipes out of the event loop while the window is
    /// full, and puts them back once an ack makes room. Otherwise every
    /// write of the child wakes the helper for nothing: 1 GB of `head`
    /// behind a slow BEAM made 100,000 context switches, 9 per frame.
    /// Registering again reports a pipe that filled meanwhile (epoll checks
    /// readiness on `EPOLL_CTL_ADD`), so nothing is missed.
    fn park_outputs(&mut self) {
        let full = self.window.room() == 0;
        if full == self.parked {
            return;
        }
        let registry = self.base.poll.registry();
        for (i, out) in self.outputs.iter_mut().enumerate() {
            let Some(out) = out.as_mut().filter(|o| !o.eof) else {
                continue;
            };
            let mut fd = SourceFd(&out.fd.as_raw_fd());
            if full {
                let _ = registry.deregister(&mut fd);
            } else if registry
                .register(&mut fd, OUTPUT[i], Interest::READABLE)
                .is_ok()
            {
                out.readable = true;
            }
        }
        self.parked = full;
    }

    fn finish(mut self) -> (Outcome, Option<Base>) {
        // Every tree member is dead or dying; reap them all, waiting for the
        // ones still exiting, so their CPU time is in `tree.reaped` before
        // it is read. Everything left is our own child (the subreaper
        // adopted it), so this ends at ECHILD.
        self.reap();
        self.reap_blocking();
        let (status, ended) = self
            .status
            .unwrap_or((Status::Signaled(Signal::SIGKILL), Instant::now()));
        let (mut user, mut system, peak_rss) = self.tree.reaped.totals();
        let stats = self
            .tree
            .group
            .as_ref()
            .map(|g| g.stats())
            .unwrap_or_default();
        // The cgroup's CPU accounting covers every member, reaped or not.
        if let (Some(u), Some(s)) = (stats.user_usec, stats.system_usec) {
            user = user.max(Duration::from_micros(u));
            system = system.max(Duration::from_micros(s));
        }
        let oom_killed = stats.oom_kills.is_some_and(|n| n > 0);
        // A limit the kernel enforced is the cause even when the child then
        // ended by itself (a shell whose fork failed exits 2).
        let pids_refused = self.cfg.cgroup_pids && stats.pids_limit_hits.is_some_and(|n| n > 0);
        let reason = self.reason.unwrap_or(match status {
            // OOMPolicy=stop: any member's OOM kill is the run's reason,
            // even when the main child then exits 0.
            _ if oom_killed => Reason::Memory,
            _ if pids_refused => Reason::MaxProcesses,
            Status::Exited(_) => Reason::Exit,
            Status::Signaled(_) => Reason::Signal,
        });
        let report = Report {
            reason,
            status,
            usage: Usage {
                wall: ended.duration_since(self.started),
                user,
                system,
                peak_memory: Some(
                    stats
                        .peak_memory
                        .unwrap_or(peak_rss.max(self.watch.peak.memory)),
                ),
                peak_processes: stats.peak_pids.or(Some(
                    self.watch
                        .peak
                        .processes
                        .max(self.forks.as_ref().map_or(0, |f| f.peak)),
                )
                .filter(|n| *n > 0)),
                oom_kills: stats.oom_kills,
                pids_limit_hits: stats.pids_limit_hits,
            },
            containment: self.cfg.containment,
        };
        // The tree is empty. The directories go before the report, so a
        // caller that has it can reuse a :cgroup_path or remove its base.
        if let Err(e) = self.tree.remove_group() {
            eprintln!("corral: {e}");
        }
        if let Some(e) = self.protocol_error.take() {
            (Outcome::ProtocolError(e), None)
        } else if self.orphaned {
            (Outcome::Orphaned(report), None)
        } else {
            let mut base = None;
            if self.cfg.control {
                let serve_again = self.cfg.serve_again;
                // The run's descriptors (pipes, OOM watch, fork events)
                // close before X: once the BEAM has X, nothing of the run
                // is open in the helper.
                let mut rest = self.into_base();
                rest.sink.send_up(&corral_proto::Up::Exit {
                    reason: report.reason,
                    fields: report.fields(),
                });
                if serve_again && rest.sink.open {
                    base = Some(rest);
                } else if rest.sink.open {
                    rest.await_close();
                }
            }
            (Outcome::Finished(report), base)
        }
    }

    /// What the next run reuses. The child's pipes leave the event loop
    /// here and close when this run's state is dropped.
    fn into_base(self) -> Base {
        let registry = self.base.poll.registry();
        for out in self.outputs.iter().flatten() {
            let _ = registry.deregister(&mut SourceFd(&out.fd.as_raw_fd()));
        }
        if let Some(input) = &self.input {
            let _ = registry.deregister(&mut SourceFd(&input.fd.as_raw_fd()));
        }
        self.base
    }
}
