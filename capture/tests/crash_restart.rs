//! SIGKILL of the capture process, twice, mid-stream: after restarts nothing is lost and the
//! consumer's replay shows no duplicate (a keyless table would show one as an extra row).
//! Runs the `cdc-capture` binary (the same code as `cdc-storage capture`) as a child process.

use crate::support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::*;

fn spawn(uri: &str, publication: &str, slot: &str, sink: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cdc-capture"))
        .args([
            "--source",
            uri,
            "--publication",
            publication,
            "--slot",
            slot,
            "--sink-uri",
            sink,
            "--poll-interval",
            "20ms",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn cdc-capture")
}

fn sigkill(child: &mut Child) {
    child.kill().expect("SIGKILL");
    let _ = child.wait();
}

fn sigterm(child: &mut Child) {
    let pid = child.id().to_string();
    let ok = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(ok.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "capture exited with {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_twice_mid_stream_loses_nothing_and_duplicates_nothing() {
    let Some(uri) = pg_uri() else { return };
    let c = connect(&uri).await;
    let s = unique("cap_crash");
    let (slot, publication) = (unique("slot_crash"), unique("pub_crash"));
    c.batch_execute(&format!(
        "CREATE SCHEMA {s};
         CREATE TABLE {s}.acct (id int PRIMARY KEY, balance bigint NOT NULL, note text);
         CREATE TABLE {s}.journal (seq bigint NOT NULL, acct int, delta bigint);
         ALTER TABLE {s}.journal REPLICA IDENTITY FULL;
         INSERT INTO {s}.acct SELECT i, 0, 'start' FROM generate_series(1, 50) i;
         CREATE PUBLICATION {publication} FOR TABLES IN SCHEMA {s};"
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");
    let sink = sink_uri(&storage);
    let mut child = spawn(&uri, &publication, &slot, &sink);
    wait_checkpoint(&storage).await;

    // The workload runs throughout; capture is killed twice while it runs.
    let (s2, uri2) = (s.clone(), uri.clone());
    let workload = tokio::spawn(async move {
        let c = connect(&uri2).await;
        for i in 0..600i64 {
            let a = 1 + i % 50;
            c.batch_execute(&format!(
                "BEGIN;
                 UPDATE {s2}.acct SET balance = balance + {i}, note = 'txn {i} ✓' WHERE id = {a};
                 INSERT INTO {s2}.journal VALUES ({i}, {a}, {i});
                 INSERT INTO {s2}.acct VALUES ({} , {i}, NULL);
                 DELETE FROM {s2}.acct WHERE id = {} ;
                 COMMIT;",
                1000 + i,
                1000 + i - 3
            ))
            .await
            .unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(900)).await;
        sigkill(&mut child);
        tokio::time::sleep(Duration::from_millis(200)).await;
        child = spawn(&uri, &publication, &slot, &sink);
    }
    workload.await.unwrap();
    let end = current_lsn(&c).await;
    wait_confirmed(&c, &slot, &end, Duration::from_secs(120)).await;
    sigterm(&mut child);

    let db = sqlite_down(&dir.path().join("replica.db"));
    replay(&sink, &db).await;
    assert_same_table(&c, &db, &s, "acct", "id").await;
    let (_, journal) = assert_same_table(&c, &db, &s, "journal", "seq").await;
    assert_eq!(journal.len(), 600, "every journal row exactly once");
    drop_slot(&c, &slot).await;
}
