//! Schema files for data: before the first data file of a table version is published, its
//! schema file must exist. Written, or **reused** so that a restarted sink does not start a new
//! version directory for a table whose definition did not change.
//!
//! Resolution of a table definition `def` (version `v`, checksum `c`), once per process:
//!
//! 1. `schema_<v>_<c>.json` exists: use `v`.
//! 2. The newest schema file at a version below `v` has checksum `c` (nothing changed the table
//!    since): reuse its version (a dispatcher restarted with a checkpoint-derived version).
//! 3. The oldest schema file at a version above `v` has checksum `c` (a previous run already
//!    wrote this definition at a newer version): reuse it, as TiCDC does.
//! 4. Otherwise write `schema_<v>_<c>.json` and use `v`.
//!
//! The data directory then uses the resolved version. A checksum that matches only across an
//! intervening different definition is never reused: that would put new rows before a DDL.
//! DDL schema files (`write_block_event`) are always written and recorded here directly
//! ([`SchemaCache::write_ddl_file`]).
//!
//! Invariant: **one table's versions are resolved one at a time in the process.** Steps 2 and
//! 3 read the files the table's other versions wrote, so two resolutions of one table must not
//! both list before either writes: two writer shards with dispatchers of one table at versions
//! 10 and 20 of one definition would each find nothing and write a schema file, two version
//! directories of one definition where one is the rule (`tests/schema_reuse.rs`). A per-table
//! async lock is taken for a version not resolved yet (an answer already cached takes no lock);
//! different tables resolve side by side. Within one writer's flush, `plan_lookup.rs` also
//! keeps a table's versions in the flush's order. A DDL's schema file is put and recorded in
//! the table's turn too. The turn is held through the put's retries (up to
//! `storage-retry-timeout`): a resolution of another version of the table waits that long
//! before its own attempts, in the case the turn exists for only.

use crate::changes::ChangeLog;
use crate::error::Result;
use crate::metrics::SinkMetrics;
use crate::retry::{retry, RetryPolicy};
use cdc_common::layout::SchemaFilePath;
use cdc_common::schema_file::SchemaFile;
use cdc_common::storage::key;
use cdc_common::{DdlKind, TableDef, TableName, Ts};
use object_store::{ObjectStore, PutPayload};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{Mutex as AsyncMutex, OnceCell};

/// What reading and writing schema files takes: the store, its retry policy, the metrics its
/// requests count in, and the change log a written file is noted in (the writers' context
/// lends them: `WriterContext::schema_io`).
pub(crate) struct SchemaIo<'a> {
    pub store: &'a Arc<dyn ObjectStore>,
    pub policy: &'a RetryPolicy,
    pub metrics: &'a Arc<SinkMetrics>,
    pub changes: &'a ChangeLog,
}

/// The resolved version directory of one (table, version), filled once.
type Resolved = Arc<OnceCell<Ts>>;

/// Process-wide memory of resolved table versions, shared by every writer.
#[derive(Default)]
pub(crate) struct SchemaCache {
    tables: Mutex<HashMap<TableName, TableSlot>>,
}

/// One table's resolved versions, and its turn: held while one of its versions is resolved in
/// storage (see the module doc's invariant).
#[derive(Default)]
struct TableSlot {
    versions: HashMap<Ts, Resolved>,
    turn: Arc<AsyncMutex<()>>,
}

impl SchemaCache {
    /// The cell of `(name, version)` and the table's turn.
    fn slot(&self, name: TableName, version: Ts) -> (Resolved, Arc<AsyncMutex<()>>) {
        let mut m = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        let t = m.entry(name).or_default();
        let cell = Arc::clone(t.versions.entry(version).or_default());
        (cell, Arc::clone(&t.turn))
    }

    /// The version directory the data of `def` goes to, writing its schema file if needed.
    pub async fn resolve(&self, io: &SchemaIo<'_>, def: &TableDef) -> Result<Ts> {
        let (cell, turn) = self.slot(def.name(), def.version);
        if let Some(v) = cell.get() {
            return Ok(*v);
        }
        // Let go with the future too (a failed flush drops the look-ups still running).
        let _turn = turn.lock().await;
        let v = cell.get_or_try_init(|| resolve_in_storage(io, def)).await?;
        Ok(*v)
    }

    /// Writes a DDL's schema file (always written) and, for a table-level DDL (`def`: its
    /// table), records it as that version's directory, in the table's turn: a resolution of
    /// the table's other versions lists its schema files before this one is put or after it is
    /// recorded, never in between (review of the turn, helper-74: the DDL's put used to run
    /// beside a resolution, whose answer then won the cell).
    pub async fn write_ddl_file(
        &self,
        io: &SchemaIo<'_>,
        file: &SchemaFile,
        def: Option<&TableDef>,
    ) -> Result<()> {
        let Some(def) = def else {
            return write_schema_file(io, file).await;
        };
        let (cell, turn) = self.slot(def.name(), def.version);
        let _turn = turn.lock().await;
        write_schema_file(io, file).await?;
        let _ = cell.set(def.version);
        Ok(())
    }
}

async fn resolve_in_storage(io: &SchemaIo<'_>, def: &TableDef) -> Result<Ts> {
    let file = SchemaFile::for_table(def, "", &DdlKind::Other);
    let checksum = file.checksum();
    let prefix = SchemaFilePath::meta_prefix(&def.schema, Some(&def.table))?;
    let prefix_path = key(prefix.trim_end_matches('/'))?;
    let listed = retry(io.policy, io.metrics, "list", &prefix, 1, || {
        io.store.list_with_delimiter(Some(&prefix_path))
    })
    .await?;
    let mut found: Vec<SchemaFilePath> = listed
        .objects
        .iter()
        .filter_map(|o| SchemaFilePath::parse(o.location.as_ref()).ok())
        .filter(|p| p.table.as_deref() == Some(def.table.as_str()))
        .collect();
    found.sort_by_key(|p| p.version);
    if let Some(v) = choose_version(&found, def.version, checksum) {
        tracing::debug!(table = %def.name(), version = %def.version, reused = %v, "schema file reused");
        return Ok(v);
    }
    write_schema_file(io, &file).await?;
    Ok(def.version)
}

/// Steps 1-3 of the module doc over schema files sorted by version.
pub(crate) fn choose_version(sorted: &[SchemaFilePath], version: Ts, checksum: u32) -> Option<Ts> {
    if sorted
        .iter()
        .any(|p| p.version == version && p.checksum == checksum)
    {
        return Some(version);
    }
    let below = sorted.iter().rev().find(|p| p.version < version);
    if let Some(p) = below {
        if p.checksum == checksum {
            return Some(p.version);
        }
    }
    let above = sorted.iter().find(|p| p.version > version);
    match above {
        Some(p) if p.checksum == checksum => Some(p.version),
        _ => None,
    }
}

/// Puts one schema file, create-only (idempotent: the same definition always has the same
/// bytes, so another node's identical file counts as written; see `create_only.rs`). Its table
/// (or schema, for a database-level file) is noted for the change summary after the put.
pub(crate) async fn write_schema_file(io: &SchemaIo<'_>, file: &SchemaFile) -> Result<()> {
    let target = file.path();
    let path = target.build()?;
    let location = key(&path)?;
    let body = bytes::Bytes::from(file.to_json());
    let put = crate::create_only::put_create(
        io.store,
        io.policy,
        io.metrics,
        &path,
        &location,
        PutPayload::from(body),
    )
    .await;
    match &target.table {
        Some(t) => io.changes.note_table(&target.schema, t),
        None => io.changes.note_schema(&target.schema),
    }
    put
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: u64, c: u32) -> SchemaFilePath {
        SchemaFilePath {
            schema: "s".into(),
            table: Some("t".into()),
            version: Ts(v),
            checksum: c,
        }
    }

    #[test]
    fn reuses_only_an_unbroken_same_definition() {
        let files = [p(10, 1), p(20, 2), p(30, 1)];
        assert_eq!(choose_version(&files, Ts(20), 2), Some(Ts(20)));
        // Restart after 30 with the same definition: reuse 30.
        assert_eq!(choose_version(&files, Ts(40), 1), Some(Ts(30)));
        // Version 25 of definition 1: the newest file below (20) is another definition and the
        // next above (30) is this one.
        assert_eq!(choose_version(&files, Ts(25), 1), Some(Ts(30)));
        // Version 15 of definition 3: nothing to reuse.
        assert_eq!(choose_version(&files, Ts(15), 3), None);
        // Definition 1 again at 22 (drop + re-add column): 20 is in between, 30 above is equal.
        assert_eq!(choose_version(&[p(10, 1), p(20, 2)], Ts(22), 1), None);
        assert_eq!(choose_version(&[], Ts(1), 1), None);
    }
}
