//! Storage as TiCDC users have it (issue 20): writers in any time zone, index entries
//! published before their data files, every table's stream independent of the others.

use crate::support;

use cdc_common::{ColumnDef, ColumnType, DdlKind, TableName};
use cdc_consumer::replay::RoundOutcome;
use support::*;

/// Seconds after [`ts`]'s origin (2023-11-14 22:13:20 UTC) at which the UTC date becomes
/// 2023-11-15.
const UTC_MIDNIGHT: u64 = 6400;

/// A writer at `hours` from UTC keeps writing into the directory of its local date after the
/// checkpoint's UTC date has moved on (west) or before it has (east): every file is applied.
async fn every_file_of_a_writer_at(hours: i64, name: &str) {
    let uri = format!("memory://{name}?protocol=csv&include-commit-ts=true&date-separator=day");
    let mut w = Writer::new(&uri).at_utc_offset(hours);
    let t = two_cols("db", "t", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    let at = |sec: u64| ts(UTC_MIDNIGHT + sec);
    w.file(&t, &[(at(60), vec![ins(1, "a")])]).await;
    w.checkpoint(at(70)).await;
    let (_dir, db, mut r) = sqlite_replayer(&w.uri).await;
    ok_rounds(&mut r, 3).await;
    assert_eq!(id_names(&db, "db.t"), vec![s(1, "a")]);
    // Still the same local date for the writer: the same directory gets file 2.
    w.file(&t, &[(at(100), vec![ins(2, "b")])]).await;
    // Hours later (still before the writer's local midnight at UTC-12).
    w.file(&t, &[(at(10 * 3600), vec![ins(3, "c")])]).await;
    w.checkpoint(at(10 * 3600 + 10)).await;
    ok_rounds(&mut r, 3).await;
    assert_eq!(id_names(&db, "db.t"), vec![s(1, "a"), s(2, "b"), s(3, "c")]);
}

#[tokio::test]
async fn a_writer_at_utc_minus_12_has_every_file_applied() {
    every_file_of_a_writer_at(-12, "tz-west").await;
}

#[tokio::test]
async fn a_writer_at_utc_plus_14_has_every_file_applied() {
    every_file_of_a_writer_at(14, "tz-east").await;
}

/// Storage where `db.a`'s index names file 2 (`newest`: also file 3) and `db.b` has one file;
/// file 2 of `db.a` is deleted afterwards. Returns the writer and the deleted path.
async fn a_missing_file(name: &str, newest: u64) -> (Writer, String) {
    let mut w = Writer::new(&format!(
        "memory://{name}?protocol=csv&include-commit-ts=true"
    ));
    let a = two_cols("db", "a", ts(1));
    let b = two_cols("db", "b", ts(1));
    w.schema(&a, "", DdlKind::CreateTable).await;
    w.schema(&b, "", DdlKind::CreateTable).await;
    w.file(&a, &[(ts(2), vec![ins(1, "a")])]).await;
    w.file(&b, &[(ts(2), vec![ins(1, "b")])]).await;
    // tiflow publishes the index entry before the data file: rows above the checkpoint.
    let second = w.file(&a, &[(ts(20), vec![ins(2, "a")])]).await;
    if newest == 3 {
        w.file(&a, &[(ts(21), vec![ins(3, "a")])]).await;
    }
    w.delete(&second).await;
    w.checkpoint(ts(10)).await;
    (w, second)
}

#[tokio::test]
async fn the_newest_indexed_file_absent_is_in_flight_and_once_exits_zero() {
    let (w, second) = a_missing_file("inflight-once", 2).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    ReplayerBuilder::sqlite(&w.uri, &db)
        .once()
        .run()
        .await
        .expect("rows at or below the checkpoint are all applied");
    assert_eq!(id_names(&db, "db.a"), vec![s(1, "a")]);
    assert_eq!(id_names(&db, "db.b"), vec![s(1, "b")]);
    // The round record names the waiting table and the file. (The checkpoint moves, still
    // below the file: a restart on an unchanged one stands on the settled mark and lists
    // nothing.)
    w.checkpoint(ts(11)).await;
    let mut r = ReplayerBuilder::sqlite(&w.uri, &db)
        .replayer()
        .await
        .unwrap();
    let RoundOutcome { record, error, .. } = r.round().await;
    assert!(error.is_none(), "{:?}", record.fatal);
    assert_warned(&record, |m| {
        m.contains("`db.a`") && m.contains(&second) && m.contains("in flight")
    });
    // Once the data file lands, the stream goes on.
    let mut w = w;
    let a = two_cols("db", "a", ts(1));
    let again = w.file(&a, &[(ts(20), vec![ins(2, "a")])]).await;
    // File 3 named, file 2 still missing: now damage below it. A round that reads an
    // unchanged checkpoint after a settled one is idle: the checkpoint moves, still below
    // both files, so the next round reads the index again.
    w.delete(&again).await;
    w.checkpoint(ts(12)).await;
    let RoundOutcome { error, .. } = r.round().await;
    let e = error.expect("a missing file below the newest named one is damage");
    assert!(e.to_string().contains(&second), "{e}");
}

#[tokio::test]
async fn a_missing_file_below_the_newest_is_damage_that_stops_only_its_table() {
    let (w, second) = a_missing_file("inflight-damage", 3).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    let health = std::sync::Arc::new(std::sync::Mutex::new(Default::default()));
    let e = ReplayerBuilder::sqlite(&w.uri, &db)
        .once()
        .health(health.clone())
        .run()
        .await
        .expect_err("damage is an error");
    assert!(
        e.to_string().contains("missing data file") && e.to_string().contains(&second),
        "{e}"
    );
    // The other table of the same round is applied all the same.
    assert_eq!(id_names(&db, "db.a"), vec![s(1, "a")]);
    assert_eq!(id_names(&db, "db.b"), vec![s(1, "b")]);
    let h: &cdc_consumer::freshness::Health = &health.lock().unwrap();
    let last = h.last_round.as_ref().unwrap();
    assert_warned(last, |m| m.contains("`db.a`") && m.contains("stuck"));
}

/// One column of every type TiCDC writes, with the `ColumnPrecision` / `ColumnScale` tiflow's
/// schema files carry for it (display widths, `DOUBLE` "22", `FLOAT` "12", text and blob
/// lengths) and no `ColumnElems` (tiflow writes none).
fn every_ticdc_type(schema: &str) -> cdc_common::TableDef {
    use ColumnType as T;
    let c = |name: &str, ty: T, p: Option<u32>, s: Option<u32>| {
        ColumnDef::new(name, ty).with_precision(p, s)
    };
    table(
        schema,
        "all_types",
        ts(1),
        vec![
            c("id", T::Int, Some(11), None).pk(),
            c("c_tinyint", T::TinyInt, Some(4), None),
            c("c_tinyint_u", T::TinyInt, Some(3), None).unsigned(),
            c("c_smallint", T::SmallInt, Some(6), None),
            c("c_mediumint", T::MediumInt, Some(9), None),
            c("c_int_u", T::Int, Some(10), None).unsigned(),
            c("c_bigint", T::BigInt, Some(20), None),
            c("c_bigint_u", T::BigInt, Some(20), None).unsigned(),
            c("c_decimal", T::Decimal, Some(65), Some(30)),
            c("c_float", T::Float, Some(12), None),
            c("c_double", T::Double, Some(22), None),
            c("c_double_ms", T::Double, Some(10), Some(3)),
            c("c_bit1", T::Bit, Some(1), None),
            c("c_bit64", T::Bit, Some(64), None),
            c("c_year", T::Year, Some(4), None),
            c("c_date", T::Date, None, None),
            c("c_time", T::Time, None, None),
            c("c_datetime6", T::DateTime, None, Some(6)),
            c("c_timestamp3", T::Timestamp, None, Some(3)),
            c("c_char", T::Char, Some(10), None),
            c("c_varchar", T::VarChar, Some(255), None),
            c("c_tinytext", T::TinyText, Some(255), None),
            c("c_text", T::Text, Some(65535), None),
            c("c_mediumtext", T::MediumText, Some(16777215), None),
            c("c_longtext", T::LongText, Some(4294967295), None),
            c("c_binary", T::Binary, Some(16), None),
            c("c_varbinary", T::VarBinary, Some(255), None),
            c("c_tinyblob", T::TinyBlob, Some(255), None),
            c("c_blob", T::Blob, Some(65535), None),
            c("c_mediumblob", T::MediumBlob, Some(16777215), None),
            c("c_longblob", T::LongBlob, Some(4294967295), None),
            c("c_enum", T::Enum, None, None),
            c("c_set", T::Set, None, None),
            c("c_json", T::Json, None, None),
        ],
    )
}

/// The tiflow table of every type is created on `down` and a row of it lands (`id` 1, every
/// other column NULL).
async fn every_type_creates_on(down: &str) {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let schema = format!("ticdc_types_{}_{}", std::process::id(), n % 1_000_000_000);
    let mut w = Writer::new(&format!(
        "memory://{schema}?protocol=csv&include-commit-ts=true"
    ));
    let t = every_ticdc_type(&schema);
    w.schema(&t, "", DdlKind::CreateTable).await;
    let mut row = vec![cdc_common::Value::Int(1)];
    row.resize(t.columns.len(), cdc_common::Value::Null);
    w.file(
        &t,
        &[(ts(2), vec![cdc_common::RowChange::Insert { after: row }])],
    )
    .await;
    w.checkpoint(ts(10)).await;
    ReplayerBuilder::new(&w.uri, down)
        .once()
        .run()
        .await
        .expect("every TiCDC column type has valid DDL");
    let uri = cdc_consumer::config::DownstreamUri::parse(down, None).unwrap();
    let mut d = cdc_consumer::backend::open(&uri, 1, cdc_consumer::backend::Access::ReadBack)
        .await
        .unwrap();
    let ids = d
        .read_rows(
            &TableName::new(&schema, "all_types"),
            &[ColumnDef::new("id", ColumnType::BigInt).pk()],
        )
        .await
        .unwrap();
    assert_eq!(ids, vec![vec![Some("1".to_string())]]);
}

#[tokio::test]
async fn every_ticdc_column_type_creates_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    every_type_creates_on(&format!("sqlite://{}", dir.path().join("out.db").display())).await;
}

#[tokio::test]
async fn every_ticdc_column_type_creates_on_postgres() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_POSTGRES_URI") else {
        return;
    };
    every_type_creates_on(&uri).await;
}

#[tokio::test]
async fn every_ticdc_column_type_creates_on_mariadb() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_MYSQL_URI") else {
        return;
    };
    every_type_creates_on(&uri).await;
}

/// `id INT PK, c_enum ENUM(...), c_set SET(...)` with the elements (`with`) or, as tiflow's
/// schema files have it, without.
fn enum_table(schema: &str, name: &str, with: bool) -> cdc_common::TableDef {
    let (mut e, mut s) = (
        ColumnDef::new("c_enum", ColumnType::Enum),
        ColumnDef::new("c_set", ColumnType::Set),
    );
    if with {
        e = e.with_elems(["small", "a,b", "x\"y", "中"]);
        s = s.with_elems(["a", "b", "c"]);
    }
    table(
        schema,
        name,
        ts(1),
        vec![ColumnDef::new("id", ColumnType::Int).pk(), e, s],
    )
}

const ENUM_QUERY: &str = "CREATE TABLE `t` (`id` INT PRIMARY KEY, `c_enum` \
                          ENUM('small','a,b','x\"y','中'), `c_set` SET('a','b','c'))";

/// Storage as tiflow writes it: schema files without `ColumnElems` (one with the defining
/// query, one without), data files holding ENUM/SET values (canal-json: index / bitmask).
async fn elemless_storage(protocol: &str, schema: &str) -> Writer {
    let mut w = Writer::new(&format!(
        "memory://{schema}-{protocol}?protocol={protocol}&include-commit-ts=true&enable-tidb-extension=true"
    ));
    for (name, query) in [("q", ENUM_QUERY), ("noq", "")] {
        w.schema(
            &enum_table(schema, name, false),
            query,
            DdlKind::CreateTable,
        )
        .await;
        let row = |id: i64, e: &str, s: &str| cdc_common::RowChange::Insert {
            after: vec![
                cdc_common::Value::Int(id),
                cdc_common::Value::String(e.into()),
                cdc_common::Value::String(s.into()),
            ],
        };
        let path = w
            .file(
                &enum_table(schema, name, true),
                &[(ts(2), vec![row(1, "a,b", "a,c"), row(2, "中", "")])],
            )
            .await;
        // tiflow's `mysqlType` names only `enum` / `set` (without content-compatible).
        if protocol == "canal-json" {
            let text = String::from_utf8(w.get(&path).await).unwrap();
            let mut out = String::new();
            for line in text.split_terminator("\r\n") {
                let mut m: serde_json::Value = serde_json::from_str(line).unwrap();
                m["mysqlType"]["c_enum"] = "enum".into();
                m["mysqlType"]["c_set"] = "set".into();
                out.push_str(&m.to_string());
                out.push_str("\r\n");
            }
            w.put(&path, out.into_bytes()).await;
        }
    }
    w.checkpoint(ts(10)).await;
    w
}

async fn enum_rows(down: &str, schema: &str, table: &str) -> Vec<Vec<Option<String>>> {
    let uri = cdc_consumer::config::DownstreamUri::parse(down, None).unwrap();
    let mut d = cdc_consumer::backend::open(&uri, 1, cdc_consumer::backend::Access::ReadBack)
        .await
        .unwrap();
    d.read_rows(
        &TableName::new(schema, table),
        &[
            ColumnDef::new("id", ColumnType::BigInt).pk(),
            ColumnDef::new("c_enum", ColumnType::Text),
            ColumnDef::new("c_set", ColumnType::Text),
        ],
    )
    .await
    .unwrap()
}

/// ENUM/SET elements come from the query; without them canal-json values land as the raw
/// index / bitmask with a warning naming table and column, and nothing stops.
async fn enum_and_set_without_elements_on(down: &str, schema: &str) {
    let some = |s: &str| Some(s.to_string());
    for protocol in ["canal-json", "csv"] {
        let schema = format!("{schema}_{}", protocol.replace('-', "_"));
        let w = elemless_storage(protocol, &schema).await;
        let health = std::sync::Arc::new(std::sync::Mutex::new(Default::default()));
        let mut r = ReplayerBuilder::new(&w.uri, down)
            .health(health)
            .replayer()
            .await
            .unwrap();
        let RoundOutcome { record, error, .. } = r.round().await;
        assert!(error.is_none(), "{protocol}: {:?}", record.fatal);
        ok_rounds(&mut r, 2).await;
        assert_eq!(
            enum_rows(down, &schema, "q").await,
            vec![
                vec![some("1"), some("a,b"), some("a,c")],
                vec![some("2"), some("中"), some("")]
            ],
            "{protocol}"
        );
        let raw = if protocol == "csv" {
            // csv carries the names themselves.
            vec![
                vec![some("1"), some("a,b"), some("a,c")],
                vec![some("2"), some("中"), some("")],
            ]
        } else {
            vec![
                vec![some("1"), some("2"), some("5")],
                vec![some("2"), some("4"), some("0")],
            ]
        };
        assert_eq!(enum_rows(down, &schema, "noq").await, raw, "{protocol}");
        for col in ["c_enum", "c_set"] {
            assert!(
                record
                    .warnings
                    .iter()
                    .any(|m| m.contains(&format!("`{schema}.noq` column `{col}`"))),
                "{protocol}: {:?}",
                record.warnings
            );
        }
        assert!(!record.warnings.iter().any(|m| m.contains(".q` column")));
    }
}

#[tokio::test]
async fn enum_and_set_without_elements_replay_into_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let down = format!("sqlite://{}", dir.path().join("out.db").display());
    enum_and_set_without_elements_on(&down, "enums").await;
}

#[tokio::test]
async fn enum_and_set_without_elements_replay_into_mariadb() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_MYSQL_URI") else {
        return;
    };
    let n = std::process::id();
    enum_and_set_without_elements_on(&uri, &format!("enums_{n}")).await;
}

#[tokio::test]
async fn enum_and_set_without_elements_replay_into_postgres() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_POSTGRES_URI") else {
        return;
    };
    let n = std::process::id();
    enum_and_set_without_elements_on(&uri, &format!("enums_{n}")).await;
}

/// The fourth source of ENUM/SET elements: a table that existed downstream before the
/// changefeed (loaded with dumpling or Lightning) declares them in MySQL/MariaDB, so tiflow's
/// canal-json index / bitmask (no `ColumnElems`, no query, `mysqlType` only `enum` / `set`)
/// lands as the names. The elements look like numbers on purpose: MySQL itself takes a
/// numeric string that names no element as an index, but `'2'` here names an element, so
/// only the recovered list maps index 2 to `'1'`.
#[tokio::test]
async fn enum_and_set_elements_come_from_the_existing_mariadb_table() {
    use mysql_async::prelude::Queryable;
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_MYSQL_URI") else {
        return;
    };
    let schema = format!("enums_down_{}", std::process::id());
    let def = |with: bool| {
        let (mut e, mut s) = (
            ColumnDef::new("c_enum", ColumnType::Enum),
            ColumnDef::new("c_set", ColumnType::Set),
        );
        if with {
            e = e.with_elems(["3", "1", "2"]);
            s = s.with_elems(["4", "1", "2"]);
        }
        table(
            &schema,
            "t",
            ts(1),
            vec![ColumnDef::new("id", ColumnType::Int).pk(), e, s],
        )
    };
    let mut w = Writer::new(&format!(
        "memory://{schema}?protocol=canal-json&include-commit-ts=true&enable-tidb-extension=true"
    ));
    w.schema(&def(false), "", DdlKind::CreateTable).await;
    let row = |id: i64, e: &str, s: &str| cdc_common::RowChange::Insert {
        after: vec![
            cdc_common::Value::Int(id),
            cdc_common::Value::String(e.into()),
            cdc_common::Value::String(s.into()),
        ],
    };
    let path = w
        .file(
            &def(true),
            &[(ts(2), vec![row(1, "1", "4,2"), row(2, "3", "1")])],
        )
        .await;
    // As tiflow writes it: the index / bitmask, and `mysqlType` naming only `enum` / `set`.
    let text = String::from_utf8(w.get(&path).await).unwrap();
    let mut out = String::new();
    for line in text.split_terminator("\r\n") {
        let mut m: serde_json::Value = serde_json::from_str(line).unwrap();
        m["mysqlType"]["c_enum"] = "enum".into();
        m["mysqlType"]["c_set"] = "set".into();
        out.push_str(&m.to_string());
        out.push_str("\r\n");
    }
    assert!(out.contains(r#""c_enum":"2""#), "index 2 is written: {out}");
    w.put(&path, out.into_bytes()).await;
    w.checkpoint(ts(10)).await;
    let mut c = mysql_async::Conn::from_url(uri.as_str()).await.unwrap();
    for sql in [
        format!("DROP DATABASE IF EXISTS `{schema}`"),
        format!("CREATE DATABASE `{schema}` CHARACTER SET utf8mb4"),
        format!(
            "CREATE TABLE `{schema}`.`t` (`id` INT PRIMARY KEY, \
             `c_enum` ENUM('3','1','2'), `c_set` SET('4','1','2'))"
        ),
    ] {
        c.query_drop(sql).await.unwrap();
    }
    let mut r = ReplayerBuilder::new(&w.uri, &uri).replayer().await.unwrap();
    let RoundOutcome { record, error, .. } = r.round().await;
    assert!(error.is_none(), "{:?}", record.fatal);
    // The downstream named the elements: no "unknown elements" warning.
    assert!(
        !record.warnings.iter().any(|m| m.contains("elements")),
        "{:?}",
        record.warnings
    );
    ok_rounds(&mut r, 2).await;
    let some = |s: &str| Some(s.to_string());
    assert_eq!(
        enum_rows(&uri, &schema, "t").await,
        vec![
            vec![some("1"), some("1"), some("4,2")],
            vec![some("2"), some("3"), some("1")]
        ]
    );
    c.query_drop(format!("DROP DATABASE `{schema}`"))
        .await
        .unwrap();
}

/// canal-json written with `content-compatible=true`: the option is accepted, `mysqlType`
/// carries the full ENUM/SET type (the schema file has no elements and no query), and an
/// UPDATE's `old` holds only the changed column.
#[tokio::test]
async fn content_compatible_canal_json_names_enum_and_set_from_mysql_type() {
    let mut w =
        Writer::new("memory://content-compat?protocol=canal-json&enable-tidb-extension=true");
    let t = enum_table("cc", "t", false);
    w.schema(&t, "", DdlKind::CreateTable).await;
    let path = w
        .file(
            &enum_table("cc", "t", true),
            &[(ts(2), vec![ins_enum(1, "small", "a")])],
        )
        .await;
    let head = r#""database":"cc","table":"t","pkNames":["id"],"isDdl":false"#;
    let types = r#""mysqlType":{"id":"int","c_enum":"enum('small','a,b','x\"y','中')","c_set":"set('a','b','c')"}"#;
    let tidb = |t: cdc_common::Ts| format!(r#""_tidb":{{"commitTs":{}}}"#, t.0);
    let lines = [
        format!(
            r#"{{"id":0,{head},"type":"INSERT",{types},"old":null,"data":[{{"id":"1","c_enum":"2","c_set":"5"}}],{}}}"#,
            tidb(ts(2))
        ),
        format!(
            r#"{{"id":0,{head},"type":"UPDATE",{types},"old":[{{"c_enum":"2"}}],"data":[{{"id":"1","c_enum":"4","c_set":"5"}}],{}}}"#,
            tidb(ts(3))
        ),
        format!(
            r#"{{"id":0,{head},"type":"INSERT",{types},"old":null,"data":[{{"id":"2","c_enum":"x\"y","c_set":"a,b"}}],{}}}"#,
            tidb(ts(3))
        ),
    ];
    w.put(&path, (lines.join("\r\n") + "\r\n").into_bytes())
        .await;
    w.checkpoint(ts(10)).await;
    let dir = tempfile::tempdir().unwrap();
    let down = format!("sqlite://{}", dir.path().join("out.db").display());
    ReplayerBuilder::new(&format!("{}&content-compatible=true", w.uri), &down)
        .once()
        .run()
        .await
        .unwrap();
    let some = |s: &str| Some(s.to_string());
    assert_eq!(
        enum_rows(&down, "cc", "t").await,
        vec![
            vec![some("1"), some("中"), some("a,c")],
            vec![some("2"), some("x\"y"), some("a,b")]
        ]
    );
}

fn ins_enum(id: i64, e: &str, s: &str) -> cdc_common::RowChange {
    cdc_common::RowChange::Insert {
        after: vec![
            cdc_common::Value::Int(id),
            cdc_common::Value::String(e.into()),
            cdc_common::Value::String(s.into()),
        ],
    }
}

/// One row of [`every_ticdc_type`] (with ENUM/SET elements) at the types' limits: text with
/// quotes, CR/LF and unicode, binary with every byte value, negative TIME.
fn limits_row(id: i64) -> Vec<cdc_common::Value> {
    use cdc_common::Value as V;
    let s = |x: &str| V::String(x.into());
    vec![
        V::Int(id),
        V::Int(-128),
        V::UInt(255),
        V::Int(-32768),
        V::Int(-8388608),
        V::UInt(4294967295),
        V::Int(i64::MIN),
        V::UInt(u64::MAX),
        V::Decimal("-12345678901234567890123456789012345.123456789012345678901234567890".into()),
        V::Float(3.25),
        V::Double(-1.5e300),
        V::Double(1234.5),
        V::UInt(1),
        V::UInt(u64::MAX),
        V::Int(2155),
        s("1000-01-01"),
        s("-838:59:59"),
        s("9999-12-31 23:59:59.999999"),
        s("2038-01-19 03:14:07.999"),
        s("a\"b'c"),
        s("line1\r\nline2,\"q\""),
        s("中文 ✓"),
        s("x"),
        s("medium"),
        s("long"),
        V::Bytes((0u8..16).collect()),
        V::Bytes((1u8..=255).collect()),
        V::Bytes(vec![0, 255]),
        V::Bytes((0u8..=255).rev().collect()),
        V::Bytes(b"\r\n\"".to_vec()),
        V::Bytes(vec![]),
        s("a,b"),
        s("a,c"),
        s(r#"{"k": [1, "v"]}"#),
    ]
}

/// Replays the limits row in `protocol` into `down` and returns every column as the
/// downstream's read-back text.
async fn limits_landed(protocol: &str, down: &str) -> Vec<Option<String>> {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let schema = format!("lim_{}_{}", std::process::id(), n % 1_000_000_000);
    let mut w = Writer::new(&format!(
        "memory://{schema}?protocol={protocol}&include-commit-ts=true&enable-tidb-extension=true"
    ));
    let mut t = every_ticdc_type(&schema);
    for c in &mut t.columns {
        match c.ty {
            ColumnType::Enum => c.elems = vec!["small".into(), "a,b".into()],
            ColumnType::Set => c.elems = vec!["a".into(), "b".into(), "c".into()],
            _ => {}
        }
    }
    w.schema(&t, "", DdlKind::CreateTable).await;
    w.file(
        &t,
        &[(
            ts(2),
            vec![cdc_common::RowChange::Insert {
                after: limits_row(1),
            }],
        )],
    )
    .await;
    w.checkpoint(ts(10)).await;
    ReplayerBuilder::new(&w.uri, down)
        .once()
        .run()
        .await
        .unwrap();
    let uri = cdc_consumer::config::DownstreamUri::parse(down, None).unwrap();
    let mut d = cdc_consumer::backend::open(&uri, 1, cdc_consumer::backend::Access::ReadBack)
        .await
        .unwrap();
    let mut rows = d
        .read_rows(&TableName::new(&schema, "all_types"), &t.columns)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    rows.remove(0)
}

/// The text each column of [`limits_row`] stands for, as every downstream's read-back gives
/// it (binary as lower-case hex).
fn limits_expected() -> Vec<Option<String>> {
    let hex = |b: Vec<u8>| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    [
        "1".to_string(),
        "-128".into(),
        "255".into(),
        "-32768".into(),
        "-8388608".into(),
        "4294967295".into(),
        i64::MIN.to_string(),
        u64::MAX.to_string(),
        "-12345678901234567890123456789012345.123456789012345678901234567890".into(),
        "3.25".into(),
        "-1.5e300".into(),
        "1234.5".into(),
        "1".into(),
        u64::MAX.to_string(),
        "2155".into(),
        "1000-01-01".into(),
        "-838:59:59".into(),
        "9999-12-31 23:59:59.999999".into(),
        "2038-01-19 03:14:07.999".into(),
        "a\"b'c".into(),
        "line1\r\nline2,\"q\"".into(),
        "中文 ✓".into(),
        "x".into(),
        "medium".into(),
        "long".into(),
        hex((0u8..16).collect()),
        hex((1u8..=255).collect()),
        hex(vec![0, 255]),
        hex((0u8..=255).rev().collect()),
        hex(b"\r\n\"".to_vec()),
        String::new(),
        "a,b".into(),
        "a,c".into(),
        r#"{"k": [1, "v"]}"#.into(),
    ]
    .into_iter()
    .map(Some)
    .collect()
}

async fn every_type_at_its_limits_on(down: &str) {
    let cols = every_ticdc_type("x").columns;
    for protocol in ["csv", "canal-json"] {
        let got = limits_landed(protocol, down).await;
        let want = limits_expected();
        let diff: Vec<String> = cols
            .iter()
            .zip(got.iter().zip(&want))
            .filter(|(c, (g, w))| !same_value(c, g, w))
            .map(|(c, (g, w))| format!("{}: got {g:?}, want {w:?}", c.name))
            .collect();
        assert!(
            diff.is_empty(),
            "{protocol} on {down}:\n{}",
            diff.join("\n")
        );
    }
}

#[tokio::test]
async fn every_type_at_its_limits_lands_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    every_type_at_its_limits_on(&format!("sqlite://{}", dir.path().join("out.db").display())).await;
}

#[tokio::test]
async fn every_type_at_its_limits_lands_in_postgres() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_POSTGRES_URI") else {
        return;
    };
    every_type_at_its_limits_on(&uri).await;
}

#[tokio::test]
async fn every_type_at_its_limits_lands_in_mariadb() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_MYSQL_URI") else {
        return;
    };
    every_type_at_its_limits_on(&uri).await;
}

/// TiCDC's storage layer writes a small object (a schema file, an index file, a data file when
/// `flush-concurrency` is 1) to a local directory as `<name>.tmp`, then renames it: a listing
/// can catch the staging name. The consumer passes over it, in the first round's recursive
/// listing and in later rounds' `meta/` listings, and reads the object once it has its name.
#[tokio::test]
async fn staging_names_of_ticdc_local_writes_are_passed_over() {
    let uri = "memory://ticdc-staging?protocol=csv&include-commit-ts=true&date-separator=day";
    let mut w = Writer::new(uri);
    let t = two_cols("db", "t", ts(1));
    let schema = w.schema(&t, "", DdlKind::CreateTable).await;
    let data = w.file(&t, &[(ts(2), vec![ins(1, "a")])]).await;
    w.checkpoint(ts(10)).await;
    // caught mid-write: a data file, an index file and the next version's schema file
    let meta = format!("{}/", schema.rsplit_once('/').unwrap().0);
    let data_meta = format!("{}/meta/", data.rsplit_once('/').unwrap().0);
    w.put(&format!("{data}.tmp"), b"id".to_vec()).await;
    w.put(&format!("{data_meta}CDC.index.tmp"), b"CDC".to_vec())
        .await;
    w.put(
        &format!("{meta}schema_445644800262144000_0000000000.json.tmp"),
        b"{".to_vec(),
    )
    .await;
    let (_dir, db, mut r) = sqlite_replayer(&w.uri).await;
    ok_rounds(&mut r, 3).await;
    assert_eq!(id_names(&db, "db.t"), vec![s(1, "a")]);
    w.file(&t, &[(ts(11), vec![ins(2, "b")])]).await;
    w.checkpoint(ts(20)).await;
    ok_rounds(&mut r, 3).await;
    assert_eq!(id_names(&db, "db.t"), vec![s(1, "a"), s(2, "b")]);
}
