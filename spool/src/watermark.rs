//! Wake control: the high/low watermark state machine over total (memory + disk) bytes.
//!
//! ```text
//!                 enqueue, total > high
//!   +---------+ ------------------------> +---------+
//!   | Flowing |                           | Holding |  wakes queue in arrival order
//!   +---------+ <------------------------ +---------+
//!    wakes run      release, total <= low
//!    at once        (held wakes run, in order)
//! ```
//!
//! In `Flowing`, an enqueue whose total (after adding the entry) is at or below the high
//! watermark runs its wake at once; the first enqueue that takes the total above it moves to
//! `Holding` and its wake is the first one held. In `Holding` every wake is held, even if the
//! total is back between the watermarks (hysteresis: dispatchers are resumed together once the
//! writers have drained enough, not one by one at the edge). A release that brings the total to
//! or below the low watermark moves back to `Flowing` and hands every held wake back, oldest
//! first. The machine only decides; the spool runs the callbacks after dropping its lock.

use std::collections::VecDeque;

/// A callback the spool runs once: the enqueue acknowledgement (wake) or the post-flush callback.
pub type Callback = Box<dyn FnOnce() + Send + 'static>;

/// The watermark state machine with its queue of held wakes.
pub(crate) struct Watermark {
    high: u64,
    low: u64,
    holding: bool,
    held: VecDeque<Callback>,
}

impl std::fmt::Debug for Watermark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watermark")
            .field("high", &self.high)
            .field("low", &self.low)
            .field("holding", &self.holding)
            .field("held", &self.held.len())
            .finish()
    }
}

impl Watermark {
    pub(crate) fn new(high: u64, low: u64) -> Watermark {
        debug_assert!(low < high);
        Watermark {
            high,
            low,
            holding: false,
            held: VecDeque::new(),
        }
    }

    /// True while wakes are held.
    pub(crate) fn is_holding(&self) -> bool {
        self.holding
    }

    /// Wakes waiting for the low watermark.
    pub(crate) fn held(&self) -> usize {
        self.held.len()
    }

    /// An entry was accepted and the total is now `total`. Returns the wake to run at once, or
    /// `None` if it was held (or there was none).
    pub(crate) fn on_enqueue(&mut self, total: u64, wake: Option<Callback>) -> Option<Callback> {
        if !self.holding && total > self.high {
            self.holding = true;
        }
        if self.holding {
            self.held.extend(wake);
            None
        } else {
            wake
        }
    }

    /// Bytes were freed and the total is now `total`. Returns the held wakes to run, oldest
    /// first (empty unless this release crossed the low watermark while holding).
    pub(crate) fn on_release(&mut self, total: u64) -> VecDeque<Callback> {
        if self.holding && total <= self.low {
            self.holding = false;
            std::mem::take(&mut self.held)
        } else {
            VecDeque::new()
        }
    }

    /// Drops every held wake without running it (the spool is closing).
    pub(crate) fn clear(&mut self) {
        self.held.clear();
        self.holding = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn recorder() -> (Arc<Mutex<Vec<u32>>>, impl Fn(u32) -> Callback) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = Arc::clone(&log);
        (log, move |i| {
            let l = Arc::clone(&l);
            Box::new(move || l.lock().unwrap().push(i)) as Callback
        })
    }

    #[test]
    fn wakes_are_held_above_high_and_released_in_order_at_low() {
        let (log, cb) = recorder();
        let mut w = Watermark::new(100, 50);
        w.on_enqueue(100, Some(cb(1))).unwrap()(); // at high: runs
        assert!(w.on_enqueue(101, Some(cb(2))).is_none());
        assert!(w.is_holding());
        // back between the watermarks: still held (hysteresis)
        assert!(w.on_release(80).is_empty());
        assert!(w.on_enqueue(90, Some(cb(3))).is_none());
        assert!(w.on_enqueue(95, None).is_none());
        assert_eq!(w.held(), 2);
        assert!(w.on_release(51).is_empty());
        let released = w.on_release(50);
        assert!(!w.is_holding());
        released.into_iter().for_each(|f| f());
        assert_eq!(*log.lock().unwrap(), vec![1, 2, 3]);
        w.on_enqueue(60, Some(cb(4))).unwrap()();
        assert_eq!(*log.lock().unwrap(), vec![1, 2, 3, 4]);
    }
}
