//! Flow control, one owner for each rule (`docs/protocol.md`, "Flow
//! control"):
//!
//! - [`DEFAULT_WINDOW`]: the window both directions use unless the BEAM
//!   asks for another (`--stdio-window`, `:stdio_window`);
//! - [`batch`]: credit goes back in batches of a quarter window, so one
//!   `A` or `W` covers many data frames and neither side stalls;
//! - [`Window`]: the helper's output in flight, bounded by the window;
//! - [`Acks`]: the reader's side of it, consumed bytes into `A` frames;
//! - [`InputCredit`]: stdin the helper has written but not yet confirmed
//!   with `W`, and whether the BEAM kept within its window.
//!
//! `Corral.Client` follows the same rules on the BEAM's side and is
//! checked against the same golden vectors (`test/fixtures/proto/flow/`).

/// The window in bytes when none is given: 1 MiB.
pub const DEFAULT_WINDOW: u64 = 1 << 20;

/// How much credit to gather before giving it back: a quarter of the
/// window, at least one byte.
///
/// ```
/// assert_eq!(corral_proto::batch(1 << 20), 1 << 18);
/// assert_eq!(corral_proto::batch(3), 1);
/// ```
pub fn batch(window: u64) -> u64 {
    (window / 4).max(1)
}

/// Unacknowledged output bytes, bounded by the window size.
///
/// ```
/// let mut w = corral_proto::Window::new(10);
/// assert_eq!(w.room(), 10);
/// w.sent(8);
/// assert_eq!(w.room(), 2);
/// w.acked(5);
/// assert_eq!(w.room(), 7);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Window {
    size: u64,
    in_flight: u64,
}

impl Window {
    /// A window of `size` bytes, at least 1.
    pub fn new(size: u64) -> Window {
        Window {
            size: size.max(1),
            in_flight: 0,
        }
    }

    /// How many more bytes may be sent now.
    pub fn room(&self) -> usize {
        (self.size - self.in_flight) as usize
    }

    /// Bytes sent and not yet acknowledged.
    pub fn in_flight(&self) -> u64 {
        self.in_flight
    }

    /// Records `n` bytes sent; `n` must not exceed [`Window::room`].
    pub fn sent(&mut self, n: usize) {
        debug_assert!(n <= self.room());
        self.in_flight += n as u64;
    }

    /// Records an ack. Credit beyond what is in flight is a peer bug; it is
    /// clamped so the window can never grow past its size.
    pub fn acked(&mut self, n: u32) {
        self.in_flight = self.in_flight.saturating_sub(n as u64);
    }
}

/// The reading side of the output window: gathers consumed bytes and
/// says when to send an `A` frame, once a [`batch`] has gathered.
///
/// ```
/// let mut a = corral_proto::Acks::new(8);
/// assert_eq!(a.consumed(1), None);
/// assert_eq!(a.consumed(1), Some(2));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Acks {
    batch: u64,
    unacked: u64,
}

impl Acks {
    /// For a helper given `window`.
    pub fn new(window: u64) -> Acks {
        Acks {
            batch: batch(window),
            unacked: 0,
        }
    }

    /// Records `n` bytes of `O`/`E` payload consumed; the bytes to
    /// acknowledge now, if a batch has gathered.
    pub fn consumed(&mut self, n: u64) -> Option<u32> {
        self.unacked += n;
        if self.unacked < self.batch {
            return None;
        }
        let ack = u32::try_from(self.unacked).unwrap_or(u32::MAX);
        self.unacked -= u64::from(ack);
        Some(ack)
    }
}

/// The helper's side of stdin flow control. The BEAM sends `I` payload
/// only while less than a window of it is outstanding, and the helper
/// confirms bytes with `W` once they are in the child's pipe: in batches,
/// and whatever is left once nothing waits to be written.
#[derive(Clone, Copy, Debug)]
pub struct InputCredit {
    window: u64,
    unconfirmed: u64,
}

impl InputCredit {
    /// For a helper given `window`.
    pub fn new(window: u64) -> InputCredit {
        InputCredit {
            window: window.max(1),
            unconfirmed: 0,
        }
    }

    /// The window.
    pub fn window(&self) -> u64 {
        self.window
    }

    /// Bytes written to the pipe and not yet confirmed.
    pub fn unconfirmed(&self) -> u64 {
        self.unconfirmed
    }

    /// Whether the BEAM may send an `I` frame while `queued` bytes wait to
    /// be written: what it still counts against the window (queued and
    /// unconfirmed) is below a window. A frame past that is not the
    /// protocol.
    pub fn admits(&self, queued: u64) -> bool {
        queued + self.unconfirmed < self.window
    }

    /// Records `n` bytes written to the child's pipe.
    pub fn written(&mut self, n: u64) {
        self.unconfirmed += n;
    }

    /// The bytes to confirm with `W` now: a batch, or whatever was written
    /// once nothing more waits (`idle`: the queue is empty or the pipe is
    /// closed), so the BEAM never waits on a batch.
    pub fn confirm(&mut self, idle: bool) -> Option<u32> {
        let due = self.unconfirmed >= batch(self.window) || (idle && self.unconfirmed > 0);
        if !due {
            return None;
        }
        let n = u32::try_from(self.unconfirmed).unwrap_or(u32::MAX);
        self.unconfirmed -= u64::from(n);
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_ack_is_clamped() {
        let mut w = Window::new(4);
        w.sent(4);
        assert_eq!(w.room(), 0);
        w.acked(100);
        assert_eq!(w.room(), 4);
        assert_eq!(w.in_flight(), 0);
    }

    #[test]
    fn zero_window_is_one_byte() {
        assert_eq!(Window::new(0).room(), 1);
    }

    #[test]
    fn a_quarter_window_at_least_one_byte() {
        assert_eq!(batch(DEFAULT_WINDOW), 262_144);
        assert_eq!(batch(8), 2);
        assert_eq!(batch(1), 1);
        assert_eq!(batch(0), 1);
    }

    #[test]
    fn acks_gather_a_batch_and_never_exceed_a_frame() {
        let mut a = Acks::new(8);
        assert_eq!(a.consumed(1), None);
        assert_eq!(a.consumed(0), None);
        assert_eq!(a.consumed(5), Some(6));
        let mut big = Acks::new(u64::from(u32::MAX));
        assert_eq!(big.consumed(u64::from(u32::MAX) + 5), Some(u32::MAX));
        assert_eq!(big.consumed(0), None, "5 left, below the batch");
    }

    #[test]
    fn input_credit_admits_below_a_window_and_confirms_in_batches() {
        let mut c = InputCredit::new(8);
        assert!(c.admits(7));
        assert!(!c.admits(8));
        c.written(1);
        assert!(!c.admits(7), "queued and unconfirmed both count");
        assert_eq!(c.confirm(false), None, "below a batch, more to write");
        assert_eq!(c.confirm(true), Some(1), "nothing more to write");
        assert_eq!(c.confirm(true), None, "nothing to confirm");
        c.written(3);
        assert_eq!(c.confirm(false), Some(3));
        assert_eq!(c.unconfirmed(), 0);
    }
}
