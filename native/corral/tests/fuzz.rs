//! A seeded protocol fuzzer: random and mutated frame streams into
//! `corral_proto`'s decoders and into real helpers (fresh and pooled).
//!
//! It asserts what must hold for any input: no panic (exit 101 or a
//! backtrace), no hang (every helper exits within a deadline once its
//! control channel closes), the helper's memory stays bounded, and the
//! child tree and its cgroups are gone.
//!
//! Hand-rolled rather than proptest: each case is a real process run, so
//! shrinking would cost minutes, and a seed plus a case number already
//! names a failing case exactly. `CORRAL_FUZZ_CASES` sets the number of
//! helper cases (default 24, for `cargo test`; `make stress` runs many
//! more), `CORRAL_FUZZ_SEED` the seed, `CORRAL_FUZZ_ONLY` one case to rerun
//! (each case has a generator of its own, seeded from the first). The summary line starting with
//! `fuzz:` is what `bench/stress/fuzz.exs` reads.

mod support;

use corral_proto::{Deframer, Down, Up, MAX_FRAME};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{kill_all, testbin, CORRAL};

/// xorshift64*: small, seeded, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn seed() -> u64 {
    env_u64("CORRAL_FUZZ_SEED", 0x5EED_C0DE) | 1
}

/// Arguments an `R` frame may carry: real options, values that begin with
/// `-`, huge numbers, and bytes that are not UTF-8.
fn garbage_args(rng: &mut Rng) -> Vec<Vec<u8>> {
    const WORDS: &[&str] = &[
        "--stdin",
        "pipe",
        "--timeout",
        "18446744073709551615ms",
        "99999999999999999999999h",
        "--grace",
        "--memory-limit",
        "1000000000000000000000000000000",
        "--max-processes",
        "0",
        "--cgroup-set",
        "pids_max=0",
        "cpu_max=17592186044416 100000",
        "--cd",
        "-dir",
        "--env",
        "-x=1",
        "--arg0",
        "-sh",
        "--stdio-window",
        "0",
        "--",
        "true",
        "--no-cgroup",
        "",
    ];
    let n = rng.below(8) as usize;
    let mut args: Vec<Vec<u8>> = (0..n)
        .map(|_| {
            if rng.chance(20) {
                let len = rng.below(12) as usize;
                rng.bytes(len)
            } else {
                rng.pick(WORDS).as_bytes().to_vec()
            }
        })
        .collect();
    if rng.chance(70) {
        args.extend(["--", "true"].map(|a| a.as_bytes().to_vec()));
    }
    args
}

/// One frame (or something that looks like one) for the control channel.
fn frame(rng: &mut Rng) -> Vec<u8> {
    match rng.below(12) {
        0 => Down::Ack(rng.next() as u32).encode(),
        1 | 2 => {
            let len = rng.below(70_000) as usize;
            Down::Stdin(rng.bytes(len)).encode()
        }
        3 => Down::CloseStdin.encode(),
        4 => {
            let names = [
                "HUP",
                "SIGUSR1",
                "SIGTERM",
                "KILL",
                "SIGNOPE",
                "",
                "\u{1F600}",
            ];
            Down::Signal(rng.pick(&names).to_string()).encode()
        }
        5 => Down::Stop.encode(),
        6 => Down::Run(garbage_args(rng)).encode(),
        // Any tag with any payload.
        7 => {
            let len = rng.below(64) as usize;
            let mut body = rng.bytes(len + 1);
            body[0] = rng.next() as u8;
            let mut out = (body.len() as u32).to_be_bytes().to_vec();
            out.extend(body);
            out
        }
        // A length past the limit, or the largest there is.
        8 => {
            let len = *rng.pick(&[u32::MAX, MAX_FRAME as u32 + 1, 0x7FFF_FFFF]);
            let mut out = len.to_be_bytes().to_vec();
            out.extend(rng.bytes(16));
            out
        }
        // An empty frame.
        9 => 0u32.to_be_bytes().to_vec(),
        // A frame that says more than it brings (the stream then ends).
        10 => {
            let mut out = (rng.below(MAX_FRAME as u64) as u32 + 1)
                .to_be_bytes()
                .to_vec();
            let len = rng.below(100) as usize;
            out.extend(rng.bytes(len));
            out
        }
        // A known tag with a payload of the wrong size.
        _ => {
            let tag = *rng.pick(b"ACKQRI");
            let len = rng.below(9) as usize;
            let mut body = vec![tag];
            body.extend(rng.bytes(len));
            let mut out = (body.len() as u32).to_be_bytes().to_vec();
            out.extend(body);
            out
        }
    }
}

/// A stream of frames, some of its bytes flipped now and then.
fn stream(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..=rng.below(12) {
        out.extend(frame(rng));
    }
    if rng.chance(25) {
        for _ in 0..=rng.below(4) {
            let i = rng.below(out.len() as u64) as usize;
            out[i] ^= 1 << rng.below(8);
        }
    }
    out
}

#[test]
fn decoders_take_any_bytes() {
    let mut rng = Rng(seed());
    let cases = env_u64("CORRAL_FUZZ_CASES", 24) * 200;
    for _ in 0..cases {
        let len = rng.below(40) as usize;
        let body = rng.bytes(len);
        let _ = Down::decode(&body);
        let _ = Up::decode(&body);
        let mut deframer = Deframer::default();
        let bytes = stream(&mut rng);
        for piece in bytes.chunks(1 + rng.below(300) as usize) {
            deframer.push(piece);
            while let Ok(Some(body)) = deframer.next_frame() {
                if let Ok(down) = Down::decode(&body) {
                    // What decodes re-encodes to a frame that decodes the
                    // same (a frame without payload may have had one).
                    let again = down.encode();
                    assert_eq!(Down::decode(&again[4..]).as_ref(), Ok(&down));
                }
            }
        }
    }
    println!("fuzz: decode cases={cases} crashes=0");
}

/// What one helper run left behind.
#[derive(Default)]
struct Outcome {
    panicked: bool,
    hung: bool,
    survivors: usize,
    leftover_cgroups: usize,
    peak_rss_kib: u64,
}

/// The child's pid and cgroup directories, from the `S` frames the
/// helper sent (one per run when pooled).
#[derive(Default)]
struct Seen {
    pids: Vec<i32>,
    cgroups: Vec<String>,
}

fn run_case(rng: &mut Rng, case: u64) -> Outcome {
    let pooled = rng.chance(40);
    let child = {
        let lots = testbin("print_lots");
        let choices: [Vec<String>; 4] = [
            vec!["cat".into()],
            vec!["sleep".into(), "30".into()],
            vec![
                "sh".into(),
                "-c".into(),
                "echo hi; sleep 5 & sleep 5".into(),
            ],
            vec![lots, "200000".into()],
        ];
        rng.pick(&choices).clone()
    };
    let mut opts: Vec<String> = vec!["--stdin".into(), "pipe".into()];
    if rng.chance(50) {
        opts.extend(["--stdio-window".into(), (1 + rng.below(70_000)).to_string()]);
    }
    if rng.chance(30) {
        opts.push("--no-cgroup".into());
    }
    opts.extend(["--grace".into(), "100ms".into()]);
    let mut argv: Vec<String> = ["--port", "--protocol", "1"].map(String::from).to_vec();
    let mut input = Vec::new();
    if pooled {
        argv.push("--pooled".into());
        if rng.chance(80) {
            let mut run: Vec<String> = opts.clone();
            run.push("--".into());
            run.extend(child.iter().cloned());
            input.extend(Down::Run(run.into_iter().map(String::into_bytes).collect()).encode());
        }
    } else {
        argv.extend(opts);
        argv.push("--".into());
        argv.extend(child);
    }
    input.extend(stream(rng));

    let mut helper = Command::new(CORRAL)
        .args(&argv)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start corral");
    let pid = helper.id() as i32;
    let mut control = helper.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        // Errors are expected: a helper may leave on a protocol error.
        let _ = control.write_all(&input);
    });
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut stdout = helper.stdout.take().expect("stdout");
    let record = Arc::clone(&seen);
    let reader = std::thread::spawn(move || {
        let mut deframer = Deframer::default();
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            deframer.push(&buf[..n]);
            while let Ok(Some(body)) = deframer.next_frame() {
                if let Ok(Up::Started { os_pid, paths, .. }) = Up::decode(&body) {
                    let mut s = record.lock().expect("lock");
                    s.pids.push(os_pid as i32);
                    s.cgroups.extend(paths);
                }
            }
        }
    });
    let mut stderr = helper.stderr.take().expect("stderr");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    // Once the stream is written (or refused) the writer closes the
    // channel, which must end every helper, whatever it was sent.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut out = Outcome::default();
    let status = loop {
        if let Some(kib) = peak_rss_kib(pid) {
            out.peak_rss_kib = out.peak_rss_kib.max(kib);
        }
        if let Some(status) = helper.try_wait().expect("try_wait") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            out.hung = true;
            kill_all(&[pid]);
            break helper.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = writer.join();
    let _ = reader.join();
    let text = errors.join().unwrap_or_default();
    let code = status.and_then(|s| s.code());
    if code == Some(101) || text.contains("panicked") || text.contains("RUST_BACKTRACE") {
        out.panicked = true;
        eprintln!("case {case}: helper exit {code:?}: {text}");
    }
    if out.hung {
        eprintln!("case {case}: the helper ({argv:?}) did not exit in 20 s");
    }
    let seen = seen.lock().expect("lock");
    let left: Vec<i32> = support::wait_gone(&seen.pids, Duration::from_secs(5));
    out.survivors = left.len();
    if !left.is_empty() {
        eprintln!("case {case}: children outlived their helper: {left:?}");
        kill_all(&left);
    }
    let cgroups: Vec<&String> = seen
        .cgroups
        .iter()
        .filter(|d| std::path::Path::new(d).exists())
        .collect();
    out.leftover_cgroups = cgroups.len();
    if !cgroups.is_empty() {
        eprintln!("case {case}: cgroups left: {cgroups:?}");
        // Counted as a failure; then removed, with what is left in them:
        // the helper made them for this case.
        for dir in cgroups {
            let procs = std::fs::read_to_string(format!("{dir}/cgroup.procs"));
            let pids: Vec<i32> = procs
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.parse().ok())
                .collect();
            kill_all(&pids);
            support::wait_gone(&pids, Duration::from_secs(5));
            let _ = std::fs::remove_dir(dir);
        }
    }
    out
}

/// The helper's peak resident set so far (`VmHWM`), in KiB, while it lives.
fn peak_rss_kib(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn helpers_survive_random_frame_streams() {
    let seed = seed();
    let cases = env_u64("CORRAL_FUZZ_CASES", 24);
    let mut rng = Rng(seed);
    let (mut panics, mut hangs, mut survivors, mut leftover, mut rss) = (0, 0, 0, 0, 0);
    let only = std::env::var("CORRAL_FUZZ_ONLY")
        .ok()
        .and_then(|c| c.parse().ok());
    for case in 0..cases {
        let mut case_rng = Rng(rng.next() | 1);
        if only.is_some_and(|only: u64| only != case) {
            continue;
        }
        let o = run_case(&mut case_rng, case);
        rss = rss.max(o.peak_rss_kib);
        panics += u64::from(o.panicked);
        hangs += u64::from(o.hung);
        survivors += o.survivors;
        leftover += o.leftover_cgroups;
    }
    println!(
        "fuzz: protocol seed={seed} cases={cases} panics={panics} hangs={hangs} \
         survivors={survivors} leftover_cgroups={leftover} helper_peak_rss_kib={rss}"
    );
    assert_eq!((panics, hangs), (0, 0), "seed {seed}");
    assert_eq!((survivors, leftover), (0, 0), "seed {seed}");
    // A window of input, the largest frame in the deframer (16 MiB), and
    // the helper itself (about 3 MiB).
    assert!(rss < 40 << 10, "a helper grew to {rss} KiB (seed {seed})");
}
