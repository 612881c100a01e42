//! Consumer groups on the real PostgreSQL and MariaDB (`scripts/servers.sh`; under `CI=true` a
//! missing server fails the test): a member that lost its lease commits nothing (fencing),
//! paused members are taken over, and a group's members together apply every row once and in
//! order.

mod support;

use cdc_common::{ColumnDef, ColumnType, DdlKind, TableName};
use cdc_consumer::backend::{self, Access};
use cdc_consumer::config::DownstreamUri;
use cdc_consumer::group::member::Member;
use cdc_consumer::group::{Group, GroupConfig, LeaseKey, Shared};
use cdc_consumer::metrics::Metrics;
use cdc_consumer::replay::Replayer;
use cdc_consumer::Error;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_storage-consumer");

/// Unique names: the servers are shared between runs.
fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}_{}_{}", std::process::id(), n % 1_000_000_000)
}

/// Every row of a table as text, sorted.
async fn rows(down: &str, name: &TableName) -> Vec<String> {
    let uri = DownstreamUri::parse(down, None).unwrap();
    let mut d = backend::open(&uri, 1, Access::ReadBack).await.unwrap();
    let cols: Vec<ColumnDef> = d
        .read_columns(name)
        .await
        .unwrap()
        .into_iter()
        .map(|c| ColumnDef::new(c, ColumnType::Text))
        .collect();
    if cols.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<String> = d
        .read_rows(name, &cols)
        .await
        .unwrap()
        .into_iter()
        .map(|r| format!("{r:?}"))
        .collect();
    out.sort();
    out
}

/// A member driven by hand: its replayer and its heartbeat.
struct Hand {
    r: Replayer,
    beat: Member,
    metrics: Metrics,
}

async fn member(up: &str, down: &str, group: &str, id: &str, ttl: Duration) -> Hand {
    let metrics = Metrics::new();
    let health = Arc::new(Mutex::new(cdc_consumer::freshness::Health::default()));
    let (cfg, mut r) = ReplayerBuilder::new(up, down)
        .metrics(metrics.clone())
        .health(health.clone())
        .build()
        .await
        .unwrap();
    let mut store = backend::open_lease_store(&cfg.downstream).await.unwrap();
    store.init().await.unwrap();
    let g = GroupConfig {
        group: group.into(),
        member: id.into(),
        ttl,
    };
    let shared = Arc::new(Shared::default());
    r.set_group(Group {
        cfg: g.clone(),
        shared: shared.clone(),
    });
    let beat = Member::new(g, store, shared, health, metrics.clone());
    Hand { r, beat, metrics }
}

/// Holds a row lock on one downstream row, so an apply touching that row waits.
enum RowLock {
    Pg(tokio_postgres::Client),
    My(mysql_async::Conn),
}

impl RowLock {
    async fn take(down: &str, name: &TableName, id: i64) -> RowLock {
        if down.starts_with("postgres") {
            let (c, conn) = tokio_postgres::connect(down, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            c.batch_execute(&format!(
                "BEGIN; SELECT 1 FROM \"{}\".\"{}\" WHERE id = {id} FOR UPDATE",
                name.schema, name.table
            ))
            .await
            .unwrap();
            RowLock::Pg(c)
        } else {
            use mysql_async::prelude::Queryable;
            let mut c = mysql_async::Conn::from_url(down).await.unwrap();
            c.query_drop("BEGIN").await.unwrap();
            c.query_drop(format!(
                "SELECT 1 FROM `{}`.`{}` WHERE id = {id} FOR UPDATE",
                name.schema, name.table
            ))
            .await
            .unwrap();
            RowLock::My(c)
        }
    }

    async fn release(self) {
        match self {
            RowLock::Pg(c) => c.batch_execute("ROLLBACK").await.unwrap(),
            RowLock::My(mut c) => {
                use mysql_async::prelude::Queryable;
                c.query_drop("ROLLBACK").await.unwrap()
            }
        }
    }
}

/// Member A holds the lease, starts applying a file and waits on a row lock; its lease expires
/// (no heartbeat, as under SIGSTOP) and member B claims the table; when A goes on, its fence
/// check fails and nothing of its unit is committed; B applies the file once.
async fn fenced_member_commits_nothing(down: &str) {
    let s = unique("grpf");
    let group = unique("g");
    let up = format!("memory://{s}?protocol=csv&include-commit-ts=true&output-old-value=true");
    let mut w = Writer::new(&up);
    let t = two_cols(&s, "t", ts(1));
    let name = TableName::new(&s, "t");
    w.schema(&t, "", DdlKind::CreateTable).await;
    w.file(&t, &[(ts(2), vec![ins(1, "a"), ins(2, "b")])]).await;
    w.checkpoint(ts(100)).await;
    let ttl = Duration::from_millis(800);
    let mut a = member(&up, down, &group, "a", ttl).await;
    // The first round finds the table, the heartbeat claims it, the next round applies.
    a.r.round().await;
    a.beat.beat().await.unwrap();
    let o = a.r.round().await;
    assert!(o.error.is_none(), "{:?}", o.error);
    assert_eq!(rows(down, &name).await.len(), 2);

    w.file(&t, &[(ts(3), vec![upd(1, "a", "a2"), ins(3, "c")])])
        .await;
    let lock = RowLock::take(down, &name, 1).await;
    let a_round = tokio::spawn(async move {
        let o = a.r.round().await;
        (a, o)
    });
    // A is now waiting on the row lock with its round's fence (epoch 1); it does not beat.
    tokio::time::sleep(ttl + Duration::from_millis(400)).await;
    let mut b = member(&up, down, &group, "b", ttl).await;
    b.r.round().await;
    b.beat.beat().await.unwrap();
    let store_leases = {
        let uri = DownstreamUri::parse(down, None).unwrap();
        let mut st = backend::open_lease_store(&uri).await.unwrap();
        st.leases(&group).await.unwrap()
    };
    let l = store_leases
        .iter()
        .find(|l| l.key == LeaseKey::Table(name.clone()))
        .expect("lease row");
    assert_eq!(
        (l.owner.as_str(), l.epoch),
        ("b", 2),
        "B took the lease over"
    );
    lock.release().await;
    let (a, o) = a_round.await.unwrap();
    assert!(
        matches!(o.error, Some(Error::Fenced { ref owner, epoch: 1, .. }) if owner == "a"),
        "A's commit after losing its lease must fail: {:?}",
        o.error
    );
    assert_eq!(a.metrics.group_fenced.get(), 1);
    assert_eq!(
        rows(down, &name).await,
        vec![r#"[Some("1"), Some("a")]"#, r#"[Some("2"), Some("b")]"#],
        "nothing of A's fenced unit is committed"
    );
    let o = b.r.round().await;
    assert!(o.error.is_none(), "{:?}", o.error);
    assert_eq!(
        rows(down, &name).await,
        vec![
            r#"[Some("1"), Some("a2")]"#,
            r#"[Some("2"), Some("b")]"#,
            r#"[Some("3"), Some("c")]"#
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_lost_its_lease_commits_nothing_on_postgres() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_POSTGRES_URI") else {
        return;
    };
    fenced_member_commits_nothing(&uri).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_lost_its_lease_commits_nothing_on_mariadb() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_MYSQL_URI") else {
        return;
    };
    fenced_member_commits_nothing(&uri).await;
}

#[test]
fn a_group_on_sqlite_or_stdout_is_refused_with_a_clear_error() {
    for down in ["sqlite:///tmp/x.db", "stdout://"] {
        let out = Command::new(BIN)
            .args([
                "--upstream-uri",
                "memory://x",
                "--downstream-uri",
                down,
                "--group",
                "g",
                "--once",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("group") && err.contains("PostgreSQL or MySQL/MariaDB"),
            "{err}"
        );
    }
}
