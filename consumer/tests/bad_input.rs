//! Bad input in storage: corrupt, truncated, missing and wrong-protocol data files, schema files
//! with a wrong checksum, invalid JSON or a hostile table name, and hostile object names. Each
//! gives an error naming the object (or, for a directory the sink can never have written, one
//! warning naming it), progress left where it was, and a clean resume once storage is repaired.
//! The `--on-bad-file quarantine` policy is tested in `tests/quarantine.rs`.

use crate::support;

use cdc_common::codec::codec_for;
use cdc_common::schema_file::SchemaFile;
use cdc_common::storage::StorageUri;
use cdc_common::{ColumnDef, ColumnType, DdlKind, DmlEvent, RowChange, TableDef, TableName, Ts};
use cdc_consumer::backend::sqlite::SqliteDownstream;
use cdc_consumer::backend::Downstream;
use cdc_consumer::replay::RoundOutcome;
use cdc_consumer::Error;
use std::path::Path;
use std::sync::Arc;
use support::*;

async fn replay(uri: &str, db: &Path) -> cdc_consumer::Result<()> {
    ReplayerBuilder::sqlite(uri, db).once().run().await
}

fn state(db: &Path) -> (Vec<i64>, Vec<(String, i64)>) {
    let id = [ColumnDef::new("id", ColumnType::BigInt).pk()];
    let mut d = SqliteDownstream::open(db, 1).unwrap();
    let ids = futures::executor::block_on(d.read_rows(&TableName::new("db", "t"), &id))
        .map(|rows| {
            rows.into_iter()
                .map(|r| r[0].as_deref().unwrap().parse().unwrap())
                .collect()
        })
        .unwrap_or_default();
    let c = rusqlite::Connection::open(db).unwrap();
    let prog = c
        .prepare(
            "SELECT dispatcher, file_index FROM cdc_consumer_progress \
             WHERE dispatcher <> '#settled' ORDER BY dispatcher",
        )
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .unwrap_or_default();
    (ids, prog)
}

/// Storage with two good files, then `damage` applied to the second; returns the writer and
/// the second file's path.
async fn setup(name: &str) -> (Writer, String, String) {
    setup_with(name, "protocol=csv").await
}

/// [`setup`] with other protocol options (`query`).
async fn setup_with(name: &str, query: &str) -> (Writer, String, String) {
    let mut w = Writer::new(&format!("memory://{name}?{query}&include-commit-ts=true"));
    let t = two_cols("db", "t", ts(1));
    let schema = w.schema(&t, "", DdlKind::CreateTable).await;
    w.file(&t, &[(ts(2), vec![ins(1, "a")])]).await;
    let second = w
        .file(
            &t,
            &[(ts(3), vec![ins(2, "bbbbbbbbbbbbbbbb"), ins(3, "c")])],
        )
        .await;
    w.checkpoint(ts(10)).await;
    (w, second, schema)
}

async fn check_stops_at_first_file(w: &Writer, db: &Path, path: &str) {
    let e = replay(&w.uri, db).await.unwrap_err();
    assert!(
        e.to_string().contains(path),
        "error must name `{path}`: {e}"
    );
    let (ids, prog) = state(db);
    assert_eq!(ids, vec![1]);
    assert_eq!(prog, vec![("".to_string(), 1), ("#ddl".to_string(), 0)]);
}

#[tokio::test]
async fn garbage_data_file_names_the_file_and_keeps_progress() {
    let (w, second, _) = setup("bad-garbage").await;
    let good = w.get(&second).await;
    w.put(&second, b"\xff\xfe\x00garbage,\"unterminated\n".to_vec())
        .await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    check_stops_at_first_file(&w, &db, &second).await;
    // Repaired storage resumes from the recorded progress.
    w.put(&second, good).await;
    replay(&w.uri, &db).await.unwrap();
    assert_eq!(state(&db).0, vec![1, 2, 3]);
}

#[tokio::test]
async fn truncated_data_file_names_the_file() {
    let (w, second, _) = setup("bad-trunc").await;
    let good = w.get(&second).await;
    let cut = good[..good.len() / 2 + 3].to_vec();
    w.put(&second, cut).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    check_stops_at_first_file(&w, &db, &second).await;
}

/// A compressed file or a Parquet file cut short (or its bytes flipped) does not decode: the
/// error names the file, nothing of it is applied, and the repaired file resumes.
#[tokio::test]
async fn damaged_compressed_or_parquet_data_file_names_the_file_and_resumes() {
    for (i, query) in [
        "protocol=csv&compression=gzip",
        "protocol=canal-json&enable-tidb-extension=true&compression=zstd",
        "protocol=parquet",
    ]
    .into_iter()
    .enumerate()
    {
        for damage in ["truncate", "flip"] {
            let (w, second, _) = setup_with(&format!("bad-z{i}-{damage}"), query).await;
            assert!(
                [".gz", ".zst", ".parquet"]
                    .into_iter()
                    .any(|x| second.ends_with(x)),
                "{second}"
            );
            let good = w.get(&second).await;
            let mut bad = good.clone();
            match damage {
                "truncate" => bad.truncate(good.len() - 5),
                _ => {
                    let n = bad.len();
                    bad[n / 2] ^= 0xff;
                    bad[n - 6] ^= 0xff;
                }
            }
            w.put(&second, bad).await;
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join("out.db");
            check_stops_at_first_file(&w, &db, &second).await;
            w.put(&second, good).await;
            replay(&w.uri, &db).await.unwrap();
            assert_eq!(state(&db).0, vec![1, 2, 3], "{query} after {damage}");
        }
    }
}

#[tokio::test]
async fn missing_data_file_names_the_file() {
    let (mut w, second, _) = setup("bad-missing").await;
    // Missing *below* the newest file the index names: damage. (The newest one missing is in
    // flight: `tests/ticdc_storage.rs`.)
    let t = two_cols("db", "t", ts(1));
    w.file(&t, &[(ts(4), vec![ins(4, "d")])]).await;
    w.delete(&second).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    let e = replay(&w.uri, &db).await.unwrap_err();
    assert!(
        matches!(&e, Error::Missing { path, .. } if *path == second),
        "{e}"
    );
    assert_eq!(state(&db).0, vec![1]);
}

#[tokio::test]
async fn corrupt_schema_index_and_metadata_files_name_the_object() {
    let (w, second, schema) = setup("bad-meta").await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");

    let good = w.get(&schema).await;
    let mut bad = good.clone();
    let at = bad.len() / 2;
    bad[at] ^= 0x20;
    w.put(&schema, bad).await;
    let e = replay(&w.uri, &db).await.unwrap_err();
    assert!(e.to_string().contains(&schema), "{e}");
    w.put(&schema, good).await;

    let index = format!("{}/meta/CDC.index", second.rsplit_once('/').unwrap().0);
    let good = w.get(&index).await;
    w.put(&index, b"not a file name\n".to_vec()).await;
    let e = replay(&w.uri, &db).await.unwrap_err();
    assert!(e.to_string().contains(&index), "{e}");
    w.put(&index, good).await;

    w.put("metadata", b"{\"checkpoint-ts\":".to_vec()).await;
    let e = replay(&w.uri, &db).await.unwrap_err();
    assert!(e.to_string().contains("metadata"), "{e}");
    // Nothing was applied by any of the failed runs.
    assert!(state(&db).0.is_empty());
    w.checkpoint(ts(10)).await;
    replay(&w.uri, &db).await.unwrap();
    assert_eq!(state(&db).0, vec![1, 2, 3]);
}

/// The bytes a sink configured with `query` (e.g. `protocol=avro`) writes for `events`.
fn encode_as(query: &str, def: &TableDef, events: &[(Ts, Vec<RowChange>)]) -> Vec<u8> {
    let (_, opts) = StorageUri::parse_sink(&format!("memory://encode-as?{query}")).unwrap();
    let codec = codec_for(&opts).unwrap().prepare(def).unwrap();
    let mut out = Vec::new();
    codec.file_header(&mut out);
    let t = Arc::new(def.clone());
    for (ts, rows) in events {
        let ev = DmlEvent {
            table: t.clone(),
            partition_id: None,
            commit_ts: *ts,
            rows: rows.clone(),
        };
        codec.encode(&ev, &mut out).unwrap();
    }
    out
}

#[tokio::test]
async fn wrong_protocol_data_files_name_the_file_and_keep_progress() {
    // (what the consumer is told, what the second file really holds)
    let cases = [
        (
            "protocol=csv&include-commit-ts=true",
            "protocol=canal-json&enable-tidb-extension=true",
        ),
        ("protocol=csv&include-commit-ts=true", "protocol=avro"),
        ("protocol=avro", "protocol=csv&include-commit-ts=true"),
        (
            "protocol=avro",
            "protocol=canal-json&enable-tidb-extension=true",
        ),
        (
            "protocol=canal-json&enable-tidb-extension=true",
            "protocol=csv&include-commit-ts=true",
        ),
        (
            "protocol=canal-json&enable-tidb-extension=true",
            "protocol=avro",
        ),
    ];
    for (i, (told, holds)) in cases.into_iter().enumerate() {
        let mut w = Writer::new(&format!("memory://bad-proto-{i}?{told}"));
        let t = two_cols("db", "t", ts(1));
        w.schema(&t, "", DdlKind::CreateTable).await;
        w.file(&t, &[(ts(2), vec![ins(1, "a")])]).await;
        let events = [(ts(3), vec![ins(2, "b"), ins(3, "c")])];
        let second = w.file(&t, &events).await;
        w.checkpoint(ts(10)).await;
        let good = w.get(&second).await;
        w.put(&second, encode_as(holds, &t, &events)).await;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("out.db");
        let e = replay(&w.uri, &db).await.unwrap_err();
        assert!(
            matches!(&e, Error::Contract(cdc_common::Error::Corrupt { object, .. }) if *object == second),
            "{told} reading {holds}: {e}"
        );
        let (ids, prog) = state(&db);
        assert_eq!(ids, vec![1], "{told} reading {holds}");
        assert_eq!(prog, vec![("".to_string(), 1), ("#ddl".to_string(), 0)]);
        w.put(&second, good).await;
        replay(&w.uri, &db).await.unwrap();
        assert_eq!(state(&db).0, vec![1, 2, 3], "{told} after repair");
    }
}

#[tokio::test]
async fn index_naming_another_protocols_file_is_a_mismatch_naming_the_index() {
    let (w, second, _) = setup("bad-proto-index").await;
    let index = format!("{}/meta/CDC.index", second.rsplit_once('/').unwrap().0);
    let good = w.get(&index).await;
    let json_name = String::from_utf8(good.clone())
        .unwrap()
        .replace(".csv", ".json");
    w.put(&index, json_name.into_bytes()).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    let e = replay(&w.uri, &db).await.unwrap_err();
    assert!(
        matches!(&e, Error::Mismatch { path, expected, .. } if *path == index && expected.contains("protocol csv")),
        "{e}"
    );
    assert!(state(&db).0.is_empty());
    w.put(&index, good).await;
    replay(&w.uri, &db).await.unwrap();
    assert_eq!(state(&db).0, vec![1, 2, 3]);
}

/// Replaces the schema file at `path` by `content`, runs a replay that must fail naming the
/// path with `want` in the message and apply nothing, then restores it and resumes.
async fn schema_file_is_refused(w: &Writer, path: &str, content: Vec<u8>, want: &str) {
    let good = w.get(path).await;
    w.put(path, content).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    let e = replay(&w.uri, &db).await.unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(&e, Error::Contract(cdc_common::Error::Corrupt { object, .. }) if object == path),
        "{text}"
    );
    assert!(text.contains(want), "`{want}` not in: {text}");
    assert!(!text.contains('\0'), "raw NUL in the message: {text:?}");
    assert_eq!(state(&db), (vec![], vec![]), "nothing applied, no progress");
    w.put(path, good).await;
    replay(&w.uri, &db).await.unwrap();
    assert_eq!(state(&db).0, vec![1, 2, 3]);
}

#[tokio::test]
async fn schema_file_whose_content_does_not_match_its_checksum_is_refused() {
    let (w, _, schema) = setup("bad-schema-sum").await;
    // Valid JSON of another definition (a column renamed) under the original name: the name's
    // checksum is the contract, so the recomputed one must equal it.
    let mut f = SchemaFile::parse(&schema, &w.get(&schema).await).unwrap();
    f.columns[1].name = "other".into();
    schema_file_is_refused(
        &w,
        &schema,
        f.to_json().into_bytes(),
        "checksum of content is",
    )
    .await;
}

#[tokio::test]
async fn schema_file_with_invalid_json_is_refused() {
    let (w, _, schema) = setup("bad-schema-json").await;
    let good = w.get(&schema).await;
    for bad in [
        good[..good.len() / 2].to_vec(),
        b"{\"Table\": \"t\", \"Schema\": }".to_vec(),
        b"\xff\xfe not json".to_vec(),
        Vec::new(),
    ] {
        schema_file_is_refused(&w, &schema, bad, "invalid JSON").await;
    }
}

#[tokio::test]
async fn schema_file_naming_a_hostile_table_is_refused() {
    let (w, _, schema) = setup("bad-schema-name").await;
    let f = SchemaFile::parse(&schema, &w.get(&schema).await).unwrap();
    for (schema_name, table_name) in [
        ("db", ".."),
        ("db", "a/b"),
        ("db", "t\0x"),
        ("..", "t"),
        ("d\0b", "t"),
    ] {
        let mut h = f.clone();
        h.schema = schema_name.into();
        h.table = table_name.into();
        // The hostile content under the real path, with the checksum of the hostile content:
        // only the names disagree with the path.
        let p = {
            let mut sp = cdc_common::layout::SchemaFilePath::parse(&schema).unwrap();
            sp.checksum = h.checksum();
            sp.build().unwrap()
        };
        w.delete(&schema).await;
        let content = h.to_json().into_bytes();
        w.put(&p, content.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("out.db");
        let e = replay(&w.uri, &db).await.unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(&e, Error::Contract(cdc_common::Error::Corrupt { object, .. }) if *object == p),
            "{text}"
        );
        assert!(text.contains("its path another table"), "{text}");
        assert!(!text.contains('\0'), "raw NUL in the message: {text:?}");
        assert_eq!(state(&db), (vec![], vec![]));
        w.delete(&p).await;
        w.put(&schema, f.to_json().into_bytes()).await;
    }
}

#[tokio::test]
async fn schema_file_with_unusable_column_names_is_refused() {
    let (w, _, schema) = setup("bad-schema-cols").await;
    let f = SchemaFile::parse(&schema, &w.get(&schema).await).unwrap();
    for (name, want) in [
        ("", "empty name"),
        ("na\0me", "contains NUL"),
        ("id", "appears twice"),
    ] {
        let mut h = f.clone();
        h.columns[1].name = name.into();
        let mut sp = cdc_common::layout::SchemaFilePath::parse(&schema).unwrap();
        sp.checksum = h.checksum();
        let p = sp.build().unwrap();
        w.delete(&schema).await;
        w.put(&p, h.to_json().into_bytes()).await;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("out.db");
        let e = replay(&w.uri, &db).await.unwrap_err();
        let text = e.to_string();
        assert!(text.contains(&p) && text.contains(want), "{text}");
        assert!(!text.contains('\0'), "{text:?}");
        assert_eq!(state(&db), (vec![], vec![]));
        w.delete(&p).await;
        w.put(&schema, f.to_json().into_bytes()).await;
    }
}

#[tokio::test]
async fn index_naming_a_missing_file_far_ahead_names_the_first_missing_file() {
    let (w, second, _) = setup("bad-index-ahead").await;
    let (dir_path, _) = second.rsplit_once('/').unwrap();
    let index = format!("{dir_path}/meta/CDC.index");
    let good = w.get(&index).await;
    w.put(&index, format!("CDC{:020}.csv\n", 7).into_bytes())
        .await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    let e = replay(&w.uri, &db).await.unwrap_err();
    let third = format!("{dir_path}/CDC{:020}.csv", 3);
    assert!(
        matches!(&e, Error::Missing { path, reason } if *path == third && reason.contains("file 7")),
        "{e}"
    );
    // Files 1 and 2 exist and were applied; progress stops before the missing one.
    let (ids, prog) = state(&db);
    assert_eq!(ids, vec![1, 2, 3]);
    assert_eq!(prog, vec![("".to_string(), 2), ("#ddl".to_string(), 0)]);
    w.put(&index, good).await;
    replay(&w.uri, &db).await.unwrap();
}

/// A directory name the sink can never write (longer than 255 bytes) holding a complete
/// table: ignored with one warning per directory, in the first round's full listing and in
/// later rounds' delimiter listings; the other tables replay normally.
#[tokio::test]
async fn over_long_schema_and_table_directories_are_ignored_with_a_warning() {
    let long = "x".repeat(300);
    let mut w = Writer::new("memory://bad-long-names?protocol=csv&include-commit-ts=true");
    let t = two_cols("db", "t", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    let file = w.file(&t, &[(ts(2), vec![ins(1, "a")])]).await;
    // Written by hand (the fixture's layout builder refuses such names, as the sink does).
    let good_schema = SchemaFile::for_table(&t, "", &DdlKind::CreateTable);
    let data = w.get(&file).await;
    // `db/t/<version>/<date>/CDC...csv`: the part after the table.
    let rel = file.splitn(3, '/').nth(2).unwrap().to_string();
    let (rel_dir, name) = rel.rsplit_once('/').unwrap();
    for (s, tb) in [(long.as_str(), "t"), ("db", long.as_str())] {
        let mut f = good_schema.clone();
        f.schema = s.into();
        f.table = tb.into();
        let base = format!("{s}/{tb}");
        w.put(
            &format!("{base}/meta/schema_{}_{:010}.json", ts(1).0, f.checksum()),
            f.to_json().into_bytes(),
        )
        .await;
        w.put(&format!("{base}/{rel}"), data.to_vec()).await;
        w.put(
            &format!("{base}/{rel_dir}/meta/CDC.index"),
            format!("{name}\n").into_bytes(),
        )
        .await;
    }
    w.checkpoint(ts(10)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut r = ReplayerBuilder::sqlite(&w.uri, &dir.path().join("out.db"))
        .replayer()
        .await
        .unwrap();
    let mut warnings = Vec::new();
    for round in 1..=3 {
        let RoundOutcome {
            record: rec,
            error: err,
            ..
        } = r.round().await;
        assert!(err.is_none(), "round {round}: {err:?}");
        warnings.extend(rec.warnings);
    }
    let ignored: Vec<&String> = warnings
        .iter()
        .filter(|w| w.starts_with("ignoring `"))
        .collect();
    assert_eq!(ignored.len(), 2, "one warning per directory: {warnings:?}");
    assert!(ignored.iter().any(|w| w.contains(&format!("`{long}/`"))));
    assert!(ignored.iter().any(|w| w.contains(&format!("`db/{long}/`"))));
    assert!(ignored.iter().all(|w| w.contains("longer than 255 bytes")));
    assert_eq!(state(&dir.path().join("out.db")).0, vec![1]);
    let tables: Vec<String> = r.catalog().tables.keys().map(|n| n.to_string()).collect();
    assert_eq!(tables, vec!["db.t".to_string()]);
}

/// On a local directory, a name with non-UTF-8 bytes cannot be listed at all (object_store
/// refuses the listing): the round fails naming it (percent-encoded), progress is unchanged,
/// and removing it resumes.
#[tokio::test]
async fn non_utf8_names_on_a_local_store_name_the_object_and_keep_progress() {
    use std::os::unix::ffi::OsStrExt;
    let root = tempfile::tempdir().unwrap();
    let uri = format!(
        "file://{}?protocol=csv&include-commit-ts=true",
        root.path().display()
    );
    let mut w = Writer::new(&uri);
    let t = two_cols("db", "t", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    w.file(&t, &[(ts(2), vec![ins(1, "a")])]).await;
    w.checkpoint(ts(10)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    replay(&w.uri, &db).await.unwrap();
    assert_eq!(state(&db).0, vec![1]);
    // new data comes with a moved checkpoint (an unchanged one lets the restart stop at
    // `metadata`, see the settled mark)
    w.file(&t, &[(ts(3), vec![ins(2, "b")])]).await;
    w.checkpoint(ts(11)).await;

    // A schema-level directory, then one inside the table, each holding a file.
    for parent in [root.path().to_path_buf(), root.path().join("db").join("t")] {
        let bad = parent.join(std::ffi::OsStr::from_bytes(b"bad\xff\xfename"));
        std::fs::create_dir_all(&bad).unwrap();
        std::fs::write(bad.join("x.csv"), b"1").unwrap();
        let e = replay(&w.uri, &db).await.unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, Error::Storage { .. }), "{text}");
        assert!(text.contains("bad%FF%FEname"), "{text}");
        let (ids, prog) = state(&db);
        assert_eq!(ids, vec![1], "nothing applied while the listing fails");
        assert_eq!(prog, vec![("".to_string(), 1), ("#ddl".to_string(), 0)]);
        std::fs::remove_dir_all(&bad).unwrap();
    }
    replay(&w.uri, &db).await.unwrap();
    assert_eq!(state(&db).0, vec![1, 2]);
}

/// object_store paths cannot carry `..`, `.`, empty segments or NUL/control characters: the
/// consumer never sees them as names. What a writer can store instead (`..` encoded as
/// `%2E%2E`) is an ordinary name that stays inside its directory.
#[test]
fn object_store_paths_cannot_carry_traversal_or_nul() {
    use object_store::path::Path as OPath;
    for bad in [
        "db/../t",
        "db/./t",
        "db//t",
        "db/t\0x",
        "db/t\nx",
        "../metadata",
    ] {
        assert!(OPath::parse(bad).is_err(), "{bad:?} parsed");
    }
    let p = OPath::from_iter(["db", "..", "t"]);
    assert_eq!(p.as_ref(), "db/%2E%2E/t");
    // Such a segment is a plain (odd) table name to the layout, never a parent directory.
    let cfg = cdc_common::layout::LayoutConfig {
        protocol: cdc_common::Protocol::Csv,
        compression: Default::default(),
        file_index_width: 20,
        date_separator: cdc_common::DateSeparator::None,
        enable_partition_separator: false,
    };
    let f =
        cdc_common::layout::DataFile::parse(&format!("%2E%2E/t/1/CDC{:020}.csv", 1), &cfg).unwrap();
    assert_eq!(f.dir.schema, "%2E%2E");
    let _ = ColumnDef::new("unused", ColumnType::Int);
}
