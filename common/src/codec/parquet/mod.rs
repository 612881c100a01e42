//! The `parquet` protocol: one Parquet file per data file, one typed column per table column.
//!
//! # File layout
//!
//! ```text
//! column               type (physical / logical)            content
//! _cdc_op              BYTE_ARRAY STRING, required          I (insert), U (update), D (delete)
//! _cdc_commit_ts       INT64 INT(64, unsigned), required    commit ts (TSO) of the row's transaction
//! <column>...          by the table definition (below)      inserts and updates: the new image;
//!                      nullable when the column is          deletes: the old image (the row deleted)
//! _cdc_before_<col>... same types, always nullable          updates: the old image; NULL otherwise
//! ```
//!
//! The old image of an update is kept as before-image columns (not a D+I pair): a row is one
//! change, as in the avro protocol, and an analyst filters `_cdc_op = 'U'` to see both images.
//! An update whose before image is unknown has every `_cdc_before_*` column NULL and is read
//! back as an update without a before image. Column names starting with `_cdc_` are taken by
//! these columns; a table that has one cannot be written as parquet (an encode error).
//!
//! | column | Parquet |
//! |---|---|
//! | TINYINT / SMALLINT, YEAR / MEDIUMINT, INT (signed or not) | INT32 INT(8/16/32, signed) |
//! | BIGINT, BIT | INT64 INT(64, signed); BIT and BIGINT UNSIGNED unsigned |
//! | FLOAT / DOUBLE | FLOAT / DOUBLE |
//! | DECIMAL(p,s) | FIXED_LEN_BYTE_ARRAY DECIMAL(p,s), the fewest bytes holding p digits |
//! | DATE | INT32 DATE |
//! | TIME | INT64 TIME(MICROS), within one day |
//! | DATETIME, TIMESTAMP | INT64 TIMESTAMP(MICROS, not adjusted to UTC: the wall-clock text as written) |
//! | char/text, ENUM, SET, JSON | BYTE_ARRAY STRING |
//! | binary | BYTE_ARRAY |
//!
//! Values Parquet cannot hold - zero dates (`0000-00-00`), TIME outside 00:00..24:00 - are an
//! encode error naming the column: the sink stops rather than write a different value. Use csv,
//! canal-json or avro for such tables.
//!
//! # Writing: staged chunks, one file at the end
//!
//! A Parquet file is columnar, so the chunk-per-event shape of the other codecs cannot hold
//! it. Encoder threads write each event as an avro block of this table version (the lossless
//! row form the avro codec already has); the writer's whole-file step
//! ([`TableCodec::finish_file`], on a blocking thread) decodes the staged blocks and writes the
//! Parquet file: row groups of [`ROW_GROUP_ROWS`] rows, 1 MiB data pages,
//! `parquet-compression` = snappy (default) | zstd | none. The staged bytes are what
//! `file-size` counts.
//!
//! # Reading
//!
//! The file's schema must equal the table version's schema column for column (name, physical
//! and logical type, length, nullability) before any value is read; anything else - a truncated
//! file, a corrupt footer, another table's columns - is [`crate::Error::Corrupt`] naming the
//! object, never a panic (a panic inside the parquet reader is caught and reported the same way).

mod read;
mod schema;
mod values;
mod write;

pub use schema::{BEFORE_PREFIX, COMMIT_TS_COLUMN, OP_COLUMN};
pub use write::ROW_GROUP_ROWS;

use super::{avro::AvroCodec, encode_error, Codec, DecodedRow, TableCodec};
use crate::error::{Error, Position, Result};
use crate::event::DmlEvent;
use crate::options::{ParquetCompression, Protocol};
use crate::table::TableDef;
use bytes::Bytes;
use parquet::schema::types::{SchemaDescriptor, TypePtr};
use schema::Kind;
use std::sync::Arc;

/// The parquet protocol with its page compression.
#[derive(Clone, Debug, Default)]
pub struct ParquetCodec {
    compression: ParquetCompression,
}

impl ParquetCodec {
    /// The parquet codec writing pages with `compression`.
    pub fn new(compression: ParquetCompression) -> ParquetCodec {
        ParquetCodec { compression }
    }
}

impl Codec for ParquetCodec {
    fn protocol(&self) -> Protocol {
        Protocol::Parquet
    }

    fn prepare(&self, table: &TableDef) -> Result<Box<dyn TableCodec>> {
        if let Some(c) = table.columns.iter().find(|c| c.name.starts_with("_cdc_")) {
            return Err(encode_error(
                table,
                Some(c),
                "names starting with `_cdc_` are the parquet change columns".into(),
            ));
        }
        let kinds: Vec<Kind> = table.columns.iter().map(schema::kind_of).collect();
        let file_schema = schema::file_schema(table, &kinds).map_err(|e| {
            encode_error(table, None, format!("no parquet schema for the table: {e}"))
        })?;
        Ok(Box::new(ParquetTable {
            staging: AvroCodec::new().prepare(table)?,
            table: table.clone(),
            kinds,
            descr: SchemaDescriptor::new(Arc::clone(&file_schema)),
            file_schema,
            compression: self.compression,
        }))
    }
}

struct ParquetTable {
    /// Encodes events as avro blocks (the staged chunks) and decodes them at file end.
    staging: Box<dyn TableCodec>,
    table: TableDef,
    kinds: Vec<Kind>,
    file_schema: TypePtr,
    descr: SchemaDescriptor,
    compression: ParquetCompression,
}

impl TableCodec for ParquetTable {
    fn file_header(&self, out: &mut Vec<u8>) {
        self.staging.file_header(out);
    }

    fn encode(&self, event: &DmlEvent, out: &mut Vec<u8>) -> Result<()> {
        // Values Parquet cannot hold are caught here, per event, so the sink refuses the
        // event instead of failing a whole file at flush time.
        for change in &event.rows {
            let probe = DecodedRow {
                commit_ts: Some(event.commit_ts),
                change: change.clone(),
            };
            write::check_row(&self.table, &self.kinds, &probe)?;
        }
        self.staging.encode(event, out)
    }

    fn finish_file(&self, object: &str, parts: Vec<Bytes>) -> Result<Vec<Bytes>> {
        let mut file = Vec::new();
        self.finish_file_into(object, parts, &mut file)?;
        Ok(vec![Bytes::from(file)])
    }

    fn rewrites_file(&self) -> bool {
        true
    }

    /// Decodes the staged avro chunk by chunk and writes each row group as soon as it is
    /// full: the decoded rows held are at most one row group plus one chunk, and the file goes
    /// out group by group.
    fn finish_file_into(
        &self,
        object: &str,
        parts: Vec<Bytes>,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<()> {
        let mut header = Vec::new();
        self.staging.file_header(&mut header);
        let mut f = write::FileWriter::new(
            object,
            &self.table,
            &self.kinds,
            Arc::clone(&self.file_schema),
            self.compression,
            out,
        )?;
        let mut rows = Vec::new();
        let mut block = Vec::new();
        for part in parts {
            // The first part is the header, alone or followed by blocks (a caller may hand
            // in the whole staged file as one part); every other part is blocks.
            let blocks = part.strip_prefix(header.as_slice()).unwrap_or(&part);
            if blocks.is_empty() {
                continue;
            }
            block.clear();
            block.extend_from_slice(&header);
            block.extend_from_slice(blocks);
            rows.extend(self.staging.decode(object, &block)?);
            f.write_full_groups(&mut rows)?;
        }
        f.write_rows(&rows)?;
        f.finish()?;
        Ok(())
    }

    fn decode(&self, object: &str, bytes: &[u8]) -> Result<Vec<DecodedRow>> {
        let run = || read::read_file(object, bytes, &self.table, &self.kinds, &self.descr);
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
            Ok(r) => r,
            Err(_) => Err(Error::corrupt(
                object,
                Position::None,
                "the parquet reader failed on this file (damaged)",
            )),
        }
    }
}
