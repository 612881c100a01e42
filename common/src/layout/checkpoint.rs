//! [`Checkpoint`]: the `metadata` file at the root, `{"checkpoint-ts":N}`: every event with
//! commit ts at or below `N` is durable in storage.
//!
//! With several sink processes on one storage (the nodes of one CDC service, each serving its
//! own tables), node `i` keeps its own durable progress in `metadata.node-<i>`, same content;
//! `metadata` is then the minimum over every node's file (`cdc_sink::NodeCheckpoint`). These
//! files are this project's extension: consumers skip them ([`Checkpoint::is_node_path`]).

use super::METADATA_FILE;
use crate::error::{Error, Result};
use crate::ts::Ts;

/// What follows `metadata` in a node's progress file name.
const NODE_SUFFIX: &str = ".node-";

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

    /// The object path of node `node`'s progress (see the module doc).
    pub fn node_path(node: u32) -> String {
        format!("{METADATA_FILE}{NODE_SUFFIX}{node}")
    }

    /// Whether a root-level object is a node's progress file (`metadata.node-<i>`).
    pub fn is_node_path(path: &str) -> bool {
        path.strip_prefix(METADATA_FILE)
            .and_then(|rest| rest.strip_prefix(NODE_SUFFIX))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
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
