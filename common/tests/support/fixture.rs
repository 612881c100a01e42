//! The table and events every golden file pins: every column type, NULLs, extreme numbers,
//! and strings with delimiters, quotes, CR/LF and non-ASCII text.
use cdc_common::codec::{codec_for, TableCodec};
use cdc_common::{
    ColumnDef, ColumnType, DmlEvent, Protocol, RowChange, SinkOptions, TableDef, Ts, Value,
};
use std::sync::Arc;

/// `db`.`every type` at version 1700000000000 << 18.
pub fn table() -> TableDef {
    use ColumnType::*;
    TableDef {
        schema: "db".into(),
        table: "every type".into(),
        table_id: 42,
        version: Ts::from_parts(1_700_000_000_000, 0),
        columns: vec![
            ColumnDef::new("id", Int)
                .pk()
                .with_precision(Some(11), None),
            ColumnDef::new("c_tinyint", TinyInt),
            ColumnDef::new("c_smallint", SmallInt),
            ColumnDef::new("c_mediumint", MediumInt),
            ColumnDef::new("c_int", Int),
            ColumnDef::new("c_bigint", BigInt),
            ColumnDef::new("c_utinyint", TinyInt).unsigned(),
            ColumnDef::new("c_usmallint", SmallInt).unsigned(),
            ColumnDef::new("c_umediumint", MediumInt).unsigned(),
            ColumnDef::new("c_uint", Int).unsigned(),
            ColumnDef::new("c_ubigint", BigInt).unsigned(),
            ColumnDef::new("c_decimal", Decimal).with_precision(Some(10), Some(2)),
            ColumnDef::new("c_float", Float),
            ColumnDef::new("c_double", Double),
            ColumnDef::new("c_varchar", VarChar).with_precision(Some(64), None),
            ColumnDef::new("c_char", Char).with_precision(Some(8), None),
            ColumnDef::new("c_text", Text),
            ColumnDef::new("c_binary", Binary).with_precision(Some(4), None),
            ColumnDef::new("c_blob", Blob),
            ColumnDef::new("c_date", Date),
            ColumnDef::new("c_time", Time).with_precision(None, Some(3)),
            ColumnDef::new("c_datetime", DateTime).with_precision(None, Some(6)),
            ColumnDef::new("c_timestamp", Timestamp),
            ColumnDef::new("c_year", Year),
            ColumnDef::new("c_enum", Enum).with_elems(["a", "b,c", "d"]),
            ColumnDef::new("c_set", Set).with_elems(["x", "y", "z"]),
            ColumnDef::new("c_json", Json),
            ColumnDef::new("c_bit", Bit).with_precision(Some(10), None),
            ColumnDef::new("odd name-é", VarChar),
        ],
    }
}

fn s(v: &str) -> Value {
    Value::String(v.into())
}

/// A row with every column set; `id` and a few values vary with `id`.
pub fn full_row(id: i64) -> Vec<Value> {
    vec![
        Value::Int(id),
        Value::Int(-128),
        Value::Int(32767),
        Value::Int(-8_388_608),
        Value::Int(2_147_483_647),
        Value::Int(i64::MIN),
        Value::UInt(255),
        Value::UInt(65535),
        Value::UInt(16_777_215),
        Value::UInt(4_294_967_295),
        Value::UInt(u64::MAX),
        Value::Decimal(format!("-{id}2345678.90").into()),
        Value::Float(0.1),
        Value::Double(-1.5e-10),
        s("comma, \"quote\" and pipe|"),
        s("é中文🙂"),
        s("line1\r\nline2\nback\\slash\t\\N"),
        Value::Bytes(vec![0, b'"', b'\n', 0xff]),
        Value::Bytes((0u8..=20).chain([0x80, 0xfe]).collect()),
        s("2024-02-29"),
        s("-838:59:59.000"),
        s("2024-01-02 03:04:05.123456"),
        s("1970-01-01 00:00:01"),
        Value::Int(2155),
        s("b,c"),
        s("x,z"),
        s(r#"{"k": [1, "v<&>"], "n": null}"#),
        Value::UInt(1023),
        s("\\N"),
    ]
}

/// A row with only the key set.
pub fn null_row(id: i64) -> Vec<Value> {
    let mut r = vec![Value::Null; table().columns.len()];
    r[0] = Value::Int(id);
    r
}

/// Three events: two inserts; an update (old image known) and a delete; an update whose old
/// image is unknown and an insert of empty strings/bytes and the null text.
pub fn events() -> Vec<DmlEvent> {
    let t = Arc::new(table());
    let mut updated = full_row(1);
    updated[14] = s("");
    updated[12] = Value::Float(-3.402_823_5e38);
    updated[13] = Value::Double(1e21);
    updated[24] = s("");
    updated[25] = s("");
    updated[27] = Value::UInt(0);
    let mut empties = null_row(3);
    empties[14] = s("");
    empties[15] = s("NULL");
    empties[18] = Value::Bytes(vec![]);
    empties[11] = Value::Decimal("0".into());
    let ev = |ms: u64, logical: u64, rows: Vec<RowChange>| DmlEvent {
        table: t.clone(),
        partition_id: None,
        commit_ts: Ts::from_parts(ms, logical),
        rows,
    };
    vec![
        ev(
            1_700_000_001_000,
            1,
            vec![
                RowChange::Insert { after: full_row(1) },
                RowChange::Insert { after: null_row(2) },
            ],
        ),
        ev(
            1_700_000_002_000,
            2,
            vec![
                RowChange::Update {
                    before: Some(full_row(1)),
                    after: updated.clone(),
                },
                RowChange::Delete {
                    before: null_row(2),
                },
            ],
        ),
        ev(
            1_700_000_003_000,
            3,
            vec![
                RowChange::Update {
                    before: None,
                    after: full_row(1),
                },
                RowChange::Insert { after: empties },
            ],
        ),
    ]
}

/// The default options with `protocol`.
pub fn options(protocol: Protocol) -> SinkOptions {
    SinkOptions {
        protocol,
        ..SinkOptions::default()
    }
}

/// The codec of `options`, prepared for the fixture [`table`].
pub fn codec(options: &SinkOptions) -> Box<dyn TableCodec> {
    codec_for(options).unwrap().prepare(&table()).unwrap()
}

/// A whole file of the fixture [`events`] written by `tc`: header, then every event.
pub fn file(tc: &dyn TableCodec) -> Vec<u8> {
    let mut out = Vec::new();
    tc.file_header(&mut out);
    for e in events() {
        tc.encode(&e, &mut out).unwrap();
    }
    out
}
