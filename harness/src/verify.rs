//! `verify`: compares a downstream database with the workload's model.
//!
//! Every column is read back as canonical text through the downstream backend's read-back
//! (`cdc_consumer::backend`: binary as hex, PostgreSQL via `::text`, MySQL floats through
//! DOUBLE; one reader per database, shared with the consumer), then compared with the model's
//! value by type: integers and text exactly, DECIMAL as a normalized number, FLOAT and
//! DOUBLE numerically, JSON as parsed documents. The table set and each table's column names
//! must match too. The result is a list of differences (empty when equal).

use crate::workload::{Model, ModelTable};
use anyhow::{bail, Context, Result};
use cdc_common::{ColumnDef, ColumnType, TableName, Value};
use cdc_consumer::backend::{self, Access, Downstream};
use cdc_consumer::config::DownstreamUri;

/// Most differences listed before the rest are only counted.
pub const MAX_DIFFS: usize = 20;

/// Compares the downstream at `uri` with `model`; returns the differences (empty when equal).
pub async fn verify(uri: &str, schema: &str, model: &Model) -> Result<Vec<String>> {
    verify_observed(uri, schema, model, &|_| {}).await
}

/// [`verify`], calling `on_table(n)` after each of the model's tables is compared (`n` of
/// `model.tables.len()`), for a progress bar.
pub async fn verify_observed(
    uri: &str,
    schema: &str,
    model: &Model,
    on_table: &(dyn Fn(u64) + Sync),
) -> Result<Vec<String>> {
    let mut diffs = Vec::new();
    let mut conn = open(uri).await?;
    let actual_tables = conn.read_tables(schema).await?;
    let expected: Vec<String> = model.tables.keys().map(|n| n.table.clone()).collect();
    for t in &actual_tables {
        if !expected.contains(t) {
            diffs.push(format!(
                "table `{schema}.{t}` exists downstream but not in the model"
            ));
        }
    }
    for (done, (name, table)) in (1u64..).zip(&model.tables) {
        if !actual_tables.contains(&name.table) {
            diffs.push(format!("table `{name}` is missing downstream"));
            on_table(done);
            continue;
        }
        compare_table(&mut conn, name, table, &mut diffs).await?;
        on_table(done);
        if diffs.len() > MAX_DIFFS * 4 {
            break;
        }
    }
    Ok(diffs)
}

async fn compare_table(
    conn: &mut Box<dyn Downstream>,
    name: &TableName,
    t: &ModelTable,
    diffs: &mut Vec<String>,
) -> Result<()> {
    let cols = conn.read_columns(name).await?;
    let expected: Vec<String> = t.def.columns.iter().map(|c| c.name.clone()).collect();
    if cols != expected {
        diffs.push(format!(
            "table `{name}`: columns {cols:?}, expected {expected:?}"
        ));
        return Ok(());
    }
    let rows = conn.read_rows(name, &t.def.columns).await?;
    if rows.len() != t.rows.len() {
        diffs.push(format!(
            "table `{name}`: {} rows downstream, {} in the model",
            rows.len(),
            t.rows.len()
        ));
    }
    let mut actual = rows.iter().peekable();
    for (key, expected_row) in &t.rows {
        // Skip downstream rows whose key is not in the model (extra rows).
        while let Some(r) = actual.peek() {
            let k: Option<i64> = r[0].as_deref().and_then(|s| s.parse().ok());
            if k.is_some_and(|k| k < *key) {
                diffs.push(format!(
                    "table `{name}`: extra row id={}",
                    k.unwrap_or_default()
                ));
                actual.next();
            } else {
                break;
            }
        }
        let Some(row) = actual.peek() else {
            diffs.push(format!("table `{name}`: missing row id={key}"));
            continue;
        };
        if row[0].as_deref() != Some(key.to_string().as_str()) {
            diffs.push(format!("table `{name}`: missing row id={key}"));
            continue;
        }
        for ((col, exp), act) in t.def.columns.iter().zip(expected_row).zip(row.iter()) {
            if !same(col, exp, act.as_deref()) {
                diffs.push(format!(
                    "table `{name}` id={key} column `{}`: downstream {act:?}, model {exp:?}",
                    col.name
                ));
            }
        }
        actual.next();
        if diffs.len() > MAX_DIFFS * 4 {
            return Ok(());
        }
    }
    for r in actual {
        diffs.push(format!("table `{name}`: extra row id={:?}", r[0]));
    }
    Ok(())
}

/// True when the downstream text `act` is the model value `exp` of column `col`.
fn same(col: &ColumnDef, exp: &Value, act: Option<&str>) -> bool {
    let Some(act) = act else { return exp.is_null() };
    match exp {
        Value::Null => false,
        Value::Int(i) => act == i.to_string(),
        Value::UInt(u) => act == u.to_string(),
        Value::Float(f) => act.parse::<f64>().is_ok_and(|a| (a as f32) == *f),
        Value::Double(d) => act
            .parse::<f64>()
            .is_ok_and(|a| a == *d || ((a - d) / d).abs() < 1e-12),
        Value::Decimal(d) => normalize_decimal(act) == normalize_decimal(d),
        Value::Bytes(b) => act.eq_ignore_ascii_case(&hex(b)),
        Value::String(s) if col.ty == ColumnType::Json => {
            let parse = |t: &str| serde_json::from_str::<serde_json::Value>(t).ok();
            parse(act).is_some() && parse(act) == parse(s)
        }
        Value::String(s) => act == s,
    }
}

fn normalize_decimal(s: &str) -> String {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let body = match (int.is_empty(), frac.is_empty()) {
        (true, true) => return "0".into(),
        (true, false) => format!("0.{frac}"),
        (false, true) => int.to_string(),
        (false, false) => format!("{int}.{frac}"),
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Opens the downstream at `uri` for its read-back (SQLite read-only).
async fn open(uri: &str) -> Result<Box<dyn Downstream>> {
    let redacted = cdc_common::storage::redact_uri(uri);
    let unsupported =
        || format!("unsupported downstream `{redacted}` (sqlite://, postgres:// or mysql://)");
    let parsed = match DownstreamUri::parse(uri, None) {
        Ok(DownstreamUri::Stdout(_)) | Err(_) => bail!(unsupported()),
        Ok(parsed) => parsed,
    };
    backend::open(&parsed, 1, Access::ReadBack)
        .await
        .with_context(|| format!("opening {redacted}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_normalize() {
        assert_eq!(normalize_decimal("0012.500"), "12.5");
        assert_eq!(normalize_decimal("-0.000"), "0");
        assert_eq!(normalize_decimal("-1.230"), "-1.23");
        assert_eq!(normalize_decimal("100"), "100");
    }

    #[test]
    fn values_compare_by_type() {
        let j = ColumnDef::new("j", ColumnType::Json);
        assert!(same(
            &j,
            &Value::String("{\"k\":1,\"s\":\"x\"}".into()),
            Some("{\"s\": \"x\", \"k\": 1}")
        ));
        let f = ColumnDef::new("f", ColumnType::Float);
        assert!(same(&f, &Value::Float(-2.25), Some("-2.25")));
        assert!(!same(&f, &Value::Float(-2.25), Some("-2.5")));
        let b = ColumnDef::new("b", ColumnType::Blob);
        assert!(same(&b, &Value::Bytes(vec![0, 255]), Some("00FF")));
        let i = ColumnDef::new("i", ColumnType::Int);
        assert!(same(&i, &Value::Null, None));
        assert!(!same(&i, &Value::Int(1), None));
        assert!(!same(&i, &Value::Null, Some("0")));
    }
}
