//! The data file step: read the file (or take it from the read-ahead window), apply the rows inside
//! the checkpoint window (see [`super::window`]) together with the stream's new position, or
//! quarantine the file.
//!
//! Invariants: a file's rows (with the stream's next files taken into its unit, see
//! [`super::file_unit`]) and its stream's progress row are one downstream unit; the
//! in-memory progress moves only after that unit committed. A file partly above the checkpoint
//! keeps the previous file as the stream's position (only its commit ts advances), so the rest
//! of the file is read again after the next checkpoint. A file the read-ahead window
//! (`prefetch`) holds is taken from there; a read-ahead that failed is simply read again here.
//! A committed unit's rows are freed on a blocking thread (a unit's hundred thousand small
//! frees were about a quarter of the apply task's CPU, and the database waited for them before
//! the next unit's statements); at most one unit is being freed, the next waits for it, so
//! memory stays bounded. Freeing happens only after the commit returned, so it changes nothing
//! about what is applied.
//!
//! A data file an index names but storage lacks is **in flight** when it is the newest file
//! that index names: TiCDC (tiflow) publishes the index entry before the data file, and the
//! checkpoint never passes rows that are not durable, so every row of it is above the
//! checkpoint. Its stream waits (a warning names the table and the file) and nothing else does.
//! A missing file below the newest named one is damage: [`Error::Missing`] naming it. The
//! newest file on a local directory may also be there but not whole yet (TiCDC writes it in
//! place): [`super::in_place`] holds it back ([`Error::InFlight`]), and its stream waits the same
//! way. Such a file that reads as no rows (empty) while its writer may still write it
//! (`stream_open`, and [`in_place::may_still_be_written`]) does not move its stream either,
//! without a warning: the stream reads it again in its next busy round and passes it once the
//! checkpoint passes it, a later file is indexed or its directory closes (see `in_place`).

use super::file_unit::{FileUnit, Source};
use super::in_place;
use super::window::{checkpoint_window, AtDoneTs};
use super::{DataFileStep, Outcome, Replayer};
use crate::backend::Unit;
use crate::discovery::{Catalog, DirEntry, Upstream};
use crate::enum_elems;
use crate::error::{Error, Result};
use crate::freshness::{now_ms, RoundRecord};
use crate::plan::plan_rows;
use crate::progress::{date_text, Position, ProgressKey};
use crate::quarantine::{is_quarantinable, BadFilePolicy, QuarantinedFile, HEALTH_QUARANTINE_LIST};
use bytes::Bytes;
use cdc_common::codec::{DecodedRow, TableCodec};
use cdc_common::layout::{DataDir, LayoutConfig};
use cdc_common::{TableDef, Ts};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

/// A committed unit of at least this many rows is freed on a blocking thread (see
/// [`Replayer::release_rows`]); a smaller one is freed in place.
const RELEASE_OFF_THREAD_ROWS: usize = 1024;

impl Replayer {
    /// Applies one data file and the stream's next files as one unit (see `file_unit`), or
    /// quarantines the file; the step's duration is observed once a unit was applied.
    pub(super) async fn exec_file(
        &mut self,
        cat: &Catalog,
        up: &Upstream,
        cfg: &LayoutConfig,
        f: DataFileStep,
        stalled: &HashSet<ProgressKey>,
        rec: &mut RoundRecord,
    ) -> Result<Outcome> {
        let started = Instant::now();
        let path = Catalog::data_file_path(cfg, &f.dir, &f.dispatcher, f.index)?;
        let dirs = cat
            .tables
            .get(&f.table)
            .and_then(|t| t.versions.get(&f.dir.version))
            .map(|v| &v.dirs);
        let newest = dirs
            .and_then(|d| d.get(&f.dir))
            .and_then(|d| d.indexes.get(&f.dispatcher))
            .copied()
            .unwrap_or(f.index);
        let newest_open = up.is_directory() && dirs.is_some_and(|d| stream_open(d, &f));
        let def = self.table_def(&f, rec).await?;
        let codec = self.decoder.prepared(&def)?;
        let at = (f.index, newest);
        let rows = match self.read_rows(up, &codec, &def, &path, at).await {
            Ok(rows) => rows,
            Err(e @ Error::InFlight { .. }) => {
                rec.warnings.push(format!("table `{}` waits: {e}", f.table));
                return Ok(Outcome::Stalled);
            }
            Err(Error::Missing { path: p, .. }) if p == path && f.index == newest => {
                rec.warnings.push(format!(
                    "table `{}` waits: `{path}`, the newest file its index names, is not \
                     there yet (in flight: an index entry may be published before its data \
                     file, and the checkpoint never covers its rows)",
                    f.table
                ));
                return Ok(Outcome::Stalled);
            }
            Err(e) if self.policy == BadFilePolicy::Quarantine && is_quarantinable(&e, &path) => {
                let pos = Position {
                    version: f.dir.version,
                    date: date_text(&f.dir),
                    file_index: f.index,
                    commit_ts: f.before.as_ref().map(|p| p.commit_ts).unwrap_or(Ts::ZERO),
                };
                self.quarantine(&def, f.key, pos, &path, e, rec).await?;
                return Ok(Outcome::Applied);
            }
            Err(e) => return Err(e),
        };
        let checkpoint = cat.checkpoint.unwrap_or(Ts::ZERO);
        if rows.is_empty()
            && newest_open
            && f.index == newest
            && in_place::may_still_be_written(up, &path, checkpoint).await?
        {
            // Not passed while its writer may still write it (see the module doc).
            tracing::debug!(file = %path, "newest file reads as no rows; its stream waits");
            self.progress.hold(f.key);
            return Ok(Outcome::Held);
        }
        let done_ts = f.before.as_ref().map(|p| p.commit_ts).unwrap_or(Ts::ZERO);
        let window = checkpoint_window(rows, done_ts, checkpoint, AtDoneTs::for_table(&def));
        let mut unit = FileUnit::first(f.index, &path, window, done_ts);
        let src = Source {
            up,
            cfg,
            codec: &codec,
            def: &def,
            newest,
            newest_open,
            checkpoint,
        };
        self.extend_unit(&mut unit, &f, &src).await;
        if unit.files > 1 {
            // The files after the unit are read while it is applied.
            self.read_ahead(
                cat,
                up,
                cfg,
                &f.table,
                stalled,
                Some((&f.key, unit.last_index)),
            );
        }
        let files = unit.files;
        let label = unit.label();
        let out = match self
            .apply_unit(&f, &def, unit, checkpoint, &label, rec)
            .await
        {
            Err(e @ (Error::Downstream { .. } | Error::Conflict { .. })) if files > 1 => {
                // Applied again one file per unit (see `file_unit`); the stream moves on
                // from its progress in this round's next pass. A lock conflict splits the
                // unit too: a shorter transaction holds its locks for less time.
                self.retry_files_alone(&f, &label, &e, rec);
                return Ok(Outcome::Applied);
            }
            r => r?,
        };
        if out.is_some() {
            self.metrics
                .apply_duration
                .observe(started.elapsed().as_secs_f64());
        }
        Ok(out.unwrap_or(Outcome::Stalled))
    }

    /// The table definition the file is decoded with: its schema file's, with ENUM/SET
    /// elements that no storage source gave taken from the downstream's existing table
    /// (asked only when such a column exists; see [`crate::enum_elems`]).
    /// Columns still without elements get a warning, once per table version.
    async fn table_def(&mut self, f: &DataFileStep, rec: &mut RoundRecord) -> Result<TableDef> {
        let mut def = f.schema.file.to_table_def();
        if enum_elems::lacks_elems(&def) {
            let found = self.down.read_elems(&f.table).await?;
            enum_elems::fill_from_downstream(&mut def, &found);
            if self.elems_warned.insert((f.table.clone(), f.dir.version)) {
                for w in enum_elems::unknown_warnings(&def) {
                    rec.warnings.push(format!("`{}`: {w}", f.schema.path));
                }
            }
        }
        Ok(def)
    }

    /// The file's decoded rows: taken from the read-ahead window, or read and decoded here
    /// (`at`: the file's index and the newest its index names).
    /// The time this takes is the replay's wait for storage and decoding
    /// (`cdc_consumer_read_wait_seconds_total`: near zero while the read-ahead keeps up).
    pub(super) async fn read_rows(
        &mut self,
        up: &Upstream,
        codec: &Arc<dyn TableCodec>,
        def: &TableDef,
        path: &str,
        at: (u64, u64),
    ) -> Result<Vec<DecodedRow>> {
        let started = Instant::now();
        let rows = match self.prefetch.take(path).await {
            Some(r) => r,
            // Not read ahead, or its read was cancelled: read the file here instead.
            None => {
                self.metrics.read_ahead_misses.inc();
                fetch_decode(up, codec.clone(), def.columns.len(), path, at).await
            }
        };
        self.metrics
            .read_wait_seconds
            .inc_by(started.elapsed().as_secs_f64());
        rows
    }

    /// Applies the unit's rows with the stream's new position as one downstream unit
    /// (`checkpoint`: the one its rows were windowed with). `None` when nothing could be
    /// applied (every row of its file above the checkpoint): the stream stalls.
    async fn apply_unit(
        &mut self,
        f: &DataFileStep,
        def: &TableDef,
        unit: FileUnit,
        checkpoint: Ts,
        label: &str,
        rec: &mut RoundRecord,
    ) -> Result<Option<Outcome>> {
        let n_rows = unit.rows.len() as u64;
        let (ops, no_before) = plan_rows(def, unit.rows, self.down.reduce());
        if no_before > 0 {
            rec.warnings.push(format!(
                "`{label}`: {no_before} updates of a table without primary key carry no \
                 old image; applied as inserts"
            ));
        }
        let pos = if unit.above {
            if n_rows == 0 {
                return Ok(None);
            }
            // Partly applicable: keep the previous file as the position and record the
            // checkpoint as its ts (every row of the stream at or below it is applied). The
            // file is read again later from above it: with the largest ts applied instead, a
            // keyed table would apply the rows at that ts a second time (`window`'s rows at
            // `done_ts`), counting them twice.
            let mut p = f.before.clone().unwrap_or(Position {
                version: f.dir.version,
                date: date_text(&f.dir),
                file_index: 0,
                commit_ts: Ts::ZERO,
            });
            p.commit_ts = p.commit_ts.max(unit.ts_after).max(checkpoint);
            p
        } else {
            Position {
                version: f.dir.version,
                date: date_text(&f.dir),
                file_index: unit.last_index,
                commit_ts: unit.ts_after,
            }
        };
        let progress = vec![(f.key.clone(), pos)];
        self.phase_counts.applied += 1;
        let fence = self.fence_for(&progress[0].0);
        self.down
            .apply(Unit {
                file: label,
                table: Some(def),
                ddl: &[],
                rows: &ops,
                progress: &progress,
                quarantine: None,
                fence: fence.as_ref(),
            })
            .await?;
        self.commit(progress);
        self.release_rows(ops).await;
        self.metrics.rows_applied.inc_by(n_rows);
        self.metrics.data_units.inc();
        let tr = rec.tables.entry(f.table.to_string()).or_default();
        tr.rows += n_rows;
        Ok(Some(if unit.above {
            Outcome::Stalled
        } else {
            self.metrics.files_applied.inc_by(unit.files);
            // fewer to go (the round's end sets the exact count again)
            let pending = self.metrics.files_pending.get();
            self.metrics
                .files_pending
                .set((pending - unit.files as i64).max(0));
            tr.files += unit.files;
            Outcome::Applied
        }))
    }

    /// Frees a committed unit's rows on a blocking thread, so the next unit's step (and the
    /// database, which waits for it) does not wait for a hundred thousand small frees. At most
    /// one unit is being freed: the previous one is awaited first (memory stays bounded).
    async fn release_rows(&mut self, ops: Vec<crate::plan::RowOp>) {
        if let Some(h) = self.freeing.take() {
            // Err: the freeing task panicked or was cancelled; nothing is left to free.
            let _ = h.await;
        }
        if ops.len() >= RELEASE_OFF_THREAD_ROWS {
            self.freeing = Some(tokio::task::spawn_blocking(move || drop(ops)));
        }
    }

    /// Records `path` as quarantined and moves its stream past it, in one downstream
    /// transaction; none of its rows are applied.
    async fn quarantine(
        &mut self,
        def: &TableDef,
        key: ProgressKey,
        pos: Position,
        path: &str,
        err: Error,
        rec: &mut RoundRecord,
    ) -> Result<()> {
        let q = QuarantinedFile::new(&key, &pos, path, err.to_string(), now_ms());
        let progress = vec![(key, pos)];
        self.phase_counts.applied += 1;
        let fence = self.fence_for(&progress[0].0);
        self.down
            .apply(Unit {
                file: path,
                table: Some(def),
                ddl: &[],
                rows: &[],
                progress: &progress,
                quarantine: Some(&q),
                fence: fence.as_ref(),
            })
            .await?;
        self.commit(progress);
        tracing::warn!(file = path, reason = %q.reason, "data file quarantined; its rows are not applied");
        rec.warnings.push(format!(
            "quarantined `{path}` (rows not applied): {}",
            q.reason
        ));
        rec.tables
            .entry(def.name().to_string())
            .or_default()
            .quarantined += 1;
        self.metrics.quarantined_files.inc();
        self.quarantined_total += 1;
        self.quarantined.push(q);
        if self.quarantined.len() > HEALTH_QUARANTINE_LIST {
            self.quarantined.remove(0);
        }
        Ok(())
    }
}

/// Reads a data file and decodes it (see [`decode_file`]).
async fn fetch_decode(
    up: &Upstream,
    codec: Arc<dyn TableCodec>,
    columns: usize,
    path: &str,
    (index, newest): (u64, u64),
) -> Result<Vec<DecodedRow>> {
    let bytes = fetch_data_file(up, path, index, newest).await?;
    decode_file(codec, columns, path.to_string(), bytes).await
}

/// Whether `f`'s stream may still get rows in the newest file its directory's index names:
/// the directory is not closed (see [`crate::discovery`]) and no later date directory of the
/// same stream (table version, partition and writer) names a file (writer rule 6: a writer
/// indexes a later date only after it finished the earlier one). `dirs`: the version's
/// directories.
fn stream_open(dirs: &BTreeMap<DataDir, DirEntry>, f: &DataFileStep) -> bool {
    use std::ops::Bound::{Excluded, Unbounded};
    let open = dirs.get(&f.dir).is_some_and(|d| !d.closed);
    open && !dirs
        .range((Excluded(&f.dir), Unbounded))
        .take_while(|(d, _)| d.partition_id == f.dir.partition_id)
        .any(|(_, e)| e.indexes.contains_key(&f.dispatcher))
}

/// Reads data file `index` of a stream whose index names `newest`; [`Error::Missing`] when
/// storage lacks it (the step decides whether that is a file in flight or damage). The newest
/// file is taken once it is whole by [`super::in_place`]'s rule ([`Error::InFlight`] when it may
/// still be being written in place).
pub(super) async fn fetch_data_file(
    up: &Upstream,
    path: &str,
    index: u64,
    newest: u64,
) -> Result<Bytes> {
    let bytes = up.get(path).await?.ok_or_else(|| Error::Missing {
        path: path.to_string(),
        reason: format!("its index file names file {newest}, so files up to {newest} must exist"),
    })?;
    if index == newest {
        return in_place::whole(up, path, bytes).await;
    }
    Ok(bytes)
}

/// Largest data file decoded on the calling task's thread: decoding runs at 200-700 MiB/s per
/// core (docs/architecture.md, "Codecs: decode"), so 16 KiB holds a worker under 0.1 ms, less
/// than the two thread hand-offs a blocking-pool task costs (a cold replay of many small files
/// was a third slower through the pool).
pub(super) const INLINE_DECODE_MAX: usize = 16 * 1024;

/// Decodes a data file's bytes: a small file stored as encoded inline, a larger or compressed
/// one on a blocking thread (decoding is CPU work). A decoder panic on these bytes is reported as a corrupt file, never
/// propagated, either way.
pub(super) async fn decode_file(
    codec: Arc<dyn TableCodec>,
    columns: usize,
    path: String,
    bytes: Bytes,
) -> Result<Vec<DecodedRow>> {
    let object = path.clone();
    // A compressed (or rewritten) file's stored size says nothing of its decoded size.
    let inline = bytes.len() <= INLINE_DECODE_MAX && !codec.rewrites_file();
    let decode = move || crate::decode::decode_with(codec.as_ref(), columns, &path, &bytes);
    let outcome = if inline {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode)).map_err(panic_text)
    } else {
        tokio::task::spawn_blocking(decode)
            .await
            .map_err(|e| e.to_string())
    };
    match outcome {
        Ok(r) => r,
        Err(e) => Err(cdc_common::Error::corrupt(
            object,
            cdc_common::error::Position::None,
            format!("the decoder failed on this file: {e}"),
        )
        .into()),
    }
}

/// The message of a caught panic.
fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    match (p.downcast_ref::<&str>(), p.downcast_ref::<String>()) {
        (Some(s), _) => s.to_string(),
        (_, Some(s)) => s.clone(),
        _ => "panic".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_common::codec::TableCodec;
    use cdc_common::DmlEvent;

    /// A codec whose decoder panics, as a bug on unusual bytes would.
    struct Panics;

    impl TableCodec for Panics {
        fn file_header(&self, _: &mut Vec<u8>) {}
        fn encode(&self, _: &DmlEvent, _: &mut Vec<u8>) -> cdc_common::Result<()> {
            Ok(())
        }
        fn decode(&self, _: &str, bytes: &[u8]) -> cdc_common::Result<Vec<DecodedRow>> {
            panic!("decoder bug at byte {}", bytes.len())
        }
    }

    #[tokio::test]
    async fn a_decoder_panic_is_a_corrupt_file_naming_it_inline_and_off_thread() {
        for len in [
            10,
            INLINE_DECODE_MAX,
            INLINE_DECODE_MAX + 1,
            4 * INLINE_DECODE_MAX,
        ] {
            let bytes = Bytes::from(vec![b'x'; len]);
            let e = decode_file(Arc::new(Panics), 2, "s/t/1/CDC1.csv".into(), bytes)
                .await
                .unwrap_err()
                .to_string();
            assert!(e.contains("s/t/1/CDC1.csv"), "{len}: {e}");
            assert!(e.contains("the decoder failed on this file"), "{len}: {e}");
            assert!(
                e.contains(&format!("decoder bug at byte {len}")),
                "{len}: {e}"
            );
        }
    }
}
