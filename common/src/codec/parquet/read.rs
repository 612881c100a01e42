//! One Parquet file back to rows. The file's schema must be the table version's schema
//! (checked before any column is read, so a typed reader never meets another physical type);
//! every parquet error and any value outside its column's range is [`crate::Error::Corrupt`]
//! naming the object, the row group and the column.

use super::schema::{self, Kind};
use super::values;
use crate::codec::DecodedRow;
use crate::error::{Error, Position, Result};
use crate::event::RowChange;
use crate::table::TableDef;
use crate::ts::Ts;
use crate::value::Value;
use bytes::Bytes;
use parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use parquet::data_type::DataType;
use parquet::file::reader::{FileReader, RowGroupReader};
use parquet::file::serialized_reader::SerializedFileReader;
use parquet::schema::types::SchemaDescriptor;

/// Reads every row of the file.
pub fn read_file(
    object: &str,
    bytes: &[u8],
    table: &TableDef,
    kinds: &[Kind],
    expected: &SchemaDescriptor,
) -> Result<Vec<DecodedRow>> {
    let corrupt = |reason: String| Error::corrupt(object, Position::None, reason);
    let reader = SerializedFileReader::new(Bytes::copy_from_slice(bytes))
        .map_err(|e| corrupt(format!("not a readable Parquet file: {e}")))?;
    let found = reader.metadata().file_metadata().schema_descr();
    if let Some(why) = schema::mismatch(expected, found) {
        return Err(corrupt(format!(
            "schema does not match the table version: {why}"
        )));
    }
    let n = table.columns.len();
    let mut rows = Vec::new();
    for g in 0..reader.num_row_groups() {
        let rg = reader
            .get_row_group(g)
            .map_err(|e| corrupt(format!("row group {g}: {e}")))?;
        let count = usize::try_from(rg.metadata().num_rows())
            .map_err(|_| corrupt(format!("row group {g}: negative row count")))?;
        let mut columns = Vec::with_capacity(2 + 2 * n);
        for (j, desc) in expected.columns().iter().enumerate() {
            let kind = match j {
                0 => Kind::Text,
                1 => Kind::I64 { signed: false },
                j => kinds[(j - 2) % n],
            };
            let optional = desc.max_def_level() > 0;
            let cells = read_column(rg.as_ref(), j, kind, optional, count)
                .map_err(|why| corrupt(format!("row group {g} column `{}`: {why}", desc.name())))?;
            columns.push(cells);
        }
        for i in 0..count {
            let row = assemble(&columns, n, i)
                .map_err(|why| corrupt(format!("row group {g} row {}: {why}", i + 1)))?;
            rows.push(row);
        }
    }
    Ok(rows)
}

/// The change of row `i` from the decoded columns.
fn assemble(columns: &[Vec<Value>], n: usize, i: usize) -> std::result::Result<DecodedRow, String> {
    let image =
        |from: usize| -> Vec<Value> { (from..from + n).map(|j| columns[j][i].clone()).collect() };
    let commit_ts = match &columns[1][i] {
        Value::UInt(t) => Ts(*t),
        _ => return Err("no commit ts".into()),
    };
    let current = image(2);
    let change = match &columns[0][i] {
        Value::String(op) if op == "I" => RowChange::Insert { after: current },
        Value::String(op) if op == "D" => RowChange::Delete { before: current },
        Value::String(op) if op == "U" => {
            let before = image(2 + n);
            // A before image of only NULLs is "not known" (a real one has its key).
            let before = (!before.iter().all(|v| *v == Value::Null)).then_some(before);
            RowChange::Update {
                before,
                after: current,
            }
        }
        other => return Err(format!("operation {other:?} is not I, U or D")),
    };
    Ok(DecodedRow {
        commit_ts: Some(commit_ts),
        change,
    })
}

/// Every value of column `j` in one row group, nulls as [`Value::Null`].
fn read_column(
    rg: &dyn RowGroupReader,
    j: usize,
    kind: Kind,
    optional: bool,
    count: usize,
) -> std::result::Result<Vec<Value>, String> {
    let reader = rg.get_column_reader(j).map_err(|e| e.to_string())?;
    let out = match (kind, reader) {
        (Kind::I32 { signed, .. }, ColumnReader::Int32ColumnReader(r)) => {
            spread(r, optional, count, |v: i32| {
                Ok(if signed {
                    Value::Int(v.into())
                } else {
                    Value::UInt(u64::from(v as u32))
                })
            })?
        }
        (Kind::Date, ColumnReader::Int32ColumnReader(r)) => {
            spread(r, optional, count, |v: i32| {
                values::date_from_days(v).map(|s| Value::String(s.into()))
            })?
        }
        (Kind::I64 { signed }, ColumnReader::Int64ColumnReader(r)) => {
            spread(r, optional, count, |v: i64| {
                Ok(if signed {
                    Value::Int(v)
                } else {
                    Value::UInt(v as u64)
                })
            })?
        }
        (Kind::Time { fsp }, ColumnReader::Int64ColumnReader(r)) => {
            spread(r, optional, count, |v| {
                values::time_from_micros(v, fsp).map(|s| Value::String(s.into()))
            })?
        }
        (Kind::Timestamp { fsp }, ColumnReader::Int64ColumnReader(r)) => {
            spread(r, optional, count, |v| {
                values::datetime_from_micros(v, fsp).map(|s| Value::String(s.into()))
            })?
        }
        (Kind::Float, ColumnReader::FloatColumnReader(r)) => {
            spread(r, optional, count, |v| Ok(Value::Float(v)))?
        }
        (Kind::Double, ColumnReader::DoubleColumnReader(r)) => {
            spread(r, optional, count, |v| Ok(Value::Double(v)))?
        }
        (Kind::Decimal { scale, len, .. }, ColumnReader::FixedLenByteArrayColumnReader(r)) => {
            spread(r, optional, count, |v| {
                if v.data().len() != len {
                    return Err(format!(
                        "decimal of {} bytes, expected {len}",
                        v.data().len()
                    ));
                }
                Ok(Value::Decimal(
                    values::decimal_from_bytes(v.data(), scale).into(),
                ))
            })?
        }
        (Kind::Text, ColumnReader::ByteArrayColumnReader(r)) => spread(r, optional, count, |v| {
            std::str::from_utf8(v.data())
                .map(|s| Value::String(s.into()))
                .map_err(|_| "text that is not UTF-8".to_string())
        })?,
        (Kind::Binary, ColumnReader::ByteArrayColumnReader(r)) => {
            spread(r, optional, count, |v| Ok(Value::Bytes(v.data().to_vec())))?
        }
        _ => return Err(format!("physical type does not match {kind:?}")),
    };
    Ok(out)
}

/// Reads `count` records of a flat column and places values at their rows (nulls between).
fn spread<T: DataType>(
    mut r: ColumnReaderImpl<T>,
    optional: bool,
    count: usize,
    convert: impl Fn(T::T) -> std::result::Result<Value, String>,
) -> std::result::Result<Vec<Value>, String> {
    let mut defs = Vec::with_capacity(count);
    let mut vals = Vec::with_capacity(count);
    let mut records = 0;
    while records < count {
        let (n, _, _) = r
            .read_records(
                count - records,
                optional.then_some(&mut defs),
                None,
                &mut vals,
            )
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("{records} of {count} rows present"));
        }
        records += n;
    }
    let mut vals = vals.into_iter();
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let present = !optional || defs.get(i).is_some_and(|d| *d > 0);
        if present {
            let v = vals
                .next()
                .ok_or_else(|| format!("fewer values than defined rows at row {}", i + 1))?;
            out.push(convert(v)?);
        } else {
            out.push(Value::Null);
        }
    }
    Ok(out)
}
