//! Property tests of the layout contract: every build/parse pair round-trips, and no parser
//! panics on arbitrary input.

use cdc_common::layout::{
    Checkpoint, DataDir, DataFile, DateDir, IndexFile, LayoutConfig, SchemaFilePath,
};
use cdc_common::schema_file::SchemaFile;
use cdc_common::{DateSeparator, Protocol, Ts};
use proptest::prelude::*;

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
                LayoutConfig {
                    protocol,
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
    fn near_miss_paths_never_panic(f in data_file(LayoutConfig { protocol: Protocol::Csv, file_index_width: 8, date_separator: DateSeparator::Day, enable_partition_separator: true }), cut in 0usize..200, junk in "[/._0-9a-zA-Z-]{0,6}") {
        let cfg = LayoutConfig { protocol: Protocol::Csv, file_index_width: 8, date_separator: DateSeparator::Day, enable_partition_separator: true };
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
