//! `alloc_mb <mb>`: allocates that many MiB and writes to every page, so it
//! is resident, prints `ready`, then holds it forever.

fn main() {
    let Some(mb) = std::env::args()
        .nth(1)
        .and_then(|s| s.parse::<usize>().ok())
    else {
        corral_testbins::usage("alloc_mb <mb>")
    };
    let mut mem = vec![0u8; mb << 20];
    for page in mem.chunks_mut(4096) {
        page[0] = 1;
    }
    std::hint::black_box(&mem);
    corral_testbins::ready(&[]);
    corral_testbins::pause_forever()
}
