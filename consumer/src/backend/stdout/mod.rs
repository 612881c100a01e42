//! stdout downstream: JSON lines, progress in a local file.
//!
//! Each row operation is one line `{"op":"upsert|delete|insert|delete-one","schema":..,
//! "table":..,"file":..,"row":{column: value}}`; each DDL operation one line
//! `{"op":"ddl","kind":..,"schema":..,"table":..,"file":..}`. Values: numbers as JSON numbers
//! (non-finite floats and integers beyond 2^53 stay exact as strings only when needed: u64 and
//! i64 are written as numbers, as serde_json does), text as strings, binary as lowercase hex.
//!
//! # Progress file
//!
//! After a unit's lines are written and stdout is flushed, the whole progress record is
//! written to `<file>.tmp`, fsynced, renamed over `<file>` and the directory fsynced, so the file
//! is always one complete record. stdout has no transaction: after a kill between the flush and
//! the rename, the last unit's lines are printed again on restart (at-least-once for the
//! lines, exactly-once for the record). Quarantined data files (`--on-bad-file quarantine`)
//! are kept in the same file (`quarantined`), so they are recorded with the progress that
//! skips them.
//!
//! # Read-back
//!
//! There are no tables to read back: the read-back calls return an error saying so.

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
            progress_file,
            record: BTreeMap::new(),
            quarantined: Vec::new(),
            out,
            rounds_stored: None,
        }
    }

    fn io(&self, e: std::io::Error) -> Error {
        Error::Io {
            path: self.progress_file.display().to_string(),
            source: e,
        }
    }

    fn save(&self) -> Result<()> {
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
        let dir = match self.progress_file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
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
        let Some(rec) = self.read_file()? else {
            return Ok(Vec::new());
        };
        self.record = rec.progress.iter().cloned().collect();
        self.quarantined = rec.quarantined;
        Ok(rec.progress)
    }

    async fn load_quarantine(&mut self, _create: bool) -> Result<Vec<QuarantinedFile>> {
        Ok(match self.read_file()? {
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
        for (k, p) in unit.progress {
            self.record.insert(k.clone(), p.clone());
        }
        if let Some(q) = unit.quarantine {
            self.quarantined.retain(|x| x.path != q.path);
            self.quarantined.push(q.clone());
        }
        self.save()
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
}
