//! Random bytes and random edits everywhere the consumer reads: its own text parsers (DDL query
//! text, `--tables`, downstream URIs, the bad-file policy, the stdout progress file) and whole
//! replays of a storage whose data, index, schema or `metadata` file was damaged, or that holds
//! an extra object at a random key. Nothing panics; an error names the damaged object.

use crate::support;

use cdc_common::schema_file::SchemaFile;
use cdc_common::{DdlKind, RowChange, TableDef};
use cdc_consumer::backend::stdout::StdoutDownstream;
use cdc_consumer::backend::Downstream;
use cdc_consumer::config::{Args, Config, DownstreamUri, TableFilter};
use cdc_consumer::quarantine::BadFilePolicy;
use cdc_consumer::Error;
use clap::Parser;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::FileFailurePersistence;
use std::sync::atomic::{AtomicU64, Ordering};
use support::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A fresh memory store name per case.
fn store_name(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// Flips, inserts, deletes and truncates (the same edits as cdc-common's corruption tests).
fn edit(mut b: Vec<u8>, edits: &[(u8, Index, u8)]) -> Vec<u8> {
    for (kind, at, x) in edits {
        match kind % 4 {
            0 if !b.is_empty() => {
                let i = at.index(b.len());
                b[i] ^= 1 << (x % 8);
            }
            1 => {
                let i = at.index(b.len() + 1);
                b.insert(i, *x);
            }
            2 if !b.is_empty() => {
                let i = at.index(b.len());
                b.remove(i);
            }
            3 if !b.is_empty() => {
                let i = at.index(b.len());
                b.truncate(i);
            }
            _ => {}
        }
    }
    b
}

const PROTOCOLS: [&str; 3] = [
    "protocol=csv&include-commit-ts=true",
    "protocol=canal-json&enable-tidb-extension=true",
    "protocol=avro",
];

/// Storage with two tables: paths of (data file, index file, schema file) of the first.
async fn storage(name: &str, protocol: &str) -> (Writer, [String; 3]) {
    let mut w = Writer::new(&format!("memory://{name}?{protocol}"));
    let t: TableDef = two_cols("db", "t", ts(1));
    let schema = w.schema(&t, "", DdlKind::CreateTable).await;
    let data = w
        .file(
            &t,
            &[
                (ts(2), vec![ins(1, "a"), ins(2, "b,\"\n")]),
                (ts(3), vec![upd(1, "a", "A"), del(2, "b,\"\n")]),
            ],
        )
        .await;
    let index = format!("{}/meta/CDC.index", data.rsplit_once('/').unwrap().0);
    let u = two_cols("db", "u", ts(1));
    w.schema(&u, "", DdlKind::CreateTable).await;
    w.file(&u, &[(ts(2), vec![ins(7, "x")])]).await;
    w.checkpoint(ts(10)).await;
    (w, [data, index, schema])
}

/// One `--once` replay into a fresh SQLite file.
async fn replay(uri: &str, policy: BadFilePolicy) -> cdc_consumer::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    ReplayerBuilder::sqlite(uri, &dir.path().join("out.db"))
        .once()
        .args(&["--on-bad-file", policy.name()])
        .run()
        .await
}

/// An error after damaging `object` must name it, or be the missing data file an edited index
/// now points at.
fn assert_names(r: cdc_consumer::Result<()>, object: &str) -> Result<(), TestCaseError> {
    if let Err(e) = r {
        let text = e.to_string();
        prop_assert!(
            text.contains(object) || matches!(e, Error::Missing { .. }),
            "error does not name `{}`: {}",
            object,
            text
        );
    }
    Ok(())
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("db".to_string()),
        Just("t".to_string()),
        Just("meta".to_string()),
        Just("CDC.index".to_string()),
        Just(format!("{}", ts(1).0)),
        Just("2023-11-14".to_string()),
        Just(format!("CDC{:020}.csv", 2)),
        Just(format!("schema_{}_0000000001.json", ts(5).0)),
        Just("metadata".to_string()),
        "[^/\\x00-\\x1f\\x7f]{1,12}".prop_filter("relative", |s| s != "." && s != ".."),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/random_storage.txt",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn replay_never_panics_on_a_damaged_object(
        protocol in 0usize..3,
        which in 0usize..4,
        edits in proptest::collection::vec((any::<u8>(), any::<Index>(), any::<u8>()), 1..5),
        quarantine in any::<bool>(),
    ) {
        let rt = runtime();
        rt.block_on(async {
            let (w, paths) = storage(&store_name("rand-damage"), PROTOCOLS[protocol]).await;
            let object = match which {
                3 => "metadata".to_string(),
                i => paths[i].clone(),
            };
            let bad = edit(w.get(&object).await, &edits);
            w.put(&object, bad).await;
            let policy = if quarantine { BadFilePolicy::Quarantine } else { BadFilePolicy::Stop };
            assert_names(replay(&w.uri, policy).await, &object)
        })?;
    }

    #[test]
    fn replay_never_panics_on_random_bytes_in_place_of_an_object(
        protocol in 0usize..3,
        which in 0usize..4,
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let rt = runtime();
        rt.block_on(async {
            let (w, paths) = storage(&store_name("rand-bytes"), PROTOCOLS[protocol]).await;
            let object = match which {
                3 => "metadata".to_string(),
                i => paths[i].clone(),
            };
            w.put(&object, bytes).await;
            assert_names(replay(&w.uri, BadFilePolicy::Stop).await, &object)
        })?;
    }

    #[test]
    fn replay_never_panics_on_an_extra_object_at_a_random_key(
        segs in proptest::collection::vec(segment(), 1..7),
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let rt = runtime();
        rt.block_on(async {
            let (w, _) = storage(&store_name("rand-key"), PROTOCOLS[0]).await;
            let key = segs.join("/");
            if key == "metadata" {
                return Ok(());
            }
            w.put(&key, bytes).await;
            let r = replay(&w.uri, BadFilePolicy::Stop).await;
            // The extra object may also be a layout directory prefix of what it names.
            if let Err(e) = &r {
                let text = e.to_string();
                let prefix = key.rsplit_once('/').map(|(d, _)| d).unwrap_or(&key);
                prop_assert!(
                    text.contains(&key) || text.contains(prefix) || matches!(e, Error::Missing { .. }),
                    "error does not name `{}`: {}", key, text
                );
            }
            Ok(())
        })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/random_storage.txt",
        ))),
        ..ProptestConfig::default()
    })]

    /// DDL query text comes from storage: the tokenizer behind RENAME COLUMN / RENAME TABLE
    /// pairing reads any text, including unterminated quotes.
    #[test]
    fn ddl_query_parsers_never_panic(query in "\\PC{0,120}|[`\"a-z .,;()]{0,60}") {
        let _ = cdc_consumer::ddl::rename_columns(&query);
        let def = two_cols("s", "n", ts(1));
        let mut f = SchemaFile::for_table(&def, &query, &DdlKind::RenameTable);
        f.query = query.clone();
        let _ = cdc_consumer::ddl::rename_source(&f);
        let _ = cdc_consumer::ddl::diff_columns(&def, &def, &query);
    }

    #[test]
    fn option_parsers_never_panic(text in "\\PC{0,80}") {
        let _ = TableFilter::parse(&text);
        let _ = DownstreamUri::parse(&text, None);
        let _ = BadFilePolicy::parse(&text);
        let argv = ["storage-consumer", "--upstream-uri", &text, "--downstream-uri", &text];
        let _ = Args::try_parse_from(argv).map(|a| Config::from_args(&a));
        let argv = ["storage-consumer", "--upstream-uri", "memory://x", "--metrics-addr", &text];
        let _ = Args::try_parse_from(argv).map(|a| Config::from_args(&a));
    }

    /// The stdout downstream's progress file is local state a person may edit.
    #[test]
    fn stdout_progress_file_loader_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        edits in proptest::collection::vec((any::<u8>(), any::<Index>(), any::<u8>()), 0..5),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        let good = br#"{"format":1,"progress":[[{"schema":"db","table":"t","partition":"","dispatcher":""},{"version":1,"date":"","file_index":2,"commit_ts":3}]],"quarantined":[]}"#;
        for content in [bytes.clone(), edit(good.to_vec(), &edits)] {
            std::fs::write(&path, &content).unwrap();
            let mut d = StdoutDownstream::with_writer(path.clone(), Box::new(std::io::sink()));
            let rt = runtime();
            let r = rt.block_on(d.load_progress());
            if let Err(e) = r {
                prop_assert!(matches!(&e, Error::Io { path: p, .. } if p.ends_with("p.json")), "{}", e);
            }
            let _ = rt.block_on(d.load_quarantine(false));
        }
    }
}

#[test]
fn the_good_stdout_progress_file_of_the_property_test_loads() {
    // Guards the property above against testing only broken input.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.json");
    std::fs::write(&path, br#"{"format":1,"progress":[[{"schema":"db","table":"t","partition":"","dispatcher":""},{"version":1,"date":"","file_index":2,"commit_ts":3}]],"quarantined":[]}"#).unwrap();
    let mut d = StdoutDownstream::with_writer(path, Box::new(std::io::sink()));
    let rows = runtime().block_on(d.load_progress()).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1.file_index, 2);
    let _: Option<RowChange> = None;
}
