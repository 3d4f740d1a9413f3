//! Programs that each do one thing, for the `corral` helper's integration
//! tests (`native/corral/tests/`). They are never shipped.
//!
//! # Contract
//! A program that blocks first prints `ready` (and pids where it has them)
//! as one line on stdout, flushed, so a test can wait for that line with a
//! deadline instead of sleeping and hoping.
//!
//! | program | does |
//! |---|---|
//! | `do_nothing` | `ready`, then pauses forever |
//! | `ignore_sigterm` | ignores SIGTERM, `ready`, pauses forever |
//! | `fork_tree [n]` | n grandchildren, one daemonised; `ready <pids>`, pauses |
//! | `print_lots <bytes> [chunk]` | writes [`pattern`] bytes, exits 0 |
//! | `alloc_mb <mb>` | touches that many MiB, `ready`, pauses |
//! | `burn_cpu [threads] [seconds]` | `ready`, busy-loops |
//! | `exit_with <code>` / `exit_with signal <SIG>` | exits so |
//! | `stdin_echo` | copies stdin to stdout until EOF, exits 0 |
//!
//! # Building
//! `cargo test --workspace` (or `-p corral_testbins`) builds them next to
//! the `corral` binary in `target/<profile>/`, because this crate has an
//! integration test; `cargo build -p corral_testbins` does it alone.

use std::io::Write;

/// Prints one line to stdout and flushes it, so a reader sees it at once.
///
/// # Panics
/// When stdout cannot be written: the test would wait in vain otherwise.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .expect("stdout");
}

/// Prints `ready` followed by `pids`, space-separated.
pub fn ready(pids: &[i32]) {
    let mut line = String::from("ready");
    for p in pids {
        line.push(' ');
        line.push_str(&p.to_string());
    }
    say(&line);
}

/// Blocks forever without using CPU (`pause(2)` in a loop, since a caught
/// signal returns from it).
pub fn pause_forever() -> ! {
    loop {
        nix::unistd::pause();
    }
}

/// The byte at offset `i` of `print_lots`' output: `i % 251`. 251 is prime
/// and not a power of two, so a dropped, repeated or reordered chunk of any
/// power-of-two size shows up as a mismatch.
pub fn pattern(i: u64) -> u8 {
    (i % 251) as u8
}

/// Parses the `n`th argument (1-based) or returns `default` when it is absent.
///
/// # Panics
/// When the argument is present but not a number: a test bug.
pub fn arg_or<T: std::str::FromStr>(n: usize, default: T) -> T {
    match std::env::args().nth(n) {
        Some(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("argument {n} ({s:?}) is not a number")),
        None => default,
    }
}

/// Exits with a usage message on stderr.
pub fn usage(text: &str) -> ! {
    eprintln!("usage: {text}");
    std::process::exit(64)
}

/// True when `pid` exists and is not a zombie (`/proc/<pid>/stat`,
/// `proc(5)`): what the tests mean by "still alive".
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rfind(')')
            .and_then(|i| s.as_bytes().get(i + 2))
            .is_some_and(|&state| state != b'Z'),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_wraps_at_251() {
        assert_eq!(pattern(0), 0);
        assert_eq!(pattern(250), 250);
        assert_eq!(pattern(251), 0);
        assert_eq!(pattern(251 * 1000 + 7), 7);
    }
}
