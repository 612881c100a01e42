//! One replay scenario run against every downstream: SQLite always, PostgreSQL and MariaDB when
//! `scripts/servers.sh` started them (`CDC_TEST_POSTGRES_URI`, `CDC_TEST_MYSQL_URI`; under
//! `CI=true` a missing server fails the test).

use crate::support;

use cdc_common::{ColumnDef, ColumnType, DdlKind, RowChange, TableName, Value};
use cdc_consumer::backend::{self, Access, Downstream};
use cdc_consumer::config::DownstreamUri;
use support::*;

async fn replay(uri: &str, down: &str) -> cdc_consumer::Result<()> {
    ReplayerBuilder::new(uri, down)
        .once()
        .args(&["--batch-rows", "3"])
        .run()
        .await
}

/// Unique schema names: the servers are shared between runs.
fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}_{}_{}", std::process::id(), n % 1_000_000_000)
}

/// Reads the downstream back through its backend's read-back.
struct Reader(String);

impl Reader {
    async fn open(&self) -> Box<dyn Downstream> {
        let uri = DownstreamUri::parse(&self.0, None).unwrap();
        backend::open(&uri, 1, Access::ReadBack).await.unwrap()
    }

    /// The given columns of a table's rows (`id` first, the key), as text.
    async fn text_rows(&mut self, schema: &str, table: &str, cols: &[&str]) -> Vec<Vec<String>> {
        let mut defs = vec![ColumnDef::new("id", ColumnType::BigInt).pk()];
        defs.extend(cols.iter().map(|c| ColumnDef::new(*c, ColumnType::VarChar)));
        self.open()
            .await
            .read_rows(&TableName::new(schema, table), &defs)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.into_iter().map(Option::unwrap).collect())
            .collect()
    }

    /// `(id, name)` rows of a table, as text.
    async fn rows(&mut self, schema: &str, table: &str) -> Vec<(String, String)> {
        self.text_rows(schema, table, &["name"])
            .await
            .into_iter()
            .map(|r| (r[0].clone(), r[1].clone()))
            .collect()
    }

    async fn tables(&mut self, schema: &str) -> Vec<String> {
        self.open().await.read_tables(schema).await.unwrap()
    }
}

fn r(id: i64, n: &str) -> (String, String) {
    (id.to_string(), n.to_string())
}

async fn scenario(down: &str, mut reader: Reader) {
    let s = unique("cdcs");
    let gone = unique("cdcg");
    let mut w = Writer::new(&format!(
        "memory://{s}?protocol=csv&include-commit-ts=true&output-old-value=false"
    ));
    // A typed table, a table renamed later, a table without key, a schema dropped later.
    let typed = table(
        &s,
        "typed",
        ts(1),
        vec![
            ColumnDef::new("id", ColumnType::BigInt).pk(),
            ColumnDef::new("name", ColumnType::VarChar).with_precision(Some(32), None),
            ColumnDef::new("amount", ColumnType::Decimal).with_precision(Some(12), Some(2)),
            ColumnDef::new("ratio", ColumnType::Double),
            ColumnDef::new("at", ColumnType::DateTime),
            ColumnDef::new("big", ColumnType::BigInt).unsigned(),
            ColumnDef::new("data", ColumnType::Blob),
        ],
    );
    let typed_row = |id: i64, name: &str| RowChange::Insert {
        after: vec![
            Value::Int(id),
            Value::String(name.into()),
            Value::Decimal("1234.50".into()),
            Value::Double(0.25),
            Value::String("2024-01-02 03:04:05".into()),
            Value::UInt(u64::MAX),
            Value::Bytes(vec![0, 1, 2, 255]),
        ],
    };
    w.schema(&typed, "", DdlKind::CreateTable).await;
    let mut rows: Vec<RowChange> = (1..=8).map(|i| typed_row(i, "x")).collect();
    rows.push(RowChange::Delete {
        before: match typed_row(8, "x") {
            RowChange::Insert { after } => after,
            _ => unreachable!(),
        },
    });
    w.file(&typed, &[(ts(2), rows)]).await;

    let old = two_cols(&s, "old", ts(1));
    w.schema(&old, "", DdlKind::CreateTable).await;
    w.file(
        &old,
        &[(ts(2), vec![ins(1, "a"), ins(2, "b"), ins(3, "c")])],
    )
    .await;
    w.file(&old, &[(ts(3), vec![upd(2, "b", "B"), del(3, "c")])])
        .await;
    // Add a column, then rename the table, then write under the new name.
    let mut old2 = old.clone();
    old2.version = ts(4);
    old2.columns.push(ColumnDef::new("extra", ColumnType::Int));
    w.schema(
        &old2,
        "ALTER TABLE old ADD COLUMN extra INT",
        DdlKind::AddColumn,
    )
    .await;
    let mut new = old2.clone();
    new.table = "new".into();
    new.version = ts(5);
    w.schema(
        &new,
        &format!("RENAME TABLE `{s}`.`old` TO `{s}`.`new`"),
        DdlKind::RenameTable,
    )
    .await;
    w.file(
        &new,
        &[(
            ts(6),
            vec![RowChange::Insert {
                after: vec![Value::Int(4), Value::String("d✓é".into()), Value::Int(1)],
            }],
        )],
    )
    .await;

    let mut nopk = two_cols(&s, "nopk", ts(1));
    nopk.columns[0].primary_key = false;
    w.schema(&nopk, "", DdlKind::CreateTable).await;
    w.file(
        &nopk,
        &[(ts(2), vec![ins(1, "a"), ins(1, "a"), ins(2, "b")])],
    )
    .await;
    w.file(&nopk, &[(ts(3), vec![del(1, "a")])]).await;

    let g = two_cols(&gone, "t", ts(1));
    w.db_schema(&gone, ts(1), "CREATE DATABASE g", DdlKind::CreateSchema)
        .await;
    w.schema(&g, "", DdlKind::CreateTable).await;
    w.file(&g, &[(ts(2), vec![ins(1, "a")])]).await;
    w.db_schema(&gone, ts(7), "DROP DATABASE g", DdlKind::DropSchema)
        .await;
    w.checkpoint(ts(10)).await;

    replay(&w.uri, down).await.unwrap();
    // Idempotent: a second run changes nothing.
    replay(&w.uri, down).await.unwrap();

    assert_eq!(reader.tables(&s).await, vec!["new", "nopk", "typed"]);
    assert_eq!(
        reader.rows(&s, "new").await,
        vec![r(1, "a"), r(2, "B"), r(4, "d✓é")]
    );
    assert_eq!(reader.rows(&s, "nopk").await, vec![r(1, "a"), r(2, "b")]);
    assert_eq!(reader.rows(&s, "typed").await.len(), 7);
    assert!(reader.tables(&gone).await.is_empty());
    let big = reader
        .text_rows(&s, "typed", &["big"])
        .await
        .into_iter()
        .find(|r| r[0] == "1")
        .map(|r| r[1].clone())
        .unwrap();
    assert_eq!(big, u64::MAX.to_string());
}

#[tokio::test]
async fn scenario_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    let down = format!("sqlite://{}", db.display());
    scenario(&down, Reader(down.clone())).await;
}

#[tokio::test]
async fn scenario_on_postgres() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_POSTGRES_URI") else {
        return;
    };
    scenario(&uri, Reader(uri.clone())).await;
}

#[tokio::test]
async fn scenario_on_mariadb() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_MYSQL_URI") else {
        return;
    };
    scenario(&uri, Reader(uri.clone())).await;
}

#[tokio::test]
async fn large_files_take_the_copy_path_on_postgres_with_conflict_fallback() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_POSTGRES_URI") else {
        return;
    };
    let s = unique("cdcc");
    let mut w = Writer::new(&format!("memory://{s}?protocol=csv&include-commit-ts=true"));
    let t = two_cols(&s, "t", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    // 3000 fresh keys (optimistic COPY), then 3000 rows hitting existing keys, one key twice
    // (COPY fails on the conflict, the merge path applies the last image).
    w.file(&t, &[(ts(2), (0..3000).map(|i| ins(i, "a")).collect())])
        .await;
    let mut rows: Vec<RowChange> = (0..3000).map(|i| ins(i + 1500, "b")).collect();
    rows.push(ins(7, "last"));
    w.file(&t, &[(ts(3), rows)]).await;
    w.checkpoint(ts(10)).await;
    replay(&w.uri, &uri).await.unwrap();
    let rows = Reader(uri.clone()).rows(&s, "t").await;
    let n = rows.len() as i64;
    let b = rows.iter().filter(|(_, name)| name == "b").count() as i64;
    let seven = rows.iter().find(|(id, _)| id == "7").unwrap().1.clone();
    assert_eq!((n, b, seven.as_str()), (4500, 3000, "last"));
}

#[tokio::test]
async fn large_files_take_load_data_on_mariadb_with_the_last_image_of_each_key() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_MYSQL_URI") else {
        return;
    };
    let s = unique("cdcl");
    let mut w = Writer::new(&format!("memory://{s}?protocol=csv&include-commit-ts=true"));
    let t = two_cols(&s, "t", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    // 3000 fresh keys, then 3000 rows of which 1500 hit existing keys, and two more rows for
    // keys of the first file with names holding every byte LOAD DATA must escape.
    w.file(&t, &[(ts(2), (0..3000).map(|i| ins(i, "a")).collect())])
        .await;
    let mut rows: Vec<RowChange> = (0..3000).map(|i| ins(i + 1500, "b")).collect();
    rows.push(ins(7, "tab\there\\ nl\nend\r\u{0}x"));
    rows.push(ins(8, "\\N"));
    w.file(&t, &[(ts(3), rows)]).await;
    w.checkpoint(ts(10)).await;
    replay(&w.uri, &uri).await.unwrap();
    let rows = Reader(uri.clone()).rows(&s, "t").await;
    let name = |id: &str| rows.iter().find(|(i, _)| i == id).unwrap().1.clone();
    let b = rows.iter().filter(|(_, n)| n == "b").count();
    assert_eq!((rows.len(), b), (4500, 3000));
    assert_eq!(name("7"), "tab\there\\ nl\nend\r\u{0}x");
    assert_eq!(name("8"), "\\N");
}

#[tokio::test]
async fn load_data_on_mariadb_keeps_bit_float_and_binary_values_exact() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_MYSQL_URI") else {
        return;
    };
    let s = unique("cdcb");
    let mut w = Writer::new(&format!("memory://{s}?protocol=csv&include-commit-ts=true"));
    let cols = vec![
        ColumnDef::new("id", ColumnType::BigInt).pk(),
        ColumnDef::new("flags", ColumnType::Bit).with_precision(Some(16), None),
        ColumnDef::new("d", ColumnType::Double),
        ColumnDef::new("raw", ColumnType::VarBinary).with_precision(Some(8), None),
    ];
    let t = table(&s, "t", ts(1), cols.clone());
    w.schema(&t, "", DdlKind::CreateTable).await;
    let row = |i: i64| RowChange::Insert {
        after: vec![
            Value::Int(i),
            if i % 7 == 0 {
                Value::Null
            } else {
                Value::UInt((i * 37 % 65536) as u64)
            },
            Value::Double(i as f64 / 3.0),
            Value::Bytes(vec![(i % 256) as u8, b'\\', b'\t', 0, b'\n']),
        ],
    };
    w.file(&t, &[(ts(2), (0..600).map(row).collect())]).await;
    w.checkpoint(ts(10)).await;
    replay(&w.uri, &uri).await.unwrap();
    let mut down = Reader(uri.clone()).open().await;
    let got = down
        .read_rows(&cdc_common::TableName::new(&s, "t"), &cols)
        .await
        .unwrap();
    // The same rows through statements (SQLite): the canonical text must match.
    let lite = tempfile::tempdir().unwrap();
    let lite_uri = format!("sqlite://{}", lite.path().join("d.db").display());
    replay(&w.uri, &lite_uri).await.unwrap();
    let mut lite_down = Reader(lite_uri).open().await;
    let want = lite_down
        .read_rows(&cdc_common::TableName::new(&s, "t"), &cols)
        .await
        .unwrap();
    assert_eq!(got.len(), 600);
    for (g, w) in got.iter().zip(&want) {
        for (c, (a, b)) in cols.iter().zip(g.iter().zip(w)) {
            assert!(same_value(c, a, b), "{}: {a:?} vs {b:?}", c.name);
        }
    }
}

#[tokio::test]
async fn a_value_load_data_would_clip_fails_the_unit_on_mariadb_and_keeps_nothing() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_MYSQL_URI") else {
        return;
    };
    let s = unique("cdcw");
    let mut w = Writer::new(&format!("memory://{s}?protocol=csv&include-commit-ts=true"));
    let t = two_cols(&s, "t", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    w.file(&t, &[(ts(2), vec![ins(1, "kept")])]).await;
    // VARCHAR(64): LOAD DATA LOCAL would store the first 64 characters with a warning.
    let mut rows: Vec<RowChange> = (10..700).map(|i| ins(i, "ok")).collect();
    rows.push(ins(5, &"x".repeat(80)));
    w.file(&t, &[(ts(3), rows)]).await;
    w.checkpoint(ts(10)).await;
    let e = replay(&w.uri, &uri).await.unwrap_err().to_string();
    assert!(e.contains("2.csv") && e.contains("Data too long"), "{e}");
    // The first file stays applied; nothing of the second, clipped or not.
    let rows = Reader(uri.clone()).rows(&s, "t").await;
    assert_eq!(rows, vec![r(1, "kept")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_postgres_connection_is_reopened_by_the_next_round() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_POSTGRES_URI") else {
        return;
    };
    let s = unique("cdcr");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s");
    std::fs::create_dir_all(&root).unwrap();
    let mut w = Writer::new(&format!(
        "file://{}?protocol=csv&include-commit-ts=true",
        root.display()
    ));
    let t = two_cols(&s, "t", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    w.file(&t, &[(ts(2), vec![ins(1, "a")])]).await;
    w.checkpoint(ts(3)).await;
    let app = format!("cdc_reconnect_{}", std::process::id());
    let sep = if uri.contains('?') { '&' } else { '?' };
    let down = format!("{uri}{sep}application_name={app}");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_storage-consumer"))
        .args([
            "--upstream-uri",
            &w.uri,
            "--downstream-uri",
            &down,
            "--interval",
            "50ms",
        ])
        .args(["--log-level", "error"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = postgres_client(&uri).await;
    let count = |n: i64| {
        let client = &client;
        let s = s.clone();
        async move {
            for _ in 0..200 {
                let got: Option<i64> = client
                    .query_one(&format!("SELECT count(*) FROM \"{s}\".t"), &[])
                    .await
                    .ok()
                    .map(|r| r.get(0));
                if got == Some(n) {
                    return true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            false
        }
    };
    assert!(count(1).await, "first file not applied");
    let killed = client
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .unwrap();
    assert_eq!(killed, 1, "the consumer's connection was not found");
    w.file(&t, &[(ts(4), vec![ins(2, "b")])]).await;
    w.checkpoint(ts(5)).await;
    let ok = count(2).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        ok,
        "the row written after the connection was killed was not applied"
    );
}

/// Consumers started at once on a fresh PostgreSQL database (a group's members, replicas of one
/// Deployment) all create the bookkeeping tables: every one of them must start. PostgreSQL's
/// `CREATE TABLE IF NOT EXISTS` alone lets the second of two racing creates fail on the
/// catalog's unique index (SQLSTATE 23505), which stopped a member at startup.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumers_starting_at_once_on_a_fresh_postgres_database_all_start() {
    let Some(base) = cdc_common::testing::server_uri("CDC_TEST_POSTGRES_URI") else {
        return;
    };
    let admin = postgres_client(&base).await;
    for attempt in 0..4 {
        let db = format!("race_{}_{attempt}", std::process::id());
        for sql in [
            format!("DROP DATABASE IF EXISTS {db}"),
            format!("CREATE DATABASE {db}"),
        ] {
            admin.batch_execute(&sql).await.unwrap();
        }
        let uri = match base.rfind('/') {
            Some(i) if !base[i + 1..].contains('@') => format!("{}/{db}", &base[..i]),
            _ => panic!("CDC_TEST_POSTGRES_URI names no database: {base}"),
        };
        let opens = (0..8).map(|_| {
            let uri = DownstreamUri::parse(&uri, None).unwrap();
            tokio::spawn(async move {
                let mut d = backend::open(&uri, 1, Access::Apply).await?;
                d.load_progress().await?;
                let mut leases = backend::open_lease_store(&uri).await?;
                leases.init().await
            })
        });
        for r in futures::future::join_all(opens).await {
            r.unwrap()
                .expect("every consumer starts on a fresh database");
        }
        admin
            .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
            .await
            .unwrap();
    }
}

/// The existence check a DDL step asks before choosing CREATE TABLE or a column diff: a table
/// or view of exactly that schema and name (names are case-sensitive once quoted), nothing in
/// another schema, asked again after a change (the cached statement re-reads the catalog).
#[tokio::test]
async fn table_exists_sees_a_table_or_view_of_that_schema_and_name_on_postgres() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_POSTGRES_URI") else {
        return;
    };
    let s = unique("cdcx");
    let other = unique("cdcy");
    let client = postgres_client(&uri).await;
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {s}; CREATE SCHEMA {other}; CREATE TABLE {s}.\"Mixed\" (id INT); \
             CREATE VIEW {s}.v AS SELECT 1 AS one; CREATE TABLE {other}.only_there (id INT)"
        ))
        .await
        .unwrap();
    let mut down = Reader(uri.clone()).open().await;
    let mut exists = Vec::new();
    for (schema, table) in [
        (&s, "Mixed"),
        (&s, "mixed"),
        (&s, "v"),
        (&s, "only_there"),
        (&other, "only_there"),
        (&s, "later"),
    ] {
        exists.push(
            down.table_exists(&TableName::new(schema, table))
                .await
                .unwrap(),
        );
    }
    assert_eq!(exists, [true, false, true, false, true, false]);
    client
        .batch_execute(&format!("CREATE TABLE {s}.later (id INT); DROP VIEW {s}.v"))
        .await
        .unwrap();
    let later = down
        .table_exists(&TableName::new(&s, "later"))
        .await
        .unwrap();
    let view = down.table_exists(&TableName::new(&s, "v")).await.unwrap();
    assert_eq!((later, view), (true, false));
    client
        .batch_execute(&format!(
            "DROP SCHEMA {s} CASCADE; DROP SCHEMA {other} CASCADE"
        ))
        .await
        .unwrap();
}
