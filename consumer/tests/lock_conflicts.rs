//! A unit whose transaction the server rolls back on a deadlock is run again, not reported as
//! a failure: MySQL/MariaDB consumers sharing one progress database (a consumer group, or
//! several consumers on one server) take gap locks on the progress table, and InnoDB ends one
//! of two transactions that wait on each other's gaps. Needs MariaDB from `scripts/servers.sh`
//! (`CDC_TEST_MYSQL_URI`; under `CI=true` a missing server fails the test).

use cdc_common::Ts;
use cdc_consumer::backend::{self, Access, Unit};
use cdc_consumer::config::DownstreamUri;
use cdc_consumer::progress::{Position, ProgressKey, PROGRESS_TABLE};
use mysql_async::prelude::Queryable;
use std::time::Duration;

fn key(table: &str) -> ProgressKey {
    ProgressKey {
        schema: "s".into(),
        table: table.into(),
        partition: String::new(),
        dispatcher: String::new(),
    }
}

fn pos(index: u64) -> Position {
    Position {
        version: Ts(1),
        date: String::new(),
        file_index: index,
        commit_ts: Ts(10),
    }
}

/// The URI of the test server with its database replaced by `db`.
fn with_db(uri: &str, db: &str) -> String {
    let (base, _) = uri.rsplit_once('/').expect("a MySQL URI names a database");
    format!("{base}/{db}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_chosen_as_deadlock_victim_is_run_again() {
    let Some(my) = cdc_common::testing::server_uri("CDC_TEST_MYSQL_URI") else {
        return;
    };
    // A progress database of its own: the gap below is then exactly the one this test builds.
    let db = format!(
        "lockconf_{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 1_000_000_000
    );
    let mut admin = mysql_async::Conn::from_url(&my).await.unwrap();
    admin
        .query_drop(format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    let uri = with_db(&my, &db);
    let mut down = backend::open(
        &DownstreamUri::parse(&uri, None).unwrap(),
        100,
        Access::Apply,
    )
    .await
    .unwrap();
    assert!(down.load_progress().await.unwrap().is_empty());

    // The other session: many row changes first (InnoDB rolls back the transaction that changed
    // fewer rows, so the consumer's is the victim), then a locking read of a missing progress
    // row, which locks the empty table's only gap.
    let mut other = mysql_async::Conn::from_url(&uri).await.unwrap();
    other
        .query_drop("CREATE TABLE ballast (n INT PRIMARY KEY)")
        .await
        .unwrap();
    let mut tx = other
        .start_transaction(mysql_async::TxOpts::default())
        .await
        .unwrap();
    let values: Vec<String> = (0..500).map(|n| format!("({n})")).collect();
    tx.query_drop(format!("INSERT INTO ballast VALUES {}", values.join(",")))
        .await
        .unwrap();
    tx.query_drop(format!(
        "SELECT * FROM {PROGRESS_TABLE} WHERE schema_name = 's' AND table_name = 'b' \
         AND partition_id = '' AND dispatcher = '' FOR UPDATE"
    ))
    .await
    .unwrap();

    // The consumer's unit takes the same gap with its own locking read, then waits to insert.
    let progress = vec![(key("a"), pos(1))];
    let consumer = tokio::spawn(async move {
        let unit = Unit {
            file: "s/a/1/CDC1.csv",
            table: None,
            ddl: &[],
            rows: &[],
            progress: &progress,
            quarantine: None,
            fence: None,
        };
        let res = down.apply(unit).await;
        (res, down)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !consumer.is_finished(),
        "the unit must be waiting on the gap lock"
    );
    // Inserting into the gap the consumer holds closes the cycle: the server ends one side.
    tx.query_drop(format!(
        "INSERT INTO {PROGRESS_TABLE} VALUES ('s', 'b', '', '', 1, '', 7, 10)"
    ))
    .await
    .expect("the session with more changes is not the deadlock victim");
    tx.commit().await.unwrap();

    let (res, mut down) = consumer.await.unwrap();
    res.expect("a deadlock victim is run again and commits");
    let mut rows = down.load_progress().await.unwrap();
    rows.sort_by(|a, b| a.0.table.cmp(&b.0.table));
    let got: Vec<(String, u64)> = rows
        .into_iter()
        .map(|(k, p)| (k.table, p.file_index))
        .collect();
    assert_eq!(got, vec![("a".to_string(), 1), ("b".to_string(), 7)]);
    admin
        .query_drop(format!("DROP DATABASE {db}"))
        .await
        .unwrap();
}
