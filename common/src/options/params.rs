//! The generic parameter parser: named string parameters from a URI query or a TOML file, taken
//! by the option group that knows them, and the value parsers (bool, integer, size, duration,
//! escapes) every group uses.
//!
//! Invariants: a name given twice is an error; a value in the URI query wins over the TOML file;
//! [`Params::finish`] rejects any name no group took; every parser rejects (never clamps) a value
//! out of range, with an [`Error::InvalidParameter`] naming the parameter.

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::time::Duration;

/// Named string parameters with "take" semantics: each parser takes the names it knows, and
/// [`Params::finish`] rejects whatever is left, naming it.
#[derive(Clone, Debug, Default)]
pub struct Params {
    values: BTreeMap<String, String>,
}

impl Params {
    /// Parses a percent-encoded query string. A repeated name is an error.
    pub fn from_query(query: &str) -> Result<Params> {
        let mut p = Params::default();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            p.insert(k.into_owned(), v.into_owned())?;
        }
        Ok(p)
    }

    /// Adds a parameter; a repeated name is an error.
    pub fn insert(&mut self, name: String, value: String) -> Result<()> {
        if self.values.contains_key(&name) {
            return Err(Error::param(name, "given more than once"));
        }
        self.values.insert(name, value);
        Ok(())
    }

    /// Adds the top-level keys of a TOML document that are not already present (the URI wins).
    pub fn merge_toml(&mut self, text: &str, file: &str) -> Result<()> {
        self.merge_toml_skipping(text, file, &[])
    }

    /// [`Params::merge_toml`] leaving out the keys in `skip` (a file that also holds keys the
    /// caller reads elsewhere, such as the consumer's command-line flags).
    pub fn merge_toml_skipping(&mut self, text: &str, file: &str, skip: &[&str]) -> Result<()> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            Error::param(file.to_string(), format!("not valid TOML: {e}"))
        })?;
        for (k, v) in table {
            if skip.contains(&k.as_str()) {
                continue;
            }
            let s = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Float(f) => f.to_string(),
                other => {
                    return Err(Error::param(
                        k,
                        // The type only: the value may be a secret.
                        format!(
                            "in {file}: expected a string, number or bool, got a {}",
                            other.type_str()
                        ),
                    ));
                }
            };
            self.values.entry(k).or_insert(s);
        }
        Ok(())
    }

    /// Removes and returns a parameter.
    pub fn take(&mut self, name: &str) -> Option<String> {
        self.values.remove(name)
    }

    /// True when `name` is present (and not yet taken).
    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// True when nothing is left.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Errors on the first parameter nobody took, listing the names that are understood.
    pub fn finish(self, known: &[&str]) -> Result<()> {
        match self.values.into_keys().next() {
            None => Ok(()),
            Some(name) => Err(Error::param(
                name,
                format!("unknown parameter; known are: {}", known.join(", ")),
            )),
        }
    }
}

/// Parses `true|false|1|0`.
pub fn parse_bool(name: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(Error::param(name, format!("`{v}` is not true or false"))),
    }
}

/// Parses an integer in `min..=max`.
pub fn parse_int(name: &str, v: &str, min: u64, max: u64) -> Result<u64> {
    let n: u64 = v
        .trim()
        .parse()
        .map_err(|_| Error::param(name, format!("`{v}` is not a whole number")))?;
    if n < min || n > max {
        return Err(Error::param(
            name,
            format!("{n} is out of range {min}..={max}"),
        ));
    }
    Ok(n)
}

/// Parses a size (`67108864`, `64MiB`, `64MB`, `1GiB`) in `min..=max` bytes.
pub fn parse_size(name: &str, v: &str, min: u64, max: u64) -> Result<u64> {
    let n = match v.trim().parse::<u64>() {
        Ok(n) => n,
        Err(_) => v
            .trim()
            .parse::<bytesize::ByteSize>()
            .map_err(|e| {
                Error::param(
                    name,
                    format!("`{v}` is not a size ({e}); write bytes or e.g. 64MiB"),
                )
            })?
            .as_u64(),
    };
    if n < min || n > max {
        return Err(Error::param(
            name,
            format!("{n} bytes is out of range {min}..={max}"),
        ));
    }
    Ok(n)
}

/// Parses a duration (`5s`, `500ms`, `1m 30s`; a bare number is seconds) in `min..=max`.
pub fn parse_duration(name: &str, v: &str, min: Duration, max: Duration) -> Result<Duration> {
    let d = match v.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::from_secs_f64(secs),
        _ => humantime::parse_duration(v.trim()).map_err(|e| {
            Error::param(
                name,
                format!("`{v}` is not a duration ({e}); write e.g. 5s or 500ms"),
            )
        })?,
    };
    if d < min || d > max {
        return Err(Error::param(
            name,
            format!("{d:?} is out of range {min:?}..={max:?}"),
        ));
    }
    Ok(d)
}

/// Turns the escapes `\t`, `\r`, `\n` and `\\` into their characters (delimiter, terminator).
pub(super) fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}
