//! Prints `ready`, then does nothing, forever.

fn main() {
    corral_testbins::ready(&[]);
    corral_testbins::pause_forever()
}
