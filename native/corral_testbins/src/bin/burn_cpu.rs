//! `burn_cpu [threads] [seconds]`: busy-loops on `threads` (default 1)
//! threads, forever or for `seconds`, then exits 0. Prints `ready` once the
//! threads run.

use std::time::{Duration, Instant};

fn main() {
    let threads: usize = corral_testbins::arg_or(1, 1);
    let seconds: Option<f64> = std::env::args().nth(2).map(|s| {
        s.parse()
            .unwrap_or_else(|_| corral_testbins::usage("burn_cpu [threads] [seconds]"))
    });
    let until = seconds.map(|s| Instant::now() + Duration::from_secs_f64(s));
    for _ in 0..threads {
        std::thread::spawn(move || {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
                if x & ((1 << 20) - 1) == 0 && until.is_some_and(|u| Instant::now() >= u) {
                    return;
                }
            }
        });
    }
    corral_testbins::ready(&[]);
    match until {
        Some(u) => std::thread::sleep(u.saturating_duration_since(Instant::now())),
        None => corral_testbins::pause_forever(),
    }
}
