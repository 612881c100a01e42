//! The storage layout contract (TiCDC-compatible): every path the sink writes and the consumer
//! reads, each as a typed value with a matched `build` / `parse` pair.
//!
//! ```text
//! <root>/
//!   metadata                                          {"checkpoint-ts":N}
//!   metadata.node-<i>                                 node i's progress, same form (extension,
//!                                                     several sink processes; see checkpoint.rs)
//!   changes.metadata                                  optional, derived change summary
//!                                                     (extension; see change_summary.rs)
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
//! `<ext>` is `csv`, `json` (canal-json), `avro` or `parquet`; with `compression=gzip|zstd`
//! (csv and canal-json only, an extension) `.gz` / `.zst` follows it: `CDC<index>.csv.gz`.
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
//!
//! # Files (one path kind each)
//!
//! | file | paths |
//! |---|---|
//! | `mod.rs` | names, [`LayoutConfig`], the number rules shared by every parser |
//! | `date_dir.rs` | [`DateDir`], the date directory |
//! | `data_file.rs` | [`DataDir`], [`DataFile`] and data file names |
//! | `index_file.rs` | [`IndexFile`], its path and content |
//! | `schema_path.rs` | [`SchemaFilePath`] |
//! | `checkpoint.rs` | [`Checkpoint`], the `metadata` file |
//! | `change_summary.rs` | [`ChangeSummary`], the optional `changes.metadata` file |
//!
//! Every item is re-exported here: `cdc_common::layout::X` is the one path callers use.

mod change_summary;
mod checkpoint;
mod data_file;
mod date_dir;
mod index_file;
mod schema_path;

pub use change_summary::{
    ChangeStep, ChangeSummary, ChangedSince, CHANGE_SUMMARY_FILE, MAX_STEPS as MAX_SUMMARY_STEPS,
};
pub use checkpoint::Checkpoint;
pub use data_file::{build_file_name, parse_file_name, DataDir, DataFile};
pub use date_dir::DateDir;
pub use index_file::IndexFile;
pub use schema_path::SchemaFilePath;

use crate::error::{Error, Result};
use crate::options::{Compression, DateSeparator, Protocol, SinkOptions};

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
    /// Whole-file compression (a suffix after the extension: `.csv.gz`, `.json.zst`).
    pub compression: Compression,
    /// Digits of the file index.
    pub file_index_width: usize,
    /// Date directory granularity.
    pub date_separator: DateSeparator,
    /// Partition-id directories for partitioned tables.
    pub enable_partition_separator: bool,
}

impl LayoutConfig {
    /// The data file extension without the leading dot: the protocol's, then the compression
    /// suffix (`csv`, `csv.gz`, `json.zst`).
    pub fn extension(&self) -> String {
        format!("{}{}", self.protocol.extension(), self.compression.suffix())
    }

    /// The layout part of the sink options.
    pub fn from_options(o: &SinkOptions) -> LayoutConfig {
        LayoutConfig {
            protocol: o.protocol,
            compression: o.compression,
            file_index_width: o.file_index_width,
            date_separator: o.date_separator,
            enable_partition_separator: o.enable_partition_separator,
        }
    }
}

/// Digits without leading zeros (versions, partition ids): one text per number, so a parsed
/// path always rebuilds to the same text.
pub(super) fn parse_canonical_u64(s: &str) -> Option<u64> {
    parse_u64(s).filter(|_| s == "0" || !s.starts_with('0'))
}

/// Digits, zero-padding allowed (file indexes, checksums).
pub(super) fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests;
