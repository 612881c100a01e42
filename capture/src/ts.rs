//! Commit time -> TSO commit ts.
//!
//! PostgreSQL stamps each commit with a time in microseconds (since 2000-01-01 UTC). The
//! storage layout wants TSO timestamps, `physical_ms << 18 | logical`. The mapping:
//!
//! ```text
//! unix_us  = pg_us + 946_684_800_000_000
//! candidate = (unix_us / 1000) << 18 | (unix_us % 1000) << 8      -- sub-ms digits in logical
//! ts        = max(candidate, previous ts + 1)                     -- strictly increasing
//! ```
//!
//! Invariants:
//! - ts strictly increase across transactions in commit (LSN) order, also within one
//!   millisecond and when commit times step back (concurrent commits take their time before
//!   they take their WAL position, so neighbours may be out of time order by microseconds).
//! - The physical part is the commit's millisecond, or a later one only when the clock
//!   stepped back: a ts converts to wall time as every ts in the layout does.
//! - Putting the sub-millisecond microseconds in the logical bits (the low 8 bits stay for the
//!   `+ 1` bumps) makes a ts depend on its own commit time, not on its predecessor, in all but
//!   the bumped cases: after a restart the transactions the slot sends again get the ts they
//!   had before, which is what lets the consumer recognise rows it already applied.

use cdc_common::Ts;

/// Microseconds between 1970-01-01 and 2000-01-01 (the PostgreSQL epoch).
pub const PG_EPOCH_UNIX_US: i64 = 946_684_800_000_000;

/// Assigns commit ts to transactions in commit order.
#[derive(Clone, Copy, Debug)]
pub struct TsClock {
    last: Ts,
}

impl TsClock {
    /// A clock whose next ts is above `last` (the snapshot's ts, or the stored checkpoint
    /// after a restart).
    pub fn after(last: Ts) -> TsClock {
        TsClock { last }
    }

    /// The ts of the next transaction, committed at `pg_us` (microseconds since 2000-01-01).
    pub fn next(&mut self, pg_us: i64) -> Ts {
        let ts = candidate(pg_us).max(Ts(self.last.0 + 1));
        self.last = ts;
        ts
    }

    /// The last ts handed out.
    pub fn last(&self) -> Ts {
        self.last
    }
}

/// The ts of a commit time without the strictly-increasing rule.
pub fn candidate(pg_us: i64) -> Ts {
    let unix_us = pg_us.saturating_add(PG_EPOCH_UNIX_US).max(0) as u64;
    Ts::from_parts(unix_us / 1000, (unix_us % 1000) << 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn physical_part_is_the_commit_millisecond() {
        // 2023-11-14T22:13:20.123456Z
        let pg_us = 1_700_000_000_123_456 - PG_EPOCH_UNIX_US;
        let ts = TsClock::after(Ts::ZERO).next(pg_us);
        assert_eq!(ts.physical_ms(), 1_700_000_000_123);
        assert_eq!(ts.logical(), 456 << 8);
    }

    #[test]
    fn strictly_increasing_within_a_millisecond_and_when_time_steps_back() {
        let base = 1_700_000_000_000_000 - PG_EPOCH_UNIX_US;
        let mut c = TsClock::after(Ts::ZERO);
        let a = c.next(base + 5);
        let b = c.next(base + 5); // the same microsecond
        let d = c.next(base + 3); // stepped back
        let e = c.next(base + 900);
        assert!(a < b && b < d && d < e);
        assert_eq!(b.physical_ms(), a.physical_ms());
        assert_eq!(e, candidate(base + 900));
    }

    #[test]
    fn never_at_or_below_the_start() {
        let start = Ts::from_parts(1_800_000_000_000, 0);
        let mut c = TsClock::after(start);
        assert!(c.next(0) > start);
    }
}
