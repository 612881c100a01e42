//! PostgreSQL -> capture -> local storage -> consumer -> SQLite, PostgreSQL (a database of
//! its own on the source server) and MariaDB, each compared with the source row by row through
//! the consumer backends' read-back: every mapped type, NULLs, unicode, updates (also of the
//! key), deletes, ADD and DROP COLUMN, a table created after capture started, TRUNCATE, and
//! unchanged TOAST values under replica identity DEFAULT and FULL. Needs CDC_TEST_POSTGRES_URI
//! and CDC_TEST_MYSQL_URI (scripts/servers.sh; under CI=true a missing server fails the test).
use crate::support;

use support::*;

const SETUP: &str = r#"
CREATE TYPE {s}.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE {s}.all_types (
    id int PRIMARY KEY, small smallint, big bigint, amount numeric(12,3), f real, d double precision,
    ok boolean, name varchar(40), c char(5), body text, born date, at timestamp(3), atz timestamptz,
    tm time, doc jsonb, j json, u uuid, tags text[], nums int[], m {s}.mood, b bytea
);
ALTER TABLE {s}.all_types ALTER COLUMN body SET STORAGE EXTERNAL;
CREATE TABLE {s}.full_ident (id int PRIMARY KEY, body text, n int);
ALTER TABLE {s}.full_ident REPLICA IDENTITY FULL;
ALTER TABLE {s}.full_ident ALTER COLUMN body SET STORAGE EXTERNAL;
CREATE TABLE {s}.trunc_me (id int PRIMARY KEY, v text);
INSERT INTO {s}.all_types VALUES (1, 7, 9000000000, 12.5, 1.5, 2.25, true, 'alpha', 'ab', (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 300) i),
    '2024-01-02', '2024-01-02 03:04:05.123', '2024-01-02 03:04:05.5+02', '12:34:56', '{"a": 1, "ü": [true]}', '[1, 2]',
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"x y", z, "q\"uote"}', '{1, NULL, 3}', 'happy', '\x00ff');
INSERT INTO {s}.full_ident VALUES (1, (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 300) i), 0);
INSERT INTO {s}.trunc_me VALUES (1, 'gone'), (2, 'gone too');
"#;

/// Statements run one by one (each its own transaction unless it says BEGIN).
const WORKLOAD: &[&str] = &[
    "INSERT INTO {s}.all_types SELECT i, i::smallint, i::bigint * 1000000007, i * 1.125, i * 0.5, i * 0.25, i % 2 = 0,
        CASE WHEN i % 4 = 0 THEN NULL ELSE 'nåme ' || i || ' 🌍' END, 'c' || (i % 10), 'body ' || i,
        DATE '2024-03-01' + i, TIMESTAMP '2024-03-01 10:00:00.250' + i * INTERVAL '1 hour',
        CASE WHEN i % 3 = 0 THEN NULL ELSE TIMESTAMPTZ '2024-03-01 10:00:00+05' + i * INTERVAL '1 minute' END,
        TIME '08:00' + i * INTERVAL '1 second', jsonb_build_object('i', i, 'tag', 'ß'), json_build_array(i, 'x'),
        md5(i::text)::uuid, ARRAY['t' || i, NULL, 'a,b'], ARRAY[i, i + 1], (ARRAY['sad','ok','happy'])[1 + i % 3]::{s}.mood,
        decode(lpad(to_hex(i), 4, '0'), 'hex')
      FROM generate_series(2, 60) i",
    "UPDATE {s}.all_types SET name = coalesce(name, '') || ' ✓', amount = amount + 1 WHERE id % 3 = 0",
    "DELETE FROM {s}.all_types WHERE id % 7 = 0",
    "ALTER TABLE {s}.all_types ADD COLUMN added text",
    "UPDATE {s}.all_types SET added = 'added ' || id WHERE id < 10",
    "ALTER TABLE {s}.all_types DROP COLUMN f",
    "INSERT INTO {s}.all_types (id, name, added) VALUES (100, 'after drop', NULL)",
    "CREATE TABLE {s}.later (id bigint PRIMARY KEY, v jsonb, note text)",
    "INSERT INTO {s}.later SELECT i, jsonb_build_object('n', i), CASE WHEN i % 2 = 0 THEN 'évén' END FROM generate_series(1, 20) i",
    "UPDATE {s}.later SET note = 'changed' WHERE id <= 5",
    "DELETE FROM {s}.later WHERE id = 20",
    // Unchanged TOAST: body is stored out of line and not touched.
    "UPDATE {s}.all_types SET small = 99 WHERE id = 1",
    "UPDATE {s}.full_ident SET n = n + 1 WHERE id = 1",
    // Key change (identity DEFAULT: the old key travels as 'K').
    "UPDATE {s}.all_types SET id = 1000 WHERE id = 2",
    "TRUNCATE {s}.trunc_me",
    "INSERT INTO {s}.trunc_me VALUES (3, 'after truncate')",
    "BEGIN; INSERT INTO {s}.later VALUES (50, '{}', NULL); UPDATE {s}.later SET note = 'in txn' WHERE id = 50; \
     UPDATE {s}.all_types SET ok = NULL, doc = NULL WHERE id = 4; DELETE FROM {s}.later WHERE id = 1; COMMIT",
    "UPDATE {s}.full_ident SET n = n + 1 WHERE id = 1",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sql_workload_replicates_into_sqlite_postgres_and_mariadb_row_by_row() {
    let Some(uri) = pg_uri() else { return };
    let c = connect(&uri).await;
    let s = unique("cap_e2e");
    let (slot, publication) = (unique("slot_e2e"), unique("pub_e2e"));
    c.batch_execute(&format!("CREATE SCHEMA {s}; {}", SETUP.replace("{s}", &s)))
        .await
        .unwrap();
    c.batch_execute(&format!(
        "CREATE PUBLICATION {publication} FOR TABLES IN SCHEMA {s}"
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");
    let sink = sink_uri(&storage);
    let mut capture = start(config(&uri, &publication, &slot, &sink));

    // The snapshot is durable (checkpointed) before the workload starts.
    tokio::select! {
        _ = wait_checkpoint(&storage) => {}
        _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => panic!("no snapshot"),
    }
    for stmt in WORKLOAD {
        c.batch_execute(&stmt.replace("{s}", &s))
            .await
            .unwrap_or_else(|e| panic!("{stmt}: {e:?}"));
    }
    let end = current_lsn(&c).await;
    capture.wait_confirmed(&c, &slot, &end).await;
    let report = capture.stop().await;
    assert!(report.snapshot_taken);
    assert_eq!(report.snapshot_rows, 4);
    assert!(
        report.transactions >= WORKLOAD.len() as u64 - 3,
        "{report:?}"
    );

    // The same storage replayed into each downstream; every table compared with the source
    // through the backend's read-back.
    // PostgreSQL too, in a database of its own (the replica's schema has the source's name).
    let replica_db = unique("cap_replica");
    c.batch_execute(&format!("CREATE DATABASE {replica_db}"))
        .await
        .unwrap();
    let mut downstreams = vec![
        sqlite_down(&dir.path().join("replica.db")),
        database_uri(&uri, &replica_db),
    ];
    downstreams.extend(mysql_uri());
    for down in &downstreams {
        replay(&sink, down).await;
        let mut rows = 0;
        for table in ["all_types", "full_ident", "trunc_me", "later"] {
            let (cols, source) = assert_same_table(&c, down, &s, table, "id").await;
            rows += source.len();
            // The TOAST values arrived whole (never NULL or empty): the source's row 1 body.
            if let Some(body) = cols.iter().position(|c| c.name == "body") {
                assert_eq!(source[0][0].as_deref(), Some("1"), "{table}");
                let len = source[0][body].as_ref().map_or(0, String::len);
                assert_eq!(len, 9600, "{down}: {table} body");
            }
        }
        assert!(rows > 60, "{down}: {rows} rows compared");
    }
    drop_slot(&c, &slot).await;
    c.batch_execute(&format!("DROP DATABASE {replica_db} WITH (FORCE)"))
        .await
        .unwrap();
}
