//! The bad-file policy (`--on-bad-file stop|quarantine`) and the quarantine record.
//!
//! # What may be quarantined
//!
//! Only a **data file whose content does not decode** (a [`cdc_common::Error::Corrupt`] naming
//! that file: truncated, garbage, another protocol's bytes, rows that do not fit the table
//! version's columns). Such a file is one writer's output and nothing else depends on its
//! bytes, so skipping it loses exactly its rows and nothing more. Everything else stops the
//! round under both policies:
//!
//! - a file an index names but storage lacks (`missing data file`): storage lost data or a
//!   cleanup ran early; skipping would hide it, and a slow listing may make it appear later;
//! - a schema file with a wrong checksum, invalid JSON or a definition that does not match its
//!   path: every later file of the table version depends on it;
//! - `metadata` and index file content, storage and downstream errors: transient or global,
//!   never a property of one file.
//!
//! # The record (frozen format: do not add, remove or reorder columns)
//!
//! ```text
//! cdc_consumer_quarantine                 (stdout: the `quarantined` list of the progress file)
//!   schema_name        text    upstream schema
//!   table_name         text    upstream table
//!   partition_id       text    partition directory ('' when none)
//!   dispatcher         text    dispatcher id ('' for the single writer)
//!   table_version      bigint  table version of the file
//!   date_dir           text    date directory ('' when none)
//!   file_index         bigint  the file's index
//!   path               text    the data file's path in storage
//!   reason             text    the decode error
//!   commit_ts_before   bigint  the stream's commit ts before the file was skipped
//!   quarantined_at_ms  bigint  when, milliseconds since the Unix epoch
//!   PRIMARY KEY (schema_name, table_name, partition_id, dispatcher, table_version, date_dir,
//!                file_index)
//! ```
//!
//! # Invariants
//!
//! - The record and the stream's progress row moved past the file are written in **one
//!   downstream transaction** (for stdout: one atomic replace of the progress file). After a
//!   crash either both exist or neither: the file is quarantined exactly once, never re-read
//!   after that, and never applied later (progress is past it), even once storage is repaired.
//! - Quarantining applies none of the file's rows; the stream's commit ts stays where it was.
//! - The table is created only under `--on-bad-file quarantine`; with `stop` an existing table
//!   is still read so `/health` keeps listing earlier quarantines.

use crate::error::Error;
use crate::progress::{from_i64, to_i64, Position, ProgressKey};

/// Name of the quarantine table in SQL downstreams.
pub const QUARANTINE_TABLE: &str = "cdc_consumer_quarantine";
/// How many quarantined files `/health` and the status page list (the newest).
pub const HEALTH_QUARANTINE_LIST: usize = 100;

/// What to do with a data file whose content does not decode.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum BadFilePolicy {
    /// End the round with the error; progress stays before the file (the default: nothing is
    /// ever skipped without an operator deciding so).
    #[default]
    Stop,
    /// Record the file in the quarantine table, move its stream's progress past it (one
    /// transaction) and continue with the next file.
    Quarantine,
}

impl BadFilePolicy {
    /// Parses `stop` or `quarantine`.
    pub fn parse(s: &str) -> Result<BadFilePolicy, Error> {
        match s {
            "stop" => Ok(BadFilePolicy::Stop),
            "quarantine" => Ok(BadFilePolicy::Quarantine),
            other => Err(Error::config(
                "on-bad-file",
                format!("`{}` is not `stop` or `quarantine`", other.escape_debug()),
            )),
        }
    }

    /// The option value.
    pub fn name(self) -> &'static str {
        match self {
            BadFilePolicy::Stop => "stop",
            BadFilePolicy::Quarantine => "quarantine",
        }
    }
}

/// True when `err`, met while reading the data file `path`, is a content error of that file
/// (see the module doc); false for every error that must stop the round.
pub fn is_quarantinable(err: &Error, path: &str) -> bool {
    matches!(err, Error::Contract(cdc_common::Error::Corrupt { object, .. }) if object == path)
}

/// One quarantined data file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuarantinedFile {
    /// The stream the file belongs to.
    pub key: ProgressKey,
    /// Its table version, date directory and index (`commit_ts` unused: see `commit_ts_before`).
    pub version: u64,
    /// Date directory (`""` when none).
    pub date: String,
    /// File index.
    pub file_index: u64,
    /// The data file's path in storage.
    pub path: String,
    /// Why it was quarantined (the decode error).
    pub reason: String,
    /// The stream's commit ts before the file was skipped (to re-apply it by hand).
    pub commit_ts_before: u64,
    /// When, milliseconds since the Unix epoch.
    pub quarantined_at_ms: u64,
}

impl QuarantinedFile {
    /// The record of skipping the file at `pos` (the position recorded for it) of stream `key`.
    pub fn new(
        key: &ProgressKey,
        pos: &Position,
        path: &str,
        reason: String,
        at_ms: u64,
    ) -> QuarantinedFile {
        QuarantinedFile {
            key: key.clone(),
            version: pos.version.0,
            date: pos.date.clone(),
            file_index: pos.file_index,
            path: path.to_string(),
            reason,
            commit_ts_before: pos.commit_ts.0,
            quarantined_at_ms: at_ms,
        }
    }

    /// `table_version`, `file_index`, `commit_ts_before` and `quarantined_at_ms` as the signed
    /// column values SQL downstreams store.
    pub fn to_columns(&self) -> Result<(i64, i64, i64, i64), String> {
        Ok((
            to_i64("table_version", self.version)?,
            to_i64("file_index", self.file_index)?,
            to_i64("commit_ts", self.commit_ts_before)?,
            to_i64("quarantined_at_ms", self.quarantined_at_ms)?,
        ))
    }

    /// The record stored in a quarantine row: its stream, `date_dir`, `path`, `reason`, and the
    /// signed `table_version`, `file_index`, `commit_ts_before` and `quarantined_at_ms` columns
    /// in the order of [`QuarantinedFile::to_columns`].
    pub fn from_columns(
        key: ProgressKey,
        date: String,
        path: String,
        reason: String,
        (version, file_index, before, at): (i64, i64, i64, i64),
    ) -> Result<QuarantinedFile, String> {
        Ok(QuarantinedFile {
            key,
            version: from_i64("table_version", version)?,
            date,
            file_index: from_i64("file_index", file_index)?,
            path,
            reason,
            commit_ts_before: from_i64("commit_ts_before", before)?,
            quarantined_at_ms: from_i64("quarantined_at_ms", at)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_round_trip_and_unknown_is_an_error() {
        for p in [BadFilePolicy::Stop, BadFilePolicy::Quarantine] {
            assert_eq!(BadFilePolicy::parse(p.name()).unwrap(), p);
        }
        assert_eq!(BadFilePolicy::default(), BadFilePolicy::Stop);
        assert!(matches!(
            BadFilePolicy::parse("skip"),
            Err(Error::Config { name, .. }) if name == "on-bad-file"
        ));
    }

    #[test]
    fn only_decode_errors_of_the_file_itself_are_quarantinable() {
        let p = "db/t/1/CDC000001.csv";
        let corrupt = |object: &str| -> Error {
            cdc_common::Error::corrupt(object, cdc_common::error::Position::Line(1), "bad").into()
        };
        assert!(is_quarantinable(&corrupt(p), p));
        // Another object's corruption (a schema or index file) is not this file's content.
        assert!(!is_quarantinable(
            &corrupt("db/t/meta/schema_1_0000000001.json"),
            p
        ));
        let missing = Error::Missing {
            path: p.into(),
            reason: "indexed".into(),
        };
        assert!(!is_quarantinable(&missing, p));
        let down = crate::backend::downstream_error("db.t", p, "upsert", "NOT NULL");
        assert!(!is_quarantinable(&down, p));
        let store = Error::storage(
            p,
            object_store::Error::Generic {
                store: "x",
                source: "down".into(),
            },
        );
        assert!(!is_quarantinable(&store, p));
    }
}
