//! Consumer group throughput and takeover on PostgreSQL.
//!
//! ```text
//! cargo run --release -p cdc-consumer --example group_bench -- POSTGRES_URI [ROWS_PER_TABLE]
//! ```
//!
//! 64 tables (`id BIGINT` key, two short text columns), files of 1000 rows, csv with commit ts
//! in local storage. Measured in one run, each group into fresh schemas of the same database:
//!
//! - replay time of a group of 1, 2 and 4 members (in one process, each member with its own
//!   downstream connections, as separate processes would have), as rows per second, the groups
//!   of 2 and 4 beside the group of 1;
//! - takeover: with a group of 2 drained, one member stops (its round loop and heartbeat end, as
//!   on SIGKILL) and one new file lands in every table; the time until the survivor applied all
//!   of them, beside the goal of one lease TTL plus one round interval.

use cdc_common::codec::codec_for;
use cdc_common::layout::{Checkpoint, DataDir, DataFile, DateDir, IndexFile, LayoutConfig};
use cdc_common::schema_file::SchemaFile;
use cdc_common::storage::StorageUri;
use cdc_common::testing::bench_line;
use cdc_common::{ColumnDef, ColumnType, DdlKind, DmlEvent, RowChange, TableDef, Ts, Value};
use cdc_consumer::config::{Args, Config};
use cdc_consumer::freshness::Health;
use cdc_consumer::metrics::Metrics;
use clap::Parser;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TABLES: usize = 64;
const FILE_ROWS: u64 = 1000;
const TTL: &str = "2s";
const TTL_SECS: f64 = 2.0;
const INTERVAL_SECS: f64 = 0.1;

fn def(schema: &str, i: usize) -> TableDef {
    let s = |n: &str| ColumnDef::new(n, ColumnType::VarChar).with_precision(Some(32), None);
    TableDef {
        schema: schema.into(),
        table: format!("t{i:02}"),
        table_id: 0,
        version: Ts::from_parts(1_700_000_000_000, 0),
        columns: vec![
            ColumnDef::new("id", ColumnType::BigInt).pk(),
            s("a"),
            s("b"),
        ],
    }
}

/// Writes storage as the sink does; returns the number of data files per table.
struct Store {
    store: Arc<dyn ObjectStore>,
    cfg: LayoutConfig,
    opts: cdc_common::SinkOptions,
    uri: String,
    next_index: Vec<u64>,
    next_row: Vec<u64>,
    sec: u64,
}

impl Store {
    fn new(root: &std::path::Path) -> Store {
        std::fs::create_dir_all(root).expect("mkdir");
        let uri = format!(
            "file://{}?protocol=csv&include-commit-ts=true&date-separator=none",
            root.display()
        );
        let (s, opts) = StorageUri::parse_sink(&uri).expect("uri");
        Store {
            store: s.build().expect("store"),
            cfg: LayoutConfig::from_options(&opts),
            opts,
            uri,
            next_index: vec![0; TABLES],
            next_row: vec![0; TABLES],
            sec: 1,
        }
    }

    async fn put(&self, p: String, b: Vec<u8>) {
        self.store
            .put(&Path::parse(&p).expect("path"), PutPayload::from(b))
            .await
            .expect("put");
    }

    async fn tables(&self, schema: &str) {
        for t in 0..TABLES {
            let f = SchemaFile::for_table(&def(schema, t), "", &DdlKind::CreateTable);
            self.put(f.path().build().expect("path"), f.to_json().into_bytes())
                .await;
        }
    }

    /// One file of `rows` rows into table `t`.
    async fn file(&mut self, schema: &str, t: usize, rows: u64) {
        let d = def(schema, t);
        let tc = codec_for(&self.opts).unwrap().prepare(&d).unwrap();
        let table = Arc::new(d.clone());
        let mut out = Vec::new();
        tc.file_header(&mut out);
        self.sec += 1;
        let start = self.next_row[t];
        self.next_row[t] += rows;
        for chunk in (start..start + rows).collect::<Vec<_>>().chunks(100) {
            let rows = chunk
                .iter()
                .map(|i| RowChange::Insert {
                    after: vec![
                        Value::Int(*i as i64),
                        Value::String(format!("a{i:030}").into()),
                        Value::String(format!("b{:030}", i * 7).into()),
                    ],
                })
                .collect();
            tc.encode(
                &DmlEvent {
                    table: table.clone(),
                    partition_id: None,
                    commit_ts: Ts::from_parts(1_700_000_000_000 + self.sec, 0),
                    rows,
                },
                &mut out,
            )
            .unwrap();
        }
        self.next_index[t] += 1;
        let f = DataFile {
            dir: DataDir {
                schema: schema.into(),
                table: d.table.clone(),
                version: d.version,
                partition_id: None,
                date: DateDir::for_ts(self.opts.date_separator, d.version),
            },
            dispatcher_id: None,
            index: self.next_index[t],
        };
        self.put(f.build(&self.cfg).unwrap(), out).await;
        self.put(
            f.index_file().build().unwrap(),
            IndexFile::content(&f.file_name(&self.cfg).unwrap()).into_bytes(),
        )
        .await;
    }

    async fn checkpoint(&self) {
        self.put(
            "metadata".into(),
            Checkpoint {
                checkpoint_ts: Ts::from_parts(1_700_000_000_000 + self.sec, 0),
            }
            .build()
            .into_bytes(),
        )
        .await;
    }
}

/// Data files applied in `schema` (the progress record's file indexes summed).
async fn applied_files(pg: &tokio_postgres::Client, schema: &str) -> i64 {
    pg.query_one(
        "SELECT coalesce(sum(file_index), 0)::bigint FROM public.cdc_consumer_progress \
         WHERE schema_name = $1 AND dispatcher <> '#ddl'",
        &[&schema],
    )
    .await
    .map(|r| r.get(0))
    .unwrap_or(0)
}

/// A member: its round loop runs until `stop`.
struct Member {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

async fn member(up: &str, down: &str, group: &str, id: &str) -> Member {
    let args = Args::parse_from([
        "storage-consumer",
        "--upstream-uri",
        up,
        "--downstream-uri",
        down,
        "--group",
        group,
        "--member-id",
        id,
        "--lease-ttl",
        TTL,
        "--interval",
        "100ms",
    ]);
    let cfg = Config::from_args(&args).expect("config");
    let metrics = Metrics::new();
    let health = Arc::new(Mutex::new(Health::default()));
    let mut r = cdc_consumer::replayer(&cfg, metrics.clone(), health.clone())
        .await
        .expect("replayer");
    let g = cfg.group.clone().expect("group");
    let guard = cdc_consumer::join_group(&cfg, &g, &mut r, health, metrics)
        .await
        .expect("join");
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let task = tokio::spawn(async move {
        let _heartbeat = guard;
        while !s.load(Ordering::Relaxed) {
            r.round().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    Member { stop, task }
}

/// Waits until the group's live leases are spread evenly over its `n` members (every table
/// created, every member at its target); returns how long that took.
async fn wait_balanced(pg: &tokio_postgres::Client, group: &str, n: usize) -> Duration {
    let t0 = Instant::now();
    let per = TABLES / n;
    loop {
        let rows = pg
            .query(
                "SELECT count(*) FROM public.cdc_consumer_leases WHERE group_name = $1 \
                 AND owner <> '' AND expiry_ms > (extract(epoch from clock_timestamp()) * 1000)::bigint \
                 GROUP BY owner",
                &[&group],
            )
            .await
            .unwrap_or_default();
        let counts: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        // Table leases plus the schema's own lease: at least `per` each, every table held.
        if counts.len() == n && counts.iter().all(|c| *c as usize >= per) {
            return t0.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_files(pg: &tokio_postgres::Client, schema: &str, files: i64) {
    while applied_files(pg, schema).await < files {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Busy and total jiffies of every CPU of the machine so far (`/proc/stat`), the consumer and
/// the database server together: on a machine this small, what limits a group.
fn cpu_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = fields.iter().take(8).sum();
    // idle and iowait are not busy.
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// The share of the machine's CPUs that were busy since `since` (from [`cpu_jiffies`]).
fn busy_since(since: (u64, u64)) -> f64 {
    let now = cpu_jiffies();
    (now.0 - since.0) as f64 / (now.1 - since.1).max(1) as f64
}

/// Replays `per_table` rows into each of 64 tables with `n` members; returns (rows/s, the
/// members and the storage, for the takeover).
async fn run(
    pg_uri: &str,
    pg: &tokio_postgres::Client,
    dir: &std::path::Path,
    n: usize,
    per_table: u64,
) -> (f64, Vec<Member>, Store, String) {
    let schema = format!("gbench{n}_{}", std::process::id());
    let mut st = Store::new(&dir.join(&schema));
    // The tables first: the members join, create them and spread their leases before the
    // clock starts (the figure is the group's replay rate, not its join time).
    st.tables(&schema).await;
    st.checkpoint().await;
    let group = schema.clone();
    let mut members = Vec::new();
    for i in 0..n {
        members.push(member(&st.uri, pg_uri, &group, &format!("m{i}")).await);
    }
    let joined = wait_balanced(pg, &group, n).await;
    eprintln!(
        "group of {n}: leases spread in {:.2} s",
        joined.as_secs_f64()
    );
    let files = per_table.div_ceil(FILE_ROWS);
    for t in 0..TABLES {
        for _ in 0..files {
            st.file(&schema, t, FILE_ROWS).await;
        }
    }
    let t0 = Instant::now();
    let cpu0 = cpu_jiffies();
    st.checkpoint().await;
    wait_files(pg, &schema, (files as usize * TABLES) as i64).await;
    let secs = t0.elapsed().as_secs_f64();
    let rows = (files * FILE_ROWS) as f64 * TABLES as f64;
    eprintln!(
        "group of {n}: {rows} rows in {secs:.2} s, the machine's {} CPUs {:.0}% busy",
        std::thread::available_parallelism().map_or(0, |p| p.get()),
        busy_since(cpu0) * 100.0
    );
    (rows / secs, members, st, schema)
}

fn stop(ms: Vec<Member>) {
    for m in ms {
        m.stop.store(true, Ordering::Relaxed);
        m.task.abort();
    }
}

#[tokio::main]
async fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let pg_uri = argv
        .get(1)
        .expect("usage: group_bench POSTGRES_URI [ROWS_PER_TABLE]");
    let per_table: u64 = argv.get(2).and_then(|s| s.parse().ok()).unwrap_or(4000);
    let (pg, conn) = tokio_postgres::connect(pg_uri, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let dir = tempfile::tempdir().expect("tempdir");
    let (one, ms, _, _) = run(pg_uri, &pg, dir.path(), 1, per_table).await;
    stop(ms);
    let (four, ms, _, _) = run(pg_uri, &pg, dir.path(), 4, per_table).await;
    stop(ms);
    let (two, mut ms, mut st, schema) = run(pg_uri, &pg, dir.path(), 2, per_table).await;
    bench_line(
        "consumer",
        "group of 1, PostgreSQL, 64 tables",
        one,
        "rows/s",
        ("", 0.0),
        "",
    );
    bench_line(
        "consumer",
        "group of 2, PostgreSQL, 64 tables",
        two,
        "rows/s",
        ("group of 1", one),
        ">= 1.6x",
    );
    bench_line(
        "consumer",
        "group of 4, PostgreSQL, 64 tables",
        four,
        "rows/s",
        ("group of 1", one),
        "",
    );
    // Takeover: stop one member of the drained group of 2, then one new file per table.
    let before = applied_files(&pg, &schema).await;
    let gone = ms.pop().expect("two members");
    stop(vec![gone]);
    let t0 = Instant::now();
    for t in 0..TABLES {
        st.file(&schema, t, 10).await;
    }
    st.checkpoint().await;
    wait_files(&pg, &schema, before + TABLES as i64).await;
    let takeover = t0.elapsed().as_secs_f64();
    bench_line(
        "consumer",
        "group takeover: a stopped member's tables applied by the survivor",
        takeover,
        "s",
        ("lease TTL + one round", TTL_SECS + INTERVAL_SECS),
        "<= 1.0x",
    );
    stop(ms);
}
