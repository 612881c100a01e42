//! Every MySQL column type TiCDC writes, in storage written by hand from TiCDC's format rules
//! (not with this project's encoder): csv and canal-json, each in the tiflow form (v6.5.3 to
//! v8.5: schema files without `ColumnElems`, so ENUM/SET elements come from the schema file's
//! `Query`) and the new-TiCDC form (schema files with `ColumnElems`), replayed into SQLite,
//! PostgreSQL and MariaDB, every value checked against what TiCDC's text stands for.
//!
//! The rules the text follows (TiCDC's csv and canal-json encoders):
//! - csv: strings, DECIMAL, dates and times, ENUM/SET names and JSON quoted with `"` (a quote
//!   inside doubled, CR/LF kept), integers, BIT, YEAR and floats bare (floats in plain decimal
//!   notation, never an exponent), binary as base64, NULL as a bare `\N`; with
//!   `include-commit-ts` the commit ts follows the operation, table and schema.
//! - canal-json: one JSON object per row change and line; every value a JSON string (NULL as
//!   `null`), binary as one ISO-8859-1 character per byte, ENUM as its 1-based index, SET as its
//!   bitmask, BIT as the unsigned number; `mysqlType` names the type without lengths (`enum`,
//!   `set`); the commit ts in `_tidb.commitTs` (`enable-tidb-extension=true`).

use crate::support;

use cdc_common::schema_file::SchemaFile;
use cdc_common::TableName;
use cdc_consumer::backend::{self, Access};
use cdc_consumer::config::DownstreamUri;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use support::ReplayerBuilder;

/// A TSO at `ms` milliseconds after the epoch, logical part `logical`.
const fn tso(ms: u64, logical: u64) -> u64 {
    (ms << 18) + logical
}
/// 2024-06-01 00:00:00 UTC.
const DAY_MS: u64 = 1_717_200_000_000;
const VERSION: u64 = tso(DAY_MS + 1_000, 0);
const TS_INSERT: u64 = tso(DAY_MS + 2_000, 1);
const TS_UPDATE: u64 = tso(DAY_MS + 3_000, 1);
const CHECKPOINT: u64 = tso(DAY_MS + 60_000, 0);
const DATE: &str = "2024-06-01";

/// One column: its DDL, its schema file entry, its canal-json type codes.
struct Col {
    name: &'static str,
    /// In the CREATE TABLE of the schema file's `Query`.
    ddl: &'static str,
    /// The schema file's `ColumnType`, `ColumnPrecision`, `ColumnScale`.
    ty: &'static str,
    precision: Option<&'static str>,
    scale: Option<&'static str>,
    /// `ColumnElems` in the new-TiCDC form.
    elems: &'static [&'static str],
    /// canal-json `sqlType` and `mysqlType`.
    sql_type: i32,
    mysql_type: &'static str,
}

const fn col(
    name: &'static str,
    ddl: &'static str,
    ty: &'static str,
    precision: Option<&'static str>,
    scale: Option<&'static str>,
    sql_type: i32,
    mysql_type: &'static str,
) -> Col {
    Col {
        name,
        ddl,
        ty,
        precision,
        scale,
        elems: &[],
        sql_type,
        mysql_type,
    }
}

const ENUM_ELEMS: &[&str] = &["small", "a,b", "x\"y", "中"];
const SET_ELEMS: &[&str] = &["a", "b", "c"];

fn columns() -> Vec<Col> {
    vec![
        col("id", "INT", "INT", Some("11"), None, 4, "int"),
        col(
            "c_tinyint",
            "TINYINT",
            "TINYINT",
            Some("4"),
            None,
            -6,
            "tinyint",
        ),
        col(
            "c_tinyint_u",
            "TINYINT UNSIGNED",
            "TINYINT UNSIGNED",
            Some("3"),
            None,
            5,
            "tinyint unsigned",
        ),
        col(
            "c_smallint",
            "SMALLINT",
            "SMALLINT",
            Some("6"),
            None,
            5,
            "smallint",
        ),
        col(
            "c_smallint_u",
            "SMALLINT UNSIGNED",
            "SMALLINT UNSIGNED",
            Some("5"),
            None,
            4,
            "smallint unsigned",
        ),
        col(
            "c_mediumint",
            "MEDIUMINT",
            "MEDIUMINT",
            Some("9"),
            None,
            4,
            "mediumint",
        ),
        col(
            "c_mediumint_u",
            "MEDIUMINT UNSIGNED",
            "MEDIUMINT UNSIGNED",
            Some("8"),
            None,
            4,
            "mediumint unsigned",
        ),
        col("c_int", "INT", "INT", Some("11"), None, 4, "int"),
        col(
            "c_int_u",
            "INT UNSIGNED",
            "INT UNSIGNED",
            Some("10"),
            None,
            -5,
            "int unsigned",
        ),
        col(
            "c_bigint",
            "BIGINT",
            "BIGINT",
            Some("20"),
            None,
            -5,
            "bigint",
        ),
        col(
            "c_bigint_u",
            "BIGINT UNSIGNED",
            "BIGINT UNSIGNED",
            Some("20"),
            None,
            3,
            "bigint unsigned",
        ),
        col(
            "c_decimal",
            "DECIMAL(65,30)",
            "DECIMAL",
            Some("65"),
            Some("30"),
            3,
            "decimal",
        ),
        col("c_float", "FLOAT", "FLOAT", Some("12"), None, 7, "float"),
        col(
            "c_double",
            "DOUBLE",
            "DOUBLE",
            Some("22"),
            None,
            8,
            "double",
        ),
        col("c_bit1", "BIT(1)", "BIT", Some("1"), None, -7, "bit"),
        col("c_bit64", "BIT(64)", "BIT", Some("64"), None, -7, "bit"),
        col("c_year", "YEAR", "YEAR", Some("4"), None, 12, "year"),
        col("c_date", "DATE", "DATE", None, None, 91, "date"),
        col("c_time", "TIME", "TIME", None, None, 92, "time"),
        col(
            "c_datetime6",
            "DATETIME(6)",
            "DATETIME",
            None,
            Some("6"),
            93,
            "datetime",
        ),
        col(
            "c_timestamp3",
            "TIMESTAMP(3) NULL",
            "TIMESTAMP",
            None,
            Some("3"),
            93,
            "timestamp",
        ),
        col("c_char", "CHAR(10)", "CHAR", Some("10"), None, 1, "char"),
        col(
            "c_varchar",
            "VARCHAR(255)",
            "VARCHAR",
            Some("255"),
            None,
            12,
            "varchar",
        ),
        col("c_text", "TEXT", "TEXT", Some("65535"), None, 2005, "text"),
        col(
            "c_binary",
            "BINARY(16)",
            "BINARY",
            Some("16"),
            None,
            2004,
            "binary",
        ),
        col(
            "c_varbinary",
            "VARBINARY(255)",
            "VARBINARY",
            Some("255"),
            None,
            2004,
            "varbinary",
        ),
        col("c_blob", "BLOB", "BLOB", Some("65535"), None, 2004, "blob"),
        Col {
            elems: ENUM_ELEMS,
            ..col(
                "c_enum",
                "ENUM('small','a,b','x\"y','中')",
                "ENUM",
                None,
                None,
                4,
                "enum",
            )
        },
        Col {
            elems: SET_ELEMS,
            ..col("c_set", "SET('a','b','c')", "SET", None, None, -7, "set")
        },
        col("c_json", "JSON", "JSON", None, None, 12, "json"),
    ]
}

/// One value: its csv text, its canal-json value (a JSON literal), and the text the
/// downstream's read-back gives for it (binary as lower-case hex). `None` everywhere is NULL.
#[derive(Clone)]
struct V {
    csv: String,
    json: String,
    want: Option<String>,
}

fn null() -> V {
    V {
        csv: "\\N".into(),
        json: "null".into(),
        want: None,
    }
}

/// A bare number in csv (integers, BIT, YEAR, floats).
fn num(text: &str, want: &str) -> V {
    V {
        csv: text.into(),
        json: serde_json::to_string(text).unwrap(),
        want: Some(want.into()),
    }
}

/// A quoted string in csv, a JSON string in canal-json.
fn text(s: &str) -> V {
    V {
        csv: format!("\"{}\"", s.replace('"', "\"\"")),
        json: serde_json::to_string(s).unwrap(),
        want: Some(s.into()),
    }
}

/// Binary: base64 in csv, one ISO-8859-1 character per byte in canal-json.
fn bin(b: &[u8]) -> V {
    let latin1: String = b.iter().map(|&x| char::from(x)).collect();
    V {
        csv: format!("\"{}\"", base64(b)),
        json: serde_json::to_string(&latin1).unwrap(),
        want: Some(b.iter().map(|x| format!("{x:02x}")).collect()),
    }
}

/// ENUM: the name in csv, the 1-based index in canal-json.
fn enum_v(index: usize) -> V {
    V {
        json: format!("\"{index}\""),
        ..text(ENUM_ELEMS[index - 1])
    }
}

/// SET: the names in csv, the bitmask in canal-json.
fn set_v(mask: u64) -> V {
    let names: Vec<&str> = SET_ELEMS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect();
    V {
        json: format!("\"{mask}\""),
        ..text(&names.join(","))
    }
}

/// RFC 4648 base64 with padding (TiCDC's csv `binary-encoding-method=base64`, the default).
fn base64(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, x)| n | (u32::from(*x) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The rows, in column order: the largest values, the smallest, and all NULL.
fn rows() -> Vec<Vec<V>> {
    let max = vec![
        num("1", "1"),
        num("127", "127"),
        num("255", "255"),
        num("32767", "32767"),
        num("65535", "65535"),
        num("8388607", "8388607"),
        num("16777215", "16777215"),
        num("2147483647", "2147483647"),
        num("4294967295", "4294967295"),
        num("9223372036854775807", "9223372036854775807"),
        num("18446744073709551615", "18446744073709551615"),
        text("99999999999999999999999999999999999.999999999999999999999999999999"),
        num("3.25", "3.25"),
        num(&format!("15{}", "0".repeat(299)), "1.5e300"),
        num("1", "1"),
        num("18446744073709551615", "18446744073709551615"),
        num("2155", "2155"),
        text("9999-12-31"),
        text("838:59:59"),
        text("9999-12-31 23:59:59.999999"),
        text("2038-01-19 03:14:07.999"),
        text("a\"b'c"),
        text("line1\r\nline2,\"q\" \\N"),
        text("中文 ✓ tab\tback\\slash"),
        bin(&(0u8..16).collect::<Vec<_>>()),
        bin(&(1u8..=255).rev().collect::<Vec<_>>()),
        bin(&(0u8..=255).collect::<Vec<_>>()),
        enum_v(3),
        set_v(5),
        text(r#"{"k": [1, "v"], "u": "中"}"#),
    ];
    let min = vec![
        num("2", "2"),
        num("-128", "-128"),
        num("0", "0"),
        num("-32768", "-32768"),
        num("0", "0"),
        num("-8388608", "-8388608"),
        num("0", "0"),
        num("-2147483648", "-2147483648"),
        num("0", "0"),
        num("-9223372036854775808", "-9223372036854775808"),
        num("0", "0"),
        text("-99999999999999999999999999999999999.999999999999999999999999999999"),
        num("-0.5", "-0.5"),
        num("-0.00000000025", "-2.5e-10"),
        num("0", "0"),
        num("0", "0"),
        num("1901", "1901"),
        text("1000-01-01"),
        text("-838:59:59"),
        text("1000-01-01 00:00:00.000001"),
        text("1970-01-01 00:00:01.001"),
        text(""),
        text("中"),
        text(""),
        bin(&[0xff; 16]),
        bin(&[]),
        bin(b"\r\n\",\\"),
        enum_v(1),
        set_v(0),
        text("[]"),
    ];
    let mut nulls = vec![num("3", "3")];
    nulls.resize(max.len(), null());
    vec![max, min, nulls]
}

/// The update: row 3's `c_varchar` set, everything else still NULL.
fn updated_row3() -> Vec<V> {
    let mut r = rows().remove(2);
    r[22] = text("updated");
    r
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Form {
    /// tiflow (v6.5.3 to v8.5): no `ColumnElems`.
    Tiflow,
    /// new TiCDC: `ColumnElems` for ENUM/SET.
    NewTicdc,
}

/// The schema file's JSON (Go `json.MarshalIndent` layout) for `schema`.`all_types`.
fn schema_json(schema: &str, form: Form) -> String {
    let cols = columns();
    let ddl: Vec<String> = cols
        .iter()
        .map(|c| {
            let pk = if c.name == "id" { " PRIMARY KEY" } else { "" };
            format!("`{}` {}{pk}", c.name, c.ddl)
        })
        .collect();
    let query = format!("CREATE TABLE `all_types` ({})", ddl.join(", "));
    let entries: Vec<String> = cols
        .iter()
        .map(|c| {
            let mut fields = vec![
                format!("\"ColumnName\": {}", serde_json::to_string(c.name).unwrap()),
                format!("\"ColumnType\": \"{}\"", c.ty),
            ];
            if let Some(p) = c.precision {
                fields.push(format!("\"ColumnPrecision\": \"{p}\""));
            }
            if let Some(s) = c.scale {
                fields.push(format!("\"ColumnScale\": \"{s}\""));
            }
            if c.name == "id" {
                fields.push("\"ColumnNullable\": \"false\"".into());
                fields.push("\"ColumnIsPk\": \"true\"".into());
            }
            if form == Form::NewTicdc && !c.elems.is_empty() {
                fields.push(format!(
                    "\"ColumnElems\": {}",
                    serde_json::to_string(c.elems).unwrap()
                ));
            }
            format!(
                "        {{\n            {}\n        }}",
                fields.join(",\n            ")
            )
        })
        .collect();
    format!(
        "{{\n    \"Table\": \"all_types\",\n    \"Schema\": \"{schema}\",\n    \"Version\": 1,\n    \"TableVersion\": {VERSION},\n    \"Query\": {},\n    \"Type\": 3,\n    \"TableColumns\": [\n{}\n    ],\n    \"TableColumnsTotal\": {}\n}}",
        serde_json::to_string(&query).unwrap(),
        entries.join(",\n"),
        cols.len()
    )
}

fn csv_line(op: &str, schema: &str, ts: u64, row: &[V]) -> String {
    let vals: Vec<&str> = row.iter().map(|v| v.csv.as_str()).collect();
    format!(
        "\"{op}\",\"all_types\",\"{schema}\",{ts},{}\r\n",
        vals.join(",")
    )
}

fn canal_line(ty: &str, schema: &str, ts: u64, row: &[V], old: Option<&[V]>) -> String {
    let cols = columns();
    let obj = |row: &[V]| {
        let f: Vec<String> = cols
            .iter()
            .zip(row)
            .map(|(c, v)| format!("{}:{}", serde_json::to_string(c.name).unwrap(), v.json))
            .collect();
        format!("{{{}}}", f.join(","))
    };
    let sql_type: Vec<String> = cols
        .iter()
        .map(|c| format!("\"{}\":{}", c.name, c.sql_type))
        .collect();
    let mysql_type: Vec<String> = cols
        .iter()
        .map(|c| format!("\"{}\":\"{}\"", c.name, c.mysql_type))
        .collect();
    let old = match old {
        Some(o) => format!("[{}]", obj(o)),
        None => "null".into(),
    };
    let ms = ts >> 18;
    format!(
        "{{\"id\":0,\"database\":\"{schema}\",\"table\":\"all_types\",\"pkNames\":[\"id\"],\"isDdl\":false,\"type\":\"{ty}\",\"es\":{ms},\"ts\":{},\"sql\":\"\",\"sqlType\":{{{}}},\"mysqlType\":{{{}}},\"old\":{old},\"data\":[{}],\"_tidb\":{{\"commitTs\":{ts}}}}}\r\n",
        ms + 5,
        sql_type.join(","),
        mysql_type.join(","),
        obj(row)
    )
}

async fn put(uri: &str, path: &str, bytes: Vec<u8>) {
    let (s, _) = cdc_common::storage::StorageUri::parse(uri).unwrap();
    s.build()
        .unwrap()
        .put(&Path::parse(path).unwrap(), PutPayload::from(bytes))
        .await
        .unwrap();
}

/// Writes the storage for `protocol` in `form` under a fresh schema name; returns the consumer
/// URI and the schema.
async fn storage(protocol: &str, form: Form) -> (String, String) {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let tag = if form == Form::Tiflow { "tf" } else { "nt" };
    let p = if protocol == "csv" { "csv" } else { "cj" };
    let schema = format!("all_{tag}_{p}_{}_{}", std::process::id(), n % 1_000_000_000);
    let uri = match protocol {
        "csv" => {
            format!("memory://{schema}?protocol=csv&include-commit-ts=true&date-separator=day")
        }
        _ => format!(
            "memory://{schema}?protocol=canal-json&enable-tidb-extension=true&date-separator=day"
        ),
    };
    let json = schema_json(&schema, form);
    let parsed = SchemaFile::parse("fixture", json.as_bytes()).expect("the fixture schema file");
    put(
        &uri,
        &format!(
            "{schema}/all_types/meta/schema_{VERSION}_{:010}.json",
            parsed.checksum()
        ),
        json.into_bytes(),
    )
    .await;
    let dir = format!("{schema}/all_types/{VERSION}/{DATE}");
    let rows = rows();
    let (ext, first, second) = if protocol == "csv" {
        let first: String = rows
            .iter()
            .map(|r| csv_line("I", &schema, TS_INSERT, r))
            .collect();
        (
            "csv",
            first,
            csv_line("U", &schema, TS_UPDATE, &updated_row3()),
        )
    } else {
        let first: String = rows
            .iter()
            .map(|r| canal_line("INSERT", &schema, TS_INSERT, r, None))
            .collect();
        (
            "json",
            first,
            canal_line(
                "UPDATE",
                &schema,
                TS_UPDATE,
                &updated_row3(),
                Some(&rows[2]),
            ),
        )
    };
    put(
        &uri,
        &format!("{dir}/CDC00000000000000000001.{ext}"),
        first.into_bytes(),
    )
    .await;
    put(
        &uri,
        &format!("{dir}/CDC00000000000000000002.{ext}"),
        second.into_bytes(),
    )
    .await;
    put(
        &uri,
        &format!("{dir}/meta/CDC.index"),
        format!("CDC00000000000000000002.{ext}").into_bytes(),
    )
    .await;
    put(
        &uri,
        "metadata",
        format!("{{\"checkpoint-ts\":{CHECKPOINT}}}").into_bytes(),
    )
    .await;
    (uri, schema)
}

/// Replays every protocol and form into `down` and checks every value of every row.
async fn every_type_from_ticdc_text_into(down: &str) {
    let mut diffs = Vec::new();
    for protocol in ["csv", "canal-json"] {
        for form in [Form::Tiflow, Form::NewTicdc] {
            let (uri, schema) = storage(protocol, form).await;
            ReplayerBuilder::new(&uri, down)
                .once()
                .run()
                .await
                .unwrap_or_else(|e| panic!("{protocol} {form:?} into {down}: {e}"));
            let cols = SchemaFile::parse("fixture", schema_json(&schema, form).as_bytes())
                .unwrap()
                .columns;
            let d_uri = DownstreamUri::parse(down, None).unwrap();
            let mut d = backend::open(&d_uri, 1, Access::ReadBack).await.unwrap();
            let got = d
                .read_rows(&TableName::new(&schema, "all_types"), &cols)
                .await
                .unwrap();
            let mut want = rows();
            want[2] = updated_row3();
            assert_eq!(got.len(), want.len(), "{protocol} {form:?}: rows");
            for (r, (g, w)) in got.iter().zip(&want).enumerate() {
                for (c, (gv, wv)) in cols.iter().zip(g.iter().zip(w)) {
                    if !support::same_value(c, gv, &wv.want) {
                        diffs.push(format!(
                            "{protocol} {form:?} row {} {}: got {gv:?}, want {:?}",
                            r + 1,
                            c.name,
                            wv.want
                        ));
                    }
                }
            }
        }
    }
    assert!(diffs.is_empty(), "into {down}:\n{}", diffs.join("\n"));
}

#[test]
fn the_hand_written_base64_is_rfc_4648() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    assert_eq!(base64(&[0xff, 0xfe]), "//4=");
}

#[tokio::test]
async fn every_ticdc_type_from_hand_written_storage_lands_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    every_type_from_ticdc_text_into(&format!("sqlite://{}", dir.path().join("out.db").display()))
        .await;
}

#[tokio::test]
async fn every_ticdc_type_from_hand_written_storage_lands_in_postgres() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_POSTGRES_URI") else {
        return;
    };
    every_type_from_ticdc_text_into(&uri).await;
}

#[tokio::test]
async fn every_ticdc_type_from_hand_written_storage_lands_in_mariadb() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_MYSQL_URI") else {
        return;
    };
    every_type_from_ticdc_text_into(&uri).await;
}
