//! Retention cost: a cleanup run lists only what it may delete. Counted on a recording store
//! (`FaultStore::listed_entries` and its list calls): the files of the days it keeps are never
//! listed, and the listing requests grow with tables and expired days, not with the bucket.

use cdc_common::testing::{FaultStore, Op};
use cdc_common::Ts;
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use std::collections::BTreeSet;
use std::sync::Arc;

const FILES_PER_DAY: usize = 20;
const DAYS: [&str; 10] = [
    "2026-11-24",
    "2026-11-25",
    "2026-11-26",
    "2026-11-27",
    "2026-11-28",
    "2026-11-29",
    "2026-11-30",
    "2026-12-01",
    "2026-12-02",
    "2026-12-03",
];
/// With 5 days of retention at 2026-12-03 the first day kept is 2026-11-28.
const FIRST_KEPT: &str = "2026-11-28";

/// The date directories of one table: `<schema>/<table>/<version>[/<partition>]`.
fn table_dirs() -> Vec<String> {
    let mut dirs = Vec::new();
    for s in 0..3 {
        for t in 0..10 {
            dirs.push(format!("db{s}/t{t}/445566"));
        }
    }
    // a second table version, a partitioned table and a table named like the meta directory
    dirs.push("db0/t0/445577".into());
    dirs.push("db1/part/445566/71".into());
    dirs.push("db1/part/445566/72".into());
    dirs.push("db2/meta/445566".into());
    dirs
}

async fn fill(store: &dyn ObjectStore) -> (BTreeSet<String>, usize) {
    let mut expired = BTreeSet::new();
    let mut paths = Vec::new();
    for dir in table_dirs() {
        for day in DAYS {
            for i in 1..=FILES_PER_DAY {
                let p = format!("{dir}/{day}/CDC{i:020}.csv");
                if day < FIRST_KEPT {
                    expired.insert(p.clone());
                }
                paths.push(p);
            }
            let index = format!("{dir}/{day}/meta/CDC.index");
            if day < FIRST_KEPT {
                expired.insert(index.clone());
            }
            paths.push(index);
        }
        let table = dir.split('/').take(2).collect::<Vec<_>>().join("/");
        paths.push(format!("{table}/meta/schema_445566_0000000001.json"));
    }
    paths.push("db0/meta/schema_445566_0000000002.json".into());
    paths.push("metadata".into());
    // two versions, or two partitions, of one table share its schema file
    paths.sort();
    paths.dedup();
    let total = paths.len();
    for p in paths {
        store.put(&Path::from(p), "x".into()).await.unwrap();
    }
    (expired, total)
}

#[tokio::test]
async fn a_run_lists_only_the_expired_days() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let (expired, total) = fill(store.as_ref()).await;
    let recorder = FaultStore::new(Arc::clone(&store));
    let counted: Arc<dyn ObjectStore> = Arc::new(recorder.clone());
    let options =
        cdc_common::SinkOptions::from_query("date-separator=day&file-expiration-days=5").unwrap();
    let now = Ts::from_parts(1_796_299_200_000, 0); // 2026-12-03T12:00:00Z

    let report = cdc_sink::cleanup::remove_expired(&counted, &options, now, None)
        .await
        .unwrap();

    // exactly the expired data and index files went; schema files, metadata, kept days stay
    let deleted: BTreeSet<String> = report.deleted.into_iter().collect();
    assert_eq!(deleted.len(), expired.len(), "deleted vs expired");
    let wrong: Vec<_> = deleted.symmetric_difference(&expired).take(5).collect();
    assert!(wrong.is_empty(), "deleted and expired differ: {wrong:?}");
    let left: Vec<_> = store.list(None).try_collect().await.unwrap();
    assert_eq!(left.len(), total - expired.len());

    // what was listed: the directory levels (at most two entries per table and day) plus the
    // expired days' files; the old whole-bucket listing returned every kept file as well
    let leaves = table_dirs().len(); // directories holding date directories
    let expired_days = DAYS.iter().filter(|d| **d < FIRST_KEPT).count();
    let listed = recorder.listed_entries() as usize;
    let overhead = listed.saturating_sub(expired.len());
    assert!(
        listed >= expired.len() && overhead <= 2 * leaves * DAYS.len(),
        "{listed} entries listed for {} expired files (bucket holds {total})",
        expired.len()
    );
    let list_calls: Vec<String> = recorder
        .log()
        .into_iter()
        .filter(|r| r.op == Op::List)
        .map(|r| r.path)
        .collect();
    let calls_bound = 3 * leaves + leaves * expired_days;
    assert!(
        list_calls.len() <= calls_bound,
        "{} list calls, bound {calls_bound}: {list_calls:?}",
        list_calls.len()
    );
    for prefix in &list_calls {
        assert!(
            !DAYS.iter().any(|d| *d >= FIRST_KEPT && prefix.contains(d)),
            "a kept day was listed: {prefix}"
        );
    }
}

#[tokio::test]
async fn a_second_run_finds_nothing_and_lists_no_files() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let (expired, _) = fill(store.as_ref()).await;
    let options =
        cdc_common::SinkOptions::from_query("date-separator=day&file-expiration-days=5").unwrap();
    let now = Ts::from_parts(1_796_299_200_000, 0);
    let first = cdc_sink::cleanup::remove_expired(&store, &options, now, None)
        .await
        .unwrap();
    assert_eq!(first.deleted.len(), expired.len());
    let recorder = FaultStore::new(Arc::clone(&store));
    let counted: Arc<dyn ObjectStore> = Arc::new(recorder.clone());
    let second = cdc_sink::cleanup::remove_expired(&counted, &options, now, None)
        .await
        .unwrap();
    assert!(second.deleted.is_empty());
    // only directory levels: no listing names a kept day's directory, and what the listings
    // returned is directories, not the thousands of kept files
    let kept_day_lists = recorder
        .log()
        .iter()
        .filter(|r| r.op == Op::List && DAYS.iter().any(|d| r.path.contains(d)))
        .count();
    assert_eq!(kept_day_lists, 0);
    let listed = recorder.listed_entries() as usize;
    assert!(
        listed <= 2 * table_dirs().len() * DAYS.len(),
        "{listed} entries listed by a run with nothing to delete"
    );
}
