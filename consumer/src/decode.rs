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

/// Decoder for one storage's protocol and options.
pub struct Decoder {
    codec: Box<dyn Codec>,
    prepared: HashMap<(TableName, Ts), Box<dyn TableCodec>>,
}

impl Decoder {
    /// The decoder for the sink options the storage was written with.
    pub fn new(options: &SinkOptions) -> Result<Decoder> {
        Ok(Decoder {
            codec: codec_for(options)?,
            prepared: HashMap::new(),
        })
    }

    /// Decodes one data file of `def`'s table version.
    pub fn decode(&mut self, def: &TableDef, path: &str, bytes: &[u8]) -> Result<Vec<DecodedRow>> {
        let key = (def.name(), def.version);
        if !self.prepared.contains_key(&key) {
            let c = self.codec.prepare(def)?;
            // Keep the cache bounded: versions are applied in order, old ones are not needed.
            if self.prepared.len() > 4096 {
                self.prepared.clear();
            }
            self.prepared.insert(key.clone(), c);
        }
        let Some(codec) = self.prepared.get(&key) else {
            return Ok(Vec::new());
        };
        let rows = codec.decode(path, bytes)?;
        let n = def.columns.len();
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
}
