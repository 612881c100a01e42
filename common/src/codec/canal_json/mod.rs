//! The `canal-json` protocol (TiCDC's flavour of Alibaba Canal's JSON).
//!
//! # Format
//!
//! One JSON object per row change, each followed by the terminator (`\r\n` by default, as
//! TiCDC's storage sink writes; `\n` is accepted too). Fields, in this order:
//!
//! ```text
//! {"id":0,"database":"db","table":"t","pkNames":["id"],"isDdl":false,"type":"UPDATE",
//!  "es":1700000000123,"ts":1700000000123,"sql":"","sqlType":{"id":4,...},
//!  "mysqlType":{"id":"int",...},"old":[{"id":"1",...}],"data":[{"id":"1",...}],
//!  "_tidb":{"commitTs":445...}}
//! ```
//!
//! - `pkNames` is `null` when the table has no primary key.
//! - `type` is `INSERT`, `UPDATE` or `DELETE`; `data` holds the after image (the before image
//!   for `DELETE`); `old` holds the before image of an `UPDATE` when it is known, else `null`.
//! - `es` is the physical part (ms) of the commit ts. TiCDC writes the encoder's wall time as
//!   `ts`; we write the commit's physical ms there too so output is deterministic.
//! - `_tidb` is present with `enable-tidb-extension` only.
//!
//! # Values
//!
//! Every value is a JSON string, or `null`: integers, FLOAT/DOUBLE (shortest round-trip text,
//! no exponent), DECIMAL and text as their text; binary as ISO-8859-1 (byte `0xNN` becomes the
//! character U+00NN); ENUM as its 1-based element index; SET as its bitmask; BIT as its number.
//! A column whose elements are unknown (a TiCDC schema file has no `ColumnElems`) decodes to
//! that index / bitmask as text.
//! `sqlType` is TiCDC's Java SQL type code (for unsigned integers it depends on the value, as in
//! TiCDC; a NULL takes the code of the low range). Strings are escaped like Go's
//! `encoding/json`: `"`, `\`, control characters, `<`, `>`, `&`, U+2028 and U+2029.
//!
//! # Decoding
//!
//! The decoder accepts Canal's `old` holding only the changed columns (the rest are filled from
//! `data`), several rows per message (`old[i]` pairs with `data[i]`), and skips
//! `TIDB_WATERMARK` messages. Without `_tidb` the decoded `commit_ts` is `None`.
//!
//! Each line first goes to the fast path ([`fast`], scanning with [`scan`]): the message
//! shape TiCDC and this sink write, decoded from borrowed bytes with no per-key allocation.
//! It yields exactly what the general decoder (`serde_json` into maps) yields, or declines and
//! the general decoder takes the line; errors always come from the general decoder.
//!
//! # What is lost, deviations from TiCDC
//!
//! - Without `enable-tidb-extension` the commit ts (only its millisecond part is in `es`).
//! - `mysqlType` carries the full column type (`decimal(10,2)`, `int(11) unsigned`), as TiCDC
//!   does with `content-compatible=true`; TiCDC's default omits the parameters.
//! - `ts` is the commit time, not the encode time.

use super::{
    check_row_len, enum_index, enum_name, mismatch, parse_text_value, set_mask, set_names, shorten,
    write_f32, write_f64, write_int, Codec, DecodedRow, TableCodec,
};
use crate::error::{Error, Position, Result};
use crate::event::{DmlEvent, RowChange};
use crate::options::Protocol;
use crate::table::{ColumnDef, ColumnType, TableDef, ValueKind};
use crate::ts::Ts;
use crate::value::Value;
use fast::Plan;
use serde::Deserialize;
use std::collections::HashMap;

mod fast;
mod scan;

/// The canal-json protocol with its options.
#[derive(Clone, Debug)]
pub struct CanalJsonCodec {
    tidb_extension: bool,
    terminator: String,
}

impl CanalJsonCodec {
    /// `tidb_extension` adds `_tidb.commitTs`; `terminator` ends every message and must be
    /// `\n` or `\r\n` (a JSON line cannot hold a raw LF, so splitting is unambiguous).
    pub fn new(tidb_extension: bool, terminator: &str) -> Result<CanalJsonCodec> {
        if terminator != "\n" && terminator != "\r\n" {
            return Err(Error::param(
                "terminator",
                "canal-json needs `\\n` or `\\r\\n` as the terminator",
            ));
        }
        Ok(CanalJsonCodec {
            tidb_extension,
            terminator: terminator.to_string(),
        })
    }
}

impl Codec for CanalJsonCodec {
    fn protocol(&self) -> Protocol {
        Protocol::CanalJson
    }

    fn prepare(&self, table: &TableDef) -> Result<Box<dyn TableCodec>> {
        Ok(Box::new(CanalTableCodec::new(
            table,
            self.tidb_extension,
            self.terminator.as_bytes(),
        )))
    }
}

/// The Java SQL type code of a column for `value` (TiCDC's mapping).
pub fn java_sql_type(column: &ColumnDef, value: &Value) -> i32 {
    let u = match value {
        Value::UInt(u) => *u,
        _ => 0,
    };
    match column.ty {
        ColumnType::TinyInt if column.unsigned && u > 127 => 5,
        ColumnType::TinyInt => -6,
        ColumnType::SmallInt if column.unsigned && u > 32_767 => 4,
        ColumnType::SmallInt => 5,
        ColumnType::MediumInt => 4,
        ColumnType::Int if column.unsigned && u > 2_147_483_647 => -5,
        ColumnType::Int => 4,
        ColumnType::BigInt if column.unsigned && u > i64::MAX as u64 => 3,
        ColumnType::BigInt => -5,
        ColumnType::Decimal => 3,
        ColumnType::Float => 7,
        ColumnType::Double => 8,
        ColumnType::Bit | ColumnType::Set => -7,
        ColumnType::Year | ColumnType::VarChar | ColumnType::Json => 12,
        ColumnType::Date => 91,
        ColumnType::Time => 92,
        ColumnType::DateTime | ColumnType::Timestamp => 93,
        ColumnType::Char => 1,
        ColumnType::TinyText | ColumnType::Text | ColumnType::MediumText | ColumnType::LongText => {
            2005
        }
        ColumnType::Binary
        | ColumnType::VarBinary
        | ColumnType::TinyBlob
        | ColumnType::Blob
        | ColumnType::MediumBlob
        | ColumnType::LongBlob => 2004,
        ColumnType::Enum => 4,
    }
}

/// The canal-json codec bound to one table version.
pub(super) struct CanalTableCodec {
    table: TableDef,
    kinds: Vec<ValueKind>,
    /// `{"id":0,"database":..,"table":..,"pkNames":..,"isDdl":false,"type":"`
    head: Vec<u8>,
    /// `"name":` per column.
    keys: Vec<Vec<u8>>,
    /// The `sqlType` code per column when it does not depend on the value.
    fixed_sql_type: Vec<Option<i32>>,
    /// `},"mysqlType":{...}`
    mysql_type: Vec<u8>,
    tidb: bool,
    term: Vec<u8>,
    /// Per column, how the decoder's fast path reads its text.
    plans: Vec<Plan>,
    /// Whether the fast path can decode this table's messages (no ENUM/SET column lacks its
    /// elements; see [`fast`]).
    fast: bool,
}

/// Bytes that need escaping in a JSON string (Go's `encoding/json` set, plus 0xE2 which may
/// start U+2028/U+2029): the bytes that end a plain run when scanning (control characters,
/// quote, backslash) and the HTML-sensitive ones.
const ESCAPE: [bool; 256] = {
    let mut t = scan::STOP;
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b'&' as usize] = true;
    t[0xE2] = true;
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

fn write_escaped_byte(out: &mut Vec<u8>, b: u8) {
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        _ => out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[(b >> 4) as usize],
            HEX[(b & 15) as usize],
        ]),
    }
}

/// Appends `s` as a JSON string.
fn write_json_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    out.push(b'"');
    let mut last = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if ESCAPE[c as usize] {
            if c == 0xE2 {
                if b.get(i + 1) == Some(&0x80) && matches!(b.get(i + 2), Some(0xA8 | 0xA9)) {
                    out.extend_from_slice(&b[last..i]);
                    out.extend_from_slice(if b[i + 2] == 0xA8 {
                        b"\\u2028"
                    } else {
                        b"\\u2029"
                    });
                    i += 3;
                    last = i;
                    continue;
                }
            } else {
                out.extend_from_slice(&b[last..i]);
                write_escaped_byte(out, c);
                last = i + 1;
            }
        }
        i += 1;
    }
    out.extend_from_slice(&b[last..]);
    out.push(b'"');
}

/// Appends bytes as a JSON string of ISO-8859-1 characters (byte 0xNN is U+00NN).
fn write_latin1(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for &c in bytes {
        if c >= 0x80 {
            out.extend_from_slice(&[0xC0 | (c >> 6), 0x80 | (c & 0x3F)]);
        } else if ESCAPE[c as usize] {
            write_escaped_byte(out, c);
        } else {
            out.push(c);
        }
    }
    out.push(b'"');
}

impl CanalTableCodec {
    fn new(table: &TableDef, tidb: bool, term: &[u8]) -> CanalTableCodec {
        let mut head = Vec::new();
        head.extend_from_slice(b"{\"id\":0,\"database\":");
        write_json_str(&mut head, &table.schema);
        head.extend_from_slice(b",\"table\":");
        write_json_str(&mut head, &table.table);
        head.extend_from_slice(b",\"pkNames\":");
        let pks = table.pk_indexes();
        if pks.is_empty() {
            head.extend_from_slice(b"null");
        } else {
            head.push(b'[');
            for (n, i) in pks.iter().enumerate() {
                if n > 0 {
                    head.push(b',');
                }
                write_json_str(&mut head, &table.columns[*i].name);
            }
            head.push(b']');
        }
        head.extend_from_slice(b",\"isDdl\":false,\"type\":\"");
        let keys: Vec<Vec<u8>> = table
            .columns
            .iter()
            .map(|c| {
                let mut k = Vec::new();
                write_json_str(&mut k, &c.name);
                k.push(b':');
                k
            })
            .collect();
        let mut mysql_type = b"},\"mysqlType\":{".to_vec();
        for (i, c) in table.columns.iter().enumerate() {
            if i > 0 {
                mysql_type.push(b',');
            }
            mysql_type.extend_from_slice(&keys[i]);
            write_json_str(&mut mysql_type, &c.sql_type());
        }
        mysql_type.push(b'}');
        CanalTableCodec {
            table: table.clone(),
            kinds: table.columns.iter().map(|c| c.value_kind()).collect(),
            head,
            fixed_sql_type: table
                .columns
                .iter()
                .map(|c| {
                    (!(c.unsigned && c.ty.is_integer())).then(|| java_sql_type(c, &Value::Null))
                })
                .collect(),
            keys,
            mysql_type,
            tidb,
            term: term.to_vec(),
            plans: table
                .columns
                .iter()
                .map(|c| Plan::of(c.ty, c.value_kind()))
                .collect(),
            fast: !table
                .columns
                .iter()
                .any(|c| matches!(c.ty, ColumnType::Enum | ColumnType::Set) && c.elems.is_empty()),
        }
    }

    fn write_value(&self, i: usize, v: &Value, out: &mut Vec<u8>) -> Result<()> {
        let col = &self.table.columns[i];
        match (self.kinds[i], v) {
            (_, Value::Null) => out.extend_from_slice(b"null"),
            (ValueKind::Int, Value::Int(x)) => {
                out.push(b'"');
                write_int(out, *x);
                out.push(b'"');
            }
            (ValueKind::UInt, Value::UInt(x)) => {
                out.push(b'"');
                write_int(out, *x);
                out.push(b'"');
            }
            (ValueKind::Float, Value::Float(x)) => {
                out.push(b'"');
                write_f32(out, *x);
                out.push(b'"');
            }
            (ValueKind::Double, Value::Double(x)) => {
                out.push(b'"');
                write_f64(out, *x);
                out.push(b'"');
            }
            (ValueKind::Decimal, Value::Decimal(s)) => write_json_str(out, s),
            (ValueKind::String, Value::String(s)) => {
                let number = match col.ty {
                    ColumnType::Enum => Some(enum_index(col, s)),
                    ColumnType::Set => Some(set_mask(col, s)),
                    _ => None,
                };
                match number {
                    None => write_json_str(out, s),
                    Some(Some(n)) => {
                        out.push(b'"');
                        write_int(out, n);
                        out.push(b'"');
                    }
                    Some(None) => {
                        return Err(super::encode_error(
                            &self.table,
                            Some(col),
                            format!(
                                "`{}` is not a value of {}",
                                shorten(s),
                                shorten(&col.sql_type())
                            ),
                        ))
                    }
                }
            }
            (ValueKind::Bytes, Value::Bytes(b)) => write_latin1(out, b),
            _ => return Err(mismatch(&self.table, col, v)),
        }
        Ok(())
    }

    fn write_image(&self, image: &[Value], out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(b"[{");
        for (i, v) in image.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&self.keys[i]);
            self.write_value(i, v, out)?;
        }
        out.extend_from_slice(b"}]");
        Ok(())
    }

    fn write_row(&self, row: &RowChange, ts: Ts, out: &mut Vec<u8>) -> Result<()> {
        let (kind, old, data): (&[u8], Option<&[Value]>, &[Value]) = match row {
            RowChange::Insert { after } => (b"INSERT", None, after),
            RowChange::Update { before, after } => (b"UPDATE", before.as_deref(), after),
            RowChange::Delete { before } => (b"DELETE", None, before),
        };
        check_row_len(&self.table, data)?;
        if let Some(old) = old {
            check_row_len(&self.table, old)?;
        }
        out.extend_from_slice(&self.head);
        out.extend_from_slice(kind);
        out.extend_from_slice(b"\",\"es\":");
        write_int(out, ts.physical_ms());
        out.extend_from_slice(b",\"ts\":");
        write_int(out, ts.physical_ms());
        out.extend_from_slice(b",\"sql\":\"\",\"sqlType\":{");
        for (i, col) in self.table.columns.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&self.keys[i]);
            let code = self.fixed_sql_type[i].unwrap_or_else(|| java_sql_type(col, &data[i]));
            write_int(out, code);
        }
        out.extend_from_slice(&self.mysql_type);
        out.extend_from_slice(b",\"old\":");
        match old {
            Some(old) => self.write_image(old, out)?,
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"data\":");
        self.write_image(data, out)?;
        if self.tidb {
            out.extend_from_slice(b",\"_tidb\":{\"commitTs\":");
            write_int(out, ts.0);
            out.push(b'}');
        }
        out.push(b'}');
        out.extend_from_slice(&self.term);
        Ok(())
    }

    fn parse_value(
        &self,
        i: usize,
        v: Option<&str>,
        elems: &MessageElems,
    ) -> std::result::Result<Value, String> {
        let Some(text) = v else {
            return Ok(Value::Null);
        };
        let with_elems;
        let col = match elems.get(i).and_then(Option::as_ref) {
            Some(e) => {
                with_elems = ColumnDef {
                    elems: e.clone(),
                    ..self.table.columns[i].clone()
                };
                &with_elems
            }
            None => &self.table.columns[i],
        };
        let bad = |what: &str| {
            format!(
                "column `{}` ({}): `{}` is not {what}",
                col.name,
                col.sql_type(),
                shorten(text)
            )
        };
        match (self.kinds[i], col.ty) {
            (ValueKind::Bytes, _) => text
                .chars()
                .map(|c| u8::try_from(u32::from(c)).map_err(|_| bad("ISO-8859-1 binary")))
                .collect::<std::result::Result<Vec<u8>, String>>()
                .map(Value::Bytes),
            // Elements unknown (TiCDC's schema files carry none): the raw index / bitmask.
            (_, ColumnType::Enum | ColumnType::Set) if col.elems.is_empty() => text
                .parse::<u64>()
                .map(|n| Value::String(n.to_string().into()))
                .map_err(|_| bad("an element index or set bitmask")),
            // An index / bitmask, or (content-compatible) the element names themselves.
            (_, ColumnType::Enum) => match text.parse::<u64>() {
                Ok(n) => enum_name(col, n).map(str::to_owned),
                Err(_) => enum_index(col, text).map(|_| text.to_owned()),
            }
            .map(|s| Value::String(s.into()))
            .ok_or_else(|| bad("an element index")),
            (_, ColumnType::Set) => match text.parse::<u64>() {
                Ok(n) => set_names(col, n),
                Err(_) => set_mask(col, text).map(|_| text.to_owned()),
            }
            .map(|s| Value::String(s.into()))
            .ok_or_else(|| bad("a set bitmask")),
            _ => parse_text_value(col, text),
        }
    }

    fn parse_image(
        &self,
        map: &HashMap<String, Option<String>>,
        fill: Option<&HashMap<String, Option<String>>>,
        elems: &MessageElems,
    ) -> std::result::Result<Vec<Value>, String> {
        if let Some(extra) = map.keys().find(|k| self.table.column_index(k).is_none()) {
            return Err(format!("unknown column `{}`", shorten(extra)));
        }
        let mut image = Vec::with_capacity(self.table.columns.len());
        for (i, col) in self.table.columns.iter().enumerate() {
            let v = match (map.get(&col.name), fill) {
                (Some(v), _) => v,
                (None, Some(f)) if f.contains_key(&col.name) => &f[&col.name],
                _ => return Err(format!("column `{}` is missing", col.name)),
            };
            image.push(self.parse_value(i, v.as_deref(), elems)?);
        }
        Ok(image)
    }

    fn decode_message(
        &self,
        line: &[u8],
        rows: &mut Vec<DecodedRow>,
    ) -> std::result::Result<(), String> {
        let m: Message = serde_json::from_slice(line).map_err(|e| format!("invalid JSON: {e}"))?;
        if m.is_ddl {
            return Err("a DDL message in a data file".into());
        }
        if m.kind == "TIDB_WATERMARK" {
            return Ok(());
        }
        if m.database != self.table.schema || m.table != self.table.table {
            return Err(format!(
                "message is for `{}`.`{}`, not `{}`.`{}`",
                shorten(&m.database),
                shorten(&m.table),
                self.table.schema,
                self.table.table
            ));
        }
        let commit_ts = m.tidb.and_then(|t| t.commit_ts).map(Ts);
        let data = match m.data {
            Some(d) if !d.is_empty() => d,
            _ => return Err("`data` is missing or empty".into()),
        };
        let old = m.old.unwrap_or_default();
        let elems = self.message_elems(m.mysql_type.as_ref());
        for (n, map) in data.iter().enumerate() {
            let image = self.parse_image(map, None, &elems)?;
            let change = match m.kind.as_str() {
                "INSERT" => RowChange::Insert { after: image },
                "DELETE" => RowChange::Delete { before: image },
                "UPDATE" => RowChange::Update {
                    before: match old.get(n) {
                        Some(o) => Some(self.parse_image(o, Some(map), &elems)?),
                        None => None,
                    },
                    after: image,
                },
                other => {
                    return Err(format!(
                        "type `{}` is not INSERT, UPDATE or DELETE",
                        shorten(other)
                    ))
                }
            };
            rows.push(DecodedRow { commit_ts, change });
        }
        Ok(())
    }
}

type Image = HashMap<String, Option<String>>;

/// Per column, the ENUM/SET elements one message's `mysqlType` gives a column whose schema
/// file has none (`content-compatible=true` writes the full type); `None` elsewhere.
type MessageElems = Vec<Option<Vec<String>>>;

impl CanalTableCodec {
    fn message_elems(
        &self,
        mysql_type: Option<&HashMap<String, serde_json::Value>>,
    ) -> MessageElems {
        let Some(types) = mysql_type else {
            return Vec::new();
        };
        self.table
            .columns
            .iter()
            .map(|c| {
                let wanted =
                    matches!(c.ty, ColumnType::Enum | ColumnType::Set) && c.elems.is_empty();
                if !wanted {
                    return None;
                }
                super::elems::elems_of_type(types.get(&c.name)?.as_str()?)
            })
            .collect()
    }
}

/// The parts of a canal-json message the decoder reads.
#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    database: String,
    #[serde(default)]
    table: String,
    #[serde(rename = "isDdl", default)]
    is_ddl: bool,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Option<Vec<Image>>,
    #[serde(default)]
    old: Option<Vec<Image>>,
    #[serde(rename = "mysqlType", default)]
    mysql_type: Option<HashMap<String, serde_json::Value>>,
    #[serde(rename = "_tidb", default)]
    tidb: Option<TidbExtension>,
}

#[derive(Deserialize)]
struct TidbExtension {
    #[serde(rename = "commitTs", default)]
    commit_ts: Option<u64>,
}

impl TableCodec for CanalTableCodec {
    fn file_header(&self, _out: &mut Vec<u8>) {}

    fn encode(&self, event: &DmlEvent, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        for row in &event.rows {
            if let Err(e) = self.write_row(row, event.commit_ts, out) {
                out.truncate(start);
                return Err(e);
            }
        }
        Ok(())
    }

    fn decode(&self, object: &str, bytes: &[u8]) -> Result<Vec<DecodedRow>> {
        let mut rows = Vec::new();
        let mut scratch = fast::Scratch::default();
        let mut rest = bytes;
        let mut line_no = 0u64;
        while !rest.is_empty() {
            line_no += 1;
            let Some(end) = memchr::memchr(b'\n', rest) else {
                return Err(Error::corrupt(
                    object,
                    Position::Line(line_no),
                    "message is missing its terminator (truncated object?)",
                ));
            };
            let line = &rest[..end];
            rest = &rest[end + 1..];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if self.decode_fast(line, &mut scratch, &mut rows).is_some() {
                continue;
            }
            self.decode_message(line, &mut rows)
                .map_err(|e| Error::corrupt(object, Position::Line(line_no), e))?;
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_escape_like_go() {
        let mut out = Vec::new();
        write_json_str(&mut out, "a\"\\<>&\u{1}\u{2028}é\u{2029}\u{e2}\n");
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "\"a\\\"\\\\\\u003c\\u003e\\u0026\\u0001\\u2028é\\u2029\u{e2}\\n\""
        );
        let back: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, "a\"\\<>&\u{1}\u{2028}é\u{2029}\u{e2}\n");
    }

    #[test]
    fn binary_is_latin1() {
        let mut out = Vec::new();
        write_latin1(&mut out, &[0, b'"', 0x7f, 0x80, 0xff]);
        let back: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, "\u{0}\"\u{7f}\u{80}\u{ff}");
    }

    #[test]
    fn unsigned_sql_type_depends_on_value() {
        let c = ColumnDef::new("u", ColumnType::BigInt).unsigned();
        assert_eq!(java_sql_type(&c, &Value::UInt(5)), -5);
        assert_eq!(java_sql_type(&c, &Value::UInt(u64::MAX)), 3);
        let c = ColumnDef::new("u", ColumnType::TinyInt).unsigned();
        assert_eq!(java_sql_type(&c, &Value::UInt(200)), 5);
    }
}
