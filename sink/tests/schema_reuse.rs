//! Schema version reuse across writer shards (`sink/src/schema.rs`): the reuse rule reads the
//! table's schema files, so two shards resolving one table at two versions must not both read
//! before either writes.

use crate::support::*;
use cdc_common::testing::{Fault, FaultStore, Op, Rule};
use cdc_sink::router::slot_of;
use cdc_sink::FileNaming;
use object_store::memory::InMemory;
use std::sync::Arc;
use std::time::Duration;

/// Two dispatchers of one table carry the same definition at versions 10 and 20 (one restarted
/// with a checkpoint-derived version) and sit on different writer shards, whose flushes at
/// close run side by side. The schema file's put is slowed, so that a resolution that lists
/// the table's schema files while the other's put is in flight would see none: one must see the other's schema file and reuse its version, as one
/// shard resolving both in turn does, so the table gets one schema file and one version
/// directory rather than two directories of one definition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_resolving_one_table_at_two_versions_write_one_schema_file() {
    let store = FaultStore::new(Arc::new(InMemory::new()));
    store.add_rule(Rule::new(
        Op::Put,
        "s/t/meta/schema_",
        Fault::Delay(Duration::from_millis(300)),
    ));
    let query = "protocol=csv&flush-interval=60s&date-separator=none&file-index-width=6";
    let h = harness_on(Some(store.clone()), query, |c| c).await;
    // The harness runs two writer shards: one dispatcher on each.
    let a = "a";
    let b = (0..)
        .map(|i| format!("b{i}"))
        .find(|id| slot_of(id, 2) != slot_of(a, 2))
        .unwrap();
    let (t10, t20) = (table("t", ts(10)), table("t", ts(20)));
    for (id, t, at, seq) in [(a, &t10, ts(30), 0), (b.as_str(), &t20, ts(31), 100)] {
        h.sink.add_dispatcher(id, FileNaming::Dispatcher).unwrap();
        h.sink
            .add_dml_event(id, event(t, at, id, seq, 1), None, None)
            .unwrap();
    }
    h.sink.close().await.unwrap();

    let published = paths(store.inner()).await;
    let schema_files: Vec<&String> = published
        .iter()
        .filter(|p| p.starts_with("s/t/meta/schema_"))
        .collect();
    assert_eq!(
        schema_files.len(),
        1,
        "one definition, one schema file: {schema_files:?}"
    );
    let version_dirs: std::collections::BTreeSet<&str> = published
        .iter()
        .filter(|p| p.ends_with(".csv"))
        .filter_map(|p| p.split('/').nth(2))
        .collect();
    assert_eq!(
        version_dirs.len(),
        1,
        "both dispatchers' rows in one version directory: {published:?}"
    );
}
