//! Rows to one Parquet file: row groups of at most [`ROW_GROUP_ROWS`] rows, each column
//! written with its definition levels (nullable columns) in schema order.

use super::schema::Kind;
use super::values;
use crate::codec::{encode_error, DecodedRow};
use crate::error::Result;
use crate::event::RowChange;
use crate::table::TableDef;
use crate::value::Value;
use parquet::basic::{Compression as PageCompression, ZstdLevel};
use parquet::column::writer::ColumnWriter;
use parquet::data_type::{ByteArray, FixedLenByteArray};
use parquet::file::properties::{WriterProperties, WriterVersion};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::TypePtr;
use std::sync::Arc;

/// Rows per row group: a 64 MiB file (the default `file-size`) of typical rows fits in a few
/// groups, so readers can skip by statistics without each group being tiny.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;
/// Data page size: parquet's default 1 MiB keeps pages well under a row group.
pub const DATA_PAGE_BYTES: usize = 1024 * 1024;

/// One column's source: which image and which table column (or a change column).
#[derive(Clone, Copy)]
enum Source {
    Op,
    CommitTs,
    /// The row's image (after for inserts and updates, before for deletes).
    Current(usize),
    /// The old image of an update.
    Before(usize),
}

/// One Parquet file being written into `W`: row groups go out as they are written, so only
/// the group being built is held (plus the footer's metadata).
pub struct FileWriter<'t, W: std::io::Write + Send> {
    object: &'t str,
    table: &'t TableDef,
    kinds: &'t [Kind],
    sources: Vec<Source>,
    w: SerializedFileWriter<W>,
}

impl<'t, W: std::io::Write + Send> FileWriter<'t, W> {
    /// Starts a file of `schema` (writes the leading magic into `out`).
    pub fn new(
        object: &'t str,
        table: &'t TableDef,
        kinds: &'t [Kind],
        schema: TypePtr,
        compression: crate::options::ParquetCompression,
        out: W,
    ) -> Result<Self> {
        let page_compression = match compression {
            crate::options::ParquetCompression::Snappy => PageCompression::SNAPPY,
            crate::options::ParquetCompression::Zstd => {
                PageCompression::ZSTD(ZstdLevel::try_new(3).map_err(|e| parquet_error(object, e))?)
            }
            crate::options::ParquetCompression::None => PageCompression::UNCOMPRESSED,
        };
        let props = WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_1_0)
            .set_compression(page_compression)
            .set_data_page_size_limit(DATA_PAGE_BYTES)
            .set_created_by(format!("cdc-storage {}", env!("CARGO_PKG_VERSION")))
            .build();
        let n = table.columns.len();
        let mut sources = vec![Source::Op, Source::CommitTs];
        sources.extend((0..n).map(Source::Current));
        sources.extend((0..n).map(Source::Before));
        let w = SerializedFileWriter::new(out, schema, Arc::new(props))
            .map_err(|e| parquet_error(object, e))?;
        Ok(FileWriter {
            object,
            table,
            kinds,
            sources,
            w,
        })
    }

    /// Writes `rows` as row groups of at most [`ROW_GROUP_ROWS`] rows.
    pub fn write_rows(&mut self, rows: &[DecodedRow]) -> Result<()> {
        let fail = |e| parquet_error(self.object, e);
        for group in rows.chunks(ROW_GROUP_ROWS) {
            let mut rg = self.w.next_row_group().map_err(fail)?;
            for src in &self.sources {
                let Some(mut col) = rg.next_column().map_err(fail)? else {
                    break;
                };
                write_column(self.table, self.kinds, *src, group, col.untyped())?;
                col.close().map_err(fail)?;
            }
            rg.close().map_err(fail)?;
        }
        Ok(())
    }

    /// Writes whole row groups from the front of `rows` (each of [`ROW_GROUP_ROWS`] rows) and
    /// keeps the rest in `rows` for a later call.
    pub fn write_full_groups(&mut self, rows: &mut Vec<DecodedRow>) -> Result<()> {
        let full = rows.len() / ROW_GROUP_ROWS * ROW_GROUP_ROWS;
        if full > 0 {
            self.write_rows(&rows[..full])?;
            rows.drain(..full);
        }
        Ok(())
    }

    /// Writes the footer and returns the destination.
    pub fn finish(self) -> Result<W> {
        let object = self.object;
        self.w.into_inner().map_err(|e| parquet_error(object, e))
    }
}

fn parquet_error(object: &str, e: parquet::errors::ParquetError) -> crate::Error {
    crate::Error::Encode {
        what: format!("parquet file `{object}`"),
        reason: e.to_string(),
    }
}

/// The value a row gives a column (`None`: the image does not exist, e.g. `before` of an insert).
fn cell(row: &DecodedRow, src: Source) -> Option<Value> {
    let (current, before) = match &row.change {
        RowChange::Insert { after } => (after, None),
        RowChange::Update { before, after } => (after, before.as_ref()),
        RowChange::Delete { before } => (before, None),
    };
    match src {
        Source::Op => Some(Value::String(
            match &row.change {
                RowChange::Insert { .. } => "I",
                RowChange::Update { .. } => "U",
                RowChange::Delete { .. } => "D",
            }
            .into(),
        )),
        Source::CommitTs => Some(Value::UInt(row.commit_ts.map_or(0, |t| t.0))),
        Source::Current(i) => current.get(i).cloned(),
        Source::Before(i) => before.and_then(|b| b.get(i).cloned()),
    }
}

fn write_column(
    table: &TableDef,
    kinds: &[Kind],
    src: Source,
    rows: &[DecodedRow],
    col: &mut ColumnWriter<'_>,
) -> Result<()> {
    let (kind, column, optional) = match src {
        Source::Op => (Kind::Text, None, false),
        Source::CommitTs => (Kind::I64 { signed: false }, None, false),
        Source::Current(i) => (kinds[i], Some(&table.columns[i]), table.columns[i].nullable),
        Source::Before(i) => (kinds[i], Some(&table.columns[i]), true),
    };
    let err = |reason: String| encode_error(table, column, reason);
    let mut defs: Vec<i16> = Vec::with_capacity(rows.len());
    let mut present = Vec::with_capacity(rows.len());
    for r in rows {
        match cell(r, src) {
            None | Some(Value::Null) if optional => defs.push(0),
            None | Some(Value::Null) => {
                return Err(err("NULL in a NOT NULL column".into()));
            }
            Some(v) => {
                defs.push(1);
                present.push(v);
            }
        }
    }
    let defs = optional.then_some(&defs[..]);
    let bad = |v: &Value| {
        err(format!(
            "a {kind:?} column cannot take a {} value",
            v.variant_name()
        ))
    };
    let pq = |e: parquet::errors::ParquetError| err(e.to_string());
    match (kind, col) {
        (Kind::I32 { .. } | Kind::Date, ColumnWriter::Int32ColumnWriter(w)) => {
            let mut out = Vec::with_capacity(present.len());
            for v in &present {
                out.push(match (kind, v) {
                    (Kind::I32 { signed: true, .. }, Value::Int(i)) => {
                        i32::try_from(*i).map_err(|_| err(format!("{i} does not fit 32 bits")))?
                    }
                    (Kind::I32 { signed: false, .. }, Value::UInt(u)) => u32::try_from(*u)
                        .map_err(|_| err(format!("{u} does not fit 32 bits")))?
                        as i32,
                    (Kind::Date, Value::String(s)) => values::date_to_days(s).map_err(err)?,
                    _ => return Err(bad(v)),
                });
            }
            w.write_batch(&out, defs, None).map_err(pq)?;
        }
        (
            Kind::I64 { .. } | Kind::Time { .. } | Kind::Timestamp { .. },
            ColumnWriter::Int64ColumnWriter(w),
        ) => {
            let mut out = Vec::with_capacity(present.len());
            for v in &present {
                out.push(match (kind, v) {
                    (Kind::I64 { signed: true }, Value::Int(i)) => *i,
                    (Kind::I64 { signed: false }, Value::UInt(u)) => *u as i64,
                    (Kind::Time { .. }, Value::String(s)) => {
                        values::time_to_micros(s).map_err(err)?
                    }
                    (Kind::Timestamp { .. }, Value::String(s)) => {
                        values::datetime_to_micros(s).map_err(err)?
                    }
                    _ => return Err(bad(v)),
                });
            }
            w.write_batch(&out, defs, None).map_err(pq)?;
        }
        (Kind::Float, ColumnWriter::FloatColumnWriter(w)) => {
            let mut out = Vec::with_capacity(present.len());
            for v in &present {
                match v {
                    Value::Float(f) => out.push(*f),
                    _ => return Err(bad(v)),
                }
            }
            w.write_batch(&out, defs, None).map_err(pq)?;
        }
        (Kind::Double, ColumnWriter::DoubleColumnWriter(w)) => {
            let mut out = Vec::with_capacity(present.len());
            for v in &present {
                match v {
                    Value::Double(f) => out.push(*f),
                    _ => return Err(bad(v)),
                }
            }
            w.write_batch(&out, defs, None).map_err(pq)?;
        }
        (
            Kind::Decimal {
                precision,
                scale,
                len,
            },
            ColumnWriter::FixedLenByteArrayColumnWriter(w),
        ) => {
            let mut out = Vec::with_capacity(present.len());
            for v in &present {
                match v {
                    Value::Decimal(t) | Value::String(t) => out.push(FixedLenByteArray::from(
                        values::decimal_to_bytes(t, precision, scale, len).map_err(err)?,
                    )),
                    _ => return Err(bad(v)),
                }
            }
            w.write_batch(&out, defs, None).map_err(pq)?;
        }
        (Kind::Text | Kind::Binary, ColumnWriter::ByteArrayColumnWriter(w)) => {
            let mut out = Vec::with_capacity(present.len());
            for v in present {
                match (kind, v) {
                    (Kind::Text, Value::String(s)) => {
                        out.push(ByteArray::from(s.into_string().into_bytes()))
                    }
                    (Kind::Binary, Value::Bytes(b)) => out.push(ByteArray::from(b)),
                    (_, v) => return Err(bad(&v)),
                }
            }
            w.write_batch(&out, defs, None).map_err(pq)?;
        }
        _ => return Err(err(format!("internal: no {kind:?} column writer"))),
    }
    Ok(())
}

/// Checks that every value of `row` can be stored in its column (variant, range, NOT NULL),
/// so the encoder refuses an event the file step could not write.
pub fn check_row(table: &TableDef, kinds: &[Kind], row: &DecodedRow) -> Result<()> {
    let n = table.columns.len();
    for src in (0..n)
        .map(Source::Current)
        .chain((0..n).map(Source::Before))
    {
        let (i, optional) = match src {
            Source::Current(i) => (i, table.columns[i].nullable),
            Source::Before(i) => (i, true),
            _ => continue,
        };
        let column = &table.columns[i];
        let err = |reason: String| encode_error(table, Some(column), reason);
        let v = match cell(row, src) {
            None | Some(Value::Null) if optional => continue,
            None | Some(Value::Null) => return Err(err("NULL in a NOT NULL column".into())),
            Some(v) => v,
        };
        let ok = match (kinds[i], &v) {
            (Kind::I32 { signed: true, .. }, Value::Int(x)) => i32::try_from(*x).is_ok(),
            (Kind::I32 { signed: false, .. }, Value::UInt(x)) => u32::try_from(*x).is_ok(),
            (Kind::I64 { signed: true }, Value::Int(_))
            | (Kind::I64 { signed: false }, Value::UInt(_))
            | (Kind::Float, Value::Float(_))
            | (Kind::Double, Value::Double(_))
            | (Kind::Text, Value::String(_))
            | (Kind::Binary, Value::Bytes(_)) => true,
            (Kind::Date, Value::String(s)) => {
                values::date_to_days(s).map_err(err)?;
                true
            }
            (Kind::Time { .. }, Value::String(s)) => {
                values::time_to_micros(s).map_err(err)?;
                true
            }
            (Kind::Timestamp { .. }, Value::String(s)) => {
                values::datetime_to_micros(s).map_err(err)?;
                true
            }
            (
                Kind::Decimal {
                    precision,
                    scale,
                    len,
                },
                Value::Decimal(s) | Value::String(s),
            ) => {
                values::decimal_to_bytes(s, precision, scale, len).map_err(err)?;
                true
            }
            _ => false,
        };
        if !ok {
            return Err(err(format!(
                "a {:?} parquet column cannot take this {} value",
                kinds[i],
                v.variant_name()
            )));
        }
    }
    Ok(())
}
