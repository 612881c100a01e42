//! PostgreSQL: the consumer into fresh schemas beside `psql` `\copy` of the same rows into the
//! same table definitions.

use crate::fixture::{def, Fixture, TABLES};
use crate::{replay, report};
use std::process::Command;
use std::time::Instant;

const CLEAN: &str =
    "DROP SCHEMA IF EXISTS bench CASCADE; DROP SCHEMA IF EXISTS bench_copy CASCADE; \
     DELETE FROM public.cdc_consumer_progress WHERE schema_name = 'bench'";

/// Measures both, prints the BENCH line and drops what it created.
pub async fn bench(fx: &Fixture, pg: &str) {
    let (client, conn) = tokio_postgres::connect(pg, tokio_postgres::NoTls)
        .await
        .expect("postgres");
    tokio::spawn(conn);
    // The progress table may not exist yet: a failed DELETE is fine.
    client.batch_execute(CLEAN).await.ok();
    // Each phase starts from a clean server: no checkpoint of the previous phase's writes
    // lands in the middle of the next one (it moved either figure by up to 40%).
    client.batch_execute("CHECKPOINT").await.ok();
    let secs = replay(&fx.uri, pg).await;
    let consumer = report("pg      storage-consumer", fx.total, secs);
    let mut script = String::from("CREATE SCHEMA bench_copy;\n");
    for t in 0..TABLES {
        script.push_str(&format!(
            "CREATE TABLE bench_copy.{0} (id BIGINT PRIMARY KEY, qty INTEGER, a VARCHAR(16), b VARCHAR(16), c VARCHAR(16), d VARCHAR(16), e VARCHAR(16), price DOUBLE PRECISION, amount NUMERIC(12,2), at TIMESTAMP);\n\\copy bench_copy.{0} FROM '{1}' WITH (FORMAT csv)\n",
            def(t).table,
            fx.csv(t).display()
        ));
    }
    let script_path = fx.dir.path().join("copy.sql");
    std::fs::write(&script_path, script).expect("script");
    client.batch_execute("CHECKPOINT").await.ok();
    let t = Instant::now();
    let st = Command::new("psql")
        .args(["-q", "-v", "ON_ERROR_STOP=1", "-d", pg, "-f"])
        .arg(&script_path)
        .status()
        .expect("psql");
    assert!(st.success(), "psql \\copy failed");
    let copy = report("pg      psql \\copy", fx.total, t.elapsed().as_secs_f64());
    println!("pg      ratio consumer/COPY = {:.2}", consumer / copy);
    cdc_common::testing::bench_line(
        "consumer",
        "replay into PostgreSQL",
        consumer,
        "rows/s",
        ("psql \\copy of the same rows", copy),
        ">= 0.85",
    );
    client.batch_execute(CLEAN).await.ok();
}
