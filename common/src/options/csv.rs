//! [`CsvOptions`]: the csv protocol's options (TiCDC's names and defaults) and the rules between
//! them (delimiter, quote, terminator and null string must not be confused with one another).

use super::params::{parse_bool, unescape, Params};
use crate::error::{Error, Result};

/// Default csv null string: TiCDC's default, MySQL's `LOAD DATA` convention.
pub const DEFAULT_NULL: &str = "\\N";
/// Default csv record terminator: TiCDC's default.
pub const DEFAULT_TERMINATOR: &str = "\r\n";

/// How csv renders binary column values.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum BinaryEncoding {
    /// Standard base64 with padding (TiCDC's default).
    Base64,
    /// Lower-case hex.
    Hex,
}

/// The csv protocol's options (TiCDC's names and defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvOptions {
    /// Field delimiter, 1 to 3 characters, no CR/LF, not containing the quote.
    pub delimiter: String,
    /// Quote character; `None` disables quoting.
    pub quote: Option<char>,
    /// The text written for NULL.
    pub null: String,
    /// Write the commit ts column after the schema column.
    pub include_commit_ts: bool,
    /// Binary column rendering.
    pub binary_encoding: BinaryEncoding,
    /// Write an update as a delete of the old image plus an insert of the new one.
    pub output_old_value: bool,
    /// Write a header line naming the columns at the start of each file.
    pub output_field_header: bool,
    /// Record terminator.
    pub terminator: String,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: ",".into(),
            quote: Some('"'),
            null: DEFAULT_NULL.into(),
            include_commit_ts: false,
            binary_encoding: BinaryEncoding::Base64,
            output_old_value: false,
            output_field_header: false,
            terminator: DEFAULT_TERMINATOR.into(),
        }
    }
}

impl CsvOptions {
    /// Checks the combination; errors name the parameter at fault.
    pub fn validate(&self) -> Result<()> {
        let n = self.delimiter.chars().count();
        if !(1..=3).contains(&n) {
            return Err(Error::param(
                "delimiter",
                format!("must be 1 to 3 characters, got {n}"),
            ));
        }
        if self.delimiter.contains(['\r', '\n']) {
            return Err(Error::param("delimiter", "must not contain CR or LF"));
        }
        if let Some(q) = self.quote {
            if q == '\r' || q == '\n' {
                return Err(Error::param("quote", "must not be CR or LF"));
            }
            if self.delimiter.contains(q) {
                return Err(Error::param(
                    "delimiter",
                    format!("must not contain the quote character `{q}`"),
                ));
            }
            if self.terminator.contains(q) {
                return Err(Error::param(
                    "terminator",
                    format!("must not contain the quote character `{q}`"),
                ));
            }
        }
        let t = self.terminator.chars().count();
        if !(1..=3).contains(&t) {
            return Err(Error::param(
                "terminator",
                format!("must be 1 to 3 characters, got {t}"),
            ));
        }
        if self.terminator.contains(&self.delimiter) || self.delimiter.contains(&self.terminator) {
            return Err(Error::param("terminator", "must differ from the delimiter"));
        }
        if self.null.contains(['\r', '\n']) {
            return Err(Error::param("null", "must not contain CR or LF"));
        }
        if !self.null.is_empty() && self.null.contains(&self.delimiter) {
            return Err(Error::param("null", "must not contain the delimiter"));
        }
        Ok(())
    }

    /// Takes the csv options out of `params` into `self`, in the order the sink's parser always
    /// took them (so the first bad value reported stays the same). Validation is the caller's
    /// ([`CsvOptions::validate`] applies to csv only).
    pub(super) fn take_from(&mut self, params: &mut Params) -> Result<()> {
        if let Some(v) = params.take("delimiter") {
            self.delimiter = unescape(&v);
        }
        if let Some(v) = params.take("quote") {
            let mut chars = v.chars();
            self.quote = match (chars.next(), chars.next()) {
                (None, _) => None,
                (Some(c), None) => Some(c),
                _ => {
                    return Err(Error::param(
                        "quote",
                        format!("must be empty or one character, got `{v}`"),
                    ))
                }
            };
        }
        if let Some(v) = params.take("null") {
            self.null = v;
        }
        if let Some(v) = params.take("include-commit-ts") {
            self.include_commit_ts = parse_bool("include-commit-ts", &v)?;
        }
        if let Some(v) = params.take("binary-encoding-method") {
            self.binary_encoding = match v.as_str() {
                "base64" => BinaryEncoding::Base64,
                "hex" => BinaryEncoding::Hex,
                _ => {
                    return Err(Error::param(
                        "binary-encoding-method",
                        format!("`{v}` is not one of base64, hex"),
                    ))
                }
            };
        }
        if let Some(v) = params.take("output-old-value") {
            self.output_old_value = parse_bool("output-old-value", &v)?;
        }
        if let Some(v) = params.take("output-field-header") {
            self.output_field_header = parse_bool("output-field-header", &v)?;
        }
        if let Some(v) = params.take("terminator") {
            self.terminator = unescape(&v);
        }
        Ok(())
    }
}
