//! The audit record as data: every replay round's [`RoundRecord`] is stored in the downstream
//! (`cdc_consumer_rounds` in the SQL backends' bookkeeping, a JSON-lines file beside the
//! progress file for stdout), so after a restart the record still says what the consumer did.
//!
//! A row holds the consumer start id ([`start_id`]: one per process), the round number, start
//! and end, the fatal error (apart) and the whole record as JSON (phases reached, per-table
//! counts, warnings). Ordered by end time; retention keeps the newest `--keep-rounds`
//! ([`DEFAULT_KEEP_ROUNDS`]).
//!
//! # Invariants
//!
//! - Storing the record is not part of the round: a failure to store it is logged as a
//!   warning and never turns the round into a failed one, nor hides its fatal error.
//! - What is stored went through [`crate::secrets`] (the record's texts are redacted before).
//! - `/rounds` and the status page read the in-memory copy ([`crate::freshness::Health`]'s
//!   `rounds`, the newest [`ROUNDS_IN_MEMORY`]), loaded from the downstream at start.

use crate::backend::downstream_error;
use crate::error::Result;
use crate::freshness::RoundRecord;

/// The table (SQL backends) holding the round records.
pub const ROUNDS_TABLE: &str = "cdc_consumer_rounds";

/// The index on the round records' `ended_at_ms` (SQLite, PostgreSQL; MySQL's is the table's
/// `KEY (ended_at_ms)`): each round's save keeps the newest `--keep-rounds` by end time, and
/// without it finding the cut and the rows below it read and sorted every record kept, 15 ms a
/// round in SQLite at the default 10,000 (0.16 ms with it).
pub const ROUNDS_ENDED_INDEX: &str = "cdc_consumer_rounds_ended_at";

/// `--keep-rounds`' default.
pub const DEFAULT_KEEP_ROUNDS: u64 = 10_000;

/// Round records kept in memory for `/rounds` (its largest `limit`) and the status page.
pub const ROUNDS_IN_MEMORY: usize = 1_000;

/// Rounds the status page lists.
pub const ROUNDS_ON_PAGE: usize = 10;

/// An id for this consumer process: its start time (ms, hex) and process id. Two processes
/// replaying into one downstream (not supported, but possible by mistake) stay apart.
pub fn start_id() -> String {
    format!("{:x}-{}", crate::freshness::now_ms(), std::process::id())
}

/// The stored JSON of a record.
pub fn record_json(rec: &RoundRecord) -> String {
    serde_json::to_string(rec).unwrap_or_default()
}

/// A stored record read back (fields a newer or older consumer left out take their default).
pub fn parse_record(json: &str) -> Result<RoundRecord> {
    serde_json::from_str(json).map_err(|e| downstream_error(ROUNDS_TABLE, "-", "round record", e))
}

/// A count or time as the signed 64-bit integer SQL stores.
pub fn sql_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
