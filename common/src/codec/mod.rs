//! Codecs: encode row changes into data-file bytes and decode them back.
//!
//! Every protocol sits behind one pair of traits so the sink and the consumer pick by protocol
//! name ([`codec_for`]):
//!
//! - [`Codec`] is the protocol with its options; [`Codec::prepare`] binds it to one table version.
//! - [`TableCodec`] does the work for that table version. The sink keeps one per table version
//!   per encoder thread (no lock on the hot path); the consumer one per schema file.
//!
//! # The file shape every codec follows
//!
//! ```text
//! data file = file_header(table) ++ chunk(event 1) ++ chunk(event 2) ++ ...
//! ```
//!
//! A chunk is self-contained: the writer concatenates chunks that encoder threads produced in
//! parallel, in dispatcher order, without re-encoding. For csv and canal-json a chunk is whole
//! lines; for avro it is one object-container block (count, size, records, sync marker), and the
//! header is the container header whose sync marker is derived from the table version, so every
//! chunk of that table version carries the same marker.
//!
//! # The codecs
//!
//! - [`csv`]: TiCDC's csv, every csv option; see its module doc for the value forms.
//! - [`canal_json`]: TiCDC's canal-json, optionally with `_tidb.commitTs`.
//! - [`avro`]: Avro object container files with a schema derived from the table version.
//! - [`parquet`]: Parquet files with typed columns; events are staged as avro blocks and the
//!   file is written in [`TableCodec::finish_file`].
//! - [`compressed`]: `compression=gzip|zstd` around csv or canal-json, applied once per file
//!   in [`TableCodec::finish_file`] (the chunk shape above is what is compressed).
//!
//! Each codec's module doc states its format, value mapping, what it loses by design and where
//! it deviates from TiCDC. Encoders write straight into the caller's buffer and take back
//! what they wrote when a row does not match the table ([`crate::Error::Encode`]); decoders never
//! panic on any bytes and report [`crate::Error::Corrupt`] with the object and the line (csv,
//! canal-json) or byte offset (avro).

pub mod avro;
pub mod canal_json;
pub mod compressed;
pub mod csv;
pub mod elems;
pub mod parquet;

use crate::error::{Error, Result};
use crate::event::{DmlEvent, RowChange};
use crate::options::{Compression, Protocol, SinkOptions};
use crate::table::{ColumnDef, TableDef, ValueKind};
use crate::ts::Ts;
use crate::value::Value;
use bytes::Bytes;

/// One decoded row change with the commit ts the file carried for it (csv without
/// `include-commit-ts` carries none).
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedRow {
    /// Commit ts of the row's transaction, when the format carries it.
    pub commit_ts: Option<Ts>,
    /// The change.
    pub change: RowChange,
}

/// A protocol with its options.
pub trait Codec: Send + Sync {
    /// The protocol.
    fn protocol(&self) -> Protocol;

    /// Binds the codec to one table version (builds the avro writer schema, csv column plan...).
    fn prepare(&self, table: &TableDef) -> Result<Box<dyn TableCodec>>;
}

/// A codec bound to one table version.
pub trait TableCodec: Send + Sync {
    /// Appends the bytes that start every data file of this table version (csv field header,
    /// avro container header; nothing for canal-json).
    fn file_header(&self, out: &mut Vec<u8>);

    /// Appends one self-contained chunk holding every row of `event`. Errors (and appends
    /// nothing) when a row does not match the table definition.
    fn encode(&self, event: &DmlEvent, out: &mut Vec<u8>) -> Result<()>;

    /// Turns one data file's parts (the header, then the chunks, in order) into the bytes
    /// stored under `object`. The default stores them as they are; whole-file compression
    /// ([`compressed`]) rewrites the file here. Runs once per file, off the async runtime.
    fn finish_file(&self, object: &str, parts: Vec<Bytes>) -> Result<Vec<Bytes>> {
        let _ = object;
        Ok(parts)
    }

    /// Whether [`TableCodec::finish_file`] rewrites the file (compression, parquet) instead of
    /// storing the parts as they are. A writer streams a large rewritten file with
    /// [`TableCodec::finish_file_into`] rather than holding it whole.
    fn rewrites_file(&self) -> bool {
        false
    }

    /// [`TableCodec::finish_file`], written into `out` as the stored bytes are produced, so
    /// that a large rewritten file is never held whole (the writer sends `out`'s bytes on to a
    /// multipart upload). The bytes are exactly those `finish_file` returns. A write error of
    /// `out` is an [`Error::Encode`] naming `object` and the error.
    fn finish_file_into(
        &self,
        object: &str,
        parts: Vec<Bytes>,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<()> {
        for p in self.finish_file(object, parts)? {
            out.write_all(&p).map_err(|e| write_error(object, e))?;
        }
        Ok(())
    }

    /// Decodes a whole data file (header included). `object` names the file in errors.
    fn decode(&self, object: &str, bytes: &[u8]) -> Result<Vec<DecodedRow>>;
}

/// The error of writing a finished file's bytes into their destination.
pub(crate) fn write_error(object: &str, e: std::io::Error) -> Error {
    Error::Encode {
        what: format!("data file `{object}`"),
        reason: format!("writing the finished file failed: {e}"),
    }
}

/// The codec for the protocol and options in `options`. The options are validated first;
/// an unusable combination is an [`Error::InvalidParameter`] naming the option.
pub fn codec_for(options: &SinkOptions) -> Result<Box<dyn Codec>> {
    options.validate()?;
    let inner: Box<dyn Codec> = match options.protocol {
        Protocol::Csv => Box::new(csv::CsvCodec::new(options.csv.clone())?),
        Protocol::CanalJson => Box::new(canal_json::CanalJsonCodec::new(
            options.enable_tidb_extension,
            &options.csv.terminator,
        )?),
        Protocol::Avro => Box::new(avro::AvroCodec::new()),
        Protocol::Parquet => Box::new(parquet::ParquetCodec::new(options.parquet_compression)),
    };
    Ok(match options.compression {
        Compression::None => inner,
        c => Box::new(compressed::CompressedCodec::new(inner, c)),
    })
}

/// The [`Error::Encode`] for a problem with one column of a table.
pub(crate) fn encode_error(table: &TableDef, column: Option<&ColumnDef>, reason: String) -> Error {
    let what = match column {
        Some(c) => format!(
            "row of `{}`.`{}` column `{}`",
            table.schema, table.table, c.name
        ),
        None => format!("row of `{}`.`{}`", table.schema, table.table),
    };
    Error::Encode { what, reason }
}

/// Checks that a row image has one value per column; errors name the table.
pub(crate) fn check_row_len(table: &TableDef, image: &[Value]) -> Result<()> {
    if image.len() != table.columns.len() {
        return Err(encode_error(
            table,
            None,
            format!(
                "row has {} values but the table has {} columns",
                image.len(),
                table.columns.len()
            ),
        ));
    }
    Ok(())
}

/// The error for a value whose variant does not match its column's type.
pub(crate) fn mismatch(table: &TableDef, column: &ColumnDef, value: &Value) -> Error {
    encode_error(
        table,
        Some(column),
        format!(
            "a {} column takes {:?} values, got {}",
            column.sql_type(),
            column.value_kind(),
            value.variant_name()
        ),
    )
}

/// Appends the shortest text that parses back to exactly `v` (never an exponent), the way
/// TiCDC's `FormatFloat(v, 'f', -1, 32)` does (ryu's shortest digits, written out plainly).
pub(crate) fn write_f32(out: &mut Vec<u8>, v: f32) {
    if v.is_finite() {
        plain_decimal(out, ryu::Buffer::new().format_finite(v));
    } else {
        non_finite(out, v.is_nan(), v < 0.0);
    }
}

/// Appends the shortest text that parses back to exactly `v` (never an exponent). When two
/// shortest texts are equally close, ryu's choice may differ from Rust's `Display`.
pub(crate) fn write_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        plain_decimal(out, ryu::Buffer::new().format_finite(v));
    } else {
        non_finite(out, v.is_nan(), v < 0.0);
    }
}

fn non_finite(out: &mut Vec<u8>, nan: bool, negative: bool) {
    out.extend_from_slice(match (nan, negative) {
        (true, _) => b"NaN",
        (false, true) => b"-inf",
        (false, false) => b"inf",
    });
}

/// Rewrites ryu's output (`1.5e-10`, `1e21`, `123.0`, `0.37`) without exponent and without a
/// `.0` suffix (`0.00000000015`, `1000000000000000000000`, `123`, `0.37`).
fn plain_decimal(out: &mut Vec<u8>, s: &str) {
    let s = s.as_bytes();
    let Some(e) = s.iter().position(|&b| b == b'e') else {
        out.extend_from_slice(s.strip_suffix(b".0").unwrap_or(s));
        return;
    };
    let (mantissa, exp) = (&s[..e], &s[e + 1..]);
    let exp: i32 = std::str::from_utf8(exp)
        .ok()
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    let (negative, mantissa) = match mantissa.split_first() {
        Some((b'-', m)) => (true, m),
        _ => (false, mantissa),
    };
    let int_len = mantissa
        .iter()
        .position(|&b| b == b'.')
        .unwrap_or(mantissa.len());
    let mut digits = [0u8; 32];
    let mut n = 0;
    for &b in mantissa.iter().filter(|b| b.is_ascii_digit()) {
        if n < digits.len() {
            digits[n] = b;
            n += 1;
        }
    }
    let digits = &digits[..n];
    if negative {
        out.push(b'-');
    }
    let point = int_len as i32 + exp;
    if point <= 0 {
        out.extend_from_slice(b"0.");
        out.resize(out.len() + (-point) as usize, b'0');
        out.extend_from_slice(digits);
    } else if point as usize >= digits.len() {
        out.extend_from_slice(digits);
        out.resize(out.len() + point as usize - digits.len(), b'0');
    } else {
        out.extend_from_slice(&digits[..point as usize]);
        out.push(b'.');
        out.extend_from_slice(&digits[point as usize..]);
    }
}

/// Appends an integer in decimal.
pub(crate) fn write_int<I: itoa::Integer>(out: &mut Vec<u8>, v: I) {
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(v).as_bytes());
}

/// The 1-based index of an ENUM element name (0 for the empty string, MySQL's error value).
pub(crate) fn enum_index(column: &ColumnDef, name: &str) -> Option<u64> {
    match column.elems.iter().position(|e| e == name) {
        Some(i) => Some(i as u64 + 1),
        None if name.is_empty() => Some(0),
        None => None,
    }
}

/// The ENUM element name of a 1-based index (0 is the empty string).
pub(crate) fn enum_name(column: &ColumnDef, index: u64) -> Option<&str> {
    if index == 0 {
        return Some("");
    }
    column
        .elems
        .get(usize::try_from(index - 1).ok()?)
        .map(String::as_str)
}

/// The bitmask of a SET value (member names comma-joined); `None` names an unknown member.
pub(crate) fn set_mask(column: &ColumnDef, names: &str) -> Option<u64> {
    if names.is_empty() {
        return Some(0);
    }
    let mut mask = 0u64;
    for name in names.split(',') {
        let i = column.elems.iter().position(|e| e == name)?;
        if i >= 64 {
            return None;
        }
        mask |= 1 << i;
    }
    Some(mask)
}

/// The SET value (member names in declaration order, comma-joined) of a bitmask; `None` when a
/// bit names no element.
pub(crate) fn set_names(column: &ColumnDef, mask: u64) -> Option<String> {
    if column.elems.len() < 64 && mask >> column.elems.len() != 0 {
        return None;
    }
    let mut s = String::new();
    for (i, e) in column.elems.iter().enumerate().take(64) {
        if mask & (1 << i) != 0 {
            if !s.is_empty() {
                s.push(',');
            }
            s.push_str(e);
        }
    }
    Some(s)
}

/// Parses the text form of a value of `column` (the form csv and canal-json share for numbers
/// and text). Binary columns are not handled here: each codec has its own byte encoding.
pub(crate) fn parse_text_value(
    column: &ColumnDef,
    text: &str,
) -> std::result::Result<Value, String> {
    let bad = |what: &str| {
        format!(
            "column `{}` ({}): `{}` is not {what}",
            column.name,
            column.sql_type(),
            shorten(text)
        )
    };
    Ok(match column.value_kind() {
        ValueKind::Int => Value::Int(text.parse().map_err(|_| bad("a signed integer"))?),
        ValueKind::UInt => Value::UInt(text.parse().map_err(|_| bad("an unsigned integer"))?),
        ValueKind::Float => Value::Float(text.parse().map_err(|_| bad("a float"))?),
        ValueKind::Double => Value::Double(text.parse().map_err(|_| bad("a double"))?),
        ValueKind::Decimal => Value::Decimal(text.into()),
        ValueKind::String => Value::String(text.into()),
        ValueKind::Bytes => return Err(bad("binary")),
    })
}

/// At most 40 characters of `s`, for error messages.
pub(crate) fn shorten(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

/// FNV-1a over `bytes`, starting from `seed` (for derived, deterministic identifiers).
pub(crate) fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = seed;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::ColumnType;

    #[test]
    fn enum_and_set_convert_both_ways() {
        let e = ColumnDef::new("e", ColumnType::Enum).with_elems(["a", "b,c"]);
        assert_eq!(enum_index(&e, "b,c"), Some(2));
        assert_eq!(enum_index(&e, ""), Some(0));
        assert_eq!(enum_index(&e, "x"), None);
        assert_eq!(enum_name(&e, 2), Some("b,c"));
        assert_eq!(enum_name(&e, 3), None);
        let s = ColumnDef::new("s", ColumnType::Set).with_elems(["x", "y", "z"]);
        assert_eq!(set_mask(&s, "x,z"), Some(5));
        assert_eq!(set_mask(&s, ""), Some(0));
        assert_eq!(set_mask(&s, "w"), None);
        assert_eq!(set_names(&s, 5).as_deref(), Some("x,z"));
        assert_eq!(set_names(&s, 8), None);
    }

    #[test]
    fn float_text_is_shortest_and_exact() {
        let mut samples: Vec<f64> = vec![
            0.0,
            -0.0,
            1.0,
            123.0,
            0.37,
            1e16,
            1e21,
            1.5e-10,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            -2.5e-7,
            1e-5,
            1e-4,
            12345.678,
        ];
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            samples.push(f64::from_bits(x));
        }
        for v in samples.into_iter().filter(|v| v.is_finite()) {
            let mut out = Vec::new();
            write_f64(&mut out, v);
            let text = String::from_utf8(out).unwrap();
            assert_eq!(
                text.parse::<f64>().unwrap().to_bits(),
                v.to_bits(),
                "{text}"
            );
            assert_eq!(text.len(), v.to_string().len(), "{text} vs {v}");
            for f in [v as f32, f32::from_bits(v.to_bits() as u32)] {
                if !f.is_finite() {
                    continue;
                }
                // FLOAT text may pick another of several shortest candidates than Display
                // does; it must still be as short and read back exactly.
                let mut out = Vec::new();
                write_f32(&mut out, f);
                let text = String::from_utf8(out).unwrap();
                assert_eq!(
                    text.parse::<f32>().unwrap().to_bits(),
                    f.to_bits(),
                    "{text}"
                );
                assert_eq!(text.len(), f.to_string().len(), "{text} vs {f}");
            }
        }
    }

    #[test]
    fn floats_format_shortest_without_exponent() {
        let mut out = Vec::new();
        write_f64(&mut out, 1e21);
        out.push(b' ');
        write_f32(&mut out, 0.1);
        out.push(b' ');
        write_f64(&mut out, -2.5e-7);
        assert_eq!(out, b"1000000000000000000000 0.1 -0.00000025");
    }

    #[test]
    fn codec_for_rejects_bad_options() {
        let mut o = SinkOptions::default();
        o.csv.delimiter = String::new();
        assert!(matches!(
            codec_for(&o),
            Err(Error::InvalidParameter { name, .. }) if name == "delimiter"
        ));
        o.csv = Default::default();
        for p in [
            Protocol::Csv,
            Protocol::CanalJson,
            Protocol::Avro,
            Protocol::Parquet,
        ] {
            o.protocol = p;
            assert_eq!(codec_for(&o).unwrap().protocol(), p);
        }
    }
}
