//! protocol=parquet: every column type round-trips exactly through the whole-file step and the
//! decoder; values Parquet cannot hold are refused at encode naming the column; damaged files
//! (truncated, corrupt footer, another table's schema, not parquet) are `Corrupt` errors
//! naming the object, never a panic.

use bytes::Bytes;
use cdc_common::codec::{codec_for, DecodedRow, TableCodec};
use cdc_common::options::ParquetCompression;
use cdc_common::{
    ColumnDef, ColumnType as T, DmlEvent, Error, Protocol, RowChange, SinkOptions, TableDef, Ts,
    Value,
};
use std::sync::Arc;

const OBJECT: &str = "db/t/1/CDC000001.parquet";

fn table() -> TableDef {
    TableDef {
        schema: "db".into(),
        table: "t".into(),
        table_id: 0,
        version: Ts(1),
        columns: vec![
            ColumnDef::new("id", T::BigInt).pk(),
            ColumnDef::new("ti", T::TinyInt),
            ColumnDef::new("si_u", T::SmallInt).unsigned(),
            ColumnDef::new("mi", T::MediumInt),
            ColumnDef::new("i_u", T::Int).unsigned(),
            ColumnDef::new("bi_u", T::BigInt).unsigned(),
            ColumnDef::new("dec", T::Decimal).with_precision(Some(12), Some(3)),
            ColumnDef::new("dec65", T::Decimal).with_precision(Some(65), Some(30)),
            ColumnDef::new("f", T::Float),
            ColumnDef::new("d", T::Double),
            ColumnDef::new("bit", T::Bit).with_precision(Some(64), None),
            ColumnDef::new("y", T::Year),
            ColumnDef::new("dt", T::Date),
            ColumnDef::new("tm", T::Time).with_precision(None, Some(3)),
            ColumnDef::new("dtm", T::DateTime).with_precision(None, Some(6)),
            ColumnDef::new("ts", T::Timestamp),
            ColumnDef::new("v", T::VarChar)
                .with_precision(Some(20), None)
                .not_null(),
            ColumnDef::new("txt", T::Text),
            ColumnDef::new("b", T::VarBinary).with_precision(Some(8), None),
            ColumnDef::new("e", T::Enum).with_elems(["x", "y"]),
            ColumnDef::new("s", T::Set).with_elems(["a", "b"]),
            ColumnDef::new("j", T::Json),
        ],
    }
}

fn row(id: i64, extreme: bool) -> Vec<Value> {
    use Value::*;
    if extreme {
        vec![
            Int(i64::MIN),
            Int(-128),
            UInt(65_535),
            Int(-8_388_608),
            UInt(u64::from(u32::MAX)),
            UInt(u64::MAX),
            Decimal("-999999999.999".into()),
            Decimal(format!("-{}.{}", "9".repeat(35), "9".repeat(30)).into()),
            Float(f32::MIN_POSITIVE),
            Double(-1e300),
            UInt(u64::MAX),
            Int(2155),
            String("9999-12-31".into()),
            String("23:59:59.999".into()),
            String("1000-01-01 00:00:00.000001".into()),
            String("2038-01-19 03:14:07".into()),
            String("".into()),
            String("é\u{1F600}\"'\n,".into()),
            Bytes(vec![0, 255, 10, 13]),
            String("y".into()),
            String("a,b".into()),
            String("{\"k\":[1,2]}".into()),
        ]
    } else {
        let mut r = vec![Null; 22];
        r[0] = Int(id);
        r[16] = String(format!("v{id}").into());
        r[6] = Decimal("0.001".into());
        r[12] = String("1970-01-01".into());
        r
    }
}

fn events(t: &Arc<TableDef>) -> Vec<DmlEvent> {
    let ev = |ts: u64, rows: Vec<RowChange>| DmlEvent {
        table: t.clone(),
        partition_id: None,
        commit_ts: Ts(ts),
        rows,
    };
    vec![
        ev(
            100,
            vec![
                RowChange::Insert {
                    after: row(1, false),
                },
                RowChange::Insert {
                    after: row(2, true),
                },
            ],
        ),
        ev(
            200,
            vec![RowChange::Update {
                before: Some(row(1, false)),
                after: row(1, true),
            }],
        ),
        ev(
            300,
            vec![RowChange::Delete {
                before: row(2, true),
            }],
        ),
        ev(
            u64::MAX,
            vec![RowChange::Update {
                before: None,
                after: row(3, false),
            }],
        ),
    ]
}

fn codec(c: ParquetCompression) -> Box<dyn TableCodec> {
    let o = SinkOptions {
        protocol: Protocol::Parquet,
        parquet_compression: c,
        ..SinkOptions::default()
    };
    codec_for(&o).unwrap().prepare(&table()).unwrap()
}

/// Encodes the events as the sink does (header, chunks, whole-file step) into one file.
fn file(tc: &dyn TableCodec, events: &[DmlEvent]) -> Vec<u8> {
    let mut parts = Vec::new();
    let mut h = Vec::new();
    tc.file_header(&mut h);
    parts.push(Bytes::from(h));
    for e in events {
        let mut c = Vec::new();
        tc.encode(e, &mut c).unwrap();
        parts.push(Bytes::from(c));
    }
    tc.finish_file(OBJECT, parts).unwrap().concat()
}

#[test]
fn every_column_type_round_trips_exactly_with_each_page_compression() {
    let t = Arc::new(table());
    let evs = events(&t);
    let want: Vec<DecodedRow> = evs
        .iter()
        .flat_map(|e| {
            e.rows.iter().map(|c| DecodedRow {
                commit_ts: Some(e.commit_ts),
                change: c.clone(),
            })
        })
        .collect();
    let mut sizes = Vec::new();
    for c in ParquetCompression::ALL {
        let tc = codec(c);
        let bytes = file(tc.as_ref(), &evs);
        assert!(bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"));
        assert_eq!(tc.decode(OBJECT, &bytes).unwrap(), want, "{}", c.name());
        sizes.push(bytes.len());
    }
    assert!(
        sizes.iter().any(|s| *s != sizes[0]),
        "compression changed nothing: {sizes:?}"
    );
}

#[test]
fn values_parquet_cannot_hold_are_refused_at_encode_naming_the_column() {
    let t = Arc::new(table());
    let tc = codec(ParquetCompression::Snappy);
    for (col, bad) in [
        (12, "0000-00-00"),
        (13, "838:59:59"),
        (14, "2024-02-30 00:00:00"),
        (6, "12345678901.5"),
    ] {
        let mut r = row(1, false);
        r[col] = if col == 6 {
            Value::Decimal(bad.into())
        } else {
            Value::String(bad.into())
        };
        let e = tc
            .encode(
                &DmlEvent {
                    table: t.clone(),
                    partition_id: None,
                    commit_ts: Ts(5),
                    rows: vec![RowChange::Insert { after: r }],
                },
                &mut Vec::new(),
            )
            .unwrap_err();
        let name = &t.columns[col].name;
        assert!(
            matches!(&e, Error::Encode { what, .. } if what.contains(&format!("`{name}`"))),
            "{bad}: {e}"
        );
    }
}

#[test]
fn damaged_files_are_corrupt_errors_naming_the_object() {
    let t = Arc::new(table());
    let tc = codec(ParquetCompression::Snappy);
    let good = file(tc.as_ref(), &events(&t));
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("not parquet", b"id,name\n1,a\n".to_vec()),
        ("truncated tail", good[..good.len() - 9].to_vec()),
        ("truncated half", good[..good.len() / 2].to_vec()),
    ];
    // Footer length pointing past the file, and footer bytes flipped.
    let mut long_footer = good.clone();
    let n = long_footer.len();
    long_footer[n - 8..n - 4].copy_from_slice(&u32::MAX.to_le_bytes());
    cases.push(("footer length", long_footer));
    let mut flipped = good.clone();
    let footer_len = u32::from_le_bytes(good[n - 8..n - 4].try_into().unwrap()) as usize;
    for i in (n - 8 - footer_len..n - 8).step_by(7) {
        flipped[i] ^= 0x5a;
    }
    cases.push(("footer flipped", flipped));
    // Page bytes flipped inside the first column chunk.
    let mut pages = good.clone();
    for b in &mut pages[4..64] {
        *b ^= 0xff;
    }
    cases.push(("pages flipped", pages));
    for (what, bytes) in cases {
        // A panic fails the test (the decoder also catches the parquet reader's own).
        match tc.decode(OBJECT, &bytes) {
            Err(Error::Corrupt { object, .. }) => assert_eq!(object, OBJECT, "{what}"),
            Err(e) => panic!("{what}: not a corrupt error: {e}"),
            // Flipped page bytes may still decode (no page checksum); they never panic.
            Ok(_) if what == "pages flipped" => {}
            Ok(rows) => panic!("{what}: decoded {} rows", rows.len()),
        }
    }
}

#[test]
fn a_file_of_another_table_version_is_a_schema_mismatch() {
    let t = Arc::new(table());
    let good = file(codec(ParquetCompression::Snappy).as_ref(), &events(&t));
    let mut other = table();
    other.columns[1].ty = T::BigInt; // ti: INT(8) in the file, INT(64) in the schema file
    let o = SinkOptions {
        protocol: Protocol::Parquet,
        ..SinkOptions::default()
    };
    let tc = codec_for(&o).unwrap().prepare(&other).unwrap();
    let e = tc.decode(OBJECT, &good).unwrap_err();
    assert!(
        matches!(&e, Error::Corrupt { object, reason, .. }
            if object == OBJECT && reason.contains("`ti`")),
        "{e}"
    );
    let mut fewer = table();
    fewer.columns.pop();
    let tc = codec_for(&o).unwrap().prepare(&fewer).unwrap();
    assert!(matches!(
        tc.decode(OBJECT, &good),
        Err(Error::Corrupt { .. })
    ));
}

/// Counts the writes it receives and the bytes each time.
#[derive(Default)]
struct Recorder {
    writes: Vec<usize>,
    bytes: Vec<u8>,
}

impl std::io::Write for Recorder {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.writes.push(b.len());
        self.bytes.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The streamed whole-file step (what the sink sends into a multipart upload) writes each row
/// group as soon as it is full, not one buffer at the end, and stores exactly the bytes of
/// `finish_file`, whether the staged file comes as header + chunks or as one part.
#[test]
fn the_streamed_whole_file_step_writes_row_groups_as_they_fill() {
    let tc = codec(ParquetCompression::None);
    let t = Arc::new(table());
    let groups = 2 * cdc_common::codec::parquet::ROW_GROUP_ROWS + 10;
    let per_event = 4096;
    let mut parts = Vec::new();
    let mut h = Vec::new();
    tc.file_header(&mut h);
    parts.push(Bytes::from(h));
    let mut id = 0;
    while id < groups as i64 {
        let rows = (id..(id + per_event).min(groups as i64))
            .map(|i| RowChange::Insert {
                after: row(i, false),
            })
            .collect::<Vec<_>>();
        id += rows.len() as i64;
        let mut c = Vec::new();
        tc.encode(
            &DmlEvent {
                table: t.clone(),
                partition_id: None,
                commit_ts: Ts(id as u64),
                rows,
            },
            &mut c,
        )
        .unwrap();
        parts.push(Bytes::from(c));
    }
    let mut rec = Recorder::default();
    tc.finish_file_into(OBJECT, parts.clone(), &mut rec)
        .unwrap();
    let whole = tc.finish_file(OBJECT, parts.clone()).unwrap().concat();
    assert_eq!(rec.bytes, whole, "streamed bytes equal finish_file's");
    let one_part = tc
        .finish_file(OBJECT, vec![Bytes::from(parts.concat())])
        .unwrap();
    assert_eq!(one_part.concat(), whole, "one part or many: the same file");
    // Three row groups: the first group's column chunks reach the writer long before the
    // footer, in many writes, none near the file's size.
    let biggest = *rec.writes.iter().max().unwrap();
    assert!(rec.writes.len() > 20, "{} writes", rec.writes.len());
    assert!(
        biggest < whole.len() / 2,
        "one write of {biggest} bytes holds most of the {}-byte file",
        whole.len()
    );
    let rows = tc.decode(OBJECT, &whole).unwrap();
    assert_eq!(rows.len(), groups);
}
