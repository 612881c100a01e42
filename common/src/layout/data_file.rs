//! The storage layout contract (TiCDC-compatible): every path the sink writes and the consumer
//! reads, each as a typed value with a matched `build` / `parse` pair.
//!
//! ```text
//! <root>/
//!   metadata                                          {"checkpoint-ts":N}
//!   <schema>/meta/schema_<version>_<crc:%010d>.json   database-level schema file
//!   <schema>/<table>/meta/schema_<version>_<crc:%010d>.json
//!   <schema>/<table>/<version>[/<partition-id>][/<date>]/
//!       CDC<index>.<ext>                              data file (one writer per table)
//!       CDC_<dispatcher-id>_<index>.<ext>             data file (several dispatchers per table)
//!       meta/CDC.index | meta/CDC_<dispatcher-id>.index   index file: newest data file name + "\n"
//! ```
//!
//! `<index>` is zero-padded to `file-index-width` digits (6..=20). `<date>` is `2006`, `2006-01`
//! or `2006-01-02` for the year, month and day date separators, taken from the commit ts (UTC).
//! `<ext>` is `csv`, `json` (canal-json) or `avro`.
//!
//! # Names
//!
//! Schema and table names are used verbatim as path segments, as TiCDC does, so a TiCDC consumer
//! finds our files and we find TiCDC's. Names that cannot be a safe segment are **rejected**
//! (never escaped, since an escape would not be TiCDC-compatible): empty, `.`, `..`, containing
//! `/`, NUL or any other control character, or longer than [`MAX_NAME_BYTES`]. Non-UTF-8 names
//! cannot occur (paths are `str`). Every other character passes through unchanged.
//!
//! # Parsing
//!
//! Data-file and index paths are parsed with the [`LayoutConfig`] the storage was written with:
//! the date separator fixes whether the segment before the file name is a date, and one extra
//! segment between the version and the date is a partition id. A path that does not fit is an
//! [`Error::InvalidPath`] that says what was expected and what was found.

use crate::error::{Error, Result};
use crate::options::{
    DateSeparator, Protocol, SinkOptions, MAX_FILE_INDEX_WIDTH, MIN_FILE_INDEX_WIDTH,
};
use crate::table::TableName;
use crate::ts::Ts;
use std::fmt::Write as _;

/// Longest schema/table name accepted, in bytes (a file-system segment limit).
pub const MAX_NAME_BYTES: usize = 255;
/// Name of the checkpoint file at the root.
pub const METADATA_FILE: &str = "metadata";
/// Directory that holds index and schema files.
pub const META_DIR: &str = "meta";

/// Checks that a schema or table name can be a path segment (see the module doc).
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason: &str| {
        Err(Error::InvalidName {
            name: name.escape_debug().to_string(),
            reason: reason.into(),
        })
    };
    if name.is_empty() {
        return bad("is empty");
    }
    if name == "." || name == ".." {
        return bad("is a relative path component");
    }
    if name.len() > MAX_NAME_BYTES {
        return bad("is longer than 255 bytes");
    }
    if name.contains('/') {
        return bad("contains `/`");
    }
    if name.chars().any(char::is_control) {
        return bad("contains NUL or another control character");
    }
    Ok(())
}

/// The layout options a path depends on.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct LayoutConfig {
    /// Data file protocol (the extension).
    pub protocol: Protocol,
    /// Digits of the file index.
    pub file_index_width: usize,
    /// Date directory granularity.
    pub date_separator: DateSeparator,
    /// Partition-id directories for partitioned tables.
    pub enable_partition_separator: bool,
}

impl LayoutConfig {
    /// The layout part of the sink options.
    pub fn from_options(o: &SinkOptions) -> LayoutConfig {
        LayoutConfig {
            protocol: o.protocol,
            file_index_width: o.file_index_width,
            date_separator: o.date_separator,
            enable_partition_separator: o.enable_partition_separator,
        }
    }
}

/// A date directory.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DateDir {
    /// `2006`
    Year(i32),
    /// `2006-01`
    Month(i32, u32),
    /// `2006-01-02`
    Day(i32, u32, u32),
}

impl DateDir {
    /// The date directory of a commit ts under a separator (`None` for `DateSeparator::None`).
    pub fn for_ts(sep: DateSeparator, ts: Ts) -> Option<DateDir> {
        let (y, m, d) = ts.civil_date();
        match sep {
            DateSeparator::None => None,
            DateSeparator::Year => Some(DateDir::Year(y)),
            DateSeparator::Month => Some(DateDir::Month(y, m)),
            DateSeparator::Day => Some(DateDir::Day(y, m, d)),
        }
    }

    /// The separator this date directory belongs to.
    pub fn separator(self) -> DateSeparator {
        match self {
            DateDir::Year(_) => DateSeparator::Year,
            DateDir::Month(..) => DateSeparator::Month,
            DateDir::Day(..) => DateSeparator::Day,
        }
    }

    fn write(self, out: &mut String) {
        // Writing into a String cannot fail.
        let _ = match self {
            DateDir::Year(y) => write!(out, "{y:04}"),
            DateDir::Month(y, m) => write!(out, "{y:04}-{m:02}"),
            DateDir::Day(y, m, d) => write!(out, "{y:04}-{m:02}-{d:02}"),
        };
    }

    /// Parses a date directory of the given separator.
    pub fn parse(sep: DateSeparator, s: &str) -> Option<DateDir> {
        let num = |part: &str, len: usize| -> Option<u32> {
            (part.len() == len && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse().ok())
                .flatten()
        };
        let mut it = s.split('-');
        let y = num(it.next()?, 4)? as i32;
        let dir = match sep {
            DateSeparator::None => return None,
            DateSeparator::Year => DateDir::Year(y),
            DateSeparator::Month => {
                DateDir::Month(y, num(it.next()?, 2).filter(|m| (1..=12).contains(m))?)
            }
            DateSeparator::Day => {
                let m = num(it.next()?, 2).filter(|m| (1..=12).contains(m))?;
                DateDir::Day(y, m, num(it.next()?, 2).filter(|d| (1..=31).contains(d))?)
            }
        };
        it.next().is_none().then_some(dir)
    }
}

impl std::fmt::Display for DateDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::with_capacity(10);
        self.write(&mut s);
        f.write_str(&s)
    }
}

/// The directory holding one writer's data files: `<schema>/<table>/<version>[/<pid>][/<date>]`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DataDir {
    /// Database name.
    pub schema: String,
    /// Table name.
    pub table: String,
    /// Table version (commit ts of the DDL that defined it).
    pub version: Ts,
    /// Partition id directory, when partition separation is on and the table is partitioned.
    pub partition_id: Option<i64>,
    /// Date directory, unless the date separator is none.
    pub date: Option<DateDir>,
}

impl DataDir {
    /// Builds the directory path (no trailing slash), validating the names.
    pub fn build(&self) -> Result<String> {
        validate_name(&self.schema)?;
        validate_name(&self.table)?;
        let mut s = String::with_capacity(self.schema.len() + self.table.len() + 48);
        let _ = write!(s, "{}/{}/{}", self.schema, self.table, self.version.0);
        if let Some(pid) = self.partition_id {
            let _ = write!(s, "/{pid}");
        }
        if let Some(date) = self.date {
            s.push('/');
            date.write(&mut s);
        }
        Ok(s)
    }

    /// The directory of the table version (`<schema>/<table>/<version>`), the prefix a
    /// consumer lists to find partition and date directories.
    pub fn version_prefix(name: &TableName, version: Ts) -> Result<String> {
        validate_name(&name.schema)?;
        validate_name(&name.table)?;
        Ok(format!("{}/{}/{}", name.schema, name.table, version.0))
    }

    /// Parses directory segments `[schema, table, version, (pid), (date)]`.
    fn parse_segments(path: &str, segs: &[&str], cfg: &LayoutConfig) -> Result<DataDir> {
        let has_date = cfg.date_separator != DateSeparator::None;
        let min = 3 + usize::from(has_date);
        let max = min + usize::from(cfg.enable_partition_separator);
        if segs.len() < min || segs.len() > max {
            return Err(Error::path(
                path,
                format!(
                    "expected {} directory segments (schema/table/version{}{}), found {}",
                    if min == max {
                        min.to_string()
                    } else {
                        format!("{min} or {max}")
                    },
                    if cfg.enable_partition_separator {
                        "[/partition-id]"
                    } else {
                        ""
                    },
                    if has_date { "/date" } else { "" },
                    segs.len()
                ),
            ));
        }
        for name in &segs[..2] {
            validate_name(name).map_err(|e| Error::path(path, e.to_string()))?;
        }
        let version = parse_canonical_u64(segs[2]).ok_or_else(|| {
            Error::path(
                path,
                format!("table version `{}` is not a commit ts (digits)", segs[2]),
            )
        })?;
        let mut rest = &segs[3..];
        let date = if has_date {
            let d = rest[rest.len() - 1];
            rest = &rest[..rest.len() - 1];
            Some(DateDir::parse(cfg.date_separator, d).ok_or_else(|| {
                Error::path(
                    path,
                    format!(
                        "`{d}` is not a date directory for date-separator={}",
                        cfg.date_separator.name()
                    ),
                )
            })?)
        } else {
            None
        };
        let partition_id = match rest {
            [] => None,
            [p] => Some(
                p.parse::<i64>()
                    .ok()
                    .filter(|n| n.to_string() == *p)
                    .ok_or_else(|| {
                        Error::path(path, format!("partition directory `{p}` is not a number"))
                    })?,
            ),
            _ => unreachable!("segment count checked above"),
        };
        Ok(DataDir {
            schema: segs[0].into(),
            table: segs[1].into(),
            version: Ts(version),
            partition_id,
            date,
        })
    }
}

/// A data file: `<data-dir>/CDC[_<dispatcher-id>_]<index>.<ext>`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DataFile {
    /// The directory.
    pub dir: DataDir,
    /// Dispatcher id when several dispatchers write one table.
    pub dispatcher_id: Option<String>,
    /// File index (1-based in practice; 0 is never written).
    pub index: u64,
}

impl DataFile {
    /// The base name, e.g. `CDC00000000000000000001.csv`.
    pub fn file_name(&self, cfg: &LayoutConfig) -> Result<String> {
        build_file_name(self.dispatcher_id.as_deref(), self.index, cfg)
    }

    /// The full path.
    pub fn build(&self, cfg: &LayoutConfig) -> Result<String> {
        let mut s = self.dir.build()?;
        s.push('/');
        s.push_str(&self.file_name(cfg)?);
        Ok(s)
    }

    /// The index file that names this data file's writer's newest file.
    pub fn index_file(&self) -> IndexFile {
        IndexFile {
            dir: self.dir.clone(),
            dispatcher_id: self.dispatcher_id.clone(),
        }
    }

    /// Parses a full data file path.
    pub fn parse(path: &str, cfg: &LayoutConfig) -> Result<DataFile> {
        let segs: Vec<&str> = path.split('/').collect();
        let (name, dir_segs) = segs
            .split_last()
            .ok_or_else(|| Error::path(path, "empty path"))?;
        let dir = DataDir::parse_segments(path, dir_segs, cfg)?;
        let (dispatcher_id, index) = parse_file_name(path, name, cfg)?;
        Ok(DataFile {
            dir,
            dispatcher_id,
            index,
        })
    }
}

fn check_width(cfg: &LayoutConfig) -> Result<()> {
    if !(MIN_FILE_INDEX_WIDTH..=MAX_FILE_INDEX_WIDTH).contains(&cfg.file_index_width) {
        return Err(Error::param(
            "file-index-width",
            format!(
                "{} is out of range {MIN_FILE_INDEX_WIDTH}..={MAX_FILE_INDEX_WIDTH}",
                cfg.file_index_width
            ),
        ));
    }
    Ok(())
}

fn validate_dispatcher_id(id: &str) -> Result<()> {
    if id.is_empty()
        || id.len() > 128
        || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(Error::param(
            "dispatcher-id",
            format!(
                "`{}` must be 1-128 ASCII letters, digits or `-`",
                id.escape_debug()
            ),
        ));
    }
    Ok(())
}

/// Builds a data file base name.
pub fn build_file_name(
    dispatcher_id: Option<&str>,
    index: u64,
    cfg: &LayoutConfig,
) -> Result<String> {
    check_width(cfg)?;
    let digits = index.checked_ilog10().unwrap_or(0) as usize + 1;
    if digits > cfg.file_index_width {
        return Err(Error::param(
            "file-index-width",
            format!(
                "file index {index} needs {digits} digits, more than {}",
                cfg.file_index_width
            ),
        ));
    }
    let w = cfg.file_index_width;
    let ext = cfg.protocol.extension();
    Ok(match dispatcher_id {
        None => format!("CDC{index:0w$}.{ext}"),
        Some(id) => {
            validate_dispatcher_id(id)?;
            format!("CDC_{id}_{index:0w$}.{ext}")
        }
    })
}

/// Parses a data file base name into `(dispatcher id, index)`, checking width and extension.
pub fn parse_file_name(
    path: &str,
    name: &str,
    cfg: &LayoutConfig,
) -> Result<(Option<String>, u64)> {
    check_width(cfg)?;
    let (stem, ext) = name
        .rsplit_once('.')
        .ok_or_else(|| Error::path(path, format!("file name `{name}` has no extension")))?;
    if ext != cfg.protocol.extension() {
        return Err(Error::path(
            path,
            format!(
                "extension `.{ext}` does not match protocol {} (expected `.{}`)",
                cfg.protocol.name(),
                cfg.protocol.extension()
            ),
        ));
    }
    let body = stem.strip_prefix("CDC").ok_or_else(|| {
        Error::path(
            path,
            format!("file name `{name}` does not start with `CDC`"),
        )
    })?;
    let (dispatcher, digits) = match body.strip_prefix('_') {
        Some(rest) => {
            let (id, digits) = rest.rsplit_once('_').ok_or_else(|| {
                Error::path(
                    path,
                    format!("file name `{name}` has a dispatcher id but no `_<index>`"),
                )
            })?;
            validate_dispatcher_id(id).map_err(|e| Error::path(path, e.to_string()))?;
            (Some(id.to_string()), digits)
        }
        None => (None, body),
    };
    if digits.len() != cfg.file_index_width {
        return Err(Error::path(
            path,
            format!(
                "file index `{digits}` has {} digits, expected file-index-width={}",
                digits.len(),
                cfg.file_index_width
            ),
        ));
    }
    let index = parse_u64(digits)
        .ok_or_else(|| Error::path(path, format!("file index `{digits}` is not a number")))?;
    Ok((dispatcher, index))
}

/// An index file: `<data-dir>/meta/CDC.index` or `<data-dir>/meta/CDC_<dispatcher-id>.index`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IndexFile {
    /// The data directory it indexes.
    pub dir: DataDir,
    /// Dispatcher id, when several dispatchers write one table.
    pub dispatcher_id: Option<String>,
}

impl IndexFile {
    /// The full path.
    pub fn build(&self) -> Result<String> {
        let mut s = self.dir.build()?;
        s.push_str("/meta/");
        match &self.dispatcher_id {
            None => s.push_str("CDC.index"),
            Some(id) => {
                validate_dispatcher_id(id)?;
                let _ = write!(s, "CDC_{id}.index");
            }
        }
        Ok(s)
    }

    /// Parses a full index file path.
    pub fn parse(path: &str, cfg: &LayoutConfig) -> Result<IndexFile> {
        let segs: Vec<&str> = path.split('/').collect();
        if segs.len() < 2 {
            return Err(Error::path(
                path,
                "expected `<data-dir>/meta/CDC[_<id>].index`",
            ));
        }
        let (name, meta, dir_segs) = (
            segs[segs.len() - 1],
            segs[segs.len() - 2],
            &segs[..segs.len() - 2],
        );
        if meta != META_DIR {
            return Err(Error::path(
                path,
                format!("expected a `meta` directory before the index file, found `{meta}`"),
            ));
        }
        let dispatcher_id = match name {
            "CDC.index" => None,
            _ => {
                let id = name
                    .strip_prefix("CDC_")
                    .and_then(|n| n.strip_suffix(".index"))
                    .ok_or_else(|| {
                        Error::path(path, format!("`{name}` is not CDC.index or CDC_<id>.index"))
                    })?;
                validate_dispatcher_id(id).map_err(|e| Error::path(path, e.to_string()))?;
                Some(id.to_string())
            }
        };
        Ok(IndexFile {
            dir: DataDir::parse_segments(path, dir_segs, cfg)?,
            dispatcher_id,
        })
    }

    /// The content of an index file naming `data_file_name`: the name plus `\n`.
    pub fn content(data_file_name: &str) -> String {
        format!("{data_file_name}\n")
    }

    /// Parses index file content into `(dispatcher id, index)` of the newest data file, checking
    /// that the name belongs to this index file's writer. `path` names the object in errors.
    pub fn parse_content(&self, path: &str, content: &[u8], cfg: &LayoutConfig) -> Result<u64> {
        let corrupt = |reason: String| Error::corrupt(path, crate::error::Position::None, reason);
        let text = std::str::from_utf8(content)
            .map_err(|_| corrupt("index content is not UTF-8".into()))?;
        let name = text
            .strip_suffix('\n')
            .unwrap_or(text)
            .trim_end_matches('\r');
        if name.is_empty() || name.contains(['\n', '/']) {
            return Err(corrupt(format!(
                "index content `{}` is not one data file name",
                text.escape_debug()
            )));
        }
        let (dispatcher, index) =
            parse_file_name(path, name, cfg).map_err(|e| corrupt(e.to_string()))?;
        if dispatcher != self.dispatcher_id {
            return Err(corrupt(format!(
                "index names `{name}`, a file of another dispatcher (expected {:?})",
                self.dispatcher_id
            )));
        }
        Ok(index)
    }
}

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

/// The checkpoint file `metadata` at the root: `{"checkpoint-ts":N}`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Every event with commit ts <= this is durable in storage.
    pub checkpoint_ts: Ts,
}

impl Checkpoint {
    /// The object path.
    pub fn path() -> &'static str {
        METADATA_FILE
    }

    /// The file content.
    pub fn build(&self) -> String {
        format!("{{\"checkpoint-ts\":{}}}", self.checkpoint_ts.0)
    }

    /// Parses the file content; `object` names it in errors.
    pub fn parse(object: &str, content: &[u8]) -> Result<Checkpoint> {
        #[derive(serde::Deserialize)]
        struct Raw {
            #[serde(rename = "checkpoint-ts")]
            checkpoint_ts: u64,
        }
        let raw: Raw = serde_json::from_slice(content).map_err(|e| {
            Error::corrupt(
                object,
                crate::error::Position::None,
                format!("not a checkpoint file ({e})"),
            )
        })?;
        Ok(Checkpoint {
            checkpoint_ts: Ts(raw.checkpoint_ts),
        })
    }
}

/// Digits without leading zeros (versions, partition ids): one text per number, so a parsed
/// path always rebuilds to the same text.
fn parse_canonical_u64(s: &str) -> Option<u64> {
    parse_u64(s).filter(|_| s == "0" || !s.starts_with('0'))
}

/// Digits, zero-padding allowed (file indexes, checksums).
fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(sep: DateSeparator, part: bool, width: usize) -> LayoutConfig {
        LayoutConfig {
            protocol: Protocol::Csv,
            file_index_width: width,
            date_separator: sep,
            enable_partition_separator: part,
        }
    }

    fn dir(pid: Option<i64>, date: Option<DateDir>) -> DataDir {
        DataDir {
            schema: "test".into(),
            table: "t1".into(),
            version: Ts(437_345_364_441_890_818),
            partition_id: pid,
            date,
        }
    }

    #[test]
    fn data_file_paths_match_ticdc() {
        let c = cfg(DateSeparator::Day, true, 20);
        let f = DataFile {
            dir: dir(None, Some(DateDir::Day(2022, 9, 1))),
            dispatcher_id: None,
            index: 1,
        };
        assert_eq!(
            f.build(&c).unwrap(),
            "test/t1/437345364441890818/2022-09-01/CDC00000000000000000001.csv"
        );
        let f = DataFile {
            dir: dir(Some(66), Some(DateDir::Day(2022, 9, 1))),
            dispatcher_id: Some("a-1".into()),
            index: 12,
        };
        assert_eq!(
            f.build(&c).unwrap(),
            "test/t1/437345364441890818/66/2022-09-01/CDC_a-1_00000000000000000012.csv"
        );
        assert_eq!(
            f.index_file().build().unwrap(),
            "test/t1/437345364441890818/66/2022-09-01/meta/CDC_a-1.index"
        );
        let c6 = LayoutConfig {
            protocol: Protocol::CanalJson,
            ..cfg(DateSeparator::None, false, 6)
        };
        let f = DataFile {
            dir: dir(None, None),
            dispatcher_id: None,
            index: 7,
        };
        assert_eq!(
            f.build(&c6).unwrap(),
            "test/t1/437345364441890818/CDC000007.json"
        );
        assert_eq!(
            f.index_file().build().unwrap(),
            "test/t1/437345364441890818/meta/CDC.index"
        );
        assert_eq!(
            DataFile::parse("test/t1/437345364441890818/CDC000007.json", &c6).unwrap(),
            f
        );
    }

    #[test]
    fn date_dirs_follow_the_separator() {
        let ts = Ts::from_parts(1_662_000_000_000, 0); // 2022-09-01
        assert_eq!(
            DateDir::for_ts(DateSeparator::Year, ts)
                .unwrap()
                .to_string(),
            "2022"
        );
        assert_eq!(
            DateDir::for_ts(DateSeparator::Month, ts)
                .unwrap()
                .to_string(),
            "2022-09"
        );
        assert_eq!(
            DateDir::for_ts(DateSeparator::Day, ts).unwrap().to_string(),
            "2022-09-01"
        );
        assert_eq!(DateDir::for_ts(DateSeparator::None, ts), None);
        assert_eq!(DateDir::parse(DateSeparator::Month, "2022-13"), None);
        assert_eq!(DateDir::parse(DateSeparator::Day, "2022-09"), None);
        assert_eq!(DateDir::parse(DateSeparator::Year, "22"), None);
    }

    #[test]
    fn schema_file_paths() {
        let p = SchemaFilePath {
            schema: "schema1".into(),
            table: Some("table1".into()),
            version: Ts(100),
            checksum: 3_752_767_265,
        };
        assert_eq!(
            p.build().unwrap(),
            "schema1/table1/meta/schema_100_3752767265.json"
        );
        assert_eq!(
            SchemaFilePath::parse("schema1/table1/meta/schema_100_3752767265.json").unwrap(),
            p
        );
        let p = SchemaFilePath {
            schema: "schema1".into(),
            table: None,
            version: Ts(100),
            checksum: 12,
        };
        assert_eq!(
            p.build().unwrap(),
            "schema1/meta/schema_100_0000000012.json"
        );
        assert_eq!(
            SchemaFilePath::parse("schema1/meta/schema_100_0000000012.json").unwrap(),
            p
        );
    }

    #[test]
    fn checkpoint_file() {
        let c = Checkpoint {
            checkpoint_ts: Ts(42),
        };
        assert_eq!(c.build(), r#"{"checkpoint-ts":42}"#);
        assert_eq!(
            Checkpoint::parse("metadata", c.build().as_bytes()).unwrap(),
            c
        );
        assert!(matches!(
            Checkpoint::parse("metadata", b"{\"checkpoint-ts\":-1}"),
            Err(Error::Corrupt { .. })
        ));
        assert!(matches!(
            Checkpoint::parse("metadata", b"\xff\x00"),
            Err(Error::Corrupt { .. })
        ));
    }

    #[test]
    fn index_content() {
        let c = cfg(DateSeparator::None, false, 6);
        let idx = IndexFile {
            dir: dir(None, None),
            dispatcher_id: None,
        };
        assert_eq!(IndexFile::content("CDC000003.csv"), "CDC000003.csv\n");
        assert_eq!(
            idx.parse_content("x/meta/CDC.index", b"CDC000003.csv\n", &c)
                .unwrap(),
            3
        );
        for bad in [
            &b""[..],
            b"\n",
            b"CDC3.csv\n",
            b"CDC000003.json\n",
            b"CDC_x_000003.csv\n",
            b"a/CDC000003.csv",
            b"\xff",
        ] {
            assert!(
                matches!(
                    idx.parse_content("x/meta/CDC.index", bad, &c),
                    Err(Error::Corrupt { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rejects_unsafe_names() {
        for name in [
            "",
            ".",
            "..",
            "a/b",
            "a\0b",
            "a\nb",
            "\u{7f}",
            &"x".repeat(256),
        ] {
            assert!(
                matches!(validate_name(name), Err(Error::InvalidName { .. })),
                "{name:?}"
            );
            let d = DataDir {
                schema: name.into(),
                ..dir(None, None)
            };
            assert!(d.build().is_err());
        }
        for ok in ["a b", "é表", "a%b", "meta", "a.b", "..."] {
            validate_name(ok).unwrap();
        }
    }

    #[test]
    fn rejects_malformed_paths_with_reasons() {
        let c = cfg(DateSeparator::Day, true, 20);
        let err = |p: &str| match DataFile::parse(p, &c) {
            Err(Error::InvalidPath { reason, .. }) => reason,
            other => panic!("{p}: expected InvalidPath, got {other:?}"),
        };
        assert!(err("s/t/1/CDC00000000000000000001.csv").contains("directory segments"));
        assert!(err("s/t/x/2022-01-01/CDC00000000000000000001.csv").contains("not a commit ts"));
        assert!(err("s/t/1/2022-1-01/CDC00000000000000000001.csv").contains("not a date directory"));
        assert!(err("s/t/1/p/2022-01-01/CDC00000000000000000001.csv").contains("partition"));
        assert!(err("s/t/1/2022-01-01/CDC0001.csv").contains("expected file-index-width=20"));
        assert!(err("s/t/1/2022-01-01/CDC00000000000000000001.json")
            .contains("does not match protocol csv"));
        assert!(err("s/t/1/2022-01-01/XYZ00000000000000000001.csv").contains("CDC"));
        assert!(err("s/../1/2022-01-01/CDC00000000000000000001.csv").contains("relative"));
        assert!(err("s/t/01/2022-01-01/CDC00000000000000000001.csv").contains("not a commit ts"));
        assert!(err("s/t/1/-0/2022-01-01/CDC00000000000000000001.csv").contains("partition"));
        assert!(err("s/t/1/+5/2022-01-01/CDC00000000000000000001.csv").contains("partition"));
        assert!(matches!(
            SchemaFilePath::parse("s/t/meta/schema_1_12.json"),
            Err(Error::InvalidPath { .. })
        ));
        assert!(matches!(
            SchemaFilePath::parse("s/t/x/schema_1_0000000012.json"),
            Err(Error::InvalidPath { .. })
        ));
        assert!(matches!(
            SchemaFilePath::parse("s/t/meta/schema_1_9999999999.json"),
            Err(Error::InvalidPath { .. })
        ));
        assert!(matches!(
            IndexFile::parse("s/t/1/2022-01-01/CDC.index", &c),
            Err(Error::InvalidPath { .. })
        ));
    }

    #[test]
    fn index_width_is_checked() {
        let c = cfg(DateSeparator::None, false, 6);
        assert!(build_file_name(None, 999_999, &c).is_ok());
        assert!(matches!(
            build_file_name(None, 1_000_000, &c),
            Err(Error::InvalidParameter { .. })
        ));
        assert!(matches!(
            build_file_name(None, 1, &cfg(DateSeparator::None, false, 5)),
            Err(Error::InvalidParameter { .. })
        ));
        assert!(build_file_name(None, u64::MAX, &cfg(DateSeparator::None, false, 20)).is_ok());
    }
}
