//! Data files are put create-only: a name another writer took is never silently overwritten.
//! A file at the next name that its index file already names (another writer using the same
//! dispatcher id indexed it) stops the sink and stays as it was; a file above the index entry
//! (a crashed run's unindexed file, never read nor acknowledged) is deleted and replaced.

use crate::support;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use support::*;

const QUERY: &str = "protocol=csv&flush-interval=10ms&date-separator=none&file-index-width=6";

async fn read(store: &Arc<dyn ObjectStore>, path: &str) -> String {
    let b = store
        .get(&Path::from(path))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    String::from_utf8_lossy(&b).into_owned()
}

/// One sink writes file 1 of dispatcher `d`; then another writer puts file 2 (and, when
/// `indexed`, points the index file at it) before the sink publishes its next file. With
/// `unconditional`, the store refuses create-only puts (as GCS, or S3 with conditional put
/// disabled).
async fn next_file_over_on(
    indexed: bool,
    unconditional: bool,
) -> (Harness, Arc<dyn ObjectStore>, String) {
    let t = table("t", ts(0));
    let h = harness(QUERY).await;
    if unconditional {
        use cdc_common::testing::{Fault, Op, Rule};
        h.store
            .add_rule(Rule::new(Op::Put, "", Fault::Unconditional));
    }
    h.sink
        .add_dispatcher("d", cdc_sink::FileNaming::Dispatcher)
        .unwrap();
    let (flushed, cb) = counter();
    h.sink
        .add_dml_event("d", event(&t, ts(1), "d", 0, 1), None, Some(cb()))
        .unwrap();
    assert!(wait_for(5, || flushed.load(Ordering::SeqCst) == 1).await);
    let store = h.store.inner().clone();
    let dir = format!("s/t/{}", ts(0).0);
    let second = format!("{dir}/CDC_d_000002.csv");
    store
        .put(
            &Path::from(second.as_str()),
            "another writer's rows\n".into(),
        )
        .await
        .unwrap();
    if indexed {
        store
            .put(
                &Path::from(format!("{dir}/meta/CDC_d.index")),
                "CDC_d_000002.csv\n".into(),
            )
            .await
            .unwrap();
    }
    h.sink
        .add_dml_event("d", event(&t, ts(2), "d", 1, 1), None, Some(cb()))
        .unwrap();
    (h, store, second)
}

/// An indexed file of another writer at the next name: the sink stops, the file stays.
async fn indexed_file_stops_the_sink(unconditional: bool) {
    let (h, store, second) = next_file_over_on(true, unconditional).await;
    assert!(wait_for(5, || h.sink.error().is_some()).await);
    let e = h.sink.error().unwrap().to_string();
    assert!(
        e.contains(&format!("`{second}` already exists with other content")),
        "{e}"
    );
    assert_eq!(read(&store, &second).await, "another writer's rows\n");
    let _ = h.sink.close().await;
}

/// An unindexed file at the next name: deleted (counted) and replaced by the sink's own.
async fn unindexed_file_is_replaced(unconditional: bool) {
    let (h, store, second) = next_file_over_on(false, unconditional).await;
    assert!(
        wait_for(5, || metric(
            &h.registry,
            "cdc_sink_rows_written_total",
            &[]
        ) == 2.0)
        .await
    );
    assert!(h.sink.error().is_none());
    let replaced = read(&store, &second).await;
    assert!(replaced.contains(r#""d",1,"#), "{replaced}");
    assert_eq!(
        metric(&h.registry, "cdc_sink_stale_files_deleted_total", &[]),
        1.0
    );
    h.sink.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_indexed_file_of_another_writer_stops_the_sink_and_stays() {
    indexed_file_stops_the_sink(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_conditional_create_an_indexed_file_is_still_checked_and_kept() {
    indexed_file_stops_the_sink(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unindexed_file_at_the_next_name_is_replaced() {
    unindexed_file_is_replaced(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_conditional_create_an_unindexed_file_is_replaced() {
    unindexed_file_is_replaced(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_at_the_name_with_no_index_file_is_refused_not_deleted() {
    use cdc_common::testing::{Fault, FaultStore, Op, Rule};
    // A file a listing does not show, in a directory with no index file: which files were read
    // or acknowledged is unknown, so the sink must stop rather than delete it.
    let inner: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let dir = format!("s/t/{}", ts(0).0);
    let first = format!("{dir}/CDC_d_000001.csv");
    inner
        .put(&Path::from(first.as_str()), "unknown rows\n".into())
        .await
        .unwrap();
    let store = FaultStore::new(Arc::clone(&inner));
    store.add_rule(Rule::new(
        Op::List,
        "",
        Fault::PartialList {
            hide: 1.0,
            younger_than: None,
        },
    ));
    let h = harness_on(Some(store), QUERY, |c| c).await;
    h.sink
        .add_dispatcher("d", cdc_sink::FileNaming::Dispatcher)
        .unwrap();
    let t = table("t", ts(0));
    h.sink
        .add_dml_event("d", event(&t, ts(1), "d", 0, 1), None, None)
        .unwrap();
    assert!(wait_for(5, || h.sink.error().is_some()).await);
    let e = h.sink.error().unwrap().to_string();
    assert!(e.contains("already exists"), "{e}");
    assert_eq!(read(&inner, &first).await, "unknown rows\n");
    let _ = h.sink.close().await;
}
