//! MySQL's bookkeeping tables, in the URI's database (`cdc_consumer` when it names none):
//! `cdc_consumer_progress` (one row per stream, written after a locking read in the
//! transaction of the unit it covers: see the backend's module doc) and
//! `cdc_consumer_quarantine` (one row per quarantined data file, created only under policy
//! `quarantine`): their DDL, their load, their write.

use super::conflict::unit_error;
use crate::audit::{parse_record, record_json, sql_int, ROUNDS_TABLE};
use crate::backend::{downstream_error, Unit};
use crate::error::Result;
use crate::freshness::RoundRecord;
use crate::progress::{Position, ProgressKey, PROGRESS_TABLE};
use crate::quarantine::{QuarantinedFile, QUARANTINE_TABLE};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Params, Transaction, Value as MyValue};

/// Creates the database and the progress table when missing and reads it (`db` quoted);
/// with `settled` (a consumer, not a group member, starting or reopening its downstream), a
/// locking read waits for every transaction holding a progress row (updated or inserted) to end. A consumer killed right after sending `COMMIT` leaves a session that
/// still commits its unit; a restart reading the record before that commit landed would apply
/// the unit again, and a unit of several files formed again after discovery saw more files
/// would end at another file than the late one, so the compare before the progress write
/// could not tell it was applied. The wait is bounded ([`crate::progress::settle_wait_secs`],
/// set for that one read): a session that stays inside a progress-writing transaction (a
/// paused or cut-off consumer) makes the read fail with an error that says so.
pub(super) async fn load_progress(
    conn: &mut Conn,
    db: &str,
    settled: bool,
) -> Result<Vec<(ProgressKey, Position)>> {
    let bad = |e: mysql_async::Error| downstream_error(PROGRESS_TABLE, "-", "progress", e);
    conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS {db}"))
        .await
        .map_err(bad)?;
    conn.query_drop(format!(
        "CREATE TABLE IF NOT EXISTS {db}.{PROGRESS_TABLE} (
                schema_name VARCHAR(255) NOT NULL, table_name VARCHAR(255) NOT NULL,
                partition_id VARCHAR(20) NOT NULL, dispatcher VARCHAR(130) NOT NULL,
                table_version BIGINT NOT NULL, date_dir VARCHAR(10) NOT NULL,
                file_index BIGINT NOT NULL, commit_ts BIGINT NOT NULL,
                PRIMARY KEY (schema_name, table_name, partition_id, dispatcher)
             ) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin"
    ))
    .await
    .map_err(bad)?;
    type Row = (String, String, String, String, i64, String, i64, i64);
    // A locking read: it waits for every unit in flight on the record (see the doc above).
    let mut tx = conn
        .start_transaction(mysql_async::TxOpts::default())
        .await
        .map_err(bad)?;
    let lock = if settled { " LOCK IN SHARE MODE" } else { "" };
    if settled {
        // bounded, for this read only (units keep the server's own wait)
        tx.query_drop(format!(
            "SET @cdc_lock_wait = @@innodb_lock_wait_timeout, \
             SESSION innodb_lock_wait_timeout = {}",
            crate::progress::settle_wait_secs()
        ))
        .await
        .map_err(bad)?;
    }
    let read: std::result::Result<Vec<Row>, _> = tx
        .query(format!(
            "SELECT schema_name, table_name, partition_id, dispatcher, table_version, \
             date_dir, file_index, commit_ts FROM {db}.{PROGRESS_TABLE}{lock}"
        ))
        .await;
    if settled {
        tx.query_drop("SET SESSION innodb_lock_wait_timeout = @cdc_lock_wait")
            .await
            .map_err(bad)?;
    }
    let rows = read.map_err(|e| match e {
        mysql_async::Error::Server(s) if s.code == 1205 => downstream_error(
            PROGRESS_TABLE,
            "-",
            "progress",
            crate::progress::settle_wait_reason(),
        ),
        e => bad(e),
    })?;
    tx.commit().await.map_err(bad)?;
    let mut out = Vec::new();
    for (schema, table, partition, dispatcher, v, date, idx, ts) in rows {
        out.push((
            ProgressKey {
                schema,
                table,
                partition,
                dispatcher,
            },
            Position::from_columns(v, date, idx, ts)
                .map_err(|e| downstream_error(PROGRESS_TABLE, "-", "progress", e))?,
        ));
    }
    Ok(out)
}

/// Writes the unit's progress rows inside its transaction. True when a locking read found
/// the unit's own position stored: the unit was committed before and the caller rolls back.
pub(super) async fn write_progress(
    tx: &mut Transaction<'_>,
    progress_db: &str,
    tname: &str,
    unit: &Unit<'_>,
) -> Result<bool> {
    for (k, p) in unit.progress {
        let (v, idx, ts) = p
            .to_columns()
            .map_err(|e| downstream_error(tname, unit.file, "progress", e))?;
        // A locking read sees the newest commit: it waits for a late commit of this very
        // unit by a killed consumer (see the module doc) and finds its position stored.
        let stored: Option<(i64, String, i64, i64)> = tx
            .exec_first(
                format!(
                    "SELECT table_version, date_dir, file_index, commit_ts FROM \
                     {progress_db}.{PROGRESS_TABLE} WHERE schema_name = ? AND table_name = ? \
                     AND partition_id = ? AND dispatcher = ? FOR UPDATE"
                ),
                Params::Positional(vec![
                    k.schema.as_str().into(),
                    k.table.as_str().into(),
                    k.partition.as_str().into(),
                    k.dispatcher.as_str().into(),
                ]),
            )
            .await
            .map_err(|e| unit_error(tname, unit.file, "progress", e))?;
        if stored == Some((v, p.date.clone(), idx, ts)) {
            return Ok(true);
        }
        tx.exec_drop(
            format!(
                "INSERT INTO {progress_db}.{PROGRESS_TABLE} (schema_name, table_name, \
                 partition_id, dispatcher, table_version, date_dir, file_index, commit_ts) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE \
                 table_version = VALUES(table_version), date_dir = VALUES(date_dir), \
                 file_index = VALUES(file_index), commit_ts = VALUES(commit_ts)"
            ),
            Params::Positional(vec![
                k.schema.as_str().into(),
                k.table.as_str().into(),
                k.partition.as_str().into(),
                k.dispatcher.as_str().into(),
                v.into(),
                p.date.as_str().into(),
                idx.into(),
                ts.into(),
            ]),
        )
        .await
        .map_err(|e| unit_error(tname, unit.file, "progress", e))?;
    }
    Ok(false)
}

/// Records a quarantined data file inside the unit's transaction.
pub(super) async fn write_quarantine(
    tx: &mut Transaction<'_>,
    progress_db: &str,
    tname: &str,
    file: &str,
    q: &QuarantinedFile,
) -> Result<()> {
    let (v, idx, before, at) = q
        .to_columns()
        .map_err(|e| downstream_error(tname, file, "quarantine", e))?;
    let params: Vec<MyValue> = vec![
        q.key.schema.as_str().into(),
        q.key.table.as_str().into(),
        q.key.partition.as_str().into(),
        q.key.dispatcher.as_str().into(),
        v.into(),
        q.date.as_str().into(),
        idx.into(),
        q.path.as_str().into(),
        q.reason.as_str().into(),
        before.into(),
        at.into(),
    ];
    tx.exec_drop(
        format!(
            "INSERT INTO {progress_db}.{QUARANTINE_TABLE} (schema_name, table_name, \
             partition_id, dispatcher, table_version, date_dir, file_index, path, reason, \
             commit_ts_before, quarantined_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON DUPLICATE KEY UPDATE path = VALUES(path), reason = VALUES(reason), \
             commit_ts_before = VALUES(commit_ts_before), \
             quarantined_at_ms = VALUES(quarantined_at_ms)"
        ),
        Params::Positional(params),
    )
    .await
    .map_err(|e| unit_error(tname, file, "quarantine", e))?;
    Ok(())
}

/// Reads the quarantine record (see [`crate::backend::Downstream::load_quarantine`]); `db`
/// quoted, `db_name` as is.
pub(super) async fn load_quarantine(
    conn: &mut Conn,
    db: &str,
    db_name: &str,
    create: bool,
) -> Result<Vec<QuarantinedFile>> {
    let bad = |e: mysql_async::Error| downstream_error(QUARANTINE_TABLE, "-", "quarantine", e);
    if create {
        conn.query_drop(format!(
            "CREATE TABLE IF NOT EXISTS {db}.{QUARANTINE_TABLE} (
                    schema_name VARCHAR(255) NOT NULL, table_name VARCHAR(255) NOT NULL,
                    partition_id VARCHAR(20) NOT NULL, dispatcher VARCHAR(130) NOT NULL,
                    table_version BIGINT NOT NULL, date_dir VARCHAR(10) NOT NULL,
                    file_index BIGINT NOT NULL, path TEXT NOT NULL, reason TEXT NOT NULL,
                    commit_ts_before BIGINT NOT NULL, quarantined_at_ms BIGINT NOT NULL,
                    PRIMARY KEY (schema_name, table_name, partition_id, dispatcher,
                                 table_version, date_dir, file_index)
                 ) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin"
        ))
        .await
        .map_err(bad)?;
    } else {
        let n: Option<i64> = conn
            .exec_first(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                (db_name, QUARANTINE_TABLE),
            )
            .await
            .map_err(bad)?;
        if n.unwrap_or(0) == 0 {
            return Ok(Vec::new());
        }
    }
    type Row = (
        String,
        String,
        String,
        String,
        i64,
        String,
        i64,
        String,
        String,
        i64,
        i64,
    );
    let rows: Vec<Row> = conn
        .query(format!(
            "SELECT schema_name, table_name, partition_id, dispatcher, table_version, \
             date_dir, file_index, path, reason, commit_ts_before, quarantined_at_ms \
             FROM {db}.{QUARANTINE_TABLE} ORDER BY quarantined_at_ms, path"
        ))
        .await
        .map_err(bad)?;
    let mut out = Vec::new();
    for (schema, table, partition, dispatcher, v, date, idx, path, reason, before, at) in rows {
        let key = ProgressKey {
            schema,
            table,
            partition,
            dispatcher,
        };
        out.push(
            QuarantinedFile::from_columns(key, date, path, reason, (v, idx, before, at))
                .map_err(|e| downstream_error(QUARANTINE_TABLE, "-", "quarantine", e))?,
        );
    }
    Ok(out)
}

/// Stores a round record in `db` and keeps the newest `keep` (see [`crate::audit`]).
pub(super) async fn save_round(
    conn: &mut Conn,
    db: &str,
    rec: &RoundRecord,
    keep: u64,
) -> Result<()> {
    let bad = |e: mysql_async::Error| downstream_error(ROUNDS_TABLE, "-", "round record", e);
    create_rounds(conn, db).await?;
    conn.exec_drop(
        format!(
            "REPLACE INTO {db}.{ROUNDS_TABLE} (start_id, round, started_at_ms, ended_at_ms, \
             fatal, record) VALUES (?, ?, ?, ?, ?, ?)"
        ),
        (
            rec.start_id.as_str(),
            sql_int(rec.round),
            sql_int(rec.started_at_ms),
            sql_int(rec.ended_at_ms),
            rec.fatal.as_deref(),
            record_json(rec),
        ),
    )
    .await
    .map_err(bad)?;
    let cutoff: Option<i64> = conn
        .exec_first(
            format!(
                "SELECT ended_at_ms FROM {db}.{ROUNDS_TABLE} ORDER BY ended_at_ms DESC \
                 LIMIT 1 OFFSET ?"
            ),
            (sql_int(keep),),
        )
        .await
        .map_err(bad)?;
    if let Some(at) = cutoff {
        conn.exec_drop(
            format!("DELETE FROM {db}.{ROUNDS_TABLE} WHERE ended_at_ms <= ?"),
            (at,),
        )
        .await
        .map_err(bad)?;
    }
    Ok(())
}

/// The newest `limit` round records in `db`, oldest first.
pub(super) async fn load_rounds(
    conn: &mut Conn,
    db: &str,
    limit: usize,
) -> Result<Vec<RoundRecord>> {
    let bad = |e: mysql_async::Error| downstream_error(ROUNDS_TABLE, "-", "round record", e);
    create_rounds(conn, db).await?;
    let rows: Vec<String> = conn
        .exec(
            format!(
                "SELECT record FROM {db}.{ROUNDS_TABLE} \
                 ORDER BY ended_at_ms DESC, round DESC LIMIT ?"
            ),
            (sql_int(limit as u64),),
        )
        .await
        .map_err(bad)?;
    let mut out = Vec::new();
    for json in rows {
        out.push(parse_record(&json)?);
    }
    out.reverse();
    Ok(out)
}

/// Creates the rounds table in `db` when missing.
async fn create_rounds(conn: &mut Conn, db: &str) -> Result<()> {
    conn.query_drop(format!(
        "CREATE TABLE IF NOT EXISTS {db}.{ROUNDS_TABLE} (
                start_id VARCHAR(64) NOT NULL, round BIGINT NOT NULL,
                started_at_ms BIGINT NOT NULL, ended_at_ms BIGINT NOT NULL,
                fatal MEDIUMTEXT, record MEDIUMTEXT NOT NULL,
                PRIMARY KEY (start_id, round), KEY (ended_at_ms)
             ) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin"
    ))
    .await
    .map_err(|e| downstream_error(ROUNDS_TABLE, "-", "round record", e))
}
