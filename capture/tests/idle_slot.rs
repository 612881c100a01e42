//! A slot with nothing to replicate follows the WAL: writes to a table outside the publication
//! (or in another database) must not pin WAL behind the slot forever, and a waiter on the
//! server's current position must see the slot reach it.

use crate::support;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_slot_follows_wal_written_outside_the_publication() {
    let Some(uri) = pg_uri() else { return };
    let c = connect(&uri).await;
    let s = unique("cap_idle");
    let (slot, pubn) = (unique("slot_idle"), unique("pub_idle"));
    c.batch_execute(&format!(
        "CREATE SCHEMA {s}; CREATE TABLE {s}.published (id bigint PRIMARY KEY);
         CREATE TABLE {s}.other (id bigint PRIMARY KEY);
         CREATE PUBLICATION {pubn} FOR TABLE {s}.published;"
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");
    let mut capture = start(config(&uri, &pubn, &slot, &sink_uri(&storage)));
    wait_checkpoint(&storage).await;
    for i in 0..20 {
        c.batch_execute(&format!("INSERT INTO {s}.other VALUES ({i})"))
            .await
            .unwrap();
    }
    let end = current_lsn(&c).await;
    capture.wait_confirmed(&c, &slot, &end).await;
    capture.stop().await;
    drop_slot(&c, &slot).await;
}
