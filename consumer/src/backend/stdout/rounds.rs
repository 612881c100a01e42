//! stdout's round records: a JSON-lines file beside the progress file
//! (`<progress-file>.rounds.jsonl`, one [`RoundRecord`] per line, oldest first; see
//! [`crate::audit`]).
//!
//! Retention: a line is appended per round; once the file holds a tenth more than `keep`
//! lines (at least one more), it is rewritten with the newest `keep` (temporary file, then
//! rename), so it never holds more than `keep + keep / 10 + 1` records and is not rewritten
//! every round.

use crate::audit::{parse_record, record_json};
use crate::error::{Error, Result};
use crate::freshness::RoundRecord;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The rounds file of a progress file.
pub(super) fn rounds_file(progress_file: &Path) -> PathBuf {
    let mut p = progress_file.as_os_str().to_owned();
    p.push(".rounds.jsonl");
    PathBuf::from(p)
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source: e,
    }
}

/// The lines of the file (none when it does not exist).
fn read_lines(path: &Path) -> Result<Vec<String>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io(path, e)),
    }
}

/// Appends `rec`; `stored` is the line count (read from the file when `None`), updated.
pub(super) fn save(
    path: &Path,
    stored: &mut Option<usize>,
    rec: &RoundRecord,
    keep: u64,
) -> Result<()> {
    let n = match *stored {
        Some(n) => n,
        None => read_lines(path)?.len(),
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io(path, e))?;
    writeln!(f, "{}", record_json(rec)).map_err(|e| io(path, e))?;
    f.sync_data().map_err(|e| io(path, e))?;
    let mut n = n + 1;
    let keep = usize::try_from(keep).unwrap_or(usize::MAX);
    if n > keep.saturating_add(keep / 10) {
        let lines = read_lines(path)?;
        let skip = lines.len().saturating_sub(keep);
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut text = lines[skip..].join("\n");
        text.push('\n');
        std::fs::write(&tmp, text).map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| io(path, e))?;
        n = lines.len() - skip;
    }
    *stored = Some(n);
    Ok(())
}

/// The newest `limit` records, oldest first.
pub(super) fn load(path: &Path, limit: usize) -> Result<Vec<RoundRecord>> {
    let lines = read_lines(path)?;
    let skip = lines.len().saturating_sub(limit);
    lines[skip..].iter().map(|l| parse_record(l)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_within_the_slack() {
        let dir = tempfile::tempdir().unwrap();
        let path = rounds_file(&dir.path().join("p.json"));
        let mut stored = None;
        for round in 1..=40 {
            let rec = RoundRecord {
                round,
                ..Default::default()
            };
            save(&path, &mut stored, &rec, 10).unwrap();
            assert!(read_lines(&path).unwrap().len() <= 12);
        }
        let all = load(&path, 100).unwrap();
        assert_eq!(all.last().unwrap().round, 40);
        assert!(all.len() >= 10);
        let newest = load(&path, 3).unwrap();
        let rounds: Vec<u64> = newest.iter().map(|r| r.round).collect();
        assert_eq!(rounds, vec![38, 39, 40]);
    }
}
