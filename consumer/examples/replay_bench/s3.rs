//! S3: the fixture's storage copied to the S3-compatible server under a prefix of its own,
//! replayed from there into a fresh SQLite file, beside the replay of the same storage from
//! local disk ([`crate::sqlite`]'s figure, same run).

use crate::fixture::{Fixture, QUERY};
use crate::{replay, report};
use cdc_common::storage::StorageUri;
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use std::sync::Arc;

/// `uri` with `prefix` appended to its path (the query kept).
fn with_prefix(uri: &str, prefix: &str) -> String {
    match uri.split_once('?') {
        Some((base, q)) => format!("{base}/{prefix}?{q}"),
        None => format!("{uri}/{prefix}"),
    }
}

/// Copies every object of `from` into `to`, at the same paths.
async fn copy_all(from: &Arc<dyn ObjectStore>, to: &Arc<dyn ObjectStore>) -> usize {
    let all: Vec<_> = from.list(None).try_collect().await.expect("list");
    for meta in &all {
        let bytes = from
            .get(&meta.location)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("read");
        to.put(&meta.location, bytes.into()).await.expect("put");
    }
    all.len()
}

/// Measures the S3 replay, prints the BENCH line beside `local_rate` and deletes its objects.
pub async fn bench(fx: &Fixture, s3: &str, local_rate: f64) {
    let prefix = format!(
        "replay-bench-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    );
    let uri = with_prefix(s3, &prefix);
    let store = StorageUri::parse(&uri)
        .expect("S3 URI")
        .0
        .build()
        .expect("S3 store");
    let t = std::time::Instant::now();
    let objects = copy_all(&fx.store, &store).await;
    println!(
        "s3      {objects} objects put under {prefix} in {:.2}s, one at a time",
        t.elapsed().as_secs_f64()
    );
    let consumer_uri = if uri.contains('?') {
        format!("{uri}&{QUERY}")
    } else {
        format!("{uri}?{QUERY}")
    };
    let db = fx.dir.path().join("from-s3.db");
    let secs = replay(&consumer_uri, &format!("sqlite://{}", db.display())).await;
    let rate = report("s3      storage-consumer (SQLite)", fx.total, secs);
    println!("s3      ratio S3/local disk = {:.2}", rate / local_rate);
    cdc_common::testing::bench_line(
        "consumer",
        "replay from S3-compatible into SQLite",
        rate,
        "rows/s",
        ("the same replay from local disk", local_rate),
        ">= 0.7",
    );
    let listed: Vec<_> = store.list(None).try_collect().await.expect("list");
    for meta in listed {
        store.delete(&meta.location).await.ok();
    }
}
