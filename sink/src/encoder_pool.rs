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
//! # Inline fast path
//!
//! A small event (at most `inline-encode-max-rows` rows) of a dispatcher with nothing queued in
//! the pool is encoded on the caller's thread with the dispatcher's own cached codec and offered
//! to the spool there, while the spool's memory has room: the wake then runs before
//! `add_dml_event` returns, with no thread handoff (the low-traffic wake latency). Order holds
//! because the inline path is taken only while the dispatcher's `queued` count is zero (claimed
//! by compare-and-swap; every queued task - event, drain marker, handed-back event - counts until
//! its encoder thread has forwarded it). If the disk quota is full the encoded event is handed to
//! the encoder thread, which waits; the dispatcher never does. Larger events use the pool.
//!
//! # Order on re-entry
//!
//! A wake or flush callback may hand in the dispatcher's next event. On the pool path that is
//! ordered by construction: the event woken is still counted in `queued` until its encoder
//! thread has forwarded it, so the next event queues behind it on the same thread. On the
//! inline path the spool runs the wake inside `try_enqueue`, before the entry is handed to the
//! writer, while the inline claim is held: an event handed in from there goes through the
//! encoder thread, which could reach the writer first. So the inline path puts the wake behind
//! a [`WakeGate`]: run by the spool before the handoff, the wake is only parked; the gate opens
//! once the entry is in the writer's queue and runs a parked wake then, on the same thread
//! (or, for a wake held above the high watermark, on the thread that releases it, as always).
//!
//! ```text
//! inline: try_enqueue -> [wake parked] -> writer.send(entry) -> gate opens -> wake runs
//!                                                                  |
//!                 an event handed in by the wake goes to the pool: behind the entry
//! ```
//!
//! The wake still runs before `add_dml_event` returns, and still while the inline claim is held:
//! an event handed in from it takes the pool, not a nested inline encode, so a dispatcher that
//! always re-enters from its wake does not grow the stack.
//!
//! # Runs
//!
//! An encoder thread that finds more events queued behind the one it took (up to
//! [`ENQUEUE_RUN`]) encodes them all, then offers them with one `Spool::enqueue_many`: one
//! critical section of the spool for the run instead of one per event. Order is unchanged: the
//! spool answers as it would answer the events one by one, the entries are forwarded in order,
//! and each event still counts in its dispatcher's `queued` until it is forwarded, so an event
//! handed in by a wake queues behind it. A wake runs once the spool has accepted its event,
//! before the entries are forwarded, as on the single path. An event the spool refuses for
//! lack of disk space is offered alone (waiting for space, as below), then the rest of the run.
//!
//! # Spool pressure
//!
//! After an enqueue that spilled (or every 16th one), the encoder looks at the spool: if it
//! holds wakes, it asks every writer to flush (at most once per 20 ms across the pool), because
//! only published batches free spool bytes. On `WaitForDiskQuota` it asks at once.

use crate::ddl::DrainMarker;
use crate::error::SinkError;
use crate::failure::Failure;
use crate::metrics::{BusyMeter, SinkMetrics};
use crate::router::DispatcherState;
use crate::writer::{WriterHandle, WriterMsg};
use bytes::Bytes;
use cdc_common::codec::{Codec, TableCodec};
use cdc_common::{DmlEvent, TableDef, Ts};
use cdc_spool::{Callback, Enqueued, Entry, Offer as SpoolOffer, Spool};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Least time between two pressure signals.
const PRESSURE_GAP: Duration = Duration::from_millis(20);

/// Most events an encoder thread encodes before offering them to the spool together (see
/// "Runs" in the module doc): bounds the delay of the first one's wake by the encoding of the
/// others (microseconds for small events).
const ENQUEUE_RUN: usize = 64;

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
    /// Enqueue an event encoded inline that met a full disk quota (waits for space).
    Encoded(Encoded),
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
    let mut codecs: HashMap<CodecKey, (Box<dyn TableCodec>, usize)> = HashMap::new();
    let mut meter = BusyMeter::new(
        ctx.metrics
            .worker_busy_ratio
            .with_label_values(&[&format!("encoder-{i}")]),
    );
    let mut count: u64 = 0;
    // A task taken from the queue behind a run of events, handled next.
    let mut next: Option<EncodeTask> = None;
    let mut run_events: Vec<Encoded> = Vec::with_capacity(ENQUEUE_RUN);
    let mut run_dispatchers: Vec<Arc<DispatcherState>> = Vec::with_capacity(ENQUEUE_RUN);
    loop {
        let task = match next.take() {
            Some(t) => t,
            None => match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(t) => t,
                Err(RecvTimeoutError::Timeout) => {
                    meter.tick();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            },
        };
        let start = Instant::now();
        match task {
            EncodeTask::Dml {
                dispatcher,
                event,
                wake,
                flush,
            } => {
                // This event and the events already queued behind it (up to ENQUEUE_RUN) are
                // encoded, then offered to the spool together (see "Runs" above).
                let mut task = Some((dispatcher, event, wake, flush));
                while let Some((dispatcher, event, wake, flush)) = task.take() {
                    ctx.metrics.encoder_queue_length.dec();
                    count += 1;
                    run_dispatchers.push(Arc::clone(&dispatcher));
                    run_events.extend(encode_one(
                        &ctx,
                        &mut codecs,
                        dispatcher,
                        event,
                        wake,
                        flush,
                    ));
                    if run_dispatchers.len() < ENQUEUE_RUN {
                        match rx.try_recv() {
                            Ok(EncodeTask::Dml {
                                dispatcher,
                                event,
                                wake,
                                flush,
                            }) => task = Some((dispatcher, event, wake, flush)),
                            Ok(other) => next = Some(other),
                            Err(_) => {}
                        }
                    }
                }
                offer_run(&ctx, &mut run_events, count);
                // Each event counts for its dispatcher until it is forwarded (see "Order").
                for d in run_dispatchers.drain(..) {
                    d.leave();
                }
            }
            EncodeTask::Encoded(e) => {
                let d = Arc::clone(&e.dispatcher);
                if !ctx.failure.is_failed() {
                    count += 1;
                    offer(&ctx, e, true, count);
                }
                d.leave();
            }
            EncodeTask::Drain {
                dispatcher,
                marker,
                remove,
            } => {
                let d = Arc::clone(&dispatcher);
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
                d.leave();
            }
            EncodeTask::Stop => return,
        }
        meter.add(start.elapsed());
    }
}

/// The writer-bound facts of one encoded event.
pub(crate) struct Encoded {
    pub dispatcher: Arc<DispatcherState>,
    pub table: Arc<TableDef>,
    pub partition_id: Option<i64>,
    pub commit_ts: Ts,
    pub rows: usize,
    pub data: Bytes,
    pub wake: Option<Callback>,
    pub flush: Option<Callback>,
    /// Opens once the entry is in the writer's queue (inline events; see [`WakeGate`]).
    pub gate: WakeGate,
}

/// Holds an inline event's wake until the event's entry is in the writer's queue (see "Order
/// on re-entry" above). A wake the spool runs while the gate is closed is parked; opening the
/// gate runs it. The gate opens when dropped: after the handoff in [`offer`], or when the event
/// is given up (then a wake the spool ran still runs, as it did before the gate existed; a wake
/// the spool never ran is dropped with the event).
pub(crate) struct WakeGate(Option<Arc<Mutex<GateState>>>);

enum GateState {
    /// The entry is not in the writer's queue yet; the wake, once the spool has run it.
    Closed(Option<Callback>),
    /// The entry is in the writer's queue: a wake runs at once.
    Open,
}

impl WakeGate {
    /// No gate (the pool path, ordered without one).
    pub fn none() -> WakeGate {
        WakeGate(None)
    }

    /// Puts `wake` behind a new, closed gate: returns the wake to give the spool and the gate.
    pub fn wrap(wake: Option<Callback>) -> (Option<Callback>, WakeGate) {
        let Some(wake) = wake else {
            return (None, WakeGate::none());
        };
        let state = Arc::new(Mutex::new(GateState::Closed(None)));
        let shared = Arc::clone(&state);
        let gated: Callback = Box::new(move || {
            let mut st = shared.lock().unwrap_or_else(|e| e.into_inner());
            match &mut *st {
                GateState::Closed(parked) => *parked = Some(wake),
                GateState::Open => {
                    drop(st);
                    wake();
                }
            }
        });
        (Some(gated), WakeGate(Some(state)))
    }
}

impl Drop for WakeGate {
    /// Opens the gate and runs a parked wake (outside the lock).
    fn drop(&mut self) {
        let Some(state) = self.0.take() else {
            return;
        };
        let previous = std::mem::replace(
            &mut *state.lock().unwrap_or_else(|e| e.into_inner()),
            GateState::Open,
        );
        if let GateState::Closed(Some(wake)) = previous {
            wake();
        }
    }
}

/// Encodes `event` with `tc` into one chunk; on error the sink is failed.
fn encode_chunk(
    ctx: &EncoderContext,
    tc: &dyn TableCodec,
    dispatcher: &DispatcherState,
    event: &DmlEvent,
    size_hint: usize,
) -> Option<Bytes> {
    let mut buf = Vec::with_capacity(size_hint.max(64));
    match tc.encode(event, &mut buf) {
        Ok(()) => Some(Bytes::from(buf)),
        Err(e) => {
            ctx.failure.fail(SinkError::Encode {
                dispatcher: dispatcher.id.to_string(),
                source: Arc::new(e),
            });
            None
        }
    }
}

/// What an enqueue attempt that may not wait did.
pub(crate) enum Offer {
    /// Accepted (or dropped because the sink stopped).
    Done,
    /// The disk quota is full: hand this to the dispatcher's encoder thread, which waits.
    WaitForSpace(Encoded),
}

/// Puts an encoded event into the spool and forwards its entry to the writer. With `wait`,
/// waits for disk space as long as needed (encoder threads); without, hands it back.
pub(crate) fn offer(ctx: &EncoderContext, mut e: Encoded, wait: bool, count: u64) -> Offer {
    let entry = loop {
        match ctx
            .spool
            .try_enqueue(std::mem::take(&mut e.data), e.wake.take(), e.flush.take())
        {
            Ok(Enqueued::WaitForDiskQuota {
                data,
                wake,
                flush,
                generation,
            }) => {
                (e.data, e.wake, e.flush) = (data, wake, flush);
                ctx.signal_pressure();
                if !wait {
                    return Offer::WaitForSpace(e);
                }
                if ctx.failure.is_failed() {
                    return Offer::Done;
                }
                ctx.spool
                    .wait_for_space_since(generation, crate::config::DISK_QUOTA_POLL);
            }
            Ok(outcome) => {
                let spilled = matches!(outcome, Enqueued::Spilled(_) | Enqueued::Oversized(_));
                if (spilled || count % 16 == 0) && ctx.spool.stats().holding {
                    ctx.signal_pressure();
                }
                match outcome.into_entry() {
                    Some(entry) => break entry,
                    None => return Offer::Done,
                }
            }
            Err(err) => {
                ctx.failure.fail(err.into());
                return Offer::Done;
            }
        }
    };
    forward(ctx, e, entry);
    Offer::Done
}

/// Hands an accepted event's entry to its dispatcher's writer.
fn forward(ctx: &EncoderContext, e: Encoded, entry: Entry) {
    let shard = e.dispatcher.shard;
    let msg = WriterMsg::Dml {
        table: e.table,
        partition_id: e.partition_id,
        commit_ts: e.commit_ts,
        rows: e.rows,
        dispatcher: e.dispatcher,
        entry,
    };
    if let Some(w) = ctx.writers.get(shard) {
        w.send(msg);
    }
    // The entry is in the writer's queue: a wake parked by the gate runs now, so an event it
    // hands in reaches the writer behind this one.
    drop(e.gate);
}

/// Puts a run of events encoded by an encoder thread into the spool with
/// [`Spool::enqueue_many`] (one critical section for every stretch of entries that go to
/// memory or to a write buffer) and forwards each entry to its writer, in order. An event the
/// spool refuses for lack of disk space goes through [`offer`], which signals pressure and
/// waits for space; the events after it are offered once it is in. `run` is left empty.
fn offer_run(ctx: &EncoderContext, run: &mut Vec<Encoded>, count: u64) {
    if run.len() <= 1 {
        if let Some(e) = run.pop() {
            offer(ctx, e, true, count);
        }
        return;
    }
    let mut answers = Vec::with_capacity(run.len());
    let mut offers = run.iter_mut().map(|e| SpoolOffer {
        data: std::mem::take(&mut e.data),
        wake: e.wake.take(),
        flush: e.flush.take(),
    });
    let res = ctx.spool.enqueue_many(&mut offers, &mut answers);
    let mut events = run.drain(..);
    // `answers` goes first: the zip stops at its end without taking an event not offered.
    for (answer, mut e) in answers.into_iter().zip(events.by_ref()) {
        match answer {
            Enqueued::WaitForDiskQuota {
                data, wake, flush, ..
            } => {
                (e.data, e.wake, e.flush) = (data, wake, flush);
                offer(ctx, e, true, count);
            }
            accepted => {
                if let Some(entry) = accepted.into_entry() {
                    forward(ctx, e, entry);
                }
            }
        }
    }
    let mut rest: Vec<Encoded> = events.collect();
    if let Err(err) = res {
        // The failed event's callbacks were dropped by the spool; the sink stops.
        ctx.failure.fail(err.into());
        return;
    }
    // Once per run (the single path looks after a spill or every 16th event).
    if ctx.spool.stats().holding {
        ctx.signal_pressure();
    }
    if !rest.is_empty() {
        offer_run(ctx, &mut rest, count);
    }
}

/// The inline path of `add_dml_event`: encodes a small event on the caller's thread with the
/// dispatcher's own cached codec and offers it without waiting. The caller holds the
/// dispatcher's inline claim (nothing of it is queued), so order is kept; the wake waits behind
/// a [`WakeGate`] until the entry is in the writer's queue, so an event it hands in comes after.
pub(crate) fn encode_inline(
    ctx: &EncoderContext,
    dispatcher: &Arc<DispatcherState>,
    event: DmlEvent,
    wake: Option<Callback>,
    flush: Option<Callback>,
) -> Offer {
    let data = {
        let mut cache = dispatcher.inline_codec();
        let key = (
            event.table.schema.clone(),
            event.table.table.clone(),
            event.table.version,
        );
        if cache.as_ref().is_none_or(|(k, _, _)| *k != key) {
            match ctx.codec.prepare(&event.table) {
                Ok(tc) => *cache = Some((key, tc, 0)),
                Err(e) => {
                    ctx.failure.fail(SinkError::Encode {
                        dispatcher: dispatcher.id.to_string(),
                        source: Arc::new(e),
                    });
                    return Offer::Done;
                }
            }
        }
        let Some((_, tc, hint)) = cache.as_mut() else {
            return Offer::Done;
        };
        let Some(data) = encode_chunk(ctx, tc.as_ref(), dispatcher, &event, *hint) else {
            return Offer::Done;
        };
        *hint = data.len();
        data
    };
    let (wake, gate) = WakeGate::wrap(wake);
    let e = Encoded {
        dispatcher: Arc::clone(dispatcher),
        rows: event.rows.len(),
        partition_id: event.partition_id,
        commit_ts: event.commit_ts,
        table: event.table,
        data,
        wake,
        flush,
        gate,
    };
    offer(ctx, e, false, 0)
}

/// Encodes one event of the pool path; `None` if the sink stopped or the encoding failed (the
/// event is dropped with its callbacks: no wake, no flush).
fn encode_one(
    ctx: &EncoderContext,
    codecs: &mut HashMap<CodecKey, (Box<dyn TableCodec>, usize)>,
    dispatcher: Arc<DispatcherState>,
    event: DmlEvent,
    wake: Option<Callback>,
    flush: Option<Callback>,
) -> Option<Encoded> {
    if ctx.failure.is_failed() {
        // The sink stopped: the event is dropped with its callbacks (no wake, no flush).
        return None;
    }
    let key = (
        event.table.schema.clone(),
        event.table.table.clone(),
        event.table.version,
    );
    let (tc, hint) = match codecs.entry(key) {
        std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
        std::collections::hash_map::Entry::Vacant(v) => match ctx.codec.prepare(&event.table) {
            Ok(tc) => v.insert((tc, 0)),
            Err(e) => {
                ctx.failure.fail(SinkError::Encode {
                    dispatcher: dispatcher.id.to_string(),
                    source: Arc::new(e),
                });
                return None;
            }
        },
    };
    // The last chunk's size per row sizes the buffer (no pass over the values).
    let estimate = *hint * event.rows.len() + 64;
    let data = encode_chunk(ctx, tc.as_ref(), &dispatcher, &event, estimate)?;
    *hint = data.len() / event.rows.len().max(1) + 1;
    Some(Encoded {
        rows: event.rows.len(),
        partition_id: event.partition_id,
        commit_ts: event.commit_ts,
        table: event.table,
        dispatcher,
        data,
        wake,
        flush,
        gate: WakeGate::none(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn counting(n: &Arc<AtomicUsize>) -> Option<Callback> {
        let n = Arc::clone(n);
        Some(Box::new(move || {
            n.fetch_add(1, Ordering::SeqCst);
        }))
    }

    #[test]
    fn a_wake_run_before_the_handoff_waits_for_the_gate() {
        let runs = Arc::new(AtomicUsize::new(0));
        let (wake, gate) = WakeGate::wrap(counting(&runs));
        (wake.unwrap())();
        assert_eq!(runs.load(Ordering::SeqCst), 0, "parked while closed");
        drop(gate);
        assert_eq!(runs.load(Ordering::SeqCst), 1, "runs when the gate opens");
    }

    #[test]
    fn a_wake_run_after_the_handoff_runs_at_once() {
        let runs = Arc::new(AtomicUsize::new(0));
        let (wake, gate) = WakeGate::wrap(counting(&runs));
        drop(gate);
        assert_eq!(
            runs.load(Ordering::SeqCst),
            0,
            "nothing parked, nothing run"
        );
        (wake.unwrap())();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_wake_never_run_is_dropped_unrun() {
        let runs = Arc::new(AtomicUsize::new(0));
        let (wake, gate) = WakeGate::wrap(counting(&runs));
        drop(wake);
        drop(gate);
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        let (wake, gate) = WakeGate::wrap(None);
        assert!(wake.is_none());
        drop(gate);
    }
}
