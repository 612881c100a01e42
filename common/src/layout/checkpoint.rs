//! [`Checkpoint`]: the `metadata` file at the root, `{"checkpoint-ts":N}`: every event with
//! commit ts at or below `N` is durable in storage.

use super::METADATA_FILE;
use crate::error::{Error, Result};
use crate::ts::Ts;

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
