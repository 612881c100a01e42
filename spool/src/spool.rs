//! The spool handle: open, enqueue, wait for disk space, stats, rotate, close.
//!
//! The handle type and the state it shares with entries are in `shared.rs`; entry types in
//! `entry.rs`; reads in `read.rs`; release (flush callbacks, held wakes, segment deletion) in
//! `release.rs`.
//!
//! Locking: one mutex per spool guards the accounting, the watermark machine and the segment
//! table with its write buffers. It is never held across a record or chunk write or a file
//! read, nor while a callback runs. The only I/O under it is creating a new, empty segment file
//! when the active one rotates (once per segment size, 64 MiB by default) and, on the error
//! path, cutting a segment back after a failed direct write.
//!
//! A small spilled record (below [`DIRECT_WRITE_MIN`]) takes the lock once: its region is
//! reserved, its bytes are appended to the segment's write buffer and its wake is decided in
//! the same critical section; if the append sealed a full chunk, this thread writes the chunk
//! after dropping the lock. A large record takes the lock twice: once to reserve its region,
//! once after its positioned write to decide its wake. The record header (the CRC-32C pass) is
//! computed before the lock whenever the previous enqueue spilled.
//!
//! # Full disk
//!
//! A segment write that fails for lack of space (`ENOSPC`, `EDQUOT`, `EFBIG`) never loses an
//! accepted entry and never leaves a partial record addressable:
//! - a buffered chunk that cannot be written stays in memory, its records readable from there;
//!   every later spill retries it first and, while it fails, is refused;
//! - a directly written record is rolled back (its reservation freed, the segment's end and the
//!   file cut back to where it started when nothing was reserved after it);
//! - the refused entry gets [`Enqueued::WaitForDiskQuota`] (data and callbacks handed back)
//!   when the spool holds entries whose release can free space, else
//!   [`SpoolError::DiskFull`] naming the directory and the segment.

use crate::config::SpoolConfig;
use crate::entry::{Enqueued, Entry, Location};
use crate::error::{Result, SpoolError, WriteFailure};
use crate::metrics::SpoolMetrics;
use crate::open_segments::OpenSegments;
use crate::quota::{Accounting, Placement};
use crate::record::{encode_header, record_len, MAX_RECORD_PAYLOAD};
use crate::release::Freed;
use crate::segment_table::{FileActions, Segments};
use crate::shared::{lock, Inner, Spool, State};
use crate::watermark::{Callback, Watermark};
use crate::write_buffer::{WriteJob, DIRECT_WRITE_MIN};
use bytes::Bytes;
use prometheus::Registry;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A snapshot of a spool's accounting.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpoolStats {
    /// Payload bytes of entries in memory.
    pub memory_bytes: u64,
    /// Bytes of live records (header + payload) on disk.
    pub disk_bytes: u64,
    /// Entries not released.
    pub entries: u64,
    /// Of which in memory.
    pub memory_entries: u64,
    /// Of which on disk.
    pub disk_entries: u64,
    /// Segment files that exist.
    pub segments: u64,
    /// Id of the active segment, if any.
    pub active_segment: Option<u64>,
    /// Bytes of spilled records (headers included, counted in `disk_bytes`) still held in
    /// segment write buffers, not yet in their files.
    pub buffered_bytes: u64,
    /// Wake callbacks held above the high watermark.
    pub held_wakes: u64,
    /// True while wakes are held (between crossing the high watermark and falling to the low).
    pub holding: bool,
    /// Callers waiting for disk space (blocked or registered).
    pub disk_quota_waiters: u64,
    /// The space generation: advances on every release.
    pub space_generation: u64,
}

impl SpoolStats {
    /// Memory plus disk bytes (what the watermarks see).
    pub fn total_bytes(&self) -> u64 {
        self.memory_bytes + self.disk_bytes
    }
}

/// The directory name of a changefeed's spool: its id, with every byte outside
/// `[A-Za-z0-9._-]` written as `%XX` (so `/`, `..` and NUL cannot escape the parent).
pub fn changefeed_dir_name(changefeed: &str) -> Result<String> {
    if changefeed.is_empty() {
        return Err(SpoolError::param("changefeed", "must not be empty"));
    }
    let mut out = String::with_capacity(changefeed.len());
    for b in changefeed.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.bytes().all(|b| b == b'.') {
        out = out.replace('.', "%2E");
    }
    Ok(out)
}

/// How long [`lock_dir`] waits for a lock held by someone else before it answers
/// [`SpoolError::InUse`].
///
/// A closed spool's lock can outlive it for a moment: when any thread of this process starts a
/// child (`std::process::Command`), the child holds a copy of every descriptor from the fork
/// until its exec closes them (they are close-on-exec), and a `flock` belongs to the open file,
/// so the copy holds it too. A spool reopened in that moment (a sink restarting a changefeed
/// while another thread starts a helper) would find its own released lock still taken. A live
/// owner holds it for as long as it runs, so waiting a bounded while only delays that answer.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Takes the exclusive lock of the spool directory `dir`: creates `parent` and the lock file
/// `parent/lock_name` if missing and locks it, waiting at most [`LOCK_WAIT`] for a holder to
/// let go.
fn lock_dir(parent: &Path, dir: &Path, lock_name: &str) -> Result<std::fs::File> {
    std::fs::create_dir_all(parent).map_err(|e| SpoolError::io(parent, e))?;
    let path = parent.join(lock_name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| SpoolError::io(&path, e))?;
    // `flock` (not `fcntl`): the lock belongs to this open file, so a second open in the same
    // process conflicts too, and the kernel drops it when the descriptor closes or the process
    // dies.
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(file),
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                if std::time::Instant::now() >= deadline {
                    return Err(SpoolError::InUse {
                        dir: dir.to_path_buf(),
                        lock: path,
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(SpoolError::io(&path, e.into())),
        }
    }
}

impl Spool {
    /// Opens the spool of `changefeed` in `<config.dir>/<changefeed>`: takes the directory's
    /// lock (`<changefeed>.lock` beside it; [`SpoolError::InUse`] when another live spool holds
    /// it), then removes the directory if it exists (scratch, see the crate doc) and creates it
    /// empty; the metrics are registered on `registry` with a `changefeed` label. Blocks the
    /// calling thread: the lock is tried for up to [`LOCK_WAIT`], and the directory's old
    /// segments are removed (an async caller runs it on a blocking thread).
    pub fn open(config: SpoolConfig, changefeed: &str, registry: &Registry) -> Result<Spool> {
        config.validate()?;
        let name = changefeed_dir_name(changefeed)?;
        let dir = config.dir.join(&name);
        let dir_lock = lock_dir(&config.dir, &dir, &format!("{name}.lock"))?;
        let metrics = SpoolMetrics::register(registry, changefeed)?;
        let prepared = (|| {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(SpoolError::io(&dir, e)),
            }
            std::fs::create_dir_all(&dir).map_err(|e| SpoolError::io(&dir, e))
        })();
        if let Err(e) = prepared {
            metrics.unregister();
            return Err(e);
        }
        tracing::debug!(changefeed, dir = %dir.display(), ?config, "spool opened");
        let open_segments = Arc::new(OpenSegments::default());
        let state = State {
            closed: false,
            acct: Accounting::new(config.memory_quota, config.disk_quota),
            watermark: Watermark::new(config.high_watermark, config.low_watermark),
            segments: Segments::new(dir.clone(), config.segment_size, Arc::clone(&open_segments)),
            space_generation: 0,
            space_callbacks: Vec::new(),
            blocked_waiters: 0,
        };
        Ok(Spool {
            inner: Arc::new(Inner {
                config,
                changefeed: changefeed.to_string(),
                dir,
                dir_lock: Mutex::new(Some(dir_lock)),
                closed: AtomicBool::new(false),
                spilling: AtomicBool::new(false),
                disk_full: AtomicBool::new(false),
                state: Mutex::new(state),
                space: Condvar::new(),
                metrics,
                open_segments,
            }),
        })
    }

    /// The resolved configuration.
    pub fn config(&self) -> &SpoolConfig {
        &self.inner.config
    }

    /// The changefeed this spool belongs to.
    pub fn changefeed(&self) -> &str {
        &self.inner.changefeed
    }

    /// This spool's own directory (`<config.dir>/<changefeed>`), holding the segment files.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Offers one message. Never blocks on other threads beyond the short critical section
    /// (see the module doc); a spill may write on the caller's thread (a full chunk of the
    /// write buffer, or a large record).
    ///
    /// `wake` is the enqueue acknowledgement: it runs before this returns while the total is at
    /// or below the high watermark, otherwise it is held and runs later, in arrival order, on
    /// the thread whose release brings the total down to the low watermark. `flush` runs when
    /// the entry is [released](Spool::release).
    ///
    /// A spill that finds no room on the file system answers `WaitForDiskQuota` if entries are
    /// held (their release can make room), else fails with [`SpoolError::DiskFull`]. Other
    /// errors: [`SpoolError::Closed`], an I/O error of the spill write (the entry is not
    /// accepted and its callbacks are dropped unrun), or `InvalidParameter` for a payload larger
    /// than 4 GiB - 1.
    pub fn try_enqueue(
        &self,
        data: impl Into<Bytes>,
        wake: Option<Callback>,
        flush: Option<Callback>,
    ) -> Result<Enqueued> {
        let data = data.into();
        let len = data.len() as u64;
        if len > MAX_RECORD_PAYLOAD {
            return Err(SpoolError::param(
                "entry",
                format!("{len} bytes is larger than the largest record ({MAX_RECORD_PAYLOAD})"),
            ));
        }
        let rec = record_len(len);
        let inner = &self.inner;
        // The checksum pass stays out of the critical section while the spool spills.
        let header = inner
            .spilling
            .load(Ordering::Relaxed)
            .then(|| encode_header(&data));
        let mut st = lock(&inner.state);
        let placement = loop {
            if st.closed {
                return Err(SpoolError::Closed);
            }
            let placement = st.acct.place(len, rec);
            inner
                .spilling
                .store(placement != Placement::Memory, Ordering::Relaxed);
            match placement {
                Placement::Memory => {
                    st.acct.add_memory(len);
                    let total = st.acct.total();
                    let run = st.watermark.on_enqueue(total, wake);
                    inner.publish(&st);
                    drop(st);
                    if let Some(w) = run {
                        w();
                    }
                    return Ok(Enqueued::InMemory(Entry {
                        spool: Arc::clone(inner),
                        location: Some(Location::Memory(data)),
                        flush,
                    }));
                }
                Placement::WaitForDiskQuota => {
                    inner.metrics.disk_quota_rejections_total.inc();
                    return Ok(Enqueued::WaitForDiskQuota {
                        data,
                        wake,
                        flush,
                        generation: st.space_generation,
                    });
                }
                Placement::Spill | Placement::Oversized => {}
            }
            if !st.segments.has_failed() {
                break placement;
            }
            // Chunks whose write failed (a full disk) are retried before anything more is
            // taken on disk; while they fail, spills are refused.
            let generation = st.space_generation;
            let mut actions = FileActions::default();
            st.segments.take_failed(&mut actions);
            drop(st);
            if let Err(f) = inner.run_actions(actions) {
                return inner.refuse(f, generation, data, wake, flush);
            }
            st = lock(&inner.state);
        };
        let header = header.unwrap_or_else(|| encode_header(&data));
        let generation = st.space_generation;
        let mut actions = FileActions::default();
        let (segment, offset) = match st.segments.reserve(rec, &mut actions) {
            Ok(r) => r,
            Err(f) => {
                inner.publish(&st);
                drop(st);
                // A rotation before the failed creation may have sealed a chunk.
                if let Err(e) = inner.run_actions(actions) {
                    inner.note_write_failure(&e);
                }
                return inner.refuse(f, generation, data, wake, flush);
            }
        };
        st.acct.add_disk(rec);
        let accepted = |entry| match placement {
            Placement::Oversized => Enqueued::Oversized(entry),
            _ => Enqueued::Spilled(entry),
        };

        if rec < DIRECT_WRITE_MIN {
            // Buffered: the record is stored once it is in the write buffer.
            st.segments
                .buffer_record(segment, offset, header, data, &mut actions);
            let total = st.acct.total();
            let run = st.watermark.on_enqueue(total, wake);
            inner.metrics.spill_bytes_total.add_locked(rec);
            inner.publish(&st);
            drop(st);
            if let Some(w) = run {
                w();
            }
            // A chunk this append sealed is written now. If that fails, its records stay
            // readable from memory and the next spill retries it (and is refused meanwhile).
            if !actions.is_empty() {
                if let Err(f) = inner.run_actions(actions) {
                    inner.note_write_failure(&f);
                }
            }
            return Ok(accepted(inner.disk_entry(segment, offset, len, flush)));
        }

        // Direct: the open chunk ends where this record starts; it goes first.
        st.segments.seal_open(segment, &mut actions);
        let file = st
            .segments
            .segment(segment)
            .expect("a reserved segment is tracked");
        inner.publish(&st);
        drop(st);
        let written = inner
            .run_actions(actions)
            .and_then(|()| file.write_record(offset, &header, &data));
        drop(file);
        if let Err(f) = written {
            inner.free(
                Location::Disk {
                    segment,
                    offset,
                    len,
                },
                Freed::RolledBack,
            );
            return inner.refuse(f, generation, data, wake, flush);
        }
        drop(data);
        let entry = inner.disk_entry(segment, offset, len, flush);
        let mut st = lock(&inner.state);
        if st.closed {
            return Err(SpoolError::Closed);
        }
        inner.metrics.spill_bytes_total.add_locked(rec);
        let total = st.acct.total();
        let run = st.watermark.on_enqueue(total, wake);
        inner.publish(&st);
        drop(st);
        if let Some(w) = run {
            w();
        }
        Ok(accepted(entry))
    }

    /// Blocks until a release happens after this call, the spool closes, or `timeout` passes;
    /// true if space was released. Prefer [`Spool::wait_for_space_since`] with the generation
    /// of the `WaitForDiskQuota` answer: it does not miss a release that happened in between.
    pub fn wait_for_space(&self, timeout: Duration) -> bool {
        let generation = lock(&self.inner.state).space_generation;
        self.wait_for_space_since(generation, timeout)
    }

    /// Blocks (condition variable) until the space generation passes `generation`, the spool
    /// closes, or `timeout` passes; true if it passed (at once if it already has). For threads;
    /// async tasks use [`Spool::notify_on_space`].
    pub fn wait_for_space_since(&self, generation: u64, timeout: Duration) -> bool {
        let inner = &self.inner;
        let start = Instant::now();
        let mut st = lock(&inner.state);
        if st.space_generation > generation {
            return true;
        }
        if st.closed {
            return false;
        }
        st.blocked_waiters += 1;
        inner.publish(&st);
        let (mut st, _) = inner
            .space
            .wait_timeout_while(st, timeout, |s| {
                s.space_generation <= generation && !s.closed
            })
            .unwrap_or_else(|e| e.into_inner());
        st.blocked_waiters -= 1;
        inner.publish(&st);
        let ok = st.space_generation > generation;
        drop(st);
        inner
            .metrics
            .disk_quota_wait_seconds
            .observe(start.elapsed().as_secs_f64());
        ok
    }

    /// Async-friendly wait: runs `callback` once the space generation passes `generation` (at
    /// once, on this thread, if it already has) or when the spool closes. The callback runs on
    /// the releasing thread, so it must be short: e.g. send on a `tokio::sync::oneshot` or call
    /// `Notify::notify_one`, then retry `try_enqueue` from the task.
    pub fn notify_on_space(&self, generation: u64, callback: Callback) {
        let mut st = lock(&self.inner.state);
        if st.space_generation > generation || st.closed {
            drop(st);
            callback();
            return;
        }
        st.space_callbacks.push((generation, callback));
        self.inner.publish(&st);
    }

    /// The current space generation (advances on every release).
    pub fn space_generation(&self) -> u64 {
        lock(&self.inner.state).space_generation
    }

    /// A snapshot of the accounting.
    pub fn stats(&self) -> SpoolStats {
        let st = lock(&self.inner.state);
        SpoolStats {
            memory_bytes: st.acct.memory_bytes,
            disk_bytes: st.acct.disk_bytes,
            entries: st.acct.entries(),
            memory_entries: st.acct.memory_entries,
            disk_entries: st.acct.disk_entries,
            segments: st.segments.count() as u64,
            active_segment: st.segments.active(),
            buffered_bytes: st.segments.buffered_bytes(),
            held_wakes: st.watermark.held() as u64,
            holding: st.watermark.is_holding(),
            disk_quota_waiters: (st.blocked_waiters + st.space_callbacks.len()) as u64,
            space_generation: st.space_generation,
        }
    }

    /// Ends the active segment now (its buffered records are written, then it becomes
    /// read-only, or it is deleted if nothing in it is live); the next spill starts a new one.
    /// For tests and for operators. A failed write is logged; its records stay readable.
    pub fn rotate(&self) {
        let mut actions = FileActions::default();
        let mut st = lock(&self.inner.state);
        st.segments.rotate(&mut actions);
        self.inner.publish(&st);
        drop(st);
        if let Err(f) = self.inner.run_actions(actions) {
            self.inner.note_write_failure(&f);
        }
    }

    /// Writes every record still held in a segment write buffer to its file (no fsync: the
    /// files are scratch). Reads never need this, they are served from the buffer; it is for
    /// tests and tools that look at the segment files. On failure ([`SpoolError::DiskFull`],
    /// [`SpoolError::Io`]) the records stay readable from memory and the next spill retries.
    pub fn write_buffered(&self) -> Result<()> {
        let mut actions = FileActions::default();
        let mut st = lock(&self.inner.state);
        if st.closed {
            return Err(SpoolError::Closed);
        }
        st.segments.seal_all(&mut actions);
        drop(st);
        self.inner
            .run_actions(actions)
            .map_err(|f| f.into_error(&self.inner.dir))
    }

    /// Closes the spool for every handle: held wakes are dropped without running (nothing
    /// dispatches into a closed spool), disk-quota waiters are woken, the metrics are
    /// unregistered and the directory is removed. Entries still alive can be dropped or
    /// released (their flush callbacks still run) but no longer read.
    pub fn close(self) -> Result<()> {
        self.inner.close()
    }
}

impl fmt::Debug for Spool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spool")
            .field("changefeed", &self.inner.changefeed)
            .field("dir", &self.inner.dir)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Inner {
    /// An accepted entry whose record is at `offset` of `segment`.
    fn disk_entry(
        self: &Arc<Self>,
        segment: u64,
        offset: u64,
        len: u64,
        flush: Option<Callback>,
    ) -> Entry {
        Entry {
            spool: Arc::clone(self),
            location: Some(Location::Disk {
                segment,
                offset,
                len,
            }),
            flush,
        }
    }

    /// Writes the chunks queued in `actions` (completing each under the lock), then seals and
    /// deletes files. Returns the first failed write; it and the chunks after it stay in their
    /// buffers as failed, their records readable from memory.
    pub(crate) fn run_actions(&self, mut actions: FileActions) -> Result<(), WriteFailure> {
        let jobs = std::mem::take(&mut actions.write);
        let res = if jobs.is_empty() {
            Ok(())
        } else {
            self.write_chunks(jobs)
        };
        actions.run();
        res
    }

    fn write_chunks(&self, jobs: Vec<WriteJob>) -> Result<(), WriteFailure> {
        let mut res = Ok(());
        let mut done = Vec::with_capacity(jobs.len());
        for job in jobs {
            let written = res.is_ok()
                && match job.chunk.write_to(&job.segment) {
                    Ok(()) => true,
                    Err(f) => {
                        res = Err(f);
                        false
                    }
                };
            done.push((job, written));
        }
        let mut st = lock(&self.state);
        for (job, written) in done {
            st.segments.complete(job, written);
        }
        self.publish(&st);
        drop(st);
        if res.is_ok() && self.disk_full.swap(false, Ordering::Relaxed) {
            tracing::info!(dir = %self.dir.display(), "spool segments are written again");
        }
        res
    }

    /// Logs a failed chunk write whose records stay in memory (the next spill answers for it).
    pub(crate) fn note_write_failure(&self, f: &WriteFailure) {
        if !f.is_no_space() || !self.disk_full.swap(true, Ordering::Relaxed) {
            tracing::warn!(path = %f.path.display(), error = %f.source,
                "cannot write spool segment; its buffered records stay in memory");
        }
    }

    /// The answer to a spill whose write (or segment creation) failed with `f`; nothing of the
    /// entry is stored. Lack of space with entries held: `WaitForDiskQuota` (as of `generation`,
    /// taken before the write, so a release during it is not missed). Otherwise the error.
    fn refuse(
        &self,
        f: WriteFailure,
        generation: u64,
        data: Bytes,
        wake: Option<Callback>,
        flush: Option<Callback>,
    ) -> Result<Enqueued> {
        if f.is_no_space() {
            let st = lock(&self.state);
            if st.closed {
                return Err(SpoolError::Closed);
            }
            let held = st.acct.entries();
            drop(st);
            if held > 0 {
                self.metrics.disk_quota_rejections_total.inc();
                if !self.disk_full.swap(true, Ordering::Relaxed) {
                    tracing::warn!(path = %f.path.display(), error = %f.source, held,
                        "spool file system full: enqueues wait until releases make room");
                }
                return Ok(Enqueued::WaitForDiskQuota {
                    data,
                    wake,
                    flush,
                    generation,
                });
            }
        }
        Err(f.into_error(&self.dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changefeed_names_cannot_escape_the_spool_dir() {
        assert_eq!(changefeed_dir_name("cf-1_a.b").unwrap(), "cf-1_a.b");
        assert_eq!(changefeed_dir_name("a/../b").unwrap(), "a%2F..%2Fb");
        assert_eq!(changefeed_dir_name("..").unwrap(), "%2E%2E");
        assert_eq!(changefeed_dir_name("x\0").unwrap(), "x%00");
        assert!(matches!(
            changefeed_dir_name(""),
            Err(SpoolError::InvalidParameter { .. })
        ));
    }

    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}

    #[test]
    fn handles_are_send_sync_and_entries_send() {
        assert_send_sync::<Spool>();
        assert_send::<Entry>();
        assert_send::<Enqueued>();
    }
}
