//! [`IndexFile`]: `<data-dir>/meta/CDC[_<dispatcher-id>].index`, whose content is the name of
//! its writer's newest data file plus `\n`; a consumer reads data files up to that one only.

use super::data_file::{parse_file_name, validate_dispatcher_id, DataFile};
use super::{DataDir, LayoutConfig, META_DIR};
use crate::error::{Error, Result};
use std::fmt::Write as _;

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

// Defined here, not in `data_file.rs`, so that data files do not depend on index files.
impl DataFile {
    /// The index file that names this data file's writer's newest file.
    pub fn index_file(&self) -> IndexFile {
        IndexFile {
            dir: self.dir.clone(),
            dispatcher_id: self.dispatcher_id.clone(),
        }
    }
}
