//! Property tests of the layout contract: every build/parse pair round-trips, and no parser
//! panics on arbitrary input: random bytes, random text, and random mutations (bit flips,
//! byte insertions and deletions, truncation, splices) of valid schema, index and `metadata`
//! files. A parser either returns a value or a `Corrupt`/`InvalidPath` error naming the object.

use cdc_common::layout::{
    Checkpoint, DataDir, DataFile, DateDir, IndexFile, LayoutConfig, SchemaFilePath,
};
use cdc_common::options::Compression;
use cdc_common::schema_file::SchemaFile;
use cdc_common::{ColumnDef, ColumnType, DateSeparator, DdlKind, Error, Protocol, TableDef, Ts};
use proptest::prelude::*;

use crate::support;
use support::mutation::{mutate, mutation};

fn name() -> impl Strategy<Value = String> {
    // Safe names: any non-control characters except `/`, never `.` or `..`, 1..=40 chars.
    "[^/\\x00-\\x1f\\x7f-\\u{9f}]{1,40}"
        .prop_filter("relative component", |s| s != "." && s != "..")
}

fn layout() -> impl Strategy<Value = LayoutConfig> {
    (
        prop_oneof![
            Just(Protocol::Csv),
            Just(Protocol::CanalJson),
            Just(Protocol::Avro)
        ],
        6usize..=20,
        prop_oneof![
            Just(DateSeparator::None),
            Just(DateSeparator::Year),
            Just(DateSeparator::Month),
            Just(DateSeparator::Day)
        ],
        any::<bool>(),
    )
        .prop_map(
            |(protocol, file_index_width, date_separator, enable_partition_separator)| {
                // Compression only with the text protocols (the options reject the rest).
                let compression = match protocol {
                    Protocol::Csv => Compression::Gzip,
                    Protocol::CanalJson => Compression::Zstd,
                    _ => Compression::None,
                };
                LayoutConfig {
                    protocol,
                    compression: if file_index_width % 2 == 0 {
                        compression
                    } else {
                        Compression::None
                    },
                    file_index_width,
                    date_separator,
                    enable_partition_separator,
                }
            },
        )
}

fn data_file(cfg: LayoutConfig) -> impl Strategy<Value = DataFile> {
    let max_index = if cfg.file_index_width >= 20 {
        u64::MAX
    } else {
        10u64.pow(cfg.file_index_width as u32) - 1
    };
    (
        name(),
        name(),
        any::<u64>(),
        proptest::option::of(0i64..i64::MAX),
        0u64..4_102_444_800_000, // up to year 2100, in ms
        proptest::option::of("[A-Za-z0-9-]{1,40}"),
        0..=max_index,
    )
        .prop_map(
            move |(schema, table, version, pid, ms, dispatcher_id, index)| DataFile {
                dir: DataDir {
                    schema,
                    table,
                    version: Ts(version),
                    partition_id: pid.filter(|_| cfg.enable_partition_separator),
                    date: DateDir::for_ts(cfg.date_separator, Ts::from_parts(ms, 0)),
                },
                dispatcher_id,
                index,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn data_file_path_round_trips((cfg, f) in layout().prop_flat_map(|c| (Just(c), data_file(c)))) {
        let path = f.build(&cfg).unwrap();
        prop_assert_eq!(DataFile::parse(&path, &cfg).unwrap(), f.clone());
        let index = f.index_file();
        let ipath = index.build().unwrap();
        prop_assert_eq!(IndexFile::parse(&ipath, &cfg).unwrap(), index.clone());
        let content = IndexFile::content(&f.file_name(&cfg).unwrap());
        prop_assert_eq!(index.parse_content(&ipath, content.as_bytes(), &cfg).unwrap(), f.index);
    }

    #[test]
    fn schema_file_path_round_trips(schema in name(), table in proptest::option::of(name()), v in any::<u64>(), c in any::<u32>()) {
        let p = SchemaFilePath { schema, table, version: Ts(v), checksum: c };
        prop_assert_eq!(SchemaFilePath::parse(&p.build().unwrap()).unwrap(), p);
    }

    #[test]
    fn checkpoint_round_trips(ts in any::<u64>()) {
        let c = Checkpoint { checkpoint_ts: Ts(ts) };
        prop_assert_eq!(Checkpoint::parse("metadata", c.build().as_bytes()).unwrap(), c);
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_text(s in "\\PC{0,120}", cfg in layout()) {
        let _ = DataFile::parse(&s, &cfg);
        let _ = IndexFile::parse(&s, &cfg);
        let _ = SchemaFilePath::parse(&s);
        let _ = Checkpoint::parse("metadata", s.as_bytes());
        let _ = SchemaFile::parse("x.json", s.as_bytes());
        let _ = SchemaFile::parse_verified(&s, s.as_bytes());
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..300), cfg in layout()) {
        let idx = IndexFile { dir: DataDir { schema: "s".into(), table: "t".into(), version: Ts(1), partition_id: None, date: None }, dispatcher_id: None };
        let _ = idx.parse_content("s/t/1/meta/CDC.index", &b, &cfg);
        let _ = Checkpoint::parse("metadata", &b);
        let _ = SchemaFile::parse("x.json", &b);
        let text = String::from_utf8_lossy(&b);
        let _ = DataFile::parse(&text, &cfg);
    }

    #[test]
    fn near_miss_paths_never_panic(f in data_file(LayoutConfig { protocol: Protocol::Csv, compression: Default::default(), file_index_width: 8, date_separator: DateSeparator::Day, enable_partition_separator: true }), cut in 0usize..200, junk in "[/._0-9a-zA-Z-]{0,6}") {
        let cfg = LayoutConfig { protocol: Protocol::Csv, compression: Default::default(), file_index_width: 8, date_separator: DateSeparator::Day, enable_partition_separator: true };
        let path = f.build(&cfg).unwrap();
        let mut cut_at = cut.min(path.len());
        while !path.is_char_boundary(cut_at) { cut_at -= 1; }
        let mutated = format!("{}{}{}", &path[..cut_at], junk, &path[cut_at..]);
        if let Ok(parsed) = DataFile::parse(&mutated, &cfg) {
            // Whatever parses must rebuild to exactly the text it came from.
            prop_assert_eq!(parsed.build(&cfg).unwrap(), mutated);
        }
    }
}

/// A schema file with every optional column field, and its path.
fn schema_file() -> (String, Vec<u8>) {
    let def = TableDef {
        schema: "db".into(),
        table: "t\u{e9}\"x".into(),
        table_id: 0,
        version: Ts(445_644_800_262_144_000),
        columns: vec![
            ColumnDef::new("id", ColumnType::BigInt).pk(),
            ColumnDef::new("d", ColumnType::Decimal).with_precision(Some(10), Some(2)),
            ColumnDef::new("e", ColumnType::Enum).with_elems(["a", "b'c"]),
            ColumnDef::new("v", ColumnType::VarChar).with_precision(Some(64), None),
        ],
    };
    let f = SchemaFile::for_table(&def, "CREATE TABLE t (...)", &DdlKind::CreateTable);
    (f.path().build().unwrap(), f.to_json().into_bytes())
}

fn assert_names_object<T: std::fmt::Debug>(r: Result<T, Error>, object: &str) {
    if let Err(e) = r {
        match &e {
            Error::Corrupt { object: o, .. } | Error::InvalidPath { path: o, .. } => {
                assert_eq!(o, object, "{e}")
            }
            other => panic!("unexpected error kind for {object}: {other:?}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn schema_file_parsers_never_panic_on_mutated_files(edits in proptest::collection::vec(mutation(), 1..6)) {
        let (path, good) = schema_file();
        let bad = mutate(good.clone(), &edits);
        assert_names_object(SchemaFile::parse(&path, &bad), &path);
        let verified = SchemaFile::parse_verified(&path, &bad);
        // Whatever passes verification describes exactly the original definition.
        if let Ok(f) = &verified {
            prop_assert_eq!(f.checksum(), SchemaFile::parse(&path, &good).unwrap().checksum());
        }
        assert_names_object(verified, &path);
    }

    #[test]
    fn index_and_checkpoint_parsers_never_panic_on_mutated_files(
        edits in proptest::collection::vec(mutation(), 1..6),
        cfg in layout(),
    ) {
        let idx = IndexFile {
            dir: DataDir { schema: "s".into(), table: "t".into(), version: Ts(1), partition_id: None, date: None },
            dispatcher_id: Some("d-1".into()),
        };
        let ipath = idx.build().unwrap();
        let good = IndexFile::content(&cdc_common::layout::build_file_name(Some("d-1"), 42, &cfg).unwrap());
        let bad = mutate(good.into_bytes(), &edits);
        let r = idx.parse_content(&ipath, &bad, &cfg);
        assert_names_object(r, &ipath);
        let good = Checkpoint { checkpoint_ts: Ts(445_644_800_262_144_000) }.build();
        let bad = mutate(good.into_bytes(), &edits);
        assert_names_object(Checkpoint::parse("metadata", &bad), "metadata");
    }

    #[test]
    fn path_parsers_never_panic_on_mutated_paths(
        edits in proptest::collection::vec(mutation(), 1..6),
        (cfg, f) in layout().prop_flat_map(|c| (Just(c), data_file(c))),
    ) {
        for good in [f.build(&cfg).unwrap(), f.index_file().build().unwrap(), schema_file().0] {
            let bad = mutate(good.into_bytes(), &edits);
            let text = String::from_utf8_lossy(&bad).into_owned();
            if let Ok(p) = DataFile::parse(&text, &cfg) {
                prop_assert_eq!(p.build(&cfg).unwrap(), text.clone());
            }
            if let Ok(p) = IndexFile::parse(&text, &cfg) {
                prop_assert_eq!(p.build().unwrap(), text.clone());
            }
            // Schema file names accept zero-padded versions, so only "no panic" here.
            let _ = SchemaFilePath::parse(&text);
        }
    }
}
