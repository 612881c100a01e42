//! The conditional write of a checkpoint file - `metadata`, or a node's `metadata.node-<i>`
//! (`node_checkpoint.rs`): it never decreases, even when several sink processes (CDC nodes)
//! write it.
//!
//! One write of `ts` is a compare-and-swap loop:
//!
//! ```text
//! read metadata (value + etag/version) --stored >= ts--> done, nothing written
//!       |                                                   ^
//!       v                                                   |
//! put_opts(Update(version) | Create if absent) --conflict (Precondition/AlreadyExists)-+
//!       \--ok--> written
//! ```
//!
//! - A conflict means another writer changed the file between the read and the put: read
//!   again and decide again. A value at or below the stored one is never written, so the file
//!   only moves up; the loop ends because each conflict is another writer's successful write.
//! - Stores: memory, S3 (`If-Match` / `If-None-Match`; s3s-fs checks both) and Azure
//!   (`If-Match`) do the update natively. The local file system store cannot
//!   (`NotImplemented`): there the read-compare-write runs under an exclusive `flock` of the
//!   store's root directory (a stable inode; `metadata` itself is replaced by rename, so it
//!   cannot carry the lock). Every writer on the machine takes the same lock. A store that
//!   supports neither (GCS through object_store, S3 with conditional put disabled, a local
//!   store whose root is unknown) falls back to a plain overwrite after the comparison,
//!   monotonic within one process only; docs/operations.md says so. A file several processes
//!   write by design ([`Writers::Several`]: `metadata` under `node_checkpoint.rs`) is refused
//!   there with an error naming it, since the overwrite could move it back.
//! - A retried put whose earlier attempt landed reads back its own value and stops.
//! - `cdc_sink_checkpoint_conflicts_total` counts the conflicts.

use crate::error::Result;
use crate::metrics::SinkMetrics;
use crate::retry::{retry, RetryPolicy};
use cdc_common::layout::Checkpoint;
use cdc_common::storage::key;
use cdc_common::Ts;
use object_store::{
    GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion,
};
use std::path::Path as FsPath;
use std::sync::Arc;

/// Conflicts tolerated in one write before giving up with an error: each one is another
/// writer's successful advance, so this many in a row means a writer storm, not bad luck.
const MAX_CONFLICTS: u32 = 1_000;

/// The stored checkpoint and the version to update it from.
#[derive(Debug)]
pub(crate) struct Stored {
    /// The value (`None`: no file, or one that does not parse).
    pub ts: Option<Ts>,
    /// The version to update (`None`: no file; create it).
    version: Option<UpdateVersion>,
}

/// What a conditional write found or did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Advanced {
    /// `metadata` now holds the requested ts.
    Written(Ts),
    /// `metadata` already held this ts, at or above the requested one: nothing written.
    AlreadyAt(Ts),
}

/// Reads the checkpoint file `path` with its version (an unreadable file counts as no value,
/// with a warning: the next write replaces it).
pub(crate) async fn read(
    store: &Arc<dyn ObjectStore>,
    policy: &RetryPolicy,
    metrics: &Arc<SinkMetrics>,
    path: &str,
) -> Result<Stored> {
    let location = key(path)?;
    let got = retry(policy, metrics, "get", path, 1, || async {
        match store.get_opts(&location, GetOptions::default()).await {
            Ok(r) => {
                let version = UpdateVersion {
                    e_tag: r.meta.e_tag.clone(),
                    version: r.meta.version.clone(),
                };
                Ok(Some((r.bytes().await?, version)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    })
    .await?;
    let Some((bytes, version)) = got else {
        return Ok(Stored {
            ts: None,
            version: None,
        });
    };
    let ts = match Checkpoint::parse(path, &bytes) {
        Ok(c) => Some(c.checkpoint_ts),
        Err(e) => {
            tracing::warn!(error = %e, path, "existing checkpoint file unreadable; replacing it");
            None
        }
    };
    Ok(Stored {
        ts,
        version: Some(version),
    })
}

/// How one conditional put ended (store errors that mean "decide again" are not failures).
enum Put {
    Done,
    Conflict,
    Unsupported,
}

/// Who writes a checkpoint file.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Writers {
    /// One process by design (`metadata` of a single sink, a node's own file): on a store
    /// without any conditional update, a plain overwrite after the comparison is monotonic.
    One,
    /// Several processes by design (`metadata` from every node of `node_checkpoint.rs`): a
    /// plain overwrite could move the file back, so such a store is refused.
    Several,
}

/// Writes `ts` to the checkpoint file `path` unless the stored value is at or above it (see
/// the module doc). `local_root` is the root directory of a local file system store.
pub(crate) async fn advance(
    store: &Arc<dyn ObjectStore>,
    policy: &RetryPolicy,
    metrics: &Arc<SinkMetrics>,
    path: &str,
    ts: Ts,
    local_root: Option<&FsPath>,
    writers: Writers,
) -> Result<Advanced> {
    let mut conflicts = 0;
    loop {
        let stored = read(store, policy, metrics, path).await?;
        if let Some(s) = stored.ts.filter(|s| *s >= ts) {
            return Ok(Advanced::AlreadyAt(s));
        }
        match put(store, policy, metrics, path, ts, stored.version).await? {
            Put::Done => return Ok(Advanced::Written(ts)),
            Put::Conflict => {
                metrics.checkpoint_conflicts_total.inc();
                conflicts += 1;
                if conflicts >= MAX_CONFLICTS {
                    return Err(crate::error::SinkError::param(
                        path,
                        format!("{conflicts} concurrent updates of the checkpoint file in a row; is another process writing it in a loop?"),
                    ));
                }
            }
            Put::Unsupported if local_root.is_none() && writers == Writers::Several => {
                return Err(crate::error::SinkError::param(
                    path,
                    "is written by several sink nodes, and this store supports neither a \
                     conditional update nor the local file lock: a node's plain overwrite \
                     could move it back. Use a store with conditional writes (S3 with \
                     conditional put, Azure, a local directory)",
                ));
            }
            Put::Unsupported => {
                return advance_without_update(store, policy, metrics, path, ts, local_root).await
            }
        }
    }
}

/// One conditional put of `ts` over `version` (create when there is none).
async fn put(
    store: &Arc<dyn ObjectStore>,
    policy: &RetryPolicy,
    metrics: &Arc<SinkMetrics>,
    path: &str,
    ts: Ts,
    version: Option<UpdateVersion>,
) -> Result<Put> {
    let body = bytes::Bytes::from(Checkpoint { checkpoint_ts: ts }.build());
    let location = key(path)?;
    let mode = version.map_or(PutMode::Create, PutMode::Update);
    retry(policy, metrics, "put", path, 1, || {
        let opts = PutOptions {
            mode: mode.clone(),
            ..PutOptions::default()
        };
        let body = PutPayload::from(body.clone());
        let location = &location;
        async move {
            match store.put_opts(location, body, opts).await {
                Ok(_) => Ok(Put::Done),
                Err(
                    object_store::Error::Precondition { .. }
                    | object_store::Error::AlreadyExists { .. },
                ) => Ok(Put::Conflict),
                Err(object_store::Error::NotImplemented { .. }) => Ok(Put::Unsupported),
                Err(e) => Err(e),
            }
        }
    })
    .await
}

/// The store cannot update conditionally: compare and overwrite, under the local root's
/// `flock` when the store is a local file system.
async fn advance_without_update(
    store: &Arc<dyn ObjectStore>,
    policy: &RetryPolicy,
    metrics: &Arc<SinkMetrics>,
    path: &str,
    ts: Ts,
    local_root: Option<&FsPath>,
) -> Result<Advanced> {
    let _lock = match local_root {
        Some(root) => Some(lock_root(root).await?),
        None => None,
    };
    let stored = read(store, policy, metrics, path).await?;
    if let Some(s) = stored.ts.filter(|s| *s >= ts) {
        return Ok(Advanced::AlreadyAt(s));
    }
    let body = bytes::Bytes::from(Checkpoint { checkpoint_ts: ts }.build());
    let location = key(path)?;
    retry(policy, metrics, "put", path, 1, || {
        store.put(&location, PutPayload::from(body.clone()))
    })
    .await?;
    Ok(Advanced::Written(ts))
}

/// Takes the exclusive `flock` of the directory `root` (waiting on a blocking thread); the
/// returned file releases it when dropped.
async fn lock_root(root: &FsPath) -> Result<std::fs::File> {
    let root = root.to_path_buf();
    let io_err = |root: &FsPath, e: std::io::Error| {
        crate::error::SinkError::param(
            "metadata",
            format!(
                "cannot lock the storage root `{}` for the checkpoint update: {e}",
                root.display()
            ),
        )
    };
    tokio::task::spawn_blocking(move || {
        let dir = std::fs::File::open(&root).map_err(|e| io_err(&root, e))?;
        rustix::fs::flock(&dir, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| io_err(&root, e.into()))?;
        Ok(dir)
    })
    .await
    .map_err(|e| {
        crate::error::SinkError::param("metadata", format!("checkpoint lock task failed: {e}"))
    })?
}
