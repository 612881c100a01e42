//! Decoding data files with the table definition of their schema file.
//!
//! One [`TableCodec`] is prepared per (table, version) from the schema file and reused for every
//! file of that version. Any bytes are accepted as input: a file that does not decode, or a row
//! whose image does not have one value per column, is an error naming the file; nothing of it
//! is applied.

use crate::error::Result;
use cdc_common::codec::{codec_for, Codec, DecodedRow, TableCodec};
use cdc_common::error::Position;
use cdc_common::{RowChange, SinkOptions, TableDef, TableName, Ts};
use std::collections::HashMap;
use std::sync::Arc;

/// Decoder for one storage's protocol and options.
pub struct Decoder {
    codec: Box<dyn Codec>,
    prepared: HashMap<(TableName, Ts), Arc<dyn TableCodec>>,
}

impl Decoder {
    /// The decoder for the sink options the storage was written with.
    pub fn new(options: &SinkOptions) -> Result<Decoder> {
        Ok(Decoder {
            codec: codec_for(options)?,
            prepared: HashMap::new(),
        })
    }

    /// The codec of `def`'s table version, prepared once.
    pub fn prepared(&mut self, def: &TableDef) -> Result<Arc<dyn TableCodec>> {
        let key = (def.name(), def.version);
        if let Some(c) = self.prepared.get(&key) {
            return Ok(c.clone());
        }
        let c: Arc<dyn TableCodec> = Arc::from(self.codec.prepare(def)?);
        // Keep the cache bounded: versions are applied in order, old ones are not needed.
        if self.prepared.len() > 4096 {
            self.prepared.clear();
        }
        self.prepared.insert(key, c.clone());
        Ok(c)
    }

    /// Decodes one data file of `def`'s table version.
    pub fn decode(&mut self, def: &TableDef, path: &str, bytes: &[u8]) -> Result<Vec<DecodedRow>> {
        let codec = self.prepared(def)?;
        decode_with(codec.as_ref(), def.columns.len(), path, bytes)
    }
}

/// Decodes one data file with a prepared codec and checks every row image has `n` values.
pub fn decode_with(
    codec: &dyn TableCodec,
    n: usize,
    path: &str,
    bytes: &[u8],
) -> Result<Vec<DecodedRow>> {
    let rows = codec.decode(path, bytes)?;
    for (i, r) in rows.iter().enumerate() {
        let ok = match &r.change {
            RowChange::Insert { after } => after.len() == n,
            RowChange::Update { before, after } => {
                after.len() == n && before.as_ref().is_none_or(|b| b.len() == n)
            }
            RowChange::Delete { before } => before.len() == n,
        };
        if !ok {
            return Err(cdc_common::Error::corrupt(
                path,
                Position::None,
                format!(
                    "row {} does not have {n} values (the table's columns)",
                    i + 1
                ),
            )
            .into());
        }
    }
    Ok(rows)
}
