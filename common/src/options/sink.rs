//! [`SinkOptions`]: every option of the sink (the consumer reads the layout and codec ones from
//! the same struct), their defaults and bounds, and the parse of a whole URI query: each option
//! group takes its names from [`Params`], and a name nobody took is an error.

use super::compression::{Compression, ParquetCompression};
use super::cron::CronSpec;
use super::csv::CsvOptions;
use super::date_separator::DateSeparator;
use super::params::{parse_bool, parse_duration, parse_int, parse_size, Params};
use super::protocol::Protocol;
use super::spool::SpoolOptions;
use crate::error::{Error, Result};
use std::time::Duration;

/// Default encoder threads: TiCDC's default `worker-count`.
pub const DEFAULT_WORKER_COUNT: usize = 16;
/// Most encoder threads accepted (TiCDC's bound).
pub const MAX_WORKER_COUNT: usize = 512;
/// Default batch age that triggers a flush: TiCDC's default, a balance of latency and file count.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(5);
/// Shortest flush interval accepted (below it, file storms).
pub const MIN_FLUSH_INTERVAL: Duration = Duration::from_millis(10);
/// Longest flush interval accepted (TiCDC's bound).
pub const MAX_FLUSH_INTERVAL: Duration = Duration::from_secs(600);
/// Default batch size that triggers a flush: TiCDC's default, large enough to avoid small files.
pub const DEFAULT_FILE_SIZE: u64 = 64 * 1024 * 1024;
/// Smallest file-size accepted.
pub const MIN_FILE_SIZE: u64 = 1024;
/// Largest file-size accepted (TiCDC's bound).
pub const MAX_FILE_SIZE: u64 = 512 * 1024 * 1024;
/// Default digits of a data file index: TiCDC's default, so file names sort lexically forever.
pub const DEFAULT_FILE_INDEX_WIDTH: usize = 20;
/// Fewest digits of a data file index (TiCDC's bound).
pub const MIN_FILE_INDEX_WIDTH: usize = 6;
/// Most digits of a data file index (u64 has 20 digits).
pub const MAX_FILE_INDEX_WIDTH: usize = 20;
/// Longest `file-expiration-days` accepted (a century).
pub const MAX_FILE_EXPIRATION_DAYS: u32 = 36_500;
/// Shortest `file-cleanup-interval` accepted.
pub const MIN_FILE_CLEANUP_INTERVAL: Duration = Duration::from_secs(1);
/// Longest `file-cleanup-interval` accepted (a week).
pub const MAX_FILE_CLEANUP_INTERVAL: Duration = Duration::from_secs(7 * 86_400);

/// Shortest `storage-retry-timeout` accepted: below it a storage blip stops the sink.
pub const MIN_STORAGE_RETRY_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest `storage-retry-timeout` accepted (a day): wakes stay held that long at most.
pub const MAX_STORAGE_RETRY_TIMEOUT: Duration = Duration::from_secs(86_400);

/// Every option of the sink (the consumer reads the layout/codec ones from the same struct).
#[derive(Clone, Debug, PartialEq)]
pub struct SinkOptions {
    /// Data file protocol.
    pub protocol: Protocol,
    /// Encoder threads.
    pub worker_count: usize,
    /// Batch age that triggers a flush.
    pub flush_interval: Duration,
    /// Batch size (encoded bytes) that triggers a flush.
    pub file_size: u64,
    /// Digits of the data file index.
    pub file_index_width: usize,
    /// Date directory granularity.
    pub date_separator: DateSeparator,
    /// Write partitioned tables' files under a partition-id directory.
    pub enable_partition_separator: bool,
    /// Whole-file compression of csv / canal-json data files (an extension TiCDC lacks).
    pub compression: Compression,
    /// Page compression inside Parquet files.
    pub parquet_compression: ParquetCompression,
    /// csv options.
    pub csv: CsvOptions,
    /// canal-json: add the `_tidb` object with the commit ts.
    pub enable_tidb_extension: bool,
    /// Expire data files older than this many days (0 = never; needs the day date separator).
    pub file_expiration_days: u32,
    /// How often expiry runs (when no cron spec is given).
    pub file_cleanup_interval: Duration,
    /// `file-cleanup-cron-spec`: when expiry runs, as TiCDC schedules it (replaces the interval).
    pub file_cleanup_cron_spec: Option<CronSpec>,
    /// `storage-retry-timeout`: how long one storage operation is retried before the sink stops
    /// (`None`: the embedder's `SinkConfig` decides, by default two minutes).
    pub storage_retry_timeout: Option<Duration>,
    /// Spool options.
    pub spool: SpoolOptions,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            protocol: Protocol::Csv,
            worker_count: DEFAULT_WORKER_COUNT,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            file_size: DEFAULT_FILE_SIZE,
            file_index_width: DEFAULT_FILE_INDEX_WIDTH,
            date_separator: DateSeparator::Day,
            enable_partition_separator: true,
            compression: Compression::None,
            parquet_compression: ParquetCompression::Snappy,
            csv: CsvOptions::default(),
            enable_tidb_extension: false,
            file_expiration_days: 0,
            file_cleanup_interval: Duration::from_secs(3600),
            file_cleanup_cron_spec: None,
            storage_retry_timeout: None,
            spool: SpoolOptions::default(),
        }
    }
}

/// The option names [`SinkOptions::take_from`] understands.
pub const SINK_PARAMS: &[&str] = &[
    "protocol",
    "worker-count",
    "flush-interval",
    "file-size",
    "file-index-width",
    "date-separator",
    "enable-partition-separator",
    "compression",
    "parquet-compression",
    "delimiter",
    "quote",
    "null",
    "include-commit-ts",
    "binary-encoding-method",
    "output-old-value",
    "output-field-header",
    "terminator",
    "enable-tidb-extension",
    "file-expiration-days",
    "file-cleanup-interval",
    "file-cleanup-cron-spec",
    "storage-retry-timeout",
    "spool-memory-quota",
    "spool-disk-quota",
    "spool-dir",
    "spool-high-watermark",
    "spool-low-watermark",
];

impl SinkOptions {
    /// Takes every sink option out of `params` (leaving the rest for the caller) and validates
    /// the result.
    pub fn take_from(params: &mut Params) -> Result<SinkOptions> {
        let mut o = SinkOptions::default();
        if let Some(v) = params.take("protocol") {
            o.protocol = Protocol::parse(&v)?;
        }
        if let Some(v) = params.take("worker-count") {
            o.worker_count = parse_int("worker-count", &v, 1, MAX_WORKER_COUNT as u64)? as usize;
        }
        if let Some(v) = params.take("flush-interval") {
            o.flush_interval =
                parse_duration("flush-interval", &v, MIN_FLUSH_INTERVAL, MAX_FLUSH_INTERVAL)?;
        }
        if let Some(v) = params.take("file-size") {
            o.file_size = parse_size("file-size", &v, MIN_FILE_SIZE, MAX_FILE_SIZE)?;
        }
        if let Some(v) = params.take("file-index-width") {
            o.file_index_width = parse_int(
                "file-index-width",
                &v,
                MIN_FILE_INDEX_WIDTH as u64,
                MAX_FILE_INDEX_WIDTH as u64,
            )? as usize;
        }
        if let Some(v) = params.take("date-separator") {
            o.date_separator = DateSeparator::parse(&v)?;
        }
        if let Some(v) = params.take("enable-partition-separator") {
            o.enable_partition_separator = parse_bool("enable-partition-separator", &v)?;
        }
        if let Some(v) = params.take("compression") {
            o.compression = Compression::parse(&v)?;
        }
        if let Some(v) = params.take("parquet-compression") {
            o.parquet_compression = ParquetCompression::parse(&v)?;
        }
        o.csv.take_from(params)?;
        if let Some(v) = params.take("enable-tidb-extension") {
            o.enable_tidb_extension = parse_bool("enable-tidb-extension", &v)?;
        }
        if let Some(v) = params.take("file-expiration-days") {
            o.file_expiration_days = parse_int(
                "file-expiration-days",
                &v,
                0,
                MAX_FILE_EXPIRATION_DAYS.into(),
            )? as u32;
        }
        let interval_given = params.contains("file-cleanup-interval");
        if let Some(v) = params.take("file-cleanup-interval") {
            o.file_cleanup_interval = parse_duration(
                "file-cleanup-interval",
                &v,
                MIN_FILE_CLEANUP_INTERVAL,
                MAX_FILE_CLEANUP_INTERVAL,
            )?;
        }
        if let Some(v) = params.take("file-cleanup-cron-spec") {
            if interval_given {
                return Err(Error::param(
                    "file-cleanup-cron-spec",
                    "give either file-cleanup-cron-spec or file-cleanup-interval, not both",
                ));
            }
            o.file_cleanup_cron_spec = Some(CronSpec::parse(&v)?);
        }
        if let Some(v) = params.take("storage-retry-timeout") {
            o.storage_retry_timeout = Some(parse_duration(
                "storage-retry-timeout",
                &v,
                MIN_STORAGE_RETRY_TIMEOUT,
                MAX_STORAGE_RETRY_TIMEOUT,
            )?);
        }
        o.spool.take_from(params)?;
        o.validate()?;
        Ok(o)
    }

    /// Checks every value's range (options built as a struct, not parsed, get the same checks
    /// as the URI) and the cross-option rules; errors name the option.
    pub fn validate(&self) -> Result<()> {
        let range = |name: &str, v: u64, min: u64, max: u64| {
            if (min..=max).contains(&v) {
                Ok(())
            } else {
                Err(Error::param(
                    name,
                    format!("{v} is out of range {min}..={max}"),
                ))
            }
        };
        let duration = |name: &str, v: Duration, min: Duration, max: Duration| {
            if (min..=max).contains(&v) {
                Ok(())
            } else {
                Err(Error::param(
                    name,
                    format!("{v:?} is out of range {min:?}..={max:?}"),
                ))
            }
        };
        range(
            "worker-count",
            self.worker_count as u64,
            1,
            MAX_WORKER_COUNT as u64,
        )?;
        duration(
            "flush-interval",
            self.flush_interval,
            MIN_FLUSH_INTERVAL,
            MAX_FLUSH_INTERVAL,
        )?;
        range("file-size", self.file_size, MIN_FILE_SIZE, MAX_FILE_SIZE)?;
        range(
            "file-index-width",
            self.file_index_width as u64,
            MIN_FILE_INDEX_WIDTH as u64,
            MAX_FILE_INDEX_WIDTH as u64,
        )?;
        range(
            "file-expiration-days",
            self.file_expiration_days.into(),
            0,
            MAX_FILE_EXPIRATION_DAYS.into(),
        )?;
        duration(
            "file-cleanup-interval",
            self.file_cleanup_interval,
            MIN_FILE_CLEANUP_INTERVAL,
            MAX_FILE_CLEANUP_INTERVAL,
        )?;
        if let Some(t) = self.storage_retry_timeout {
            duration(
                "storage-retry-timeout",
                t,
                MIN_STORAGE_RETRY_TIMEOUT,
                MAX_STORAGE_RETRY_TIMEOUT,
            )?;
        }
        if self.protocol == Protocol::Csv {
            self.csv.validate()?;
        }
        if self.compression != Compression::None
            && !matches!(self.protocol, Protocol::Csv | Protocol::CanalJson)
        {
            return Err(Error::param(
                "compression",
                format!(
                    "applies to csv and canal-json only; protocol {} compresses inside its own format",
                    self.protocol.name()
                ),
            ));
        }
        if self.parquet_compression != ParquetCompression::Snappy
            && self.protocol != Protocol::Parquet
        {
            return Err(Error::param(
                "parquet-compression",
                format!("applies to protocol parquet, not {}", self.protocol.name()),
            ));
        }
        if self.file_expiration_days > 0 && self.date_separator != DateSeparator::Day {
            return Err(Error::param(
                "file-expiration-days",
                "needs date-separator=day",
            ));
        }
        self.spool.validate()
    }

    /// True when every row of a data file carries its commit ts (csv with `include-commit-ts`,
    /// canal-json with the TiDB extension, avro and parquet always), so a consumer can hold rows back to
    /// the checkpoint-ts; without it a consumer applies every indexed file at once.
    pub fn rows_carry_commit_ts(&self) -> bool {
        match self.protocol {
            Protocol::Csv => self.csv.include_commit_ts,
            Protocol::CanalJson => self.enable_tidb_extension,
            Protocol::Avro | Protocol::Parquet => true,
        }
    }

    /// Parses options from a query string (`a=b&c=d`, percent-encoded); unknown names are errors.
    pub fn from_query(query: &str) -> Result<SinkOptions> {
        let mut p = Params::from_query(query)?;
        let o = SinkOptions::take_from(&mut p)?;
        p.finish(SINK_PARAMS)?;
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::super::csv::BinaryEncoding;
    use super::*;
    use std::path::PathBuf;

    fn err_name(r: Result<SinkOptions>) -> String {
        match r {
            Err(Error::InvalidParameter { name, .. }) => name,
            other => panic!("expected InvalidParameter, got {other:?}"),
        }
    }

    #[test]
    fn cleanup_cron_spec_replaces_the_interval() {
        let o = SinkOptions::from_query("file-cleanup-cron-spec=0%200%202%20*%20*%20*").unwrap();
        let spec = o.file_cleanup_cron_spec.expect("spec parsed");
        assert_eq!(spec.as_str(), "0 0 2 * * *");
        assert_eq!(
            err_name(SinkOptions::from_query(
                "file-cleanup-cron-spec=@daily&file-cleanup-interval=1h"
            )),
            "file-cleanup-cron-spec"
        );
        assert_eq!(
            err_name(SinkOptions::from_query(
                "file-cleanup-cron-spec=0%200%2025%20*%20*"
            )),
            "file-cleanup-cron-spec"
        );
    }

    #[test]
    fn defaults_match_ticdc() {
        let o = SinkOptions::from_query("").unwrap();
        assert_eq!(o.protocol, Protocol::Csv);
        assert_eq!(o.worker_count, 16);
        assert_eq!(o.flush_interval, Duration::from_secs(5));
        assert_eq!(o.file_size, 64 << 20);
        assert_eq!(o.file_index_width, 20);
        assert_eq!(o.csv, CsvOptions::default());
        assert_eq!(o.csv.null, "\\N");
        assert_eq!(o.csv.terminator, "\r\n");
    }

    #[test]
    fn parses_every_option() {
        let o = SinkOptions::from_query(
            "protocol=canal-json&worker-count=4&flush-interval=200ms&file-size=1MiB&file-index-width=6\
             &date-separator=month&enable-partition-separator=false&delimiter=%7C%7C&quote=&null=NULL\
             &include-commit-ts=true&binary-encoding-method=hex&output-old-value=true&output-field-header=1\
             &terminator=%5Cn&enable-tidb-extension=true&spool-memory-quota=64MiB&spool-disk-quota=1GiB\
             &spool-dir=%2Ftmp%2Fs&spool-high-watermark=128MiB&spool-low-watermark=64MiB",
        )
        .unwrap();
        assert_eq!(o.protocol, Protocol::CanalJson);
        assert_eq!(o.worker_count, 4);
        assert_eq!(o.flush_interval, Duration::from_millis(200));
        assert_eq!(o.file_size, 1 << 20);
        assert_eq!(o.file_index_width, 6);
        assert_eq!(o.date_separator, DateSeparator::Month);
        assert!(!o.enable_partition_separator);
        assert_eq!(o.csv.delimiter, "||");
        assert_eq!(o.csv.quote, None);
        assert_eq!(o.csv.null, "NULL");
        assert!(o.csv.include_commit_ts && o.csv.output_old_value && o.csv.output_field_header);
        assert_eq!(o.csv.binary_encoding, BinaryEncoding::Hex);
        assert_eq!(o.csv.terminator, "\n");
        assert!(o.enable_tidb_extension);
        assert_eq!(o.spool.memory_quota, Some(64 << 20));
        assert_eq!(o.spool.disk_quota, Some(1 << 30));
        assert_eq!(o.spool.dir, Some(PathBuf::from("/tmp/s")));
        assert_eq!(o.spool.low_watermark, Some(64 << 20));
    }

    #[test]
    fn rejects_out_of_range_naming_the_parameter() {
        assert_eq!(
            err_name(SinkOptions::from_query("file-index-width=5")),
            "file-index-width"
        );
        assert_eq!(
            err_name(SinkOptions::from_query("file-index-width=21")),
            "file-index-width"
        );
        assert_eq!(
            err_name(SinkOptions::from_query("worker-count=0")),
            "worker-count"
        );
        assert_eq!(
            err_name(SinkOptions::from_query("flush-interval=1ms")),
            "flush-interval"
        );
        assert_eq!(
            err_name(SinkOptions::from_query("file-size=1GiB")),
            "file-size"
        );
        assert_eq!(
            err_name(SinkOptions::from_query("protocol=xml")),
            "protocol"
        );
        assert_eq!(
            err_name(SinkOptions::from_query("delimiter=abcd")),
            "delimiter"
        );
        assert_eq!(
            err_name(SinkOptions::from_query("delimiter=%22")),
            "delimiter"
        );
        assert_eq!(err_name(SinkOptions::from_query("quote=ab")), "quote");
        assert_eq!(err_name(SinkOptions::from_query("bogus=1")), "bogus");
        assert_eq!(
            err_name(SinkOptions::from_query("compression=lz4")),
            "compression"
        );
        assert_eq!(
            err_name(SinkOptions::from_query("protocol=avro&compression=gzip")),
            "compression"
        );
        assert_eq!(
            err_name(SinkOptions::from_query("protocol=parquet&compression=zstd")),
            "compression"
        );
        assert_eq!(
            err_name(SinkOptions::from_query(
                "protocol=csv&parquet-compression=zstd"
            )),
            "parquet-compression"
        );
        assert_eq!(
            err_name(SinkOptions::from_query(
                "protocol=parquet&parquet-compression=lz4"
            )),
            "parquet-compression"
        );
        assert_eq!(
            SinkOptions::from_query("protocol=parquet&parquet-compression=none")
                .unwrap()
                .parquet_compression,
            ParquetCompression::None
        );
        assert_eq!(
            SinkOptions::from_query("protocol=canal-json&compression=zstd")
                .unwrap()
                .compression,
            Compression::Zstd
        );
        assert_eq!(
            err_name(SinkOptions::from_query("spool-memory-quota=0")),
            "spool-memory-quota"
        );
        assert_eq!(
            err_name(SinkOptions::from_query(
                "spool-high-watermark=10&spool-low-watermark=10"
            )),
            "spool-low-watermark"
        );
        assert_eq!(
            err_name(SinkOptions::from_query("protocol=csv&protocol=avro")),
            "protocol"
        );
        assert_eq!(
            err_name(SinkOptions::from_query(
                "file-expiration-days=3&date-separator=none"
            )),
            "file-expiration-days"
        );
    }

    #[test]
    fn struct_built_options_get_the_same_range_checks() {
        let bad = |f: fn(&mut SinkOptions)| {
            let mut o = SinkOptions::default();
            f(&mut o);
            err_name(o.validate().map(|_| o))
        };
        assert_eq!(bad(|o| o.worker_count = 0), "worker-count");
        assert_eq!(bad(|o| o.worker_count = 513), "worker-count");
        assert_eq!(bad(|o| o.flush_interval = Duration::ZERO), "flush-interval");
        assert_eq!(
            bad(|o| o.flush_interval = Duration::from_secs(601)),
            "flush-interval"
        );
        assert_eq!(bad(|o| o.file_size = 0), "file-size");
        assert_eq!(bad(|o| o.file_size = MAX_FILE_SIZE + 1), "file-size");
        assert_eq!(bad(|o| o.file_index_width = 5), "file-index-width");
        assert_eq!(bad(|o| o.file_index_width = 21), "file-index-width");
        assert_eq!(
            bad(|o| o.file_expiration_days = 36_501),
            "file-expiration-days"
        );
        assert_eq!(
            bad(|o| o.file_cleanup_interval = Duration::ZERO),
            "file-cleanup-interval"
        );
        assert_eq!(
            bad(|o| o.storage_retry_timeout = Some(Duration::from_millis(10))),
            "storage-retry-timeout"
        );
        assert_eq!(
            err_name(SinkOptions::from_query("storage-retry-timeout=2d")),
            "storage-retry-timeout"
        );
        assert_eq!(
            SinkOptions::from_query("storage-retry-timeout=5m")
                .unwrap()
                .storage_retry_timeout,
            Some(Duration::from_secs(300))
        );
        assert_eq!(bad(|o| o.csv.delimiter = String::new()), "delimiter");
        assert_eq!(bad(|o| o.csv.null = "a\nb".into()), "null");
        assert_eq!(
            bad(|o| o.spool.memory_quota = Some(0)),
            "spool-memory-quota"
        );
        assert_eq!(bad(|o| o.spool.dir = Some(PathBuf::new())), "spool-dir");
        assert_eq!(err_name(SinkOptions::from_query("spool-dir=")), "spool-dir");
        SinkOptions::default().validate().unwrap();
    }

    #[test]
    fn toml_file_fills_what_the_uri_leaves() {
        let mut p = Params::from_query("protocol=avro").unwrap();
        p.merge_toml(
            "protocol = \"csv\"\nworker-count = 3\nflush-interval = \"1s\"\n",
            "sink.toml",
        )
        .unwrap();
        let o = SinkOptions::take_from(&mut p).unwrap();
        assert_eq!(o.protocol, Protocol::Avro);
        assert_eq!(o.worker_count, 3);
        assert_eq!(o.flush_interval, Duration::from_secs(1));
    }
}
