//! Freshness: how far the downstream is behind the upstream checkpoint, and the audit record of
//! each replay round.
//!
//! - *checkpoint ts*: the sink's `metadata` checkpoint, the newest consistent point in storage.
//! - *applied ts*: the ts up to which every replayed table is applied: the checkpoint for a table
//!   with nothing pending at or below it, otherwise the commit ts its progress record reached.
//! - *lag*: checkpoint minus applied, in ts and in milliseconds of the TSO's physical part.
//! - *checkpoint age*: the wall clock minus the checkpoint's physical time. Lag alone cannot
//!   see a sink that stopped writing or a consumer that cannot read storage: both keep lag at 0
//!   while the checkpoint ages.
//!
//! # Invariants (freshness cannot lie)
//!
//! - The applied ts is `None` (JSON `null`) when it is not known: no checkpoint yet, or a
//!   catalog with no table (nothing read from storage, e.g. the wrong `protocol`). It is never
//!   borrowed from the checkpoint; lag is then `null` too, and `cdc_consumer_lag_seconds` NaN.
//! - The [`Status`] is derived at the moment it is asked for ([`Health::refresh`]), from the
//!   wall clock, the last round's outcome and the [`HealthPolicy`]: a consumer whose loop is
//!   stuck still turns `failing` once `--unhealthy-after` passes without a successful round.

use crate::discovery::DiscoveryStats;
use crate::quarantine::QuarantinedFile;
use cdc_common::Ts;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How many fatal errors [`Health::recent_errors`] keeps (the oldest is dropped first).
pub const RECENT_ERRORS: usize = 10;

/// Counts of one table in one round.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
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

/// A phase of a replay round, in the order a round goes through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Listing storage and reading `metadata`, schema and index files.
    Discover,
    /// Reading a data file.
    Read,
    /// Handing a unit (rows or DDL with its progress) to the downstream.
    Apply,
    /// A unit committed downstream.
    Commit,
}

/// The audit record of one replay round (stored in the downstream, see [`crate::audit`]).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RoundRecord {
    /// The consumer process that ran the round ([`crate::audit::start_id`]).
    pub start_id: String,
    /// Round number since that process started (1-based).
    pub round: u64,
    /// The phases the round reached (a failed round's last one is where it failed).
    pub phases: Vec<Phase>,
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

/// What `/health` says, worst first: `failing` and `stalled` answer HTTP 503, `lagging` and
/// `ready` 200.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The last round failed, or no round succeeded within `--unhealthy-after` (counted from
    /// the start before the first success).
    Failing,
    /// The checkpoint is older than `--stale-after` (the sink stopped writing, or storage
    /// stopped being readable upstream of us).
    Stalled,
    /// Rounds succeed but something is not applied yet (lag, pending files, no round yet).
    #[default]
    Lagging,
    /// The last round succeeded and everything up to the checkpoint is applied.
    Ready,
}

impl Status {
    /// The word shown (`ready`, `lagging`, `stalled`, `failing`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Failing => "failing",
            Status::Stalled => "stalled",
            Status::Lagging => "lagging",
            Status::Ready => "ready",
        }
    }

    /// HTTP status of `/health` (and `/wait`'s success answer): 503 for failing and stalled.
    pub fn http_code(self) -> u16 {
        match self {
            Status::Failing | Status::Stalled => 503,
            Status::Lagging | Status::Ready => 200,
        }
    }
}

/// When the status turns `failing` or `stalled` (`--unhealthy-after`, `--stale-after`).
#[derive(Clone, Copy, Debug)]
pub struct HealthPolicy {
    /// No successful round for this long: `failing`.
    pub unhealthy_after: Duration,
    /// Checkpoint older than this: `stalled` (`None`: never).
    pub stale_after: Option<Duration>,
}

impl Default for HealthPolicy {
    fn default() -> HealthPolicy {
        HealthPolicy {
            unhealthy_after: default_unhealthy_after(Duration::from_secs(1)), // DEFAULT_INTERVAL
            stale_after: None,
        }
    }
}

/// `--unhealthy-after`'s default: ten round intervals, at least 30 s (a few slow or retried
/// rounds do not page; a consumer that stopped succeeding does within a minute at the default
/// interval).
pub fn default_unhealthy_after(interval: Duration) -> Duration {
    (interval * 10).max(Duration::from_secs(30))
}

/// The freshness figures of `/health` and `/wait` (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Freshness {
    /// Upstream checkpoint ts (`null` before `metadata` was read).
    pub checkpoint_ts: Option<u64>,
    /// Every table applied up to this ts (`null` when unknown, never the checkpoint's).
    pub applied_ts: Option<u64>,
    /// `checkpoint_ts - applied_ts` in ts units (`null` when either is unknown).
    pub lag: Option<u64>,
    /// Lag in milliseconds (physical parts of the two ts).
    pub lag_ms: Option<u64>,
    /// Wall clock minus the checkpoint's physical time.
    pub checkpoint_age_ms: Option<u64>,
    /// Since the end of the last successful round (`null`: none yet).
    pub last_success_ms_ago: Option<u64>,
    /// Indexed data files not yet applied.
    pub files_pending: u64,
    /// Rounds failed in a row (0 after a success).
    pub consecutive_failed_rounds: u64,
}

/// The `/health` document.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Health {
    /// What the figures mean for an operator (see [`Status`]); set by [`Health::refresh`].
    pub status: Status,
    /// The freshness figures; set by [`Health::refresh`].
    pub freshness: Freshness,
    /// Upstream checkpoint ts (0 before `metadata` exists).
    pub checkpoint_ts: u64,
    /// Every table applied up to this ts (`null` when unknown).
    pub applied_ts: Option<u64>,
    /// `checkpoint_ts - applied_ts` (`null` when the applied ts is unknown).
    pub lag_ts: Option<u64>,
    /// Lag in milliseconds (physical parts of the two ts).
    pub lag_ms: Option<u64>,
    /// Indexed data files not yet applied.
    pub files_pending: u64,
    /// The last finished round.
    pub last_round: Option<RoundRecord>,
    /// Per table (`schema.table`): how far it is applied, as the progress record says.
    pub tables: BTreeMap<String, TableProgress>,
    /// The last [`RECENT_ERRORS`] fatal errors, oldest first.
    pub recent_errors: VecDeque<RecentError>,
    /// The newest [`crate::audit::ROUNDS_IN_MEMORY`] round records (this process's and, loaded
    /// at start, its predecessors'), oldest first: what `/rounds` and the status page show.
    #[serde(skip)]
    pub rounds: VecDeque<RoundRecord>,
    /// Data files in the downstream's quarantine record (every one ever quarantined).
    pub quarantined_files_total: u64,
    /// The newest [`crate::quarantine::HEALTH_QUARANTINE_LIST`] of them, oldest first.
    pub quarantined: Vec<QuarantinedFile>,
    /// The consumer group this member belongs to, its members, their tables and lease ages
    /// (`--group` only; see [`crate::group::status`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<crate::group::GroupView>,
    /// When the status turns failing or stalled.
    #[serde(skip)]
    pub policy: HealthPolicy,
    /// When this consumer started, ms since the Unix epoch (0: unknown, counted as now).
    #[serde(skip)]
    pub started_at_ms: u64,
    /// End of the last successful round, ms since the Unix epoch.
    #[serde(skip)]
    pub last_success_at_ms: Option<u64>,
    /// Rounds failed in a row.
    #[serde(skip)]
    pub consecutive_failures: u64,
    /// Fired (`notify_waiters`) at the end of every round, after the figures above are set:
    /// what `/wait` waiters wait on (see [`crate::wait`]).
    #[serde(skip)]
    pub applied: Arc<Notify>,
}

/// One table's progress.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TableProgress {
    /// Every row of the table with commit ts at or below this is applied.
    pub applied_ts: u64,
    /// Version of the last applied schema file (`None` before its first DDL).
    pub version: Option<u64>,
    /// One entry per stream (partition and writer) with a progress row.
    pub streams: Vec<StreamProgress>,
    /// The table had nothing to do nor wait for at the round's end: its applied ts follows
    /// the checkpoint from round to round until a round walks it again (see the replay's
    /// `health_tables`). Not part of the document.
    #[serde(skip)]
    pub quiet: bool,
}

/// One stream's progress row.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
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
    /// A health document for a consumer starting now under `policy`.
    pub fn new(policy: HealthPolicy) -> Health {
        Health {
            policy,
            started_at_ms: now_ms(),
            ..Default::default()
        }
    }

    /// Fills the ts fields (`applied` `None`: unknown, and so is the lag).
    pub fn set_ts(&mut self, checkpoint: Ts, applied: Option<Ts>) {
        let applied = applied.map(|a| a.min(checkpoint));
        self.checkpoint_ts = checkpoint.0;
        self.applied_ts = applied.map(|a| a.0);
        self.lag_ts = applied.map(|a| checkpoint.0 - a.0);
        self.lag_ms = applied.map(|a| lag_ms(checkpoint, a));
    }

    /// Counts a finished round: a success resets the failure count and sets the last success.
    pub fn note_round(&mut self, ok: bool, ended_at_ms: u64) {
        if ok {
            self.consecutive_failures = 0;
            self.last_success_at_ms = Some(ended_at_ms);
        } else {
            self.consecutive_failures += 1;
        }
    }

    /// Sets [`Health::status`] and [`Health::freshness`] for the wall clock `now_ms`.
    pub fn refresh(&mut self, now_ms: u64) {
        let checkpoint = (self.checkpoint_ts > 0).then_some(Ts(self.checkpoint_ts));
        self.freshness = Freshness {
            checkpoint_ts: checkpoint.map(|c| c.0),
            applied_ts: self.applied_ts,
            lag: self.lag_ts,
            lag_ms: self.lag_ms,
            checkpoint_age_ms: checkpoint.map(|c| now_ms.saturating_sub(c.physical_ms())),
            last_success_ms_ago: self.last_success_at_ms.map(|t| now_ms.saturating_sub(t)),
            files_pending: self.files_pending,
            consecutive_failed_rounds: self.consecutive_failures,
        };
        self.status = self.status_at(now_ms);
    }

    fn status_at(&self, now_ms: u64) -> Status {
        let since_success = now_ms.saturating_sub(self.last_success_at_ms.unwrap_or(
            if self.started_at_ms == 0 {
                now_ms
            } else {
                self.started_at_ms
            },
        ));
        let last_failed = self.last_round.as_ref().is_some_and(|r| r.fatal.is_some());
        if last_failed || since_success > self.policy.unhealthy_after.as_millis() as u64 {
            return Status::Failing;
        }
        let stale = self.policy.stale_after.map(|s| s.as_millis() as u64);
        let age = self.freshness.checkpoint_age_ms;
        if let (Some(limit), Some(age)) = (stale, age) {
            if age > limit {
                return Status::Stalled;
            }
        }
        let caught_up = self.last_success_at_ms.is_some()
            && self.files_pending == 0
            && self.lag_ts.unwrap_or(0) == 0;
        if caught_up {
            Status::Ready
        } else {
            Status::Lagging
        }
    }

    /// Adds a round record, dropping the oldest beyond [`crate::audit::ROUNDS_IN_MEMORY`].
    pub fn push_round(&mut self, rec: RoundRecord) {
        self.rounds.push_back(rec);
        while self.rounds.len() > crate::audit::ROUNDS_IN_MEMORY {
            self.rounds.pop_front();
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;

    fn health(policy: HealthPolicy) -> Health {
        let mut h = Health {
            policy,
            started_at_ms: T0,
            ..Default::default()
        };
        h.set_ts(Ts::from_parts(T0, 0), Some(Ts::from_parts(T0, 0)));
        h.last_round = Some(RoundRecord::default());
        h
    }

    fn policy(unhealthy_s: u64, stale_s: Option<u64>) -> HealthPolicy {
        HealthPolicy {
            unhealthy_after: Duration::from_secs(unhealthy_s),
            stale_after: stale_s.map(Duration::from_secs),
        }
    }

    #[test]
    fn status_follows_rounds_clock_and_policy() {
        let mut h = health(policy(30, Some(60)));
        // No success yet, within unhealthy-after: lagging (starting).
        h.refresh(T0 + 1_000);
        assert_eq!(h.status, Status::Lagging);
        h.note_round(true, T0 + 1_000);
        h.refresh(T0 + 2_000);
        assert_eq!(h.status, Status::Ready);
        assert_eq!(h.freshness.last_success_ms_ago, Some(1_000));
        assert_eq!(h.freshness.checkpoint_age_ms, Some(2_000));
        // The checkpoint ages past stale-after while rounds succeed: stalled.
        h.note_round(true, T0 + 61_000);
        h.refresh(T0 + 61_001);
        assert_eq!(h.status, Status::Stalled);
        assert_eq!(h.status.http_code(), 503);
        // No success for longer than unhealthy-after: failing, even without a failed round.
        h.refresh(T0 + 61_000 + 30_001);
        assert_eq!(h.status, Status::Failing);
        // A failed last round: failing at once.
        let mut h = health(policy(30, None));
        h.note_round(true, T0);
        h.last_round = Some(RoundRecord {
            fatal: Some("boom".into()),
            ..Default::default()
        });
        h.note_round(false, T0 + 1);
        h.refresh(T0 + 2);
        assert_eq!(h.status, Status::Failing);
        assert_eq!(h.freshness.consecutive_failed_rounds, 1);
    }

    #[test]
    fn unknown_applied_ts_has_no_lag_and_is_not_ready() {
        let mut h = health(policy(30, None));
        h.set_ts(Ts::from_parts(T0, 0), None);
        h.note_round(true, T0);
        h.refresh(T0);
        assert_eq!(h.freshness.applied_ts, None);
        assert_eq!(h.freshness.lag, None);
        assert_eq!(h.freshness.lag_ms, None);
        let json = serde_json::to_value(&h).unwrap();
        assert!(json["freshness"]["applied_ts"].is_null());
        assert_eq!(json["status"], "ready");
    }

    #[test]
    fn unhealthy_after_defaults_from_the_interval() {
        assert_eq!(
            default_unhealthy_after(Duration::from_secs(1)),
            Duration::from_secs(30)
        );
        assert_eq!(
            default_unhealthy_after(Duration::from_secs(10)),
            Duration::from_secs(100)
        );
    }
}
