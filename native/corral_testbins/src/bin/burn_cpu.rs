//! `burn_cpu [threads] [seconds]`: busy-loops on `threads` (default 1)
//! threads, forever or until each thread has used `seconds` of CPU time
//! (not wall time: on a loaded machine it runs longer, and the tests that
//! count its CPU get what they asked for), then exits 0. Prints `ready`
//! once the threads run.

use std::time::Duration;

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which lives on this stack.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn main() {
    let threads: usize = corral_testbins::arg_or(1, 1);
    let seconds: Option<f64> = std::env::args().nth(2).map(|s| {
        s.parse()
            .unwrap_or_else(|_| corral_testbins::usage("burn_cpu [threads] [seconds]"))
    });
    let budget = seconds.map(Duration::from_secs_f64);
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                let mut x = 0u64;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                    if x & ((1 << 20) - 1) == 0 && budget.is_some_and(|b| thread_cpu() >= b) {
                        return;
                    }
                }
            })
        })
        .collect();
    corral_testbins::ready(&[]);
    match budget {
        Some(_) => workers.into_iter().for_each(|w| {
            let _ = w.join();
        }),
        None => corral_testbins::pause_forever(),
    }
}
