//! Wrong set-ups get an error naming the problem and the fix, before anything is created:
//! a server without `wal_level=logical` (the second server scripts/servers.sh starts,
//! `CDC_TEST_POSTGRES_NO_LOGICAL_URI`), a missing publication, a slot in use, a role without
//! REPLICATION, a published table whose updates cannot be keyed, a slot without a finished
//! snapshot.

use crate::support;

use cdc_capture::CaptureError;
use support::*;

async fn run_once(
    cfg: cdc_capture::CaptureConfig,
) -> cdc_capture::Result<cdc_capture::CaptureReport> {
    start(cfg).result().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_logical_wal_is_refused_with_the_fix() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_POSTGRES_NO_LOGICAL_URI") else {
        return;
    };
    let c = connect(&uri).await;
    let (slot, publication) = (unique("slot_nowal"), unique("pub_nowal"));
    c.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS nowal (id int PRIMARY KEY); CREATE PUBLICATION {publication} FOR TABLE nowal"
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");
    let err = run_once(config(&uri, &publication, &slot, &sink_uri(&storage)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CaptureError::WalLevel { ref current } if current == "replica"),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("wal_level=logical") && text.contains("restart"),
        "{text}"
    );
    // Nothing was created: no slot, nothing in storage.
    let n: i64 = c
        .query_one("SELECT count(*) FROM pg_replication_slots", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    let written = std::fs::read_dir(&storage).map_or(0, |d| d.count());
    assert_eq!(written, 0, "files written to {}", storage.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_publication_is_named_with_the_fix() {
    let Some(uri) = pg_uri() else { return };
    let dir = tempfile::tempdir().unwrap();
    let slot = unique("slot_nopub");
    let err = run_once(config(&uri, "no_such_pub", &slot, &sink_uri(dir.path())))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CaptureError::PublicationMissing { ref name } if name == "no_such_pub"),
        "{err}"
    );
    assert!(err.to_string().contains("CREATE PUBLICATION"));
    // Nothing was created.
    let c = connect(&uri).await;
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_without_replication_is_told_to_get_it() {
    let Some(uri) = pg_uri() else { return };
    let c = connect(&uri).await;
    let role = unique("norep");
    c.batch_execute(&format!("CREATE ROLE {role} LOGIN"))
        .await
        .unwrap();
    let pubn = unique("pub_norep");
    c.batch_execute(&format!("CREATE PUBLICATION {pubn}"))
        .await
        .unwrap();
    let mut cfg: tokio_postgres::Config = uri.parse().unwrap();
    cfg.user(&role);
    let host = match &cfg.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        #[allow(unreachable_patterns)]
        _ => "127.0.0.1".into(),
    };
    let role_uri = format!(
        "postgres://{role}@{host}:{}/{}",
        cfg.get_ports()[0],
        cfg.get_dbname().unwrap()
    );
    let dir = tempfile::tempdir().unwrap();
    let err = run_once(config(
        &role_uri,
        &pubn,
        &unique("slot_norep"),
        &sink_uri(dir.path()),
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(err, CaptureError::NoReplicationPrivilege { ref user } if *user == role),
        "{err}"
    );
    assert!(err.to_string().contains("REPLICATION"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_without_a_key_is_named_with_the_fix() {
    let Some(uri) = pg_uri() else { return };
    let c = connect(&uri).await;
    let s = unique("cap_nokey");
    let pubn = unique("pub_nokey");
    c.batch_execute(&format!(
        "CREATE SCHEMA {s}; CREATE TABLE {s}.keyless (a int, b text); CREATE TABLE {s}.keyed (id int PRIMARY KEY);
         CREATE PUBLICATION {pubn} FOR TABLES IN SCHEMA {s};"
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = run_once(config(
        &uri,
        &pubn,
        &unique("slot_nokey"),
        &sink_uri(dir.path()),
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(err, CaptureError::NoReplicaIdentity { ref tables } if tables.contains("keyless") && !tables.contains("keyed")),
        "{err}"
    );
    assert!(err.to_string().contains("REPLICA IDENTITY FULL"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_in_use_by_another_capture_is_refused() {
    let Some(uri) = pg_uri() else { return };
    let c = connect(&uri).await;
    let s = unique("cap_inuse");
    let (slot, pubn) = (unique("slot_inuse"), unique("pub_inuse"));
    c.batch_execute(&format!(
        "CREATE SCHEMA {s}; CREATE TABLE {s}.t (id int PRIMARY KEY); INSERT INTO {s}.t VALUES (1);
         CREATE PUBLICATION {pubn} FOR TABLES IN SCHEMA {s};"
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");
    let first = start(config(&uri, &pubn, &slot, &sink_uri(&storage)));
    wait_checkpoint(&storage).await;
    // a second capture of the same slot elsewhere (its own spool; on one host the spool lock
    // would refuse it first, naming the spool directory)
    let mut second = config(&uri, &pubn, &slot, &sink_uri(&storage));
    second.changefeed = format!("{}-elsewhere", second.changefeed);
    let err = run_once(second).await.unwrap_err();
    assert!(matches!(err, CaptureError::SlotInUse { .. }), "{err}");
    assert!(err.to_string().contains("--slot"));
    // The first capture is unharmed and stops cleanly.
    let report = first.stop().await;
    assert_eq!(report.snapshot_rows, 1);
    drop_slot(&c, &slot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_without_a_finished_snapshot_is_refused_with_the_fix() {
    let Some(uri) = pg_uri() else { return };
    let c = connect(&uri).await;
    let (slot, pubn) = (unique("slot_nosnap"), unique("pub_nosnap"));
    c.batch_execute(&format!("CREATE PUBLICATION {pubn}"))
        .await
        .unwrap();
    c.batch_execute(&format!(
        "SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')"
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = run_once(config(&uri, &pubn, &slot, &sink_uri(dir.path())))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CaptureError::SnapshotIncomplete { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("pg_drop_replication_slot"));
    drop_slot(&c, &slot).await;
}
