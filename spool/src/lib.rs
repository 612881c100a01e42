//! cdc-spool: the memory-quota spool between the sink's encoding pool and its writers.
//!
//! Encoded messages wait here until a writer has made them durable in object storage. The spool
//! keeps them in memory up to a quota and spills the rest to append-only segment files on local
//! disk, so that a slow or stalled object store never grows the process's memory without bound.
//! It also decides when dispatchers are woken (the first stage of the two-stage acknowledgement).
//!
//! # Constraints
//!
//! - **Enqueue never blocks** the dispatcher's hot path. [`Spool::try_enqueue`] answers at once:
//!   [`Enqueued::InMemory`], [`Enqueued::Spilled`], [`Enqueued::Oversized`] (a record larger
//!   than the whole disk quota, admitted when the disk holds nothing, so it can never wait
//!   forever) or [`Enqueued::WaitForDiskQuota`], which hands data and callbacks back; the caller
//!   flushes, waits ([`Spool::wait_for_space_since`] on a thread, [`Spool::notify_on_space`] from
//!   async code) and retries. [`Spool::enqueue_many`] answers a run of messages as `try_enqueue`
//!   would answer each in turn, with one critical section for every stretch that goes to
//!   memory or to a write buffer.
//! - **Memory is bounded**: memory bytes never exceed the memory quota; everything else is on
//!   disk. Disk bytes stay within the disk quota, except for one oversized record alone.
//! - **Reads do not scan**: an entry addresses `(segment, offset, length)`; a read is one
//!   positioned read, verified by length and CRC-32C, or - while the record still waits in its
//!   segment's write buffer - a copy (or a shared handle) from memory. A batch
//!   ([`Spool::read_many`]) reads records that lie close together in one file with one
//!   positioned read of the covering range (at most 1 MiB), or maps that range when it spans
//!   256 KiB or more, and verifies each record the same way. Damage is an error ([`SpoolError::Corrupt`] with segment, offset and
//!   [`CorruptReason`]), never decoded.
//! - **Accounting never leaks**: an [`Entry`] frees its bytes when released or dropped.
//! - **No lock across I/O**: one mutex guards the bookkeeping; record writes and reads happen
//!   outside it; callbacks run after it is dropped. The only I/O under the lock is creating an
//!   empty segment file at rotation and, after a failed direct write, cutting the segment back.
//! - **Small records are written in chunks**: a spilled record below 256 KiB is appended to its
//!   segment's write buffer (header and small payloads copied, larger payloads held as given)
//!   and reaches the file with the next 1 MiB chunk, one vectored positioned write; larger
//!   records are written directly. Buffered records count as disk bytes; the buffer adds at most
//!   about 1 MiB per spool (plus chunks being written) to memory beyond the memory quota.
//! - **A full disk loses nothing**: a write that fails for lack of space never leaves a partial
//!   record addressable; buffered records stay readable from memory; the refused entry gets
//!   [`Enqueued::WaitForDiskQuota`] while entries are held whose release can make room, else
//!   [`SpoolError::DiskFull`] naming the directory and the segment.
//!
//! # Where each concept lives
//!
//! | concept | file |
//! |---------|------|
//! | the handle: open, enqueue, disk-space waits, stats, rotate, close | `spool.rs` |
//! | batched enqueue: one critical section for a run of messages | `enqueue_many.rs` |
//! | the state a handle shares with its entries (`Spool`, lock, teardown) | `shared.rs` |
//! | entry types and addressing (`Enqueued`, `Entry`, `EntryLocation`) | `entry.rs` |
//! | reads, one entry or a batch | `read.rs`, coalescing in `batch_read.rs`, mapping in `mapped_read.rs` |
//! | release: flush callbacks, freeing, held wakes, waiters woken | `release.rs` |
//! | record framing (frozen) | `record.rs` |
//! | segment file I/O, diagnostics scan | `segment.rs` |
//! | segment table: which segments exist, live counts, deletion | `segment_table.rs` |
//! | the open segment files by id, for reads outside the lock | `open_segments.rs` |
//! | write buffer of small spilled records | `write_buffer.rs` |
//! | quota, watermark machine, configuration, metrics, errors | `quota.rs`, `watermark.rs`, `config.rs`, `metrics.rs`, `error.rs` |
//!
//! Dependencies inside the crate point one way: `record <- segment <- {write_buffer,
//! open_segments, mapped_read} <- segment_table <- shared <- entry <- {read, release} <- spool
//! <- enqueue_many` (`batch_read` uses `mapped_read`; `read` uses `batch_read`).
//!
//! # Segment record layout (frozen)
//!
//! ```text
//!  segment-<id>.log  (id zero-padded to 20 digits)
//!  +----------------+----------------+---------------------+----------------+---
//!  | len: u32 LE    | crc: u32 LE    | payload (len bytes) | len: u32 LE    | ...
//!  +----------------+----------------+---------------------+----------------+---
//!  ^ record offset    crc = CRC-32C (Castagnoli) of payload  ^ next record = offset + 8 + len
//! ```
//!
//! Do not change it: the framing lives in `record.rs` (the segment file name in `segment.rs`),
//! and the tests `record_framing_bytes_are_pinned` and `segment_file_names_are_pinned` fail when
//! a byte moves.
//!
//! # Write path of a spilled record
//!
//! ```text
//!  record < 256 KiB:  reserve (segment, offset) + append to the open chunk   [one lock;
//!                     enqueue_many: one lock for a run of them]
//!                     open chunk would pass 1 MiB -> seal it; this thread pwritev()s it,
//!                     outside the lock; the chunk leaves the buffer once written and
//!                     its memory carries on as the open chunk (cache-warm for the next
//!                     megabyte of copies), taking over the records appended meanwhile
//!  record >= 256 KiB: reserve + seal the open chunk [lock] -> pwritev(chunk), pwritev(header,
//!                     payload) -> decide the wake [lock]
//!  read:              offset + 8 + len <= segment.buffered_from ? pread (no lock)
//!                                                               : from the buffer [lock]
//!  read_many:         runs of consecutive entries close together in one file -> one pread of
//!                     the covering range (<= 1 MiB; a range of >= 256 KiB is mmap()ed, not
//!                     copied), each record verified and sliced out
//! ```
//!
//! See [`write_buffer`] for the buffer's invariants and [`batch_read`] for the batched read.
//!
//! # Files: who creates and who deletes
//!
//! | file | created by | deleted by |
//! |------|------------|------------|
//! | `<dir>/<changefeed>/` | [`Spool::open`] (after removing any leftover) | [`Spool::close`], or the drop of the last handle and entry |
//! | `segment-<id>.log` | the first spill after open or after a rotation | the release (or drop) of its last entry once it is not the active segment; [`Spool::rotate`] of a fully released active segment; close |
//!
//! A segment rotates when the next record would take it past the segment size (64 MiB by
//! default); the previous one is made read-only. When the active segment has no live entry its
//! next write starts again at offset 0, so a spool that spills and drains in turn reuses one file.
//!
//! # Why the directory is scratch
//!
//! The spool is **not a checkpoint boundary**. An entry's flush callback runs only when its data
//! and index files are durable in storage, and only then may the checkpoint pass it; nothing in
//! the spool was ever acknowledged as flushed. After a crash the upstream replays from the
//! checkpoint, which re-delivers everything that was in the spool. Replaying segment files would
//! duplicate (or reorder) those events, so [`Spool::open`] removes what a previous process left
//! and [`Spool::close`] removes the directory. Only one process may use a given
//! `<dir>/<changefeed>` at a time: [`Spool::open`] first takes an exclusive advisory lock
//! (`flock`) on `<dir>/<changefeed>.lock`, a file beside the directory that is never deleted,
//! and holds it until the spool's last handle and entry are gone. A second process (or a second
//! open in the same process) on the same directory gets [`SpoolError::InUse`] and touches
//! nothing, so it can never remove another live process's segments. It gets that answer after
//! [`LOCK_WAIT`] of trying: a child being started by another thread holds a copy of a
//! just-closed spool's lock until it execs. The kernel drops the lock
//! when its holder dies (even by SIGKILL), so a restarted process takes over the scratch left
//! by a dead one. Several sink processes on one machine give each its own `spool-dir` or
//! changefeed id.
//!
//! # Watermark state machine (wake control)
//!
//! ```text
//!                 enqueue, total > high
//!   +---------+ ------------------------> +---------+
//!   | Flowing |                           | Holding |  wakes queue in arrival order
//!   +---------+ <------------------------ +---------+
//!    wakes run      release, total <= low
//!    at once        (held wakes run, in order)
//! ```
//!
//! `total` is memory bytes + disk bytes after the enqueue or release. While holding, every wake
//! is held even if the total is back between the watermarks (hysteresis). The held wakes run on
//! the thread of the release that crosses the low watermark, oldest first. The number held is the
//! `cdc_spool_held_wakes` gauge.
//!
//! # Release and flush
//!
//! [`Spool::release`] runs the entry's flush callback, then frees its bytes, deletes its segment
//! if that was the last live entry of a non-active segment, advances the space generation
//! (waking disk-quota waiters) and runs the held wakes if the low watermark was reached.
//! Dropping an entry does the same except the flush callback, which is dropped unrun.
//! [`Spool::release_many`] releases a batch (a published file's entries) with one critical
//! section: every flush callback first, in order, then the bytes of all, then the held wakes.
//!
//! # Metrics
//!
//! Registered on the registry passed to [`Spool::open`] with a constant `changefeed` label:
//! `cdc_spool_memory_bytes`, `cdc_spool_disk_bytes`, `cdc_spool_entries`,
//! `cdc_spool_segments`, `cdc_spool_held_wakes`, `cdc_spool_disk_quota_waiters` (gauges),
//! `cdc_spool_spill_bytes_total`, `cdc_spool_disk_quota_rejections_total` (counters),
//! `cdc_spool_disk_quota_wait_seconds` (histogram).
//!
//! # Configuration
//!
//! [`SpoolConfig::from_options`] resolves the sink's [`cdc_common::SpoolOptions`]; unset values
//! derive from the machine (see [`config`] for each rule and why).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod batch_read;
pub mod config;
mod enqueue_many;
mod entry;
mod error;
mod mapped_read;
mod metrics;
mod open_segments;
mod quota;
mod read;
mod record;
mod release;
pub mod segment;
mod segment_table;
mod shared;
mod spool;
mod watermark;
pub mod write_buffer;

pub use config::{MachineInfo, SpoolConfig, SpoolConfigBuilder};
pub use enqueue_many::Offer;
pub use entry::{Enqueued, Entry, EntryLocation};
pub use error::{CorruptReason, Result, SpoolError};
pub use metrics::CHANGEFEED_LABEL;
pub use shared::Spool;
pub use spool::{changefeed_dir_name, SpoolStats, LOCK_WAIT};
pub use watermark::Callback;
