//! Test harness for the `corral` helper: runs the real binary in port mode,
//! speaks the protocol to it (frames decoded with `corral_proto`), acks
//! output under a chosen policy and checks the window on every data frame.
//!
//! Waiting is always "poll with a deadline": [`Helper::until`] steps through
//! frames as they arrive and fails with the helper's state when time runs
//! out. Nothing sleeps and hopes.

#![allow(dead_code, unused_imports)] // each test file uses a different part

pub use corral_proto::{key, Down, Fields, Reason, Up};
use corral_proto::{Deframer, HEADER};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The helper under test.
pub const CORRAL: &str = env!("CARGO_BIN_EXE_corral");

/// The helper's default `--stdio-window`.
pub const DEFAULT_WINDOW: u64 = 1 << 20;

/// The path of test program `name` from `native/corral_testbins`.
///
/// They are another crate's binaries, so cargo does not hand us their paths;
/// they are built into the same `target/<profile>/` as `corral` by
/// `cargo test --workspace` or `-p corral_testbins` (that crate has an
/// integration test, which makes cargo build its bins). Set
/// `CORRAL_TESTBINS_DIR` to look elsewhere.
pub fn testbin(name: &str) -> String {
    let dir = std::env::var_os("CORRAL_TESTBINS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(CORRAL)
                .parent()
                .expect("corral has a directory")
                .to_path_buf()
        });
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "test program {} is missing. Build the test programs with the same \
         profile first: `cargo build -p corral_testbins` (add --release to \
         match), or run `cargo test --workspace`.",
        path.display()
    );
    path.into_os_string().into_string().expect("UTF-8 path")
}

/// The byte at offset `i` of `print_lots`' output.
pub use corral_testbins::pattern;

/// Asserts that `data` is exactly `n` bytes of `print_lots`' pattern.
pub fn assert_pattern(data: &[u8], n: u64) {
    assert_eq!(data.len() as u64, n, "output length");
    if let Some(i) = data
        .iter()
        .enumerate()
        .position(|(i, &b)| b != pattern(i as u64))
    {
        panic!(
            "output differs from the pattern at byte {i} of {n}: got {}, want {}",
            data[i],
            pattern(i as u64)
        );
    }
}

/// True when `pid` exists and is not a zombie.
pub use corral_testbins::alive;

/// Polls until none of `pids` is alive or `within` has passed; returns the
/// ones still alive (empty means all gone).
pub fn wait_gone(pids: &[i32], within: Duration) -> Vec<i32> {
    let deadline = Instant::now() + within;
    loop {
        let left: Vec<i32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// SIGKILLs `pids` (cleanup after a failed assertion; pids the test started).
pub fn kill_all(pids: &[i32]) {
    for &p in pids {
        if alive(p) {
            // SAFETY: kill(2) takes plain integers and has no memory effects.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
    }
}

/// Containment options a test runs under (see [`in_both_modes`]).
pub type Mode = &'static [&'static str];

/// `mode` followed by `opts`.
pub fn with<'a>(mode: Mode, opts: &[&'a str]) -> Vec<&'a str> {
    mode.iter().chain(opts).copied().collect()
}

/// Turns `fn name(mode: Mode)` into two tests, `name::default` (a cgroup
/// where the system offers one, else subreaper) and `name::no_cgroup`
/// (subreaper and process group only): ending the tree must hold in both.
#[macro_export]
macro_rules! in_both_modes {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn default() {
                super::$name(&[]);
            }
            #[test]
            fn no_cgroup() {
                super::$name(&["--no-cgroup"]);
            }
        }
    )*};
}

/// When the harness acks output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ack {
    /// Each data frame as it arrives.
    Every,
    /// Once this many bytes are unacked, all of them (as the Elixir side does).
    Batch(u64),
    /// Never: the window must fill and stall.
    Never,
}

/// What the harness does with a pipe the helper hands over (`P`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direct {
    /// Read the bytes through `/proc/<pid>/fd/<fd>`, as the BEAM does,
    /// then say so (`D` read).
    Read,
    /// Refuse it (`D` refused): the helper must relay it again.
    Refuse,
}

/// What the reader thread saw on the helper's stdout.
enum Event {
    Frame(Up),
    Eof,
    Garbage(String),
}

/// One running helper and everything it sent so far.
pub struct Helper {
    child: Child,
    control: Option<ChildStdin>,
    events: Receiver<Event>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_eof: Arc<AtomicBool>,
    detach: Arc<AtomicBool>,
    /// Reads of the helper's stdout that ended inside a frame.
    pub cut_reads: Arc<AtomicUsize>,
    /// The helper's own pid.
    pub pid: i32,
    /// The child's pid, from `S`.
    pub child_pid: Option<i32>,
    /// Containment mode, from `S`.
    pub containment: Option<u8>,
    /// The child's cgroup directories, from `S`.
    pub cgroups: Vec<String>,
    /// `O` payload, concatenated.
    pub out: Vec<u8>,
    /// `E` payload, concatenated.
    pub err: Vec<u8>,
    /// Tags of the frames in arrival order.
    pub tags: Vec<u8>,
    /// The largest `O` or `E` payload.
    pub largest: usize,
    /// The `X` frame.
    pub exit: Option<(Reason, Fields)>,
    /// The `F` frame.
    pub failed: Option<Fields>,
    /// The helper closed its stdout.
    pub eof: bool,
    /// `O` + `E` payload bytes received.
    pub received: u64,
    /// Received minus acked.
    pub in_flight: u64,
    /// The window the helper was given; checked on every data frame.
    pub window: u64,
    /// The ack policy.
    pub ack: Ack,
    /// Sleep this long before each ack: a slow consumer.
    pub ack_delay: Duration,
    /// Frames arriving after `X` or `F`.
    pub after_last: usize,
    /// Stdin bytes the helper confirmed with `W` frames (not in `tags`).
    pub stdin_written: u64,
    /// Pids from the `ready` line, killed on drop if the test panicked.
    pub reported_pids: Vec<i32>,
    /// The policy for `P` frames.
    pub direct: Direct,
    /// Bytes read from handed-over pipes (also in `out` and `err`).
    pub read_directly: u64,
}

impl Helper {
    /// Starts `corral --port --protocol 1 OPTS -- COMMAND`.
    pub fn port(opts: &[&str], command: &[&str]) -> Helper {
        let mut argv = vec!["--port", "--protocol", "1"];
        argv.extend_from_slice(opts);
        argv.push("--");
        argv.extend_from_slice(command);
        Helper::spawn(&argv)
    }

    /// Starts `corral` with exactly `argv`.
    pub fn spawn(argv: &[&str]) -> Helper {
        Helper::spawn_in(argv, None)
    }

    /// Starts `corral` with exactly `argv`, in directory `cwd` when given.
    pub fn spawn_in(argv: &[&str], cwd: Option<&Path>) -> Helper {
        let mut command = Command::new(CORRAL);
        if let Some(dir) = cwd {
            command.current_dir(dir);
        }
        let mut child = command
            .args(argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start corral");
        let (tx, events) = channel();
        let mut stdout = child.stdout.take().expect("stdout");
        let detach = Arc::new(AtomicBool::new(false));
        let detached = Arc::clone(&detach);
        let cut_reads = Arc::new(AtomicUsize::new(0));
        let cuts = Arc::clone(&cut_reads);
        std::thread::spawn(move || {
            let mut deframer = Deframer::default();
            let mut buf = vec![0u8; 1 << 16];
            let (mut pushed, mut framed) = (0usize, 0usize);
            loop {
                let n = match stdout.read(&mut buf) {
                    Ok(0) => {
                        let last = if pushed == framed {
                            Event::Eof
                        } else {
                            Event::Garbage(format!("{} bytes of a cut frame", pushed - framed))
                        };
                        let _ = tx.send(last);
                        return;
                    }
                    // Dropping `stdout` on return closes our read end.
                    Ok(_) if detached.load(Ordering::Acquire) => {
                        let _ = tx.send(Event::Eof);
                        return;
                    }
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let _ = tx.send(Event::Garbage(e.to_string()));
                        return;
                    }
                };
                pushed += n;
                deframer.push(&buf[..n]);
                loop {
                    let event = match deframer.next_frame() {
                        Ok(None) => break,
                        Ok(Some(body)) => {
                            framed += HEADER + body.len();
                            match Up::decode(&body) {
                                Ok(frame) => Event::Frame(frame),
                                Err(e) => Event::Garbage(e.to_string()),
                            }
                        }
                        Err(e) => Event::Garbage(e.to_string()),
                    };
                    let stop = matches!(event, Event::Garbage(_));
                    if tx.send(event).is_err() || stop {
                        return;
                    }
                }
                if pushed != framed {
                    cuts.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut err_pipe = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&stderr);
        let stderr_eof = Arc::new(AtomicBool::new(false));
        let eof = Arc::clone(&stderr_eof);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .expect("stderr lock")
                    .extend_from_slice(&buf[..n]);
            }
            eof.store(true, Ordering::Release);
        });
        let window = argv
            .iter()
            .position(|a| *a == "--stdio-window")
            .and_then(|i| argv.get(i + 1))
            .map(|w| w.parse().expect("window"))
            .unwrap_or(DEFAULT_WINDOW);
        Helper {
            pid: child.id() as i32,
            control: child.stdin.take(),
            child,
            events,
            stderr,
            stderr_eof,
            detach,
            cut_reads,
            child_pid: None,
            containment: None,
            cgroups: Vec::new(),
            out: Vec::new(),
            err: Vec::new(),
            tags: Vec::new(),
            largest: 0,
            exit: None,
            failed: None,
            eof: false,
            received: 0,
            in_flight: 0,
            window,
            ack: Ack::Every,
            ack_delay: Duration::ZERO,
            after_last: 0,
            stdin_written: 0,
            reported_pids: Vec::new(),
            direct: Direct::Read,
            read_directly: 0,
        }
    }

    /// Sends a frame on the control channel. A helper that has already
    /// exited makes this a no-op (its pipe is closed), which is fine for acks.
    pub fn send(&mut self, frame: &Down) {
        self.send_raw(&frame.encode());
    }

    /// Writes raw bytes on the control channel.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        if let Some(c) = self.control.as_mut() {
            let _ = c.write_all(bytes).and_then(|()| c.flush());
        }
    }

    /// Everything the helper wrote to its stderr, once the pipe is closed
    /// (when the helper and every process that inherited it are gone).
    pub fn stderr_all(&self, within: Duration) -> String {
        let deadline = Instant::now() + within;
        while !self.stderr_eof.load(Ordering::Acquire) {
            assert!(Instant::now() < deadline, "helper stderr still open");
            std::thread::sleep(Duration::from_millis(5));
        }
        self.stderr()
    }

    /// Acks `n` bytes.
    pub fn ack(&mut self, n: u64) {
        assert!(n <= self.in_flight, "the test acks more than it received");
        self.in_flight -= n;
        self.send(&Down::Ack(n as u32));
    }

    /// Closes the control channel, as a dying BEAM does.
    pub fn close_control(&mut self) {
        self.control = None;
    }

    /// Closes our end of the helper's stdout, as a dead BEAM does, the next
    /// time the helper writes: its later writes fail with `EPIPE`.
    pub fn close_output(&mut self) {
        self.detach.store(true, Ordering::Release);
    }

    /// What the helper wrote to its stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("stderr lock")).into_owned()
    }

    fn record(&mut self, frame: Up) {
        if self.exit.is_some() || self.failed.is_some() {
            self.after_last += 1;
        }
        let data_len = match &frame {
            Up::Stdout(d) | Up::Stderr(d) => d.len() as u64,
            // Read bytes count against the window; refused ones are the
            // helper's to relay and count then.
            Up::Pipe { bytes, .. } if self.direct == Direct::Read => u64::from(*bytes),
            _ => 0,
        };
        if !matches!(frame, Up::Pipe { .. }) {
            self.largest = self.largest.max(data_len as usize);
        }
        match frame {
            Up::Started {
                version,
                os_pid,
                containment,
                paths,
            } => {
                self.tags.push(b'S');
                assert_eq!(version, corral_proto::VERSION, "S carries our version");
                assert!(containment <= 7, "containment {containment}");
                assert_eq!(paths.is_empty(), containment & 3 == 0, "paths {paths:?}");
                assert!(paths.iter().all(|p| p.starts_with('/')), "{paths:?}");
                self.child_pid = Some(os_pid as i32);
                self.containment = Some(containment);
                self.cgroups = paths;
            }
            Up::Stdout(d) => {
                self.tags.push(b'O');
                self.out.extend_from_slice(&d);
            }
            Up::Stderr(d) => {
                self.tags.push(b'E');
                self.err.extend_from_slice(&d);
            }
            Up::Failed { version, fields } => {
                self.tags.push(b'F');
                assert_eq!(version, corral_proto::VERSION, "F carries our version");
                self.failed = Some(fields);
            }
            Up::Exit { reason, fields } => {
                self.tags.push(b'X');
                self.exit = Some((reason, fields));
            }
            Up::Written(n) => self.stdin_written += u64::from(n),
            Up::Pipe {
                stream,
                pid,
                fd,
                bytes,
            } => {
                self.tags.push(b'P');
                assert_eq!(pid as i32, self.pid, "P names the helper");
                assert!(bytes > 0, "P of no bytes");
                let state = match self.direct {
                    Direct::Refuse => corral_proto::PipeState::Refused,
                    Direct::Read => {
                        let path = format!("/proc/{pid}/fd/{fd}");
                        let mut data = vec![0; bytes as usize];
                        std::fs::File::open(&path)
                            .and_then(|mut f| f.read_exact(&mut data))
                            .expect("read the bytes P names");
                        self.read_directly += u64::from(bytes);
                        match stream {
                            b'O' => self.out.extend_from_slice(&data),
                            b'E' => self.err.extend_from_slice(&data),
                            other => panic!("P for stream {other}"),
                        }
                        corral_proto::PipeState::Read
                    }
                };
                self.send(&Down::Pipe { stream, state });
            }
        }
        if data_len == 0 {
            return;
        }
        assert!(
            !matches!(self.tags.first(), Some(b'O' | b'E')),
            "data before S"
        );
        self.received += data_len;
        self.in_flight += data_len;
        // What the helper had in flight when it sent this frame is at least
        // what we count here, so this is a lower bound on its in_flight.
        assert!(
            self.in_flight <= self.window,
            "helper overran the window: {} bytes unacked, window {}",
            self.in_flight,
            self.window
        );
        let due = match self.ack {
            Ack::Every => true,
            Ack::Batch(n) => self.in_flight >= n,
            Ack::Never => false,
        };
        if due {
            if !self.ack_delay.is_zero() {
                // Simulates a slow consumer; not a wait for a condition.
                std::thread::sleep(self.ack_delay);
            }
            self.ack(self.in_flight);
        }
    }

    /// Handles the next event, waiting at most `timeout`. False on timeout
    /// or after EOF.
    pub fn step(&mut self, timeout: Duration) -> bool {
        if self.eof {
            return false;
        }
        match self.events.recv_timeout(timeout) {
            Ok(Event::Frame(f)) => {
                self.record(f);
                true
            }
            Ok(Event::Eof) | Err(RecvTimeoutError::Disconnected) => {
                self.eof = true;
                // Whatever is still unacked when the helper is done was
                // consumed; the Elixir side acks it too.
                true
            }
            Ok(Event::Garbage(e)) => panic!("the helper sent garbage: {e}"),
            Err(RecvTimeoutError::Timeout) => false,
        }
    }

    /// Steps until `cond` holds; panics naming `what` after `within`.
    pub fn until(&mut self, what: &str, within: Duration, cond: impl Fn(&Helper) -> bool) {
        let deadline = Instant::now() + within;
        while !cond(self) {
            let now = Instant::now();
            if now >= deadline {
                panic!(
                    "timed out after {within:?} waiting for {what}; frames {:?}, \
                     {} stdout bytes {:?}, stderr {:?}, helper stderr {:?}",
                    String::from_utf8_lossy(&self.tags),
                    self.out.len(),
                    String::from_utf8_lossy(&self.out[..self.out.len().min(200)]),
                    String::from_utf8_lossy(&self.err[..self.err.len().min(200)]),
                    self.stderr()
                );
            }
            if !self.step(deadline - now) && self.eof {
                // EOF and the condition still fails: it never will.
                assert!(cond(self), "helper closed its stdout before {what}");
            }
        }
    }

    /// Waits for `S` and returns the child's pid.
    pub fn started(&mut self) -> i32 {
        self.until("S", Duration::from_secs(5), |h| {
            h.child_pid.is_some() || h.failed.is_some()
        });
        assert_eq!(
            self.tags.first(),
            Some(&b'S'),
            "first frame is S; failed: {:?}",
            self.failed
        );
        self.child_pid.expect("S")
    }

    /// Waits for the child's first stdout line, which must start with
    /// `ready`, and returns the pids listed after it.
    pub fn ready(&mut self) -> Vec<i32> {
        self.started();
        self.until("the ready line", Duration::from_secs(5), |h| {
            h.out.contains(&b'\n')
        });
        let line_end = self.out.iter().position(|&b| b == b'\n').expect("a line");
        let line = String::from_utf8_lossy(&self.out[..line_end]).into_owned();
        let mut words = line.split_whitespace();
        assert_eq!(words.next(), Some("ready"), "first line {line:?}");
        let pids: Vec<i32> = words.map(|w| w.parse().expect("pid")).collect();
        self.reported_pids.clone_from(&pids);
        pids
    }

    fn no_exit(&self) -> ! {
        panic!(
            "no X frame; frames {:?}, failed {:?}, helper stderr {:?}",
            String::from_utf8_lossy(&self.tags),
            self.failed,
            self.stderr()
        )
    }

    /// Reads until this run's `X`, leaves the channel open as the BEAM does
    /// when it puts a pooled helper back, and forgets the run's frames so
    /// the next `R` starts a fresh record. Returns the `X` frame.
    pub fn end_run(&mut self, within: Duration) -> (Reason, Fields) {
        self.until("X", within, |h| h.exit.is_some() || h.eof);
        let exit = self.exit.take().unwrap_or_else(|| self.no_exit());
        assert_eq!(self.after_last, 0, "frames after X");
        self.tags.clear();
        self.out.clear();
        self.err.clear();
        self.child_pid = None;
        self.received = 0;
        self.in_flight = 0;
        exit
    }

    /// Reads until `X`, closes the control channel as the BEAM does once it
    /// has `X` (`docs/protocol.md`, "Ending the tree"), reads until the helper
    /// closes its stdout, and returns the `X` frame. Checks that `X` was the
    /// last frame.
    pub fn finish(&mut self, within: Duration) -> (Reason, Fields) {
        self.until("X", within, |h| h.exit.is_some() || h.eof);
        self.close_control();
        self.until("the helper to close its stdout", within, |h| h.eof);
        assert_eq!(self.after_last, 0, "frames after the last one");
        let exit = self.exit.clone().unwrap_or_else(|| self.no_exit());
        assert_eq!(self.tags.last(), Some(&b'X'), "X is the last frame");
        assert_eq!(
            exit.1.get_int(key::CONTAINMENT),
            self.containment.map(u64::from),
            "X reports the containment S announced"
        );
        exit
    }

    /// Polls the helper process until it exits; panics after `within`.
    pub fn wait(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "helper {} still running after {within:?}",
                self.pid
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The helper's exit code, waiting at most `within`. Also asserts that
    /// the exited helper left none of its cgroup directories behind.
    pub fn exit_code(&mut self, within: Duration) -> i32 {
        let status = self.wait(within);
        let left: Vec<&String> = self
            .cgroups
            .iter()
            .filter(|p| Path::new(p).exists())
            .collect();
        assert!(left.is_empty(), "cgroups left behind: {left:?}");
        status
            .code()
            .unwrap_or_else(|| panic!("helper died of a signal: {status:?}"))
    }

    /// The stdout received, as text.
    pub fn out_text(&self) -> String {
        String::from_utf8_lossy(&self.out).into_owned()
    }
}

impl Drop for Helper {
    /// A test that fails half-way still ends its tree: closing the control
    /// channel is what makes the helper kill it. If the test panicked (the
    /// helper may be the thing that is broken), the pids the child reported
    /// are killed too; only then, so a passing test never signals a pid that
    /// may have been reused.
    fn drop(&mut self) {
        self.control = None;
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            kill_all(&self.reported_pids);
        }
    }
}

/// The integer field `k` of `fields`, or a panic naming it.
pub fn int(fields: &Fields, k: u8) -> u64 {
    fields
        .get_int(k)
        .unwrap_or_else(|| panic!("field {k} missing from {fields:?}"))
}

/// The text field `k` of `fields`, or a panic naming it.
pub fn text(fields: &Fields, k: u8) -> String {
    fields
        .get_text(k)
        .unwrap_or_else(|| panic!("field {k} missing from {fields:?}"))
        .to_owned()
}

/// Context switches (voluntary and not) of every thread of `pid`, and its
/// user + system CPU in clock ticks (`proc(5)`).
pub fn activity(pid: i32) -> (u64, u64) {
    let mut switches = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks") {
        let status =
            std::fs::read_to_string(task.expect("task").path().join("status")).expect("status");
        switches += status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .map(|l| {
                l.split_whitespace()
                    .last()
                    .and_then(|n| n.parse::<u64>().ok())
                    .expect("a count")
            })
            .sum::<u64>();
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after_name = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Field n of proc(5) is fields[n - 3]: utime is 14, stime 15.
    let ticks =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    (switches, ticks)
}

/// Asserts that `pid` sleeps: once start-up has settled (two samples 100 ms
/// apart agree, polled with a deadline), one second passes with at most one
/// context switch and at most one clock tick of CPU. A loop that spins on a
/// zero timeout would show as CPU even without switches.
pub fn assert_idle(pid: i32, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut last = activity(pid);
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = activity(pid);
        if now == last {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the helper never went quiet: {now:?}"
        );
        last = now;
    }
    std::thread::sleep(Duration::from_secs(1));
    let now = activity(pid);
    let (switches, ticks) = (now.0 - last.0, now.1 - last.1);
    assert!(
        switches <= 1 && ticks <= 1,
        "{what}: an idle helper woke {switches} times and used {ticks} CPU ticks in 1 s"
    );
}

/// Short deadlines: these are upper bounds for a loaded 2-CPU machine, not
/// expected durations.
pub const SOON: Duration = Duration::from_secs(10);
