//! The sink's cold start over listings that leave entries out (eventually consistent or
//! truncated): the next file number comes from the index file (a GET, consistent), so a
//! restarted sink never reuses the number of an indexed file whatever the listing shows; an
//! unindexed file a listing missed is replaced by the next file (no reader can have used it).

use crate::support;

use cdc_common::layout::{DataFile, LayoutConfig};
use cdc_common::testing::{Fault, FaultStore, Op, Rule};
use cdc_sink::FileNaming;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use support::*;

const QUERY: &str = "protocol=csv&flush-interval=10ms&date-separator=none&file-index-width=6";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_start_numbering_never_reuses_an_indexed_file_under_partial_listing() {
    let t = table("t", ts(0));
    let mut defs = BTreeMap::new();
    defs.insert("t".to_string(), Arc::clone(&t));
    let listings = [
        Fault::PartialList {
            hide: 0.5,
            younger_than: None,
        },
        Fault::PartialList {
            hide: 1.0,
            younger_than: None,
        },
        Fault::TruncatedList { keep: 0 },
        Fault::TruncatedList { keep: 2 },
    ];
    for fault in listings {
        // First run: five files, one per event, indexed up to CDC000005.
        let h = harness(QUERY).await;
        h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
        let (flushed, cb) = counter();
        for seq in 0..5i64 {
            h.sink
                .add_dml_event(
                    "d",
                    event(&t, ts(1 + seq as u64), "d", seq, 1),
                    None,
                    Some(cb()),
                )
                .unwrap();
            assert!(wait_for(5, || flushed.load(Ordering::SeqCst) == seq as usize + 1).await);
        }
        h.sink.close().await.unwrap();
        let store = h.store.inner().clone();
        let dir = format!("s/t/{}", ts(0).0);
        // A crash left CDC000006 without its index entry.
        store
            .put(&Path::from(format!("{dir}/CDC000006.csv")), "orphan".into())
            .await
            .unwrap();

        // Restart over listings that leave entries out.
        let restarted = FaultStore::new(Arc::clone(&store));
        restarted.add_rule(Rule::new(Op::List, "", fault));
        let h2 = harness_on(Some(restarted), QUERY, |c| c).await;
        h2.sink.add_dispatcher("d", FileNaming::Table).unwrap();
        let (flushed2, cb2) = counter();
        h2.sink
            .add_dml_event("d", event(&t, ts(10), "d", 5, 1), None, Some(cb2()))
            .unwrap();
        assert!(wait_for(5, || flushed2.load(Ordering::SeqCst) == 1).await);
        h2.sink.close().await.unwrap();

        let layout = LayoutConfig::from_options(&h2.options);
        let written: Vec<u64> = h2
            .store
            .completed_puts()
            .iter()
            .filter_map(|p| DataFile::parse(p, &layout).ok())
            .map(|f| f.index)
            .collect();
        // Numbering resumes at the index entry + 1 whatever the listing shows: never over
        // an indexed file, and over the orphan (deleted or replaced; no reader used it).
        assert_eq!(written, vec![6], "{fault:?}");
        // Every acknowledged row is readable through the index, in order.
        let idx = store
            .get(&Path::from(format!("{dir}/meta/CDC.index")))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&idx),
            format!("CDC{:06}.csv\n", written[0])
        );
        let files = read_data_files(&store, &h2.options, &defs).await;
        let seqs: Vec<i64> = files
            .iter()
            .filter(|(f, _)| f.index <= written[0])
            .flat_map(|(_, rows)| rows.iter().map(|r| row_key(r).1))
            .collect();
        assert_eq!(seqs, (0..6).collect::<Vec<_>>(), "{fault:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
