//! Data files: [`DataDir`] (`<schema>/<table>/<version>[/<pid>][/<date>]`), [`DataFile`] in it,
//! and the data file name `CDC[_<dispatcher-id>_]<index>.<ext>` with its index zero-padded to
//! exactly `file-index-width` digits and its extension fixed by the protocol and the compression.

use super::date_dir::DateDir;
use super::{parse_canonical_u64, parse_u64, validate_name, LayoutConfig};
use crate::error::{Error, Result};
use crate::options::{DateSeparator, MAX_FILE_INDEX_WIDTH, MIN_FILE_INDEX_WIDTH};
use crate::table::TableName;
use crate::ts::Ts;
use std::fmt::Write as _;

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
    pub(super) fn parse_segments(path: &str, segs: &[&str], cfg: &LayoutConfig) -> Result<DataDir> {
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

pub(super) fn validate_dispatcher_id(id: &str) -> Result<()> {
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
    let ext = cfg.extension();
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
    // The stem (`CDC`, digits, a dispatcher id of letters, digits and `-`) has no dot, so
    // everything after the first dot is the extension, compression suffix included.
    let (stem, ext) = name
        .split_once('.')
        .ok_or_else(|| Error::path(path, format!("file name `{name}` has no extension")))?;
    if ext != cfg.extension() {
        return Err(Error::path(
            path,
            format!(
                "extension `.{ext}` does not match protocol {} with compression {} (expected `.{}`)",
                cfg.protocol.name(),
                cfg.compression.name(),
                cfg.extension()
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
