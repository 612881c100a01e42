//! cdc-sink: the cloud-storage CDC sink that CDC services embed.
//!
//! Dispatchers hand the [`Sink`] row changes and DDLs; the sink encodes them on a pool of
//! threads, holds the encoded chunks in the spool (memory quota, spill to disk, wake control),
//! and writer shards publish them as data, index and schema files in the TiCDC storage layout
//! (see `cdc_common::layout`), plus the `metadata` checkpoint file.
//!
//! ```text
//!  dispatcher --add_dml_event--> encoder_pool --> spool --> writer (shard) --> object store
//!       ^  wake (enqueued)                          |           |  data file, then index file
//!       +------------------- flush (durable) <------+-----------+
//! ```
//!
//! # Modules (one concept each)
//!
//! | module | concept |
//! |--------|---------|
//! | `sink` | the API ([`Sink`]) |
//! | [`config`] | [`SinkConfig`] with explained defaults |
//! | `encoder_pool` | encoder threads, ordered per dispatcher, and the spool handoff |
//! | [`router`] | dispatcher -> encoder thread and writer shard |
//! | `batch` | per (dispatcher, table, version, partition, date) batches |
//! | `batch_table` | a writer's open batches by key and their flush deadlines |
//! | `keyless_cut` | a file of a table without a primary key never ends inside a commit ts |
//! | `writer` | flush triggers and publishing (data, then index, then callbacks) |
//! | [`flush`] | flush reasons |
//! | `ddl` | drain markers and the schema files of a DDL |
//! | `schema` | schema files for data: written or reused |
//! | [`checkpoint`] | the `metadata` file |
//! | [`cleanup`] | expiry of old data files |
//! | [`retry`] | the sink's hook on `cdc_common::retry` (metrics, logs) and its storage errors |
//! | `metrics` | `cdc_sink_*` metrics |
//! | [`error`] | [`SinkError`] |
//! | `failure` | the sticky first error that stops the sink |
//! | `validate` | synchronous checks of rows and commit-ts order: refused, not accepted |
//!
//! # Guarantees
//!
//! - `add_dml_event` never blocks; backpressure is the spool withholding `wake` between its
//!   high and low watermarks.
//! - `flush` runs only after the event's data file and then its index file are in storage;
//!   a failed write never runs it, stops the sink, and the checkpoint never passes it.
//! - One dispatcher, one encoder thread, one writer shard: its events reach storage in order,
//!   and one index file has one writer. The order holds when a `wake` or `flush` callback hands
//!   in the next event; callbacks must not block (see [`Sink`] for what they may do).
//! - `pass_block_event`/`write_block_event` return only after every DML the blocked
//!   dispatchers handed in before is durable; `write_block_event` then writes the schema files.
//! - A data file of a table without a primary key never ends inside a commit ts, except
//!   under spool pressure (`keyless_cut`, docs/format.md rule 7). At `remove`/`close` such a
//!   table's last transaction, when not known complete, is dropped unacknowledged (its `flush`
//!   never runs, the checkpoint stays below it): call `mark_resolved(ts)` or `checkpoint(ts)`
//!   first to have it written.
//! - Restarting never overwrites a data file and reuses a table version whose definition did
//!   not change.
//!
//! # Metrics
//!
//! On the registry given to [`Sink::open`], label `changefeed`: `cdc_sink_flush_bytes`,
//! `cdc_sink_flush_duration_seconds`, `cdc_sink_flushes_total{reason}`,
//! `cdc_sink_files_written_total`, `cdc_sink_bytes_written_total`,
//! `cdc_sink_rows_written_total`, `cdc_sink_ddl_drain_seconds`,
//! `cdc_sink_writer_queue_length{shard}`, `cdc_sink_encoder_queue_length`,
//! `cdc_sink_worker_busy_ratio{worker}`, `cdc_sink_storage_errors_total{op}`,
//! `cdc_sink_storage_retries_total`, `cdc_sink_checkpoint_ts`; plus the spool's `cdc_spool_*`.
//!
//! Serving them is the embedder's job; one that has no `/metrics` endpoint of its own can call
//! [`serve_metrics`] with the same registry (see [`metrics_http`]): it binds an address and
//! answers `GET /metrics` in the Prometheus text format until the returned [`MetricsServer`]
//! is dropped. `cdc-storage generate --metrics-addr` uses it.
//!
//! # Example
//!
//! ```
//! use cdc_common::{ColumnDef, ColumnType, DdlEvent, DdlKind, DmlEvent, RowChange, TableDef, Ts, Value};
//! use cdc_sink::{FileNaming, Sink, SinkConfig};
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let spool_dir = tempfile::tempdir().unwrap();
//! let registry = prometheus::Registry::new();
//! let config = SinkConfig::new("doc-example").with_spool(
//!     cdc_spool::SpoolConfig::builder()
//!         .dir(spool_dir.path())
//!         .memory_quota(64 << 20)
//!         .disk_quota(256 << 20)
//!         .build()
//!         .unwrap(),
//! );
//! let sink = Sink::open(
//!     "memory://doc-example?protocol=csv&flush-interval=100ms",
//!     config,
//!     &registry,
//! )
//! .await
//! .unwrap();
//!
//! let table = Arc::new(TableDef {
//!     schema: "shop".into(),
//!     table: "orders".into(),
//!     table_id: 1,
//!     version: Ts::from_parts(1_700_000_000_000, 0),
//!     columns: vec![
//!         ColumnDef::new("id", ColumnType::BigInt).pk(),
//!         ColumnDef::new("item", ColumnType::VarChar),
//!     ],
//! });
//! let create = DdlEvent {
//!     commit_ts: table.version,
//!     query: "CREATE TABLE orders (id BIGINT PRIMARY KEY, item VARCHAR(64))".into(),
//!     kind: DdlKind::CreateTable,
//!     schema: "shop".into(),
//!     tables: vec![(*table).clone()],
//!     prev_tables: vec![],
//! };
//! sink.add_dispatcher("orders", FileNaming::Table).unwrap();
//! sink.write_block_event(&create, &["orders"]).await.unwrap();
//!
//! let flushed = Arc::new(AtomicUsize::new(0));
//! let commit_ts = Ts::from_parts(1_700_000_001_000, 0);
//! let event = DmlEvent {
//!     table: Arc::clone(&table),
//!     partition_id: None,
//!     commit_ts,
//!     rows: vec![RowChange::Insert {
//!         after: vec![Value::Int(1), Value::String("book".into())],
//!     }],
//! };
//! let f = Arc::clone(&flushed);
//! sink.add_dml_event(
//!     "orders",
//!     event,
//!     Some(Box::new(|| { /* the dispatcher may send its next event */ })),
//!     Some(Box::new(move || { f.fetch_add(1, Ordering::SeqCst); })),
//! )
//! .unwrap();
//!
//! // A later DDL drains the dispatcher first: when it returns, the event is durable.
//! let index = DdlEvent {
//!     commit_ts: Ts::from_parts(1_700_000_002_000, 0),
//!     query: "CREATE INDEX item ON orders (item)".into(),
//!     kind: DdlKind::AddIndex,
//!     ..create.clone()
//! };
//! sink.pass_block_event(&index, &["orders"]).await.unwrap();
//! assert_eq!(flushed.load(Ordering::SeqCst), 1);
//! sink.checkpoint(commit_ts).await.unwrap();
//! sink.close().await.unwrap();
//! # });
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod batch;
mod batch_table;
mod changes;
pub mod checkpoint;
mod checkpoint_update;
pub mod cleanup;
pub mod config;
mod create_only;
mod ddl;
mod encoder_pool;
pub mod error;
mod failure;
pub mod flush;
mod keyless_cut;
mod metrics;
pub mod metrics_http;
mod node_checkpoint;
mod plan_lookup;
pub mod retry;
pub mod router;
mod schema;
mod sink;
mod streamed_put;
mod summary_writer;
mod validate;
mod writer;

pub use cdc_spool::Callback;
pub use checkpoint::CheckpointOutcome;
pub use config::SinkConfig;
pub use error::{Result, SinkError};
pub use flush::FlushReason;
pub use metrics_http::{serve_metrics, MetricsServer};
pub use node_checkpoint::{NodeCheckpoint, NodeProgress};
pub use retry::RetryPolicy;
pub use router::FileNaming;
pub use sink::Sink;
