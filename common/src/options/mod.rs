//! Sink and consumer options, parsed once from a storage URI's query (and an optional TOML file).
//!
//! Parameter names follow TiCDC's storage-sink options so a TiCDC user's URI works unchanged
//! (`protocol`, `flush-interval`, `file-index-width`, the csv options ...). Every parameter is
//! validated; an unknown name or a value out of range is an [`Error::InvalidParameter`] naming the
//! parameter and what is allowed. Values given in the URI query win over the TOML file.
//!
//! Deviation from TiCDC, on purpose: TiCDC clamps `flush-interval` to at least 2s and `file-size`
//! to at least 1 MiB; we accept smaller values (down to 10ms and 1 KiB) because tests and
//! low-latency deployments want them, and reject rather than clamp values out of range.
//!
//! | file | concept |
//! |---|---|
//! | `params.rs` | the generic parameter parser: [`Params`] ("take" semantics, TOML merge) and the value parsers |
//! | `protocol.rs` | [`Protocol`], the data file wire format |
//! | `compression.rs` | [`Compression`], whole-file compression of csv / canal-json files (an extension) |
//! | `date_separator.rs` | [`DateSeparator`], the date directory granularity |
//! | `csv.rs` | [`CsvOptions`], the csv protocol's options |
//! | `cron.rs` | [`CronSpec`], the `file-cleanup-cron-spec` schedule (TiCDC's cron syntax) |
//! | `spool.rs` | [`SpoolOptions`] |
//! | `sink.rs` | [`SinkOptions`], every option of the sink, and its parse of a URI query |
//!
//! Every item is re-exported here: `cdc_common::options::X` is the one path callers use.
//!
//! [`Error::InvalidParameter`]: crate::error::Error::InvalidParameter

mod compression;
mod cron;
mod csv;
mod date_separator;
mod params;
mod protocol;
mod sink;
mod spool;

pub use compression::{Compression, ParquetCompression};
pub use cron::CronSpec;
pub use csv::{BinaryEncoding, CsvOptions, DEFAULT_NULL, DEFAULT_TERMINATOR};
pub use date_separator::DateSeparator;
pub use params::{parse_bool, parse_duration, parse_int, parse_size, Params};
pub use protocol::Protocol;
pub use sink::{
    SinkOptions, DEFAULT_FILE_INDEX_WIDTH, DEFAULT_FILE_SIZE, DEFAULT_FLUSH_INTERVAL,
    DEFAULT_WORKER_COUNT, MAX_FILE_CLEANUP_INTERVAL, MAX_FILE_EXPIRATION_DAYS,
    MAX_FILE_INDEX_WIDTH, MAX_FILE_SIZE, MAX_FLUSH_INTERVAL, MAX_WORKER_COUNT,
    MIN_FILE_CLEANUP_INTERVAL, MIN_FILE_INDEX_WIDTH, MIN_FILE_SIZE, MIN_FLUSH_INTERVAL,
    SINK_PARAMS,
};
pub use spool::SpoolOptions;
