//! Storage as TiCDC writes it, built by hand from the format rules (not with our encoder): the
//! brief's `schema1.table1` schema file at version 100, csv and canal-json data files, TiCDC's
//! index files (file name without a trailing newline) and `metadata`.

use cdc_common::{ColumnDef, ColumnType, TableName};
use cdc_consumer::backend::{self, Access};
use cdc_consumer::config::DownstreamUri;

use crate::support;

use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use support::ReplayerBuilder;

const SCHEMA_PATH: &str = "schema1/table1/meta/schema_100_3752767265.json";
const SCHEMA_JSON: &str = r#"{
    "Table": "table1",
    "Schema": "schema1",
    "Version": 1,
    "TableVersion": 100,
    "Query": "",
    "Type": 3,
    "TableColumns": [
        {
            "ColumnName": "Id",
            "ColumnType": "INT",
            "ColumnDefault": 10,
            "ColumnPrecision": "11",
            "ColumnNullable": "false",
            "ColumnIsPk": "true"
        },
        {
            "ColumnName": "LastName",
            "ColumnType": "VARCHAR",
            "ColumnDefault": "Default LastName",
            "ColumnPrecision": "128",
            "ColumnNullable": "false"
        },
        {
            "ColumnName": "FirstName",
            "ColumnType": "VARCHAR",
            "ColumnDefault": "Default FirstName",
            "ColumnPrecision": "64"
        },
        {
            "ColumnName": "Birthday",
            "ColumnType": "DATETIME",
            "ColumnDefault": 12345678
        }
    ],
    "TableColumnsTotal": 4
}"#;
/// 2022-11-13 UTC.
const TS1: u64 = 437345364441890818;
const TS2: u64 = 437345364441890900;
const CHECKPOINT: u64 = 437345400000000000;
const DIR: &str = "schema1/table1/100/2022-11-13";

async fn put(uri: &str, path: &str, text: &str) {
    let (s, _) = cdc_common::storage::StorageUri::parse(uri).unwrap();
    s.build()
        .unwrap()
        .put(
            &Path::parse(path).unwrap(),
            PutPayload::from(text.as_bytes().to_vec()),
        )
        .await
        .unwrap();
}

async fn replay_rows(uri: &str) -> Vec<(i64, String, Option<String>, Option<String>)> {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    ReplayerBuilder::sqlite(uri, &db)
        .once()
        .run()
        .await
        .unwrap();
    let cols = [
        ColumnDef::new("Id", ColumnType::BigInt).pk(),
        ColumnDef::new("LastName", ColumnType::Text),
        ColumnDef::new("FirstName", ColumnType::Text),
        ColumnDef::new("Birthday", ColumnType::Text),
    ];
    let mut d = backend::open(&DownstreamUri::Sqlite(db.clone()), 1, Access::ReadBack)
        .await
        .unwrap();
    d.read_rows(&TableName::new("schema1", "table1"), &cols)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            let id = r[0].as_deref().unwrap().parse().unwrap();
            (id, r[1].clone().unwrap(), r[2].clone(), r[3].clone())
        })
        .collect()
}

fn expected() -> Vec<(i64, String, Option<String>, Option<String>)> {
    vec![
        (
            1,
            "Smith".into(),
            Some("Johnny".into()),
            Some("2001-02-03 04:05:06".into()),
        ),
        (3, "Doe, Jr.".into(), None, None),
    ]
}

#[tokio::test]
async fn replays_ticdc_csv_storage() {
    let uri = "memory://ticdc-csv?protocol=csv&include-commit-ts=true";
    put(uri, SCHEMA_PATH, SCHEMA_JSON).await;
    let data = format!(
        "\"I\",\"table1\",\"schema1\",{TS1},1,\"Smith\",\"John\",\"2001-02-03 04:05:06\"\r\n\
         \"I\",\"table1\",\"schema1\",{TS1},2,\"Roe\",\"Jane\",\\N\r\n\
         \"I\",\"table1\",\"schema1\",{TS1},3,\"Doe, Jr.\",\\N,\\N\r\n"
    );
    put(uri, &format!("{DIR}/CDC00000000000000000001.csv"), &data).await;
    let data = format!(
        "\"U\",\"table1\",\"schema1\",{TS2},1,\"Smith\",\"Johnny\",\"2001-02-03 04:05:06\"\r\n\
         \"D\",\"table1\",\"schema1\",{TS2},2,\"Roe\",\"Jane\",\\N\r\n"
    );
    put(uri, &format!("{DIR}/CDC00000000000000000002.csv"), &data).await;
    put(
        uri,
        &format!("{DIR}/meta/CDC.index"),
        "CDC00000000000000000002.csv",
    )
    .await;
    put(
        uri,
        "metadata",
        &format!("{{\"checkpoint-ts\":{CHECKPOINT}}}"),
    )
    .await;
    assert_eq!(replay_rows(uri).await, expected());
}

#[tokio::test]
async fn replays_ticdc_canal_json_storage() {
    let uri = "memory://ticdc-canal?protocol=canal-json&enable-tidb-extension=true";
    put(uri, SCHEMA_PATH, SCHEMA_JSON).await;
    let head = r#""database":"schema1","table":"table1","pkNames":["Id"],"isDdl":false"#;
    let types = r#""sqlType":{"Id":4,"LastName":12,"FirstName":12,"Birthday":93},"mysqlType":{"Id":"int","LastName":"varchar","FirstName":"varchar","Birthday":"datetime"}"#;
    let line = |ty: &str, data: &str, old: &str, ts: u64| {
        format!(
            "{{\"id\":0,{head},\"type\":\"{ty}\",\"es\":1668340165870,\"ts\":1668340166000,\"sql\":\"\",{types},\"old\":{old},\"data\":[{data}],\"_tidb\":{{\"commitTs\":{ts}}}}}\r\n"
        )
    };
    let data = [
        line(
            "INSERT",
            r#"{"Id":"1","LastName":"Smith","FirstName":"John","Birthday":"2001-02-03 04:05:06"}"#,
            "null",
            TS1,
        ),
        line(
            "INSERT",
            r#"{"Id":"2","LastName":"Roe","FirstName":"Jane","Birthday":null}"#,
            "null",
            TS1,
        ),
        line(
            "INSERT",
            r#"{"Id":"3","LastName":"Doe, Jr.","FirstName":null,"Birthday":null}"#,
            "null",
            TS1,
        ),
    ]
    .concat();
    put(uri, &format!("{DIR}/CDC00000000000000000001.json"), &data).await;
    let data = [
        line(
            "UPDATE",
            r#"{"Id":"1","LastName":"Smith","FirstName":"Johnny","Birthday":"2001-02-03 04:05:06"}"#,
            r#"[{"Id":"1","LastName":"Smith","FirstName":"John","Birthday":"2001-02-03 04:05:06"}]"#,
            TS2,
        ),
        line(
            "DELETE",
            r#"{"Id":"2","LastName":"Roe","FirstName":"Jane","Birthday":null}"#,
            "null",
            TS2,
        ),
    ]
    .concat();
    put(uri, &format!("{DIR}/CDC00000000000000000002.json"), &data).await;
    put(
        uri,
        &format!("{DIR}/meta/CDC.index"),
        "CDC00000000000000000002.json",
    )
    .await;
    put(
        uri,
        "metadata",
        &format!("{{\"checkpoint-ts\":{CHECKPOINT}}}"),
    )
    .await;
    assert_eq!(replay_rows(uri).await, expected());
}
