//! The read-ahead window: the data files being read and decoded ahead of their step, by path,
//! and the limits on what it holds. [`super::read_ahead`] chooses which files enter it;
//! `file_step` and `file_unit` take them out.
//!
//! A file enters only while the window has room ([`Prefetch::has_room`]):
//!
//! - fewer than `--read-ahead` files in it (in flight or decoded and waiting), and
//! - the stored bytes of the files it already fetched, plus the files still in flight counted
//!   at the largest data file read so far, plus one more such file, within `--read-ahead-bytes`
//!   (an empty window always takes one file, so a file larger than the budget is still read
//!   ahead, alone); until the first file's size is known (the first reads of a process),
//!   at most [`UNKNOWN_SIZE_FILES`] files.
//!
//! The count hides the store's request latency (files in flight at once); the bytes bound the
//! memory whatever the file size: 32 files of a few hundred KiB, or 2 of the sink's default
//! 64 MiB.
//!
//! # Invariants
//!
//! - The window only reads: it never changes what is applied or in which order. A file's read
//!   that failed (or was cancelled) is read again by its step, which reports the error.
//! - Memory: the window holds at most `--read-ahead` files, and of stored data at most
//!   `--read-ahead-bytes` as estimated when each file entered (files in flight counted at the
//!   largest file read before): only files larger than every file read before them exceed it,
//!   and each raises the estimate for the files after it. Before any size is known, at most
//!   [`UNKNOWN_SIZE_FILES`] files. Decoded rows take a few times their stored size: a decoded
//!   row of the bench's ten short columns is 384 bytes (64 for the row, 32 per value, text up
//!   to 24 bytes inline) against 153 bytes of csv, 2.5x.
//! - A fetched file's bytes count in `cdc_consumer_read_ahead_bytes` from its GET's answer until
//!   its step takes it or the window drops it (a guard travels with the decoded rows, so a
//!   cancelled or failed read releases its bytes too); `cdc_consumer_read_ahead_files` is the
//!   number of files in the window.
//! - Every file left in the window when a round ends is cancelled ([`Prefetch::cancel_all`]).
//! - The window keeps where the read-ahead resumes (`read_ahead`), and drops it at a round's
//!   end and when a refused unit's files are to be read again
//!   ([`Prefetch::taken_not_applied`]). A file whose read failed when a unit took it
//!   (`file_unit`) does not drop it: its own step reads it again, at worst one read-ahead miss.

use super::file_step::{decode_file, fetch_data_file};
use crate::discovery::Upstream;
use crate::error::Result;
use crate::metrics::Metrics;
use cdc_common::codec::{DecodedRow, TableCodec};
use cdc_common::TableName;
use prometheus::IntGauge;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Data files read ahead by default (`--read-ahead`): at the S3-compatible test server's ~44 ms
/// per request, 32 files in flight keep a replay that applies a 5000-row file every few
/// milliseconds fed (see docs/consumer.md, Benchmark).
pub const DEFAULT_READ_AHEAD: usize = 32;
/// Data files read ahead by default from a local directory: its reads take microseconds, and a
/// deeper window only adds concurrent reads competing for the cores (a cold replay of 1,000 and
/// 5,000 one-file tables was 5-12% slower with 32 than with 8, alternated).
pub const DEFAULT_READ_AHEAD_LOCAL: usize = 8;
/// Stored bytes the read-ahead window holds by default (`--read-ahead-bytes`): two data files of
/// the sink's default 64 MiB `file-size`.
pub const DEFAULT_READ_AHEAD_BYTES: u64 = 128 * 1024 * 1024;

/// Files the window takes before the first file's size is known: a process's first reads may
/// be of any size, so no more go than the read-ahead's former default depth (memory as before
/// the byte budget) until the budget can be applied.
pub const UNKNOWN_SIZE_FILES: usize = 8;

/// What the window's reads share: the stored bytes of the files fetched and not taken, how
/// many such files there are, and the largest data file read so far.
#[derive(Debug)]
struct Held {
    bytes: AtomicU64,
    files: AtomicU64,
    largest: AtomicU64,
    gauge: IntGauge,
}

/// One fetched file's share of [`Held`]; released when dropped (taken, failed or cancelled).
#[derive(Debug)]
pub(super) struct HeldBytes {
    held: Arc<Held>,
    n: u64,
}

impl Held {
    fn hold(self: &Arc<Held>, n: u64) -> HeldBytes {
        self.bytes.fetch_add(n, Ordering::Relaxed);
        self.files.fetch_add(1, Ordering::Relaxed);
        self.largest.fetch_max(n, Ordering::Relaxed);
        self.gauge.add(n as i64);
        HeldBytes {
            held: self.clone(),
            n,
        }
    }
}

impl Drop for HeldBytes {
    fn drop(&mut self) {
        self.held.bytes.fetch_sub(self.n, Ordering::Relaxed);
        self.held.files.fetch_sub(1, Ordering::Relaxed);
        self.held.gauge.sub(self.n as i64);
    }
}

/// A file's read: its decoded rows and, for a fetched file, its share of the window's bytes.
type Read = Result<(Vec<DecodedRow>, Option<HeldBytes>)>;

/// The tables the read-ahead has nothing left to start in: the first and last table of an
/// unbroken run of them (see `read_ahead`, "Where it resumes").
pub(super) type ResumeRun = (TableName, TableName);

/// The read-ahead window (see the module doc).
pub(super) struct Prefetch {
    tasks: HashMap<String, JoinHandle<Read>>,
    /// Where the read-ahead resumes. It stands for files started in this window: it goes
    /// when files leave the window to be read again (all of them at a round's end, a refused
    /// unit's); a file whose read failed is read by its own step (see the module doc).
    resume: Option<ResumeRun>,
    max_files: usize,
    max_bytes: u64,
    held: Arc<Held>,
    files_gauge: IntGauge,
}

impl Prefetch {
    /// An empty window with the default limits, counted in `metrics`.
    pub(super) fn new(metrics: &Metrics) -> Prefetch {
        Prefetch {
            tasks: HashMap::new(),
            resume: None,
            max_files: DEFAULT_READ_AHEAD,
            max_bytes: DEFAULT_READ_AHEAD_BYTES,
            held: Arc::new(Held {
                bytes: AtomicU64::new(0),
                files: AtomicU64::new(0),
                largest: AtomicU64::new(0),
                gauge: metrics.read_ahead_bytes.clone(),
            }),
            files_gauge: metrics.read_ahead_files.clone(),
        }
    }

    /// Sets the most files (`--read-ahead`; 0 reads each file when its step comes) and stored
    /// bytes (`--read-ahead-bytes`) the window holds.
    pub(super) fn set_limits(&mut self, files: usize, bytes: u64) {
        self.max_files = files;
        self.max_bytes = bytes;
    }

    /// The most files the window holds (`--read-ahead`).
    pub(super) fn max_files(&self) -> usize {
        self.max_files
    }

    /// The stored bytes the window holds, about (`--read-ahead-bytes`).
    pub(super) fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Whether one more file may enter (see the module doc).
    pub(super) fn has_room(&self) -> bool {
        let entries = self.tasks.len() as u64;
        if entries >= self.max_files as u64 {
            return false;
        }
        if entries == 0 {
            return true;
        }
        let largest = self.held.largest.load(Ordering::Relaxed);
        if largest == 0 {
            return entries < UNKNOWN_SIZE_FILES as u64;
        }
        let fetched = self.held.files.load(Ordering::Relaxed).min(entries);
        let estimate = self.held.bytes.load(Ordering::Relaxed)
            + (entries - fetched + 1).saturating_mul(largest);
        estimate <= self.max_bytes
    }

    /// Whether `path` is in the window.
    pub(super) fn contains(&self, path: &str) -> bool {
        self.tasks.contains_key(path)
    }

    /// Starts reading and decoding `path` (on a blocking thread); `(index, newest)` are its
    /// index and the newest file its index names (see `file_step::fetch_data_file`).
    pub(super) fn start(
        &mut self,
        up: &Upstream,
        codec: Arc<dyn TableCodec>,
        columns: usize,
        path: String,
        (index, newest): (u64, u64),
    ) {
        let (up, held, p) = (up.clone(), self.held.clone(), path.clone());
        let task = tokio::spawn(async move {
            let bytes = fetch_data_file(&up, &p, index, newest).await?;
            let share = held.hold(bytes.len() as u64);
            let rows = decode_file(codec, columns, p, bytes).await?;
            Ok((rows, Some(share)))
        });
        self.tasks.insert(path, task);
        self.files_gauge.set(self.tasks.len() as i64);
    }

    /// Puts a file's read back (a unit that did not take it: its own step will): its decoded
    /// rows, or the [`crate::error::Error::InFlight`] that holds its stream back this round, so
    /// the step does not look at the file again for as long.
    pub(super) fn hand_back(&mut self, path: String, read: Result<Vec<DecodedRow>>) {
        self.tasks.insert(
            path,
            tokio::spawn(async move { read.map(|rows| (rows, None)) }),
        );
        self.files_gauge.set(self.tasks.len() as i64);
    }

    /// Takes `path`'s read out of the window: `None` when it is not there, or its task
    /// panicked or was cancelled (the caller reads the file itself).
    pub(super) async fn take(&mut self, path: &str) -> Option<Result<Vec<DecodedRow>>> {
        let task = self.tasks.remove(path)?;
        self.files_gauge.set(self.tasks.len() as i64);
        // Err: the task panicked or was cancelled.
        let read = task.await.ok()?;
        Some(read.map(|(rows, _share)| rows))
    }

    /// Cancels every read in the window (a round's end), and forgets where the read-ahead
    /// resumes.
    pub(super) fn cancel_all(&mut self) {
        for (_, task) in self.tasks.drain() {
            task.abort();
        }
        self.files_gauge.set(0);
        self.resume = None;
    }

    /// Files taken out of the window were not applied (a refused unit's) and are to be read
    /// again: the read-ahead's resume run may hold their table as done, so it goes.
    pub(super) fn taken_not_applied(&mut self) {
        self.resume = None;
    }

    /// Takes where the read-ahead resumes (it puts it back, extended or replaced, with
    /// [`Prefetch::set_resume`]).
    pub(super) fn take_resume(&mut self) -> Option<ResumeRun> {
        self.resume.take()
    }

    /// Sets where the read-ahead resumes.
    pub(super) fn set_resume(&mut self, run: Option<ResumeRun>) {
        self.resume = run;
    }
}
