//! Golden files: the exact bytes each codec writes for the fixture table (every column type),
//! and that decoding them gives the fixture rows back (minus what the format loses by design).
//!
//! To accept a deliberate format change, rewrite the files and review the diff:
//! `UPDATE_GOLDEN=1 cargo test -p cdc-common --test codec_golden`.

use crate::support;

use support::fixture::{self, options};

use cdc_common::codec::{avro, codec_for, DecodedRow, TableCodec};
use cdc_common::options::BinaryEncoding;
use cdc_common::{CsvOptions, Protocol, RowChange, SinkOptions, Ts};
use std::path::PathBuf;

fn encode(options: &SinkOptions) -> (Box<dyn TableCodec>, Vec<u8>) {
    let tc = fixture::codec(options);
    let out = fixture::file(&*tc);
    (tc, out)
}

fn check_golden(name: &str, bytes: &[u8]) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, bytes).unwrap();
        return;
    }
    let want = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_GOLDEN=1", path.display()));
    if want != bytes {
        let at = want
            .iter()
            .zip(bytes)
            .position(|(a, b)| a != b)
            .unwrap_or(want.len().min(bytes.len()));
        let around = |b: &[u8]| {
            String::from_utf8_lossy(&b[at.saturating_sub(40)..(at + 40).min(b.len())]).into_owned()
        };
        panic!(
            "{name} differs from the golden file at byte {at} (lengths {} vs {}):\n golden: {:?}\n now:    {:?}",
            want.len(),
            bytes.len(),
            around(&want),
            around(bytes)
        );
    }
}

/// The fixture rows as a decoder should return them.
fn expected(keep_ts: bool, keep_old: bool) -> Vec<DecodedRow> {
    let mut rows = Vec::new();
    for e in fixture::events() {
        for change in e.rows {
            let change = match change {
                RowChange::Update { after, .. } if !keep_old => RowChange::Update {
                    before: None,
                    after,
                },
                c => c,
            };
            rows.push(DecodedRow {
                commit_ts: keep_ts.then_some(e.commit_ts),
                change,
            });
        }
    }
    rows
}

#[test]
fn csv_default_options_golden() {
    let (tc, out) = encode(&options(Protocol::Csv));
    check_golden("every_type.csv", &out);
    // Default csv loses the commit ts and the old image of updates.
    let rows = tc.decode("db/every type/1/CDC000001.csv", &out).unwrap();
    assert!(rows.iter().all(|r| r.commit_ts.is_none()));
    assert_eq!(rows, expected(false, false));
}

fn custom_csv() -> SinkOptions {
    let mut o = options(Protocol::Csv);
    o.csv = CsvOptions {
        delimiter: "|".into(),
        quote: None,
        include_commit_ts: true,
        binary_encoding: BinaryEncoding::Hex,
        output_old_value: true,
        output_field_header: true,
        terminator: "\n".into(),
        ..CsvOptions::default()
    };
    o
}

#[test]
fn csv_pipe_unquoted_hex_old_value_header_golden() {
    let (tc, out) = encode(&custom_csv());
    check_golden("every_type_pipe_unquoted.csv", &out);
    let rows = tc.decode("o.csv", &out).unwrap();
    assert_eq!(rows, expected(true, true));
}

#[test]
fn canal_json_golden() {
    let (tc, out) = encode(&options(Protocol::CanalJson));
    check_golden("every_type.json", &out);
    assert_eq!(tc.decode("o.json", &out).unwrap(), expected(false, true));
    // Every line is one JSON object with TiCDC's field order.
    for line in out.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        assert!(line.ends_with(b"\r"));
        let v: serde_json::Value = serde_json::from_slice(line).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "id",
                "database",
                "table",
                "pkNames",
                "isDdl",
                "type",
                "es",
                "ts",
                "sql",
                "sqlType",
                "mysqlType",
                "old",
                "data"
            ]
        );
    }
}

#[test]
fn canal_json_with_tidb_extension_golden() {
    let mut o = options(Protocol::CanalJson);
    o.enable_tidb_extension = true;
    let (tc, out) = encode(&o);
    check_golden("every_type_tidb.json", &out);
    assert_eq!(tc.decode("o.json", &out).unwrap(), expected(true, true));
}

#[test]
fn avro_golden() {
    let (tc, out) = encode(&options(Protocol::Avro));
    check_golden("every_type.avro", &out);
    assert_eq!(tc.decode("o.avro", &out).unwrap(), expected(true, true));
}

#[test]
fn avro_files_read_with_the_apache_avro_reader() {
    use apache_avro::types::Value as A;
    let (_, out) = encode(&options(Protocol::Avro));
    let values: Vec<A> = apache_avro::Reader::new(&out[..])
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(values.len(), 6);
    let A::Record(fields) = &values[0] else {
        panic!("not a record: {:?}", values[0])
    };
    assert_eq!(fields[0], ("op".into(), A::Enum(0, "INSERT".into())));
    let ts = fixture::events()[0].commit_ts.0 as i64;
    assert_eq!(fields[1], ("commit_ts".into(), A::Long(ts)));
    let A::Union(1, after) = &fields[3].1 else {
        panic!("after image missing")
    };
    let A::Record(image) = &**after else {
        panic!("image is not a record")
    };
    assert_eq!(image[10].0, "c_ubigint");
    assert_eq!(
        image[10].1,
        A::Union(1, Box::new(A::String(u64::MAX.to_string())))
    );
    assert_eq!(image[28].0, "_28_odd_name__");
}

#[test]
fn avro_decodes_files_written_by_the_apache_avro_writer() {
    use apache_avro::types::Value as A;
    let table = fixture::table();
    let schema = apache_avro::Schema::parse_str(&avro::avro_schema(&table)).unwrap();
    let mut w = apache_avro::Writer::new(&schema, Vec::new()).unwrap();
    let image: Vec<(String, A)> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let v = if i == 0 {
                A::Union(1, Box::new(A::Long(7)))
            } else {
                A::Union(0, Box::new(A::Null))
            };
            (avro::avro_field_name(i, &c.name), v)
        })
        .collect();
    for op in 0..2 {
        w.append_value(A::Record(vec![
            (
                "op".into(),
                A::Enum(
                    op * 2,
                    ["INSERT", "UPDATE", "DELETE"][op as usize * 2].into(),
                ),
            ),
            ("commit_ts".into(), A::Long(99)),
            (
                "before".into(),
                if op == 0 {
                    A::Union(0, Box::new(A::Null))
                } else {
                    A::Union(1, Box::new(A::Record(image.clone())))
                },
            ),
            (
                "after".into(),
                if op == 0 {
                    A::Union(1, Box::new(A::Record(image.clone())))
                } else {
                    A::Union(0, Box::new(A::Null))
                },
            ),
        ]))
        .unwrap();
    }
    let file = w.into_inner().unwrap();
    let tc = codec_for(&options(Protocol::Avro))
        .unwrap()
        .prepare(&table)
        .unwrap();
    let rows = tc.decode("w.avro", &file).unwrap();
    let image = fixture::null_row(7);
    assert_eq!(
        rows,
        vec![
            DecodedRow {
                commit_ts: Some(Ts(99)),
                change: RowChange::Insert {
                    after: image.clone()
                }
            },
            DecodedRow {
                commit_ts: Some(Ts(99)),
                change: RowChange::Delete { before: image }
            },
        ]
    );
}
