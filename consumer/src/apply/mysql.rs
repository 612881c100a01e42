//! MySQL downstream (not built yet).
use super::{Downstream, Unit};
use crate::error::{Error, Result};
use crate::progress::{Position, ProgressKey};
use cdc_common::TableName;

/// The MySQL downstream.
pub struct MysqlDownstream;

impl MysqlDownstream {
    /// Connects.
    pub async fn connect(uri: &str, _batch_rows: usize) -> Result<MysqlDownstream> {
        Err(Error::Connect {
            uri: cdc_common::storage::redact_uri(uri),
            reason: "not built yet".into(),
        })
    }
}

#[async_trait::async_trait]
impl Downstream for MysqlDownstream {
    async fn load_progress(&mut self) -> Result<Vec<(ProgressKey, Position)>> {
        Ok(Vec::new())
    }
    async fn table_exists(&mut self, _name: &TableName) -> Result<bool> {
        Ok(false)
    }
    async fn apply(&mut self, _unit: Unit<'_>) -> Result<()> {
        Ok(())
    }
}
