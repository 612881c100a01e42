//! TiCDC on a local directory with `flush-concurrency` > 1 writes a data file in place, after
//! its index entry: a round can read the file empty or as a prefix of whole 4 KiB pages. The
//! consumer takes the newest file once it is whole (`replay::in_place`), so every row lands,
//! also for csv without commit ts, where a prefix of whole records used to be applied as the
//! whole file and the rest of it lost.

use crate::support;

use cdc_common::{DdlKind, RowChange, TableDef};
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::*;

const PAGE: usize = 4096;

/// `n` rows from id `first` whose csv (without commit ts) has a record ending exactly at byte
/// 4096 and more records after it: a view of one page is a prefix of whole records.
async fn rows_with_a_record_ending_at_a_page(def: &TableDef, first: i64, n: i64) -> Vec<RowChange> {
    let name = |pad: usize| format!("row-{}", "x".repeat(16 + pad));
    let rows = |pad_at: Option<(i64, usize)>| -> Vec<RowChange> {
        (first..first + n)
            .map(|id| match pad_at {
                Some((at, pad)) if at == id => ins(id, &name(pad)),
                _ => ins(id, &name(0)),
            })
            .collect()
    };
    let encoded = |rows: Vec<RowChange>| async {
        let mut w = Writer::new(&format!(
            "memory://in-place-sizing-{}?protocol=csv",
            unique_tag()
        ));
        let p = w.file(def, &[(ts(20), rows)]).await;
        w.get(&p).await
    };
    let plain = encoded(rows(None)).await;
    // the last record ending at or before the page, and the bytes it lacks to end on it
    let ends: Vec<usize> = plain
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w == b"\r\n")
        .map(|(i, _)| i + 2)
        .collect();
    let k = ends.iter().rposition(|&e| e <= PAGE).unwrap();
    let padded = rows(Some((first + k as i64, PAGE - ends[k])));
    let bytes = encoded(padded.clone()).await;
    assert!(bytes.len() > PAGE + 100, "records after the page");
    assert_eq!(&bytes[PAGE - 2..PAGE], b"\r\n", "a record ends at the page");
    padded
}

/// Cuts the file at `path` to `keep` bytes, as a reader sees it mid-write, and writes the rest
/// back on a thread, one 4 KiB page every `every`: the writer going on.
fn written_in_place(path: &Path, keep: usize, every: Duration) -> std::thread::JoinHandle<()> {
    let whole = std::fs::read(path).unwrap();
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(keep as u64).unwrap();
    std::thread::spawn(move || {
        use std::io::{Seek, SeekFrom, Write};
        f.seek(SeekFrom::Start(keep as u64)).unwrap();
        for page in whole[keep..].chunks(PAGE) {
            std::thread::sleep(every);
            f.write_all(page).unwrap();
        }
    })
}

/// Local storage with `options` where table `db.t` has one file of row 0, and a replayer into
/// SQLite that applied it: the storage's guard, the writer, the table and the replayer's parts.
async fn one_row_applied(
    options: &str,
) -> (
    tempfile::TempDir,
    Writer,
    TableDef,
    (tempfile::TempDir, PathBuf, cdc_consumer::replay::Replayer),
) {
    let (root, uri) = local_storage(options);
    let mut w = Writer::new(&uri);
    let t = two_cols("db", "t", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    w.file(&t, &[(ts(2), vec![ins(0, "first")])]).await;
    w.checkpoint(ts(10)).await;
    let (dir, db, mut r) = sqlite_replayer(&w.uri).await;
    ok_round(&mut r).await;
    assert_eq!(ids(&db, "db.t"), vec![0]);
    (root, w, t, (dir, db, r))
}

fn ids(db: &Path, table: &str) -> Vec<i64> {
    id_names(db, table).into_iter().map(|(id, _)| id).collect()
}

#[tokio::test]
async fn a_newest_file_seen_mid_write_is_applied_whole() {
    let (root, mut w, t, (_dir, db, mut r)) = one_row_applied("protocol=csv").await;
    let on_disk = |p: &str| -> PathBuf { root.path().join(p) };

    // One page of whole records is visible when the round reads the newest file.
    let rows = rows_with_a_record_ending_at_a_page(&t, 1, 200).await;
    let second = w.file(&t, &[(ts(20), rows)]).await;
    let done = written_in_place(&on_disk(&second), PAGE, Duration::from_millis(300));
    w.checkpoint(ts(11)).await;
    ok_round(&mut r).await;
    done.join().unwrap();
    w.checkpoint(ts(12)).await;
    ok_round(&mut r).await;
    assert_eq!(
        ids(&db, "db.t"),
        (0..201).collect::<Vec<_>>(),
        "every row of file 2"
    );
}

/// An empty view of the newest file lost its rows whatever the format: with commit ts too,
/// there was no row to hold back to the checkpoint.
#[tokio::test]
async fn a_newest_file_seen_empty_is_not_a_file_of_no_rows() {
    let (root, mut w, t, (_dir, db, mut r)) =
        one_row_applied("protocol=csv&include-commit-ts=true").await;
    let second = w.file(&t, &[(ts(20), vec![ins(1, "late")])]).await;
    let done = written_in_place(&root.path().join(&second), 0, Duration::from_millis(300));
    w.checkpoint(ts(11)).await;
    ok_round(&mut r).await;
    done.join().unwrap();
    w.checkpoint(ts(30)).await;
    ok_round(&mut r).await;
    assert_eq!(ids(&db, "db.t"), vec![0, 1], "the row of file 2");
}

#[tokio::test]
async fn a_newest_file_still_being_written_waits_for_a_later_round() {
    let (root, uri) = local_storage("protocol=csv");
    let mut w = Writer::new(&uri);
    let t = two_cols("db", "t", ts(1));
    let u = two_cols("db", "u", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    w.schema(&u, "", DdlKind::CreateTable).await;
    let rows = rows_with_a_record_ending_at_a_page(&t, 1, 4000).await;
    let first = w.file(&t, &[(ts(20), rows)]).await;
    w.file(&u, &[(ts(20), vec![ins(1, "u")])]).await;
    w.checkpoint(ts(30)).await;
    let (_dir, db, mut r) = sqlite_replayer(&w.uri).await;
    // The writer adds a page more often than the consumer's looks wait for a quiet file, for
    // longer than they go on (started once the replayer is made, so a slow start does not
    // eat into that time): the first round holds the file back.
    let done = written_in_place(&root.path().join(&first), PAGE, Duration::from_millis(250));
    let out = ok_round(&mut r).await;
    assert_warned(&out.record, |m| {
        m.contains("`db.t` waits") && m.contains(&first) && m.contains("may still be")
    });
    assert!(ids(&db, "db.t").is_empty(), "nothing of a file not whole");
    assert_eq!(ids(&db, "db.u"), vec![1], "the other table goes on");
    done.join().unwrap();
    w.checkpoint(ts(31)).await;
    ok_round(&mut r).await;
    assert_eq!(ids(&db, "db.t"), (1..4001).collect::<Vec<_>>());
}

/// A unit that reaches the newest file while it is being written leaves it to its step with
/// the answer it got: the stream waits for the file to be quiet once a round, not once for
/// the unit and again for the step.
#[tokio::test]
async fn a_unit_that_reaches_a_file_in_flight_waits_for_it_once() {
    let (root, uri) = local_storage("protocol=csv");
    let mut w = Writer::new(&uri);
    let t = two_cols("db", "t", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    w.file(&t, &[(ts(2), vec![ins(0, "first")])]).await;
    let rows = rows_with_a_record_ending_at_a_page(&t, 1, 3000).await;
    let newest = w.file(&t, &[(ts(20), rows)]).await;
    w.checkpoint(ts(30)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    let m = cdc_consumer::metrics::Metrics::new();
    let mut r = ReplayerBuilder::sqlite(&w.uri, &db)
        .metrics(m.clone())
        .replayer()
        .await
        .unwrap();
    // A page every 250 ms for longer than two series of looks would take.
    let done = written_in_place(&root.path().join(&newest), PAGE, Duration::from_millis(250));
    let out = ok_round(&mut r).await;
    assert_warned(&out.record, |m| {
        m.contains("`db.t` waits") && m.contains(&newest)
    });
    assert_eq!(
        ids(&db, "db.t"),
        vec![0],
        "the file before it, in a unit of its own"
    );
    assert_eq!(
        m.in_place_looks.get(),
        3,
        "one series of looks at the file in flight in the round"
    );
    done.join().unwrap();
    w.checkpoint(ts(31)).await;
    ok_round(&mut r).await;
    assert_eq!(ids(&db, "db.t"), (0..3001).collect::<Vec<_>>());
}

/// Sets the modification time of `path` to `at`.
fn stamped(path: &Path, at: std::time::SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(at)
        .unwrap();
}

/// Sets the modification time of `path` a minute back: a file its writer left long ago.
fn left_long_ago(path: &Path) {
    stamped(path, std::time::SystemTime::now() - Duration::from_secs(60));
}

/// A database-level DDL of schema `db` at `at` (one with no effect on the tables).
async fn alter_database(w: &Writer, at: cdc_common::Ts) {
    w.db_schema(
        "db",
        at,
        "ALTER DATABASE db CHARACTER SET utf8mb4",
        DdlKind::Other,
    )
    .await;
}

/// TiCDC killed after it indexed a file and created it empty writes that file again under the
/// same name when it restarts (tiflow reuses an empty newest file's number). A consumer that
/// took the quiet empty file as a file of no rows had moved past it, and the rows of the
/// rewritten file were never applied. Table `a` meets the empty file in the unit of the file
/// before it, table `b` in a step of its own.
#[tokio::test]
async fn a_newest_file_left_empty_by_a_killed_writer_is_read_again_once_rewritten() {
    let (root, uri) = local_storage("protocol=csv&include-commit-ts=true");
    let mut w = Writer::new(&uri);
    let a = two_cols("db", "a", ts(1));
    let b = two_cols("db", "b", ts(1));
    // The file a killed writer left: indexed, empty, untouched for a minute; its rows as the
    // restarted writer writes them again.
    let emptied = |path: &str| -> (PathBuf, Vec<u8>) {
        let on_disk = root.path().join(path);
        let whole = std::fs::read(&on_disk).unwrap();
        std::fs::write(&on_disk, b"").unwrap();
        left_long_ago(&on_disk);
        (on_disk, whole)
    };
    for def in [&a, &b] {
        w.schema(def, "", DdlKind::CreateTable).await;
        w.file(def, &[(ts(2), vec![ins(0, "first")])]).await;
    }
    let a2 = emptied(&w.file(&a, &[(ts(20), vec![ins(1, "resent")])]).await);
    w.checkpoint(ts(10)).await;
    let (_dir, db, mut r) = sqlite_replayer(&w.uri).await;
    ok_round(&mut r).await;
    let b2 = emptied(&w.file(&b, &[(ts(21), vec![ins(1, "resent")])]).await);
    w.checkpoint(ts(11)).await;
    let out = ok_round(&mut r).await;
    assert!(
        out.record.warnings.is_empty(),
        "an empty newest file is no trouble: {:?}",
        out.record.warnings
    );
    // The writer restarts and writes each file again, whole, under the same name.
    for (on_disk, whole) in [a2, b2] {
        std::fs::write(on_disk, whole).unwrap();
    }
    w.checkpoint(ts(30)).await;
    ok_round(&mut r).await;
    for name in ["db.a", "db.b"] {
        assert_eq!(
            ids(&db, name),
            vec![0, 1],
            "{name}: the row of the rewritten file"
        );
    }
}

/// The date directory of 2023-11-`d`.
fn day(d: u32) -> String {
    format!("2023-11-{d}")
}

/// The date directory and data file index each stream of `db.<table>` reached, and the
/// version of `db`'s database-level DDL row (0: none applied).
fn positions(db: &Path, table: &str) -> (Vec<(String, i64)>, i64) {
    let c = rusqlite::Connection::open(db).unwrap();
    let files = c
        .prepare(
            "SELECT date_dir, file_index FROM cdc_consumer_progress WHERE schema_name = 'db' \
             AND table_name = ?1 AND dispatcher <> '#ddl' ORDER BY date_dir",
        )
        .and_then(|mut s| {
            s.query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .unwrap();
    let schema_ddl = c
        .query_row(
            "SELECT coalesce(max(table_version), 0) FROM cdc_consumer_progress \
             WHERE schema_name = 'db' AND table_name = '' AND dispatcher = '#ddl'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    (files, schema_ddl)
}

/// This sink writes an empty data file for an event of no rows. Its stream stays before it
/// without a warning or a wait, and passes it once the next file is indexed, in the same date
/// directory (`t`) or the next one (`u`), once a newer table version closes its directory
/// (`v`), or once the checkpoint is a minute past the file's making (`x`); `h`'s empty file,
/// made now, stays held (the checkpoint is years before). A database-level DDL of the schema
/// at or below the checkpoint does not wait for the held streams: their file's rows, if it
/// ever gets any, are above the checkpoint.
#[tokio::test]
async fn an_empty_newest_file_of_no_rows_holds_nothing_back() {
    let (root, uri) = local_storage("protocol=csv&include-commit-ts=true&date-separator=day");
    let mut w = Writer::new(&uri);
    let names = ["t", "u", "v", "x", "h"];
    let defs: Vec<TableDef> = names.iter().map(|n| two_cols("db", n, ts(1))).collect();
    for def in &defs {
        w.schema(def, "", DdlKind::CreateTable).await;
        w.file(def, &[(ts(2), vec![ins(0, "first")])]).await;
        let empty = root.path().join(w.file(def, &[(ts(3), vec![])]).await);
        assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
        if def.table == "x" {
            // made when the sink wrote the event of ts 3 (its clock and the ts's agree)
            stamped(&empty, ts(3).to_system_time());
        }
    }
    w.checkpoint(ts(10)).await;
    let (_dir, db, mut r) = sqlite_replayer(&w.uri).await;
    let started = std::time::Instant::now();
    let out = ok_round(&mut r).await;
    assert!(out.record.warnings.is_empty(), "{:?}", out.record.warnings);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "no quiet-time wait for an empty file"
    );
    assert_eq!(
        out.record.applied_ts,
        ts(10).0,
        "applied through the checkpoint: no row waits"
    );
    assert_eq!(
        out.record.files_pending, 0,
        "a held empty file holds nothing to apply"
    );
    for n in names {
        assert_eq!(ids(&db, &format!("db.{n}")), vec![0], "{n}");
        assert_eq!(
            positions(&db, n).0,
            [(day(14), 1)],
            "{n}: held before its empty file"
        );
    }
    let [t, u, v, ..] = &defs[..] else {
        unreachable!()
    };
    w.file(t, &[(ts(20), vec![ins(1, "next")])]).await;
    // 2023-11-15
    w.file(u, &[(ts(7000), vec![ins(1, "next day")])]).await;
    let mut v2 = v.clone();
    v2.version = ts(30);
    v2.columns[1].name = "renamed".into();
    w.schema(
        &v2,
        "ALTER TABLE v RENAME COLUMN name TO renamed",
        DdlKind::Other,
    )
    .await;
    w.file(&v2, &[(ts(31), vec![ins(1, "newer version")])])
        .await;
    alter_database(&w, ts(40)).await;
    w.checkpoint(ts(8000)).await;
    let out = ok_round(&mut r).await;
    assert!(
        !out.record.warnings.iter().any(|m| m.contains("waits")),
        "{:?}",
        out.record.warnings
    );
    for n in ["t", "u", "v"] {
        assert_eq!(ids(&db, &format!("db.{n}")), vec![0, 1], "{n}");
    }
    assert_eq!(
        positions(&db, "t").0,
        [(day(14), 3)],
        "t: past its empty file"
    );
    assert_eq!(positions(&db, "u").0, [(day(15), 1)], "u: on the next day");
    assert_eq!(
        positions(&db, "x").0,
        [(day(14), 2)],
        "x: passed by the checkpoint"
    );
    let (h, schema_ddl) = positions(&db, "h");
    assert_eq!(h, [(day(14), 1)], "h: still held");
    assert_eq!(
        schema_ddl,
        ts(40).0 as i64,
        "the database-level DDL went ahead of the held stream"
    );
    assert_eq!(out.record.files_pending, 0);
}

/// A round whose only work is a hold still lets the database-level DDL it unblocks go (the
/// hold asks for another pass of the round's steps).
#[tokio::test]
async fn a_hold_alone_lets_a_database_level_ddl_go_in_its_round() {
    let (_root, mut w, t, (_dir, db, mut r)) =
        one_row_applied("protocol=csv&include-commit-ts=true").await;
    w.file(&t, &[(ts(20), vec![])]).await;
    alter_database(&w, ts(40)).await;
    w.checkpoint(ts(50)).await;
    ok_round(&mut r).await;
    let (files, schema_ddl) = positions(&db, "t");
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].1, 1, "held before its empty file");
    assert_eq!(
        schema_ddl,
        ts(40).0 as i64,
        "the DDL went in the same round"
    );
}
