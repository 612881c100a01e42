//! PostgreSQL's bookkeeping tables, in schema `public`: `cdc_consumer_progress` (one row per
//! stream, written in the transaction of the unit it covers, as a compare: see the backend's
//! module doc) and `cdc_consumer_quarantine` (one row per quarantined data file, created only
//! under policy `quarantine`): their DDL, their load, their write.

use super::apply::{prepared, Statements};
use super::create_table;
use super::error::PgError;
use crate::audit::{parse_record, record_json, sql_int, ROUNDS_ENDED_INDEX, ROUNDS_TABLE};
use crate::backend::{downstream_error, Unit};
use crate::error::Result;
use crate::freshness::RoundRecord;
use crate::progress::{Position, ProgressKey, PROGRESS_TABLE};
use crate::quarantine::{QuarantinedFile, QUARANTINE_TABLE};
use tokio_postgres::{Client, Transaction};

/// Creates the progress table when missing and reads it; with `settled`, under a `SHARE`
/// lock, which waits for every transaction that wrote progress rows and has not ended. A consumer
/// killed right after sending `COMMIT` leaves a server backend that still commits its unit;
/// a restart reading the record before that commit landed would apply the unit again, and a
/// unit of several files formed again after discovery saw more files would end at another
/// file than the late one, so the progress compare (see the backend's module doc) could not
/// tell it was applied. Waiting for the lock reads the record after the late commit. The lock
/// is held for the one read, and taken only when a consumer (not a group member) starts or
/// reopens its downstream. The wait is bounded ([`crate::progress::settle_wait_secs`]): a
/// session that stays inside a progress-writing transaction (a paused or cut-off consumer)
/// makes the read fail with an error that says so, rather than hang the start.
pub(super) async fn load_progress(
    client: &mut Client,
    settled: bool,
) -> Result<Vec<(ProgressKey, Position)>> {
    let bad =
        |e: tokio_postgres::Error| downstream_error(PROGRESS_TABLE, "-", "progress", PgError(&e));
    create_table::ensure(
        client,
        PROGRESS_TABLE,
        "schema_name TEXT NOT NULL, table_name TEXT NOT NULL,
         partition_id TEXT NOT NULL, dispatcher TEXT NOT NULL,
         table_version BIGINT NOT NULL, date_dir TEXT NOT NULL,
         file_index BIGINT NOT NULL, commit_ts BIGINT NOT NULL,
         PRIMARY KEY (schema_name, table_name, partition_id, dispatcher)",
    )
    .await
    .map_err(bad)?;
    let tx = client.transaction().await.map_err(bad)?;
    if settled {
        tx.batch_execute(&format!(
            "SET LOCAL lock_timeout = '{}s'; LOCK TABLE public.{PROGRESS_TABLE} IN SHARE MODE",
            crate::progress::settle_wait_secs()
        ))
        .await
        .map_err(|e| {
            if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) {
                settle_wait_error()
            } else {
                bad(e)
            }
        })?;
    }
    let rows = tx
        .query(
            &format!(
                "SELECT schema_name, table_name, partition_id, dispatcher, table_version, \
                 date_dir, file_index, commit_ts FROM public.{PROGRESS_TABLE}"
            ),
            &[],
        )
        .await
        .map_err(bad)?;
    tx.commit().await.map_err(bad)?;
    let mut out = Vec::new();
    for r in rows {
        out.push((
            ProgressKey {
                schema: r.try_get(0).map_err(bad)?,
                table: r.try_get(1).map_err(bad)?,
                partition: r.try_get(2).map_err(bad)?,
                dispatcher: r.try_get(3).map_err(bad)?,
            },
            Position::from_columns(
                r.try_get(4).map_err(bad)?,
                r.try_get(5).map_err(bad)?,
                r.try_get(6).map_err(bad)?,
                r.try_get(7).map_err(bad)?,
            )
            .map_err(|e| downstream_error(PROGRESS_TABLE, "-", "progress", e))?,
        ));
    }
    Ok(out)
}

/// Writes the unit's progress rows inside its transaction. True when every row already held
/// the unit's position: the unit was committed before and the caller rolls back. A unit of
/// many tables (tables created together) whose rows were only partly there is not such a
/// copy: a late commit of a differently cut unit covered some of its tables, so it commits
/// (its DDL is idempotent and the rows already there are written unchanged).
pub(super) async fn write_progress(
    tx: &Transaction<'_>,
    statements: &mut Statements,
    tname: &str,
    unit: &Unit<'_>,
) -> Result<bool> {
    let mut already_applied = !unit.progress.is_empty();
    for (k, p) in unit.progress {
        let (v, idx, ts) = p
            .to_columns()
            .map_err(|e| downstream_error(tname, unit.file, "progress", e))?;
        // Prepared once per connection: one round trip per unit instead of two.
        let st = prepared(
            statements,
            tx,
            &format!(
                "INSERT INTO public.{PROGRESS_TABLE} (schema_name, table_name, partition_id, \
                 dispatcher, table_version, date_dir, file_index, commit_ts) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (schema_name, table_name, partition_id, dispatcher) DO UPDATE SET \
                 table_version = EXCLUDED.table_version, date_dir = EXCLUDED.date_dir, \
                 file_index = EXCLUDED.file_index, commit_ts = EXCLUDED.commit_ts \
                 WHERE ({PROGRESS_TABLE}.table_version, {PROGRESS_TABLE}.date_dir, \
                 {PROGRESS_TABLE}.file_index, {PROGRESS_TABLE}.commit_ts) IS DISTINCT FROM \
                 (EXCLUDED.table_version, EXCLUDED.date_dir, EXCLUDED.file_index, \
                 EXCLUDED.commit_ts)"
            ),
            &[],
        )
        .await
        .map_err(|e| downstream_error(tname, unit.file, "progress", PgError(&e)))?;
        tx.execute(
            &st,
            &[
                &k.schema,
                &k.table,
                &k.partition,
                &k.dispatcher,
                &v,
                &p.date,
                &idx,
                &ts,
            ],
        )
        .await
        .map_err(|e| downstream_error(tname, unit.file, "progress", PgError(&e)))
        .map(|changed| already_applied &= changed == 0)?;
    }
    Ok(already_applied)
}

/// Records a quarantined data file inside the unit's transaction.
pub(super) async fn write_quarantine(
    tx: &Transaction<'_>,
    tname: &str,
    file: &str,
    q: &QuarantinedFile,
) -> Result<()> {
    let (v, idx, before, at) = q
        .to_columns()
        .map_err(|e| downstream_error(tname, file, "quarantine", e))?;
    tx.execute(
        &format!(
            "INSERT INTO public.{QUARANTINE_TABLE} (schema_name, table_name, \
             partition_id, dispatcher, table_version, date_dir, file_index, path, reason, \
             commit_ts_before, quarantined_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (schema_name, table_name, partition_id, dispatcher, \
             table_version, date_dir, file_index) DO UPDATE SET path = EXCLUDED.path, \
             reason = EXCLUDED.reason, commit_ts_before = EXCLUDED.commit_ts_before, \
             quarantined_at_ms = EXCLUDED.quarantined_at_ms"
        ),
        &[
            &q.key.schema,
            &q.key.table,
            &q.key.partition,
            &q.key.dispatcher,
            &v,
            &q.date,
            &idx,
            &q.path,
            &q.reason,
            &before,
            &at,
        ],
    )
    .await
    .map_err(|e| downstream_error(tname, file, "quarantine", PgError(&e)))?;
    Ok(())
}

/// Reads the quarantine record (see [`crate::backend::Downstream::load_quarantine`]).
pub(super) async fn load_quarantine(client: &Client, create: bool) -> Result<Vec<QuarantinedFile>> {
    let bad = |e: tokio_postgres::Error| {
        downstream_error(QUARANTINE_TABLE, "-", "quarantine", PgError(&e))
    };
    if create {
        create_table::ensure(
            client,
            QUARANTINE_TABLE,
            "schema_name TEXT NOT NULL, table_name TEXT NOT NULL,
             partition_id TEXT NOT NULL, dispatcher TEXT NOT NULL,
             table_version BIGINT NOT NULL, date_dir TEXT NOT NULL,
             file_index BIGINT NOT NULL, path TEXT NOT NULL, reason TEXT NOT NULL,
             commit_ts_before BIGINT NOT NULL, quarantined_at_ms BIGINT NOT NULL,
             PRIMARY KEY (schema_name, table_name, partition_id, dispatcher,
                          table_version, date_dir, file_index)",
        )
        .await
        .map_err(bad)?;
    } else {
        let r = client
            .query_one(
                &format!("SELECT to_regclass('public.{QUARANTINE_TABLE}') IS NOT NULL"),
                &[],
            )
            .await
            .map_err(bad)?;
        let exists: bool = r.try_get(0).map_err(bad)?;
        if !exists {
            return Ok(Vec::new());
        }
    }
    let rows = client
        .query(
            &format!(
                "SELECT schema_name, table_name, partition_id, dispatcher, table_version, \
                 date_dir, file_index, path, reason, commit_ts_before, quarantined_at_ms \
                 FROM public.{QUARANTINE_TABLE} ORDER BY quarantined_at_ms, path"
            ),
            &[],
        )
        .await
        .map_err(bad)?;
    let mut out = Vec::new();
    for r in rows {
        let key = ProgressKey {
            schema: r.try_get(0).map_err(bad)?,
            table: r.try_get(1).map_err(bad)?,
            partition: r.try_get(2).map_err(bad)?,
            dispatcher: r.try_get(3).map_err(bad)?,
        };
        let columns = (
            r.try_get(4).map_err(bad)?,
            r.try_get(6).map_err(bad)?,
            r.try_get(9).map_err(bad)?,
            r.try_get(10).map_err(bad)?,
        );
        let (date, path, reason) = (
            r.try_get(5).map_err(bad)?,
            r.try_get(7).map_err(bad)?,
            r.try_get(8).map_err(bad)?,
        );
        out.push(
            QuarantinedFile::from_columns(key, date, path, reason, columns)
                .map_err(|e| downstream_error(QUARANTINE_TABLE, "-", "quarantine", e))?,
        );
    }
    Ok(out)
}

/// Stores a round record and keeps the newest `keep` (see [`crate::audit`]).
pub(super) async fn save_round(
    client: &Client,
    index_refused: &mut bool,
    rec: &RoundRecord,
    keep: u64,
) -> Result<()> {
    let bad =
        |e: tokio_postgres::Error| downstream_error(ROUNDS_TABLE, "-", "round record", PgError(&e));
    create_rounds(client, index_refused).await?;
    client
        .execute(
            &format!(
                "INSERT INTO public.{ROUNDS_TABLE} (start_id, round, started_at_ms, ended_at_ms, \
                 fatal, record) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (start_id, round) \
                 DO UPDATE SET started_at_ms = excluded.started_at_ms, \
                 ended_at_ms = excluded.ended_at_ms, fatal = excluded.fatal, \
                 record = excluded.record"
            ),
            &[
                &rec.start_id,
                &sql_int(rec.round),
                &sql_int(rec.started_at_ms),
                &sql_int(rec.ended_at_ms),
                &rec.fatal,
                &record_json(rec),
            ],
        )
        .await
        .map_err(bad)?;
    let cutoff = client
        .query_opt(
            &format!(
                "SELECT ended_at_ms FROM public.{ROUNDS_TABLE} ORDER BY ended_at_ms DESC \
                 LIMIT 1 OFFSET $1"
            ),
            &[&sql_int(keep)],
        )
        .await
        .map_err(bad)?;
    if let Some(row) = cutoff {
        let at: i64 = row.try_get(0).map_err(bad)?;
        client
            .execute(
                &format!("DELETE FROM public.{ROUNDS_TABLE} WHERE ended_at_ms <= $1"),
                &[&at],
            )
            .await
            .map_err(bad)?;
    }
    Ok(())
}

/// The newest `limit` round records, oldest first.
pub(super) async fn load_rounds(
    client: &Client,
    index_refused: &mut bool,
    limit: usize,
) -> Result<Vec<RoundRecord>> {
    let bad =
        |e: tokio_postgres::Error| downstream_error(ROUNDS_TABLE, "-", "round record", PgError(&e));
    create_rounds(client, index_refused).await?;
    let rows = client
        .query(
            &format!(
                "SELECT record FROM public.{ROUNDS_TABLE} \
                 ORDER BY ended_at_ms DESC, round DESC LIMIT $1"
            ),
            &[&sql_int(limit as u64)],
        )
        .await
        .map_err(bad)?;
    let mut out = Vec::new();
    for r in rows {
        let json: String = r.try_get(0).map_err(bad)?;
        out.push(parse_record(&json)?);
    }
    out.reverse();
    Ok(out)
}

/// Creates the rounds table when missing, with its index on `ended_at_ms` unless this
/// connection's role was refused creating it (`index_refused`, see `create_table`).
async fn create_rounds(client: &Client, index_refused: &mut bool) -> Result<()> {
    create_table::ensure_indexed(
        client,
        ROUNDS_TABLE,
        "start_id TEXT NOT NULL, round BIGINT NOT NULL,
         started_at_ms BIGINT NOT NULL, ended_at_ms BIGINT NOT NULL,
         fatal TEXT, record TEXT NOT NULL,
         PRIMARY KEY (start_id, round)",
        &[(ROUNDS_ENDED_INDEX, "ended_at_ms")],
        index_refused,
    )
    .await
    .map_err(|e| downstream_error(ROUNDS_TABLE, "-", "round record", PgError(&e)))
}

/// The settled read waited [`crate::progress::settle_wait_secs`] for another session's
/// transaction on the progress record.
fn settle_wait_error() -> crate::error::Error {
    downstream_error(
        PROGRESS_TABLE,
        "-",
        "progress",
        crate::progress::settle_wait_reason(),
    )
}
