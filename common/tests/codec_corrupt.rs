//! Bad input: decoders return a `Corrupt` error naming the object and the line (csv,
//! canal-json) or byte offset (avro) for damaged files and never panic on any bytes; encoders
//! reject rows that do not match the table with an `Encode` error and append nothing.

use crate::support;

use support::fixture::{self, codec, file, options};
use support::mutation;

use cdc_common::codec::{codec_for, TableCodec};
use cdc_common::options::BinaryEncoding;
use cdc_common::{CsvOptions, DmlEvent, Error, Position, Protocol, RowChange, SinkOptions, Value};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use std::sync::Arc;

const OBJECT: &str = "db/t/1/CDC000001.csv";

/// Every codec/option combination the fuzzers feed.
fn all_options() -> Vec<SinkOptions> {
    let mut v = vec![options(Protocol::Csv)];
    let mut o = options(Protocol::Csv);
    o.csv = CsvOptions {
        delimiter: "|#".into(),
        quote: None,
        include_commit_ts: true,
        binary_encoding: BinaryEncoding::Hex,
        output_old_value: true,
        output_field_header: true,
        terminator: "\n".into(),
        ..CsvOptions::default()
    };
    v.push(o);
    v.push(options(Protocol::CanalJson));
    let mut o = options(Protocol::CanalJson);
    o.enable_tidb_extension = true;
    v.push(o);
    v.push(options(Protocol::Avro));
    v
}

fn line_of(r: Result<Vec<cdc_common::codec::DecodedRow>, Error>) -> (Position, String) {
    match r {
        Err(Error::Corrupt {
            object,
            position,
            reason,
        }) => {
            assert_eq!(object, OBJECT);
            (position, reason)
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// The default-options csv file with the null row (the second record) rewritten by `f`. The
/// first record holds a text with CR LF and LF, so it spans physical lines 1 to 3 and is two
/// pieces when split at CR LF; the null row is the third piece and starts on line 4.
fn csv_with_line2(f: impl Fn(&str) -> String) -> (Box<dyn TableCodec>, Vec<u8>) {
    let tc = codec(&options(Protocol::Csv));
    let text = String::from_utf8(file(&*tc)).unwrap();
    // Record 2 (the null row) starts after the first record's 3 physical lines.
    let lines: Vec<&str> = text.split_inclusive("\r\n").collect();
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        out.push_str(&if i == 2 { f(l) } else { l.to_string() });
    }
    (tc, out.into_bytes())
}

#[test]
fn csv_truncated_file_is_corrupt_at_its_last_line() {
    let tc = codec(&options(Protocol::Csv));
    let f = file(&*tc);
    let (pos, reason) = line_of(tc.decode(OBJECT, &f[..f.len() - 1]));
    // Records holding the multi-line text span 3 physical lines: the last record is on line 12.
    assert!(matches!(pos, Position::Line(12)), "{pos:?}");
    assert!(reason.contains("truncated"), "{reason}");
    // Cut inside a quoted field that spans lines.
    let (pos, reason) = line_of(tc.decode(OBJECT, &f[..200]));
    assert!(matches!(pos, Position::Line(1)), "{pos:?}");
    assert!(reason.contains("unterminated quoted field"), "{reason}");
}

#[test]
fn csv_wrong_field_count_names_the_line() {
    // The first record spans 3 physical lines, so the null row starts on line 4.
    let (tc, f) = csv_with_line2(|l| l.replacen(",\\N", "", 1));
    let err = tc.decode(OBJECT, &f).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("corrupt object `{OBJECT}` at line 4: expected 32 fields, found 31")
    );
}

#[test]
fn csv_non_number_in_int_column() {
    let (tc, f) = csv_with_line2(|l| l.replacen(",\\N", ",12x", 1));
    let (pos, reason) = line_of(tc.decode(OBJECT, &f));
    assert!(matches!(pos, Position::Line(4)));
    assert!(
        reason.contains("column `c_tinyint` (tinyint): `12x` is not a signed integer"),
        "{reason}"
    );
}

#[test]
fn csv_invalid_base64() {
    let tc = codec(&options(Protocol::Csv));
    let f = String::from_utf8(file(&*tc))
        .unwrap()
        .replacen("\"ACIK/w==\"", "\"AC*K/w==\"", 1);
    let (pos, reason) = line_of(tc.decode(OBJECT, f.as_bytes()));
    assert!(matches!(pos, Position::Line(1)));
    assert!(
        reason.contains("c_binary") && reason.contains("base64"),
        "{reason}"
    );
}

#[test]
fn csv_header_must_match_the_table() {
    let o = &all_options()[1];
    let tc = codec(o);
    let f = String::from_utf8(file(&*tc))
        .unwrap()
        .replacen("c_int", "c_integer", 1);
    let (pos, reason) = line_of(tc.decode(OBJECT, f.as_bytes()));
    assert!(matches!(pos, Position::Line(1)));
    assert!(reason.contains("field header does not match"), "{reason}");
}

#[test]
fn csv_update_halves_must_pair() {
    let o = &all_options()[1];
    let tc = codec(o);
    let text = String::from_utf8(file(&*tc)).unwrap();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    // Line 4 is the delete half of the update, line 5 its insert half.
    assert!(lines[3].starts_with("D|#") && lines[4].starts_with("I|#"));
    let without_insert: String = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 4)
        .map(|(_, l)| *l)
        .collect();
    let (pos, reason) = line_of(tc.decode(OBJECT, without_insert.as_bytes()));
    assert!(matches!(pos, Position::Line(5)), "{pos:?}");
    assert!(reason.contains("line 4 has no insert half"), "{reason}");
    let truncated: String = lines[..4].concat();
    let (pos, _) = line_of(tc.decode(OBJECT, truncated.as_bytes()));
    assert!(matches!(pos, Position::Line(4)));
}

#[test]
fn canal_json_invalid_json_line() {
    let tc = codec(&options(Protocol::CanalJson));
    let text = String::from_utf8(file(&*tc)).unwrap();
    let mut lines: Vec<String> = text.split_inclusive('\n').map(String::from).collect();
    lines[2] = "{\"id\":0,\"database\":\r\n".into();
    let (pos, reason) = line_of(tc.decode(OBJECT, lines.concat().as_bytes()));
    assert!(matches!(pos, Position::Line(3)));
    assert!(reason.starts_with("invalid JSON"), "{reason}");
}

#[test]
fn canal_json_truncated_and_wrong_values() {
    let tc = codec(&options(Protocol::CanalJson));
    let f = file(&*tc);
    let (pos, reason) = line_of(tc.decode(OBJECT, &f[..f.len() - 2]));
    assert!(matches!(pos, Position::Line(6)));
    assert!(reason.contains("truncated"), "{reason}");
    let text = String::from_utf8(f).unwrap();
    for (from, to, want) in [
        (
            "\"c_int\":\"2147483647\"",
            "\"c_int\":\"x\"",
            "is not a signed integer",
        ),
        (
            "\"c_enum\":\"2\"",
            "\"c_enum\":\"9\"",
            "is not an element index",
        ),
        ("\"c_set\":\"5\"", "\"c_set\":\"8\"", "is not a set bitmask"),
        (
            "\"c_binary\":\"\\u0000",
            "\"c_binary\":\"\\u0100",
            "is not ISO-8859-1 binary",
        ),
        (
            "\"c_tinyint\":\"-128\",",
            "",
            "column `c_tinyint` is missing",
        ),
        (
            "\"table\":\"every type\"",
            "\"table\":\"other\"",
            "is for `db`.`other`",
        ),
    ] {
        let bad = text.replacen(from, to, 1);
        let (pos, reason) = line_of(tc.decode(OBJECT, bad.as_bytes()));
        assert!(matches!(pos, Position::Line(1)), "{pos:?}");
        assert!(reason.contains(want), "{reason} does not contain {want}");
    }
}

#[test]
fn canal_json_accepts_canal_style_partial_old() {
    let tc = codec(&options(Protocol::CanalJson));
    let text = String::from_utf8(file(&*tc)).unwrap();
    let update = text.lines().nth(2).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(update).unwrap();
    // Keep only the changed column in `old`, as Canal does.
    let old = serde_json::json!([{"c_varchar": "comma, \"quote\" and pipe|"}]);
    v["old"] = old;
    let rows = tc.decode(OBJECT, format!("{v}\n").as_bytes()).unwrap();
    let mut want_before = fixture::events()[1].rows[0].image().to_vec();
    want_before[14] = Value::String("comma, \"quote\" and pipe|".into());
    match &rows[0].change {
        RowChange::Update {
            before: Some(b),
            after,
        } => {
            assert_eq!(b, &want_before);
            assert_eq!(after, fixture::events()[1].rows[0].image());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn avro_wrong_magic() {
    let tc = codec(&options(Protocol::Avro));
    let mut f = file(&*tc);
    f[0] = b'X';
    let (pos, reason) = line_of(tc.decode(OBJECT, &f));
    assert!(matches!(pos, Position::Offset(0)));
    assert!(reason.contains("wrong magic"), "{reason}");
}

#[test]
fn avro_bad_sync_marker() {
    let tc = codec(&options(Protocol::Avro));
    let mut header = Vec::new();
    tc.file_header(&mut header);
    let mut f = file(&*tc);
    let last = f.len() - 1;
    f[last] ^= 1;
    let (pos, reason) = line_of(tc.decode(OBJECT, &f));
    assert!(
        matches!(pos, Position::Offset(o) if o == (f.len() - 16) as u64),
        "{pos:?}"
    );
    assert!(reason.contains("bad sync marker"), "{reason}");
}

#[test]
fn avro_truncated_and_foreign_schema() {
    let tc = codec(&options(Protocol::Avro));
    let f = file(&*tc);
    let (pos, reason) = line_of(tc.decode(OBJECT, &f[..f.len() - 20]));
    assert!(matches!(pos, Position::Offset(_)));
    assert!(reason.contains("truncated"), "{reason}");
    let mut other = fixture::table();
    other.columns.pop();
    let foreign = codec_for(&options(Protocol::Avro))
        .unwrap()
        .prepare(&other)
        .unwrap();
    let (pos, reason) = line_of(foreign.decode(OBJECT, &f));
    assert!(matches!(pos, Position::Offset(_)));
    assert!(reason.contains("writer schema does not match"), "{reason}");
}

#[test]
fn encode_errors_name_table_and_column_and_append_nothing() {
    let t = Arc::new(fixture::table());
    for o in all_options() {
        let tc = codec(&o);
        let mut short = fixture::full_row(1);
        short.pop();
        let mut wrong = fixture::full_row(1);
        wrong[4] = Value::String("7".into());
        let mut bad_enum = fixture::full_row(1);
        bad_enum[24] = Value::String("nope".into());
        let cases = [
            (
                RowChange::Insert { after: short },
                "has 28 values but the table has 29 columns",
            ),
            (RowChange::Delete { before: wrong }, "column `c_int`"),
        ];
        for (bad, want) in cases {
            let ev = DmlEvent {
                table: t.clone(),
                partition_id: None,
                commit_ts: cdc_common::Ts(5),
                // A good row first: it must be taken back too.
                rows: vec![
                    RowChange::Insert {
                        after: fixture::full_row(9),
                    },
                    bad,
                ],
            };
            let mut out = b"prefix".to_vec();
            let err = tc.encode(&ev, &mut out).unwrap_err();
            assert_eq!(out, b"prefix", "{:?}", o.protocol);
            match err {
                Error::Encode { what, reason } => {
                    assert!(what.contains("`db`.`every type`"), "{what}");
                    assert!(
                        format!("{what}: {reason}").contains(want),
                        "{what}: {reason}"
                    );
                }
                other => panic!("expected Encode, got {other:?}"),
            }
        }
        if o.protocol == Protocol::CanalJson {
            let ev = DmlEvent {
                table: t.clone(),
                partition_id: None,
                commit_ts: cdc_common::Ts(5),
                rows: vec![RowChange::Insert { after: bad_enum }],
            };
            let mut out = Vec::new();
            assert!(
                matches!(tc.encode(&ev, &mut out), Err(Error::Encode { what, .. }) if what.contains("c_enum"))
            );
            assert!(out.is_empty());
        }
    }
}

fn assert_corrupt_or_ok(r: Result<Vec<cdc_common::codec::DecodedRow>, Error>) {
    if let Err(e) = r {
        assert!(
            matches!(&e, Error::Corrupt { object, .. } if object == OBJECT),
            "{e:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/codec_corrupt.txt",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn decoders_never_panic_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        for o in all_options() {
            let tc = codec(&o);
            assert_corrupt_or_ok(tc.decode(OBJECT, &bytes));
            // Also behind a valid header.
            let mut f = Vec::new();
            tc.file_header(&mut f);
            f.extend_from_slice(&bytes);
            assert_corrupt_or_ok(tc.decode(OBJECT, &f));
        }
    }

    #[test]
    fn decoders_never_panic_on_damaged_files(
        which in 0usize..5,
        cut in any::<proptest::sample::Index>(),
        flips in proptest::collection::vec((any::<proptest::sample::Index>(), 0u8..8), 0..4),
        truncate in any::<bool>(),
    ) {
        let o = &all_options()[which];
        let tc = codec(o);
        let mut f = file(&*tc);
        for (at, bit) in flips {
            let i = at.index(f.len());
            f[i] ^= 1 << bit;
        }
        if truncate {
            f.truncate(cut.index(f.len()));
        }
        assert_corrupt_or_ok(tc.decode(OBJECT, &f));
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/codec_corrupt.txt",
        ))),
        ..ProptestConfig::default()
    })]

    /// Insertions, deletions and splices shift every later byte: length prefixes, line
    /// boundaries, quotes and sync markers end up in the wrong place.
    #[test]
    fn decoders_never_panic_on_edited_files(
        which in 0usize..5,
        edits in proptest::collection::vec(mutation::mutation(), 1..6),
    ) {
        let o = &all_options()[which];
        let tc = codec(o);
        let f = mutation::mutate(file(&*tc), &edits);
        assert_corrupt_or_ok(tc.decode(OBJECT, &f));
    }
}

/// A byte that is not UTF-8 inside a text value: csv names the field and the record's line,
/// canal-json reports the line as invalid JSON (the decoders' fast paths, which rely on a
/// whole object or line being UTF-8, hand such input to the checking path).
#[test]
fn a_byte_that_is_not_utf8_names_the_line() {
    let bad_text = |f: Vec<u8>| {
        let at = f
            .windows("中".len())
            .position(|w| w == "中".as_bytes())
            .expect("the fixture holds 中");
        let mut f = f;
        f[at] = 0xFF;
        f
    };
    let tc = codec(&options(Protocol::Csv));
    let (pos, reason) = line_of(tc.decode(OBJECT, &bad_text(file(&*tc))));
    assert!(matches!(pos, Position::Line(1)), "{pos:?}");
    assert!(
        reason.starts_with("field `c_char` is not UTF-8"),
        "{reason}"
    );
    let tc = codec(&options(Protocol::CanalJson));
    let (pos, reason) = line_of(tc.decode(OBJECT, &bad_text(file(&*tc))));
    assert!(matches!(pos, Position::Line(1)), "{pos:?}");
    assert!(reason.starts_with("invalid JSON"), "{reason}");
}
