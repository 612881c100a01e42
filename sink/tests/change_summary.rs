//! The change summary `changes.metadata`: put before each `metadata` write, naming exactly the
//! tables (and schemas) that got an index entry or a schema file since the previous one; a
//! process's first step is incomplete; a node of several keeps none.

use crate::support;

use cdc_common::layout::{ChangeStep, ChangeSummary, CHANGE_SUMMARY_FILE};
use cdc_common::{DdlEvent, DdlKind, Ts};
use cdc_sink::{CheckpointOutcome, FileNaming, NodeCheckpoint};
use object_store::{ObjectStore, ObjectStoreExt};
use std::sync::Arc;
use support::*;

async fn read_summary(store: &Arc<dyn ObjectStore>) -> Option<ChangeSummary> {
    let path = object_store::path::Path::from(CHANGE_SUMMARY_FILE);
    match store.get(&path).await {
        Ok(r) => {
            Some(ChangeSummary::parse(CHANGE_SUMMARY_FILE, &r.bytes().await.unwrap()).unwrap())
        }
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => panic!("{e}"),
    }
}

fn names(step: &ChangeStep) -> Vec<String> {
    step.tables
        .iter()
        .map(|(s, t)| format!("{s}.{t}"))
        .chain(step.schemas.iter().map(|s| format!("{s}/")))
        .collect()
}

/// Index of the last completed put of `path` in `puts`.
fn last_put(puts: &[String], path: &str) -> usize {
    puts.iter()
        .rposition(|p| p == path)
        .unwrap_or_else(|| panic!("no put of {path}: {puts:?}"))
}

/// Writes one event to each dispatcher (named like its table) and flushes them (a remove
/// flushes before it returns).
async fn write_tables(h: &Harness, tables: &[&str], at: Ts) {
    for name in tables {
        let t = table(name, ts(0));
        h.sink
            .add_dml_event(name, event(&t, at, name, 0, 1), None, None)
            .unwrap();
        h.sink.remove_dispatcher(name).await.unwrap();
        h.sink.add_dispatcher(name, FileNaming::Table).unwrap();
    }
}

fn ddl(kind: DdlKind, at: Ts, schema: &str, tables: Vec<cdc_common::TableDef>) -> DdlEvent {
    DdlEvent {
        commit_ts: at,
        query: format!("{kind:?}"),
        kind,
        schema: schema.into(),
        tables,
        prev_tables: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_is_put_before_metadata_moves_and_names_exactly_the_touched_tables() {
    let h = harness("protocol=csv&flush-interval=60s").await;
    let store: Arc<dyn ObjectStore> = h.store.inner().clone();
    for name in ["a", "b", "c"] {
        h.sink.add_dispatcher(name, FileNaming::Table).unwrap();
    }
    // First step of the process: it cannot know a predecessor's writes.
    assert_eq!(
        h.sink.checkpoint(ts(1)).await.unwrap(),
        CheckpointOutcome::Written(ts(1))
    );
    let s = read_summary(&store).await.expect("summary written");
    assert_eq!(s.steps.len(), 1);
    assert_eq!(
        (s.steps[0].from, s.steps[0].to, s.steps[0].complete),
        (None, ts(1), false)
    );

    // Step (1, 20]: data (index entries and the data schema files) of a and b only.
    write_tables(&h, &["a", "b"], ts(10)).await;
    let before = h.store.completed_puts().len();
    assert_eq!(
        h.sink.checkpoint(ts(20)).await.unwrap(),
        CheckpointOutcome::Written(ts(20))
    );
    let puts = h.store.completed_puts()[before..].to_vec();
    assert!(
        last_put(&puts, CHANGE_SUMMARY_FILE) < last_put(&puts, "metadata"),
        "the summary must be stored before metadata moves: {puts:?}"
    );
    let s = read_summary(&store).await.unwrap();
    let step = s.steps.last().unwrap();
    assert_eq!(
        (step.from, step.to, step.complete),
        (Some(ts(1)), ts(20), true)
    );
    assert_eq!(names(step), ["s.a", "s.b"]);

    // Step (20, 40]: a DDL's schema file of c and a database-level schema file of s2.
    h.sink
        .write_block_event(
            &ddl(
                DdlKind::AddColumn,
                ts(30),
                "s",
                vec![(*table("c", ts(30))).clone()],
            ),
            &["c"],
        )
        .await
        .unwrap();
    h.sink
        .write_block_event(&ddl(DdlKind::CreateSchema, ts(31), "s2", vec![]), &[])
        .await
        .unwrap();
    assert_eq!(
        h.sink.checkpoint(ts(40)).await.unwrap(),
        CheckpointOutcome::Written(ts(40))
    );
    let s = read_summary(&store).await.unwrap();
    let step = s.steps.last().unwrap();
    assert_eq!(
        (step.from, step.to, step.complete),
        (Some(ts(20)), ts(40), true)
    );
    assert_eq!(names(step), ["s.c", "s2/"]);
    let c = s.changed_between(ts(1), ts(40)).expect("a complete chain");
    assert_eq!(c.tables.len(), 3);

    // Step (40, 45]: a new file of a, whose schema file exists: its index entry alone.
    write_tables(&h, &["a"], ts(42)).await;
    assert_eq!(
        h.sink.checkpoint(ts(45)).await.unwrap(),
        CheckpointOutcome::Written(ts(45))
    );
    let s = read_summary(&store).await.unwrap();
    let step = s.steps.last().unwrap();
    assert_eq!(
        (step.from, step.to, step.complete),
        (Some(ts(40)), ts(45), true)
    );
    assert_eq!(names(step), ["s.a"]);

    // Nothing touched: an empty, complete step.
    assert_eq!(
        h.sink.checkpoint(ts(50)).await.unwrap(),
        CheckpointOutcome::Written(ts(50))
    );
    let s = read_summary(&store).await.unwrap();
    let step = s.steps.last().unwrap();
    assert_eq!(
        (step.from, step.complete, names(step).len()),
        (Some(ts(45)), true, 0)
    );
    let incarnation = s.incarnation.clone();
    h.sink.close().await.unwrap();

    // A new process on the same storage: a new incarnation whose first step is incomplete.
    let h2 = harness_on(
        Some(cdc_common::testing::FaultStore::new(store.clone())),
        "protocol=csv",
        |c| c,
    )
    .await;
    assert_eq!(
        h2.sink.checkpoint(ts(60)).await.unwrap(),
        CheckpointOutcome::Written(ts(60))
    );
    let s = read_summary(&store).await.unwrap();
    assert_ne!(s.incarnation, incarnation);
    let step = s.steps.last().unwrap();
    assert_eq!(
        (step.from, step.to, step.complete),
        (Some(ts(50)), ts(60), false)
    );
    assert_eq!(s.changed_between(ts(50), ts(60)), None);
    h2.sink.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_several_deletes_the_summary_and_writes_none() {
    let h = harness("protocol=csv&flush-interval=60s").await;
    let store: Arc<dyn ObjectStore> = h.store.inner().clone();
    h.sink.checkpoint(ts(1)).await.unwrap();
    assert!(read_summary(&store).await.is_some());
    h.sink.close().await.unwrap();

    let node = harness_on(
        Some(cdc_common::testing::FaultStore::new(store.clone())),
        "protocol=csv",
        |c| c,
    )
    .await;
    node.sink.add_dispatcher("a", FileNaming::Table).unwrap();
    let mut n = NodeCheckpoint::new(0, 1).unwrap();
    n.advance(&node.sink, ts(5)).await.unwrap();
    assert!(
        read_summary(&store).await.is_none(),
        "a node must delete the summary"
    );
    write_tables(&node, &["a"], ts(10)).await;
    let progress = n.advance(&node.sink, ts(20)).await.unwrap();
    assert_eq!(progress.global, Some(ts(20)));
    assert!(
        read_summary(&store).await.is_none(),
        "a node writes no summary"
    );
    node.sink.close().await.unwrap();
}
