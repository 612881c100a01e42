//! Discovery: what storage holds that the consumer has not applied yet, found with as few
//! object store calls as possible.
//!
//! # What a round reads
//!
//! ```text
//! phase 0   GET  metadata                                  checkpoint-ts
//! phase A   first round only: one recursive LIST of the root (schema and index files)
//!           later rounds:  LIST/ root            -> schemas      (delimiter listings,
//!                          LIST/ <schema>/       -> tables        never recursive)
//!                          LIST/ <schema>/meta/  -> database-level schema files
//!                          LIST/ <s>/<t>/meta/   -> table schema files (new versions)
//!                          GET  each schema file not seen before
//! phase B   for every version that is not final:   LIST/ <version>/ (and /<partition>/)
//!           for every data directory not closed:   LIST/ <dir>/meta/, GET each CDC*.index
//! ```
//!
//! A round with nothing new therefore costs, per table, one listing of its `meta/`, one of its
//! newest version directory, one of the active data directory's `meta/` and one small GET per
//! index file: O(tables), never a walk of the data files.
//!
//! # Invariants that make skipping safe
//!
//! - **Phase A before phase B, below the checkpoint.** The sink flushes every DML below a
//!   DDL's ts (data file, then index entry) before it writes the DDL's schema file, and every
//!   DML at or below a checkpoint before it writes that checkpoint. Every index read in phase B
//!   happens after phase 0's checkpoint read and phase A's schema listings, so once a barrier at
//!   ts `V` was listed in phase A of a round whose phase 0 read a checkpoint `C >= V`, the
//!   index files read in phase B of that round cover every DML below `V` of the tables the
//!   barrier affects. [`TableEntry::complete_below`] records that.
//! - **Final versions.** A version with a newer version `V` is *final* after one phase B that
//!   ran after the newer schema file was seen and after a checkpoint `C >= V` was read: its
//!   directories are never listed again.
//! - **Sink restarts.** Why the checkpoint and not the schema file alone: a sink restarted
//!   from a checkpoint below `V` writes the rows between that checkpoint and `V` again, into
//!   new files of the older version, after the schema file of `V` exists. Rows that carry their
//!   commit ts are skipped by the progress record, but rows without one are applied as soon as
//!   their file is indexed, and a copy applied in part (its first files before the version was
//!   closed, the rest never) leaves keys in an older state. Applied whole, the copies converge:
//!   each key's last change in them is its last change below `V`. Once `metadata` reads
//!   `C >= V`, a restart resumes above `C` and never writes below `V` again (`metadata` only
//!   moves forward). Test: `tests/sink_restart_replays.rs`; the end-to-end kill test
//!   `tests/crash_recovery.rs` at the workspace root found it.
//! - **Closed data directories.** A date directory is named by the writer's local wall clock at
//!   flush time (TiCDC, any time zone) or by the UTC date of the commit ts (this sink), so no
//!   conclusion assumes a zone: a directory whose date is before the UTC date of the checkpoint
//!   time *minus one day* (zones reach UTC-12; the rest covers clock lag) gets no new file, and
//!   holds only rows at or below the checkpoint, which the writer flushed and indexed before it
//!   wrote the checkpoint; after one index read that follows that checkpoint read it is closed.
//! - **The first round.** Its recursive listing sees a table's index files and its schema
//!   files in one pass, in no order against each other, but it starts after phase 0 read the
//!   checkpoint `C`, and every conclusion above is about what lies at or below `C`: the older
//!   version's directories and index entries, the DML below a barrier `V <= C`, the rows of a
//!   directory dated before the day before `C`'s. All of it was in storage, indexed, before `C`
//!   was written, so the listing shows it and the index reads (they too start after phase 0)
//!   cover it: without a listing
//!   lag the first round concludes as a later round does (`tests/first_round.rs`). A cold start
//!   applies a table's history below the checkpoint, DDLs included, in its first round, and
//!   no second full round follows it (at 10,000 tables that round was 2 LISTs and a GET per
//!   table). With a lag the first listing proves nothing yet and the second round concludes.
//!
//! # Idle rounds
//!
//! A round whose phase 0 reads the same checkpoint-ts `C` as a round after which the replayer had
//! applied everything the catalog allowed (no error; the first round counts only without a
//! listing lag) stops there: one GET of `metadata` (conditional, `If-None-Match` its entity tag,
//! where the store supports it), no listing. Why nothing can be missed: every row at or below
//! `C` was durable, with its index entry and any schema file below it, before `C` was written;
//! the settled round read `C` before its listings, so its listings showed all of them and it drew every conclusion (final versions,
//! closed directories, complete barriers) they allow. What storage got since holds only rows above
//! `C`, which cannot be applied until the checkpoint moves, and a moved checkpoint ends the skip.
//! That needs rows that carry their commit ts (the consumer holds them back to the checkpoint);
//! storage written without (csv without `include-commit-ts`, canal-json without the TiDB
//! extension) has its files applied as soon as they are indexed, so every round lists there.
//! With a listing lag `D > 0` a listing need not show what was written within `D` before it, so
//! the argument fails and every round lists (the skip is off). The replayer asks for a full round
//! after reopening the downstream when the progress record it reads back differs from its own
//! ([`Discovery::require_full_round`]); a failed round is never followed by an idle one
//! (`finish_round`). A consumer group member
//! never skips ([`Discovery::disable_idle_rounds`]): the tables it may apply change with its
//! leases and other members move the progress record.
//!
//! # Summary rounds
//!
//! A round after the checkpoint moved from `C_prev` to `C_m`, in a process whose last round
//! left the catalog up to date at `C_prev`, reads the sink's change summary (`changes.metadata`)
//! and refreshes only the tables its steps from `C_prev` to `C_m` name: O(changed tables)
//! requests. Where it is missing, unreadable or does not chain, the round is a full one. The
//! argument and its conditions are in `summary.rs`.
//!
//! A new process may start from a checkpoint its predecessor settled at
//! ([`Discovery::resume_at`], from the [`crate::settled`] mark): while `metadata` reads that
//! checkpoint its rounds are idle with an empty catalog; the first round that reads another
//! one is a first round (the recursive listing), and the skip is earned again by it, as in any
//! process.
//!
//! # Eventually consistent listings
//!
//! With a listing lag `D` ([`Discovery::with_listing_lag`]) a listing may leave out objects
//! written less than `D` ago; GETs stay consistent. Every conclusion above then rests only on
//! sightings at least `D` older than the listings it is drawn from (a listing started at `t`
//! shows everything written before `t - D`): a version is final, and a barrier completes its
//! tables, only once the newer version was first seen `D` before the phase B listings; a date
//! directory closes by a checkpoint read `D` before them; a newly listed data directory enters the
//! catalog only once it was first seen `D` ago and no younger-seen directory of an earlier date of
//! its version and partition waits (that one's stream must be read first), and while a table has
//! such waiting directories no barrier above them completes. A table's first DDL runs only once
//! a checkpoint at or above its version was read a lag before the phase A listings
//! ([`Catalog::schemas_through`]): every schema file below it was written before that
//! checkpoint and so is in those listings. Without that, a hidden RENAME that created the table
//! followed by a visible ADD COLUMN would create it empty, and a rename whose source is not
//! known yet would do the same. With `D = 0` every sighting counts
//! at once, which is the behaviour described above.
//!
//! Transient storage errors are retried per call by [`Upstream`]; a call that still fails ends
//! the round (the catalog keeps what it learnt) and the next round starts over.
//!
//! Discovery only learns *what exists*; which files may be applied is decided by
//! [`crate::ordering`].
//!
//! # Hostile names
//!
//! `object_store` paths cannot hold `.`/`..` segments, empty segments, control characters
//! (NUL included) or non-UTF-8 bytes: a store that lists such a name fails the listing itself
//! (e.g. a local directory with non-UTF-8 bytes), which ends the round with a storage error
//! naming the object. A schema or table directory whose name is a valid path segment but not a
//! name the sink can write (see [`cdc_common::layout::validate_name`]: longer than 255 bytes)
//! cannot hold anything the sink wrote: it is ignored with one warning naming it.
//!
//! # Files
//!
//! - `store`: [`Upstream`], the counted, retrying store client (the recursive listing too).
//! - `listing_ahead`: the first round's recursive listing, read while it goes on (the listing
//!   itself is `store`'s; this file runs it on a task and hands its batches over).
//! - `catalog`: [`Catalog`] and its entries, what discovery has learnt.
//! - `round`: [`Discovery::round`] as its phases.
//! - `read`: reading one schema file, one directory's index files, one version's directories.
//! - `settle`: listing-lag settling (which sightings count, directories waiting to settle).
//! - `summary`: summary rounds, which refresh only the tables the change summary names.
//! - this file: the [`Discovery`] state, its small catalog accessors and [`DiscoveryStats`].
//!
//! The files below this one use it; it uses none of them but the leaves `catalog` and `store`
//! (re-exported here), so there is no import circle.

mod catalog;
mod listing_ahead;
mod local_read;
mod read;
mod round;
mod settle;
mod store;
mod summary;

pub use catalog::{Catalog, DirEntry, SchemaEntry, TableEntry, VersionEntry};
pub use local_read::Look;
pub use store::{
    Fetched, Upstream, DEFAULT_STORAGE_ATTEMPTS, DEFAULT_STORAGE_BACKOFF,
    DEFAULT_STORAGE_MAX_BACKOFF, DEFAULT_STORAGE_REQUEST_TIMEOUT,
};
pub use summary::Refreshed;

use crate::config::TableFilter;

/// Whether a listed name is a writer's staging name, never an object of the layout: TiCDC's
/// storage layer (TiDB's `br/pkg/storage`) writes a small object to a local directory as
/// `<name>.tmp` and renames it, so a listing can catch it mid-write. Passed over; the object is
/// read once it has its name (`tests/ticdc_storage.rs`).
pub(crate) fn is_staging_name(name: &str) -> bool {
    name.ends_with(".tmp")
}
use cdc_common::layout::{DataDir, DateDir, LayoutConfig};
use cdc_common::{TableName, Ts};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counts of one discovery round, for the audit record.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct DiscoveryStats {
    /// List calls made.
    pub list_calls: u64,
    /// Get calls made.
    pub get_calls: u64,
    /// Schema files seen for the first time.
    pub new_schema_files: u64,
    /// Data directories seen for the first time.
    pub new_dirs: u64,
    /// Whether the round used the recursive listing (first round only).
    pub full_listing: bool,
    /// Whether the round read an unchanged checkpoint after a settled round and stopped there
    /// (see "Idle rounds").
    #[serde(default)]
    pub idle: bool,
    /// Whether that idle round stood on the checkpoint a previous process settled at (the
    /// settled mark) with no catalog built in this process.
    #[serde(default)]
    pub resumed: bool,
    /// Whether the round refreshed only the tables the sink's change summary named (see
    /// "Summary rounds").
    #[serde(default)]
    pub summary: bool,
    /// Tables a summary round refreshed.
    #[serde(default)]
    pub summary_tables: u64,
}

impl DiscoveryStats {
    /// The round's kind for `cdc_consumer_discovery_rounds_total`: `idle`, `first` (the
    /// recursive listing), `summary` or `full`.
    pub fn kind(&self) -> &'static str {
        if self.idle {
            "idle"
        } else if self.full_listing {
            "first"
        } else if self.summary {
            "summary"
        } else {
            "full"
        }
    }
}

/// Incremental discovery state.
pub struct Discovery {
    up: Upstream,
    cfg: LayoutConfig,
    filter: TableFilter,
    /// Shared with the replay of the round that read it ([`Discovery::shared_catalog`]); a
    /// mutation while the replay still holds it copies it first (`Arc::make_mut`), so each
    /// round's replay sees the catalog as that round concluded it.
    catalog: Arc<Catalog>,
    /// Rounds that listed storage and completed (idle rounds are not counted): the first one
    /// lists recursively, and settles only without a listing lag ([`Discovery::concluded`]).
    built: u64,
    /// The last round was idle (it carried the settled state over).
    last_idle: bool,
    warnings: Vec<String>,
    /// Listings may leave out objects younger than this (see "Eventually consistent listings").
    listing_lag: Duration,
    /// When each table version (`Some(table)`) or database-level schema file (`None`) was
    /// first seen.
    first_seen: HashMap<(String, Option<String>, Ts), Instant>,
    /// Checkpoint-ts values read, with when; pruned to the newest one older than the lag.
    checkpoints: VecDeque<(Instant, Ts)>,
    /// Data directories listed but not yet in the catalog (younger sightings than the lag),
    /// with when each was first seen.
    unsettled: BTreeMap<DataDir, Instant>,
    /// Directories ignored for their name, warned about once.
    ignored: HashSet<String>,
    /// Entity tag of `metadata` at the last read (for a conditional GET).
    metadata_etag: Option<String>,
    /// The checkpoint-ts read by the last round's phase 0.
    last_read: Option<Ts>,
    /// Idle rounds are allowed (rows carry their commit ts, so nothing above the checkpoint is
    /// ever applied; see "Idle rounds").
    idle_allowed: bool,
    /// The checkpoint at which the replayer found everything applied after a settled round:
    /// while `metadata` still says so, a round stops after phase 0 (see "Idle rounds").
    idle_at: Option<Ts>,
    /// The checkpoint-ts read by the last round that left the catalog up to date at it
    /// (completed, its conclusions drawn): a summary round starts its chain there.
    summary_base: Option<Ts>,
    /// The last round was a summary round.
    last_summary: bool,
    /// What the last round refreshed, when it was a summary round that completed.
    refreshed: Option<Refreshed>,
    /// The date every table's dated directories were last closed before (`Some(None)`: a
    /// walk with no such date; `None`: no walk yet). See `mark_final_and_closed`.
    closed_before: Option<Option<DateDir>>,
    /// The catalog holds only the tables changed since a settled mark this process started
    /// from (a summary round without a full one before it): every table it lacks is applied
    /// through the checkpoint (see `summary.rs`).
    partial: bool,
    /// The catalog learned something since [`Discovery::take_grew`] was last called: a table,
    /// version, schema file, directory, index entry or database-level file it did not hold, an
    /// index entry that moved, or a table's `complete_below` raised. Set where the catalog is
    /// changed, so telling a round that found something from one that did not is `O(1)`
    /// (walking every table for it was the largest cost of a busy round at 10,000 tables).
    grew: bool,
    /// The tables whose schema files gave a barrier that could still raise a `complete_below`
    /// when the last round looked (`None`: no round looked at every table yet). A summary
    /// round looks at these and its scope only (`add_known_barriers`).
    barrier_tables: Option<BTreeSet<TableName>>,
    /// Database-level barriers every table of their schema was raised to when last applied:
    /// a summary round applies them to its scope's tables only (`complete_tables`).
    db_barriers_met: BTreeSet<(String, Ts)>,
}

impl Discovery {
    /// Discovery over `up`, reading paths with `cfg`, keeping the tables `filter` accepts.
    pub fn new(up: Upstream, cfg: LayoutConfig, filter: TableFilter) -> Discovery {
        Discovery {
            up,
            cfg,
            filter,
            catalog: Arc::default(),
            built: 0,
            last_idle: false,
            warnings: Vec::new(),
            listing_lag: Duration::ZERO,
            first_seen: HashMap::new(),
            checkpoints: VecDeque::new(),
            unsettled: BTreeMap::new(),
            ignored: HashSet::new(),
            metadata_etag: None,
            last_read: None,
            idle_allowed: false,
            idle_at: None,
            summary_base: None,
            last_summary: false,
            refreshed: None,
            closed_before: None,
            partial: false,
            grew: false,
            barrier_tables: None,
            db_barriers_met: BTreeSet::new(),
        }
    }

    /// Tolerates listings that leave out objects written less than `lag` ago (eventually
    /// consistent listings): no conclusion is drawn from a listing about anything seen less than
    /// `lag` before it. Zero (the default) trusts listings, as S3, GCS, Azure Blob and local
    /// directories are strongly consistent.
    pub fn with_listing_lag(mut self, lag: Duration) -> Discovery {
        self.listing_lag = lag;
        self
    }

    /// Allows idle rounds (see "Idle rounds"): only for storage whose rows carry their commit
    /// ts ([`cdc_common::SinkOptions::rows_carry_commit_ts`]); rows without one are applied as
    /// soon as their file is indexed, above the checkpoint too, so an unchanged checkpoint does
    /// not mean nothing new can be applied.
    pub fn with_idle_rounds(mut self, allowed: bool) -> Discovery {
        self.idle_allowed = allowed;
        self
    }

    /// Turns idle rounds off (a consumer group member: other members move the progress record
    /// and leases move between members, so "everything applied" is not this process's to say).
    pub fn disable_idle_rounds(&mut self) {
        self.idle_allowed = false;
        self.idle_at = None;
        self.summary_base = None;
    }

    /// Tells discovery how the round that just ran ended: `all_applied` when the replayer
    /// applied everything the catalog allowed without an error. After such a round that drew
    /// its conclusions (with no listing lag, any round that listed, the first one included),
    /// later rounds stop after phase 0 while the checkpoint-ts stays the same (see "Idle
    /// rounds"). An idle round that ended so keeps the state it stood on.
    pub fn finish_round(&mut self, all_applied: bool) {
        let settled = all_applied
            && self.listing_lag.is_zero()
            && (self.concluded()
                || self.last_summary
                || (self.last_idle && self.idle_at.is_some()));
        self.idle_at = if self.idle_allowed && settled {
            self.last_read
        } else {
            None
        };
    }

    /// True once a completed round listed storage and drew its conclusions: every round after
    /// the first, and the first one too without a listing lag (with one, its listing proves
    /// nothing yet).
    fn concluded(&self) -> bool {
        self.built >= 2 || (self.built == 1 && self.listing_lag.is_zero())
    }

    /// The checkpoint-ts the last finished round settled at (`None`: it did not settle, so the
    /// next round lists): what the replayer stores as the settled mark.
    pub fn settled_at(&self) -> Option<Ts> {
        self.idle_at
    }

    /// Starts from a checkpoint-ts `c` that a previous process settled at (the settled mark,
    /// checked by the caller against the progress record): while `metadata` reads `c`, rounds
    /// are idle without building the catalog. When the mark also says no indexed file was
    /// pending (`nothing_pending`), the first round that reads a moved checkpoint may be a
    /// summary round from `c` (see `summary.rs`). Refused (false) where idle rounds are not
    /// allowed (rows without commit ts, a listing lag, a group member) or after a round ran.
    pub fn resume_at(&mut self, c: Ts, nothing_pending: bool) -> bool {
        if !self.idle_allowed || !self.listing_lag.is_zero() || self.built > 0 || self.last_idle {
            return false;
        }
        self.idle_at = Some(c);
        self.summary_base = nothing_pending.then_some(c);
        // the mark vouches for what is applied through `c`: a first round that fails leaves
        // the figures there, not at zero
        self.catalog_mut().listed_through = Some(c);
        true
    }

    /// True while the catalog holds only the tables changed since the settled mark this
    /// process started from: a table it lacks has nothing left to apply through the
    /// checkpoint (see `summary.rs`).
    pub fn partial_catalog(&self) -> bool {
        self.partial
    }

    /// True once a round listed storage in this process (false while every round so far, if
    /// any, was idle on a resumed checkpoint with an empty catalog).
    pub fn catalog_built(&self) -> bool {
        self.built > 0
    }

    /// The next round lists storage whatever the checkpoint says (the downstream was reopened
    /// with a progress record other than the process's, or the set of tables to replay
    /// changed).
    pub fn require_full_round(&mut self) {
        self.idle_at = None;
        self.summary_base = None;
    }

    /// What is known so far.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The catalog to change: copied first while the replay of a round still holds it
    /// ([`Discovery::shared_catalog`]), so that round goes on seeing it as it was concluded.
    fn catalog_mut(&mut self) -> &mut Catalog {
        Arc::make_mut(&mut self.catalog)
    }

    /// What is known so far, as a handle the replay keeps through its round without copying
    /// the catalog (a copy of 20,000 tables' entries per round was 3% of a cold replay).
    pub fn shared_catalog(&self) -> Arc<Catalog> {
        Arc::clone(&self.catalog)
    }

    /// What the last round refreshed: `Some` only after a summary round that completed, whose
    /// other tables the round left as they were (see [`Refreshed`]); `None` after any other
    /// round (an idle one included: it read nothing).
    pub fn refreshed(&self) -> Option<&Refreshed> {
        self.refreshed.as_ref()
    }

    /// The upstream store (for reading data files).
    pub fn upstream(&self) -> &Upstream {
        &self.up
    }

    /// The layout options.
    pub fn layout(&self) -> &LayoutConfig {
        &self.cfg
    }

    /// Whether the catalog learned something since the last call (see the field `grew`);
    /// clears it.
    pub fn take_grew(&mut self) -> bool {
        std::mem::take(&mut self.grew)
    }

    /// Takes the non-fatal warnings gathered since the last call.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    fn warn(&mut self, w: String) {
        tracing::warn!("{w}");
        self.warnings.push(w);
    }

    /// True (after one warning per directory) when `name`, the schema or table directory
    /// `dir`, is not a name the sink can write, so nothing under it belongs to the layout.
    fn ignore_bad_name(&mut self, dir: &str, name: &str) -> bool {
        let Err(e) = cdc_common::layout::validate_name(name) else {
            return false;
        };
        if self.ignored.insert(dir.to_string()) {
            self.warn(format!(
                "ignoring `{}/` and everything under it (not part of the layout): {e}",
                dir.escape_debug()
            ));
        }
        true
    }

    /// The data directories `keep` accepts of the catalog's tables in `scope` (every table
    /// without one), in name order.
    fn dirs_in(
        &self,
        scope: Option<&round::Scope>,
        keep: impl Fn(&VersionEntry, &DirEntry) -> bool,
    ) -> Vec<DataDir> {
        self.scoped_tables(scope)
            .flat_map(|(_, t)| t.versions.values())
            .flat_map(|v| v.dirs.iter().filter(|(_, d)| keep(v, d)).map(|(k, _)| k))
            .cloned()
            .collect()
    }

    fn version_mut(&mut self, schema: &str, table: &str, version: Ts) -> &mut VersionEntry {
        self.first_seen
            .entry((schema.to_string(), Some(table.to_string()), version))
            .or_insert_with(Instant::now);
        let name = TableName::new(schema, table);
        let catalog = Arc::make_mut(&mut self.catalog);
        self.grew |= !catalog
            .tables
            .get(&name)
            .is_some_and(|t| t.versions.contains_key(&version));
        catalog
            .tables
            .entry(name)
            .or_default()
            .versions
            .entry(version)
            .or_default()
    }

    fn dir_entry(&self, d: &DataDir) -> Option<&DirEntry> {
        self.catalog
            .tables
            .get(&TableName::new(&d.schema, &d.table))?
            .versions
            .get(&d.version)?
            .dirs
            .get(d)
    }

    fn dir_entry_mut(&mut self, d: &DataDir) -> Option<&mut DirEntry> {
        self.catalog_mut()
            .tables
            .get_mut(&TableName::new(&d.schema, &d.table))?
            .versions
            .get_mut(&d.version)?
            .dirs
            .get_mut(d)
    }
}
