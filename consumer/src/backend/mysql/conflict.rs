//! Lock conflicts between sessions, and the retry of a unit that met one.
//!
//! InnoDB ends a transaction that would wait in a cycle (error 1213, a deadlock) or waited past
//! `innodb_lock_wait_timeout` (error 1205). Both happen without anything being wrong with the
//! unit: the progress table's locking read takes next-key (gap) locks, so two consumers (or
//! group members, or tests sharing one progress database) inserting their first progress rows
//! into the same gap each wait for the other's gap lock, and the server rolls one of them back.
//!
//! Invariants:
//! - Only those two server codes become [`Error::Conflict`]; every other failure keeps its
//!   [`Error::Downstream`] and is not retried.
//! - A retried unit is safe to run again: the server rolled the whole transaction back (rows,
//!   progress and quarantine record together), and the DDL that ran before it is idempotent
//!   (see the module doc of the MySQL backend), so a second run applies exactly what the first
//!   would have.
//! - Retries are bounded ([`ATTEMPTS`]) with a growing pause; the last conflict is returned as is.

use crate::backend::downstream_error;
use crate::error::Error;
use std::time::Duration;

/// InnoDB's `ER_LOCK_DEADLOCK`.
const LOCK_DEADLOCK: u16 = 1213;
/// InnoDB's `ER_LOCK_WAIT_TIMEOUT`.
const LOCK_WAIT_TIMEOUT: u16 = 1205;

/// How many times a unit is run before its conflict is returned.
pub(super) const ATTEMPTS: u32 = 5;

/// True when the server ended the statement's transaction on a lock conflict.
pub(super) fn is_lock_conflict(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if s.code == LOCK_DEADLOCK || s.code == LOCK_WAIT_TIMEOUT)
}

/// The error of a failed statement of a unit: [`Error::Conflict`] for a lock conflict (the
/// unit may be retried), [`Error::Downstream`] otherwise.
pub(super) fn unit_error(table: &str, file: &str, kind: &str, e: mysql_async::Error) -> Error {
    if is_lock_conflict(&e) {
        Error::Conflict {
            table: table.to_string(),
            file: file.to_string(),
            kind: kind.to_string(),
            reason: e.to_string(),
        }
    } else {
        downstream_error(table, file, kind, e)
    }
}

/// The retry budget of one unit.
pub(super) struct Retry {
    tried: u32,
}

impl Retry {
    /// A unit about to be run for the first time.
    pub(super) fn new() -> Retry {
        Retry { tried: 1 }
    }

    /// True (after a pause that grows with each try, giving the other session time to
    /// commit) when `err` is a lock conflict and the unit has tries left; false otherwise.
    pub(super) async fn again(&mut self, file: &str, err: &Error) -> bool {
        let Error::Conflict { kind, reason, .. } = err else {
            return false;
        };
        if self.tried >= ATTEMPTS {
            return false;
        }
        tracing::warn!(
            file,
            kind,
            reason,
            tried = self.tried,
            "lock conflict; running the unit again"
        );
        tokio::time::sleep(Duration::from_millis(25 << self.tried)).await;
        self.tried += 1;
        true
    }
}
