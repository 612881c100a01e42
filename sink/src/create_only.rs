//! Create-only puts: a file another writer already published under the same name is never
//! overwritten.
//!
//! - **Schema files** ([`put_create`]): their name carries the definition's checksum, so the
//!   same name with other bytes means another writer or damage: an error.
//! - **Data files** ([`put_data_file`], [`check_data_name`]): a name already taken is
//!   either a file a crashed run of this dispatcher published without its index entry (a
//!   cold-start listing that missed it: `tests/partial_listing.rs`), or another live writer
//!   using the same dispatcher id (a misconfiguration: each node's dispatchers are its own).
//!   The index file decides: a file numbered at or below the index entry was indexed by
//!   someone else, so it is never touched ([`SinkError::AlreadyExists`], the sink stops); a
//!   file above the entry was never read by a consumer nor acknowledged (consumers read up to
//!   the entry; flush callbacks run after the index put), so it is deleted and the create is
//!   tried once more. What this cannot catch is a rogue writer's file still in flight (data
//!   put, index put not yet): two processes must not share a dispatcher id.
//! - Multipart uploads have no create mode in object_store: the name is checked (HEAD, and
//!   the rule above) right before the upload, not atomically with it.
//!
//! - `PutMode::Create` where the store supports it: local files (link-based create), S3
//!   (`If-None-Match: *`, checked by s3s-fs), Azure (`If-None-Match: *`) and memory.
//! - `AlreadyExists` with the same bytes is success: a retry whose earlier attempt landed, or
//!   another node writing the identical schema file of a shared table.
//! - `AlreadyExists` with other bytes is [`SinkError::AlreadyExists`] naming the object.
//! - A store without conditional create (`NotImplemented`: GCS through object_store, S3 with
//!   conditional put disabled) gets a plain put: a schema file as before, a data file after the
//!   same name check as a multipart upload (HEAD and the index rule, not atomic with the put);
//!   docs/operations.md says so.
//! - Index files are rewritten in place by their one dispatcher by design and stay plain.

use crate::error::{Result, SinkError};
use crate::metrics::SinkMetrics;
use crate::retry::{retry, RetryPolicy};
use cdc_common::layout::{IndexFile, LayoutConfig};
use cdc_common::storage::{get_if_exists, key};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use std::sync::Arc;

/// How one create attempt ended.
enum Created {
    Yes,
    Exists,
    Unsupported,
}

/// One create attempt of `payload` at `location` (shown as `path`), retried on transient errors.
async fn try_create(
    store: &Arc<dyn ObjectStore>,
    policy: &RetryPolicy,
    metrics: &Arc<SinkMetrics>,
    path: &str,
    location: &Path,
    payload: &PutPayload,
) -> Result<Created> {
    retry(policy, metrics, "put", path, 1, || {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let payload = payload.clone();
        async move {
            match store.put_opts(location, payload, opts).await {
                Ok(_) => Ok(Created::Yes),
                Err(object_store::Error::AlreadyExists { .. }) => Ok(Created::Exists),
                Err(object_store::Error::NotImplemented { .. }) => Ok(Created::Unsupported),
                Err(e) => Err(e),
            }
        }
    })
    .await
}

/// A plain put (stores without conditional create).
async fn put_plain(
    store: &Arc<dyn ObjectStore>,
    policy: &RetryPolicy,
    metrics: &Arc<SinkMetrics>,
    path: &str,
    location: &Path,
    payload: &PutPayload,
) -> Result<()> {
    retry(policy, metrics, "put", path, 1, || {
        store.put(location, payload.clone())
    })
    .await?;
    Ok(())
}

/// Whether the object at `location` holds exactly `payload` (a retry whose earlier attempt
/// landed, or another node's identical schema file).
async fn holds(
    store: &Arc<dyn ObjectStore>,
    policy: &RetryPolicy,
    metrics: &Arc<SinkMetrics>,
    path: &str,
    location: &Path,
    payload: &PutPayload,
) -> Result<bool> {
    let found = retry(policy, metrics, "get", path, 1, || {
        get_if_exists(store.as_ref(), location)
    })
    .await?;
    let ours: Vec<u8> = payload.iter().flat_map(|b| b.iter().copied()).collect();
    Ok(found.is_some_and(|b| b.as_ref() == ours.as_slice()))
}

/// Puts `payload` at `location` (shown as `path`) unless an object with other bytes is there.
pub(crate) async fn put_create(
    store: &Arc<dyn ObjectStore>,
    policy: &RetryPolicy,
    metrics: &Arc<SinkMetrics>,
    path: &str,
    location: &Path,
    payload: PutPayload,
) -> Result<()> {
    match try_create(store, policy, metrics, path, location, &payload).await? {
        Created::Yes => Ok(()),
        Created::Unsupported => put_plain(store, policy, metrics, path, location, &payload).await,
        Created::Exists => {
            if holds(store, policy, metrics, path, location, &payload).await? {
                Ok(())
            } else {
                Err(SinkError::AlreadyExists {
                    path: path.to_string(),
                })
            }
        }
    }
}

/// Where a data file goes, with what the name rule of the module doc needs.
pub(crate) struct DataTarget<'a> {
    pub store: &'a Arc<dyn ObjectStore>,
    pub policy: &'a RetryPolicy,
    pub metrics: &'a Arc<SinkMetrics>,
    pub layout: &'a LayoutConfig,
    /// The data file's path and its number.
    pub path: &'a str,
    pub number: u64,
    /// The index file that will name it.
    pub index: &'a IndexFile,
    pub index_path: &'a str,
}

/// Puts a data file create-only (see the module doc for a name already taken).
pub(crate) async fn put_data_file(t: &DataTarget<'_>, payload: PutPayload) -> Result<()> {
    let location = key(t.path)?;
    let (store, policy, metrics) = (t.store, t.policy, t.metrics);
    let mut cleared = false;
    loop {
        match try_create(store, policy, metrics, t.path, &location, &payload).await? {
            Created::Yes => return Ok(()),
            Created::Unsupported => {
                // No atomic create: the name is checked first, as for a multipart upload.
                check_data_name(t).await?;
                return put_plain(store, policy, metrics, t.path, &location, &payload).await;
            }
            Created::Exists => {
                if holds(store, policy, metrics, t.path, &location, &payload).await? {
                    return Ok(());
                }
                if cleared {
                    // Taken again right after the delete: someone else is writing it.
                    return Err(SinkError::AlreadyExists {
                        path: t.path.to_string(),
                    });
                }
                clear_unindexed(t, &location).await?;
                cleared = true;
            }
        }
    }
}

/// Before a put that cannot be create-only (a multipart upload, a store without conditional
/// create): a file already at the name is handled by the rule of the module doc (checked here,
/// not atomically with the put).
pub(crate) async fn check_data_name(t: &DataTarget<'_>) -> Result<()> {
    let location = key(t.path)?;
    let exists = retry(t.policy, t.metrics, "head", t.path, 1, || async {
        match t.store.head(&location).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    })
    .await?;
    if exists {
        clear_unindexed(t, &location).await?;
    }
    Ok(())
}

/// A file found at the data file's name that this sink did not write: deleted when it is
/// above its index entry (never read, never acknowledged), refused otherwise.
async fn clear_unindexed(t: &DataTarget<'_>, location: &Path) -> Result<()> {
    let index_location = key(t.index_path)?;
    let content = retry(t.policy, t.metrics, "get", t.index_path, 1, || {
        get_if_exists(t.store.as_ref(), &index_location)
    })
    .await?;
    // No index file, or one that does not parse: which files were read or acknowledged is
    // unknown (the writer's cold start deletes nothing then either, see `writer.rs`), so the
    // file is refused, never deleted.
    let entry = match content {
        None => None,
        Some(b) => t.index.parse_content(t.index_path, &b, t.layout).ok(),
    };
    if entry.is_none_or(|e| t.number <= e) {
        // Indexed by another writer (or an index we cannot read): never touched.
        return Err(SinkError::AlreadyExists {
            path: t.path.to_string(),
        });
    }
    tracing::warn!(
        path = t.path,
        index = t.index_path,
        "deleting a data file a crashed run published without its index entry (found at the name of the next file)"
    );
    retry(t.policy, t.metrics, "delete", t.path, 1, || async {
        match t.store.delete(location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    })
    .await?;
    t.metrics.stale_files_deleted.inc();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    async fn put(store: &Arc<dyn ObjectStore>, bytes: &'static [u8]) -> Result<()> {
        let metrics = Arc::new(SinkMetrics::register(&prometheus::Registry::new(), "t").unwrap());
        let location = Path::from("s/t/1/CDC_d_1.csv");
        put_create(
            store,
            &RetryPolicy::default(),
            &metrics,
            location.as_ref(),
            &location,
            PutPayload::from_static(bytes),
        )
        .await
    }

    async fn stored(store: &Arc<dyn ObjectStore>) -> bytes::Bytes {
        let location = Path::from("s/t/1/CDC_d_1.csv");
        store.get(&location).await.unwrap().bytes().await.unwrap()
    }

    async fn never_overwrites_another_writers_file(store: Arc<dyn ObjectStore>) {
        put(&store, b"first writer\n").await.unwrap();
        let r = put(&store, b"second writer\n").await;
        assert!(
            matches!(&r, Err(SinkError::AlreadyExists { path }) if path == "s/t/1/CDC_d_1.csv"),
            "{r:?}"
        );
        assert_eq!(stored(&store).await.as_ref(), b"first writer\n");
        // the same bytes again (a retry that landed, an identical schema file): written
        put(&store, b"first writer\n").await.unwrap();
        assert_eq!(stored(&store).await.as_ref(), b"first writer\n");
    }

    #[tokio::test]
    async fn never_overwrites_on_memory() {
        never_overwrites_another_writers_file(Arc::new(InMemory::new())).await;
    }

    #[tokio::test]
    async fn never_overwrites_on_local_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        never_overwrites_another_writers_file(Arc::new(store)).await;
    }
}
