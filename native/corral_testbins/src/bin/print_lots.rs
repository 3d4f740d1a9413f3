//! `print_lots <bytes> [chunk]`: writes exactly `bytes` bytes of
//! [`corral_testbins::pattern`] to stdout in writes of `chunk` (default
//! 65536) bytes, then exits 0.

use std::io::Write;

fn main() {
    let Some(total) = std::env::args().nth(1).and_then(|s| s.parse::<u64>().ok()) else {
        corral_testbins::usage("print_lots <bytes> [chunk]")
    };
    let chunk: usize = corral_testbins::arg_or(2, 65536).max(1);
    // One period longer than a chunk, so every chunk is a slice of it.
    let block: Vec<u8> = (0..(chunk + 251) as u64)
        .map(corral_testbins::pattern)
        .collect();
    let mut out = std::io::stdout().lock();
    let mut done = 0u64;
    while done < total {
        let n = (total - done).min(chunk as u64) as usize;
        let start = (done % 251) as usize;
        if out
            .write_all(&block[start..start + n])
            .and_then(|()| out.flush())
            .is_err()
        {
            std::process::exit(1);
        }
        done += n as u64;
    }
}
