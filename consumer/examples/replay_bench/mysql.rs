//! MySQL/MariaDB: the consumer into a fresh database beside the `mariadb` (or `mysql`) client's
//! `LOAD DATA LOCAL INFILE` of the same rows into the same table definitions (InnoDB, utf8mb4,
//! one statement and so one commit per table).

use crate::fixture::{def, Fixture, TABLES};
use crate::{replay, report};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Drops what a run creates (the progress table may not exist yet: errors are ignored).
async fn clean(conn: &mut Conn, progress_db: &str) {
    for sql in [
        "DROP DATABASE IF EXISTS bench".to_string(),
        "DROP DATABASE IF EXISTS bench_load".to_string(),
        format!("DELETE FROM `{progress_db}`.cdc_consumer_progress WHERE schema_name = 'bench'"),
    ] {
        conn.query_drop(sql).await.ok();
    }
}

/// The client shipped with the server: `mariadb`, or `mysql` where that is all there is.
fn client() -> &'static str {
    let found = |c: &str| {
        Command::new(c)
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if found("mariadb") {
        "mariadb"
    } else {
        "mysql"
    }
}

/// Measures both, prints the BENCH line and drops what it created.
pub async fn bench(fx: &Fixture, uri: &str) {
    let opts = Opts::from_url(uri).expect("a mysql:// URI");
    let progress_db = opts.db_name().unwrap_or("cdc_consumer").to_string();
    let mut conn = Conn::new(opts.clone()).await.expect("mysql");
    clean(&mut conn, &progress_db).await;
    let secs = replay(&fx.uri, uri).await;
    let consumer = report("mysql   storage-consumer", fx.total, secs);

    let mut script = String::from("CREATE DATABASE bench_load;\n");
    for t in 0..TABLES {
        script.push_str(&format!(
            "CREATE TABLE bench_load.{0} (id BIGINT PRIMARY KEY, qty INT, a VARCHAR(16), b VARCHAR(16), c VARCHAR(16), d VARCHAR(16), e VARCHAR(16), price DOUBLE, amount DECIMAL(12,2), at DATETIME) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;\nLOAD DATA LOCAL INFILE '{1}' INTO TABLE bench_load.{0} FIELDS TERMINATED BY ',';\n",
            def(t).table,
            fx.csv(t).display()
        ));
    }
    let script_path = fx.dir.path().join("load.sql");
    std::fs::write(&script_path, script).expect("script");
    let t = Instant::now();
    let st = Command::new(client())
        .args(["--no-defaults", "--local-infile=1", "--protocol=TCP", "-h"])
        .arg(opts.ip_or_hostname())
        .arg("-P")
        .arg(opts.tcp_port().to_string())
        .arg("-u")
        .arg(opts.user().unwrap_or("root"))
        // The password through the environment, not the command line.
        .env("MYSQL_PWD", opts.pass().unwrap_or(""))
        .stdin(std::fs::File::open(&script_path).expect("script"))
        .status()
        .expect("the mariadb client");
    assert!(st.success(), "LOAD DATA LOCAL INFILE failed");
    let load = report(
        "mysql   LOAD DATA LOCAL INFILE",
        fx.total,
        t.elapsed().as_secs_f64(),
    );
    println!("mysql   ratio consumer/LOAD DATA = {:.2}", consumer / load);
    cdc_common::testing::bench_line(
        "consumer",
        "replay into MariaDB",
        consumer,
        "rows/s",
        ("LOAD DATA LOCAL INFILE of the same rows", load),
        ">= 0.6",
    );
    clean(&mut conn, &progress_db).await;
    conn.disconnect().await.ok();
}
