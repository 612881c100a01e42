//! The confirmed position: advanced ONLY behind the sink's flush acknowledgement.
//!
//! Every transaction handed to the sink gets a [`Ticket`]: a counter that starts at 1 (held
//! by the transaction while its events are handed in), +1 per DML event, -1 in each event's
//! flush callback (which the sink runs only once the event's data file and index entry are in
//! storage), and -1 when the transaction is complete. DDLs count as flushed when
//! `write_block_event` returned. The transactions wait in commit order:
//!
//! ```text
//! pending: [ (ts1, end_lsn1, 0) (ts2, end_lsn2, 0) (ts3, end_lsn3, 2) (ts4, ..) ]
//!            \________ flushed prefix ________/      ^ first not yet durable
//! confirm:  pg_replication_slot_advance(slot, end_lsn2), then sink.checkpoint(ts2)
//! ```
//!
//! Invariants:
//! - Only a prefix of fully flushed transactions is ever confirmed: a transaction whose rows
//!   are not all durable, or that follows one, keeps the slot (and the checkpoint) behind it.
//! - The slot moves first, the checkpoint second (both monotonic). After a crash between the
//!   two, the slot is ahead of the checkpoint by flushed transactions only, and the ts clock
//!   restarts above the checkpoint (see `ts.rs`).

use cdc_common::Ts;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::pgoutput::Lsn;

/// One transaction's outstanding flushes.
#[derive(Clone, Debug)]
pub struct Ticket(Arc<AtomicUsize>);

impl Ticket {
    /// A ticket held by its transaction (count 1).
    pub fn new() -> Ticket {
        Ticket(Arc::new(AtomicUsize::new(1)))
    }

    /// One more event to wait for; returns the flush callback that releases it.
    pub fn event(&self) -> impl FnOnce() + Send + 'static {
        self.0.fetch_add(1, Ordering::AcqRel);
        let c = Arc::clone(&self.0);
        move || {
            c.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// The transaction handed in everything.
    fn complete(&self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }

    fn done(&self) -> bool {
        self.0.load(Ordering::Acquire) == 0
    }
}

impl Default for Ticket {
    fn default() -> Self {
        Ticket::new()
    }
}

/// A position the stream may confirm once flushed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Confirm {
    /// Commit ts of the last flushed transaction.
    pub ts: Ts,
    /// Its end LSN: confirming it skips it from now on.
    pub lsn: Lsn,
}

#[derive(Debug)]
struct Pending {
    confirm: Confirm,
    ticket: Ticket,
    /// pgoutput rows this transaction took (they are decoded again until confirmed).
    rows: u64,
}

/// Transactions handed in and not yet confirmed, in commit order.
#[derive(Debug, Default)]
pub struct Acks {
    pending: VecDeque<Pending>,
    rows_behind: u64,
}

impl Acks {
    /// Queues a transaction whose events were all handed in (its ticket is completed here).
    pub fn push(&mut self, confirm: Confirm, ticket: Ticket, rows: u64) {
        ticket.complete();
        self.rows_behind += rows;
        self.pending.push_back(Pending {
            confirm,
            ticket,
            rows,
        });
    }

    /// Pops the flushed prefix; the position to confirm, if it moved.
    pub fn flushed_prefix(&mut self) -> Option<Confirm> {
        let mut last = None;
        while self.pending.front().is_some_and(|p| p.ticket.done()) {
            let p = self.pending.pop_front().expect("front exists");
            self.rows_behind -= p.rows;
            last = Some(p.confirm);
        }
        last
    }

    /// pgoutput rows of transactions handed in but not confirmed (a peek returns them again).
    pub fn rows_behind(&self) -> u64 {
        self.rows_behind
    }

    /// Transactions waiting.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(n: u64) -> Confirm {
        Confirm {
            ts: Ts(n),
            lsn: n * 10,
        }
    }

    #[test]
    fn only_a_fully_flushed_prefix_is_confirmed() {
        let mut acks = Acks::default();
        let t1 = Ticket::new();
        let f1 = t1.event();
        let t2 = Ticket::new();
        let f2a = t2.event();
        let f2b = t2.event();
        let t3 = Ticket::new();
        acks.push(c(1), t1, 3);
        acks.push(c(2), t2, 4);
        acks.push(c(3), t3, 1); // no events: flushed as soon as complete
        assert_eq!(acks.flushed_prefix(), None);
        f2a();
        f2b();
        // 2 and 3 are durable but 1 is not: nothing moves.
        assert_eq!(acks.flushed_prefix(), None);
        assert_eq!(acks.rows_behind(), 8);
        f1();
        assert_eq!(acks.flushed_prefix(), Some(c(3)));
        assert!(acks.is_empty());
        assert_eq!(acks.rows_behind(), 0);
    }

    #[test]
    fn an_incomplete_transaction_holds_the_position() {
        let t = Ticket::new();
        let f = t.event();
        f();
        // Not pushed (still being handed in): the count is still held.
        assert!(!t.done());
    }
}
