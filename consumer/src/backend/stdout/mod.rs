//! stdout downstream: JSON lines, progress in a local file.
//!
//! Each row operation is one line `{"op":"upsert|delete|insert|delete-one","schema":..,
//! "table":..,"file":..,"row":{column: value}}`; each DDL operation one line
//! `{"op":"ddl","kind":..,"schema":..,"table":..,"file":..}`. Values: numbers as JSON numbers
//! (non-finite floats and integers beyond 2^53 stay exact as strings only when needed: u64 and
//! i64 are written as numbers, as serde_json does), text as strings, binary as lowercase hex.
//!
//! # Progress file and journal
//!
//! After a unit's lines are written and stdout is flushed, the unit's progress rows (and its
//! quarantine record, `--on-bad-file quarantine`) are appended as one line to
//! `<file>.journal` and synced ([`journal`]). The record is the progress file, a snapshot
//! written to `<file>.tmp`, fsynced, renamed over `<file>` and the directory fsynced, with the
//! journal's lines applied over it; the snapshot is rewritten and the journal emptied once the
//! journal holds more lines than the record has streams, so a unit costs one small synced
//! append whatever the number of tables. stdout has no transaction: after a kill between the
//! flush and the append, the last unit's lines are printed again on restart (at-least-once
//! for the lines, exactly-once for the record).
//!
//! # Read-back
//!
//! There are no tables to read back: the read-back calls return an error saying so.

mod journal;
mod rounds;

use super::{read_back_error, Downstream, TextRows, Unit};
use crate::error::{Error, Result};
use crate::freshness::RoundRecord;
use crate::plan::RowOp;
use crate::progress::{Position, ProgressKey};
use crate::quarantine::QuarantinedFile;
use cdc_common::{ColumnDef, TableName, Value};
use serde_json::{json, Map, Value as Json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

/// Frozen format version of the progress file.
pub const PROGRESS_FILE_FORMAT: u64 = 1;

/// The stdout downstream.
pub struct StdoutDownstream {
    progress_file: PathBuf,
    record: BTreeMap<ProgressKey, Position>,
    quarantined: Vec<QuarantinedFile>,
    out: Box<dyn Write + Send>,
    /// Lines in the rounds file (see [`rounds`]), once known.
    rounds_stored: Option<usize>,
    /// Units recorded since the last snapshot.
    journal: journal::Journal,
    /// Snapshots written by this process (tests: compaction is amortized).
    snapshots: usize,
    /// The progress file is known to exist (written or seen): no look-up per unit.
    snapshot_exists: bool,
}

/// The progress file. Format 1; `quarantined` was added later and defaults to empty, so files
/// written before it still load, and readers that do not know it ignore it.
#[derive(serde::Serialize, serde::Deserialize)]
struct FileRecord {
    format: u64,
    progress: Vec<(ProgressKey, Position)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    quarantined: Vec<QuarantinedFile>,
}

impl StdoutDownstream {
    /// Writes to the process's stdout, progress in `progress_file`.
    pub fn new(progress_file: PathBuf) -> StdoutDownstream {
        StdoutDownstream::with_writer(progress_file, Box::new(std::io::stdout()))
    }

    /// Writes lines to `out` (tests).
    pub fn with_writer(progress_file: PathBuf, out: Box<dyn Write + Send>) -> StdoutDownstream {
        StdoutDownstream {
            journal: journal::Journal::new(&progress_file),
            progress_file,
            record: BTreeMap::new(),
            quarantined: Vec::new(),
            out,
            rounds_stored: None,
            snapshots: 0,
            snapshot_exists: false,
        }
    }

    /// Snapshots of the progress record this downstream has written.
    pub fn snapshots_written(&self) -> usize {
        self.snapshots
    }

    fn io(&self, e: std::io::Error) -> Error {
        Error::Io {
            path: self.progress_file.display().to_string(),
            source: e,
        }
    }

    /// Phase *record*: the unit's progress and quarantine record into the state and the
    /// journal; phase *compact* once the journal outgrows the record.
    fn record_unit(&mut self, unit: &Unit<'_>) -> Result<()> {
        for (k, p) in unit.progress {
            self.record.insert(k.clone(), p.clone());
        }
        if let Some(q) = unit.quarantine {
            note_quarantined(&mut self.quarantined, q.clone());
        }
        if !self.snapshot_exists && !self.progress_file.exists() {
            // The snapshot exists before the journal's first line, so a journal without it is
            // always a progress file deleted by hand (see `read_state`).
            self.save()?;
        }
        self.snapshot_exists = true;
        self.journal.append(&journal::Entry {
            progress: unit.progress.to_vec(),
            quarantined: unit.quarantine.cloned(),
        })?;
        if self.journal.lines() > self.record.len().max(journal::COMPACT_MIN) {
            self.save()?;
            self.journal.clear()?;
        }
        Ok(())
    }

    /// Writes the snapshot (see [`journal`] for why the journal is emptied only after it).
    fn save(&mut self) -> Result<()> {
        let rec = FileRecord {
            format: PROGRESS_FILE_FORMAT,
            progress: self
                .record
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            quarantined: self.quarantined.clone(),
        };
        let text = serde_json::to_vec_pretty(&rec).map_err(|e| self.io(e.into()))?;
        let mut tmp = self.progress_file.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut f = std::fs::File::create(&tmp).map_err(|e| self.io(e))?;
        f.write_all(&text).map_err(|e| self.io(e))?;
        f.sync_all().map_err(|e| self.io(e))?;
        std::fs::rename(&tmp, &self.progress_file).map_err(|e| self.io(e))?;
        journal::sync_parent(&self.progress_file);
        self.snapshots += 1;
        Ok(())
    }

    /// The record: the snapshot with the journal applied; `None` when neither exists.
    fn read_state(&self) -> Result<Option<FileRecord>> {
        let snapshot = self.read_file()?;
        let journal_path = journal::journal_file(&self.progress_file);
        let (entries, _) = journal::read(&journal_path)?;
        if snapshot.is_none() {
            if entries.is_empty() {
                return Ok(None);
            }
            return Err(self.io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "the progress journal {} exists without its progress file: restore the \
                     progress file, or delete the journal too to replay from the start",
                    journal_path.display()
                ),
            )));
        }
        let mut rec = snapshot.unwrap_or(FileRecord {
            format: PROGRESS_FILE_FORMAT,
            progress: Vec::new(),
            quarantined: Vec::new(),
        });
        let mut progress: BTreeMap<ProgressKey, Position> = rec.progress.drain(..).collect();
        for e in entries {
            progress.extend(e.progress);
            if let Some(q) = e.quarantined {
                note_quarantined(&mut rec.quarantined, q);
            }
        }
        rec.progress = progress.into_iter().collect();
        Ok(Some(rec))
    }
}

/// A quarantine record replaces an earlier one of the same data file.
fn note_quarantined(list: &mut Vec<QuarantinedFile>, q: QuarantinedFile) {
    list.retain(|x| x.path != q.path);
    list.push(q);
}

/// JSON form of a value (see the module doc).
pub fn value_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Int(i) => json!(i),
        Value::UInt(u) => json!(u),
        Value::Float(f) => serde_json::Number::from_f64(f64::from(*f))
            .map(Json::Number)
            .unwrap_or_else(|| Json::String(f.to_string())),
        Value::Double(d) => serde_json::Number::from_f64(*d)
            .map(Json::Number)
            .unwrap_or_else(|| Json::String(d.to_string())),
        Value::Decimal(s) | Value::String(s) => Json::String(s.to_string()),
        Value::Bytes(b) => Json::String(b.iter().map(|x| format!("{x:02x}")).collect()),
    }
}

#[async_trait::async_trait]
impl Downstream for StdoutDownstream {
    async fn load_progress(&mut self) -> Result<Vec<(ProgressKey, Position)>> {
        let Some(rec) = self.read_state()? else {
            return Ok(Vec::new());
        };
        self.record = rec.progress.iter().cloned().collect();
        self.quarantined = rec.quarantined;
        Ok(rec.progress)
    }

    async fn load_quarantine(&mut self, _create: bool) -> Result<Vec<QuarantinedFile>> {
        Ok(match self.read_state()? {
            Some(rec) => {
                self.quarantined = rec.quarantined.clone();
                rec.quarantined
            }
            None => Vec::new(),
        })
    }

    async fn table_exists(&mut self, _name: &TableName) -> Result<bool> {
        Ok(true)
    }

    fn keeps_settled_mark(&self) -> bool {
        false
    }

    fn reduce(&self) -> crate::plan::Reduce {
        // a change log: every change, in order
        crate::plan::Reduce::Exact
    }

    async fn apply(&mut self, unit: Unit<'_>) -> Result<()> {
        let mut buf = Vec::new();
        for op in unit.ddl {
            let line = json!({"op": "ddl", "kind": op.kind(), "file": unit.file,
                "table": unit.table.map(|t| t.name().to_string())});
            buf.extend_from_slice(line.to_string().as_bytes());
            buf.push(b'\n');
        }
        if let Some(def) = unit.table {
            for r in unit.rows {
                let (op, row) = match r {
                    RowOp::Upsert(v) => ("upsert", v),
                    RowOp::Delete(v) => ("delete", v),
                    RowOp::Insert(v) => ("insert", v),
                    RowOp::DeleteOne(v) => ("delete-one", v),
                };
                let mut m = Map::new();
                for (c, v) in def.columns.iter().zip(row) {
                    m.insert(c.name.clone(), value_json(v));
                }
                let line = json!({"op": op, "schema": def.schema, "table": def.table,
                    "file": unit.file, "row": m});
                buf.extend_from_slice(line.to_string().as_bytes());
                buf.push(b'\n');
            }
        }
        self.out.write_all(&buf).map_err(|e| self.io(e))?;
        self.out.flush().map_err(|e| self.io(e))?;
        self.record_unit(&unit)
    }

    async fn save_round(&mut self, rec: &RoundRecord, keep: u64) -> Result<()> {
        let path = rounds::rounds_file(&self.progress_file);
        rounds::save(&path, &mut self.rounds_stored, rec, keep)
    }

    async fn load_rounds(&mut self, limit: usize) -> Result<Vec<RoundRecord>> {
        rounds::load(&rounds::rounds_file(&self.progress_file), limit)
    }

    async fn read_tables(&mut self, schema: &str) -> Result<Vec<String>> {
        Err(read_back_error(schema, NO_READ_BACK))
    }

    async fn read_columns(&mut self, table: &TableName) -> Result<Vec<String>> {
        Err(read_back_error(&table.to_string(), NO_READ_BACK))
    }

    async fn read_rows(&mut self, table: &TableName, _columns: &[ColumnDef]) -> Result<TextRows> {
        Err(read_back_error(&table.to_string(), NO_READ_BACK))
    }
}

/// Why stdout refuses a read-back.
const NO_READ_BACK: &str = "stdout keeps no tables: its lines cannot be read back";

impl StdoutDownstream {
    /// Reads the progress file; `None` when it does not exist yet.
    fn read_file(&self) -> Result<Option<FileRecord>> {
        let bytes = match std::fs::read(&self.progress_file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io(e)),
        };
        let rec: FileRecord = serde_json::from_slice(&bytes).map_err(|e| {
            self.io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not a progress file: {e}"),
            ))
        })?;
        if rec.format != PROGRESS_FILE_FORMAT {
            return Err(self.io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "progress file format {} is not {PROGRESS_FILE_FORMAT}",
                    rec.format
                ),
            )));
        }
        Ok(Some(rec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_back_is_refused_with_a_reason() {
        let mut d = StdoutDownstream::with_writer(PathBuf::from("unused"), Box::new(Vec::new()));
        let e = futures::executor::block_on(d.read_tables("s")).unwrap_err();
        assert!(
            matches!(&e, Error::Downstream { kind, reason, .. }
                if kind == "read back" && reason.contains("stdout keeps no tables")),
            "{e}"
        );
    }

    fn key(i: usize) -> ProgressKey {
        ProgressKey {
            schema: "db".into(),
            table: format!("t{i}"),
            partition: String::new(),
            dispatcher: String::new(),
        }
    }

    fn pos(i: u64) -> Position {
        Position {
            version: cdc_common::Ts(1),
            date: String::new(),
            file_index: i,
            commit_ts: cdc_common::Ts(100 + i),
        }
    }

    /// Applies one unit whose only effect is the progress row `(key(i), pos(at))`.
    fn record(d: &mut StdoutDownstream, i: usize, at: u64) {
        let progress = [(key(i), pos(at))];
        futures::executor::block_on(d.apply(Unit {
            file: "f",
            table: None,
            ddl: &[],
            rows: &[],
            progress: &progress,
            quarantine: None,
            fence: None,
        }))
        .unwrap();
    }

    fn open(path: &std::path::Path) -> StdoutDownstream {
        StdoutDownstream::with_writer(path.to_path_buf(), Box::new(std::io::sink()))
    }

    fn loaded(path: &std::path::Path) -> BTreeMap<ProgressKey, Position> {
        futures::executor::block_on(open(path).load_progress())
            .unwrap()
            .into_iter()
            .collect()
    }

    #[test]
    fn a_cold_start_of_many_streams_rewrites_the_snapshot_a_bounded_number_of_times() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        let mut d = open(&path);
        let n = 3000;
        for i in 0..n {
            record(&mut d, i, i as u64 + 1);
        }
        // One snapshot before the first journal line, then one each time the journal outgrows
        // the record (which grows by one stream per unit here): a handful, not one per unit.
        assert!(
            d.snapshots_written() <= 8,
            "{} snapshots for {n} units",
            d.snapshots_written()
        );
        let back = loaded(&path);
        assert_eq!(back.len(), n);
        assert!((0..n).all(|i| back[&key(i)] == pos(i as u64 + 1)));
    }

    #[test]
    fn the_journal_over_the_snapshot_is_the_record_in_any_kill_between_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        let journal = journal::journal_file(&path);
        let mut d = open(&path);
        // the same few streams moved many times: the journal compacts every COMPACT_MIN + 1
        for at in 1..=journal::COMPACT_MIN as u64 {
            record(&mut d, (at % 3) as usize, at);
        }
        let before_compaction = std::fs::read(&journal).unwrap();
        record(&mut d, 0, 1000);
        assert_eq!(d.snapshots_written(), 2, "the journal was compacted");
        assert_eq!(std::fs::metadata(&journal).unwrap().len(), 0);
        let want = loaded(&path);
        assert_eq!(want[&key(0)], pos(1000));
        // A kill after the snapshot's rename and before the journal was emptied: the old
        // lines (every one of them older than the snapshot) are applied again over it.
        let mut stale = before_compaction;
        stale.extend_from_slice(
            &serde_json::to_vec(&journal::Entry {
                progress: vec![(key(0), pos(1000))],
                quarantined: None,
            })
            .unwrap(),
        );
        stale.push(b'\n');
        std::fs::write(&journal, stale).unwrap();
        assert_eq!(loaded(&path), want);
    }

    #[test]
    fn a_torn_last_journal_line_is_not_recorded_and_is_cut_before_the_next_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        let journal = journal::journal_file(&path);
        let mut d = open(&path);
        record(&mut d, 1, 1);
        record(&mut d, 2, 1);
        drop(d);
        let mut text = std::fs::read(&journal).unwrap();
        text.extend_from_slice(br#"{"progress":[[{"schema":"db","tab"#);
        std::fs::write(&journal, &text).unwrap();
        let back = loaded(&path);
        assert_eq!(back.keys().cloned().collect::<Vec<_>>(), [key(1), key(2)]);
        let mut d = open(&path);
        futures::executor::block_on(d.load_progress()).unwrap();
        record(&mut d, 3, 7);
        let back = loaded(&path);
        assert_eq!(back.len(), 3);
        assert_eq!(back[&key(3)], pos(7));
        // a damaged line in the middle is not a torn tail: an error naming the journal
        let mut text = std::fs::read(&journal).unwrap();
        text.splice(0..0, b"not json\n".iter().copied());
        std::fs::write(&journal, &text).unwrap();
        let e = futures::executor::block_on(open(&path).load_progress()).unwrap_err();
        assert!(
            e.to_string().contains("p.json.journal") && e.to_string().contains("byte 0"),
            "{e}"
        );
    }

    #[test]
    fn a_journal_without_its_progress_file_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        let mut d = open(&path);
        record(&mut d, 1, 1);
        drop(d);
        std::fs::remove_file(&path).unwrap();
        let e = futures::executor::block_on(open(&path).load_progress()).unwrap_err();
        assert!(
            e.to_string().contains("exists without its progress file")
                && e.to_string().contains("delete the journal too"),
            "{e}"
        );
        std::fs::remove_file(journal::journal_file(&path)).unwrap();
        assert!(loaded(&path).is_empty());
    }
}
