//! Consumer groups on the real PostgreSQL and MariaDB (`scripts/servers.sh`; under `CI=true` a
//! missing server fails the test): a member that lost its lease commits nothing (fencing),
//! paused members are taken over, and a group's members together apply every row once and in
//! order.

use crate::support;

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
use std::time::{Duration, Instant};
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

/// Every row of a table as text, sorted (a read error as its text).
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
    // The table may be dropped between the two reads (a member applying DROP DATABASE): the
    // error text then stands in for the rows, which the callers compare or wait on again.
    let mut out: Vec<String> = match d.read_rows(name, &cols).await {
        Ok(rows) => rows.into_iter().map(|r| format!("{r:?}")).collect(),
        Err(e) => return vec![format!("read error: {e}")],
    };
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
            let c = postgres_client(down).await;
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
fn a_group_with_once_is_refused_with_a_clear_error() {
    let out = Command::new(BIN)
        .args(["--upstream-uri", "memory://x", "--downstream-uri"])
        .args(["postgres://nobody@127.0.0.1:1/x", "--group", "g", "--once"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("group") && err.contains("--once"), "{err}");
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

/// A `storage-consumer` process in the group.
struct Proc {
    child: std::process::Child,
}

impl Proc {
    fn start(up: &str, down: &str, group: &str, id: &str, log: &std::path::Path) -> Proc {
        Self::start_with(up, down, group, id, log, &[])
    }

    fn start_with(
        up: &str,
        down: &str,
        group: &str,
        id: &str,
        log: &std::path::Path,
        extra: &[&str],
    ) -> Proc {
        Self::spawn(up, down, group, id, log, "1s", extra)
    }

    fn spawn(
        up: &str,
        down: &str,
        group: &str,
        id: &str,
        log: &std::path::Path,
        ttl: &str,
        extra: &[&str],
    ) -> Proc {
        let err = std::fs::File::create(log.join(format!("{id}.log"))).unwrap();
        let child = Command::new(BIN)
            .args([
                "--upstream-uri",
                up,
                "--downstream-uri",
                down,
                "--group",
                group,
                "--member-id",
                id,
                "--lease-ttl",
                ttl,
                "--interval",
                "100ms",
                "--log-level",
                "warn",
            ])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        Proc { child }
    }

    /// Waits up to `secs` for the process to exit by itself.
    fn exit_within(&mut self, secs: u64) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The storage a group test writes while the members run, and the rows it must end with.
struct Workload {
    w: Writer,
    x: String,
    sec: u64,
    step: i64,
    keyed: Vec<cdc_common::TableDef>,
    nokey: Vec<cdc_common::TableDef>,
    xs: Vec<cdc_common::TableDef>,
}

impl Workload {
    /// Schema `s`: two keyed tables (one row updated by every file: order shows) and two
    /// without key (a row applied twice shows); schema `x` (database-level DDL): three tables,
    /// dropped as a whole by [`Workload::finish`].
    async fn new(root: &std::path::Path) -> Workload {
        let up = format!(
            "file://{}?protocol=csv&include-commit-ts=true&output-old-value=true",
            root.display()
        );
        let mut w = Writer::new(&up);
        let s = unique("grps");
        let x = unique("grpx");
        let mut keyed = Vec::new();
        let mut nokey = Vec::new();
        for i in 0..2 {
            let t = two_cols(&s, &format!("k{i}"), ts(1));
            w.schema(&t, "", DdlKind::CreateTable).await;
            w.file(&t, &[(ts(2), vec![ins(0, "v0")])]).await;
            keyed.push(t);
            let mut n = two_cols(&s, &format!("n{i}"), ts(1));
            n.columns[0].primary_key = false;
            w.schema(&n, "", DdlKind::CreateTable).await;
            nokey.push(n);
        }
        w.db_schema(&x, ts(1), "CREATE DATABASE x", DdlKind::CreateSchema)
            .await;
        let mut xs = Vec::new();
        for i in 0..3 {
            let t = two_cols(&x, &format!("x{i}"), ts(1));
            w.schema(&t, "", DdlKind::CreateTable).await;
            xs.push(t);
        }
        w.checkpoint(ts(2)).await;
        Workload {
            w,
            x,
            sec: 10,
            step: 0,
            keyed,
            nokey,
            xs,
        }
    }

    fn uri(&self) -> String {
        self.w.uri.clone()
    }

    /// One file per table, then the checkpoint.
    async fn step(&mut self) {
        let f = self.step;
        self.step += 1;
        for t in &self.keyed {
            self.sec += 1;
            let rows = vec![
                upd(0, &format!("v{f}"), &format!("v{}", f + 1)),
                ins(f + 1, "k"),
            ];
            self.w.file(t, &[(ts(self.sec), rows)]).await;
        }
        for t in self.nokey.iter().chain(&self.xs) {
            self.sec += 1;
            self.w.file(t, &[(ts(self.sec), vec![ins(f, "n")])]).await;
        }
        self.w.checkpoint(ts(self.sec)).await;
    }

    /// DROP DATABASE x after all its DML, CREATE DATABASE x again with a new table `x9`.
    async fn finish(&mut self) {
        let x = self.x.clone();
        self.sec += 1;
        self.w
            .db_schema(&x, ts(self.sec), "DROP DATABASE x", DdlKind::DropSchema)
            .await;
        self.sec += 1;
        self.w
            .db_schema(&x, ts(self.sec), "CREATE DATABASE x", DdlKind::CreateSchema)
            .await;
        self.sec += 1;
        let t = two_cols(&x, "x9", ts(self.sec));
        self.w.schema(&t, "", DdlKind::CreateTable).await;
        self.sec += 1;
        self.w
            .file(&t, &[(ts(self.sec), vec![ins(9, "after-drop")])])
            .await;
        self.w.checkpoint(ts(self.sec)).await;
    }

    /// What the downstream must hold: table -> sorted rows.
    fn model(&self) -> Vec<(TableName, Vec<String>)> {
        let row = |id: i64, v: &str| format!(r#"[Some("{id}"), Some("{v}")]"#);
        let n = self.step;
        let mut out = Vec::new();
        for t in &self.keyed {
            let mut rows: Vec<String> = (1..=n).map(|i| row(i, "k")).collect();
            rows.push(row(0, &format!("v{n}")));
            rows.sort();
            out.push((t.name(), rows));
        }
        for t in &self.nokey {
            let mut rows: Vec<String> = (0..n).map(|i| row(i, "n")).collect();
            rows.sort();
            out.push((t.name(), rows));
        }
        for t in &self.xs {
            out.push((t.name(), Vec::new()));
        }
        out.push((TableName::new(&self.x, "x9"), vec![row(9, "after-drop")]));
        out
    }

    /// Waits until the downstream equals the model (or 60 s), then asserts it does.
    async fn converge(&self, down: &str) {
        let model = self.model();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut got = Vec::new();
            for (t, _) in &model {
                got.push((t.clone(), rows(down, t).await));
            }
            if got == model || Instant::now() > deadline {
                assert_eq!(got, model, "downstream differs from the model");
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// The live leases of the group by owner.
async fn owners(down: &str, group: &str) -> std::collections::BTreeMap<String, usize> {
    let uri = DownstreamUri::parse(down, None).unwrap();
    let mut st = backend::open_lease_store(&uri).await.unwrap();
    let mut out = std::collections::BTreeMap::new();
    for l in st.leases(group).await.unwrap() {
        if l.is_live() {
            *out.entry(l.owner).or_insert(0) += 1;
        }
    }
    out
}

/// Waits (up to `secs`) until `ok` holds for the group's live leases by owner.
async fn wait_owners(
    down: &str,
    group: &str,
    secs: u64,
    ok: impl Fn(&std::collections::BTreeMap<String, usize>) -> bool,
) -> std::collections::BTreeMap<String, usize> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let o = owners(down, group).await;
        if ok(&o) || Instant::now() > deadline {
            return o;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Two members; one is paused (SIGSTOP) past its TTL while storage grows, the other takes
/// all tables over; the paused one resumes (SIGCONT): the downstream equals the model, no row
/// twice (tables without key), none out of order (keyed rows updated by every file).
async fn paused_member_is_taken_over(down: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut wl = Workload::new(&dir.path().join("store")).await;
    let group = unique("g");
    let a = Proc::start(&wl.uri(), down, &group, "a", dir.path());
    let _b = Proc::start(&wl.uri(), down, &group, "b", dir.path());
    for _ in 0..10 {
        wl.step().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let o = wait_owners(down, &group, 10, |o| o.len() == 2).await;
    assert_eq!(o.len(), 2, "both members hold tables: {o:?}");
    a.signal("-STOP");
    for _ in 0..25 {
        wl.step().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let o = wait_owners(down, &group, 10, |o| o.keys().eq(["b"])).await;
    assert_eq!(
        o.keys().collect::<Vec<_>>(),
        ["b"],
        "b took every table over: {o:?}"
    );
    a.signal("-CONT");
    for _ in 0..10 {
        wl.step().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wl.finish().await;
    wl.converge(down).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_member_is_taken_over_and_applies_nothing_twice_on_postgres() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_POSTGRES_URI") else {
        return;
    };
    paused_member_is_taken_over(&uri).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_member_is_taken_over_and_applies_nothing_twice_on_mariadb() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_MYSQL_URI") else {
        return;
    };
    paused_member_is_taken_over(&uri).await;
}

/// Two members with a long lease TTL (15 s, a beat every 5 s); one is stopped with SIGTERM (as
/// systemd or Kubernetes stop a process): it exits 0 after its round, releases its leases and
/// deletes its member row, so the other holds every table within one of its beats, long before
/// the stopped member's leases would have expired; the downstream then equals the model.
async fn stopped_member_hands_over(down: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut wl = Workload::new(&dir.path().join("store")).await;
    let group = unique("g");
    let mut a = Proc::spawn(&wl.uri(), down, &group, "a", dir.path(), "15s", &[]);
    let _b = Proc::spawn(&wl.uri(), down, &group, "b", dir.path(), "15s", &[]);
    for _ in 0..5 {
        wl.step().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let o = wait_owners(down, &group, 30, |o| o.len() == 2).await;
    assert_eq!(o.len(), 2, "both members hold tables: {o:?}");
    let t0 = Instant::now();
    a.signal("-TERM");
    let st = a.exit_within(20).expect("a exits after SIGTERM");
    assert!(st.success(), "a graceful stop exits 0: {st:?}");
    let uri = DownstreamUri::parse(down, None).unwrap();
    let mut st = backend::open_lease_store(&uri).await.unwrap();
    // Every lease row of the group is b's and live (a released its rows; none expired yet).
    let all_b = |ls: &[cdc_consumer::group::store::LeaseRow]| {
        ls.iter().all(|l| l.owner == "b" && l.is_live())
    };
    let mut leases = st.leases(&group).await.unwrap();
    while !all_b(&leases) && t0.elapsed() < Duration::from_secs(9) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        leases = st.leases(&group).await.unwrap();
    }
    assert!(
        all_b(&leases),
        "b holds every lease {:?} after the SIGTERM, before a's 15 s TTL could expire: {leases:?}",
        t0.elapsed()
    );
    let members: Vec<String> = st
        .members(&group)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.member)
        .collect();
    assert_eq!(members, ["b"], "a deleted its member row");
    for _ in 0..5 {
        wl.step().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wl.finish().await;
    wl.converge(down).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_stopped_with_sigterm_hands_its_tables_over_at_once_on_postgres() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_POSTGRES_URI") else {
        return;
    };
    stopped_member_hands_over(&uri).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_stopped_with_sigterm_hands_its_tables_over_at_once_on_mariadb() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_MYSQL_URI") else {
        return;
    };
    stopped_member_hands_over(&uri).await;
}

/// Three members, one killed (SIGKILL) mid-run and a fourth started later, while storage grows
/// and schema `x` is dropped as a whole (a database-level DDL across tables the members own):
/// the downstream equals the model and the drop applied once, after all of x's DML.
async fn three_members_one_killed_one_late(down: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut wl = Workload::new(&dir.path().join("store")).await;
    let group = unique("g");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let _a = Proc::start_with(
        &wl.uri(),
        down,
        &group,
        "a",
        dir.path(),
        &["--metrics-addr", &addr.to_string()],
    );
    let b = Proc::start(&wl.uri(), down, &group, "b", dir.path());
    let _c = Proc::start(&wl.uri(), down, &group, "c", dir.path());
    for _ in 0..10 {
        wl.step().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let o = wait_owners(down, &group, 10, |o| o.len() == 3).await;
    assert_eq!(o.len(), 3, "three members hold tables: {o:?}");
    b.signal("-KILL");
    for _ in 0..15 {
        wl.step().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _d = Proc::start(&wl.uri(), down, &group, "d", dir.path());
    for _ in 0..10 {
        wl.step().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let o = wait_owners(down, &group, 10, |o| {
        o.contains_key("d") && !o.contains_key("b")
    })
    .await;
    assert!(o.contains_key("d") && !o.contains_key("b"), "{o:?}");
    wl.finish().await;
    wl.converge(down).await;
    // Member a's view of the group: every member with its tables and lease ages.
    let g: serde_json::Value = serde_json::from_str(&http_get_ok(addr, "/group").await).unwrap();
    assert_eq!(g["group"], group.as_str());
    assert_eq!(g["member"], "a");
    let live: Vec<&str> = g["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["live"] == true)
        .map(|m| m["member"].as_str().unwrap())
        .collect();
    assert_eq!(live, ["a", "c", "d"], "{g}");
    let leases = g["leases"].as_array().unwrap();
    assert!(
        leases.iter().all(|l| l["age_ms"].as_i64().unwrap() >= 0),
        "{g}"
    );
    let owned = g["owned"].as_array().unwrap().len();
    assert!(owned >= 1, "{g}");
    // `/health` covers the tables its member owns. A lease taken after the member's last round
    // (member b's tables move on) shows in `owned` before a round reports the table, so the
    // two are compared within one response, once a round has caught up (bounded).
    let covered = |h: &serde_json::Value| {
        let owned = h["group"]["owned"]
            .as_array()
            .map(|o| {
                o.iter()
                    .filter(|t| !t.as_str().unwrap_or("").ends_with(".*"))
                    .count()
            })
            .unwrap_or(usize::MAX);
        h["tables"].as_object().map(|t| t.len()) == Some(owned)
    };
    let mut h = serde_json::Value::Null;
    for _ in 0..100 {
        h = serde_json::from_str(&http_get_raw(addr, "/health").await.1).unwrap();
        if covered(&h) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(h["group"]["group"], group.as_str());
    assert!(covered(&h), "/health covers the owned tables: {h}");
    let m = http_get_ok(addr, "/metrics").await;
    assert!(
        m.contains(&format!(
            "cdc_consumer_group_info{{group=\"{group}\",member=\"a\"}} 1"
        )),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_one_killed_one_late_equal_the_model_on_postgres() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_POSTGRES_URI") else {
        return;
    };
    three_members_one_killed_one_late(&uri).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_one_killed_one_late_equal_the_model_on_mariadb() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_MYSQL_URI") else {
        return;
    };
    three_members_one_killed_one_late(&uri).await;
}

/// A member paused (SIGSTOP) inside a unit's transaction holds row locks the member taking its
/// table over needs; on PostgreSQL the server ends that session after the lease TTL
/// (`idle_in_transaction_session_timeout`), so the survivor finishes without the paused member
/// ever resuming.
async fn paused_inside_a_transaction(down: String) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    std::fs::create_dir_all(&root).unwrap();
    let up = format!(
        "file://{}?protocol=csv&include-commit-ts=true&output-old-value=true",
        root.display()
    );
    let mut w = Writer::new(&up);
    let s = unique("grpi");
    let t = two_cols(&s, "t", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    // Files below the COPY threshold, applied one row per statement: long transactions.
    let per_file = cdc_consumer::backend::postgres::COPY_MIN_ROWS as i64 - 1;
    let files = 12_000 / per_file;
    for f in 0..files {
        let rows = (0..per_file).map(|i| ins(f * per_file + i, "r")).collect();
        w.file(&t, &[(ts(2 + f as u64), rows)]).await;
    }
    w.checkpoint(ts(100)).await;
    let group = unique("g");
    // One file per transaction (a unit of several would reach the COPY threshold and finish
    // before a pause could land inside it).
    let slow = ["--batch-rows", "1", "--unit-files", "1"];
    let a = Proc::start_with(&up, &down, &group, "a", dir.path(), &slow);
    // Pause a while its session is inside a transaction writing the table.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            Instant::now() < deadline,
            "member a never paused inside a transaction"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
        a.signal("-STOP");
        tokio::time::sleep(Duration::from_millis(100)).await;
        if idle_in_transaction(&down, &s).await {
            break;
        }
        a.signal("-CONT");
    }
    let _b = Proc::start_with(&up, &down, &group, "b", dir.path(), &slow);
    let name = TableName::new(&s, "t");
    let want = (files * per_file) as usize;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = rows(&down, &name).await.len();
        if n == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "b applied {n} of {want} rows while a stays paused"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    a.signal("-CONT");
}

/// True when a session of `down` sits idle inside a transaction that wrote schema `s`'s table.
async fn idle_in_transaction(down: &str, s: &str) -> bool {
    if down.starts_with("postgres") {
        let pg = postgres_client(down).await;
        let q = format!(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' \
             AND query LIKE '%{s}%'"
        );
        let n: i64 = pg.query_one(&q, &[]).await.unwrap().get(0);
        n == 1
    } else {
        use mysql_async::prelude::Queryable;
        let mut c = mysql_async::Conn::from_url(down).await.unwrap();
        let n: Option<i64> = c
            .query_first(
                "SELECT count(*) FROM information_schema.innodb_trx t \
                 JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id \
                 WHERE p.command = 'Sleep' AND t.trx_rows_modified > 0",
            )
            .await
            .unwrap();
        n == Some(1)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_paused_inside_a_transaction_does_not_block_the_takeover_on_postgres() {
    if let Some(down) = cdc_common::testing::server_uri("CDC_TEST_POSTGRES_URI") {
        paused_inside_a_transaction(down).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_paused_inside_a_transaction_does_not_block_the_takeover_on_mariadb() {
    if let Some(down) = cdc_common::testing::server_uri("CDC_TEST_MYSQL_URI") {
        paused_inside_a_transaction(down).await;
    }
}
