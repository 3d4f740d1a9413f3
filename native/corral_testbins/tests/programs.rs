//! Each test program does what its doc says. Having an integration test
//! also makes `cargo test` build the programs, which the helper's tests run.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use corral_testbins::alive;

fn kill(pid: i32) {
    // SAFETY: kill(2) takes plain integers; pid is one this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

#[test]
fn print_lots_writes_the_exact_pattern() {
    for (n, chunk) in [(0u64, "7"), (1, "7"), (100_000, "7"), (300_001, "65536")] {
        let out = Command::new(env!("CARGO_BIN_EXE_print_lots"))
            .args([n.to_string(), chunk.to_owned()])
            .output()
            .expect("run print_lots");
        assert!(out.status.success());
        assert_eq!(out.stdout.len() as u64, n);
        assert!(out
            .stdout
            .iter()
            .enumerate()
            .all(|(i, &b)| b == corral_testbins::pattern(i as u64)));
    }
}

#[test]
fn exit_with_code_and_signal() {
    use std::os::unix::process::ExitStatusExt;
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_exit_with"))
            .args(args)
            .status()
            .expect("run exit_with")
    };
    assert_eq!(run(&["3"]).code(), Some(3));
    assert_eq!(run(&["0"]).code(), Some(0));
    assert_eq!(run(&["signal", "SIGKILL"]).signal(), Some(libc::SIGKILL));
    assert_eq!(run(&["signal", "TERM"]).signal(), Some(libc::SIGTERM));
    assert_eq!(run(&["signal", "1"]).signal(), Some(libc::SIGHUP));
}

#[test]
fn stdin_echo_copies_until_eof() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stdin_echo"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run stdin_echo");
    let data: Vec<u8> = (0..200_000u64).map(corral_testbins::pattern).collect();
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&data).map(|()| data));
    let out = child.wait_with_output().expect("wait");
    let data = writer.join().expect("writer").expect("write");
    assert!(out.status.success());
    assert_eq!(out.stdout, data);
}

/// Starts `program`, waits for its `ready` line, returns it and the child.
fn ready(program: &str, args: &[&str]) -> (std::process::Child, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read ready");
    assert!(line.starts_with("ready"), "{program} said {line:?}");
    (child, line)
}

#[test]
fn fork_tree_reports_every_pid_alive() {
    let (mut child, line) = ready(env!("CARGO_BIN_EXE_fork_tree"), &["3"]);
    let pids: Vec<i32> = line
        .split_whitespace()
        .skip(1)
        .map(|p| p.parse().expect("pid"))
        .collect();
    // Itself, two intermediates that stay, three grandchildren.
    assert_eq!(pids.len(), 6, "{line:?}");
    assert_eq!(pids[0], child.id() as i32);
    let all_alive = pids.iter().all(|&p| alive(p));
    // The daemonised grandchild left the group: it has its own session.
    let daemons = pids
        .iter()
        .filter(|&&p| {
            nix::unistd::getsid(Some(nix::unistd::Pid::from_raw(p))).ok()
                == Some(nix::unistd::Pid::from_raw(p))
        })
        .count();
    for &p in &pids {
        kill(p);
    }
    let _ = child.wait();
    assert!(all_alive, "some of {pids:?} died early");
    assert_eq!(daemons, 1, "exactly one grandchild called setsid");
    let deadline = Instant::now() + Duration::from_secs(2);
    while pids[1..].iter().any(|&p| alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn blocking_programs_say_ready() {
    for (program, args) in [
        (env!("CARGO_BIN_EXE_do_nothing"), &[][..]),
        (env!("CARGO_BIN_EXE_ignore_sigterm"), &[][..]),
        (env!("CARGO_BIN_EXE_alloc_mb"), &["8"][..]),
        (env!("CARGO_BIN_EXE_burn_cpu"), &["1"][..]),
    ] {
        let (mut child, _) = ready(program, args);
        assert!(alive(child.id() as i32));
        kill(child.id() as i32);
        let _ = child.wait();
    }
}

#[test]
fn burn_cpu_stops_after_its_seconds() {
    let (mut child, _) = ready(env!("CARGO_BIN_EXE_burn_cpu"), &["2", "0.1"]);
    assert!(child.wait().expect("wait").success());
}
