//! The `csv` protocol (TiCDC's storage-sink csv).
//!
//! # Format
//!
//! One record per row change, fields joined by `delimiter` (1 to 3 characters) and each record
//! ended by `terminator` (default `\r\n`):
//!
//! ```text
//! op, table, schema, [commit-ts], [is-update], col1, col2, ...
//! ```
//!
//! - `op` is `I`, `U` or `D`; a delete carries the before image.
//! - `commit-ts` (with `include-commit-ts`) is the full TSO, unquoted.
//! - `is-update` (with `output-old-value`) is `true`/`false`, unquoted. With `output-old-value`
//!   an update becomes a `D` record of the before image then an `I` record of the after image,
//!   both with `is-update=true`; the decoder rejoins the pair into one update (an update whose
//!   before image is unknown stays one `U` record). Without it an update is one `U` record of
//!   the after image.
//! - With `output-field-header` every file starts with one record naming the fields:
//!   `ticdc-meta$operation`, `ticdc-meta$table`, `ticdc-meta$schema`, `ticdc-meta$commit-ts`,
//!   `ticdc-meta$is-update` (when present), then the column names. The decoder checks it.
//!
//! # Values
//!
//! | column (value)                                   | written as                                   |
//! |--------------------------------------------------|----------------------------------------------|
//! | NULL                                             | the `null` string (default `\N`), unquoted   |
//! | integers, YEAR, BIT (`Int`, `UInt`)              | decimal digits, unquoted                     |
//! | FLOAT, DOUBLE                                    | shortest round-trip text, no exponent, unquoted |
//! | DECIMAL, char/text, JSON, temporal, ENUM/SET names | string                                     |
//! | binary (`Bytes`)                                 | base64 (standard, padded) or lower-case hex, as a string |
//! | op, table, schema                                | string                                       |
//!
//! A string is written between `quote` characters with each quote inside doubled. When `quote`
//! is empty, strings are written bare with a backslash before `\`, the first character of the
//! delimiter and of the terminator, and CR/LF written as `\r`/`\n`.
//!
//! # Reading
//!
//! The reader is hand-written rather than the `csv` crate's: delimiters of up to three
//! characters, multi-byte quote characters and the backslash escapes are beyond it. It scans
//! with `memchr`, borrows field text from the input unless a field holds doubled quotes or
//! escapes, and tracks the physical line each record starts on for error messages. A record
//! not ended by the terminator (a truncated object) is an error.
//!
//! # What is lost
//!
//! - Without `output-old-value` the before image of an update (`Update { before: None }`).
//! - Without `include-commit-ts` the commit ts (`commit_ts: None`).
//! - Without quoting, a string equal to an empty `null` string, or to a `null` string made only
//!   of the letters `r` and `n`, reads back as NULL (there is nothing left to escape).
//!   With quoting, a quoted field equal to the null string is a string, not NULL.
//!
//! # Deviations from TiCDC
//!
//! - Without quoting TiCDC escapes whole occurrences of the delimiter; we escape every
//!   occurrence of its first character, which is identical for one-character delimiters and
//!   unambiguous for longer ones. We also escape a string that would read back as the null
//!   string (its first character that is not `r`/`n`), and the terminator's first character.
//! - FLOAT/DOUBLE use the shortest round-trip decimal text without exponent.
//! - Header names that contain a special character are quoted (escaped) like any string.
//! - Stricter options: the `null` string must not contain the quote or the first character of
//!   the delimiter or terminator; without quoting, delimiter and terminator must not contain a
//!   backslash nor start with `r` or `n`.

use super::{
    check_row_len, mismatch, write_f32, write_f64, write_int, Codec, DecodedRow, TableCodec,
};
use crate::error::{Error, Result};
use crate::event::{DmlEvent, RowChange};
use crate::options::{BinaryEncoding, CsvOptions, Protocol};
use crate::table::{TableDef, ValueKind};
use crate::ts::Ts;
use crate::value::Value;
use base64::Engine;
use reader::find;

mod decode;
mod reader;

/// Field-header name of the operation column (TiCDC's).
pub const HEADER_OPERATION: &str = "ticdc-meta$operation";
/// Field-header name of the table column.
pub const HEADER_TABLE: &str = "ticdc-meta$table";
/// Field-header name of the schema column.
pub const HEADER_SCHEMA: &str = "ticdc-meta$schema";
/// Field-header name of the commit-ts column.
pub const HEADER_COMMIT_TS: &str = "ticdc-meta$commit-ts";
/// Field-header name of the is-update column.
pub const HEADER_IS_UPDATE: &str = "ticdc-meta$is-update";

/// The csv protocol with its options.
#[derive(Clone, Debug)]
pub struct CsvCodec {
    opts: CsvOptions,
}

impl CsvCodec {
    /// Validates the options (TiCDC's rules plus the stricter ones in the module doc).
    pub fn new(opts: CsvOptions) -> Result<CsvCodec> {
        opts.validate()?;
        let d0 = opts.delimiter.chars().next().unwrap_or(',');
        let t0 = opts.terminator.chars().next().unwrap_or('\n');
        if let Some(q) = opts.quote {
            if opts.null.contains(q) {
                return Err(Error::param(
                    "null",
                    format!("must not contain the quote character `{q}`"),
                ));
            }
        } else {
            for (name, v) in [
                ("delimiter", &opts.delimiter),
                ("terminator", &opts.terminator),
            ] {
                if v.contains('\\') || v.starts_with(['r', 'n']) {
                    return Err(Error::param(
                        name,
                        "without quoting must not contain `\\` nor start with `r` or `n`",
                    ));
                }
            }
        }
        if opts.null.contains(d0) || opts.null.contains(t0) {
            return Err(Error::param(
                "null",
                "must not contain the first character of the delimiter or the terminator",
            ));
        }
        Ok(CsvCodec { opts })
    }

    /// The options.
    pub fn options(&self) -> &CsvOptions {
        &self.opts
    }
}

impl Codec for CsvCodec {
    fn protocol(&self) -> Protocol {
        Protocol::Csv
    }

    fn prepare(&self, table: &TableDef) -> Result<Box<dyn TableCodec>> {
        Ok(Box::new(CsvTableCodec::new(self.opts.clone(), table)))
    }
}

/// Operation letters, indexed like [`CsvTableCodec::meta`].
const OPS: [&str; 3] = ["I", "U", "D"];
const OP_INSERT: usize = 0;
const OP_UPDATE: usize = 1;
const OP_DELETE: usize = 2;

/// The csv codec bound to one table version.
struct CsvTableCodec {
    table: TableDef,
    kinds: Vec<ValueKind>,
    opts: CsvOptions,
    delim: Vec<u8>,
    term: Vec<u8>,
    null: Vec<u8>,
    quote: Option<Vec<u8>>,
    /// Bytes escaped with a backslash when quoting is off.
    special: [bool; 256],
    /// `op, table, schema` already rendered, per operation.
    meta: [Vec<u8>; 3],
    header: Vec<u8>,
    header_names: Vec<String>,
}

/// Scratch space reused across the rows of one event.
#[derive(Default)]
struct Scratch {
    bin: Vec<u8>,
}

impl CsvTableCodec {
    fn new(opts: CsvOptions, table: &TableDef) -> CsvTableCodec {
        let delim = opts.delimiter.as_bytes().to_vec();
        let term = opts.terminator.as_bytes().to_vec();
        let mut special = [false; 256];
        if opts.quote.is_none() {
            for b in [b'\\', b'\r', b'\n', delim[0], term[0]] {
                special[b as usize] = true;
            }
        }
        let mut c = CsvTableCodec {
            table: table.clone(),
            kinds: table.columns.iter().map(|c| c.value_kind()).collect(),
            null: opts.null.as_bytes().to_vec(),
            quote: opts.quote.map(|q| q.to_string().into_bytes()),
            opts,
            delim,
            term,
            special,
            meta: Default::default(),
            header: Vec::new(),
            header_names: Vec::new(),
        };
        for (i, op) in OPS.iter().enumerate() {
            let mut m = Vec::new();
            c.write_str(op.as_bytes(), &mut m);
            m.extend_from_slice(&c.delim);
            c.write_str(table.table.as_bytes(), &mut m);
            m.extend_from_slice(&c.delim);
            c.write_str(table.schema.as_bytes(), &mut m);
            c.meta[i] = m;
        }
        let mut names = vec![HEADER_OPERATION, HEADER_TABLE, HEADER_SCHEMA];
        if c.opts.include_commit_ts {
            names.push(HEADER_COMMIT_TS);
        }
        if c.opts.output_old_value {
            names.push(HEADER_IS_UPDATE);
        }
        let mut names: Vec<String> = names.into_iter().map(String::from).collect();
        names.extend(table.columns.iter().map(|c| c.name.clone()));
        if c.opts.output_field_header {
            let mut h = Vec::new();
            for (i, n) in names.iter().enumerate() {
                if i > 0 {
                    h.extend_from_slice(&c.delim);
                }
                c.write_name(n.as_bytes(), &mut h);
            }
            h.extend_from_slice(&c.term);
            c.header = h;
        }
        c.header_names = names;
        c
    }

    fn meta_fields(&self) -> usize {
        3 + usize::from(self.opts.include_commit_ts) + usize::from(self.opts.output_old_value)
    }

    /// Writes a header name bare when nothing in it needs quoting or escaping.
    fn write_name(&self, name: &[u8], out: &mut Vec<u8>) {
        let plain = name != self.null.as_slice()
            && !name.iter().any(|&b| {
                matches!(b, b'\\' | b'\r' | b'\n')
                    || b == self.delim[0]
                    || b == self.term[0]
                    || self.quote.as_ref().is_some_and(|q| q.contains(&b))
            });
        if plain {
            out.extend_from_slice(name);
        } else {
            self.write_str(name, out);
        }
    }

    /// Writes a string field: quoted with doubled quotes, or escaped when quoting is off.
    fn write_str(&self, s: &[u8], out: &mut Vec<u8>) {
        match &self.quote {
            Some(q) if q.len() == 1 && s.len() < 64 => {
                // Short strings: a plain loop beats a memchr call per string.
                let q = q[0];
                out.reserve(s.len() + 2);
                out.push(q);
                let mut last = 0;
                for (i, &b) in s.iter().enumerate() {
                    if b == q {
                        out.extend_from_slice(&s[last..=i]);
                        out.push(q);
                        last = i + 1;
                    }
                }
                out.extend_from_slice(&s[last..]);
                out.push(q);
            }
            Some(q) => {
                out.extend_from_slice(q);
                let mut rest = s;
                while let Some(i) = find(rest, q) {
                    let end = i + q.len();
                    out.extend_from_slice(&rest[..end]);
                    out.extend_from_slice(q);
                    rest = &rest[end..];
                }
                out.extend_from_slice(rest);
                out.extend_from_slice(q);
            }
            None => {
                let mut last = 0;
                let mut escaped = false;
                for (i, &b) in s.iter().enumerate() {
                    if self.special[b as usize] {
                        out.extend_from_slice(&s[last..i]);
                        match b {
                            b'\r' => out.extend_from_slice(b"\\r"),
                            b'\n' => out.extend_from_slice(b"\\n"),
                            _ => out.extend_from_slice(&[b'\\', b]),
                        }
                        last = i + 1;
                        escaped = true;
                    }
                }
                if !escaped && s == self.null.as_slice() {
                    // Would read back as NULL: escape one character that stays itself.
                    if let Some(i) = s.iter().position(|&b| b != b'r' && b != b'n') {
                        out.extend_from_slice(&s[..i]);
                        out.push(b'\\');
                        out.extend_from_slice(&s[i..]);
                        return;
                    }
                }
                out.extend_from_slice(&s[last..]);
            }
        }
    }

    fn write_value(
        &self,
        column: usize,
        value: &Value,
        scratch: &mut Scratch,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        match (self.kinds[column], value) {
            (_, Value::Null) => out.extend_from_slice(&self.null),
            (ValueKind::Int, Value::Int(v)) => write_int(out, *v),
            (ValueKind::UInt, Value::UInt(v)) => write_int(out, *v),
            (ValueKind::Float, Value::Float(v)) => write_f32(out, *v),
            (ValueKind::Double, Value::Double(v)) => write_f64(out, *v),
            (ValueKind::Decimal, Value::Decimal(s)) | (ValueKind::String, Value::String(s)) => {
                self.write_str(s.as_bytes(), out)
            }
            (ValueKind::Bytes, Value::Bytes(b)) => {
                let buf = &mut scratch.bin;
                buf.clear();
                match self.opts.binary_encoding {
                    BinaryEncoding::Base64 => {
                        buf.resize(base64::encoded_len(b.len(), true).unwrap_or(0), 0);
                        let n = base64::engine::general_purpose::STANDARD
                            .encode_slice(b, buf)
                            .unwrap_or(0);
                        buf.truncate(n);
                    }
                    BinaryEncoding::Hex => {
                        buf.resize(b.len() * 2, 0);
                        // The buffer is exactly twice the input: cannot fail.
                        let _ = hex::encode_to_slice(b, buf);
                    }
                }
                self.write_str(buf, out);
            }
            _ => return Err(mismatch(&self.table, &self.table.columns[column], value)),
        }
        Ok(())
    }

    fn write_record(
        &self,
        op: usize,
        image: &[Value],
        commit_ts: Ts,
        is_update: bool,
        scratch: &mut Scratch,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        check_row_len(&self.table, image)?;
        out.extend_from_slice(&self.meta[op]);
        if self.opts.include_commit_ts {
            out.extend_from_slice(&self.delim);
            write_int(out, commit_ts.0);
        }
        if self.opts.output_old_value {
            out.extend_from_slice(&self.delim);
            out.extend_from_slice(if is_update { b"true" } else { b"false" });
        }
        for (i, v) in image.iter().enumerate() {
            match self.delim.as_slice() {
                [d] => out.push(*d),
                d => out.extend_from_slice(d),
            }
            self.write_value(i, v, scratch, out)?;
        }
        out.extend_from_slice(&self.term);
        Ok(())
    }

    fn encode_rows(&self, event: &DmlEvent, out: &mut Vec<u8>) -> Result<()> {
        let mut scratch = Scratch::default();
        let ts = event.commit_ts;
        let s = &mut scratch;
        for row in &event.rows {
            match row {
                RowChange::Insert { after } => {
                    self.write_record(OP_INSERT, after, ts, false, s, out)?
                }
                RowChange::Delete { before } => {
                    self.write_record(OP_DELETE, before, ts, false, s, out)?
                }
                RowChange::Update { before, after } => match before {
                    Some(before) if self.opts.output_old_value => {
                        self.write_record(OP_DELETE, before, ts, true, s, out)?;
                        self.write_record(OP_INSERT, after, ts, true, s, out)?;
                    }
                    _ => self.write_record(OP_UPDATE, after, ts, true, s, out)?,
                },
            }
        }
        Ok(())
    }
}

impl TableCodec for CsvTableCodec {
    fn file_header(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.header);
    }

    fn encode(&self, event: &DmlEvent, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        let r = self.encode_rows(event, out);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    fn decode(&self, object: &str, bytes: &[u8]) -> Result<Vec<DecodedRow>> {
        self.decode_file(object, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{ColumnDef, ColumnType};
    use std::sync::Arc;

    fn table() -> TableDef {
        TableDef {
            schema: "db".into(),
            table: "t".into(),
            table_id: 1,
            version: Ts(1),
            columns: vec![
                ColumnDef::new("id", ColumnType::Int).pk(),
                ColumnDef::new("s", ColumnType::VarChar),
            ],
        }
    }

    fn encode(opts: CsvOptions, rows: Vec<RowChange>) -> (Box<dyn TableCodec>, Vec<u8>) {
        let t = table();
        let c = CsvCodec::new(opts).unwrap().prepare(&t).unwrap();
        let mut out = Vec::new();
        c.file_header(&mut out);
        let e = DmlEvent {
            table: Arc::new(t),
            partition_id: None,
            commit_ts: Ts(7),
            rows,
        };
        c.encode(&e, &mut out).unwrap();
        (c, out)
    }

    #[test]
    fn escapes_every_first_delimiter_character_without_quotes() {
        let opts = CsvOptions {
            delimiter: "||".into(),
            quote: None,
            terminator: "\n".into(),
            ..Default::default()
        };
        let s = "a|||b\\N\r\n".to_string();
        let (c, out) = encode(
            opts,
            vec![RowChange::Insert {
                after: vec![Value::Int(1), Value::String(s.clone().into())],
            }],
        );
        assert_eq!(out, b"I||t||db||1||a\\|\\|\\|b\\\\N\\r\\n\n");
        let rows = c.decode("o", &out).unwrap();
        assert_eq!(rows[0].change.image()[1], Value::String(s.into()));
    }

    #[test]
    fn string_equal_to_null_stays_a_string() {
        for quote in [Some('"'), None] {
            let opts = CsvOptions {
                quote,
                null: "NULL".into(),
                ..Default::default()
            };
            let (c, out) = encode(
                opts,
                vec![RowChange::Insert {
                    after: vec![Value::Int(1), Value::String("NULL".into())],
                }],
            );
            let rows = c.decode("o", &out).unwrap();
            assert_eq!(rows[0].change.image()[1], Value::String("NULL".into()));
        }
    }
}
