//! The encoding pool: `worker-count` threads that turn events into chunks and put them in the
//! spool.
//!
//! ```text
//! add_dml_event(d, ev, wake, flush)
//!     | try-free handoff: unbounded crossbeam queue of encoder[fnv(d) % workers]
//!     v
//! encoder thread: TableCodec (one per table version, thread-local map, no lock)
//!     | encode(ev) -> chunk
//!     v
//! spool.try_enqueue(chunk, wake, flush)  -- wake runs now, or later when the spool drains
//!     | InMemory / Spilled / Oversized(entry)       | WaitForDiskQuota
//!     v                                             v
//! writer[fnv(d) % shards] queue              signal pressure to every writer, wait for a
//!                                            release, retry (the dispatcher is not woken)
//! ```
//!
//! # Why the handoff is unbounded
//!
//! `add_dml_event` must never block, and backpressure is the withheld wake, not a full queue. A
//! dispatcher hands in the next transaction only after the wake of the previous one, so the
//! events waiting for an encoder are bounded by the dispatchers' outstanding events (one table's
//! share of one transaction each, in the usual protocol); they are counted by
//! `cdc_sink_encoder_queue_length`. Everything after encoding is under the spool's quota.
//!
//! # Order
//!
//! One dispatcher maps to one encoder thread, which encodes and forwards its events (and its
//! drain markers) in arrival order to one writer queue: order within a dispatcher is kept while
//! different dispatchers encode in parallel.
//!
//! # Spool pressure
//!
//! After an enqueue that spilled (or every 16th one), the encoder looks at the spool: if it
//! holds wakes, it asks every writer to flush (at most once per 20 ms across the pool), because
//! only published batches free spool bytes. On `WaitForDiskQuota` it asks at once.

use crate::ddl::DrainMarker;
use crate::error::{Failure, SinkError};
use crate::metrics::{BusyMeter, SinkMetrics};
use crate::router::DispatcherState;
use crate::writer::{WriterHandle, WriterMsg};
use cdc_common::codec::{Codec, TableCodec};
use cdc_common::{DmlEvent, Ts};
use cdc_spool::{Callback, Enqueued, Spool};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Least time between two pressure signals.
const PRESSURE_GAP: Duration = Duration::from_millis(20);

/// Work for an encoder thread.
pub(crate) enum EncodeTask {
    /// Encode and enqueue one event.
    Dml {
        dispatcher: Arc<DispatcherState>,
        event: DmlEvent,
        wake: Option<Callback>,
        flush: Option<Callback>,
    },
    /// Forward a drain marker behind the dispatcher's earlier events.
    Drain {
        dispatcher: Arc<DispatcherState>,
        marker: DrainMarker,
        remove: bool,
    },
    /// Exit once everything before this is forwarded.
    Stop,
}

/// What every encoder thread shares.
pub(crate) struct EncoderContext {
    pub codec: Arc<dyn Codec>,
    pub spool: Spool,
    pub writers: Vec<WriterHandle>,
    pub failure: Arc<Failure>,
    pub metrics: Arc<SinkMetrics>,
    epoch: Instant,
    last_pressure_ms: AtomicU64,
}

impl EncoderContext {
    pub fn new(
        codec: Arc<dyn Codec>,
        spool: Spool,
        writers: Vec<WriterHandle>,
        failure: Arc<Failure>,
        metrics: Arc<SinkMetrics>,
    ) -> EncoderContext {
        EncoderContext {
            codec,
            spool,
            writers,
            failure,
            metrics,
            epoch: Instant::now(),
            last_pressure_ms: AtomicU64::new(0),
        }
    }

    /// Asks every writer to flush, at most once per [`PRESSURE_GAP`].
    fn signal_pressure(&self) {
        let now = self.epoch.elapsed().as_millis() as u64 + PRESSURE_GAP.as_millis() as u64;
        let last = self.last_pressure_ms.load(Ordering::Relaxed);
        if now < last + PRESSURE_GAP.as_millis() as u64 {
            return;
        }
        if self
            .last_pressure_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            for w in &self.writers {
                w.send(WriterMsg::Pressure);
            }
        }
    }
}

/// The encoder threads and their queues.
pub(crate) struct EncoderPool {
    senders: Vec<Sender<EncodeTask>>,
    threads: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl EncoderPool {
    /// Starts `n` encoder threads.
    pub fn start(n: usize, ctx: Arc<EncoderContext>) -> std::io::Result<EncoderPool> {
        let mut senders = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, rx) = crossbeam_channel::unbounded();
            let ctx = Arc::clone(&ctx);
            let t = std::thread::Builder::new()
                .name(format!("cdc-sink-encoder-{i}"))
                .spawn(move || run(i, rx, ctx))?;
            senders.push(tx);
            threads.push(t);
        }
        Ok(EncoderPool {
            senders,
            threads: std::sync::Mutex::new(threads),
        })
    }

    /// Queues a task on encoder `i` (never blocks). False if the thread is gone.
    pub fn send(&self, i: usize, task: EncodeTask) -> bool {
        match self.senders.get(i) {
            Some(tx) => tx.send(task).is_ok(),
            None => false,
        }
    }

    /// Asks every thread to stop after the work queued before; returns the threads to join
    /// (empty if already stopped).
    pub fn stop(&self) -> Vec<JoinHandle<()>> {
        for tx in &self.senders {
            let _ = tx.send(EncodeTask::Stop);
        }
        std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

type CodecKey = (String, String, Ts);

fn run(i: usize, rx: Receiver<EncodeTask>, ctx: Arc<EncoderContext>) {
    let mut codecs: HashMap<CodecKey, Box<dyn TableCodec>> = HashMap::new();
    let mut meter = BusyMeter::new(
        ctx.metrics
            .worker_busy_ratio
            .with_label_values(&[&format!("encoder-{i}")]),
    );
    let mut count: u64 = 0;
    loop {
        let task = match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(t) => t,
            Err(RecvTimeoutError::Timeout) => {
                meter.tick();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let start = Instant::now();
        match task {
            EncodeTask::Dml {
                dispatcher,
                event,
                wake,
                flush,
            } => {
                ctx.metrics.encoder_queue_length.dec();
                count += 1;
                encode_one(&ctx, &mut codecs, dispatcher, event, wake, flush, count);
            }
            EncodeTask::Drain {
                dispatcher,
                marker,
                remove,
            } => {
                let shard = dispatcher.shard;
                let msg = if remove {
                    WriterMsg::Remove { dispatcher, marker }
                } else {
                    WriterMsg::Drain { dispatcher, marker }
                };
                if let Some(w) = ctx.writers.get(shard) {
                    if !w.send(msg) {
                        tracing::warn!(shard, "writer gone; drain marker dropped");
                    }
                }
            }
            EncodeTask::Stop => return,
        }
        meter.add(start.elapsed());
    }
}

fn encode_one(
    ctx: &EncoderContext,
    codecs: &mut HashMap<CodecKey, Box<dyn TableCodec>>,
    dispatcher: Arc<DispatcherState>,
    event: DmlEvent,
    wake: Option<Callback>,
    flush: Option<Callback>,
    count: u64,
) {
    if ctx.failure.is_failed() {
        // The sink stopped: the event is dropped with its callbacks (no wake, no flush).
        return;
    }
    let key = (
        event.table.schema.clone(),
        event.table.table.clone(),
        event.table.version,
    );
    let tc = match codecs.entry(key) {
        std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
        std::collections::hash_map::Entry::Vacant(v) => match ctx.codec.prepare(&event.table) {
            Ok(tc) => v.insert(tc),
            Err(e) => {
                ctx.failure.fail(SinkError::Encode {
                    dispatcher: dispatcher.id.to_string(),
                    source: Arc::new(e),
                });
                return;
            }
        },
    };
    let mut buf = Vec::with_capacity(event.approx_size() + 16 * event.rows.len() + 64);
    if let Err(e) = tc.encode(&event, &mut buf) {
        ctx.failure.fail(SinkError::Encode {
            dispatcher: dispatcher.id.to_string(),
            source: Arc::new(e),
        });
        return;
    }
    let mut data = bytes::Bytes::from(buf);
    let (mut wake, mut flush) = (wake, flush);
    let entry = loop {
        match ctx.spool.try_enqueue(data, wake, flush) {
            Ok(Enqueued::WaitForDiskQuota {
                data: d,
                wake: w,
                flush: f,
                generation,
            }) => {
                ctx.signal_pressure();
                if ctx.failure.is_failed() {
                    return;
                }
                ctx.spool
                    .wait_for_space_since(generation, crate::config::DISK_QUOTA_POLL);
                (data, wake, flush) = (d, w, f);
            }
            Ok(outcome) => {
                let spilled = matches!(outcome, Enqueued::Spilled(_) | Enqueued::Oversized(_));
                if (spilled || count % 16 == 0) && ctx.spool.stats().holding {
                    ctx.signal_pressure();
                }
                match outcome.into_entry() {
                    Some(e) => break e,
                    None => return,
                }
            }
            Err(e) => {
                ctx.failure.fail(e.into());
                return;
            }
        }
    };
    let shard = dispatcher.shard;
    let msg = WriterMsg::Dml {
        table: Arc::clone(&event.table),
        partition_id: event.partition_id,
        commit_ts: event.commit_ts,
        rows: event.rows.len(),
        dispatcher,
        entry,
    };
    if let Some(w) = ctx.writers.get(shard) {
        w.send(msg);
    }
}
