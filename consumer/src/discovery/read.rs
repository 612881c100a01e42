//! Reading single layout objects into the catalog: a schema file (verified, checked for
//! column names no downstream can hold, ENUM/SET elements it lacks recovered by
//! [`crate::enum_elems`]), the index files of a data directory, and the data
//! directories of one table version (delimiter listings).
//!
//! Invariants: a path or content that disagrees with the configured layout options is an
//! [`Error::Mismatch`] saying what was expected and what was found, never a silent skip; an
//! index file never moves a directory's newest file back (a warning instead); a schema file
//! is read once per version (a second one for the same version is ignored with a warning).

use super::catalog::SchemaEntry;
use super::{Discovery, DiscoveryStats};
use crate::ddl;
use crate::error::{Error, Result};
use cdc_common::layout::{parse_file_name, DataDir, DateDir, IndexFile, SchemaFilePath, META_DIR};
use cdc_common::options::DateSeparator;
use cdc_common::schema_file::SchemaFile;
use cdc_common::{TableName, Ts};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

impl Discovery {
    /// The index files of a directory known to the catalog (what [`Self::read_indexes`]
    /// reads; for warming).
    pub(super) fn index_paths(&self, d: &DataDir) -> Vec<String> {
        let Some(e) = self.dir_entry(d) else {
            return Vec::new();
        };
        e.indexes
            .keys()
            .filter_map(|dispatcher| {
                IndexFile {
                    dir: d.clone(),
                    dispatcher_id: dispatcher.clone(),
                }
                .build()
                .ok()
            })
            .collect()
    }

    /// Reads every index file of a directory and records the newest file index.
    pub(super) async fn read_indexes(&mut self, d: &DataDir) -> Result<()> {
        let dispatchers: Vec<Option<String>> = match self.dir_entry(d) {
            Some(e) => e.indexes.keys().cloned().collect(),
            None => return Ok(()),
        };
        for dispatcher in dispatchers {
            let f = IndexFile {
                dir: d.clone(),
                dispatcher_id: dispatcher.clone(),
            };
            let path = f.build()?;
            let Some(bytes) = self.up.get(&path).await? else {
                continue; // listed, then removed (cleanup): nothing new from it
            };
            self.check_index_content(&path, &bytes)?;
            let n = f.parse_content(&path, &bytes, &self.cfg)?;
            let old = self
                .dir_entry(d)
                .and_then(|e| e.indexes.get(&dispatcher).copied())
                .unwrap_or(0);
            if n < old {
                self.warn(format!(
                    "index file `{path}` went back from file {old} to {n}; keeping {old}"
                ));
            } else if let Some(e) = self.dir_entry_mut(d) {
                let before = e.indexes.insert(dispatcher, n);
                self.grew |= before != Some(n);
            }
        }
        Ok(())
    }

    /// Turns an index file whose data file name disagrees with the options into a
    /// [`Error::Mismatch`] that says what was expected and what was found.
    fn check_index_content(&self, path: &str, bytes: &[u8]) -> Result<()> {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Ok(()); // parse_content reports it as corrupt
        };
        let name = text.trim_end_matches(['\n', '\r']);
        let Some((stem, ext)) = name.split_once('.') else {
            return Ok(());
        };
        if ext != self.cfg.extension() {
            return Err(Error::Mismatch {
                path: path.into(),
                expected: format!(
                    "protocol {} compression {} (`.{}` data files)",
                    self.cfg.protocol.name(),
                    self.cfg.compression.name(),
                    self.cfg.extension()
                ),
                found: format!("index names `{name}`"),
            });
        }
        let digits = stem.rsplit('_').next().unwrap_or(stem);
        let digits = digits.strip_prefix("CDC").unwrap_or(digits);
        if digits.bytes().all(|b| b.is_ascii_digit()) && digits.len() != self.cfg.file_index_width {
            return Err(Error::Mismatch {
                path: path.into(),
                expected: format!("file-index-width={}", self.cfg.file_index_width),
                found: format!("`{name}` with a {}-digit index", digits.len()),
            });
        }
        let _ = parse_file_name(path, name, &self.cfg);
        Ok(())
    }

    pub(super) fn mismatch(&self, path: &str, e: cdc_common::Error) -> Error {
        Error::Mismatch {
            path: path.into(),
            expected: format!(
                "a path of protocol={} file-index-width={} date-separator={} \
                 enable-partition-separator={}",
                self.cfg.protocol.name(),
                self.cfg.file_index_width,
                self.cfg.date_separator.name(),
                self.cfg.enable_partition_separator
            ),
            found: e.to_string(),
        }
    }

    /// The path of the schema file already known for `sp`'s version, if any.
    fn known_schema_path(&self, sp: &SchemaFilePath) -> Option<&str> {
        let entry = match &sp.table {
            Some(t) => self
                .catalog
                .tables
                .get(&TableName::new(&sp.schema, t))
                .and_then(|e| e.versions.get(&sp.version))
                .and_then(|v| v.schema.as_ref()),
            None => self
                .catalog
                .databases
                .get(&sp.schema)
                .and_then(|m| m.get(&sp.version)),
        };
        entry.map(|e| e.path.as_str())
    }

    /// Whether the filter keeps `sp`'s table (or database, for a database-level file).
    fn keeps(&self, sp: &SchemaFilePath) -> bool {
        match &sp.table {
            Some(t) => self.filter.matches(&sp.schema, t),
            None => self.filter.matches_schema(&sp.schema),
        }
    }

    /// Whether [`Self::note_schema_file`] would read `path` (a schema file not known yet, of
    /// a table or database the filter keeps; for warming).
    pub(super) fn wants_schema_file(&self, path: &str) -> bool {
        SchemaFilePath::parse(path)
            .is_ok_and(|sp| self.known_schema_path(&sp).is_none() && self.keeps(&sp))
    }

    /// Reads and verifies a schema file not seen before; `None` when already known.
    pub(super) async fn note_schema_file(
        &mut self,
        path: &str,
        _stats: &mut DiscoveryStats,
    ) -> Result<Option<SchemaEntry>> {
        let sp = SchemaFilePath::parse(path)?;
        let known = self.known_schema_path(&sp).map(str::to_string);
        if let Some(k) = known {
            if k != path {
                self.warn(format!(
                    "two schema files for one version: `{k}` (used) and `{path}` (ignored)"
                ));
            }
            return Ok(None);
        }
        if !self.keeps(&sp) {
            return Ok(None);
        }
        let Some(bytes) = self.up.get(path).await? else {
            return Ok(None);
        };
        let mut file = SchemaFile::parse_verified(path, &bytes)?;
        check_column_names(path, &file)?;
        if let Some(t) = &sp.table {
            let previous = self
                .catalog
                .tables
                .get(&TableName::new(&sp.schema, t))
                .and_then(|e| {
                    e.versions
                        .range(..sp.version)
                        .rev()
                        .find_map(|(_, v)| v.schema.clone())
                });
            crate::enum_elems::recover(&mut file, previous.as_ref().map(|p| p.file.as_ref()));
        }
        let rename_from = if file.ddl_type == ddl::ACTION_RENAME_TABLE {
            ddl::rename_source(&file)
        } else {
            None
        };
        let entry = SchemaEntry {
            path: path.to_string(),
            file: Arc::new(file),
            rename_from,
        };
        match &sp.table {
            Some(t) => {
                let t = t.clone();
                if let Some(src) = &entry.rename_from {
                    self.catalog_mut()
                        .renamed_away
                        .entry(src.clone())
                        .or_default()
                        .insert((sp.version, TableName::new(&sp.schema, &t)));
                }
                let v = self.version_mut(&sp.schema, &t, sp.version);
                let new = v.schema.as_ref().map(|e| &e.path) != Some(&entry.path);
                v.schema = Some(entry.clone());
                self.grew |= new;
            }
            None => {
                self.first_seen
                    .entry((sp.schema.clone(), None, sp.version))
                    .or_insert_with(Instant::now);
                let before = self
                    .catalog_mut()
                    .databases
                    .entry(sp.schema.clone())
                    .or_default()
                    .insert(sp.version, entry.clone());
                self.grew |= before.is_none_or(|b| b.path != entry.path);
            }
        }
        Ok(Some(entry))
    }

    /// Whether finding the data directories of `name`'s `version` takes a listing. Not with
    /// `date-separator=none` once the version directory is known to be the table's data
    /// directory (its `meta/` was seen: the table is not partitioned, and a table is either
    /// partitioned or not): it then holds every data file of the version, so listing it would
    /// return all of them, round after round. Its `meta/` is listed with the other open
    /// directories instead. (A partitioned table's version directory holds only partition
    /// directories: listing it stays cheap.)
    pub(super) fn lists_version_dirs(&self, name: &TableName, version: Ts) -> bool {
        self.cfg.date_separator != DateSeparator::None
            || !self
                .catalog
                .tables
                .get(name)
                .and_then(|t| t.versions.get(&version))
                .is_some_and(|v| {
                    v.dirs
                        .keys()
                        .any(|d| d.partition_id.is_none() && d.date.is_none())
                })
    }

    /// Finds the data directories of one table version with delimiter listings.
    pub(super) async fn list_version_dirs(
        &mut self,
        name: &TableName,
        version: Ts,
    ) -> Result<Vec<DataDir>> {
        let base = DataDir::version_prefix(name, version)?;
        let sep = self.cfg.date_separator;
        let dir = |partition_id, date| DataDir {
            schema: name.schema.clone(),
            table: name.table.clone(),
            version,
            partition_id,
            date,
        };
        if !self.lists_version_dirs(name, version) {
            return Ok(vec![dir(None, None)]);
        }
        let (children, _) = self.up.list_dir(&format!("{base}/")).await?;
        let mut out = Vec::new();
        for c in children {
            if c == META_DIR {
                if sep == DateSeparator::None {
                    out.push(dir(None, None));
                    continue;
                }
                return Err(Error::Mismatch {
                    path: format!("{base}/{META_DIR}/"),
                    expected: format!(
                        "date-separator={} (index files under date directories)",
                        sep.name()
                    ),
                    found: "index files directly under the table version directory".into(),
                });
            }
            if sep != DateSeparator::None {
                if let Some(d) = DateDir::parse(sep, &c) {
                    out.push(dir(None, Some(d)));
                    continue;
                }
            }
            let pid = c
                .parse::<i64>()
                .ok()
                .filter(|_| self.cfg.enable_partition_separator);
            let Some(pid) = pid else {
                return Err(Error::Mismatch {
                    path: format!("{base}/{c}/"),
                    expected: format!(
                        "{} directories under the table version{}",
                        match sep {
                            DateSeparator::None => "no date".to_string(),
                            s => format!("date-separator={} date", s.name()),
                        },
                        if self.cfg.enable_partition_separator {
                            " or partition ids"
                        } else {
                            ""
                        }
                    ),
                    found: format!("directory `{c}`"),
                });
            };
            if sep == DateSeparator::None {
                out.push(dir(Some(pid), None));
                continue;
            }
            let (dates, _) = self.up.list_dir(&format!("{base}/{c}/")).await?;
            for d in dates {
                match DateDir::parse(sep, &d) {
                    Some(date) => out.push(dir(Some(pid), Some(date))),
                    None => {
                        return Err(Error::Mismatch {
                            path: format!("{base}/{c}/{d}/"),
                            expected: format!("date-separator={} date directories", sep.name()),
                            found: format!("directory `{d}`"),
                        })
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Rejects a schema file whose column names no downstream can hold: empty, containing NUL, or
/// the same name twice. Every other character is kept and quoted downstream.
fn check_column_names(path: &str, file: &SchemaFile) -> Result<()> {
    let bad = |reason: String| -> Error {
        cdc_common::Error::corrupt(path, cdc_common::error::Position::None, reason).into()
    };
    let mut seen = HashSet::new();
    for (i, c) in file.columns.iter().enumerate() {
        if c.name.is_empty() {
            return Err(bad(format!("column {} has an empty name", i + 1)));
        }
        if c.name.contains('\0') {
            return Err(bad(format!(
                "column {} name `{}` contains NUL",
                i + 1,
                c.name.escape_debug()
            )));
        }
        if !seen.insert(c.name.as_str()) {
            return Err(bad(format!(
                "column name `{}` appears twice",
                c.name.escape_debug()
            )));
        }
    }
    Ok(())
}
