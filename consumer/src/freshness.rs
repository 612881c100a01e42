//! Freshness: how far the downstream is behind the upstream checkpoint, and the audit record of
//! each replay round.
//!
//! - *checkpoint ts*: the sink's `metadata` checkpoint, the newest consistent point in storage.
//! - *applied ts*: the ts up to which every replayed table is applied: the checkpoint for a table
//!   with nothing pending at or below it, otherwise the commit ts its progress record reached.
//! - *lag*: checkpoint minus applied, in ts and in milliseconds of the TSO's physical part.

use crate::discovery::DiscoveryStats;
use crate::quarantine::QuarantinedFile;
use cdc_common::Ts;
use std::collections::{BTreeMap, VecDeque};

/// How many fatal errors [`Health::recent_errors`] keeps (the oldest is dropped first).
pub const RECENT_ERRORS: usize = 10;

/// Counts of one table in one round.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct TableRound {
    /// Data files wholly applied.
    pub files: u64,
    /// Row changes applied.
    pub rows: u64,
    /// DDLs applied.
    pub ddls: u64,
    /// Data files quarantined (`--on-bad-file quarantine`; their rows not applied).
    pub quarantined: u64,
}

/// The audit record of one replay round.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RoundRecord {
    /// Round number since start (1-based).
    pub round: u64,
    /// Start, milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// End, milliseconds since the Unix epoch.
    pub ended_at_ms: u64,
    /// Checkpoint ts seen.
    pub checkpoint_ts: u64,
    /// Applied ts at the end.
    pub applied_ts: u64,
    /// Files indexed and not applied at the end.
    pub files_pending: u64,
    /// Discovery counts.
    pub discovery: DiscoveryStats,
    /// Per table (`schema.table`, or `schema` for database DDLs).
    pub tables: BTreeMap<String, TableRound>,
    /// The error that ended the round, if any.
    pub fatal: Option<String>,
    /// Non-fatal warnings.
    pub warnings: Vec<String>,
}

impl RoundRecord {
    /// Total rows applied.
    pub fn rows(&self) -> u64 {
        self.tables.values().map(|t| t.rows).sum()
    }

    /// True when anything (file, partial file or DDL) was applied.
    pub fn applied_anything(&self) -> bool {
        self.tables
            .values()
            .any(|t| t.files + t.rows + t.ddls + t.quarantined > 0)
    }
}

/// The `/health` document.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Health {
    /// Upstream checkpoint ts (0 before `metadata` exists).
    pub checkpoint_ts: u64,
    /// Every table applied up to this ts.
    pub applied_ts: u64,
    /// `checkpoint_ts - applied_ts`.
    pub lag_ts: u64,
    /// Lag in milliseconds (physical parts of the two ts).
    pub lag_ms: u64,
    /// Indexed data files not yet applied.
    pub files_pending: u64,
    /// The last finished round.
    pub last_round: Option<RoundRecord>,
    /// Per table (`schema.table`): how far it is applied, as the progress record says.
    pub tables: BTreeMap<String, TableProgress>,
    /// The last [`RECENT_ERRORS`] fatal errors, oldest first.
    pub recent_errors: VecDeque<RecentError>,
    /// Data files in the downstream's quarantine record (every one ever quarantined).
    pub quarantined_files_total: u64,
    /// The newest [`crate::quarantine::HEALTH_QUARANTINE_LIST`] of them, oldest first.
    pub quarantined: Vec<QuarantinedFile>,
}

/// One table's progress.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct TableProgress {
    /// Every row of the table with commit ts at or below this is applied.
    pub applied_ts: u64,
    /// Version of the last applied schema file (`None` before its first DDL).
    pub version: Option<u64>,
    /// One entry per stream (partition and writer) with a progress row.
    pub streams: Vec<StreamProgress>,
}

/// One stream's progress row.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct StreamProgress {
    /// Partition directory (`""` when none).
    pub partition: String,
    /// Dispatcher id (`""` for the single writer).
    pub dispatcher: String,
    /// Table version of the last applied file.
    pub version: u64,
    /// Date directory of the last applied file (`""` when none).
    pub date: String,
    /// Index of the last wholly applied file (0: none in that directory).
    pub file_index: u64,
    /// Rows at or below this commit ts are applied.
    pub commit_ts: u64,
}

/// A fatal error that ended a round.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RecentError {
    /// The round it ended.
    pub round: u64,
    /// When, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The error text.
    pub message: String,
}

impl Health {
    /// Fills the ts fields.
    pub fn set_ts(&mut self, checkpoint: Ts, applied: Ts) {
        let applied = applied.min(checkpoint);
        self.checkpoint_ts = checkpoint.0;
        self.applied_ts = applied.0;
        self.lag_ts = checkpoint.0 - applied.0;
        self.lag_ms = lag_ms(checkpoint, applied);
    }

    /// Records a fatal error, dropping the oldest beyond [`RECENT_ERRORS`].
    pub fn push_error(&mut self, err: RecentError) {
        self.recent_errors.push_back(err);
        while self.recent_errors.len() > RECENT_ERRORS {
            self.recent_errors.pop_front();
        }
    }
}

/// Milliseconds between two ts (0 when `applied` is ahead).
pub fn lag_ms(checkpoint: Ts, applied: Ts) -> u64 {
    checkpoint
        .physical_ms()
        .saturating_sub(applied.physical_ms())
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
