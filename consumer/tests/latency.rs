//! Requests overlap under latency: over a store that answers every GET and delimiter listing
//! after a fixed delay, discovery warms its index and schema reads and its listings (several in
//! flight at once, the same requests as one by one), and the replayer reads data files ahead
//! (several in flight while one is applied; none with `--read-ahead 0`), and every row still
//! lands once, in order.

mod support;

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

#[derive(Debug, Default)]
struct Gauges {
    data_gets: Gauge,
    other_gets: Gauge,
    lists: Gauge,
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
        let gauge = if data {
            &self.g.data_gets
        } else {
            &self.g.other_gets
        };
        gauge.around(self.inner.get_opts(l, o)).await
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

/// TABLES tables of FILES files, one row each, checkpoint above all of them.
async fn storage() -> Writer {
    let mut w = Writer::new("memory://latency?protocol=csv&include-commit-ts=true");
    for t in 0..TABLES {
        let def = two_cols("db", &format!("t{t:02}"), ts(1));
        w.schema(&def, "", DdlKind::CreateTable).await;
        for f in 0..FILES {
            w.file(&def, &[(ts(2 + f as u64), vec![ins(f, &format!("r{f}"))])])
                .await;
        }
    }
    w.checkpoint(ts(100)).await;
    w
}

fn slow(w: &Writer) -> (Upstream, Arc<Gauges>) {
    let g = Arc::new(Gauges::default());
    let store = Arc::new(Slow {
        inner: w.store.clone(),
        g: g.clone(),
    });
    (Upstream::new(store, Metrics::new()), g)
}

#[tokio::test]
async fn discovery_warms_its_reads_and_listings_with_the_same_requests() {
    let w = storage().await;
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

/// Replays the storage with `read_ahead` files read ahead; returns the most data file GETs in
/// flight at once and checks every table holds its rows.
async fn replay(read_ahead: usize) -> u64 {
    let w = storage().await;
    let (up, g) = slow(&w);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("latency.db");
    let disc = Discovery::new(up, w.cfg, TableFilter::all());
    let mut r = Replayer::new(
        disc,
        Box::new(SqliteDownstream::open(&db, 64).unwrap()),
        &w.opts,
        cdc_consumer::quarantine::BadFilePolicy::Stop,
        cdc_consumer::replay::ProgressRead::Settled,
        Metrics::new(),
        Arc::new(Mutex::new(Health::default())),
    )
    .await
    .unwrap();
    r.set_read_ahead(read_ahead);
    for _ in 0..3 {
        let out = r.round().await;
        assert!(out.error.is_none(), "{:?}", out.error);
    }
    let (max, n) = g.data_gets.take();
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
        let want: Vec<Vec<Option<String>>> = (0..FILES)
            .map(|f| vec![Some(f.to_string()), Some(format!("r{f}"))])
            .collect();
        assert_eq!(got, want, "table t{t:02}");
    }
    max
}

#[tokio::test]
async fn the_replayer_reads_data_files_ahead_and_applies_them_in_order() {
    let ahead = replay(8).await;
    assert!(
        ahead >= 6,
        "read-ahead 8: at most {ahead} data file GETs were in flight at once"
    );
    let one_by_one = replay(0).await;
    assert_eq!(
        one_by_one, 1,
        "read-ahead 0 reads each file when its step comes"
    );
}
