//! cdc-common: the contract shared by the sink and the consumer.
//!
//! - [`ts`]: TSO commit timestamps and their wall-clock conversion.
//! - [`value`], [`table`], [`event`]: the event model (typed values, table definitions, DML and DDL).
//! - [`layout`]: every path of the storage layout, each with a matched build/parse pair.
//! - [`schema_file`]: schema files (exact JSON) and their checksum.
//! - [`codec`]: csv, canal-json and avro, encode and decode, behind one trait.
//! - [`options`]: sink/consumer options parsed from a URI query or TOML file.
//! - [`storage`]: storage URIs turned into `object_store` stores.
//! - [`retry`]: the one retry policy (attempt cap, backoff, per-request timeout) of object-store
//!   calls, used by the sink and the consumer.
//! - `testing` (cargo feature `testing`, for tests, benches and the harness only): the
//!   fault-injecting store, tmpfs mounts, test server URIs.
//!
//! Nothing here does I/O on its own except [`storage`]'s builders (and [`retry`], which runs
//! the store calls its caller hands it); the sink and the consumer
//! depend on this crate and never on each other.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod aws_profile;
pub mod azure_conn;
pub mod codec;
pub mod error;
pub mod event;
pub mod layout;
pub mod options;
pub mod retry;
pub mod schema_file;
pub mod storage;
pub mod table;
#[cfg(feature = "testing")]
pub mod testing;
pub mod ts;
pub mod value;

pub use error::{Error, Position, Result};
pub use event::{DdlEvent, DdlKind, DmlEvent, RowChange};
pub use options::{CsvOptions, DateSeparator, Protocol, SinkOptions, SpoolOptions};
pub use table::{ColumnDef, ColumnType, TableDef, TableName};
pub use ts::Ts;
pub use value::{Text, Value};
