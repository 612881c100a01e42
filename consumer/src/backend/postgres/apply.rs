//! The PostgreSQL apply path: one transaction per [`Unit`] holding its DDL (transactional in
//! PostgreSQL), its rows (multi-row `INSERT ... ON CONFLICT (pk) DO UPDATE` upserts, `DELETE
//! ... WHERE (pk) IN`, a ctid-limited delete of one matching row for tables without a key, or
//! the COPY path of [`super::copy`]), its progress compare-and-write and its quarantine record.
//! Statements are prepared once per SQL text and cached on the connection.

use super::bookkeeping;
use super::copy::{copy_upsert, takes_copy_path, upserted_rows};
use super::dialect::Postgres;
use super::error::PgError;
use super::identifiers::check_identifiers;
use super::params::{param, param_type, placeholder, Param};
use super::upsert::{columns, on_conflict, pk_cols};
use crate::backend::dialect::Dialect;
use crate::backend::{downstream_error, warn_already_applied, Unit};
use crate::error::Result;
use crate::plan::{batches, Batch, RowOp};
use cdc_common::{TableDef, Value};
use std::collections::HashMap;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Statement, Transaction};

/// Prepared statements by SQL text.
pub(super) type Statements = HashMap<String, Statement>;

/// Applies one unit in one transaction (see the module doc and the backend's module doc for
/// the progress compare). A COPY straight into the table that finds an existing key aborts
/// the transaction (no savepoint: two round trips fewer per unit); the unit is then applied
/// again from the start with its upserts merged (see [`super::copy`]).
pub(super) async fn apply(
    client: &mut Client,
    statements: &mut Statements,
    batch_rows: usize,
    unit: Unit<'_>,
) -> Result<()> {
    match apply_once(client, statements, batch_rows, &unit, false).await? {
        Applied::Done => Ok(()),
        Applied::KeyExisted => {
            match apply_once(client, statements, batch_rows, &unit, true).await? {
                Applied::Done => Ok(()),
                // A merge never reports an existing key.
                Applied::KeyExisted => Ok(()),
            }
        }
    }
}

/// How one attempt at a unit ended.
enum Applied {
    Done,
    /// The straight COPY found an existing key: the transaction rolled back, nothing kept.
    KeyExisted,
}

/// One attempt at a unit; `merge` sends COPY upserts through the merge at once.
async fn apply_once(
    client: &mut Client,
    statements: &mut Statements,
    batch_rows: usize,
    unit: &Unit<'_>,
    merge: bool,
) -> Result<Applied> {
    check_identifiers(unit)?;
    let tname = unit.table.map(|t| t.name().to_string()).unwrap_or_default();
    let tx = client
        .transaction()
        .await
        .map_err(|e| downstream_error(&tname, unit.file, "begin", PgError(&e)))?;
    // A unit creating many tables of one schema (`replay/create_batch.rs`) sends its
    // `CREATE SCHEMA IF NOT EXISTS` once, not once per table (a round trip each); a DROP
    // SCHEMA in between makes the next create needed again.
    let mut schemas_made = std::collections::HashSet::new();
    for op in unit.ddl {
        for sql in Postgres.ddl(op) {
            if sql.starts_with("CREATE SCHEMA IF NOT EXISTS ") {
                if !schemas_made.insert(sql.clone()) {
                    continue;
                }
            } else if sql.starts_with("DROP SCHEMA ") {
                schemas_made.clear();
            }
            tx.batch_execute(&sql).await.map_err(|e| {
                downstream_error(
                    &op.target(),
                    unit.file,
                    &format!("ddl: {}", op.kind()),
                    PgError(&e),
                )
            })?;
        }
    }
    if let Some(def) = unit.table {
        // a reduced plan is its deletes, then its upserts: the upserts may take COPY
        let first_upsert = unit
            .rows
            .iter()
            .position(|r| !matches!(r, RowOp::Delete(_)))
            .unwrap_or(unit.rows.len());
        let (deletes, upserts) = unit.rows.split_at(first_upsert);
        if takes_copy_path(def, upserts) {
            run_batches(&tx, statements, def, unit.file, &tname, deletes, batch_rows).await?;
            let rows = upserted_rows(def, upserts);
            // A unit that deletes keys changes existing rows: its upserts most likely hit
            // existing keys too, so the straight COPY attempt would only fail first.
            let merge = merge || !deletes.is_empty();
            let copied = copy_upsert(&tx, statements, def, &rows, merge)
                .await
                .map_err(|e| downstream_error(&tname, unit.file, "copy upsert", PgError(&e)))?;
            if !copied {
                tx.rollback()
                    .await
                    .map_err(|e| downstream_error(&tname, unit.file, "rollback", PgError(&e)))?;
                return Ok(Applied::KeyExisted);
            }
        } else {
            run_batches(
                &tx, statements, def, unit.file, &tname, unit.rows, batch_rows,
            )
            .await?;
        }
    }
    if let Some(f) = unit.fence {
        // Last before the progress write: the lease row stays locked only until the commit.
        super::leases::check_fence(&tx, f, unit.file).await?;
    }
    if bookkeeping::write_progress(&tx, statements, &tname, unit).await? {
        // Committed before (see the module doc): keep that commit, drop this one.
        warn_already_applied(unit.file);
        tx.rollback()
            .await
            .map_err(|e| downstream_error(&tname, unit.file, "rollback", PgError(&e)))?;
        return Ok(Applied::Done);
    }
    if let Some(q) = unit.quarantine {
        bookkeeping::write_quarantine(&tx, &tname, unit.file, q).await?;
    }
    tx.commit()
        .await
        .map_err(|e| downstream_error(&tname, unit.file, "commit", PgError(&e)))?;
    Ok(Applied::Done)
}

/// Runs the row operations as batched, prepared statements.
async fn run_batches(
    tx: &Transaction<'_>,
    statements: &mut Statements,
    def: &TableDef,
    file: &str,
    tname: &str,
    rows: &[RowOp],
    batch_rows: usize,
) -> Result<()> {
    for b in batches(def, rows, batch_rows) {
        let (sql, cols) = statement(def, &b);
        let types: Vec<Type> = cols.iter().map(|c| param_type(def, *c)).collect();
        let st = prepared(statements, tx, &sql, &types)
            .await
            .map_err(|e| downstream_error(tname, file, b.kind(), PgError(&e)))?;
        let rows: Vec<&[Value]> = match &b {
            Batch::Upsert(r) | Batch::Insert(r) | Batch::Delete(r) => r.clone(),
            Batch::DeleteOne(r) => vec![*r],
        };
        let mut params: Vec<Param> = Vec::with_capacity(cols.len());
        let per_row = cols.len() / rows.len().max(1);
        for (i, c) in cols.iter().enumerate() {
            let row = rows[i / per_row.max(1)];
            params.push(param(def, *c, row.get(*c).unwrap_or(&Value::Null)));
        }
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        tx.execute(&st, &refs)
            .await
            .map_err(|e| downstream_error(tname, file, b.kind(), PgError(&e)))?;
    }
    Ok(())
}

/// SQL text and the column index of every parameter.
fn statement(def: &TableDef, b: &Batch<'_>) -> (String, Vec<usize>) {
    let t = Postgres.table(&def.name());
    let ncols = def.columns.len();
    let mut n = 0;
    let mut cols = Vec::new();
    let mut row = |idx: &[usize]| -> String {
        let p: Vec<String> = idx
            .iter()
            .map(|c| {
                n += 1;
                cols.push(*c);
                placeholder(def, *c, n)
            })
            .collect();
        format!("({})", p.join(", "))
    };
    let all: Vec<usize> = (0..ncols).collect();
    let pk = def.pk_indexes();
    match b {
        Batch::Upsert(rows) | Batch::Insert(rows) => {
            let values: Vec<String> = rows.iter().map(|_| row(&all)).collect();
            let mut s = format!(
                "INSERT INTO {t} ({}) VALUES {}",
                columns(def),
                values.join(", ")
            );
            if matches!(b, Batch::Upsert(_)) {
                s.push_str(&on_conflict(def));
            }
            (s, cols)
        }
        Batch::Delete(rows) => {
            let keys: Vec<String> = rows.iter().map(|_| row(&pk)).collect();
            let s = format!(
                "DELETE FROM {t} WHERE ({}) IN ({})",
                pk_cols(def).join(", "),
                keys.join(", ")
            );
            (s, cols)
        }
        Batch::DeleteOne(_) => {
            let cond: Vec<String> = all
                .iter()
                .map(|c| {
                    n += 1;
                    cols.push(*c);
                    format!(
                        "{} IS NOT DISTINCT FROM {}",
                        Postgres.quote(&def.columns[*c].name),
                        placeholder(def, *c, n)
                    )
                })
                .collect();
            let s = format!(
                "DELETE FROM {t} WHERE ctid = (SELECT ctid FROM {t} WHERE {} LIMIT 1)",
                cond.join(" AND ")
            );
            (s, cols)
        }
    }
}

pub(super) async fn prepared(
    statements: &mut Statements,
    tx: &Transaction<'_>,
    sql: &str,
    types: &[Type],
) -> std::result::Result<Statement, tokio_postgres::Error> {
    if let Some(s) = statements.get(sql) {
        return Ok(s.clone());
    }
    let s = tx.prepare_typed(sql, types).await?;
    if statements.len() >= 1024 {
        statements.clear();
    }
    statements.insert(sql.to_string(), s.clone());
    Ok(s)
}
