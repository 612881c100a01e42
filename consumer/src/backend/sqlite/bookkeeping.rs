//! SQLite's bookkeeping tables: `cdc_consumer_progress` (one row per stream, written in the
//! transaction of the unit it covers) and `cdc_consumer_quarantine` (one row per quarantined
//! data file, created only under policy `quarantine`): their DDL, their load, their write.

use crate::backend::{downstream_error, Unit};
use crate::error::Result;
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
