//! [`ChangeSummary`]: the optional, derived file `changes.metadata` at the root, next to
//! `metadata`: which tables got new index entries or schema files between consecutive
//! checkpoints this sink wrote. A consumer that knows storage at checkpoint `C_prev` and reads
//! `C_m` refreshes only the tables the steps from `C_prev` to `C_m` name (O(changed tables)
//! requests instead of O(tables)). This project's extension: TiCDC's storage consumer skips
//! every path ending in `metadata`; deleting the file only costs full rounds.
//!
//! ```text
//! {"version":1,
//!  "incarnation":"<hex id of the sink process that wrote it>",
//!  "steps":[{"from":C_a|null, "to":C_b, "complete":true|false,
//!            "tables":[["schema","table"],...],   index entries or table schema files
//!            "schemas":["schema",...]}, ...]}      database-level schema files
//! ```
//!
//! Step `(from, to]`: every table (or schema) for which the writing sink stored an index entry
//! or a schema file after it began writing `metadata = from` and before it began writing
//! `metadata = to` is named. Steps are ordered, contiguous within one incarnation (`to` of one
//! is `from` of the next) and bounded (the newest [`MAX_STEPS`]). `complete: false` marks a
//! step that may miss tables: the first step of a process, which cannot know what a crashed
//! predecessor wrote after the last checkpoint. A consumer uses only complete steps.
//!
//! Frozen format: do not rename, remove or reorder fields; a new field must be optional
//! (`#[serde(default)]`) and the `version` only grows. `summary_file_bytes_are_frozen` pins
//! the bytes.

use crate::error::{Error, Position, Result};
use crate::ts::Ts;

/// The object path of the change summary at the root.
pub const CHANGE_SUMMARY_FILE: &str = "changes.metadata";

/// Steps kept in the file: enough for a consumer polling a few times slower than the sink
/// checkpoints (each step is one checkpoint write), small enough to stay one small GET.
pub const MAX_STEPS: usize = 32;

/// The format version written.
const VERSION: u32 = 1;

/// The change summary file (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChangeSummary {
    /// Format version (1).
    pub version: u32,
    /// Identifies the sink process that wrote the steps.
    pub incarnation: String,
    /// Oldest first.
    pub steps: Vec<ChangeStep>,
}

/// One step `(from, to]` of a [`ChangeSummary`].
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChangeStep {
    /// The checkpoint before the step (`None`: no `metadata` existed).
    pub from: Option<Ts>,
    /// The checkpoint written at the end of the step.
    pub to: Ts,
    /// False when the step may leave out tables (a process's first step).
    pub complete: bool,
    /// Tables with a new index entry or table schema file in the step, sorted.
    pub tables: Vec<(String, String)>,
    /// Schemas with a new database-level schema file in the step, sorted.
    #[serde(default)]
    pub schemas: Vec<String>,
}

/// The tables and schemas a chain of steps names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangedSince {
    /// Tables with new index entries or schema files.
    pub tables: Vec<(String, String)>,
    /// Schemas with new database-level schema files.
    pub schemas: Vec<String>,
}

impl ChangeSummary {
    /// The object path.
    pub fn path() -> &'static str {
        CHANGE_SUMMARY_FILE
    }

    /// Whether a root-level object is the change summary.
    pub fn is_path(path: &str) -> bool {
        path == CHANGE_SUMMARY_FILE
    }

    /// A summary of `incarnation` with no steps.
    pub fn new(incarnation: impl Into<String>) -> ChangeSummary {
        ChangeSummary {
            version: VERSION,
            incarnation: incarnation.into(),
            steps: Vec::new(),
        }
    }

    /// Appends `step`, dropping the oldest beyond [`MAX_STEPS`].
    pub fn push(&mut self, step: ChangeStep) {
        self.steps.push(step);
        if self.steps.len() > MAX_STEPS {
            let extra = self.steps.len() - MAX_STEPS;
            self.steps.drain(..extra);
        }
    }

    /// The file content.
    pub fn build(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses the file content; `object` names it in errors.
    pub fn parse(object: &str, content: &[u8]) -> Result<ChangeSummary> {
        let s: ChangeSummary = serde_json::from_slice(content).map_err(|e| {
            Error::corrupt(
                object,
                Position::None,
                format!("not a change summary ({e})"),
            )
        })?;
        if s.version == 0 || s.version > VERSION {
            return Err(Error::corrupt(
                object,
                Position::None,
                format!(
                    "change summary version {} (this build reads 1 to {VERSION})",
                    s.version
                ),
            ));
        }
        Ok(s)
    }

    /// What changed from checkpoint `from` to exactly `to`: the union of the complete steps
    /// that chain `from -> ... -> to` (`None` when they do not: a gap, an incomplete step,
    /// a chain that passes `to` without landing on it). `from == to` is an empty change.
    pub fn changed_between(&self, from: Ts, to: Ts) -> Option<ChangedSince> {
        let mut out = ChangedSince::default();
        let mut at = from;
        while at != to {
            if at > to {
                return None;
            }
            let step = self.steps.iter().find(|s| s.from == Some(at))?;
            if !step.complete || step.to <= at {
                return None;
            }
            out.tables.extend(step.tables.iter().cloned());
            out.schemas.extend(step.schemas.iter().cloned());
            at = step.to;
        }
        out.tables.sort();
        out.tables.dedup();
        out.schemas.sort();
        out.schemas.dedup();
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(from: u64, to: u64, complete: bool, tables: &[&str]) -> ChangeStep {
        ChangeStep {
            from: Some(Ts(from)),
            to: Ts(to),
            complete,
            tables: tables
                .iter()
                .map(|t| ("db".to_string(), t.to_string()))
                .collect(),
            schemas: Vec::new(),
        }
    }

    #[test]
    fn summary_file_bytes_are_frozen() {
        let mut s = ChangeSummary::new("ab12");
        s.push(ChangeStep {
            from: None,
            to: Ts(5),
            complete: false,
            tables: vec![("db".into(), "t".into())],
            schemas: vec!["db".into()],
        });
        let bytes = s.build();
        assert_eq!(
            bytes,
            r#"{"version":1,"incarnation":"ab12","steps":[{"from":null,"to":5,"complete":false,"tables":[["db","t"]],"schemas":["db"]}]}"#
        );
        assert_eq!(ChangeSummary::parse("x", bytes.as_bytes()).unwrap(), s);
    }

    #[test]
    fn a_chain_of_complete_steps_names_their_tables() {
        let mut s = ChangeSummary::new("a");
        s.push(step(10, 20, true, &["a", "b"]));
        s.push(step(20, 30, true, &["b", "c"]));
        s.push(step(30, 40, true, &["d"]));
        let c = s.changed_between(Ts(10), Ts(30)).unwrap();
        let names: Vec<&str> = c.tables.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(
            s.changed_between(Ts(30), Ts(30)),
            Some(ChangedSince::default())
        );
    }

    #[test]
    fn a_gap_an_incomplete_step_or_an_overshoot_is_no_chain() {
        let mut s = ChangeSummary::new("a");
        s.push(step(10, 20, true, &["a"]));
        s.push(step(25, 30, true, &["b"]));
        s.push(step(30, 40, false, &["c"]));
        assert_eq!(s.changed_between(Ts(10), Ts(30)), None, "gap 20..25");
        assert_eq!(s.changed_between(Ts(30), Ts(40)), None, "incomplete");
        assert_eq!(s.changed_between(Ts(10), Ts(15)), None, "passes 15");
        assert_eq!(s.changed_between(Ts(5), Ts(20)), None, "no step from 5");
    }

    #[test]
    fn history_is_bounded() {
        let mut s = ChangeSummary::new("a");
        for i in 0..(MAX_STEPS as u64 + 5) {
            s.push(step(i, i + 1, true, &[]));
        }
        assert_eq!(s.steps.len(), MAX_STEPS);
        assert_eq!(s.steps[0].from, Some(Ts(5)));
    }

    #[test]
    fn a_damaged_summary_is_a_corrupt_error_naming_it() {
        let e = ChangeSummary::parse("changes.metadata", b"{\"version\":1,").unwrap_err();
        assert!(matches!(e, Error::Corrupt { ref object, .. } if object == "changes.metadata"));
        let e = ChangeSummary::parse(
            "changes.metadata",
            br#"{"version":9,"incarnation":"a","steps":[]}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("version 9"), "{e}");
    }
}
