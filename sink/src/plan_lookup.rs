//! Phase *look up* of a flush: the storage reads and writes its batches' plans need, made
//! concurrently before the plans are built.
//!
//! A batch's plan needs its table version directory (the schema file written or reused, see
//! `schema.rs`) and, for a `(data directory, file id)` this writer has not numbered yet, the
//! next file index (`discover_next_index`: the index file, a listing of the directory, the
//! deletion of a crashed run's stale files). Each is one to four storage requests. Made one
//! batch after the other, a flush's first files across N new tables waited for about 4 N
//! round trips per writer before the first upload started; here they run `flush-concurrency`
//! at a time, in two waves:
//!
//! 1. *versions*: one schema resolution per batch (`SchemaCache::resolve` shares one storage
//!    look-up per table version between all callers, caches the answer, and resolves one
//!    table's versions one at a time across writers); one table's versions one after another
//!    in the flush's order (reuse of an older schema file depends on the versions between, so
//!    the order decides which version a definition's rows land in), different tables side by
//!    side;
//! 2. *indexes*: one discovery per distinct `(data directory, file id)` the writer has no
//!    number for; two batches of one stream in the same flush share it.
//!
//! Invariants:
//! - nothing is published before both waves are done: a data file still follows its schema
//!   file, and an index number is known before any file of its stream is named;
//! - discoveries of different keys touch different files only (each deletes
//!   stale files of its own key), so running them side by side changes no outcome;
//! - the plans themselves (number assignment, `Writer::plan`) stay sequential and in the
//!   flush's order, so numbering is what it was;
//! - the first failure fails the flush, as a sequential plan did; look-ups still running are
//!   dropped (the schema cache keeps no half answer: its cell stays empty).

use crate::batch::{Batch, BatchKey};
use crate::error::Result;
use crate::retry::retry;
use crate::writer::{IndexKey, WriterContext};
use cdc_common::layout::{parse_file_name, DataDir, IndexFile};
use cdc_common::storage::{get_if_exists, key};
use cdc_common::{TableDef, Ts};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// What the plans of a flush's batches need from storage, in the batches' order.
pub(crate) struct Looked {
    /// Each batch's table version directory.
    pub versions: Vec<Ts>,
    /// The next file index of each key the writer had no number for.
    pub next_index: HashMap<IndexKey, u64>,
}

/// What a batch's plan looks up: its table definition and where its files go (owned, so the
/// look-up holds no borrow of the batches, whose items are not `Sync`).
pub(crate) struct Need {
    table: Arc<TableDef>,
    key: BatchKey,
    file_id: Option<String>,
}

impl Need {
    pub fn of(batch: &Batch) -> Need {
        Need {
            table: Arc::clone(&batch.table),
            key: batch.key.clone(),
            file_id: batch.dispatcher.file_id.clone(),
        }
    }

    /// The index key of these files written into version directory `version`.
    pub fn index_key(&self, version: Ts) -> IndexKey {
        let dir = DataDir {
            schema: self.key.schema.clone(),
            table: self.key.table.clone(),
            version,
            partition_id: self.key.partition_id,
            date: self.key.date,
        };
        (dir, self.file_id.clone())
    }
}

/// Runs both waves for `needs`; `known` says which keys the writer has numbered already.
pub(crate) async fn look_up(
    ctx: &WriterContext,
    needs: &[Need],
    known: &HashMap<IndexKey, u64>,
) -> Result<Looked> {
    let width = ctx.config.flush_concurrency.max(1);
    // One table's versions are resolved one after another, in the flush's order: whether a
    // version may reuse an older schema file depends on the files of the versions between
    // (`schema.rs`), so version 20 must see version 10's file written first. Different tables
    // go side by side. The closures take a group index, not a borrow (rustc cannot prove a
    // future made by a closure over a borrowed argument `Send` for every lifetime).
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut by_table: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, n) in needs.iter().enumerate() {
        let g = *by_table
            .entry((n.table.schema.as_str(), n.table.table.as_str()))
            .or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
        groups[g].push(i);
    }
    let groups = &groups;
    let resolving = (0..groups.len()).map(|g| async move {
        let mut out = Vec::with_capacity(groups[g].len());
        for &i in &groups[g] {
            let v = ctx
                .schemas
                .resolve(&ctx.schema_io(), &needs[i].table)
                .await?;
            out.push((i, v));
        }
        Ok::<_, crate::error::SinkError>(out)
    });
    let resolved: Vec<Vec<(usize, Ts)>> = futures::stream::iter(resolving)
        .buffer_unordered(width)
        .try_collect()
        .await?;
    let mut versions = vec![Ts::ZERO; needs.len()];
    for (i, v) in resolved.into_iter().flatten() {
        versions[i] = v;
    }
    let missing: HashSet<IndexKey> = needs
        .iter()
        .zip(&versions)
        .map(|(n, v)| n.index_key(*v))
        .filter(|k| !known.contains_key(k))
        .collect();
    let discovering = missing.into_iter().map(|k| async move {
        let n = discover_next_index(ctx, &k.0, &k.1).await?;
        Ok::<_, crate::error::SinkError>((k, n))
    });
    let found: Vec<(IndexKey, u64)> = futures::stream::iter(discovering)
        .buffer_unordered(width)
        .try_collect()
        .await?;
    Ok(Looked {
        versions,
        next_index: found.into_iter().collect(),
    })
}

/// The next file index of `(dir, file_id)` on a cold start: one past the index file's entry.
///
/// Data files of `file_id` numbered above that entry were published by a run that crashed
/// before writing their index entry. No consumer has read them (consumers read up to the
/// entry only) and none of their events was acknowledged (flush callbacks run after the index
/// put), so the upstream sends those events again. They are deleted here; a stale file must
/// never be covered by a later index entry, which would replay its rows twice (harmful for
/// tables without a primary key when rows carry no commit ts). A file a partial listing
/// missed is found by the create-only put of the file this run numbers the same, and
/// deleted there by the same rule before the put is tried again (`create_only.rs`).
///
/// Without a readable index entry - the index file cannot be parsed, or is missing while data
/// files exist (lost, or deleted by hand) - which files a consumer may have read and which
/// events were acknowledged is unknown: the writer numbers past every listed file and deletes
/// nothing. Deleting there could destroy acknowledged data; the cost of not deleting is that a
/// file a crash left before the directory's first index entry may be read later.
pub(crate) async fn discover_next_index(
    ctx: &WriterContext,
    dir: &DataDir,
    file_id: &Option<String>,
) -> Result<u64> {
    let index_file = IndexFile {
        dir: dir.clone(),
        dispatcher_id: file_id.clone(),
    };
    let index_path = index_file.build()?;
    let location = key(&index_path)?;
    let store = &ctx.store;
    let policy = &ctx.config.retry;
    let content = retry(policy, &ctx.metrics, "get", &index_path, 1, || {
        get_if_exists(store.as_ref(), &location)
    })
    .await?;
    let mut indexed = match &content {
        None => Some(0),
        Some(bytes) => match index_file.parse_content(&index_path, bytes, &ctx.layout) {
            Ok(i) => Some(i),
            Err(e) => {
                tracing::warn!(error = %e, "unreadable index file; numbering past every listed file");
                None
            }
        },
    };
    let dir_path = dir.build()?;
    let prefix = key(&dir_path)?;
    let listed = retry(policy, &ctx.metrics, "list", &dir_path, 1, || {
        store.list_with_delimiter(Some(&prefix))
    })
    .await?;
    let mut newest_listed = 0u64;
    let mut stale = Vec::new();
    for o in &listed.objects {
        let Some(name) = o.location.filename() else {
            continue;
        };
        if let Ok((id, i)) = parse_file_name(o.location.as_ref(), name, &ctx.layout) {
            if &id == file_id {
                newest_listed = newest_listed.max(i);
                if indexed.is_some_and(|x| i > x) {
                    stale.push(o.location.clone());
                }
            }
        }
    }
    if content.is_none() && newest_listed > 0 {
        tracing::warn!(
            index = %index_path,
            newest = newest_listed,
            "index file missing while data files exist; numbering past them, deleting nothing"
        );
        indexed = None;
    }
    let Some(indexed) = indexed else {
        return Ok(newest_listed + 1);
    };
    for path in stale {
        tracing::warn!(
            path = %path,
            index = %index_path,
            "deleting a data file a crashed run published without its index entry"
        );
        retry(policy, &ctx.metrics, "delete", path.as_ref(), 1, || async {
            match store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        })
        .await?;
        ctx.metrics.stale_files_deleted.inc();
    }
    Ok(indexed + 1)
}
