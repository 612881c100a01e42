//! Discovery cost: a recording `ObjectStore` wrapper counts every call; after the first round
//! (one recursive listing), a round with nothing new costs O(tables) small reads and no
//! recursive listing, and new tables and versions are still found.

use crate::support;

use async_trait::async_trait;
use cdc_common::layout::LayoutConfig;
use cdc_common::{DdlKind, TableName};
use cdc_consumer::config::TableFilter;
use cdc_consumer::discovery::{Discovery, Upstream};
use cdc_consumer::metrics::Metrics;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use support::*;

#[derive(Debug, Default)]
struct Counts {
    list: AtomicU64,
    list_delim: AtomicU64,
    get: AtomicU64,
    /// Objects (not directories) returned by delimiter listings.
    listed_objects: AtomicU64,
}

#[derive(Debug)]
struct Recording {
    inner: Arc<dyn ObjectStore>,
    counts: Arc<Counts>,
}

impl fmt::Display for Recording {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recording({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for Recording {
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
        self.counts.get.fetch_add(1, Ordering::Relaxed);
        self.inner.get_opts(l, o).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.counts.list.fetch_add(1, Ordering::Relaxed);
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.counts.list_delim.fetch_add(1, Ordering::Relaxed);
        let r = self.inner.list_with_delimiter(prefix).await?;
        self.counts
            .listed_objects
            .fetch_add(r.objects.len() as u64, Ordering::Relaxed);
        Ok(r)
    }
    async fn copy_opts(&self, from: &Path, to: &Path, o: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, o).await
    }
}

fn take(c: &Counts) -> (u64, u64, u64) {
    (
        c.list.swap(0, Ordering::Relaxed),
        c.list_delim.swap(0, Ordering::Relaxed),
        c.get.swap(0, Ordering::Relaxed),
    )
}

#[tokio::test]
async fn quiet_rounds_cost_o_tables_small_reads_and_no_recursive_listing() {
    const TABLES: u64 = 12;
    let mut w = Writer::new("memory://disc-calls?protocol=csv&include-commit-ts=true");
    for i in 0..TABLES {
        let t = two_cols(&format!("db{}", i % 3), &format!("t{i}"), ts(1));
        w.schema(&t, "", DdlKind::CreateTable).await;
        // Several files per table, so a full walk would cost far more than the bound.
        for f in 0..5 {
            w.file(&t, &[(ts(2 + f), vec![ins(f as i64, "x")])]).await;
        }
    }
    w.checkpoint(ts(10)).await;
    let counts = Arc::new(Counts::default());
    let store = Arc::new(Recording {
        inner: w.store.clone(),
        counts: counts.clone(),
    });
    let cfg = LayoutConfig::from_options(&w.opts);
    let mut d = Discovery::new(
        Upstream::new(store, Metrics::new()),
        cfg,
        TableFilter::all(),
    );

    d.round().await.unwrap();
    let (list, _, _) = take(&counts);
    assert_eq!(list, 1, "the first round lists recursively once");
    assert_eq!(d.catalog().tables.len() as u64, TABLES);

    for round in 0..3 {
        let stats = d.round().await.unwrap();
        let (list, delim, get) = take(&counts);
        assert_eq!(
            list, 0,
            "round {round}: no recursive listing after the first round"
        );
        // root + 3 schemas + per table: meta/, version dir, data dir meta/.
        assert!(
            delim <= 1 + 3 + 3 * TABLES,
            "round {round}: {delim} listings"
        );
        // metadata + one index file per table.
        assert!(get <= 1 + TABLES, "round {round}: {get} gets");
        assert_eq!(stats.new_schema_files, 0);
        assert_eq!(stats.list_calls, delim);
    }

    // New table and new version are found by the incremental rounds.
    let n = two_cols("db0", "fresh", ts(11));
    w.schema(&n, "", DdlKind::CreateTable).await;
    w.file(&n, &[(ts(12), vec![ins(1, "y")])]).await;
    let mut t0v2 = two_cols("db0", "t0", ts(13));
    t0v2.columns[1].name = "renamed".into();
    w.schema(
        &t0v2,
        "ALTER TABLE t0 RENAME COLUMN name TO renamed",
        DdlKind::Other,
    )
    .await;
    w.checkpoint(ts(20)).await;
    let stats = d.round().await.unwrap();
    assert_eq!(stats.new_schema_files, 2);
    let (list, _, _) = take(&counts);
    assert_eq!(list, 0);
    let cat = d.catalog();
    let fresh = &cat.tables[&TableName::new("db0", "fresh")];
    assert_eq!(
        fresh.versions[&ts(11)]
            .dirs
            .values()
            .map(|d| d.indexes.values().sum::<u64>())
            .sum::<u64>(),
        1
    );
    assert!(cat.tables[&TableName::new("db0", "t0")]
        .versions
        .contains_key(&ts(13)));
    assert!(cat.tables[&TableName::new("db0", "t0")].complete_below >= ts(13));
}

#[tokio::test]
async fn without_date_directories_no_round_lists_the_data_files() {
    const TABLES: u64 = 4;
    const FILES: u64 = 30;
    let mut w =
        Writer::new("memory://disc-none?protocol=csv&include-commit-ts=true&date-separator=none");
    let mut tables = Vec::new();
    for i in 0..TABLES {
        let t = two_cols("db", &format!("t{i}"), ts(1));
        w.schema(&t, "", DdlKind::CreateTable).await;
        for f in 0..FILES {
            w.file(&t, &[(ts(2 + f), vec![ins(f as i64, "x")])]).await;
        }
        tables.push(t);
    }
    w.checkpoint(ts(100)).await;
    let counts = Arc::new(Counts::default());
    let store = Arc::new(Recording {
        inner: w.store.clone(),
        counts: counts.clone(),
    });
    let cfg = LayoutConfig::from_options(&w.opts);
    let mut d = Discovery::new(
        Upstream::new(store, Metrics::new()),
        cfg,
        TableFilter::all(),
    );
    d.round().await.unwrap();
    take(&counts);
    counts.listed_objects.swap(0, Ordering::Relaxed);
    for round in 0..3 {
        // A new file in every table each round: their versions stay open.
        for (i, t) in tables.iter().enumerate() {
            let at = ts(200 + round * 10 + i as u64);
            w.file(t, &[(at, vec![ins(1000 + round as i64, "y")])])
                .await;
        }
        w.checkpoint(ts(300 + round * 10)).await;
        d.round().await.unwrap();
        let listed = counts.listed_objects.swap(0, Ordering::Relaxed);
        // Index files and schema files only: never the data files next to them.
        assert!(
            listed <= 2 * TABLES + 2,
            "round {round}: delimiter listings returned {listed} objects ({} data files per table)",
            FILES + round + 1
        );
    }
    let files: u64 = d
        .catalog()
        .tables
        .values()
        .flat_map(|t| t.versions.values())
        .flat_map(|v| v.dirs.values())
        .map(|d| d.indexes.values().sum::<u64>())
        .sum();
    assert_eq!(files, TABLES * (FILES + 3));
}

/// A database-level schema file completes its schema's tables and no other: names sort by
/// schema first, and neighbours that extend the schema's name (`db1`), sort just before it
/// (`da`) or are its prefix (`d`) keep their own barrier.
#[tokio::test]
async fn a_database_barrier_completes_its_schemas_tables_only() {
    let mut w = Writer::new("memory://db-barrier?protocol=csv&include-commit-ts=true");
    let schemas = ["d", "da", "db", "db1", "dc"];
    for s in schemas {
        for t in ["a", "t", "zz"] {
            let def = two_cols(s, t, ts(1));
            w.schema(&def, "", DdlKind::CreateTable).await;
            w.file(&def, &[(ts(2), vec![ins(1, "x")])]).await;
        }
    }
    w.db_schema(
        "db",
        ts(5),
        "ALTER DATABASE db CHARACTER SET utf8mb4",
        DdlKind::Other,
    )
    .await;
    w.checkpoint(ts(10)).await;
    let cfg = LayoutConfig::from_options(&w.opts);
    let mut d = Discovery::new(
        Upstream::new(w.store.clone(), Metrics::new()),
        cfg,
        TableFilter::all(),
    );
    // The first round concludes; a later round counts the barriers it saw again.
    for round in 0..2 {
        d.round().await.unwrap();
        for (name, t) in &d.catalog().tables {
            let want = if name.schema == "db" { ts(5) } else { ts(1) };
            assert_eq!(t.complete_below, want, "round {round}: `{name}`");
        }
        assert_eq!(d.catalog().tables.len(), 15);
    }
}
