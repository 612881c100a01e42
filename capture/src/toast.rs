//! Unchanged TOAST values: never written as NULL.
//!
//! When an UPDATE leaves a large (TOASTed, out-of-line) value untouched, pgoutput sends the
//! marker `'u'` instead of the value. The sink needs full row images, so each marker is
//! replaced before the row is handed in:
//!
//! 1. REPLICA IDENTITY FULL: the old row in the same message holds the value (PostgreSQL
//!    detoasts the old image for FULL) -> exact.
//! 2. Otherwise: the value is read from the source by the row's key, as of now. Any later
//!    change of that column is itself in the stream (and carries its value), so the replica
//!    converges to the source; an intermediate version between this update and the read may
//!    show the newer value early. If the row is gone (deleted later, which the stream also
//!    carries) the type's empty value stands in until that delete.
//!
//! Tables with large values updated in place should use REPLICA IDENTITY FULL for exact
//! intermediate images (docs/format.md says so).

use crate::catalog;
use crate::error::{CaptureError, Result};
use crate::pgoutput::{Datum, OldTuple};
use crate::relations::Rel;
use crate::types::PgType;
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

/// Replaces every [`Datum::UnchangedToast`] in `new`.
pub async fn resolve(
    client: &Client,
    rel: &Rel,
    new: &mut [Datum],
    old: Option<&OldTuple>,
) -> Result<()> {
    if !new.contains(&Datum::UnchangedToast) {
        return Ok(());
    }
    if let Some(OldTuple::Full(old)) = old {
        for (n, o) in new.iter_mut().zip(old) {
            if *n == Datum::UnchangedToast && *o != Datum::UnchangedToast {
                *n = o.clone();
            }
        }
    }
    let missing: Vec<usize> = (0..new.len())
        .filter(|&i| new[i] == Datum::UnchangedToast)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let current = read_current(client, rel, new, old, &missing).await?;
    for (n, i) in missing.into_iter().enumerate() {
        new[i] = match &current {
            Some(values) => values[n].clone(),
            None => Datum::Text(empty_text(rel.types[i]).into()),
        };
    }
    Ok(())
}

/// The columns' current values, by the row's key; `None` when the row is gone.
async fn read_current(
    client: &Client,
    rel: &Rel,
    new: &[Datum],
    old: Option<&OldTuple>,
    missing: &[usize],
) -> Result<Option<Vec<Datum>>> {
    let def = &rel.def;
    let keys = def.pk_indexes();
    if keys.is_empty() {
        return Err(CaptureError::NoReplicaIdentity {
            tables: format!(
                "{}.{} (an unchanged TOAST value cannot be looked up)",
                def.schema, def.table
            ),
        });
    }
    let key_names: Vec<String> = keys.iter().map(|&i| def.columns[i].name.clone()).collect();
    let types = catalog::column_sql_types(client, def.table_id as u32, &key_names).await?;
    let mut key_values: Vec<String> = Vec::with_capacity(keys.len());
    for &i in &keys {
        let from_old = old.map(|o| &o.values()[i]);
        let v = match (&new[i], from_old) {
            (Datum::Text(t), _) => t.clone(),
            (_, Some(Datum::Text(t))) => t.clone(),
            _ => {
                return Err(CaptureError::Protocol(format!(
                    "update of {}.{}: key column {} has no value",
                    def.schema, def.table, def.columns[i].name
                )))
            }
        };
        key_values.push(v);
    }
    let cols: Vec<String> = missing
        .iter()
        .map(|&i| format!("{}::text", ident(&def.columns[i].name)))
        .collect();
    let conds: Vec<String> = key_names
        .iter()
        .zip(&types)
        .enumerate()
        .map(|(n, (k, t))| format!("{} = ${}::text::{t}", ident(k), n + 1))
        .collect();
    let sql = format!(
        "SELECT {} FROM {}.{} WHERE {}",
        cols.join(", "),
        ident(&def.schema),
        ident(&def.table),
        conds.join(" AND ")
    );
    let params: Vec<&(dyn ToSql + Sync)> = key_values
        .iter()
        .map(|v| v as &(dyn ToSql + Sync))
        .collect();
    let row = client
        .query_opt(&sql, &params)
        .await
        .map_err(|e| CaptureError::pg("reading an unchanged TOAST value", e))?;
    Ok(match row {
        Some(r) => Some(
            (0..missing.len())
                .map(|i| match r.get::<_, Option<String>>(i) {
                    Some(t) => Datum::Text(t),
                    None => Datum::Null,
                })
                .collect(),
        ),
        None => {
            tracing::warn!(table = %def.name(), "row of an unchanged TOAST value is gone; an empty value stands in until its delete");
            None
        }
    })
}

fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The text of an empty value of a type (a stand-in, never NULL).
fn empty_text(ty: PgType) -> &'static str {
    match ty {
        PgType::Bytea => "\\x",
        PgType::Array(_) => "{}",
        PgType::Json => "null",
        _ => "",
    }
}
