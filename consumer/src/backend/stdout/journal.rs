//! stdout's progress journal: `<progress-file>.journal`, one JSON line per applied unit (its
//! progress rows and its quarantine record), appended and synced after the unit's lines are
//! flushed to stdout.
//!
//! The progress record is the progress file (a snapshot) with every journal line applied over
//! it in order. Appending one line per unit costs the same at 10 tables as at 100,000; writing
//! the whole record per unit (what the file alone did) cost O(streams) bytes and two fsyncs per
//! unit, O(streams^2) for a cold start.
//!
//! Invariants:
//! - *Compaction* writes the snapshot (temporary file, fsync, rename, directory fsync) and
//!   only then empties the journal. A kill between the two leaves a snapshot that already holds
//!   every journal line: applying them again sets each key they name to the value of its last
//!   line, which is the snapshot's value, and a quarantine record replaces the one of the same
//!   path. Loading is idempotent, so no order of kills loses or regresses a position.
//! - The journal is compacted once it holds more lines than the record has streams (and at
//!   least [`COMPACT_MIN`]): the snapshot's O(streams) bytes are written once per O(streams)
//!   units, amortized O(1) per unit.
//! - *A torn last line* (a kill in the middle of an append: no trailing newline, or text that is
//!   not a whole entry) is a unit whose progress was not recorded: it is ignored when loading,
//!   and cut off before the next append, so its lines are printed again (at-least-once for
//!   stdout's lines, exactly as with a kill before the rename of a whole-file write). A line that
//!   does not parse anywhere else is an error naming the journal.

use crate::error::{Error, Result};
use crate::progress::{Position, ProgressKey};
use crate::quarantine::QuarantinedFile;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Lines the journal may hold before a compaction, whatever the record's size.
pub(super) const COMPACT_MIN: usize = 256;

/// One journal line: a unit's progress rows and quarantine record.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Entry {
    pub progress: Vec<(ProgressKey, Position)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantined: Option<QuarantinedFile>,
}

/// The journal file of a progress file.
pub(super) fn journal_file(progress_file: &Path) -> PathBuf {
    let mut p = progress_file.as_os_str().to_owned();
    p.push(".journal");
    PathBuf::from(p)
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source: e,
    }
}

/// The whole entries of the journal at `path` (none when it does not exist) and the length of
/// the text they take (a torn last line after it is not counted).
pub(super) fn read(path: &Path) -> Result<(Vec<Entry>, u64)> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(io(path, e)),
    };
    let mut entries = Vec::new();
    let mut whole = 0usize;
    while let Some(n) = bytes[whole..].iter().position(|&b| b == b'\n') {
        let line = &bytes[whole..whole + n];
        match serde_json::from_slice::<Entry>(line) {
            Ok(e) => entries.push(e),
            // the last line, torn by a kill after its newline reached the disk but not all its
            // text (a page written out of order): not recorded
            Err(_) if whole + n + 1 == bytes.len() => break,
            Err(e) => {
                return Err(io(
                    path,
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("journal line at byte {whole} is not a progress entry: {e}"),
                    ),
                ))
            }
        }
        whole += n + 1;
    }
    Ok((entries, whole as u64))
}

/// The journal open for appending.
pub(super) struct Journal {
    path: PathBuf,
    /// Opened on the first append, after a torn tail is cut off.
    file: Option<File>,
    /// Whole lines in the file.
    lines: usize,
}

impl Journal {
    pub fn new(progress_file: &Path) -> Journal {
        Journal {
            path: journal_file(progress_file),
            file: None,
            lines: 0,
        }
    }

    /// Whole lines in the journal (known once it was opened).
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Appends one entry and syncs it.
    pub fn append(&mut self, entry: &Entry) -> Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(|e| io(&self.path, e.into()))?;
        line.push(b'\n');
        let path = self.path.clone();
        let f = self.open()?;
        f.write_all(&line).map_err(|e| io(&path, e))?;
        f.sync_data().map_err(|e| io(&path, e))?;
        self.lines += 1;
        Ok(())
    }

    /// Empties the journal (after a snapshot that holds every line was made durable).
    pub fn clear(&mut self) -> Result<()> {
        let path = self.path.clone();
        let f = self.open()?;
        f.set_len(0).map_err(|e| io(&path, e))?;
        f.sync_data().map_err(|e| io(&path, e))?;
        self.lines = 0;
        Ok(())
    }

    /// The open file: on first use, whole lines are counted and a torn tail cut off, so the
    /// next line starts on a line of its own.
    fn open(&mut self) -> Result<&mut File> {
        if self.file.is_none() {
            let (entries, whole) = read(&self.path)?;
            let created = !self.path.exists();
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| io(&self.path, e))?;
            let len = f.metadata().map_err(|e| io(&self.path, e))?.len();
            if len > whole {
                f.set_len(whole).map_err(|e| io(&self.path, e))?;
            }
            if created {
                sync_parent(&self.path);
            }
            self.lines = entries.len();
            self.file = Some(f);
        }
        Ok(self.file.as_mut().expect("opened above"))
    }
}

/// Makes a file's creation or rename durable (best effort: some file systems refuse to open a
/// directory).
pub(super) fn sync_parent(path: &Path) {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
