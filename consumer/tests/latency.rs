//! Requests overlap under latency: over a store that answers every GET and delimiter listing
//! after a fixed delay, discovery warms its index and schema reads and its listings (up to 64 in
//! flight at once, the same requests as one by one), and the replayer reads data files ahead
//! (by default up to 32 in flight while one is applied; none with `--read-ahead 0`; no more
//! than `--read-ahead-bytes` of stored data allow), the read-ahead gauges go back to zero, and
//! every row still lands once, in order.

use crate::support;

use async_trait::async_trait;
use cdc_common::{ColumnDef, ColumnType, DdlKind, TableName};
use cdc_consumer::backend::sqlite::SqliteDownstream;
use cdc_consumer::backend::Downstream;
use cdc_consumer::config::TableFilter;
use cdc_consumer::discovery::{Discovery, Upstream};
use cdc_consumer::freshness::Health;
use cdc_consumer::metrics::Metrics;
use cdc_consumer::replay::Replayer;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

/// How long every GET and delimiter listing takes.
const DELAY: Duration = Duration::from_millis(20);

/// In flight now and at most, for one kind of request.
#[derive(Debug, Default)]
struct Gauge {
    now: AtomicU64,
    max: AtomicU64,
    total: AtomicU64,
}

impl Gauge {
    async fn around<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
        self.total.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(DELAY).await;
        let r = f.await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        r
    }

    /// (most in flight at once, requests) since the last take.
    fn take(&self) -> (u64, u64) {
        (
            self.max.swap(0, Ordering::SeqCst),
            self.total.swap(0, Ordering::SeqCst),
        )
    }
}

#[derive(Default)]
struct Gauges {
    data_gets: Gauge,
    other_gets: Gauge,
    lists: Gauge,
    /// The replayer's metrics, sampled around each data file GET.
    metrics: Metrics,
    /// Most stored bytes the read-ahead window held (`cdc_consumer_read_ahead_bytes`) when a
    /// data file GET started or ended.
    max_held: AtomicU64,
}

impl fmt::Debug for Gauges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gauges").finish_non_exhaustive()
    }
}

impl Gauges {
    fn sample_held(&self) {
        let held = self.metrics.read_ahead_bytes.get().max(0) as u64;
        self.max_held.fetch_max(held, Ordering::SeqCst);
    }
}

#[derive(Debug)]
struct Slow {
    inner: Arc<dyn ObjectStore>,
    g: Arc<Gauges>,
}

impl fmt::Display for Slow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Slow({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for Slow {
    async fn put_opts(&self, l: &Path, p: PutPayload, o: PutOptions) -> Result<PutResult> {
        self.inner.put_opts(l, p, o).await
    }
    async fn put_multipart_opts(
        &self,
        l: &Path,
        o: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(l, o).await
    }
    async fn get_opts(&self, l: &Path, o: GetOptions) -> Result<GetResult> {
        let data = l
            .filename()
            .is_some_and(|n| n.starts_with("CDC") && !n.ends_with(".index"));
        if !data {
            return self.g.other_gets.around(self.inner.get_opts(l, o)).await;
        }
        self.g.sample_held();
        let r = self.g.data_gets.around(self.inner.get_opts(l, o)).await;
        self.g.sample_held();
        r
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.g
            .lists
            .around(self.inner.list_with_delimiter(prefix))
            .await
    }
    async fn copy_opts(&self, from: &Path, to: &Path, o: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, o).await
    }
}

const TABLES: i64 = 12;
const FILES: i64 = 4;

/// The name of row `id`: 60 characters, so a file's size is its rows' count times a constant.
fn name(id: i64) -> String {
    format!("r{id:059}")
}

/// TABLES tables of FILES files of `rows` rows each, checkpoint above all of them.
async fn storage(rows: i64) -> Writer {
    storage_of(TABLES, rows).await
}

/// `tables` tables of FILES files of `rows` rows each, checkpoint above all of them.
async fn storage_of(tables: i64, rows: i64) -> Writer {
    storage_with(tables, rows, 1, "").await
}

/// As [`storage_of`], each file `secs_apart` seconds after the one before, `options` added to
/// the storage URI (a day apart with `&date-separator=day`: each file in a date directory of
/// its own).
async fn storage_with(tables: i64, rows: i64, secs_apart: u64, options: &str) -> Writer {
    static STORES: AtomicU64 = AtomicU64::new(0);
    let n = STORES.fetch_add(1, Ordering::SeqCst);
    let mut w = Writer::new(&format!(
        "memory://latency-{n}?protocol=csv&include-commit-ts=true{options}"
    ));
    for t in 0..tables {
        let def = two_cols("db", &format!("t{t:02}"), ts(1));
        w.schema(&def, "", DdlKind::CreateTable).await;
        for f in 0..FILES {
            let ids = f * rows..(f + 1) * rows;
            let changes = ids.map(|id| ins(id, &name(id))).collect();
            w.file(&def, &[(ts(2 + f as u64 * secs_apart), changes)])
                .await;
        }
    }
    w.checkpoint(ts(100.max(10 + FILES as u64 * secs_apart)))
        .await;
    w
}

/// The largest data file's size in `w`'s storage.
async fn largest_data_file(w: &Writer) -> u64 {
    use futures::TryStreamExt;
    let all: Vec<ObjectMeta> = w.store.list(None).try_collect().await.unwrap();
    all.iter()
        .filter(|m| {
            m.location
                .filename()
                .is_some_and(|n| n.starts_with("CDC") && !n.ends_with(".index"))
        })
        .map(|m| m.size)
        .max()
        .unwrap()
}

fn slow(w: &Writer) -> (Upstream, Arc<Gauges>) {
    let g = Arc::new(Gauges::default());
    let store = Arc::new(Slow {
        inner: w.store.clone(),
        g: g.clone(),
    });
    (Upstream::new(store, g.metrics.clone()), g)
}

#[tokio::test]
async fn discovery_warms_its_reads_and_listings_with_the_same_requests() {
    let w = storage(1).await;
    let (up, g) = slow(&w);
    let mut d = Discovery::new(up, w.cfg, TableFilter::all());

    d.round().await.unwrap();
    let (max, n) = g.other_gets.take();
    // metadata + 12 schema files + 12 index files
    assert_eq!(n, 1 + 2 * TABLES as u64, "first round GETs");
    assert!(
        max >= 8,
        "first round: at most {max} GETs in flight at once"
    );

    d.round().await.unwrap();
    let (max_get, n_get) = g.other_gets.take();
    let (max_list, n_list) = g.lists.take();
    // metadata + one index file per table
    assert_eq!(n_get, 1 + TABLES as u64, "second round GETs");
    // root, the schema, and per table: meta/, version dir, data dir meta/
    assert_eq!(n_list, 2 + 3 * TABLES as u64, "second round listings");
    assert!(max_get >= 8, "second round: at most {max_get} GETs at once");
    assert!(
        max_list >= 8,
        "second round: at most {max_list} listings at once"
    );
    assert_eq!(g.data_gets.take().1, 0, "discovery reads no data file");
}

#[tokio::test]
async fn discovery_warms_many_more_reads_at_once_than_sixteen() {
    let tables = 40;
    let w = storage_of(tables, 1).await;
    let (up, g) = slow(&w);
    let mut d = Discovery::new(up, w.cfg, TableFilter::all());
    d.round().await.unwrap();
    let (max, n) = g.other_gets.take();
    assert_eq!(n, 1 + 2 * tables as u64, "first round GETs");
    // The 40 schema files are read 64 at a time: at once.
    assert!(
        max > 16,
        "first round over {tables} tables: at most {max} GETs in flight at once"
    );
}

/// What a replay over the slow store showed.
struct Seen {
    /// Most data file GETs in flight at once.
    max_in_flight: u64,
    /// Most stored bytes the read-ahead window held when a data file GET started or ended.
    max_held: u64,
    /// Seconds the replay waited for data files (`cdc_consumer_read_wait_seconds_total`).
    read_wait: f64,
    /// Data files a step read itself (`cdc_consumer_read_ahead_misses_total`).
    misses: u64,
}

/// Replays `w`'s storage (`rows` rows per file) with the replayer set by `set`; checks every
/// data file is read once, every table holds its rows in order, and the read-ahead gauges are
/// back to zero once the rounds ended.
async fn replay(w: &Writer, rows: i64, set: impl FnOnce(&mut Replayer)) -> Seen {
    let (up, g) = slow(w);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("latency.db");
    let disc = Discovery::new(up, w.cfg, TableFilter::all());
    let mut r = Replayer::new(
        disc,
        Box::new(SqliteDownstream::open(&db, 64).unwrap()),
        &w.opts,
        cdc_consumer::quarantine::BadFilePolicy::Stop,
        cdc_consumer::replay::ProgressRead::Settled,
        g.metrics.clone(),
        Arc::new(Mutex::new(Health::default())),
    )
    .await
    .unwrap();
    set(&mut r);
    for _ in 0..3 {
        let out = r.round().await;
        assert!(out.error.is_none(), "{:?}", out.error);
    }
    let (max_in_flight, n) = g.data_gets.take();
    assert_eq!(n, (TABLES * FILES) as u64, "each data file is read once");
    let mut down = SqliteDownstream::open(&db, 1).unwrap();
    let cols = [
        ColumnDef::new("id", ColumnType::BigInt).pk(),
        ColumnDef::new("name", ColumnType::Text),
    ];
    for t in 0..TABLES {
        let got = down
            .read_rows(&TableName::new("db", format!("t{t:02}")), &cols)
            .await
            .unwrap();
        let want: Vec<Vec<Option<String>>> = (0..FILES * rows)
            .map(|id| vec![Some(id.to_string()), Some(name(id))])
            .collect();
        assert_eq!(got, want, "table t{t:02}");
    }
    assert_eq!(
        g.metrics.read_ahead_files.get(),
        0,
        "no file is left in the read-ahead window after the rounds"
    );
    // The last read-ahead tasks release their bytes as they are cancelled.
    for _ in 0..100 {
        if g.metrics.read_ahead_bytes.get() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        g.metrics.read_ahead_bytes.get(),
        0,
        "every byte the read-ahead window held was released"
    );
    Seen {
        max_in_flight,
        max_held: g.max_held.load(Ordering::SeqCst),
        read_wait: g.metrics.read_wait_seconds.get(),
        misses: g.metrics.read_ahead_misses.get(),
    }
}

#[tokio::test]
async fn the_replayer_reads_data_files_ahead_and_applies_them_in_order() {
    let w = storage(1).await;
    // 7 files in a window over tables of 4 files: the window fills in the middle of a table.
    let ahead = replay(&w, 1, |r| r.set_read_ahead(7)).await;
    assert!(
        ahead.max_in_flight >= 6,
        "read-ahead 7: at most {} data file GETs were in flight at once",
        ahead.max_in_flight
    );
    // Each step finds its file started: the read-ahead resumes after the tables whose files
    // it has all started, and never skips one it has not.
    assert_eq!(ahead.misses, 0, "data files a step had to read itself");
    let one_by_one = replay(&w, 1, |r| r.set_read_ahead(0)).await;
    assert_eq!(
        one_by_one.max_in_flight, 1,
        "read-ahead 0 reads each file when its step comes"
    );
    assert_eq!(one_by_one.misses, (TABLES * FILES) as u64);
    // Every one of the 48 steps waited for its GET (the store answers after DELAY).
    let floor = (TABLES * FILES) as f64 * DELAY.as_secs_f64();
    assert!(
        one_by_one.read_wait >= floor,
        "read-ahead 0: the replay waited {:.3} s for data files, below the {floor:.3} s its \
         GETs alone take (cdc_consumer_read_wait_seconds_total)",
        one_by_one.read_wait
    );
}

#[tokio::test]
async fn the_read_ahead_follows_a_stream_into_its_next_date_directories() {
    // Each table's 4 files are a day apart: one stream, 4 date directories. A table is not
    // done for the read-ahead while its stream has a later directory than the one started.
    let w = storage_with(TABLES, 1, 86_400, "&date-separator=day").await;
    let ahead = replay(&w, 1, |r| r.set_read_ahead(7)).await;
    assert_eq!(ahead.misses, 0, "data files a step had to read itself");
}

#[tokio::test]
async fn by_default_many_more_data_files_are_in_flight_than_one_table_holds() {
    let w = storage(1).await;
    let seen = replay(&w, 1, |_| {}).await;
    // After the first unit the window fills to 32 files: eight tables of 4 files ahead.
    assert!(
        seen.max_in_flight >= 24,
        "default read-ahead: at most {} data file GETs were in flight at once",
        seen.max_in_flight
    );
}

#[tokio::test]
async fn the_read_ahead_window_holds_no_more_bytes_than_its_budget_allows() {
    let rows = 200;
    let w = storage(rows).await;
    let largest = largest_data_file(&w).await;
    assert!(largest > 10_000, "files of {largest} bytes");
    // Room for ten files: the window never holds more than that (plus the file in flight
    // whose size was not known yet, at most one here since every file has the same size; the
    // first window, before any size is known, is 8 files).
    let budget = 10 * largest;
    let tight = replay(&w, rows, |r| r.set_read_ahead_bytes(budget)).await;
    assert!(
        tight.max_held <= budget + largest,
        "budget {budget} bytes: the read-ahead window held {} bytes",
        tight.max_held
    );
    assert!(
        tight.max_in_flight <= 10,
        "budget of ten files: {} data file GETs were in flight at once",
        tight.max_in_flight
    );
    assert!(
        tight.max_held >= largest,
        "the window held {} bytes: the gauge never counted a fetched file",
        tight.max_held
    );
    // The same storage with the default budget: the bytes were the limit, not the count.
    let wide = replay(&w, rows, |_| {}).await;
    assert!(
        wide.max_in_flight >= 20,
        "default budget: at most {} data file GETs were in flight at once",
        wide.max_in_flight
    );
}
