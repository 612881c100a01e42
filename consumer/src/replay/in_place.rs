//! A data file its writer may still be writing in place: what the newest file an index names
//! must show on a local directory before its rows are taken.
//!
//! TiCDC (tiflow) with `flush-concurrency` > 1 writes a data file through its storage layer's
//! multipart writer, which on a local or NFS directory creates the file at its final path and
//! writes it there, after the index entry naming it was published (`file_step`'s "in flight").
//! A read in between sees the file empty or a prefix of it:
//!
//! - a prefix cut inside a record fails to decode: a spurious error that stopped the table, or
//!   quarantined the file with none of its rows under `--on-bad-file quarantine`;
//! - an empty view, or a prefix of whole records, read as a whole file: the stream moved past
//!   the file and the rest of its rows were never applied. Rows with a commit ts were safe in
//!   a prefix (none of them is at or below the checkpoint before the file is whole, so the
//!   window holds them back), but not in an empty view (no row to hold back); rows without a
//!   commit ts were applied at once.
//!
//! # What a reader can see
//!
//! Linux publishes a buffered write page by page: the file's size grows after each page is
//! copied. The writer writes from offset 0 in chunks that end on 4 KiB boundaries (Go's
//! `bufio.Writer` of 4 KiB, or one `write` of the whole buffer), so a view taken while it
//! writes is a whole number of 4 KiB pages, 0 included. An NFS client sends whole pages too.
//!
//! # The rule
//!
//! On a local-directory upstream, the newest file an index names whose length is a non-zero
//! multiple of [`PAGE`] is taken once it is **quiet**: a look at least [`QUIET`] after the
//! read, by the consumer's own clock, finds the same length. On a disk file system, whose
//! files this host's clock stamps, the file must also be unmodified for [`QUIET`] by its
//! modification time; a modification time in the future (a clock stepped back, a copy that
//! kept a faster host's time) is ignored. The modification time alone is not enough: Linux
//! stamps it at the start of a `write()`, so one long write throttled by dirty-page limits
//! shows an old time while its pages still land. On a network file system the server stamps
//! files by a clock this host cannot trust, so only the consumer's clock counts. A file that
//! changed since its read (another length, or on a disk a modification after the read) is
//! read again. A file not quiet after [`MAX_LOOKS`] looks is in flight ([`Error::InFlight`]),
//! unless the read at the last look found it empty or of another length: its stream waits for
//! a later round, as for a data file not there yet, and nothing else does.
//!
//! An empty view is returned at once, with no look: while its writer may still write the file,
//! a newest file that reads as no rows does not move its stream (`file_step`; a unit that
//! reaches it leaves it to its step, `file_unit`). Its writer may still write it while the
//! stream's directory is open (not closed, and no later date directory of the stream names a
//! file) and the checkpoint's time is at most [`CLOCK_MARGIN`] past the file's modification
//! time ([`may_still_be_written`], one look). Past that, the file is final: its rows were
//! committed before it was made, so they are below the checkpoint and durable (writer rule 5),
//! and an empty file holds none. A TiCDC killed before it wrote the file writes it again under
//! the same name when it restarts, and cannot move the checkpoint past its rows before; that
//! rewritten file is then read. The stream reads a held file again in its next busy round.
//! Nothing waits for it meanwhile: its rows, if any ever come, are above the checkpoint read
//! before the file was read empty, so the stream is not pending for the rest of the round
//! ([`crate::progress::Progress::hold`], `ordering::pending_files`): its table counts as
//! applied through the checkpoint, the file is not in `files_pending`, and DDLs at or below the
//! checkpoint go ahead of it. This sink writes an empty data file for an event of no rows: its
//! stream stays before that file until the checkpoint passes it (a minute and the checkpoint's
//! lag), the next file is indexed or the directory closes, at the cost of a small read and a
//! look per busy round. A modification time far in the future holds the file until a later
//! file or the directory's close.
//!
//! Taken as read: files of any other length, files below the newest (a writer finishes a file
//! before it publishes the next one's index entry), and object stores (they publish an object
//! whole). Each second look counts in `cdc_consumer_in_place_looks_total`.
//!
//! Cost: for one newest file in 4,096 at random lengths, one look after a wait of [`QUIET`].
//! The wait runs in the read-ahead beside other files' reads; the round's steps, applied one
//! at a time, wait only for what is left of it when they reach the file.
//!
//! Left:
//! - a writer stopped in the middle of a write (SIGSTOP, a hung disk) for longer than [`QUIET`]
//!   shows a quiet prefix;
//! - NFS: a client may complete a file's WRITEs out of order, so a reader on another client can
//!   see the final length, not a whole number of pages, with a hole of zeros before it (taken
//!   as read, and the zeros then fail to decode); and a client mounted `nocto` or with a long
//!   `actimeo` serves stale lengths, which look quiet. Mount the consumer's side with the
//!   defaults (close-to-open, `actimeo` well under [`QUIET`]) or use an object store;
//! - a TiCDC killed in the middle of a file: on restart it writes that file again under the
//!   same name when it is empty (tiflow's `getNextFileIdxFromIndexFile`), which the consumer
//!   then reads (see above), else goes on at the next number and resends the rows. A consumer
//!   that took a quiet prefix applies its whole records twice (harmless with a primary key,
//!   duplicates without), and a record cut in two fails to decode once a later file is
//!   indexed.

use crate::discovery::Upstream;
use crate::error::{Error, Result};
use bytes::Bytes;
use cdc_common::Ts;
use std::time::{Duration, Instant, SystemTime};

/// A view of a file taken while its writer writes is a whole number of these (see the module
/// doc); on 64 KiB-page machines too, since their pages are whole numbers of it.
pub(super) const PAGE: u64 = 4096;
/// How long a suspect file must be unmodified before its bytes are taken.
pub(super) const QUIET: Duration = Duration::from_secs(1);
/// How far the clock that stamps a data file (its writer's host, or a network file system's
/// server) may be behind the one that gives commit ts (TiDB's PD) without an empty file taken
/// as final while its writer may still write it (see the module doc).
pub(super) const CLOCK_MARGIN: Duration = Duration::from_secs(60);
/// How far a file system's modification stamp may lag this clock (Linux stamps with a clock
/// that advances once a scheduler tick).
const MTIME_TICK: Duration = Duration::from_millis(20);
/// Looks at one suspect file before it is held in flight for the round.
pub(super) const MAX_LOOKS: u32 = 3;

/// Whether a newest file read at `len` bytes may be a view of a write in progress.
pub(super) fn suspect(len: usize) -> bool {
    len as u64 % PAGE == 0
}

/// The newest file's bytes once they are whole by the module's rule: `bytes` as first read,
/// or the file read again after it changed; [`Error::InFlight`] when it is not quiet after
/// [`MAX_LOOKS`] looks, [`Error::Missing`] when it went away.
pub(super) async fn whole(up: &Upstream, path: &str, mut bytes: Bytes) -> Result<Bytes> {
    if !up.is_directory() {
        return Ok(bytes);
    }
    let local_clock = up.stamps_files_locally();
    let (mut read_at, mut read_wall) = (Instant::now(), SystemTime::now());
    // each look comes once the bytes in hand could be quiet: a quiet time after their read, or
    // after the modification a look found
    let mut wait = QUIET;
    for _ in 0..MAX_LOOKS {
        // An empty view needs no wait: its stream does not move past it (module doc).
        if bytes.is_empty() || !suspect(bytes.len()) {
            return Ok(bytes);
        }
        tokio::time::sleep(wait).await;
        let Some(seen) = up.look(path).await? else {
            return Err(gone(path));
        };
        // changed since the read: a new length, or (by this clock) a modification after it
        // (one in the future says nothing, as in `quiet_for`)
        // (the file system's clock is coarse: a stamp up to a tick before `read_wall` may be
        // a write after the read)
        let after = read_wall.checked_sub(MTIME_TICK).unwrap_or(read_wall);
        let modified_since = seen.modified > after && seen.modified <= SystemTime::now();
        if seen.len != bytes.len() as u64 || (local_clock && modified_since) {
            bytes = up.get(path).await?.ok_or_else(|| gone(path))?;
            (read_at, read_wall) = (Instant::now(), SystemTime::now());
            wait = QUIET;
            continue;
        }
        let quiet = quiet_for(read_at.elapsed(), seen.modified, local_clock);
        if quiet >= QUIET {
            return Ok(bytes);
        }
        wait = QUIET - quiet;
    }
    // read again at the last look: whole if it no longer looks like a write in progress
    if bytes.is_empty() || !suspect(bytes.len()) {
        return Ok(bytes);
    }
    Err(Error::InFlight {
        path: path.to_string(),
        reason: format!(
            "it is the newest file its index names, {} bytes (whole 4 KiB pages), and it \
             changed within {QUIET:?} at each of {MAX_LOOKS} looks; a writer that writes in \
             place (TiCDC on a local or NFS directory with flush-concurrency > 1) may not be \
             done",
            bytes.len()
        ),
    })
}

/// How long a file seen at an unchanged length has been quiet: the consumer's own clock since
/// the read (`since_read`), the one measure every file system gives. Linux stamps a file's
/// modification time at the *start* of a `write()`, so one long write (throttled by dirty-page
/// limits) shows an old time while its pages keep landing: the time alone cannot say a file is
/// whole. Where this host's clock stamps the file (`local_clock`), a modification within the
/// quiet time shortens it too; a time in the future (a clock stepped back, a copy that kept a
/// faster host's time) says nothing and is ignored, so it cannot hold a whole file back.
fn quiet_for(since_read: Duration, modified: SystemTime, local_clock: bool) -> Duration {
    if !local_clock {
        return since_read;
    }
    match SystemTime::now().duration_since(modified) {
        Ok(age) => since_read.min(age),
        Err(_) => since_read,
    }
}

/// Whether an empty newest file may still get rows from its writer, given the checkpoint read
/// this round: until the checkpoint's time is [`CLOCK_MARGIN`] past the file's modification
/// time (see the module doc). A file that went away may be written again: it may.
pub(super) async fn may_still_be_written(
    up: &Upstream,
    path: &str,
    checkpoint: Ts,
) -> Result<bool> {
    let Some(seen) = up.look(path).await? else {
        return Ok(true);
    };
    Ok(checkpoint.to_system_time() <= seen.modified + CLOCK_MARGIN)
}

/// The error of a file that went away between its read and a look.
fn gone(path: &str) -> Error {
    Error::Missing {
        path: path.to_string(),
        reason: "it was there a moment ago, while it may still have been being written".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    fn local(dir: &std::path::Path) -> (Upstream, Metrics) {
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir).unwrap();
        let metrics = Metrics::new();
        let up = Upstream::new(std::sync::Arc::new(store), metrics.clone())
            .with_local_root(dir)
            .unwrap();
        (up, metrics)
    }

    #[test]
    fn only_whole_pages_are_suspect() {
        assert!(suspect(0));
        assert!(suspect(4096));
        assert!(suspect(3 * 65536));
        assert!(!suspect(1));
        assert!(!suspect(4095));
        assert!(!suspect(4097));
    }

    #[tokio::test]
    async fn an_empty_view_is_taken_without_a_look() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"").unwrap();
        let (up, m) = local(dir.path());
        let got = whole(&up, "f", Bytes::new()).await.unwrap();
        assert!(got.is_empty());
        assert_eq!(
            m.in_place_looks.get(),
            0,
            "its stream does not move past it"
        );
    }

    #[tokio::test]
    async fn a_file_of_another_length_is_taken_without_a_look() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"abc").unwrap();
        let (up, m) = local(dir.path());
        let got = whole(&up, "f", Bytes::from_static(b"abc")).await.unwrap();
        assert_eq!(got, &b"abc"[..]);
        assert_eq!(m.in_place_looks.get(), 0);
    }

    /// Sets `path`'s modification time `secs` seconds from now (negative: in the past).
    fn stamp(path: &std::path::Path, secs: i64) {
        let at = if secs < 0 {
            SystemTime::now() - Duration::from_secs(secs.unsigned_abs())
        } else {
            SystemTime::now() + Duration::from_secs(secs as u64)
        };
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(at)
            .unwrap();
    }

    #[tokio::test]
    async fn a_page_long_file_modified_long_ago_is_taken_one_quiet_time_after_its_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        stamp(&path, -60);
        let (up, m) = local(dir.path());
        assert!(up.stamps_files_locally());
        let started = Instant::now();
        let got = whole(&up, "f", Bytes::from(vec![b'x'; 4096]))
            .await
            .unwrap();
        assert_eq!(got.len(), 4096);
        assert_eq!(m.in_place_looks.get(), 1);
        assert!(
            started.elapsed() >= QUIET,
            "the same length a quiet time apart"
        );
    }

    /// One long `write()` (throttled by dirty-page limits) keeps the modification time it got
    /// when it started while its pages land: the old time must not pass a growing file.
    #[tokio::test]
    async fn a_file_growing_under_an_old_modification_time_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        stamp(&path, -60);
        let (up, m) = local(dir.path());
        let writer = {
            let path = path.clone();
            std::thread::spawn(move || {
                use std::io::Write;
                std::thread::sleep(QUIET / 4);
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .unwrap();
                f.write_all(&[b'y'; 4096]).unwrap();
                drop(f);
                stamp(&path, -60);
            })
        };
        let got = whole(&up, "f", Bytes::from(vec![b'x'; 4096]))
            .await
            .unwrap();
        writer.join().unwrap();
        assert_eq!(
            got.len(),
            8192,
            "the page that landed after the read is taken"
        );
        assert_eq!(m.in_place_looks.get(), 2);
    }

    /// A file rewritten after the read at the same length: the bytes in hand are stale, the
    /// later modification says so.
    #[tokio::test]
    async fn a_file_rewritten_at_the_same_length_after_the_read_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        stamp(&path, -60);
        let (up, _m) = local(dir.path());
        let writer = {
            let path = path.clone();
            std::thread::spawn(move || {
                std::thread::sleep(QUIET / 4);
                std::fs::write(&path, vec![b'z'; 4096]).unwrap();
            })
        };
        let got = whole(&up, "f", Bytes::from(vec![b'x'; 4096]))
            .await
            .unwrap();
        writer.join().unwrap();
        assert!(
            got.len() == 4096 && got.iter().all(|b| *b == b'z'),
            "the file as it is, not as first read"
        );
    }

    /// A writer that finishes (at a length that is no whole number of pages) just before the
    /// last look: the bytes read then are whole, not in flight.
    #[tokio::test]
    async fn a_file_that_ends_at_the_last_look_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        let (up, _m) = local(dir.path());
        let writer = {
            let path = path.clone();
            std::thread::spawn(move || {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .unwrap();
                // half a quiet time before each look, so every look finds the file grown
                for (pause, n) in [(QUIET / 2, 4096), (QUIET, 4096), (QUIET, 100)] {
                    std::thread::sleep(pause);
                    f.write_all(&vec![b'y'; n]).unwrap();
                }
            })
        };
        let got = whole(&up, "f", Bytes::from(vec![b'x'; 4096])).await;
        writer.join().unwrap();
        assert_eq!(got.map(|b| b.len()).ok(), Some(3 * 4096 + 100));
    }

    /// A modification time in the future (a clock stepped back) says nothing: the file is
    /// taken once this clock saw it unchanged, not held in flight round after round.
    #[tokio::test]
    async fn a_modification_time_in_the_future_does_not_hold_a_whole_file_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        stamp(&path, 3600);
        let (up, m) = local(dir.path());
        let got = whole(&up, "f", Bytes::from(vec![b'x'; 4096]))
            .await
            .unwrap();
        assert_eq!(got.len(), 4096);
        assert_eq!(m.in_place_looks.get(), 1);
    }

    #[tokio::test]
    async fn on_a_network_file_system_a_page_long_file_waits_out_the_quiet_time_by_this_clock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        // stamped a minute ago by a server clock this host cannot trust
        let old = SystemTime::now() - Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let (up, m) = local(dir.path());
        let up = up.into_network_directory();
        assert!(up.is_directory() && !up.stamps_files_locally());
        let started = Instant::now();
        let got = whole(&up, "f", Bytes::from(vec![b'x'; 4096]))
            .await
            .unwrap();
        assert_eq!(got.len(), 4096);
        assert!(
            started.elapsed() >= QUIET,
            "the same length a quiet time apart"
        );
        assert_eq!(m.in_place_looks.get(), 1);
    }

    #[tokio::test]
    async fn a_file_that_grows_is_read_again_and_one_that_keeps_growing_is_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![b'x'; 8192]).unwrap();
        let (up, m) = local(dir.path());
        // read as one page, now two: read again, then taken once quiet
        let got = whole(&up, "f", Bytes::from(vec![b'x'; 4096]))
            .await
            .unwrap();
        assert_eq!(got.len(), 8192);
        // a writer that adds a page more often than QUIET is never quiet
        let append = |path: &std::path::Path| {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
            f.write_all(&[b'y'; 4096]).unwrap();
        };
        append(&path);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (path, stop) = (path.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(QUIET / 3);
                    append(&path);
                }
            })
        };
        let first = Bytes::from(std::fs::read(&path).unwrap());
        match whole(&up, "f", first).await {
            Err(Error::InFlight { path, .. }) => assert_eq!(path, "f"),
            other => panic!("in flight expected, got {:?}", other.map(|b| b.len())),
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        // the first file: changed (read again), then quiet a quiet time later; the second:
        // every look
        assert_eq!(m.in_place_looks.get(), 2 + MAX_LOOKS as u64);
        writer.join().unwrap();
    }
}
