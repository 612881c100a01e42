//! Several sink processes as the nodes of one CDC service (`NodeCheckpoint`): each node's
//! durable progress in `metadata.node-<i>`, and `metadata` the minimum over all of them,
//! written only once every node reported, never passing a node's pending event, never going
//! back.

use crate::support;

use cdc_common::layout::Checkpoint;
use cdc_common::testing::FaultStore;
use cdc_common::Ts;
use cdc_sink::{FileNaming, NodeCheckpoint, NodeProgress};
use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt};
use std::sync::Arc;
use support::*;

async fn read_node(store: &Arc<dyn ObjectStore>, node: u32) -> Option<Ts> {
    let path = Checkpoint::node_path(node);
    let b = store
        .get(&object_store::path::Path::from(path.as_str()))
        .await
        .ok()?
        .bytes()
        .await
        .unwrap();
    Some(Checkpoint::parse(&path, &b).unwrap().checkpoint_ts)
}

fn progress(node: Ts, global: Option<Ts>) -> NodeProgress {
    NodeProgress {
        node: Some(node),
        global,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_is_the_minimum_over_every_node_and_never_goes_back() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    // A long flush interval: an event handed in stays pending until close.
    let query = "protocol=csv&flush-interval=600s";
    let a = harness_on(Some(FaultStore::new(store.clone())), query, |c| c).await;
    let b = harness_on(Some(FaultStore::new(store.clone())), query, |c| c).await;
    let mut na = NodeCheckpoint::new(0, 2).unwrap();
    let mut nb = NodeCheckpoint::new(1, 2).unwrap();

    // Node 1 has not reported: no `metadata`, whatever node 0 has made durable.
    assert_eq!(
        na.advance(&a.sink, ts(100)).await.unwrap(),
        NodeProgress {
            node: Some(ts(100)),
            global: None
        }
    );
    assert_eq!(read_checkpoint(&store).await, None);
    assert_eq!(read_node(&store, 0).await, Some(ts(100)));

    // Both reported: the smaller one.
    assert_eq!(
        nb.advance(&b.sink, ts(50)).await.unwrap(),
        progress(ts(50), Some(ts(50)))
    );
    assert_eq!(read_checkpoint(&store).await, Some(ts(50)));
    // The node ahead cannot pull `metadata` past the node behind.
    assert_eq!(
        na.advance(&a.sink, ts(200)).await.unwrap(),
        progress(ts(200), Some(ts(50)))
    );
    assert_eq!(read_checkpoint(&store).await, Some(ts(50)));

    // Node 1 holds an event at 250 that is not durable: its file stops below it.
    let t = table("t", ts(0));
    b.sink.add_dispatcher("d1", FileNaming::Dispatcher).unwrap();
    b.sink
        .add_dml_event("d1", event(&t, ts(250), "d1", 0, 1), None, None)
        .unwrap();
    assert_eq!(
        nb.advance(&b.sink, ts(300)).await.unwrap(),
        progress(Ts(ts(250).0 - 1), Some(ts(200)))
    );
    assert_eq!(read_checkpoint(&store).await, Some(ts(200)));

    // Neither file goes back on a smaller position.
    assert_eq!(
        na.advance(&a.sink, ts(150)).await.unwrap(),
        progress(ts(200), Some(ts(200)))
    );
    assert_eq!(read_node(&store, 0).await, Some(ts(200)));

    // Once durable (the drain flushes it), node 1 moves past it and so does `metadata`.
    b.sink.remove_dispatcher("d1").await.unwrap();
    assert_eq!(
        nb.advance(&b.sink, ts(300)).await.unwrap(),
        progress(ts(300), Some(ts(200)))
    );
    assert_eq!(
        na.advance(&a.sink, ts(400)).await.unwrap(),
        progress(ts(400), Some(ts(300)))
    );
    assert_eq!(read_checkpoint(&store).await, Some(ts(300)));

    // A restarted node resumes from its own file.
    let a2 = harness_on(Some(FaultStore::new(store.clone())), query, |c| c).await;
    let mut na2 = NodeCheckpoint::new(0, 2).unwrap();
    assert_eq!(na2.stored(&a2.sink).await.unwrap(), Some(ts(400)));
    for h in [a, b, a2] {
        h.sink.close().await.unwrap();
    }
}

#[test]
fn a_node_number_outside_the_cluster_is_refused() {
    assert!(NodeCheckpoint::new(2, 2).is_err());
    assert!(NodeCheckpoint::new(0, 0).is_err());
    assert!(NodeCheckpoint::new(1, 3).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sink_serves_one_checkpoint_writer() {
    let query = "protocol=csv&flush-interval=600s";
    // A node's sink refuses Sink::checkpoint ...
    let a = harness(query).await;
    let mut na = NodeCheckpoint::new(0, 2).unwrap();
    na.advance(&a.sink, ts(10)).await.unwrap();
    let e = a.sink.checkpoint(ts(20)).await.unwrap_err().to_string();
    assert!(e.contains("NodeCheckpoint"), "{e}");
    assert_eq!(read_checkpoint(&a.store.inner().clone()).await, None);
    // ... and a sink that wrote metadata itself refuses to become a node.
    let b = harness(query).await;
    b.sink.checkpoint(ts(10)).await.unwrap();
    let mut nb = NodeCheckpoint::new(0, 2).unwrap();
    let e = nb.advance(&b.sink, ts(20)).await.unwrap_err().to_string();
    assert!(e.contains("Sink::checkpoint"), "{e}");
    assert_eq!(read_node(&b.store.inner().clone(), 0).await, None);
    a.sink.close().await.unwrap();
    b.sink.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_of_several_nodes_is_refused_on_a_store_without_conditional_writes() {
    use cdc_common::testing::{Fault, Op, Rule};
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let query = "protocol=csv&flush-interval=600s";
    let faults = FaultStore::new(store.clone());
    faults.add_rule(Rule::new(Op::Put, "", Fault::Unconditional));
    let a = harness_on(Some(faults.clone()), query, |c| c).await;
    let b = harness_on(Some(faults), query, |c| c).await;
    let mut na = NodeCheckpoint::new(0, 2).unwrap();
    let mut nb = NodeCheckpoint::new(1, 2).unwrap();
    // A node's own file has one writer: the plain overwrite after the comparison is kept.
    na.advance(&a.sink, ts(100)).await.unwrap();
    assert_eq!(read_node(&store, 0).await, Some(ts(100)));
    // `metadata` has every node as a writer: refused, naming the file.
    let e = nb.advance(&b.sink, ts(50)).await.unwrap_err().to_string();
    assert!(
        e.contains("metadata") && e.contains("several sink nodes"),
        "{e}"
    );
    assert_eq!(read_node(&store, 1).await, Some(ts(50)));
    assert_eq!(read_checkpoint(&store).await, None);
    a.sink.close().await.unwrap();
    b.sink.close().await.unwrap();
}
