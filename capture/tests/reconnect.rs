//! The source connection dropped mid-stream (its backend terminated): capture reconnects,
//! re-takes the slot and resumes from the confirmed position; nothing lost, nothing twice.

use crate::support;

use std::time::Duration;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_reopened_and_the_stream_resumes() {
    let Some(uri) = pg_uri() else { return };
    let c = connect(&uri).await;
    let s = unique("cap_drop");
    let (slot, pubn) = (unique("slot_drop"), unique("pub_drop"));
    c.batch_execute(&format!(
        "CREATE SCHEMA {s}; CREATE TABLE {s}.log (seq bigint NOT NULL, v text);
         ALTER TABLE {s}.log REPLICA IDENTITY FULL;
         CREATE PUBLICATION {pubn} FOR TABLES IN SCHEMA {s};"
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");
    let sink = sink_uri(&storage);
    let mut capture = start(config(&uri, &pubn, &slot, &sink));
    wait_checkpoint(&storage).await;
    for round in 0..3i64 {
        for i in 0..50 {
            let n = round * 50 + i;
            c.batch_execute(&format!("INSERT INTO {s}.log VALUES ({n}, 'row {n}')"))
                .await
                .unwrap();
        }
        // Terminate this capture's own session (the stream's connection) mid-stream, found
        // by the name it gives its sessions: other tests' captures run beside this one.
        let killed: i64 = c
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name = $1 AND pid <> pg_backend_pid() \
                 AND datname = current_database() AND backend_type = 'client backend'",
                &[&cdc_capture::source::application_name(&slot)],
            )
            .await
            .unwrap()
            .get(0);
        assert!(
            killed >= 1,
            "round {round}: no capture session to terminate"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let end = current_lsn(&c).await;
    capture.wait_confirmed(&c, &slot, &end).await;
    let report = capture.stop().await;
    assert!(report.reconnects >= 1, "{report:?}");
    let db = sqlite_down(&dir.path().join("replica.db"));
    replay(&sink, &db).await;
    let (_, log) = assert_same_table(&c, &db, &s, "log", "seq").await;
    assert_eq!(log.len(), 150);
    drop_slot(&c, &slot).await;
}
