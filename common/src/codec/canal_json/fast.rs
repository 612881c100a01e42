//! The canal-json fast path: one message of the shape TiCDC and this sink write, decoded
//! straight from the line's bytes.
//!
//! The general decoder ([`super::CanalTableCodec::decode_message`]) builds a `serde_json` map
//! per row image (a `String` per column name and per value, a hash per lookup) and parses the
//! `mysqlType` object into JSON values. This path scans the line once with [`Scan`], maps
//! each image key to its column by position (keys come in column order; any order is
//! accepted), borrows values without escapes from the line and allocates only the decoded
//! values themselves.
//!
//! # Invariant
//!
//! The fast path either produces exactly the rows the general decoder produces for the line,
//! or declines (`None`) and leaves no rows behind; it never reports an error itself. It
//! declines anything outside the plain shape: invalid JSON, a line that is not UTF-8, escapes in keys, duplicate message fields, an unknown or missing column,
//! a value that does not parse, a DDL or watermark message, another database or table, a
//! surrogate escape. The general decoder then accepts or rejects the line with its own message,
//! so error messages and every edge of the format stay where they were. Tables with an ENUM or
//! SET column whose elements the schema file does not give always take the general path (it
//! reads them from the message's `mysqlType`).

use super::scan::{RawStr, Scan};
use super::CanalTableCodec;
use crate::codec::DecodedRow;
use crate::event::RowChange;
use crate::table::{ColumnType, ValueKind};
use crate::ts::Ts;
use crate::value::Value;
use std::borrow::Cow;

/// How the fast path turns one column's text into a value.
#[derive(Clone, Copy, Debug)]
pub(super) enum Plan {
    /// The text is the value (`Value::String`).
    Text,
    /// The text is the value (`Value::Decimal`).
    Decimal,
    /// `Value::Int` from the text.
    Int,
    /// `Value::UInt` from the text.
    UInt,
    /// `Value::Float` from the text.
    Float,
    /// `Value::Double` from the text.
    Double,
    /// Binary, ENUM, SET: the general value parser.
    General,
}

impl Plan {
    /// The plan for a column of `ty` and `kind`.
    pub(super) fn of(ty: ColumnType, kind: ValueKind) -> Plan {
        match (kind, ty) {
            (_, ColumnType::Enum | ColumnType::Set) | (ValueKind::Bytes, _) => Plan::General,
            (ValueKind::String, _) => Plan::Text,
            (ValueKind::Decimal, _) => Plan::Decimal,
            (ValueKind::Int, _) => Plan::Int,
            (ValueKind::UInt, _) => Plan::UInt,
            (ValueKind::Float, _) => Plan::Float,
            (ValueKind::Double, _) => Plan::Double,
        }
    }
}

/// One column's entry in one image as read: absent, JSON `null`, or a string.
#[derive(Clone, Default)]
pub(super) enum Slot<'a> {
    #[default]
    Absent,
    Null,
    Text(RawStr<'a>),
}

/// Space reused across the messages of one file: the slots of every image of a message,
/// `data` images first, then `old` images.
#[derive(Default)]
pub(super) struct Scratch<'a> {
    slots: Vec<Slot<'a>>,
}

/// Message fields seen so far (a repeated field declines the line).
#[derive(Default)]
struct Seen {
    database: bool,
    table: bool,
    is_ddl: bool,
    kind: bool,
    data: bool,
    old: bool,
    mysql_type: bool,
    tidb: bool,
}

fn first(flag: &mut bool) -> Option<()> {
    (!std::mem::replace(flag, true)).then_some(())
}

impl CanalTableCodec {
    /// Decodes one message line into `rows`, or declines (see the module doc).
    pub(super) fn decode_fast<'a>(
        &self,
        line: &'a [u8],
        scratch: &mut Scratch<'a>,
        rows: &mut Vec<DecodedRow>,
    ) -> Option<()> {
        if !self.fast {
            return None;
        }
        let text = std::str::from_utf8(line).ok()?;
        let start = rows.len();
        let r = self.decode_fast_message(text, scratch, rows);
        if r.is_none() {
            rows.truncate(start);
        }
        r
    }

    fn decode_fast_message<'a>(
        &self,
        text: &'a str,
        scratch: &mut Scratch<'a>,
        rows: &mut Vec<DecodedRow>,
    ) -> Option<()> {
        let n = self.table.columns.len();
        let slots = &mut scratch.slots;
        slots.clear();
        let mut s = Scan::new(text);
        let mut seen = Seen::default();
        let mut kind: Option<RawStr<'a>> = None;
        let mut data_images = 0usize;
        let mut old_images: Option<usize> = None;
        let mut commit_ts: Option<u64> = None;
        if s.open(b'{', b'}')? {
            return None;
        }
        loop {
            let key = s.string()?;
            if key.escaped {
                return None;
            }
            s.eat(b':')?;
            match key.raw {
                "database" => {
                    first(&mut seen.database)?;
                    self.expect_name(&mut s, &self.table.schema)?;
                }
                "table" => {
                    first(&mut seen.table)?;
                    self.expect_name(&mut s, &self.table.table)?;
                }
                "isDdl" => {
                    first(&mut seen.is_ddl)?;
                    if s.boolean()? {
                        return None;
                    }
                }
                "type" => {
                    first(&mut seen.kind)?;
                    kind = Some(s.string()?);
                }
                "data" => {
                    first(&mut seen.data)?;
                    // `old` may come first: keep `data` images in front of the slots.
                    let before = slots.len();
                    let images = self.images(&mut s, slots)?;
                    if images == 0 {
                        return None;
                    }
                    let data_len = slots.len() - before;
                    slots.rotate_right(data_len);
                    data_images = images;
                }
                "old" => {
                    first(&mut seen.old)?;
                    old_images = Some(self.images(&mut s, slots)?);
                }
                "mysqlType" => {
                    first(&mut seen.mysql_type)?;
                    // The general decoder reads it into JSON values (a number out of `f64`'s
                    // range is an error there): accept only `null` or strings.
                    string_map(&mut s)?;
                }
                "_tidb" => {
                    first(&mut seen.tidb)?;
                    commit_ts = tidb_commit_ts(&mut s)?;
                }
                _ => s.skip_value(0)?,
            }
            if !s.more(b'}')? {
                break;
            }
        }
        // A missing `database` or `table` reads as "" in the general decoder: decline.
        if !s.at_end() || data_images == 0 || !seen.database || !seen.table {
            return None;
        }
        let kind = match kind.filter(|k| !k.escaped)?.raw {
            "INSERT" => 0,
            "UPDATE" => 1,
            "DELETE" => 2,
            _ => return None,
        };
        let commit_ts = commit_ts.map(Ts);
        let old_images = old_images.unwrap_or(0);
        for d in 0..data_images {
            let after = self.image(&slots[d * n..(d + 1) * n], None)?;
            let change = match kind {
                0 => RowChange::Insert { after },
                2 => RowChange::Delete { before: after },
                _ => {
                    let before = if d < old_images {
                        let o = (data_images + d) * n;
                        Some(self.image(&slots[o..o + n], Some(&after))?)
                    } else {
                        None
                    };
                    RowChange::Update { before, after }
                }
            };
            rows.push(DecodedRow { commit_ts, change });
        }
        Some(())
    }

    /// Reads a string value and checks it is `want`.
    fn expect_name(&self, s: &mut Scan<'_>, want: &str) -> Option<()> {
        let v = s.string()?;
        (!v.escaped && v.raw == want).then_some(())
    }

    /// Reads `null` or an array of images (objects of column name to string or null),
    /// appending one row of slots per image; returns how many images it read.
    fn images<'a>(&self, s: &mut Scan<'a>, slots: &mut Vec<Slot<'a>>) -> Option<usize> {
        if s.null()? || s.open(b'[', b']')? {
            return Some(0);
        }
        let n = self.table.columns.len();
        let mut count = 0;
        loop {
            let base = slots.len();
            slots.resize(base + n, Slot::Absent);
            let row = &mut slots[base..];
            count += 1;
            if !s.open(b'{', b'}')? {
                let mut next = 0usize;
                loop {
                    let key = s.string()?;
                    if key.escaped {
                        return None;
                    }
                    let i = self.column_of(key.raw, next)?;
                    next = i + 1;
                    s.eat(b':')?;
                    // A repeated key: the last one counts, as in the general decoder's map.
                    row[i] = if s.null()? {
                        Slot::Null
                    } else {
                        Slot::Text(s.string()?)
                    };
                    if !s.more(b'}')? {
                        break;
                    }
                }
            }
            if !s.more(b']')? {
                return Some(count);
            }
        }
    }

    /// The column named `name`, trying `guess` (the one after the previous key) first.
    fn column_of(&self, name: &str, guess: usize) -> Option<usize> {
        let cols = &self.table.columns;
        if cols.get(guess).is_some_and(|c| c.name == name) {
            return Some(guess);
        }
        cols.iter().position(|c| c.name == name)
    }

    /// One image from its slots; an absent column takes `fill`'s value (the `data` image,
    /// for an `old` image holding only the changed columns).
    fn image(&self, slots: &[Slot<'_>], fill: Option<&[Value]>) -> Option<Vec<Value>> {
        let mut image = Vec::with_capacity(slots.len());
        for (i, slot) in slots.iter().enumerate() {
            image.push(match slot {
                Slot::Absent => fill?[i].clone(),
                Slot::Null => Value::Null,
                Slot::Text(raw) => self.fast_value(i, raw.value()?)?,
            });
        }
        Some(image)
    }

    /// The value of column `i` from its text, as the general decoder's `parse_value` reads it.
    fn fast_value(&self, i: usize, text: Cow<'_, str>) -> Option<Value> {
        Some(match self.plans[i] {
            Plan::Text => Value::String(text.into()),
            Plan::Decimal => Value::Decimal(text.into()),
            Plan::Int => Value::Int(text.parse().ok()?),
            Plan::UInt => Value::UInt(text.parse().ok()?),
            Plan::Float => Value::Float(text.parse().ok()?),
            Plan::Double => Value::Double(text.parse().ok()?),
            Plan::General => self.parse_value(i, Some(&text), &Vec::new()).ok()?,
        })
    }
}

/// Reads the `_tidb` value: `null`, or an object whose `commitTs` is `null` or a `u64`.
fn tidb_commit_ts(s: &mut Scan<'_>) -> Option<Option<u64>> {
    if s.null()? || s.open(b'{', b'}')? {
        return Some(None);
    }
    let mut ts = None;
    let mut seen = false;
    loop {
        let key = s.string()?;
        if key.escaped {
            return None;
        }
        s.eat(b':')?;
        if key.raw == "commitTs" {
            first(&mut seen)?;
            ts = if s.null()? { None } else { Some(s.u64()?) };
        } else {
            s.skip_value(0)?;
        }
        if !s.more(b'}')? {
            return Some(ts);
        }
    }
}

/// Reads `null` or an object whose values are all strings.
fn string_map(s: &mut Scan<'_>) -> Option<()> {
    if s.null()? || s.open(b'{', b'}')? {
        return Some(());
    }
    loop {
        s.string()?;
        s.eat(b':')?;
        s.string()?;
        if !s.more(b'}')? {
            return Some(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::canal_json::CanalJsonCodec;
    use crate::codec::{Codec, TableCodec};
    use crate::event::DmlEvent;
    use crate::table::{ColumnDef, TableDef};
    use proptest::prelude::*;
    use proptest::sample::Index;
    use std::sync::Arc;

    fn table() -> TableDef {
        use ColumnType::*;
        TableDef {
            schema: "db".into(),
            table: "t".into(),
            table_id: 1,
            version: Ts(1),
            columns: vec![
                ColumnDef::new("id", Int).pk(),
                ColumnDef::new("u", BigInt).unsigned(),
                ColumnDef::new("s", VarChar),
                ColumnDef::new("d", Decimal),
                ColumnDef::new("f", Float),
                ColumnDef::new("x", Double),
                ColumnDef::new("e", Enum).with_elems(["a", "b"]),
                ColumnDef::new("st", Set).with_elems(["p", "q"]),
                ColumnDef::new("b", Blob),
            ],
        }
    }

    fn codec() -> CanalTableCodec {
        CanalTableCodec::new(&table(), true, b"\n")
    }

    /// Decodes `line` both ways: when the fast path takes it, its rows must be the general
    /// decoder's. Returns whether the fast path took it.
    fn both(c: &CanalTableCodec, line: &str) -> bool {
        both_bytes(c, line.as_bytes())
    }

    fn both_bytes(c: &CanalTableCodec, bytes: &[u8]) -> bool {
        let line = String::from_utf8_lossy(bytes);
        let mut fast_rows = vec![];
        let mut scratch = Scratch::default();
        let took = c.decode_fast(bytes, &mut scratch, &mut fast_rows).is_some();
        let mut slow_rows = vec![];
        let slow = c.decode_message(bytes, &mut slow_rows);
        if took {
            assert!(
                slow.is_ok(),
                "fast path took a line the general decoder refuses ({slow:?}): {line}"
            );
            assert_eq!(fast_rows, slow_rows, "{line}");
        } else {
            assert!(
                fast_rows.is_empty(),
                "a declined line left rows behind: {line}"
            );
        }
        took
    }

    /// The encoder's lines for an insert, an update with and without its before image, and a
    /// delete, with `_tidb`.
    fn encoded_lines(c: &CanalTableCodec) -> Vec<Vec<u8>> {
        let event = DmlEvent {
            table: Arc::new(table()),
            partition_id: None,
            commit_ts: Ts(445_000_000_000_000_001),
            rows: vec![
                RowChange::Insert {
                    after: row(1, "plain"),
                },
                RowChange::Update {
                    before: Some(row(2, "a\"b\\c<\u{2028}é\n\t")),
                    after: row(2, "after"),
                },
                RowChange::Update {
                    before: None,
                    after: vec![Value::Null; 9],
                },
                RowChange::Delete {
                    before: row(4, "gone"),
                },
            ],
        };
        let mut out = Vec::new();
        c.encode(&event, &mut out).unwrap();
        out.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    }

    /// One edit of a line, biased to the bytes that shape JSON.
    #[derive(Clone, Debug)]
    enum Edit {
        Insert(Index, u8),
        Replace(Index, u8),
        Delete(Index),
        /// Copies `len` bytes from one place to another (repeated keys, values, fields).
        Copy(Index, Index, usize),
        /// Inserts a byte right after one of the line's `:`, `,`, `[` or `{` (where whitespace,
        /// a digit, a sign or a quote keep the line close to valid).
        AfterToken(Index, u8),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let byte = prop_oneof![
            proptest::sample::select(b"{}[]\":,\\ -.0123456789eEnultrfaseu".to_vec()),
            any::<u8>(),
        ];
        prop_oneof![
            (any::<Index>(), byte.clone()).prop_map(|(i, b)| Edit::Insert(i, b)),
            (any::<Index>(), byte).prop_map(|(i, b)| Edit::Replace(i, b)),
            any::<Index>().prop_map(Edit::Delete),
            (any::<Index>(), any::<Index>(), 1usize..40).prop_map(|(a, b, n)| Edit::Copy(a, b, n)),
            (
                any::<Index>(),
                proptest::sample::select(b" \t0123456789-+.eE\"n".to_vec())
            )
                .prop_map(|(i, b)| Edit::AfterToken(i, b)),
        ]
    }

    fn apply(mut b: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
        for e in edits {
            if b.is_empty() {
                break;
            }
            match e {
                Edit::Insert(i, x) => b.insert(i.index(b.len() + 1), *x),
                Edit::Replace(i, x) => {
                    let i = i.index(b.len());
                    b[i] = *x;
                }
                Edit::Delete(i) => {
                    b.remove(i.index(b.len()));
                }
                Edit::AfterToken(i, x) => {
                    let tokens: Vec<usize> = (0..b.len())
                        .filter(|&k| matches!(b[k], b':' | b',' | b'[' | b'{'))
                        .collect();
                    if !tokens.is_empty() {
                        b.insert(tokens[i.index(tokens.len())] + 1, *x);
                    }
                }
                Edit::Copy(from, to, n) => {
                    let from = from.index(b.len());
                    let piece = b[from..(from + n).min(b.len())].to_vec();
                    let to = to.index(b.len() + 1);
                    b.splice(to..to, piece);
                }
            }
        }
        b
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Differential check of the invariant on damaged and reshaped lines: whenever the
        /// fast path takes a line, the general decoder accepts it with the same rows.
        #[test]
        fn edited_lines_decode_alike_or_are_declined(
            which in 0usize..4,
            edits in proptest::collection::vec(edit(), 1..4),
        ) {
            let c = codec();
            let lines = encoded_lines(&c);
            let line = apply(lines[which % lines.len()].clone(), &edits);
            both_bytes(&c, &line);
        }
    }

    fn row(i: i64, s: &str) -> Vec<Value> {
        vec![
            Value::Int(i),
            Value::UInt(u64::MAX - i as u64),
            Value::String(s.into()),
            Value::Decimal("-12.50".into()),
            Value::Float(0.1),
            Value::Double(-2.5e-7),
            Value::String("b".into()),
            Value::String("p,q".into()),
            Value::Bytes(vec![0, 0x80, 0xff, b'"']),
        ]
    }

    #[test]
    fn the_fast_path_decodes_what_the_encoder_writes_like_the_general_decoder() {
        let t = Arc::new(table());
        let c = codec();
        let event = DmlEvent {
            table: t.clone(),
            partition_id: None,
            commit_ts: Ts(445_000_000_000_000_001),
            rows: vec![
                RowChange::Insert {
                    after: row(1, "plain"),
                },
                RowChange::Insert {
                    after: vec![Value::Null; 9],
                },
                RowChange::Update {
                    before: Some(row(2, "a\"b\\c<\u{2028}é\n\t")),
                    after: row(2, "after"),
                },
                RowChange::Update {
                    before: None,
                    after: row(3, ""),
                },
                RowChange::Delete {
                    before: row(4, "gone"),
                },
            ],
        };
        let mut out = Vec::new();
        c.encode(&event, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        for line in text.lines() {
            assert!(both(&c, line), "the fast path declined: {line}");
        }
        // The same through the codec's own entry point.
        let prepared = CanalJsonCodec::new(true, "\n")
            .unwrap()
            .prepare(&t)
            .unwrap();
        assert_eq!(prepared.decode("o", text.as_bytes()).unwrap().len(), 5);
    }

    const HEAD: &str = r#"{"id":0,"database":"db","table":"t","pkNames":["id"],"isDdl":false"#;
    const DATA: &str =
        r#"[{"id":"1","u":"2","s":"x","d":"1.5","f":"0.5","x":"1","e":"1","st":"3","b":"\u00ff"}]"#;

    #[test]
    fn the_fast_path_takes_other_shapes_of_valid_messages() {
        let c = codec();
        for line in [
            // `old` before `data`, holding only the changed column.
            format!(r#"{HEAD},"type":"UPDATE","old":[{{"s":"before"}}],"data":{DATA}}}"#),
            // Keys in another order, whitespace, unknown fields, escapes, `\/`.
            r#" { "type" : "INSERT" , "extra" : {"a":[1,-2.5e3,true,null,"\u0041"]}, "data" : [ { "st":null,"s":"a\/b\u00e9\"", "id":"7","u":"0","d":"0","f":"1","x":"2","e":"a","b":"" } ] , "database":"db","table":"t","mysqlType":{"id":"int"},"_tidb":{"commitTs":5,"other":[1]} } "#.to_string(),
            // Two rows, one `old` image: the second update has no before image.
            format!(
                r#"{HEAD},"type":"UPDATE","data":[{0},{0}],"old":[{{"id":"9"}}]}}"#,
                &DATA[1..DATA.len() - 1]
            ),
            // A repeated column key: the last one counts.
            format!(
                r#"{HEAD},"type":"INSERT","data":[{{"id":"1","id":"2",{}}}"#,
                &DATA[11..]
            ),
            format!(r#"{HEAD},"type":"DELETE","data":{DATA},"old":null,"_tidb":null}}"#),
        ] {
            assert!(both(&c, &line), "the fast path declined: {line}");
        }
    }

    #[test]
    fn the_fast_path_declines_what_it_does_not_read_like_the_general_decoder() {
        let c = codec();
        let ok = format!(r#"{HEAD},"type":"INSERT","data":{DATA}}}"#);
        assert!(both(&c, &ok));
        for line in [
            ok.replace(r#""id":"1""#, r#""id":"1x""#),
            ok.replace(r#""id":"1","#, ""),
            ok.replace(r#""id":"1""#, r#""id":"1","zz":"1""#),
            ok.replace(r#""id":"1""#, r#""id":1"#),
            ok.replace(r#""e":"1""#, r#""e":"7""#),
            ok.replace("INSERT", "FOO"),
            ok.replace("INSERT", "TIDB_WATERMARK"),
            ok.replace(r#""isDdl":false"#, r#""isDdl":true"#),
            ok.replace(r#""isDdl":false"#, r#""isDdl":null"#),
            ok.replace(r#""database":"db""#, r#""database":"other""#),
            ok.replace(r#""database":"db","#, ""),
            ok.replace(DATA, "[]"),
            ok.replace(DATA, "null"),
            ok.replace(r#""type":"INSERT""#, r#""type":"INSERT","type":"INSERT""#),
            ok.replace(
                r#""type":"INSERT""#,
                &format!(r#""type":"INSERT","data":{DATA}"#),
            ),
            ok.replace(
                r#""type":"INSERT""#,
                r#""type":"INSERT","old":null,"old":null"#,
            ),
            ok.replace(r#""s":"x""#, r#""s":"\ud83d\ude00""#),
            ok.replace(r#""s":"x""#, r#""s":"\x""#),
            ok.replace(r#""s":"x""#, "\"s\":\"a\tb\""),
            format!(r#"{ok} x"#),
            ok.replace(r#""pkNames":["id"]"#, r#""pkNames":[01]"#),
            ok.replace(r#""pkNames":["id"]"#, r#""mysqlType":{"id":1e400}"#),
            ok.replace(r#""pkNames":["id"]"#, r#""_tidb":{"commitTs":1.5}"#),
            ok.replace(r#""pkNames":["id"]"#, r#""_tidb":{"commitTs":-1}"#),
            ok[..ok.len() - 1].to_string(),
        ] {
            assert!(!both(&c, &line), "the fast path took: {line}");
        }
    }

    #[test]
    fn enum_or_set_without_elements_always_takes_the_general_path() {
        let mut t = table();
        t.columns[6].elems.clear();
        let c = CanalTableCodec::new(&t, true, b"\n");
        let line = format!(r#"{HEAD},"type":"INSERT","data":{DATA}}}"#);
        assert!(!both(&c, &line));
    }
}
