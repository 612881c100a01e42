//! Create-only puts: a file another writer already published under the same name is never
//! overwritten. Used for schema files (their name carries the definition's checksum, so the
//! same name with other bytes means another writer or damage).
//!
//! Data files do not use it yet: a restarted sink deliberately replaces a data file a crashed
//! run published without its index entry (`tests/partial_listing.rs`: no reader can have used
//! it), which a create-only put would refuse. Making data puts create-only needs that path to
//! delete the orphan first (issue 15 item 2, left open).
//!
//! - `PutMode::Create` where the store supports it: local files (link-based create), S3
//!   (`If-None-Match: *`, checked by s3s-fs), Azure (`If-None-Match: *`) and memory.
//! - `AlreadyExists` with the same bytes is success: a retry whose earlier attempt landed, or
//!   another node writing the identical schema file of a shared table.
//! - `AlreadyExists` with other bytes is [`SinkError::AlreadyExists`] naming the object.
//! - A store without conditional create (`NotImplemented`: GCS through object_store, S3 with
//!   conditional put disabled) gets a plain put, as before; docs/operations.md says so.
//! - Index files are rewritten in place by their one dispatcher by design and stay plain.

use crate::error::{Result, SinkError};
use crate::metrics::SinkMetrics;
use crate::retry::{retry, RetryPolicy};
use cdc_common::storage::get_if_exists;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use std::sync::Arc;

/// How one create attempt ended.
enum Created {
    Yes,
    Exists,
    Unsupported,
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
    let created = retry(policy, metrics, "put", path, 1, || {
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
    .await?;
    match created {
        Created::Yes => Ok(()),
        Created::Unsupported => {
            retry(policy, metrics, "put", path, 1, || {
                store.put(location, payload.clone())
            })
            .await?;
            Ok(())
        }
        Created::Exists => {
            let found = retry(policy, metrics, "get", path, 1, || {
                get_if_exists(store.as_ref(), location)
            })
            .await?;
            let ours: Vec<u8> = payload.iter().flat_map(|b| b.iter().copied()).collect();
            match found {
                Some(b) if b.as_ref() == ours.as_slice() => Ok(()),
                _ => Err(SinkError::AlreadyExists {
                    path: path.to_string(),
                }),
            }
        }
    }
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
