//! Codecs: encode row changes into data-file bytes and decode them back.
//!
//! Every protocol sits behind one pair of traits so the sink and the consumer pick by protocol
//! name ([`codec_for`]):
//!
//! - [`Codec`] is the protocol with its options; [`Codec::prepare`] binds it to one table version.
//! - [`TableCodec`] does the work for that table version. The sink keeps one per table version
//!   per encoder thread (no lock on the hot path); the consumer one per schema file.
//!
//! # The file shape every codec follows
//!
//! ```text
//! data file = file_header(table) ++ chunk(event 1) ++ chunk(event 2) ++ ...
//! ```
//!
//! A chunk is self-contained: the writer concatenates chunks that encoder threads produced in
//! parallel, in dispatcher order, without re-encoding. For csv and canal-json a chunk is whole
//! lines; for avro it is one object-container block (count, size, records, sync marker), and the
//! header is the container header whose sync marker is derived from the table version, so every
//! chunk of that table version carries the same marker.

use crate::error::Result;
use crate::event::{DmlEvent, RowChange};
use crate::options::{Protocol, SinkOptions};
use crate::table::TableDef;
use crate::ts::Ts;

/// One decoded row change with the commit ts the file carried for it (csv without
/// `include-commit-ts` carries none).
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedRow {
    /// Commit ts of the row's transaction, when the format carries it.
    pub commit_ts: Option<Ts>,
    /// The change.
    pub change: RowChange,
}

/// A protocol with its options.
pub trait Codec: Send + Sync {
    /// The protocol.
    fn protocol(&self) -> Protocol;

    /// Binds the codec to one table version (builds the avro writer schema, csv column plan...).
    fn prepare(&self, table: &TableDef) -> Result<Box<dyn TableCodec>>;
}

/// A codec bound to one table version.
pub trait TableCodec: Send + Sync {
    /// Appends the bytes that start every data file of this table version (csv field header,
    /// avro container header; nothing for canal-json).
    fn file_header(&self, out: &mut Vec<u8>);

    /// Appends one self-contained chunk holding every row of `event`. Errors (and appends
    /// nothing) when a row does not match the table definition.
    fn encode(&self, event: &DmlEvent, out: &mut Vec<u8>) -> Result<()>;

    /// Decodes a whole data file (header included). `object` names the file in errors.
    fn decode(&self, object: &str, bytes: &[u8]) -> Result<Vec<DecodedRow>>;
}

/// The codec for the protocol and options in `options`.
pub fn codec_for(options: &SinkOptions) -> Result<Box<dyn Codec>> {
    Err(crate::error::Error::param(
        "protocol",
        format!("codec `{}` is not built yet", options.protocol.name()),
    ))
}
