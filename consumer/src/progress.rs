//! Per-table replay progress: what has been applied, stored in the downstream.
//!
//! # The progress record (frozen format: do not add, remove or reorder columns)
//!
//! ```text
//! cdc_consumer_progress
//!   schema_name   text    upstream schema
//!   table_name    text    upstream table ('' for a database-level DDL row)
//!   partition_id  text    partition directory ('' when none)
//!   dispatcher    text    dispatcher id ('' for the single writer; '#ddl' for the DDL row)
//!   table_version bigint  table version of the last applied file / DDL
//!   date_dir      text    date directory of the last applied file ('' when none)
//!   file_index    bigint  index of the last wholly applied file (0: none in that directory)
//!   commit_ts     bigint  every row with commit ts <= this is applied (0: unknown)
//!   PRIMARY KEY (schema_name, table_name, partition_id, dispatcher)
//! ```
//!
//! One row per *stream* (a table's partition and dispatcher: the files one writer produced, in
//! `(version, date, index)` order) and one `#ddl` row per table and per schema holding the
//! version of the last applied schema file. A row is written in the same downstream transaction
//! as the rows or DDL it covers (for stdout: in a progress file replaced atomically), so after a
//! crash the record and the data agree. A unit of several consecutive files of one stream
//! writes the row once, naming its last file.
//!
//! A file whose rows are only partly at or below the checkpoint is applied up to the checkpoint:
//! the record keeps the *previous* file as `file_index` and the checkpoint as `commit_ts`; the
//! next round reads the file again and skips rows at or below `commit_ts`.
//!
//! More rows may be present: *settled marks* (`''`, `''`, `<scope>`, [`SETTLED_STREAM`]), one per
//! consumer scope, derived values that let a restart skip rebuilding the catalog (see
//! [`crate::settled`]). They are not streams: [`Progress::from_rows`] leaves them out, and the
//! columns keep their types (no migration: an older progress table holds them as they are, an
//! older consumer ignores them).
//!
//! [`Progress::digest`] is an order-free digest of every row, kept up to date as rows are set
//! (one small hash per committed unit, no walk of the record), and
//! [`Progress::digest_where`] the same over some rows: a settled mark stores the digest of the
//! rows in its scope, so it is believed only while they are exactly the ones it was written with.

use cdc_common::layout::DataDir;
use cdc_common::{TableName, Ts};
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Name of the progress table in SQL downstreams.
pub const PROGRESS_TABLE: &str = "cdc_consumer_progress";

/// How long the settled read of the progress record (a consumer's start or reopen, see
/// [`crate::backend::Downstream::load_progress_settled`]) waits for another session's
/// transaction that wrote progress rows and has not ended, unless the environment variable
/// `CDC_CONSUMER_SETTLE_WAIT_SECS` says otherwise (a whole number of seconds, at least 1).
pub const SETTLE_WAIT_SECS: u64 = 30;

/// The settled read's bound in seconds: `CDC_CONSUMER_SETTLE_WAIT_SECS` or [`SETTLE_WAIT_SECS`].
pub fn settle_wait_secs() -> u64 {
    std::env::var("CDC_CONSUMER_SETTLE_WAIT_SECS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&s| s >= 1)
        .unwrap_or(SETTLE_WAIT_SECS)
}

/// The error text of a settled read that waited [`settle_wait_secs`] in vain.
pub fn settle_wait_reason() -> String {
    format!(
        "another session held a transaction that wrote progress rows open for more than {} s \
         (a paused or cut-off consumer?); nothing was read nor applied until it ends (commits, \
         rolls back or is ended by the server)",
        settle_wait_secs()
    )
}
/// The `dispatcher` value of DDL rows (dispatcher ids are `[A-Za-z0-9-]`, so it cannot clash).
pub const DDL_STREAM: &str = "#ddl";
/// The `dispatcher` value of settled marks' rows (schema and table `''`: no schema is named
/// `''`, so they cannot clash with a stream or a DDL row).
pub const SETTLED_STREAM: &str = "#settled";

/// The key of a progress row.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ProgressKey {
    /// Upstream schema.
    pub schema: String,
    /// Upstream table (`""` for database-level DDL rows).
    pub table: String,
    /// Partition directory (`""` when none).
    pub partition: String,
    /// Dispatcher id, `""` for the single writer, [`DDL_STREAM`] for DDL rows.
    pub dispatcher: String,
}

impl ProgressKey {
    /// The DDL row of a table.
    pub fn table_ddl(name: &TableName) -> ProgressKey {
        ProgressKey {
            schema: name.schema.clone(),
            table: name.table.clone(),
            partition: String::new(),
            dispatcher: DDL_STREAM.into(),
        }
    }

    /// The DDL row of a schema (database-level schema files).
    pub fn schema_ddl(schema: &str) -> ProgressKey {
        ProgressKey {
            schema: schema.into(),
            table: String::new(),
            partition: String::new(),
            dispatcher: DDL_STREAM.into(),
        }
    }

    /// The row of the settled mark of consumer scope `scope` (see [`crate::settled`]).
    pub fn settled(scope: &str) -> ProgressKey {
        ProgressKey {
            schema: String::new(),
            table: String::new(),
            partition: scope.into(),
            dispatcher: SETTLED_STREAM.into(),
        }
    }

    /// True for a settled mark's row.
    pub fn is_settled(&self) -> bool {
        self.dispatcher == SETTLED_STREAM && self.schema.is_empty() && self.table.is_empty()
    }

    /// The stream of one writer of a data directory.
    pub fn stream(dir: &DataDir, dispatcher: &Option<String>) -> ProgressKey {
        ProgressKey {
            schema: dir.schema.clone(),
            table: dir.table.clone(),
            partition: dir.partition_id.map(|p| p.to_string()).unwrap_or_default(),
            dispatcher: dispatcher.clone().unwrap_or_default(),
        }
    }
}

/// A progress key's four parts, borrowed: a row is looked up without building its key (a
/// look-up per table and stream in every walk of the tables' steps, where building the key
/// was four allocations). Orders as [`ProgressKey`] does: schema, table, partition,
/// dispatcher.
pub trait KeyParts {
    /// `(schema, table, partition, dispatcher)`.
    fn parts(&self) -> (&str, &str, &str, &str);
}

impl KeyParts for ProgressKey {
    fn parts(&self) -> (&str, &str, &str, &str) {
        (&self.schema, &self.table, &self.partition, &self.dispatcher)
    }
}

impl KeyParts for (&str, &str, &str, &str) {
    fn parts(&self) -> (&str, &str, &str, &str) {
        *self
    }
}

impl PartialEq for dyn KeyParts + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn KeyParts + '_ {}

impl PartialOrd for dyn KeyParts + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn KeyParts + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts().cmp(&other.parts())
    }
}

impl std::hash::Hash for dyn KeyParts + '_ {
    // Field by field as `ProgressKey`'s derived `Hash` does (each text as `str` hashes), so a
    // key and its parts hash alike.
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let (schema, table, partition, dispatcher) = self.parts();
        schema.hash(h);
        table.hash(h);
        partition.hash(h);
        dispatcher.hash(h);
    }
}

impl<'a> std::borrow::Borrow<dyn KeyParts + 'a> for ProgressKey {
    fn borrow(&self) -> &(dyn KeyParts + 'a) {
        self
    }
}

/// A progress value.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    /// Table version.
    pub version: Ts,
    /// Date directory (`""` when none).
    pub date: String,
    /// Last wholly applied file index in that directory (0: none).
    pub file_index: u64,
    /// Rows with commit ts at or below this are applied.
    pub commit_ts: Ts,
}

impl Position {
    /// Orders file positions: version, then date directory, then file index.
    pub fn cmp_file(&self, version: Ts, date: &str, index: u64) -> Ordering {
        (self.version, self.date.as_str(), self.file_index).cmp(&(version, date, index))
    }

    /// `table_version`, `file_index` and `commit_ts` as the signed column values SQL
    /// downstreams store (`date_dir` is stored as is).
    pub fn to_columns(&self) -> Result<(i64, i64, i64), String> {
        Ok((
            to_i64("table_version", self.version.0)?,
            to_i64("file_index", self.file_index)?,
            to_i64("commit_ts", self.commit_ts.0)?,
        ))
    }

    /// The position stored in a progress row's `table_version`, `date_dir`, `file_index` and
    /// `commit_ts` columns.
    pub fn from_columns(
        version: i64,
        date: String,
        file_index: i64,
        commit_ts: i64,
    ) -> Result<Position, String> {
        Ok(Position {
            version: Ts(from_i64("table_version", version)?),
            date,
            file_index: from_i64("file_index", file_index)?,
            commit_ts: Ts(from_i64("commit_ts", commit_ts)?),
        })
    }
}

/// The date directory of a data directory as stored in progress rows.
pub fn date_text(dir: &DataDir) -> String {
    dir.date.map(|d| d.to_string()).unwrap_or_default()
}

/// The in-memory copy of the progress record (the settled mark's row left out).
#[derive(Clone, Debug, Default)]
pub struct Progress {
    rows: BTreeMap<ProgressKey, Position>,
    /// The same rows by hash, for look-ups: every walk of the tables' steps looks up each
    /// table's DDL row and streams, and in the ordered map each look-up was some thirty key
    /// compares (a third of a busy round's CPU at 10,000 tables). Changed only with `rows`,
    /// by [`Progress::set`].
    index: HashMap<ProgressKey, Position, foldhash::fast::RandomState>,
    /// Wrapping sum of [`row_hash`] over `rows` (see [`Progress::digest`]).
    digest: u64,
    /// Streams held this round before an empty newest file their writer may still write
    /// (`replay::in_place`): not pending for the rest of the round (see
    /// [`crate::ordering::pending_files`]). Not a row: no part of the record or its digest;
    /// cleared at each round's start ([`Progress::clear_holds`]).
    held: HashSet<ProgressKey, foldhash::fast::RandomState>,
}

impl Progress {
    /// From rows read back from the downstream; the settled mark's row is not a stream and is
    /// left out (read it with [`crate::settled::SettledMark::find`]).
    pub fn from_rows(rows: impl IntoIterator<Item = (ProgressKey, Position)>) -> Progress {
        let mut p = Progress::default();
        for (k, v) in rows {
            if !k.is_settled() {
                p.set(k, v);
            }
        }
        p
    }

    /// An order-free digest of every row (keys and positions): equal records give equal
    /// digests in any process; any row added, removed or changed changes it (up to hash
    /// collisions). O(1): kept up to date by [`Progress::set`].
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// [`Progress::digest`] of the rows `keep` accepts (a walk of the record).
    pub fn digest_where(&self, keep: impl Fn(&ProgressKey) -> bool) -> u64 {
        self.rows
            .iter()
            .filter(|(k, _)| keep(k))
            .fold(0u64, |h, (k, p)| h.wrapping_add(row_hash(k, p)))
    }

    /// The position of a key.
    pub fn get(&self, k: &ProgressKey) -> Option<&Position> {
        self.index.get(k)
    }

    /// Records a committed position.
    pub fn set(&mut self, k: ProgressKey, p: Position) {
        let added = row_hash(&k, &p);
        if let Some(old) = self.rows.get(&k) {
            self.digest = self.digest.wrapping_sub(row_hash(&k, old));
        }
        self.digest = self.digest.wrapping_add(added);
        self.index.insert(k.clone(), p.clone());
        self.rows.insert(k, p);
    }

    /// Holds `k`'s stream for the rest of the round (see the field `held`).
    pub fn hold(&mut self, k: ProgressKey) {
        self.held.insert(k);
    }

    /// Forgets every hold (a round's start).
    pub fn clear_holds(&mut self) {
        self.held.clear();
    }

    /// Whether the stream whose key's parts are `parts` is held this round.
    pub fn is_held(&self, parts: (&str, &str, &str, &str)) -> bool {
        !self.held.is_empty() && self.held.contains(&parts as &dyn KeyParts)
    }

    /// Whether any stream of `name` is held this round: O(held streams), none in most rounds.
    pub fn holds_in(&self, name: &TableName) -> bool {
        self.held
            .iter()
            .any(|k| k.schema == name.schema && k.table == name.table)
    }

    /// The position of the key whose parts are `parts` (see [`KeyParts`]).
    pub fn get_parts(&self, parts: (&str, &str, &str, &str)) -> Option<&Position> {
        self.index.get(&parts as &dyn KeyParts)
    }

    /// The applied version of a table's DDL row.
    pub fn table_version(&self, name: &TableName) -> Option<Ts> {
        self.get_parts((&name.schema, &name.table, "", DDL_STREAM))
            .map(|p| p.version)
    }

    /// The applied version of a schema's DDL row.
    pub fn schema_version(&self, schema: &str) -> Option<Ts> {
        self.get_parts((schema, "", "", DDL_STREAM))
            .map(|p| p.version)
    }

    /// Every row.
    pub fn rows(&self) -> impl Iterator<Item = (&ProgressKey, &Position)> {
        self.rows.iter()
    }

    /// The rows of one table (its DDL row and its streams). Keys order by schema, then table,
    /// so they are one range of the record: O(log rows + the table's rows), where a filter
    /// over [`Progress::rows`] is O(rows), and O(tables x rows) when every table asks.
    pub fn table_rows<'a>(
        &'a self,
        name: &'a TableName,
    ) -> impl Iterator<Item = (&'a ProgressKey, &'a Position)> + 'a {
        // The table's least key: "" is the least partition and dispatcher.
        let first: (&str, &str, &str, &str) = (&name.schema, &name.table, "", "");
        let from = std::ops::Bound::Included(&first as &dyn KeyParts);
        self.rows
            .range::<dyn KeyParts, _>((from, std::ops::Bound::Unbounded))
            .take_while(move |(k, _)| k.schema == name.schema && k.table == name.table)
    }
}

/// FNV-1a (64-bit) of `bytes`, continuing from `h`.
pub(crate) fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The FNV-1a offset basis.
pub(crate) const FNV_BASIS: u64 = 0xcbf2_9ce4_8422_2325;

/// A stable hash of one row: every key and position field, each text ended by its length so
/// no two rows share an encoding. The same in every process and build (no random state).
fn row_hash(k: &ProgressKey, p: &Position) -> u64 {
    let mut h = FNV_BASIS;
    for text in [&k.schema, &k.table, &k.partition, &k.dispatcher, &p.date] {
        h = fnv1a(h, text.as_bytes());
        h = fnv1a(h, &(text.len() as u64).to_le_bytes());
    }
    for n in [p.version.0, p.file_index, p.commit_ts.0] {
        h = fnv1a(h, &n.to_le_bytes());
    }
    // spread the bits before they are summed (FNV's low bits mix poorly)
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// Converts a ts or index to the signed 64-bit column type of SQL downstreams.
pub fn to_i64(what: &str, v: u64) -> Result<i64, String> {
    i64::try_from(v).map_err(|_| format!("{what} {v} does not fit a signed 64-bit column"))
}

/// Converts a signed column value back (negative values are corrupt progress).
pub fn from_i64(what: &str, v: i64) -> Result<u64, String> {
    u64::try_from(v).map_err(|_| format!("{what} {v} in {PROGRESS_TABLE} is negative"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(schema: &str, table: &str, partition: &str, dispatcher: &str) -> ProgressKey {
        ProgressKey {
            schema: schema.into(),
            table: table.into(),
            partition: partition.into(),
            dispatcher: dispatcher.into(),
        }
    }

    fn at(commit_ts: u64) -> Position {
        Position {
            version: Ts(1),
            date: String::new(),
            file_index: 1,
            commit_ts: Ts(commit_ts),
        }
    }

    #[test]
    fn a_row_is_found_by_its_parts_as_by_its_key_after_every_change() {
        let keys = [
            key("s", "t", "", DDL_STREAM),
            key("s", "t", "", ""),
            key("s", "t", "7", "d-1"),
            key("s", "", "", DDL_STREAM),
            key("s", "t7", "", ""),
            key("st", "", "", ""),
        ];
        let mut p = Progress::default();
        for (i, k) in keys.iter().enumerate() {
            p.set(k.clone(), at(i as u64));
        }
        p.set(keys[2].clone(), at(40));
        for k in &keys {
            let by_key = p.rows().find(|(r, _)| *r == k).map(|(_, v)| v);
            assert_eq!(p.get_parts(k.parts()), by_key, "{k:?}");
            assert_eq!(p.get(k), by_key, "{k:?}");
        }
        assert_eq!(
            p.get_parts(("s", "t", "7", "d-1")).unwrap().commit_ts,
            Ts(40)
        );
        // parts that differ only by where one text ends and the next begins
        assert_eq!(p.get_parts(("s", "t7", "", "d-1")), None);
        assert_eq!(p.get_parts(("st", "", "", "")).unwrap().commit_ts, Ts(5));
        assert_eq!(p.table_version(&TableName::new("s", "t")), Some(Ts(1)));
        assert_eq!(p.schema_version("s"), Some(Ts(1)));
        assert_eq!(p.table_version(&TableName::new("s", "u")), None);
    }

    #[test]
    fn table_rows_are_the_tables_rows_and_no_neighbours() {
        // Neighbours on both sides in key order: names that extend, prefix or sort beside
        // the table's, in its schema and in schemas that extend or prefix it.
        let rows = [
            key("s", "", "", DDL_STREAM),
            key("s", "s", "", ""),
            key("s", "t", "", ""),
            key("s", "t", "", DDL_STREAM),
            key("s", "t", "p1", "d-1"),
            key("s", "t", "p2", ""),
            key("s", "t ", "", ""),
            key("s", "t1", "", ""),
            key("s", "ta", "", DDL_STREAM),
            key("s", "u", "", ""),
            key("s1", "t", "", ""),
            key("", "t", "", ""),
            key("r", "t", "", ""),
        ];
        let progress = Progress::from_rows(
            rows.iter()
                .enumerate()
                .map(|(i, k)| (k.clone(), at(i as u64))),
        );
        let name = TableName::new("s", "t");
        let got: Vec<&ProgressKey> = progress.table_rows(&name).map(|(k, _)| k).collect();
        let want: Vec<&ProgressKey> = progress
            .rows()
            .filter(|(k, _)| k.schema == "s" && k.table == "t")
            .map(|(k, _)| k)
            .collect();
        assert_eq!(got, want);
        assert_eq!(got.len(), 4);
        assert_eq!(progress.table_rows(&TableName::new("s", "v")).count(), 0);
        assert_eq!(progress.table_rows(&TableName::new("s1", "t")).count(), 1);
    }
}
