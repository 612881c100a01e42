//! SQLite's bookkeeping tables: `cdc_consumer_progress` (one row per stream, written in the
//! transaction of the unit it covers) and `cdc_consumer_quarantine` (one row per quarantined
//! data file, created only under policy `quarantine`) and `cdc_consumer_rounds` (one row per
//! replay round, see [`crate::audit`]): their DDL, their load, their write.

use crate::audit::{parse_record, record_json, sql_int, ROUNDS_ENDED_INDEX, ROUNDS_TABLE};
use crate::backend::{downstream_error, Unit};
use crate::error::Result;
use crate::freshness::RoundRecord;
use crate::progress::{Position, ProgressKey, PROGRESS_TABLE};
use crate::quarantine::{QuarantinedFile, QUARANTINE_TABLE};
use rusqlite::{Connection, Transaction};

/// The [`ProgressKey`] in columns 0..4 (`schema_name, table_name, partition_id, dispatcher`) of
/// a progress or quarantine row.
fn progress_key(r: &rusqlite::Row<'_>) -> rusqlite::Result<ProgressKey> {
    Ok(ProgressKey {
        schema: r.get(0)?,
        table: r.get(1)?,
        partition: r.get(2)?,
        dispatcher: r.get(3)?,
    })
}

/// Creates the progress table when missing and reads it.
pub(super) fn load_progress(conn: &Connection) -> Result<Vec<(ProgressKey, Position)>> {
    let bad = |e: rusqlite::Error| downstream_error(PROGRESS_TABLE, "-", "progress", e);
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {PROGRESS_TABLE} (
                schema_name TEXT NOT NULL, table_name TEXT NOT NULL,
                partition_id TEXT NOT NULL, dispatcher TEXT NOT NULL,
                table_version INTEGER NOT NULL, date_dir TEXT NOT NULL,
                file_index INTEGER NOT NULL, commit_ts INTEGER NOT NULL,
                PRIMARY KEY (schema_name, table_name, partition_id, dispatcher))"
    ))
    .map_err(bad)?;
    let mut st = conn
        .prepare(&format!(
            "SELECT schema_name, table_name, partition_id, dispatcher, table_version, \
             date_dir, file_index, commit_ts FROM {PROGRESS_TABLE}"
        ))
        .map_err(bad)?;
    let rows = st
        .query_map([], |r| {
            Ok((
                progress_key(r)?,
                (
                    r.get::<_, i64>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, i64>(7)?,
                ),
            ))
        })
        .map_err(bad)?;
    let mut out = Vec::new();
    for r in rows {
        let (k, (v, date, idx, ts)) = r.map_err(bad)?;
        let p = Position::from_columns(v, date, idx, ts)
            .map_err(|e| downstream_error(PROGRESS_TABLE, "-", "progress", e))?;
        out.push((k, p));
    }
    Ok(out)
}

/// Writes the unit's progress rows inside its transaction.
pub(super) fn write_progress(tx: &Transaction<'_>, tname: &str, unit: &Unit<'_>) -> Result<()> {
    for (k, p) in unit.progress {
        let (v, idx, ts) = p
            .to_columns()
            .map_err(|e| downstream_error(tname, unit.file, "progress", e))?;
        let mut st = tx
            .prepare_cached(&format!(
                "INSERT INTO {PROGRESS_TABLE} (schema_name, table_name, partition_id, dispatcher, \
                 table_version, date_dir, file_index, commit_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (schema_name, table_name, partition_id, dispatcher) DO UPDATE SET \
                 table_version = excluded.table_version, date_dir = excluded.date_dir, \
                 file_index = excluded.file_index, commit_ts = excluded.commit_ts"
            ))
            .map_err(|e| downstream_error(tname, unit.file, "progress", e))?;
        st.execute(rusqlite::params![
            k.schema,
            k.table,
            k.partition,
            k.dispatcher,
            v,
            p.date,
            idx,
            ts
        ])
        .map_err(|e| downstream_error(tname, unit.file, "progress", e))?;
    }
    Ok(())
}

/// Records a quarantined data file inside the unit's transaction.
pub(super) fn write_quarantine(
    tx: &Transaction<'_>,
    tname: &str,
    file: &str,
    q: &QuarantinedFile,
) -> Result<()> {
    let bad = |e: rusqlite::Error| downstream_error(tname, file, "quarantine", e);
    let (v, idx, before, at) = q
        .to_columns()
        .map_err(|e| downstream_error(tname, file, "quarantine", e))?;
    tx.execute(
        &format!(
            "INSERT OR REPLACE INTO {QUARANTINE_TABLE} (schema_name, table_name, \
             partition_id, dispatcher, table_version, date_dir, file_index, path, reason, \
             commit_ts_before, quarantined_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ),
        rusqlite::params![
            q.key.schema,
            q.key.table,
            q.key.partition,
            q.key.dispatcher,
            v,
            q.date,
            idx,
            q.path,
            q.reason,
            before,
            at,
        ],
    )
    .map_err(bad)?;
    Ok(())
}

/// Reads the quarantine record (see [`crate::backend::Downstream::load_quarantine`]).
pub(super) fn load_quarantine(conn: &Connection, create: bool) -> Result<Vec<QuarantinedFile>> {
    let bad = |e: rusqlite::Error| downstream_error(QUARANTINE_TABLE, "-", "quarantine", e);
    if create {
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {QUARANTINE_TABLE} (
                    schema_name TEXT NOT NULL, table_name TEXT NOT NULL,
                    partition_id TEXT NOT NULL, dispatcher TEXT NOT NULL,
                    table_version INTEGER NOT NULL, date_dir TEXT NOT NULL,
                    file_index INTEGER NOT NULL, path TEXT NOT NULL, reason TEXT NOT NULL,
                    commit_ts_before INTEGER NOT NULL, quarantined_at_ms INTEGER NOT NULL,
                    PRIMARY KEY (schema_name, table_name, partition_id, dispatcher,
                                 table_version, date_dir, file_index))"
        ))
        .map_err(bad)?;
    } else {
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                [QUARANTINE_TABLE],
                |r| r.get(0),
            )
            .map_err(bad)?;
        if n == 0 {
            return Ok(Vec::new());
        }
    }
    let mut st = conn
        .prepare(&format!(
            "SELECT schema_name, table_name, partition_id, dispatcher, table_version, \
             date_dir, file_index, path, reason, commit_ts_before, quarantined_at_ms \
             FROM {QUARANTINE_TABLE} ORDER BY quarantined_at_ms, path"
        ))
        .map_err(bad)?;
    let rows = st
        .query_map([], |r| {
            Ok((
                progress_key(r)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, i64>(9)?,
                r.get::<_, i64>(10)?,
            ))
        })
        .map_err(bad)?;
    let mut out = Vec::new();
    for r in rows {
        let (key, version, date, index, path, reason, before, at) = r.map_err(bad)?;
        out.push(
            QuarantinedFile::from_columns(key, date, path, reason, (version, index, before, at))
                .map_err(|e| downstream_error(QUARANTINE_TABLE, "-", "quarantine", e))?,
        );
    }
    Ok(out)
}

/// Creates the rounds table when missing, with its index on `ended_at_ms` (added to a table
/// an older version created too).
fn create_rounds(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {ROUNDS_TABLE} (
                start_id TEXT NOT NULL, round INTEGER NOT NULL,
                started_at_ms INTEGER NOT NULL, ended_at_ms INTEGER NOT NULL,
                fatal TEXT, record TEXT NOT NULL,
                PRIMARY KEY (start_id, round));
         CREATE INDEX IF NOT EXISTS {ROUNDS_ENDED_INDEX} ON {ROUNDS_TABLE} (ended_at_ms)"
    ))
}

/// Stores a round record and keeps the newest `keep` (see [`crate::audit`]).
pub(super) fn save_round(conn: &Connection, rec: &RoundRecord, keep: u64) -> Result<()> {
    let bad = |e: rusqlite::Error| downstream_error(ROUNDS_TABLE, "-", "round record", e);
    create_rounds(conn).map_err(bad)?;
    conn.execute(
        &format!(
            "INSERT OR REPLACE INTO {ROUNDS_TABLE} (start_id, round, started_at_ms, \
             ended_at_ms, fatal, record) VALUES (?, ?, ?, ?, ?, ?)"
        ),
        rusqlite::params![
            rec.start_id,
            sql_int(rec.round),
            sql_int(rec.started_at_ms),
            sql_int(rec.ended_at_ms),
            rec.fatal,
            record_json(rec),
        ],
    )
    .map_err(bad)?;
    conn.execute(
        &format!(
            "DELETE FROM {ROUNDS_TABLE} WHERE ended_at_ms <= (SELECT ended_at_ms FROM \
             {ROUNDS_TABLE} ORDER BY ended_at_ms DESC LIMIT 1 OFFSET ?)"
        ),
        [sql_int(keep)],
    )
    .map_err(bad)?;
    Ok(())
}

/// The newest `limit` round records, oldest first.
pub(super) fn load_rounds(conn: &Connection, limit: usize) -> Result<Vec<RoundRecord>> {
    let bad = |e: rusqlite::Error| downstream_error(ROUNDS_TABLE, "-", "round record", e);
    create_rounds(conn).map_err(bad)?;
    let mut st = conn
        .prepare(&format!(
            "SELECT record FROM {ROUNDS_TABLE} ORDER BY ended_at_ms DESC, round DESC LIMIT ?"
        ))
        .map_err(bad)?;
    let rows = st
        .query_map([sql_int(limit as u64)], |r| r.get::<_, String>(0))
        .map_err(bad)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(parse_record(&r.map_err(bad)?)?);
    }
    out.reverse();
    Ok(out)
}
