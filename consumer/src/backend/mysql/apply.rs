//! The MySQL/MariaDB apply path: a unit's DDL first (it autocommits; the statements are
//! idempotent), then one transaction holding its rows (multi-row `INSERT ... ON DUPLICATE KEY
//! UPDATE c = VALUES(c)` upserts, `DELETE ... WHERE (pk) IN (...)`, `DELETE ... WHERE c <=> ?
//! ... LIMIT 1` for tables without key; a unit's many upserts as one `LOAD DATA LOCAL INFILE`,
//! see [`super::load_data`]), its progress (after a locking read) and its quarantine record.
//! Every value of a statement is a bound parameter.

use super::bookkeeping;
use super::conflict::unit_error;
use super::dialect::Mysql;
use super::load_data::{load_upserts, takes_load_path, Infiles, Loaded};
use crate::backend::dialect::Dialect;
use crate::backend::{warn_already_applied, Unit};
use crate::error::Result;
use crate::plan::{batches, Batch, RowOp};
use cdc_common::{TableDef, Value};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Params, TxOpts, Value as MyValue};

/// What the bulk path needs: the driver's payload registry, and whether the server accepts
/// LOCAL INFILE (turned off at the first refusal).
pub(super) struct Bulk<'a> {
    pub infiles: &'a Infiles,
    pub enabled: &'a mut bool,
}

/// Applies one unit: DDL, then rows, progress and quarantine in one transaction (see the
/// module doc). A bulk load that warned is rolled back and the unit applied with statements.
pub(super) async fn apply(
    conn: &mut Conn,
    progress_db: &str,
    batch_rows: usize,
    unit: &Unit<'_>,
    bulk: Bulk<'_>,
) -> Result<()> {
    if *bulk.enabled {
        match apply_once(conn, progress_db, batch_rows, unit, Some(&bulk)).await? {
            Attempt::Done => return Ok(()),
            Attempt::Refused(why) => {
                tracing::warn!(reason = %why, "the server refuses LOAD DATA LOCAL INFILE; units are applied with statements from now on");
                *bulk.enabled = false;
            }
            Attempt::Failed(why) => tracing::warn!(
                file = unit.file,
                reason = %why,
                "LOAD DATA failed: the unit was rolled back and is applied with statements"
            ),
            Attempt::Warned(n) => tracing::warn!(
                file = unit.file,
                warnings = n,
                "LOAD DATA reported warnings (a value clipped or converted): the unit was rolled back and is applied with statements"
            ),
        }
    }
    match apply_once(conn, progress_db, batch_rows, unit, None).await? {
        Attempt::Done | Attempt::Refused(_) | Attempt::Warned(_) | Attempt::Failed(_) => Ok(()),
    }
}

/// How one attempt at a unit ended (the last two: rolled back, nothing kept).
enum Attempt {
    Done,
    Refused(String),
    Warned(u16),
    Failed(String),
}

/// One attempt; `bulk` lets many upserts take LOAD DATA.
async fn apply_once(
    conn: &mut Conn,
    progress_db: &str,
    batch_rows: usize,
    unit: &Unit<'_>,
    bulk: Option<&Bulk<'_>>,
) -> Result<Attempt> {
    let tname = unit.table.map(|t| t.name().to_string()).unwrap_or_default();
    // DDL autocommits: run it first, idempotently (see the module doc), and only while the
    // unit's lease is ours (checked again with the progress row; see `leases`).
    if let (Some(f), false) = (unit.fence, unit.ddl.is_empty()) {
        super::leases::check_fence(conn, progress_db, f, unit.file).await?;
    }
    for op in unit.ddl {
        for sql in Mysql.ddl(op) {
            conn.query_drop(sql).await.map_err(|e| {
                unit_error(&op.target(), unit.file, &format!("ddl: {}", op.kind()), e)
            })?;
        }
    }
    let mut tx = conn
        .start_transaction(TxOpts::default())
        .await
        .map_err(|e| unit_error(&tname, unit.file, "begin", e))?;
    if let Some(def) = unit.table {
        // A reduced plan is its deletes, then its upserts: the upserts may take LOAD DATA.
        let first_upsert = unit
            .rows
            .iter()
            .position(|r| !matches!(r, RowOp::Delete(_)))
            .unwrap_or(unit.rows.len());
        let (deletes, upserts) = unit.rows.split_at(first_upsert);
        let load = bulk.filter(|_| takes_load_path(def, upserts));
        let statements = if load.is_some() { deletes } else { unit.rows };
        for b in batches(def, statements, batch_rows) {
            let (sql, params) = statement(def, &b);
            tx.exec_drop(sql, Params::Positional(params))
                .await
                .map_err(|e| unit_error(&tname, unit.file, b.kind(), e))?;
        }
        if let Some(bulk) = load {
            let d = Mysql;
            let loaded = load_upserts(
                &mut tx,
                bulk.infiles,
                &d.table(&def.name()),
                |c| d.quote(c),
                def,
                upserts,
            )
            .await
            .map_err(|e| unit_error(&tname, unit.file, "load data", e))?;
            let undo = match loaded {
                Loaded::Clean => None,
                Loaded::Warned(n) => Some(Attempt::Warned(n)),
                Loaded::Refused(why) => Some(Attempt::Refused(why)),
                Loaded::Failed(why) => Some(Attempt::Failed(why)),
            };
            if let Some(a) = undo {
                tx.rollback()
                    .await
                    .map_err(|e| unit_error(&tname, unit.file, "rollback", e))?;
                return Ok(a);
            }
        }
    }
    if let Some(f) = unit.fence {
        // Last before the progress write: the lease row stays locked only until the commit.
        super::leases::check_fence(&mut tx, progress_db, f, unit.file).await?;
    }
    if bookkeeping::write_progress(&mut tx, progress_db, &tname, unit).await? {
        warn_already_applied(unit.file);
        tx.rollback()
            .await
            .map_err(|e| unit_error(&tname, unit.file, "rollback", e))?;
        return Ok(Attempt::Done);
    }
    if let Some(q) = unit.quarantine {
        bookkeeping::write_quarantine(&mut tx, progress_db, &tname, unit.file, q).await?;
    }
    tx.commit()
        .await
        .map_err(|e| unit_error(&tname, unit.file, "commit", e))?;
    Ok(Attempt::Done)
}

fn my_value(v: &Value) -> MyValue {
    match v {
        Value::Null => MyValue::NULL,
        Value::Int(i) => MyValue::Int(*i),
        Value::UInt(u) => MyValue::UInt(*u),
        Value::Float(f) => MyValue::Float(*f),
        Value::Double(d) => MyValue::Double(*d),
        Value::Decimal(s) | Value::String(s) => MyValue::Bytes(s.as_bytes().to_vec()),
        Value::Bytes(b) => MyValue::Bytes(b.clone()),
    }
}

/// The statement of one batch and its parameters.
fn statement(def: &TableDef, b: &Batch<'_>) -> (String, Vec<MyValue>) {
    let d = Mysql;
    let t = d.table(&def.name());
    let cols: Vec<String> = def.columns.iter().map(|c| d.quote(&c.name)).collect();
    let pk = def.pk_indexes();
    let one = |n: usize| format!("({})", vec!["?"; n].join(", "));
    match b {
        Batch::Upsert(rows) | Batch::Insert(rows) => {
            let mut s = format!(
                "INSERT INTO {t} ({}) VALUES {}",
                cols.join(", "),
                vec![one(cols.len()); rows.len()].join(", ")
            );
            if matches!(b, Batch::Upsert(_)) {
                let set: Vec<String> = def
                    .columns
                    .iter()
                    .filter(|c| !c.primary_key)
                    .map(|c| format!("{0} = VALUES({0})", d.quote(&c.name)))
                    .collect();
                let first_key = pk.first().and_then(|i| def.columns.get(*i));
                let set = if let (true, Some(k)) = (set.is_empty(), first_key) {
                    let k = d.quote(&k.name);
                    format!("{k} = {k}")
                } else {
                    set.join(", ")
                };
                s.push_str(&format!(" ON DUPLICATE KEY UPDATE {set}"));
            }
            let params = rows.iter().flat_map(|r| r.iter().map(my_value)).collect();
            (s, params)
        }
        Batch::Delete(rows) => {
            let key: Vec<String> = pk.iter().map(|i| d.quote(&def.columns[*i].name)).collect();
            let s = format!(
                "DELETE FROM {t} WHERE ({}) IN ({})",
                key.join(", "),
                vec![one(pk.len()); rows.len()].join(", ")
            );
            let params = rows
                .iter()
                .flat_map(|r| {
                    pk.iter()
                        .map(|i| my_value(r.get(*i).unwrap_or(&Value::Null)))
                })
                .collect();
            (s, params)
        }
        Batch::DeleteOne(r) => {
            let cond: Vec<String> = cols.iter().map(|c| format!("{c} <=> ?")).collect();
            let s = format!("DELETE FROM {t} WHERE {} LIMIT 1", cond.join(" AND "));
            (s, r.iter().map(my_value).collect())
        }
    }
}
