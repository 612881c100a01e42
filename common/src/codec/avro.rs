//! The `avro` protocol: Avro object container files, one writer schema per table version.
//!
//! # File layout
//!
//! ```text
//! header = "Obj" 0x01
//!          metadata map { "avro.schema": <schema JSON>, "avro.codec": "null" }
//!          sync marker (16 bytes, derived from the schema JSON: two FNV-1a-64 hashes)
//! block  = record count (zig-zag long) ++ byte size (zig-zag long) ++ records ++ sync marker
//! file   = header ++ block(event 1) ++ block(event 2) ++ ...
//! ```
//!
//! Every event is one block, so blocks encoded on different threads concatenate; the sync
//! marker depends only on the table version, so every block of a file carries the file's
//! marker. An event without rows writes nothing. Files written by other Avro writers (any sync
//! marker, several events per block) decode too, as long as the codec is `null` and the writer
//! schema is this table version's schema (compared in Parsing Canonical Form).
//!
//! # Schema
//!
//! ```text
//! record cdc_storage.Event {            attributes cdc.schema, cdc.table, cdc.table_version
//!   op:        enum Op { INSERT, UPDATE, DELETE }
//!   commit_ts: long                      the TSO, its 64 bits as a signed long
//!   before:    union { null, record Image { <one field per column> } }
//!   after:     union { null, Image }
//! }
//! ```
//!
//! `before` is the old image (deletes, and updates when known), `after` the new one (inserts,
//! updates). Each image field is `union { null, T }` with default null and carries the original
//! column name in the attribute `cdc.column` and the SQL type in `cdc.sql_type`. A column name
//! that is a valid Avro name not starting with `_` is kept; any other becomes
//! `_<position>_<name with every character outside [A-Za-z0-9_] replaced by _>`, which cannot
//! collide with a kept name (the original stays in `cdc.column`).
//!
//! # Values
//!
//! | column (value)                                  | Avro type                          |
//! |-------------------------------------------------|------------------------------------|
//! | signed integers, YEAR, unsigned up to INT (`Int`, `UInt`) | `long`                   |
//! | BIGINT UNSIGNED (`UInt`)                        | `string` of the decimal number (TiCDC's `avro-bigint-unsigned-handling-mode=string`) |
//! | BIT (`UInt`)                                    | `bytes`, 8 bytes big-endian        |
//! | FLOAT / DOUBLE                                  | `float` / `double`                 |
//! | DECIMAL                                         | `string` (TiCDC's `avro-decimal-handling-mode=string`) |
//! | char/text, JSON, temporal, ENUM, SET            | `string` (the value's text)        |
//! | binary                                          | `bytes`                            |
//!
//! Nothing is lost: every value and the commit ts round-trip exactly.
//!
//! # Deviations from TiCDC
//!
//! TiCDC's avro protocol targets Kafka with a schema registry (a Confluent envelope per message,
//! no container file) and maps ENUM/SET to Avro enums and temporal types to strings. This is
//! an object container file with the schema above; it is not byte-compatible with TiCDC's
//! Kafka avro output.

use super::{check_row_len, fnv1a, mismatch, shorten, Codec, DecodedRow, TableCodec};
use crate::error::{Error, Position, Result};
use crate::event::{DmlEvent, RowChange};
use crate::options::Protocol;
use crate::table::{ColumnDef, ColumnType, TableDef, ValueKind};
use crate::ts::Ts;
use crate::value::{Text, Value};
use serde_json::json;

/// The Avro container magic.
pub const MAGIC: &[u8; 4] = b"Obj\x01";

/// The avro protocol.
#[derive(Clone, Debug, Default)]
pub struct AvroCodec;

impl AvroCodec {
    /// The avro codec (it has no options).
    pub fn new() -> AvroCodec {
        AvroCodec
    }
}

impl Codec for AvroCodec {
    fn protocol(&self) -> Protocol {
        Protocol::Avro
    }

    fn prepare(&self, table: &TableDef) -> Result<Box<dyn TableCodec>> {
        Ok(Box::new(AvroTableCodec::new(table)?))
    }
}

/// How one column is written.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Kind {
    /// `long`, from `Value::Int`.
    Long,
    /// `long`, from `Value::UInt` that fits.
    ULong,
    /// `string`, from `Value::UInt` (BIGINT UNSIGNED).
    UString,
    /// `bytes` (8, big-endian), from `Value::UInt` (BIT).
    Bit,
    Float,
    Double,
    /// `string`, from `Value::Decimal`.
    Decimal,
    /// `string`, from `Value::String`.
    Str,
    /// `bytes`, from `Value::Bytes`.
    Bytes,
}

fn kind_of(c: &ColumnDef) -> Kind {
    match c.value_kind() {
        ValueKind::Int => Kind::Long,
        ValueKind::UInt if c.ty == ColumnType::Bit => Kind::Bit,
        ValueKind::UInt if c.ty == ColumnType::BigInt => Kind::UString,
        ValueKind::UInt => Kind::ULong,
        ValueKind::Float => Kind::Float,
        ValueKind::Double => Kind::Double,
        ValueKind::Decimal => Kind::Decimal,
        ValueKind::String => Kind::Str,
        ValueKind::Bytes => Kind::Bytes,
    }
}

fn avro_type(k: Kind) -> &'static str {
    match k {
        Kind::Long | Kind::ULong => "long",
        Kind::UString | Kind::Decimal | Kind::Str => "string",
        Kind::Bit | Kind::Bytes => "bytes",
        Kind::Float => "float",
        Kind::Double => "double",
    }
}

/// The Avro field name of a column (see the module doc).
pub fn avro_field_name(position: usize, name: &str) -> String {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        return name.to_string();
    }
    let mut s = format!("_{position}_");
    s.extend(
        name.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
    );
    s
}

/// The writer schema (JSON text) of a table version.
pub fn avro_schema(table: &TableDef) -> String {
    let fields: Vec<serde_json::Value> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({
                "name": avro_field_name(i, &c.name),
                "type": ["null", avro_type(kind_of(c))],
                "default": null,
                "cdc.column": c.name,
                "cdc.sql_type": c.sql_type(),
            })
        })
        .collect();
    json!({
        "type": "record",
        "name": "Event",
        "namespace": "cdc_storage",
        "cdc.schema": table.schema,
        "cdc.table": table.table,
        "cdc.table_version": table.version.0,
        "fields": [
            {"name": "op", "type": {"type": "enum", "name": "Op", "symbols": ["INSERT", "UPDATE", "DELETE"]}},
            {"name": "commit_ts", "type": "long"},
            {"name": "before", "type": ["null", {"type": "record", "name": "Image", "fields": fields}], "default": null},
            {"name": "after", "type": ["null", "Image"], "default": null},
        ],
    })
    .to_string()
}

/// The avro codec bound to one table version.
struct AvroTableCodec {
    table: TableDef,
    kinds: Vec<Kind>,
    header: Vec<u8>,
    sync: [u8; 16],
    canonical: String,
}

fn write_long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    write_long(out, b.len() as i64);
    out.extend_from_slice(b);
}

impl AvroTableCodec {
    fn new(table: &TableDef) -> Result<AvroTableCodec> {
        let schema_json = avro_schema(table);
        let schema = apache_avro::Schema::parse_str(&schema_json).map_err(|e| Error::Encode {
            what: format!("avro schema of `{}`.`{}`", table.schema, table.table),
            reason: e.to_string(),
        })?;
        let mut sync = [0u8; 16];
        sync[..8]
            .copy_from_slice(&fnv1a(0xcbf2_9ce4_8422_2325, schema_json.as_bytes()).to_be_bytes());
        sync[8..]
            .copy_from_slice(&fnv1a(0x6c62_272e_07bb_0142, schema_json.as_bytes()).to_be_bytes());
        let mut header = MAGIC.to_vec();
        write_long(&mut header, 2);
        write_bytes(&mut header, b"avro.schema");
        write_bytes(&mut header, schema_json.as_bytes());
        write_bytes(&mut header, b"avro.codec");
        write_bytes(&mut header, b"null");
        write_long(&mut header, 0);
        header.extend_from_slice(&sync);
        Ok(AvroTableCodec {
            table: table.clone(),
            kinds: table.columns.iter().map(kind_of).collect(),
            header,
            sync,
            canonical: schema.canonical_form(),
        })
    }

    fn write_image(&self, image: &[Value], out: &mut Vec<u8>) -> Result<()> {
        check_row_len(&self.table, image)?;
        for (i, v) in image.iter().enumerate() {
            if v.is_null() {
                out.push(0);
                continue;
            }
            out.push(2); // union branch 1, zig-zag encoded
            match (self.kinds[i], v) {
                (Kind::Long, Value::Int(x)) => write_long(out, *x),
                (Kind::ULong, Value::UInt(x)) => match i64::try_from(*x) {
                    Ok(x) => write_long(out, x),
                    Err(_) => {
                        return Err(super::encode_error(
                            &self.table,
                            Some(&self.table.columns[i]),
                            format!(
                                "{x} is out of range for {}",
                                self.table.columns[i].sql_type()
                            ),
                        ))
                    }
                },
                (Kind::UString, Value::UInt(x)) => {
                    write_bytes(out, itoa::Buffer::new().format(*x).as_bytes())
                }
                (Kind::Bit, Value::UInt(x)) => write_bytes(out, &x.to_be_bytes()),
                (Kind::Float, Value::Float(x)) => out.extend_from_slice(&x.to_le_bytes()),
                (Kind::Double, Value::Double(x)) => out.extend_from_slice(&x.to_le_bytes()),
                (Kind::Decimal, Value::Decimal(s)) | (Kind::Str, Value::String(s)) => {
                    write_bytes(out, s.as_bytes())
                }
                (Kind::Bytes, Value::Bytes(b)) => write_bytes(out, b),
                _ => return Err(mismatch(&self.table, &self.table.columns[i], v)),
            }
        }
        Ok(())
    }

    fn write_row(&self, row: &RowChange, ts: Ts, out: &mut Vec<u8>) -> Result<()> {
        let (op, before, after) = match row {
            RowChange::Insert { after } => (0, None, Some(after)),
            RowChange::Update { before, after } => (1, before.as_ref(), Some(after)),
            RowChange::Delete { before } => (2, Some(before), None),
        };
        write_long(out, op);
        write_long(out, ts.0 as i64);
        for image in [before, after] {
            match image {
                None => out.push(0),
                Some(image) => {
                    out.push(2);
                    self.write_image(image, out)?;
                }
            }
        }
        Ok(())
    }

    fn encode_block(&self, event: &DmlEvent, out: &mut Vec<u8>) -> Result<()> {
        if event.rows.is_empty() {
            return Ok(());
        }
        let start = out.len();
        for row in &event.rows {
            self.write_row(row, event.commit_ts, out)?;
        }
        let mut head = Vec::with_capacity(20);
        write_long(&mut head, event.rows.len() as i64);
        write_long(&mut head, (out.len() - start) as i64);
        out.splice(start..start, head);
        out.extend_from_slice(&self.sync);
        Ok(())
    }

    fn read_image(&self, r: &mut Cursor<'_>) -> std::result::Result<Vec<Value>, String> {
        let mut image = Vec::with_capacity(self.kinds.len());
        for (i, kind) in self.kinds.iter().enumerate() {
            let col = &self.table.columns[i];
            let v = match r.long()? {
                0 => Value::Null,
                1 => match kind {
                    Kind::Long => Value::Int(r.long()?),
                    Kind::ULong => Value::UInt(u64::try_from(r.long()?).map_err(|_| {
                        format!(
                            "column `{}`: negative value for an unsigned column",
                            col.name
                        )
                    })?),
                    Kind::UString => {
                        let s = r.string()?;
                        Value::UInt(s.parse().map_err(|_| {
                            format!(
                                "column `{}`: `{}` is not an unsigned integer",
                                col.name,
                                shorten(s)
                            )
                        })?)
                    }
                    Kind::Bit => {
                        let b = r.bytes()?;
                        if b.len() > 8 {
                            return Err(format!(
                                "column `{}`: BIT value of {} bytes",
                                col.name,
                                b.len()
                            ));
                        }
                        Value::UInt(b.iter().fold(0u64, |a, x| (a << 8) | u64::from(*x)))
                    }
                    Kind::Float => Value::Float(f32::from_le_bytes(r.array()?)),
                    Kind::Double => Value::Double(f64::from_le_bytes(r.array()?)),
                    Kind::Decimal => Value::Decimal(Text::new(r.string()?)),
                    Kind::Str => Value::String(Text::new(r.string()?)),
                    Kind::Bytes => Value::Bytes(r.bytes()?.to_vec()),
                },
                n => {
                    return Err(format!(
                        "column `{}`: union branch {n} out of range",
                        col.name
                    ))
                }
            };
            image.push(v);
        }
        Ok(image)
    }

    fn read_optional_image(
        &self,
        r: &mut Cursor<'_>,
    ) -> std::result::Result<Option<Vec<Value>>, String> {
        match r.long()? {
            0 => Ok(None),
            1 => self.read_image(r).map(Some),
            n => Err(format!("image union branch {n} out of range")),
        }
    }

    fn read_record(&self, r: &mut Cursor<'_>) -> std::result::Result<DecodedRow, String> {
        let op = r.long()?;
        let ts = Ts(r.long()? as u64);
        let before = self.read_optional_image(r)?;
        let after = self.read_optional_image(r)?;
        let change = match (op, before, after) {
            (0, None, Some(after)) => RowChange::Insert { after },
            (1, before, Some(after)) => RowChange::Update { before, after },
            (2, Some(before), None) => RowChange::Delete { before },
            (op @ 0..=2, b, a) => {
                return Err(format!(
                    "operation {} with before image {} and after image {}",
                    ["INSERT", "UPDATE", "DELETE"][op as usize],
                    if b.is_some() { "present" } else { "absent" },
                    if a.is_some() { "present" } else { "absent" },
                ))
            }
            (op, _, _) => return Err(format!("operation {op} out of range")),
        };
        Ok(DecodedRow {
            commit_ts: Some(ts),
            change,
        })
    }

    /// Reads the container header; returns the sync marker.
    fn read_header(&self, r: &mut Cursor<'_>) -> std::result::Result<[u8; 16], String> {
        if r.take(4).ok() != Some(&MAGIC[..]) {
            r.pos = 0;
            return Err("not an Avro object container file (wrong magic)".into());
        }
        let mut schema = None;
        let mut codec = None;
        loop {
            let mut count = r.long()?;
            if count == 0 {
                break;
            }
            if count < 0 {
                count = count
                    .checked_neg()
                    .ok_or("metadata block count out of range")?;
                r.long()?; // block size in bytes, not needed
            }
            for _ in 0..count {
                let key = r.bytes()?;
                let value = r.bytes()?;
                match key {
                    b"avro.schema" => schema = Some(value),
                    b"avro.codec" => codec = Some(value),
                    _ => {}
                }
            }
        }
        if let Some(c) = codec.filter(|c| *c != b"null") {
            return Err(format!(
                "avro codec `{}` is not supported (only null)",
                shorten(&String::from_utf8_lossy(c))
            ));
        }
        let schema = schema.ok_or("the header has no avro.schema")?;
        let schema = std::str::from_utf8(schema)
            .ok()
            .and_then(|s| apache_avro::Schema::parse_str(s).ok())
            .ok_or("the header's avro.schema is not a valid Avro schema")?;
        if schema.canonical_form() != self.canonical {
            return Err("the writer schema does not match the table definition".into());
        }
        r.array()
    }
}

/// A bounds-checked reader over a byte slice; errors carry no position (the caller adds
/// [`Cursor::pos`]).
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        if self.buf.len() - self.pos < n {
            return Err(format!(
                "{n} bytes needed, {} left (truncated object?)",
                self.buf.len() - self.pos
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn long(&mut self) -> std::result::Result<i64, String> {
        let mut z = 0u64;
        for shift in (0..70).step_by(7) {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or("varint runs past the end (truncated object?)")?;
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err("varint longer than 64 bits".into());
            }
            z |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(((z >> 1) as i64) ^ -((z & 1) as i64));
            }
        }
        Err("varint longer than 64 bits".into())
    }

    fn bytes(&mut self) -> std::result::Result<&'a [u8], String> {
        let n = self.long()?;
        let n = usize::try_from(n).map_err(|_| format!("negative length {n}"))?;
        self.take(n)
    }

    fn string(&mut self) -> std::result::Result<&'a str, String> {
        let at = self.pos;
        let b = self.bytes()?;
        std::str::from_utf8(b).map_err(|e| {
            self.pos = at;
            format!("string is not UTF-8: {e}")
        })
    }
}

impl TableCodec for AvroTableCodec {
    fn file_header(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.header);
    }

    fn encode(&self, event: &DmlEvent, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        let r = self.encode_block(event, out);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    fn decode(&self, object: &str, bytes: &[u8]) -> Result<Vec<DecodedRow>> {
        let mut r = Cursor { buf: bytes, pos: 0 };
        let at = |pos: usize, e: String| Error::corrupt(object, Position::Offset(pos as u64), e);
        let sync = self.read_header(&mut r).map_err(|e| at(r.pos, e))?;
        let mut rows = Vec::new();
        while r.pos < bytes.len() {
            let block_at = r.pos;
            let (count, size) =
                (|| Ok::<_, String>((r.long()?, r.long()?)))().map_err(|e| at(r.pos, e))?;
            let left = (bytes.len() - r.pos) as u64;
            if count < 0 || size < 0 || size as u64 > left || count as u64 > size as u64 {
                return Err(at(
                    block_at,
                    format!("block header (count {count}, size {size}) does not fit the {left} bytes left (truncated object?)"),
                ));
            }
            let body_end = r.pos + size as usize;
            let mut body = Cursor {
                buf: &bytes[..body_end],
                pos: r.pos,
            };
            for _ in 0..count {
                let row = self.read_record(&mut body).map_err(|e| at(body.pos, e))?;
                rows.push(row);
            }
            if body.pos != body_end {
                return Err(at(
                    body.pos,
                    format!(
                        "{} bytes left over at the end of a block",
                        body_end - body.pos
                    ),
                ));
            }
            r.pos = body_end;
            let marker: [u8; 16] = r.array().map_err(|e| at(r.pos, e))?;
            if marker != sync {
                return Err(at(body_end, "bad sync marker after a block".into()));
            }
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_sanitized_without_collisions() {
        assert_eq!(avro_field_name(0, "id"), "id");
        assert_eq!(avro_field_name(3, "a-b c"), "_3_a_b_c");
        assert_eq!(avro_field_name(4, "_x"), "_4__x");
        assert_eq!(avro_field_name(5, "9z"), "_5_9z");
    }

    #[test]
    fn unsigned_out_of_long_range_is_an_encode_error() {
        let t = TableDef {
            schema: "db".into(),
            table: "t".into(),
            table_id: 1,
            version: Ts(1),
            columns: vec![ColumnDef::new("u", ColumnType::Int).unsigned()],
        };
        let tc = AvroCodec::new().prepare(&t).unwrap();
        let ev = DmlEvent {
            table: std::sync::Arc::new(t),
            partition_id: None,
            commit_ts: Ts(2),
            rows: vec![RowChange::Insert {
                after: vec![Value::UInt(u64::MAX)],
            }],
        };
        let mut out = Vec::new();
        assert!(matches!(
            tc.encode(&ev, &mut out),
            Err(Error::Encode { what, reason }) if what.contains("`u`") && reason.contains("out of range")
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn longs_are_zigzag_varints() {
        for v in [0i64, -1, 1, 63, -64, 64, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            write_long(&mut out, v);
            let mut c = Cursor { buf: &out, pos: 0 };
            assert_eq!(c.long().unwrap(), v);
            assert_eq!(c.pos, out.len());
        }
        let mut out = Vec::new();
        write_long(&mut out, -65);
        assert_eq!(out, [0x81, 0x01]);
    }
}
