//! Unit tests of the layout: every path kind built and parsed, unsafe names and malformed
//! paths rejected with reasons.

use super::*;
use crate::ts::Ts;

fn cfg(sep: DateSeparator, part: bool, width: usize) -> LayoutConfig {
    LayoutConfig {
        protocol: Protocol::Csv,
        compression: Default::default(),
        file_index_width: width,
        date_separator: sep,
        enable_partition_separator: part,
    }
}

fn dir(pid: Option<i64>, date: Option<DateDir>) -> DataDir {
    DataDir {
        schema: "test".into(),
        table: "t1".into(),
        version: Ts(437_345_364_441_890_818),
        partition_id: pid,
        date,
    }
}

#[test]
fn data_file_paths_match_ticdc() {
    let c = cfg(DateSeparator::Day, true, 20);
    let f = DataFile {
        dir: dir(None, Some(DateDir::Day(2022, 9, 1))),
        dispatcher_id: None,
        index: 1,
    };
    assert_eq!(
        f.build(&c).unwrap(),
        "test/t1/437345364441890818/2022-09-01/CDC00000000000000000001.csv"
    );
    let f = DataFile {
        dir: dir(Some(66), Some(DateDir::Day(2022, 9, 1))),
        dispatcher_id: Some("a-1".into()),
        index: 12,
    };
    assert_eq!(
        f.build(&c).unwrap(),
        "test/t1/437345364441890818/66/2022-09-01/CDC_a-1_00000000000000000012.csv"
    );
    assert_eq!(
        f.index_file().build().unwrap(),
        "test/t1/437345364441890818/66/2022-09-01/meta/CDC_a-1.index"
    );
    let c6 = LayoutConfig {
        protocol: Protocol::CanalJson,
        compression: Default::default(),
        ..cfg(DateSeparator::None, false, 6)
    };
    let f = DataFile {
        dir: dir(None, None),
        dispatcher_id: None,
        index: 7,
    };
    assert_eq!(
        f.build(&c6).unwrap(),
        "test/t1/437345364441890818/CDC000007.json"
    );
    assert_eq!(
        f.index_file().build().unwrap(),
        "test/t1/437345364441890818/meta/CDC.index"
    );
    assert_eq!(
        DataFile::parse("test/t1/437345364441890818/CDC000007.json", &c6).unwrap(),
        f
    );
}

#[test]
fn date_dirs_follow_the_separator() {
    let ts = Ts::from_parts(1_662_000_000_000, 0); // 2022-09-01
    assert_eq!(
        DateDir::for_ts(DateSeparator::Year, ts)
            .unwrap()
            .to_string(),
        "2022"
    );
    assert_eq!(
        DateDir::for_ts(DateSeparator::Month, ts)
            .unwrap()
            .to_string(),
        "2022-09"
    );
    assert_eq!(
        DateDir::for_ts(DateSeparator::Day, ts).unwrap().to_string(),
        "2022-09-01"
    );
    assert_eq!(DateDir::for_ts(DateSeparator::None, ts), None);
    assert_eq!(DateDir::parse(DateSeparator::Month, "2022-13"), None);
    assert_eq!(DateDir::parse(DateSeparator::Day, "2022-09"), None);
    assert_eq!(DateDir::parse(DateSeparator::Year, "22"), None);
}

#[test]
fn schema_file_paths() {
    let p = SchemaFilePath {
        schema: "schema1".into(),
        table: Some("table1".into()),
        version: Ts(100),
        checksum: 3_752_767_265,
    };
    assert_eq!(
        p.build().unwrap(),
        "schema1/table1/meta/schema_100_3752767265.json"
    );
    assert_eq!(
        SchemaFilePath::parse("schema1/table1/meta/schema_100_3752767265.json").unwrap(),
        p
    );
    let p = SchemaFilePath {
        schema: "schema1".into(),
        table: None,
        version: Ts(100),
        checksum: 12,
    };
    assert_eq!(
        p.build().unwrap(),
        "schema1/meta/schema_100_0000000012.json"
    );
    assert_eq!(
        SchemaFilePath::parse("schema1/meta/schema_100_0000000012.json").unwrap(),
        p
    );
}

#[test]
fn checkpoint_file() {
    let c = Checkpoint {
        checkpoint_ts: Ts(42),
    };
    assert_eq!(c.build(), r#"{"checkpoint-ts":42}"#);
    assert_eq!(
        Checkpoint::parse("metadata", c.build().as_bytes()).unwrap(),
        c
    );
    assert!(matches!(
        Checkpoint::parse("metadata", b"{\"checkpoint-ts\":-1}"),
        Err(Error::Corrupt { .. })
    ));
    assert!(matches!(
        Checkpoint::parse("metadata", b"\xff\x00"),
        Err(Error::Corrupt { .. })
    ));
}

#[test]
fn node_checkpoint_paths() {
    assert_eq!(Checkpoint::node_path(3), "metadata.node-3");
    assert!(Checkpoint::is_node_path(&Checkpoint::node_path(0)));
    assert!(Checkpoint::is_node_path("metadata.node-12"));
    for other in [
        "metadata",
        "metadata.node-",
        "metadata.node-x",
        "metadata.nodes-1",
        "db/metadata.node-1",
    ] {
        assert!(!Checkpoint::is_node_path(other), "{other}");
    }
}

#[test]
fn index_content() {
    let c = cfg(DateSeparator::None, false, 6);
    let idx = IndexFile {
        dir: dir(None, None),
        dispatcher_id: None,
    };
    assert_eq!(IndexFile::content("CDC000003.csv"), "CDC000003.csv\n");
    assert_eq!(
        idx.parse_content("x/meta/CDC.index", b"CDC000003.csv\n", &c)
            .unwrap(),
        3
    );
    for bad in [
        &b""[..],
        b"\n",
        b"CDC3.csv\n",
        b"CDC000003.json\n",
        b"CDC_x_000003.csv\n",
        b"a/CDC000003.csv",
        b"\xff",
    ] {
        assert!(
            matches!(
                idx.parse_content("x/meta/CDC.index", bad, &c),
                Err(Error::Corrupt { .. })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn rejects_unsafe_names() {
    for name in [
        "",
        ".",
        "..",
        "a/b",
        "a\0b",
        "a\nb",
        "\u{7f}",
        &"x".repeat(256),
    ] {
        assert!(
            matches!(validate_name(name), Err(Error::InvalidName { .. })),
            "{name:?}"
        );
        let d = DataDir {
            schema: name.into(),
            ..dir(None, None)
        };
        assert!(d.build().is_err());
    }
    for ok in ["a b", "é表", "a%b", "meta", "a.b", "..."] {
        validate_name(ok).unwrap();
    }
}

#[test]
fn rejects_malformed_paths_with_reasons() {
    let c = cfg(DateSeparator::Day, true, 20);
    let err = |p: &str| match DataFile::parse(p, &c) {
        Err(Error::InvalidPath { reason, .. }) => reason,
        other => panic!("{p}: expected InvalidPath, got {other:?}"),
    };
    assert!(err("s/t/1/CDC00000000000000000001.csv").contains("directory segments"));
    assert!(err("s/t/x/2022-01-01/CDC00000000000000000001.csv").contains("not a commit ts"));
    assert!(err("s/t/1/2022-1-01/CDC00000000000000000001.csv").contains("not a date directory"));
    assert!(err("s/t/1/p/2022-01-01/CDC00000000000000000001.csv").contains("partition"));
    assert!(err("s/t/1/2022-01-01/CDC0001.csv").contains("expected file-index-width=20"));
    assert!(err("s/t/1/2022-01-01/CDC00000000000000000001.json")
        .contains("does not match protocol csv"));
    assert!(err("s/t/1/2022-01-01/XYZ00000000000000000001.csv").contains("CDC"));
    assert!(err("s/../1/2022-01-01/CDC00000000000000000001.csv").contains("relative"));
    assert!(err("s/t/01/2022-01-01/CDC00000000000000000001.csv").contains("not a commit ts"));
    assert!(err("s/t/1/-0/2022-01-01/CDC00000000000000000001.csv").contains("partition"));
    assert!(err("s/t/1/+5/2022-01-01/CDC00000000000000000001.csv").contains("partition"));
    assert!(matches!(
        SchemaFilePath::parse("s/t/meta/schema_1_12.json"),
        Err(Error::InvalidPath { .. })
    ));
    assert!(matches!(
        SchemaFilePath::parse("s/t/x/schema_1_0000000012.json"),
        Err(Error::InvalidPath { .. })
    ));
    assert!(matches!(
        SchemaFilePath::parse("s/t/meta/schema_1_9999999999.json"),
        Err(Error::InvalidPath { .. })
    ));
    assert!(matches!(
        IndexFile::parse("s/t/1/2022-01-01/CDC.index", &c),
        Err(Error::InvalidPath { .. })
    ));
}

#[test]
fn index_width_is_checked() {
    let c = cfg(DateSeparator::None, false, 6);
    assert!(build_file_name(None, 999_999, &c).is_ok());
    assert!(matches!(
        build_file_name(None, 1_000_000, &c),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        build_file_name(None, 1, &cfg(DateSeparator::None, false, 5)),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(build_file_name(None, u64::MAX, &cfg(DateSeparator::None, false, 20)).is_ok());
}
