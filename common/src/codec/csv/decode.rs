//! Decoding a csv data file: records from the [`RecordReader`], checked against the table
//! (field header, field count, operation, table and schema names), their values parsed by
//! column, and the two halves of an `output-old-value` update joined into one change.
//!
//! Values are read straight from the record's fields: a text or decimal column takes the
//! field's bytes as its [`Text`] (inline up to 24 bytes, so most text values allocate nothing;
//! a longer copied field's buffer moves into it), an integer is read from the bytes, a float
//! from the field's `str`. Anything the direct readers
//! do not take (a `+` sign, more digits than certainly fit, text that does not parse, binary)
//! goes through the general parsers, which also word every error, so messages are those of
//! [`parse_text_value`].

use super::reader::{starts, RawField, RecordReader};
use super::{CsvTableCodec, HEADER_COMMIT_TS, OP_DELETE, OP_INSERT, OP_UPDATE};
use crate::codec::{parse_text_value, shorten, DecodedRow};
use crate::error::{Error, Position, Result};
use crate::event::RowChange;
use crate::options::BinaryEncoding;
use crate::table::ValueKind;
use crate::ts::Ts;
use crate::value::{Text, Value};
use base64::Engine;
use std::borrow::Cow;

impl CsvTableCodec {
    fn corrupt(&self, object: &str, line: u64, reason: impl Into<String>) -> Error {
        Error::corrupt(object, Position::Line(line), reason)
    }

    /// Decodes a whole data file (header included); `object` names it in errors.
    pub(super) fn decode_file(&self, object: &str, bytes: &[u8]) -> Result<Vec<DecodedRow>> {
        let mut reader = RecordReader::new(&self.delim, &self.term, self.quote.as_deref(), bytes);
        let mut fields = Vec::with_capacity(self.header_names.len());
        if self.opts.output_field_header {
            if let Some(at) = reader
                .next(&mut fields)
                .map_err(|(at, e)| self.corrupt(object, reader.line_of(at), e))?
            {
                self.check_header(&fields)
                    .map_err(|e| self.corrupt(object, reader.line_of(at), e))?;
            }
        }
        let expected = self.header_names.len();
        let meta = self.meta_fields();
        let columns = self.table.columns.len();
        // Every record ends with the terminator and takes at least `expected` bytes (its
        // delimiters and terminator), so both bound the rows: reserve once, never regrow.
        // (Its last byte is counted: one SIMD pass, and still an upper bound.)
        let records = self
            .term
            .last()
            .map_or(0, |&b| memchr::memchr_iter(b, bytes).count());
        let mut rows = Vec::with_capacity(records.min(bytes.len() / expected.max(1)));
        // The delete half of an update (output-old-value), waiting for its insert half.
        let mut pending: Option<(Vec<Value>, usize)> = None;
        while let Some(start) = reader
            .next(&mut fields)
            .map_err(|(at, e)| self.corrupt(object, reader.line_of(at), e))?
        {
            let bad = |reason: String| self.corrupt(object, reader.line_of(start), reason);
            if fields.len() != expected {
                return Err(bad(format!(
                    "expected {expected} fields, found {}",
                    fields.len()
                )));
            }
            let (op, commit_ts, is_update) = self.record_meta(&fields).map_err(bad)?;
            let mut image = Vec::with_capacity(columns);
            for (i, f) in fields[meta..].iter_mut().enumerate() {
                image.push(self.value(i, f).map_err(bad)?);
            }
            if let Some((_, at)) = &pending {
                if !(op == OP_INSERT && is_update) {
                    return Err(bad(format!(
                        "the delete half of an update at line {} has no insert half",
                        reader.line_of(*at)
                    )));
                }
            }
            let change = match (op, is_update) {
                (OP_DELETE, true) => {
                    pending = Some((image, start));
                    continue;
                }
                (OP_INSERT, true) => match pending.take() {
                    Some((before, _)) => RowChange::Update {
                        before: Some(before),
                        after: image,
                    },
                    None => {
                        return Err(bad(
                            "the insert half of an update has no delete half before it".into(),
                        ))
                    }
                },
                (OP_INSERT, false) => RowChange::Insert { after: image },
                (OP_DELETE, false) => RowChange::Delete { before: image },
                _ => RowChange::Update {
                    before: None,
                    after: image,
                },
            };
            rows.push(DecodedRow { commit_ts, change });
        }
        if let Some((_, at)) = pending {
            return Err(self.corrupt(
                object,
                reader.line_of(at),
                "the delete half of an update has no insert half (truncated object?)",
            ));
        }
        Ok(rows)
    }

    /// Checks the field-header record names the table's fields.
    fn check_header(&self, fields: &[RawField<'_>]) -> std::result::Result<(), String> {
        let found: Vec<Cow<'_, str>> = fields
            .iter()
            .map(|f| String::from_utf8_lossy(&f.text))
            .collect();
        if found != self.header_names {
            return Err(format!(
                "field header does not match the table: expected {:?}, found {:?}",
                self.header_names, found
            ));
        }
        Ok(())
    }

    /// The operation, commit ts and is-update flag of a record, after checking its table and
    /// schema names.
    fn record_meta(
        &self,
        fields: &[RawField<'_>],
    ) -> std::result::Result<(usize, Option<Ts>, bool), String> {
        let op = match &fields[0].text[..] {
            b"I" => OP_INSERT,
            b"U" => OP_UPDATE,
            b"D" => OP_DELETE,
            other => {
                return Err(format!(
                    "operation `{}` is not I, U or D",
                    shorten(&String::from_utf8_lossy(other))
                ))
            }
        };
        if fields[1].text[..] != *self.table.table.as_bytes()
            || fields[2].text[..] != *self.table.schema.as_bytes()
        {
            return Err(format!(
                "row is for `{}`.`{}`, not `{}`.`{}`",
                shorten(&String::from_utf8_lossy(&fields[2].text)),
                shorten(&String::from_utf8_lossy(&fields[1].text)),
                self.table.schema,
                self.table.table
            ));
        }
        let mut k = 3;
        let commit_ts = if self.opts.include_commit_ts {
            let text = match fields[k].str_text {
                Some(s) => s,
                None => utf8(&fields[k].text, HEADER_COMMIT_TS)?,
            };
            k += 1;
            Some(Ts(text.parse().map_err(|_| {
                format!("commit ts `{}` is not a number", shorten(text))
            })?))
        } else {
            None
        };
        let is_update = if self.opts.output_old_value {
            match &fields[k].text[..] {
                b"true" => true,
                b"false" => false,
                other => {
                    return Err(format!(
                        "is-update `{}` is not true or false",
                        shorten(&String::from_utf8_lossy(other))
                    ))
                }
            }
        } else {
            false
        };
        Ok((op, commit_ts, is_update))
    }

    /// The value of `column` from its field; a text field's owned buffer moves into the value.
    fn value(&self, column: usize, f: &mut RawField<'_>) -> std::result::Result<Value, String> {
        if !f.quoted && f.raw.len() == self.null.len() && starts(f.raw, &self.null) {
            return Ok(Value::Null);
        }
        let name = &self.table.columns[column].name;
        Ok(match self.kinds[column] {
            ValueKind::String => Value::String(owned_text(f, name)?),
            ValueKind::Decimal => Value::Decimal(owned_text(f, name)?),
            ValueKind::Int => match plain_digits(&f.text, 18, true) {
                Some((negative, v)) => Value::Int(if negative { -(v as i64) } else { v as i64 }),
                None => self.general_value(column, f)?,
            },
            ValueKind::UInt => match plain_digits(&f.text, 19, false) {
                Some((_, v)) => Value::UInt(v),
                None => self.general_value(column, f)?,
            },
            ValueKind::Double => match f.str_text.map(str::parse) {
                Some(Ok(v)) => Value::Double(v),
                _ => self.general_value(column, f)?,
            },
            ValueKind::Float => match f.str_text.map(str::parse) {
                Some(Ok(v)) => Value::Float(v),
                _ => self.general_value(column, f)?,
            },
            ValueKind::Bytes => self.general_value(column, f)?,
        })
    }

    /// Any value through the general parsers (binary decoding, [`parse_text_value`]).
    fn general_value(&self, column: usize, f: &RawField<'_>) -> std::result::Result<Value, String> {
        let col = &self.table.columns[column];
        if self.kinds[column] == ValueKind::Bytes {
            let text = &f.text[..];
            let decoded = match self.opts.binary_encoding {
                BinaryEncoding::Base64 => base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|e| e.to_string()),
                BinaryEncoding::Hex => hex::decode(text).map_err(|e| e.to_string()),
            };
            return decoded.map(Value::Bytes).map_err(|e| {
                format!(
                    "column `{}` ({}): `{}` is not {}: {e}",
                    col.name,
                    col.sql_type(),
                    shorten(&String::from_utf8_lossy(text)),
                    match self.opts.binary_encoding {
                        BinaryEncoding::Base64 => "base64",
                        BinaryEncoding::Hex => "hex",
                    }
                )
            });
        }
        let text = match f.str_text {
            Some(s) => s,
            None => utf8(&f.text, &col.name)?,
        };
        parse_text_value(col, text)
    }
}

fn utf8<'a>(b: &'a [u8], what: &str) -> std::result::Result<&'a str, String> {
    std::str::from_utf8(b).map_err(|e| not_utf8(what, e))
}

fn not_utf8(what: &str, e: std::str::Utf8Error) -> String {
    format!("field `{what}` is not UTF-8: {e}")
}

/// Longest text a [`Text`] holds without a heap allocation (its own size).
const INLINE_TEXT: usize = std::mem::size_of::<Text>();

/// A field's text as a [`Text`]: copied from its `str` when the reader has it, else checked
/// for UTF-8. A short copied field is copied again, inline, and its buffer left for the reader
/// to reuse; a long one's buffer moves into the value.
fn owned_text(f: &mut RawField<'_>, what: &str) -> std::result::Result<Text, String> {
    if let Some(s) = f.str_text {
        return Ok(Text::new(s));
    }
    match &f.text {
        Cow::Borrowed(b) => utf8(b, what).map(Text::new),
        Cow::Owned(v) if v.len() <= INLINE_TEXT => utf8(v, what).map(Text::new),
        Cow::Owned(_) => String::from_utf8(std::mem::take(&mut f.text).into_owned())
            .map(Text::from)
            .map_err(|e| not_utf8(what, e.utf8_error())),
    }
}

/// `-?[0-9]{1,max}` (the sign only when `signed`) as its sign and magnitude; `None` for
/// anything else, which the general parser then reads or refuses. `max` digits must fit the
/// target type whatever they are.
fn plain_digits(text: &[u8], max: usize, signed: bool) -> Option<(bool, u64)> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) if signed => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > max {
        return None;
    }
    let mut v = 0u64;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + u64::from(d);
    }
    Some((negative, v))
}

#[cfg(test)]
mod tests {
    use super::plain_digits;

    #[test]
    fn plain_digits_agree_with_the_standard_parsers() {
        for text in [
            "0",
            "-0",
            "7",
            "-7",
            "+7",
            "",
            "-",
            "12x",
            "999999999999999999",
            "-999999999999999999",
            "1000000000000000000",
            "9223372036854775807",
            "18446744073709551615",
            " 1",
            "1 ",
            "٣",
        ] {
            let b = text.as_bytes();
            if let Some((neg, v)) = plain_digits(b, 18, true) {
                let v = if neg { -(v as i64) } else { v as i64 };
                assert_eq!(Ok(v), text.parse::<i64>(), "{text}");
            }
            if let Some((_, v)) = plain_digits(b, 19, false) {
                assert_eq!(Ok(v), text.parse::<u64>(), "{text}");
            }
        }
        assert_eq!(plain_digits(b"-12", 18, true), Some((true, 12)));
        assert_eq!(plain_digits(b"-12", 19, false), None);
        assert_eq!(
            plain_digits(b"9999999999999999999", 19, false),
            Some((false, 9_999_999_999_999_999_999))
        );
    }
}
