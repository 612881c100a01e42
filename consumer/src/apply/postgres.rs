//! PostgreSQL downstream (tokio-postgres, no TLS).
//!
//! - Upstream schemas are PostgreSQL schemas; types are mapped in [`crate::ddl::Postgres`].
//! - Every value is sent as text (binary columns as `bytea`) into a statement that casts each
//!   parameter to its column type (`$1::integer`), prepared once per SQL text (one text per
//!   table version, operation and batch size) and cached on the connection.
//! - Multi-row upserts are `INSERT ... VALUES (...), (...) ON CONFLICT (pk) DO UPDATE`; a data
//!   file of at least [`COPY_MIN_ROWS`] upserts (and nothing else) is first `COPY`ed straight
//!   into the table inside a savepoint (when none of its keys exists, an upsert is an insert);
//!   on a unique violation it rolls back to the savepoint and goes through `COPY` into a
//!   temporary table plus one `INSERT ... SELECT ... ON CONFLICT` (the rows of one key reduced
//!   to the last image first, as both paths require).
//! - The progress table is `public.cdc_consumer_progress`; rows, DDL and progress of a unit are
//!   one transaction (PostgreSQL DDL is transactional).
//! - The progress write is a compare: it changes a row only when the stored position differs
//!   from the unit's. A consumer killed right after sending `COMMIT` leaves a server backend
//!   that still commits; a restarted consumer may have read the progress before that commit
//!   landed and apply the same unit again. Its progress write then waits on the first one's row
//!   lock, finds the unit's own position stored, changes nothing, and the whole transaction is
//!   rolled back: the unit is applied exactly once (a table without a key would otherwise get
//!   its rows twice).
//! - A schema, table or column name longer than [`MAX_IDENTIFIER_BYTES`] is refused (an error
//!   naming the table) rather than silently truncated by PostgreSQL into another name.

use super::{batches, downstream_error, warn_already_applied, Batch, Downstream, RowOp, Unit};
use crate::ddl::{Dialect, Postgres};
use crate::error::{Error, Result};
use crate::progress::{Position, ProgressKey, PROGRESS_TABLE};
use crate::quarantine::{QuarantinedFile, QUARANTINE_TABLE};
use bytes::BytesMut;
use cdc_common::storage::redact_uri;
use cdc_common::{TableDef, TableName, Value};
use futures::SinkExt;
use std::collections::HashMap;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{Client, NoTls, Statement};

/// A driver error with the server's message: `tokio_postgres::Error` shows only `db error`
/// for a refused statement; the reason (`ERROR: null value in column ...`, its SQLSTATE and
/// detail) is in its source.
struct PgError<'a>(&'a tokio_postgres::Error);

impl std::fmt::Display for PgError<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_db_error() {
            Some(db) => {
                write!(
                    f,
                    "{}: {} (SQLSTATE {})",
                    db.severity(),
                    db.message(),
                    db.code().code()
                )?;
                if let Some(d) = db.detail() {
                    write!(f, "; {d}")?;
                }
                Ok(())
            }
            None => {
                write!(f, "{}", self.0)?;
                let mut src = std::error::Error::source(self.0);
                while let Some(e) = src {
                    write!(f, ": {e}")?;
                    src = e.source();
                }
                Ok(())
            }
        }
    }
}

/// Consecutive upserts from which COPY + merge replaces multi-row INSERT statements.
pub const COPY_MIN_ROWS: usize = 2048;
/// PostgreSQL's identifier length (NAMEDATALEN - 1 bytes). It truncates longer identifiers
/// silently, so two long names sharing their first 63 bytes would be one object: such names
/// are refused instead.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// The schema, table and column names of a definition, each with the table for errors.
fn def_names<'a>(d: &'a TableDef, names: &mut Vec<(&'a str, String)>) {
    let t = d.name().to_string();
    names.push((d.schema.as_str(), t.clone()));
    names.push((d.table.as_str(), t.clone()));
    for c in &d.columns {
        names.push((c.name.as_str(), t.clone()));
    }
}

/// Refuses a unit naming a schema, table or column PostgreSQL would truncate.
fn check_identifiers(unit: &Unit<'_>) -> Result<()> {
    use crate::ddl::DdlOp;
    let mut names: Vec<(&str, String)> = Vec::new();
    if let Some(d) = unit.table {
        def_names(d, &mut names);
    }
    for op in unit.ddl {
        let t = op.target();
        match op {
            DdlOp::CreateSchema(s) | DdlOp::DropSchema { schema: s, .. } => {
                names.push((s.as_str(), t))
            }
            DdlOp::CreateTable(d) => def_names(d, &mut names),
            DdlOp::DropTable(n) | DdlOp::TruncateTable(n) => {
                names.push((n.schema.as_str(), t.clone()));
                names.push((n.table.as_str(), t));
            }
            DdlOp::RenameTable { from, to } => {
                for n in [from, to] {
                    names.push((n.schema.as_str(), t.clone()));
                    names.push((n.table.as_str(), t.clone()));
                }
            }
            DdlOp::AddColumn { column, .. } | DdlOp::ModifyColumn { column, .. } => {
                names.push((column.name.as_str(), t))
            }
            DdlOp::DropColumn { column, .. } => names.push((column.as_str(), t)),
            DdlOp::RenameColumn { from, to, .. } => {
                names.push((from.as_str(), t.clone()));
                names.push((to.as_str(), t));
            }
        }
    }
    match names
        .into_iter()
        .find(|(n, _)| n.len() > MAX_IDENTIFIER_BYTES)
    {
        Some((n, table)) => Err(downstream_error(
            &table,
            unit.file,
            "identifier",
            format!(
                "`{}` is {} bytes, longer than PostgreSQL's {MAX_IDENTIFIER_BYTES}-byte \
                 identifiers (PostgreSQL would truncate it and could merge it with another name)",
                n.escape_debug(),
                n.len()
            ),
        )),
        None => Ok(()),
    }
}

/// The PostgreSQL downstream.
pub struct PostgresDownstream {
    client: Client,
    batch_rows: usize,
    statements: HashMap<String, Statement>,
}

/// One parameter: text, or bytes for `bytea` columns.
#[derive(Debug)]
enum Param {
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

impl ToSql for Param {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Param::Text(t) => t.to_sql(ty, out),
            Param::Bytes(b) => b.to_sql(ty, out),
        }
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TEXT || *ty == Type::BYTEA
    }
    to_sql_checked!();
}

/// Text form of a value as PostgreSQL's input functions read it.
fn text(v: &Value) -> Option<String> {
    Some(match v {
        Value::Null => return None,
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => float_text(f64::from(*f), f.to_string()),
        Value::Double(d) => float_text(*d, d.to_string()),
        Value::Decimal(s) | Value::String(s) => s.clone(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
    })
}

fn float_text(v: f64, shortest: String) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        shortest
    }
}

fn param(def: &TableDef, col: usize, v: &Value) -> Param {
    let binary = def.columns.get(col).is_some_and(|c| c.ty.is_binary());
    if binary {
        Param::Bytes(match v {
            Value::Null => None,
            Value::Bytes(b) => Some(b.clone()),
            other => text(other).map(String::into_bytes),
        })
    } else {
        Param::Text(text(v))
    }
}

fn param_type(def: &TableDef, col: usize) -> Type {
    if def.columns.get(col).is_some_and(|c| c.ty.is_binary()) {
        Type::BYTEA
    } else {
        Type::TEXT
    }
}

/// `$n::type` for column `col`.
fn placeholder(def: &TableDef, col: usize, n: usize) -> String {
    match def.columns.get(col) {
        Some(c) if c.ty.is_binary() => format!("${n}"),
        Some(c) => format!("${n}::{}", Postgres.column_type(c)),
        None => format!("${n}"),
    }
}

impl PostgresDownstream {
    /// Connects to `uri` (`postgres://user[:password]@host[:port]/db`).
    pub async fn connect(uri: &str, batch_rows: usize) -> Result<PostgresDownstream> {
        let (client, conn) =
            tokio_postgres::connect(uri, NoTls)
                .await
                .map_err(|e| Error::Connect {
                    uri: redact_uri(uri),
                    reason: PgError(&e).to_string(),
                })?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::error!(error = %e, "postgres connection closed");
            }
        });
        client
            .batch_execute("SET TIME ZONE 'UTC'")
            .await
            .map_err(|e| Error::Connect {
                uri: redact_uri(uri),
                reason: PgError(&e).to_string(),
            })?;
        Ok(PostgresDownstream {
            client,
            batch_rows,
            statements: HashMap::new(),
        })
    }

    fn columns(def: &TableDef) -> String {
        def.columns
            .iter()
            .map(|c| Postgres.quote(&c.name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn pk_cols(def: &TableDef) -> Vec<String> {
        def.columns
            .iter()
            .filter(|c| c.primary_key)
            .map(|c| Postgres.quote(&c.name))
            .collect()
    }

    fn on_conflict(def: &TableDef) -> String {
        let set: Vec<String> = def
            .columns
            .iter()
            .filter(|c| !c.primary_key)
            .map(|c| format!("{0} = EXCLUDED.{0}", Postgres.quote(&c.name)))
            .collect();
        let pk = Self::pk_cols(def).join(", ");
        if set.is_empty() {
            format!(" ON CONFLICT ({pk}) DO NOTHING")
        } else {
            format!(" ON CONFLICT ({pk}) DO UPDATE SET {}", set.join(", "))
        }
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
                    Self::columns(def),
                    values.join(", ")
                );
                if matches!(b, Batch::Upsert(_)) {
                    s.push_str(&Self::on_conflict(def));
                }
                (s, cols)
            }
            Batch::Delete(rows) => {
                let keys: Vec<String> = rows.iter().map(|_| row(&pk)).collect();
                let s = format!(
                    "DELETE FROM {t} WHERE ({}) IN ({})",
                    Self::pk_cols(def).join(", "),
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

    async fn prepared(
        statements: &mut HashMap<String, Statement>,
        tx: &tokio_postgres::Transaction<'_>,
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

    /// COPY `rows` into `table` (any table with the definition's columns).
    async fn copy_rows(
        tx: &tokio_postgres::Transaction<'_>,
        def: &TableDef,
        table: &str,
        rows: &[&[Value]],
    ) -> std::result::Result<(), tokio_postgres::Error> {
        let cols = Self::columns(def);
        let sink = tx
            .copy_in(&format!("COPY {table} ({cols}) FROM STDIN"))
            .await?;
        futures::pin_mut!(sink);
        let mut buf = BytesMut::with_capacity(64 * 1024);
        for r in rows {
            for (i, v) in r.iter().enumerate() {
                if i > 0 {
                    buf.extend_from_slice(b"\t");
                }
                copy_field(&mut buf, def, i, v);
            }
            buf.extend_from_slice(b"\n");
            if buf.len() >= 60 * 1024 {
                sink.send(buf.split().freeze()).await?;
            }
        }
        if !buf.is_empty() {
            sink.send(buf.split().freeze()).await?;
        }
        sink.finish().await?;
        Ok(())
    }

    /// Upserts many rows (keys distinct): first optimistically `COPY` straight into the table
    /// inside a savepoint (when no key exists yet, an upsert *is* an insert); on a unique
    /// violation, roll back to the savepoint, `COPY` into a temporary table and merge with one
    /// `INSERT ... SELECT ... ON CONFLICT DO UPDATE`.
    async fn copy_upsert(
        tx: &tokio_postgres::Transaction<'_>,
        def: &TableDef,
        rows: &[&[Value]],
    ) -> std::result::Result<(), tokio_postgres::Error> {
        let t = Postgres.table(&def.name());
        tx.batch_execute("SAVEPOINT cdc_consumer_copy").await?;
        match Self::copy_rows(tx, def, &t, rows).await {
            Ok(()) => {
                tx.batch_execute("RELEASE SAVEPOINT cdc_consumer_copy")
                    .await?;
                return Ok(());
            }
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                tx.batch_execute("ROLLBACK TO SAVEPOINT cdc_consumer_copy")
                    .await?;
            }
            Err(e) => return Err(e),
        }
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS cdc_consumer_stage (LIKE {t} INCLUDING DEFAULTS) ON COMMIT DROP; \
             TRUNCATE cdc_consumer_stage"
        ))
        .await?;
        Self::copy_rows(tx, def, "cdc_consumer_stage", rows).await?;
        let cols = Self::columns(def);
        tx.batch_execute(&format!(
            "INSERT INTO {t} ({cols}) SELECT {cols} FROM cdc_consumer_stage{}; DROP TABLE cdc_consumer_stage",
            Self::on_conflict(def)
        ))
        .await?;
        Ok(())
    }
}

/// One field in COPY's text format (`\N` for NULL; backslash, tab, newline, CR escaped;
/// bytea as `\\x<hex>`).
fn copy_field(buf: &mut BytesMut, def: &TableDef, col: usize, v: &Value) {
    let binary = def.columns.get(col).is_some_and(|c| c.ty.is_binary());
    match v {
        Value::Null => buf.extend_from_slice(b"\\N"),
        Value::Bytes(b) if binary => {
            buf.extend_from_slice(b"\\\\x");
            for x in b {
                buf.extend_from_slice(format!("{x:02x}").as_bytes());
            }
        }
        other => {
            let s = text(other).unwrap_or_default();
            for ch in s.bytes() {
                match ch {
                    b'\\' => buf.extend_from_slice(b"\\\\"),
                    b'\t' => buf.extend_from_slice(b"\\t"),
                    b'\n' => buf.extend_from_slice(b"\\n"),
                    b'\r' => buf.extend_from_slice(b"\\r"),
                    c => buf.extend_from_slice(&[c]),
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl Downstream for PostgresDownstream {
    async fn load_progress(&mut self) -> Result<Vec<(ProgressKey, Position)>> {
        let bad = |e: tokio_postgres::Error| {
            downstream_error(PROGRESS_TABLE, "-", "progress", PgError(&e))
        };
        self.client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS public.{PROGRESS_TABLE} (
                    schema_name TEXT NOT NULL, table_name TEXT NOT NULL,
                    partition_id TEXT NOT NULL, dispatcher TEXT NOT NULL,
                    table_version BIGINT NOT NULL, date_dir TEXT NOT NULL,
                    file_index BIGINT NOT NULL, commit_ts BIGINT NOT NULL,
                    PRIMARY KEY (schema_name, table_name, partition_id, dispatcher))"
            ))
            .await
            .map_err(bad)?;
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT schema_name, table_name, partition_id, dispatcher, table_version, \
                     date_dir, file_index, commit_ts FROM public.{PROGRESS_TABLE}"
                ),
                &[],
            )
            .await
            .map_err(bad)?;
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

    async fn table_exists(&mut self, name: &TableName) -> Result<bool> {
        let r = self
            .client
            .query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2",
                &[&name.schema, &name.table],
            )
            .await
            .map_err(|e| downstream_error(&name.to_string(), "-", "table lookup", PgError(&e)))?;
        let n: i64 = r
            .try_get(0)
            .map_err(|e| downstream_error(&name.to_string(), "-", "table lookup", PgError(&e)))?;
        Ok(n > 0)
    }

    async fn apply(&mut self, unit: Unit<'_>) -> Result<()> {
        check_identifiers(&unit)?;
        let tname = unit.table.map(|t| t.name().to_string()).unwrap_or_default();
        let batch_rows = self.batch_rows;
        let statements = &mut self.statements;
        let tx = self
            .client
            .transaction()
            .await
            .map_err(|e| downstream_error(&tname, unit.file, "begin", PgError(&e)))?;
        for op in unit.ddl {
            for sql in Postgres.ddl(op) {
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
            let upserts = unit
                .rows
                .iter()
                .filter(|r| matches!(r, RowOp::Upsert(_)))
                .count();
            let all_upserts = upserts == unit.rows.len();
            if all_upserts && upserts >= COPY_MIN_ROWS && !def.pk_indexes().is_empty() {
                // One key may appear several times: keep its last image.
                let mut last: HashMap<super::KeyRef<'_>, usize> = HashMap::new();
                let pk = def.pk_indexes();
                let rows: Vec<&[Value]> = unit
                    .rows
                    .iter()
                    .filter_map(|r| match r {
                        RowOp::Upsert(v) => Some(v.as_slice()),
                        _ => None,
                    })
                    .collect();
                for (i, r) in rows.iter().enumerate() {
                    last.insert(super::key_of(&pk, r), i);
                }
                let mut keep: Vec<usize> = last.into_values().collect();
                keep.sort_unstable();
                let rows: Vec<&[Value]> = keep.into_iter().map(|i| rows[i]).collect();
                Self::copy_upsert(&tx, def, &rows)
                    .await
                    .map_err(|e| downstream_error(&tname, unit.file, "copy upsert", PgError(&e)))?;
            } else {
                for b in batches(def, unit.rows, batch_rows) {
                    let (sql, cols) = Self::statement(def, &b);
                    let types: Vec<Type> = cols.iter().map(|c| param_type(def, *c)).collect();
                    let st = Self::prepared(statements, &tx, &sql, &types)
                        .await
                        .map_err(|e| downstream_error(&tname, unit.file, b.kind(), PgError(&e)))?;
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
                        .map_err(|e| downstream_error(&tname, unit.file, b.kind(), PgError(&e)))?;
                }
            }
        }
        let mut already_applied = false;
        for (k, p) in unit.progress {
            let (v, idx, ts) = p
                .to_columns()
                .map_err(|e| downstream_error(&tname, unit.file, "progress", e))?;
            tx.execute(
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
            .map_err(|e| downstream_error(&tname, unit.file, "progress", PgError(&e)))
            .map(|changed| already_applied |= changed == 0)?;
        }
        if already_applied {
            // Committed before (see the module doc): keep that commit, drop this one.
            warn_already_applied(unit.file);
            tx.rollback()
                .await
                .map_err(|e| downstream_error(&tname, unit.file, "rollback", PgError(&e)))?;
            return Ok(());
        }
        if let Some(q) = unit.quarantine {
            let (v, idx, before, at) = q
                .to_columns()
                .map_err(|e| downstream_error(&tname, unit.file, "quarantine", e))?;
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
            .map_err(|e| downstream_error(&tname, unit.file, "quarantine", PgError(&e)))?;
        }
        tx.commit()
            .await
            .map_err(|e| downstream_error(&tname, unit.file, "commit", PgError(&e)))?;
        Ok(())
    }

    async fn load_quarantine(&mut self, create: bool) -> Result<Vec<QuarantinedFile>> {
        let bad = |e: tokio_postgres::Error| {
            downstream_error(QUARANTINE_TABLE, "-", "quarantine", PgError(&e))
        };
        if create {
            self.client
                .batch_execute(&format!(
                    "CREATE TABLE IF NOT EXISTS public.{QUARANTINE_TABLE} (
                        schema_name TEXT NOT NULL, table_name TEXT NOT NULL,
                        partition_id TEXT NOT NULL, dispatcher TEXT NOT NULL,
                        table_version BIGINT NOT NULL, date_dir TEXT NOT NULL,
                        file_index BIGINT NOT NULL, path TEXT NOT NULL, reason TEXT NOT NULL,
                        commit_ts_before BIGINT NOT NULL, quarantined_at_ms BIGINT NOT NULL,
                        PRIMARY KEY (schema_name, table_name, partition_id, dispatcher,
                                     table_version, date_dir, file_index))"
                ))
                .await
                .map_err(bad)?;
        } else {
            let r = self
                .client
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
        let rows = self
            .client
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
}
