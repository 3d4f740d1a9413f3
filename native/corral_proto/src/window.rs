//! Flow-control arithmetic for the helper's side of the window.

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

#[cfg(test)]
mod tests {
    use super::Window;

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
}
