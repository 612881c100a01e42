//! SQLite: the consumer into a fresh file beside the sqlite3 shell's `.import` of the same rows
//! into the same table definitions (WAL, `synchronous=NORMAL`, as the consumer opens its file).

use crate::fixture::{def, Fixture, TABLES};
use crate::{replay, report};
use cdc_common::{ColumnDef, ColumnType};
use std::process::Command;
use std::time::Instant;

fn sqlite_type(c: &ColumnDef) -> &'static str {
    match c.ty {
        ColumnType::BigInt | ColumnType::Int => "INTEGER",
        ColumnType::Double => "REAL",
        _ => "TEXT",
    }
}

/// Measures both and prints the BENCH line; returns the consumer's rows/s (the local-disk
/// figure the S3 replay is compared with).
pub async fn bench(fx: &Fixture) -> f64 {
    let db = fx.dir.path().join("consumer.db");
    let secs = replay(&fx.uri, &format!("sqlite://{}", db.display())).await;
    let consumer = report("sqlite  storage-consumer", fx.total, secs);
    let db2 = fx.dir.path().join("import.db");
    let mut script =
        String::from("PRAGMA journal_mode=WAL;\nPRAGMA synchronous=NORMAL;\n.mode csv\n");
    for t in 0..TABLES {
        let d = def(t);
        let cols: Vec<String> = d
            .columns
            .iter()
            .map(|c| format!("\"{}\" {}", c.name, sqlite_type(c)))
            .collect();
        script.push_str(&format!(
            "CREATE TABLE \"bench.{0}\" ({1}, PRIMARY KEY (\"id\"));\n.import {2} \"bench.{0}\"\n",
            d.table,
            cols.join(", "),
            fx.csv(t).display()
        ));
    }
    let script_path = fx.dir.path().join("import.sql");
    std::fs::write(&script_path, script).expect("script");
    let t = Instant::now();
    let st = Command::new("sqlite3")
        .arg(&db2)
        .arg(format!(".read {}", script_path.display()))
        // `PRAGMA journal_mode` answers with the mode; only the timing matters here.
        .stdout(std::process::Stdio::null())
        .status()
        .expect("sqlite3");
    assert!(st.success(), "sqlite3 .import failed");
    let import = report(
        "sqlite  sqlite3 .import",
        fx.total,
        t.elapsed().as_secs_f64(),
    );
    println!("sqlite  ratio consumer/.import = {:.2}", consumer / import);
    cdc_common::testing::bench_line(
        "consumer",
        "replay into SQLite",
        consumer,
        "rows/s",
        ("sqlite3 .import of the same rows", import),
        ">= 0.85",
    );
    consumer
}
