//! [`SchemaFilePath`]: where a schema file lives, table level or database level, its name
//! carrying the table version and the checksum (exactly 10 digits) of the canonical definition.

use super::{parse_u64, validate_name, META_DIR};
use crate::error::{Error, Result};
use crate::ts::Ts;
use std::fmt::Write as _;

/// A schema file: table level `<schema>/<table>/meta/schema_<version>_<crc>.json` or database
/// level `<schema>/meta/schema_<version>_<crc>.json`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SchemaFilePath {
    /// Database name.
    pub schema: String,
    /// Table name; `None` for a database-level file.
    pub table: Option<String>,
    /// Table version.
    pub version: Ts,
    /// CRC-32 of the canonical definition (see [`crate::schema_file`]).
    pub checksum: u32,
}

impl SchemaFilePath {
    /// The full path.
    pub fn build(&self) -> Result<String> {
        validate_name(&self.schema)?;
        let mut s = self.schema.clone();
        if let Some(t) = &self.table {
            validate_name(t)?;
            s.push('/');
            s.push_str(t);
        }
        let _ = write!(
            s,
            "/meta/schema_{}_{:010}.json",
            self.version.0, self.checksum
        );
        Ok(s)
    }

    /// The directory whose listing finds every schema file of a table (`None`: of the database).
    pub fn meta_prefix(schema: &str, table: Option<&str>) -> Result<String> {
        validate_name(schema)?;
        Ok(match table {
            Some(t) => {
                validate_name(t)?;
                format!("{schema}/{t}/meta/")
            }
            None => format!("{schema}/meta/"),
        })
    }

    /// Parses a schema file path.
    pub fn parse(path: &str) -> Result<SchemaFilePath> {
        let segs: Vec<&str> = path.split('/').collect();
        let (schema, table, meta, name) = match segs.as_slice() {
            [s, m, n] => (*s, None, *m, *n),
            [s, t, m, n] => (*s, Some(*t), *m, *n),
            _ => {
                return Err(Error::path(
                    path,
                    "expected `<schema>[/<table>]/meta/schema_<version>_<checksum>.json`",
                ))
            }
        };
        if meta != META_DIR {
            return Err(Error::path(
                path,
                format!("expected a `meta` directory, found `{meta}`"),
            ));
        }
        validate_name(schema).map_err(|e| Error::path(path, e.to_string()))?;
        if let Some(t) = table {
            validate_name(t).map_err(|e| Error::path(path, e.to_string()))?;
        }
        let body = name
            .strip_prefix("schema_")
            .and_then(|n| n.strip_suffix(".json"))
            .ok_or_else(|| {
                Error::path(
                    path,
                    format!("`{name}` is not schema_<version>_<checksum>.json"),
                )
            })?;
        let (v, c) = body.split_once('_').ok_or_else(|| {
            Error::path(
                path,
                format!("`{name}` has no `_` between version and checksum"),
            )
        })?;
        let version = parse_u64(v)
            .ok_or_else(|| Error::path(path, format!("version `{v}` is not a number")))?;
        if c.len() != 10 {
            return Err(Error::path(
                path,
                format!("checksum `{c}` is not 10 digits"),
            ));
        }
        let checksum = parse_u64(c)
            .and_then(|c| u32::try_from(c).ok())
            .ok_or_else(|| Error::path(path, format!("checksum `{c}` is not a 32-bit number")))?;
        Ok(SchemaFilePath {
            schema: schema.into(),
            table: table.map(Into::into),
            version: Ts(version),
            checksum,
        })
    }
}
