//! Round-trip property tests: for random tables and rows, decoding
//! `header ++ encode(e1) ++ encode(e2) ++ ...` gives the rows back, for every codec and csv
//! option combination. The expectation is normalized only where a format loses information by
//! design, and each such loss is asserted explicitly.

use cdc_common::codec::{codec_for, DecodedRow};
use cdc_common::options::BinaryEncoding;
use cdc_common::{
    ColumnDef, ColumnType, CsvOptions, DmlEvent, Protocol, RowChange, SinkOptions, TableDef, Ts,
    Value,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use std::sync::Arc;

/// Strings with the characters that matter to the formats: delimiters, quotes, escapes,
/// CR/LF, the null texts, multi-byte characters.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z ,|;\"'\\\\\r\n\tNUL<&>éü中🙂\u{2028}]{0,12}",
        1 => Just(String::new()),
        1 => Just("\\N".to_string()),
        1 => Just("NULL".to_string()),
        1 => any::<String>(),
    ]
}

fn column() -> impl Strategy<Value = ColumnDef> {
    let types: Vec<ColumnType> = ColumnType::all().collect();
    (
        proptest::sample::select(types),
        any::<bool>(),
        any::<bool>(),
        proptest::sample::subsequence(vec!["a", "b c", "é", "x|y", "\"q\"", "NULL", ""], 1..5),
        "[a-zA-Z_ é\"|,-]{1,8}",
    )
        .prop_map(|(ty, unsigned, pk, elems, name)| {
            let mut c = ColumnDef::new(name, ty);
            if ty.is_integer() && unsigned {
                c = c.unsigned();
            }
            if pk {
                c = c.pk();
            }
            if matches!(ty, ColumnType::Enum | ColumnType::Set) {
                // MySQL forbids commas in SET elements and an empty ENUM element.
                c = c.with_elems(elems.into_iter().filter(|e| !e.is_empty()));
                if c.elems.is_empty() {
                    c.elems.push("only".into());
                }
            }
            c
        })
}

fn table() -> impl Strategy<Value = TableDef> {
    (
        "[a-z_ é,|\"]{1,8}",
        "[a-z_ é,|\"]{1,8}",
        proptest::collection::vec(column(), 1..8),
        any::<u64>(),
    )
        .prop_map(|(schema, table, mut columns, version)| {
            for (i, c) in columns.iter_mut().enumerate() {
                c.name = format!("{i}{}", c.name); // unique names
            }
            TableDef {
                schema,
                table,
                table_id: 1,
                version: Ts(version),
                columns,
            }
        })
}

fn value(c: &ColumnDef) -> BoxedStrategy<Value> {
    use ColumnType::*;
    let v: BoxedStrategy<Value> = match (c.ty, c.unsigned) {
        (TinyInt, false) => any::<i8>().prop_map(|v| Value::Int(v.into())).boxed(),
        (SmallInt, false) => any::<i16>().prop_map(|v| Value::Int(v.into())).boxed(),
        (MediumInt, false) => (-8_388_608i64..8_388_608).prop_map(Value::Int).boxed(),
        (Int, false) => any::<i32>().prop_map(|v| Value::Int(v.into())).boxed(),
        (BigInt, false) => any::<i64>().prop_map(Value::Int).boxed(),
        (TinyInt, true) => any::<u8>().prop_map(|v| Value::UInt(v.into())).boxed(),
        (SmallInt, true) => any::<u16>().prop_map(|v| Value::UInt(v.into())).boxed(),
        (MediumInt, true) => (0u64..16_777_216).prop_map(Value::UInt).boxed(),
        (Int, true) => any::<u32>().prop_map(|v| Value::UInt(v.into())).boxed(),
        (BigInt, true) | (Bit, _) => any::<u64>().prop_map(Value::UInt).boxed(),
        (Year, _) => (1901i64..2156).prop_map(Value::Int).boxed(),
        (Float, _) => any::<f32>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::Float)
            .boxed(),
        (Double, _) => any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::Double)
            .boxed(),
        (Decimal, _) => "-?[0-9]{1,12}(\\.[0-9]{1,6})?"
            .prop_map(|s| Value::Decimal(s.into()))
            .boxed(),
        (Enum, _) => {
            let mut options = c.elems.clone();
            options.push(String::new());
            proptest::sample::select(options)
                .prop_map(|s| Value::String(s.into()))
                .boxed()
        }
        (Set, _) => {
            let elems = c.elems.clone();
            proptest::collection::vec(any::<bool>(), elems.len())
                .prop_map(move |bits| {
                    let names: Vec<&str> = elems
                        .iter()
                        .zip(bits)
                        .filter(|(_, b)| *b)
                        .map(|(e, _)| e.as_str())
                        .collect();
                    Value::String(names.join(",").into())
                })
                .boxed()
        }
        (t, _) if t.is_binary() => proptest::collection::vec(any::<u8>(), 0..12)
            .prop_map(Value::Bytes)
            .boxed(),
        _ => text().prop_map(|s| Value::String(s.into())).boxed(),
    };
    prop_oneof![1 => Just(Value::Null), 4 => v].boxed()
}

fn image(t: &TableDef) -> BoxedStrategy<Vec<Value>> {
    t.columns.iter().map(value).collect::<Vec<_>>().boxed()
}

fn change(t: &TableDef) -> BoxedStrategy<RowChange> {
    prop_oneof![
        image(t).prop_map(|after| RowChange::Insert { after }),
        (proptest::option::of(image(t)), image(t))
            .prop_map(|(before, after)| RowChange::Update { before, after }),
        image(t).prop_map(|before| RowChange::Delete { before }),
    ]
    .boxed()
}

fn table_and_events() -> impl Strategy<Value = (TableDef, Vec<DmlEvent>)> {
    table().prop_flat_map(|t| {
        let shared = Arc::new(t.clone());
        let event = (any::<u64>(), proptest::collection::vec(change(&t), 0..4));
        proptest::collection::vec(event, 1..4).prop_map(move |evs| {
            let events = evs
                .into_iter()
                .map(|(ts, rows)| DmlEvent {
                    table: shared.clone(),
                    partition_id: None,
                    commit_ts: Ts(ts),
                    rows,
                })
                .collect();
            ((*shared).clone(), events)
        })
    })
}

fn csv_options() -> impl Strategy<Value = CsvOptions> {
    (
        proptest::sample::select(vec![",", "|", "\t", ";;", "|#|", "ü", "ab"]),
        proptest::sample::select(vec![Some('"'), Some('\''), None]),
        proptest::sample::select(vec!["\\N", "NULL", ""]),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        proptest::sample::select(vec!["\n", "\r\n"]),
    )
        .prop_map(|(d, quote, null, ts, hex, old, header, term)| CsvOptions {
            delimiter: d.into(),
            quote,
            null: null.into(),
            include_commit_ts: ts,
            binary_encoding: if hex {
                BinaryEncoding::Hex
            } else {
                BinaryEncoding::Base64
            },
            output_old_value: old,
            output_field_header: header,
            terminator: term.into(),
        })
}

/// Encodes every event into one file and decodes it.
fn round_trip(options: &SinkOptions, t: &TableDef, events: &[DmlEvent]) -> Vec<DecodedRow> {
    let tc = codec_for(options).unwrap().prepare(t).unwrap();
    let mut file = Vec::new();
    tc.file_header(&mut file);
    for e in events {
        tc.encode(e, &mut file).unwrap();
    }
    tc.decode("prop/t/1/CDC000001", &file)
        .unwrap_or_else(|e| panic!("{e}\nfile: {:?}", String::from_utf8_lossy(&file)))
}

/// The rows as written, each with its commit ts.
fn written(events: &[DmlEvent]) -> Vec<DecodedRow> {
    events
        .iter()
        .flat_map(|e| {
            e.rows.iter().map(|c| DecodedRow {
                commit_ts: Some(e.commit_ts),
                change: c.clone(),
            })
        })
        .collect()
}

fn map_images(change: &mut RowChange, f: &dyn Fn(&mut Value)) {
    let images: Vec<&mut Vec<Value>> = match change {
        RowChange::Insert { after } => vec![after],
        RowChange::Update { before, after } => before.iter_mut().chain([after]).collect(),
        RowChange::Delete { before } => vec![before],
    };
    for v in images.into_iter().flatten() {
        f(v);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/codec_roundtrip.txt",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn csv_round_trips((t, events) in table_and_events(), csv in csv_options()) {
        let options = SinkOptions { protocol: Protocol::Csv, csv: csv.clone(), ..SinkOptions::default() };
        prop_assume!(codec_for(&options).is_ok());
        let got = round_trip(&options, &t, &events);
        let mut want = written(&events);
        prop_assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want.iter_mut()) {
            // Loss 1: without include-commit-ts there is no commit ts.
            if csv.include_commit_ts {
                prop_assert_eq!(g.commit_ts, w.commit_ts);
            } else {
                prop_assert_eq!(g.commit_ts, None);
                w.commit_ts = None;
            }
            // Loss 2: without output-old-value an update's before image is gone.
            if let (RowChange::Update { before: gb, .. }, RowChange::Update { before: wb, .. }) =
                (&g.change, &mut w.change)
            {
                if !csv.output_old_value {
                    prop_assert_eq!(gb, &None);
                    *wb = None;
                }
            }
            // Loss 3: unquoted, an empty string (or empty binary) equal to an empty null
            // string reads back as NULL.
            if csv.quote.is_none() && csv.null.is_empty() {
                map_images(&mut w.change, &|v| {
                    if matches!(v, Value::String(s) if s.is_empty())
                        || matches!(v, Value::Bytes(b) if b.is_empty())
                    {
                        *v = Value::Null;
                    }
                });
            }
        }
        prop_assert_eq!(got, want);
    }

    #[test]
    fn canal_json_round_trips((t, events) in table_and_events(), tidb in any::<bool>(), crlf in any::<bool>()) {
        let mut options = SinkOptions { protocol: Protocol::CanalJson, enable_tidb_extension: tidb, ..SinkOptions::default() };
        options.csv.terminator = if crlf { "\r\n" } else { "\n" }.into();
        let got = round_trip(&options, &t, &events);
        let mut want = written(&events);
        if !tidb {
            // Loss: without the TiDB extension there is no commit ts.
            prop_assert!(got.iter().all(|r| r.commit_ts.is_none()));
            want.iter_mut().for_each(|r| r.commit_ts = None);
        }
        prop_assert_eq!(got, want);
    }

    #[test]
    fn avro_round_trips_exactly((t, events) in table_and_events()) {
        let options = SinkOptions { protocol: Protocol::Avro, ..SinkOptions::default() };
        prop_assert_eq!(round_trip(&options, &t, &events), written(&events));
    }
}
