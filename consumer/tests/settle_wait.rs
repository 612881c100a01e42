//! The settled read of the progress record (a consumer's start or reopen, PostgreSQL and
//! MySQL/MariaDB) is bounded: a session that keeps a progress-writing transaction open (a
//! paused or cut-off consumer) makes a start fail with an error that says so instead of
//! hanging it, and a process joining a group reads without the lock. A binary of its own: the
//! held transaction would stall other tests' consumers on the shared servers, and the bound is
//! shortened through the environment.

mod support;

use support::*;

/// A session that keeps a progress-writing transaction open (a paused consumer) bounds the
/// settled read of a starting consumer: the start fails with an error that says why instead of
/// hanging; a process joining a group reads without the lock and starts; once the session
/// ends, a start succeeds.
#[tokio::test]
async fn a_transaction_left_open_on_progress_bounds_the_settled_read() {
    std::env::set_var("CDC_CONSUMER_SETTLE_WAIT_SECS", "2");
    for SqlServer { var, down, tag } in sql_servers() {
        let w = one_table_one_file(&format!(
            "memory://settle-wait-{tag}?protocol=csv&include-commit-ts=true"
        ))
        .await;
        // a consumer that applied the file leaves progress rows behind
        ReplayerBuilder::new(&w.uri, &down)
            .once()
            .run()
            .await
            .unwrap();
        let held = HeldProgress::open(&down).await;
        let started = std::time::Instant::now();
        let err = match start_err(&w.uri, &down, &[]).await {
            Some(e) => e,
            None => panic!("{var}: the start read progress under another session's open write"),
        };
        assert!(err.contains("held a transaction"), "{var}: {err}");
        assert!(
            started.elapsed().as_secs() < 20,
            "{var}: waited {:?}",
            started.elapsed()
        );
        assert!(
            start_err(&w.uri, &down, &["--group", &format!("g{tag}")])
                .await
                .is_none(),
            "{var}: a group member's start takes no settle lock"
        );
        held.end().await;
        assert!(start_err(&w.uri, &down, &[]).await.is_none(), "{var}");
    }
}

/// Starts a consumer and returns its error text, `None` when it started.
async fn start_err(uri: &str, down: &str, extra: &[&str]) -> Option<String> {
    ReplayerBuilder::new(uri, down)
        .args(extra)
        .replayer()
        .await
        .err()
        .map(|e| e.to_string())
}

/// A transaction that wrote the progress table and stays open.
enum HeldProgress {
    Pg(tokio_postgres::Client),
    My(mysql_async::Conn),
}

impl HeldProgress {
    async fn open(down: &str) -> HeldProgress {
        use mysql_async::prelude::Queryable;
        const TOUCH: &str = "UPDATE cdc_consumer_progress SET commit_ts = commit_ts";
        if down.starts_with("postgres") {
            let c = postgres_client(down).await;
            c.batch_execute(&format!("BEGIN; {TOUCH}")).await.unwrap();
            HeldProgress::Pg(c)
        } else {
            let mut c = mysql_async::Conn::from_url(down).await.unwrap();
            c.query_drop("BEGIN").await.unwrap();
            c.query_drop(TOUCH).await.unwrap();
            HeldProgress::My(c)
        }
    }

    async fn end(self) {
        use mysql_async::prelude::Queryable;
        match self {
            HeldProgress::Pg(c) => c.batch_execute("ROLLBACK").await.unwrap(),
            HeldProgress::My(mut c) => {
                c.query_drop("ROLLBACK").await.unwrap();
                c.disconnect().await.unwrap();
            }
        }
    }
}
