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

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;
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
/// Default csv null string: TiCDC's default, MySQL's `LOAD DATA` convention.
pub const DEFAULT_NULL: &str = "\\N";
/// Default csv record terminator: TiCDC's default.
pub const DEFAULT_TERMINATOR: &str = "\r\n";

/// Wire format of data files.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `csv`, files `.csv`.
    Csv,
    /// `canal-json`, files `.json`.
    CanalJson,
    /// `avro` object container files, `.avro`.
    Avro,
}

impl Protocol {
    /// The protocol's name in options.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Csv => "csv",
            Protocol::CanalJson => "canal-json",
            Protocol::Avro => "avro",
        }
    }

    /// The data file extension (without the dot).
    pub fn extension(self) -> &'static str {
        match self {
            Protocol::Csv => "csv",
            Protocol::CanalJson => "json",
            Protocol::Avro => "avro",
        }
    }

    /// The protocol whose data files carry `ext`.
    pub fn from_extension(ext: &str) -> Option<Protocol> {
        [Protocol::Csv, Protocol::CanalJson, Protocol::Avro]
            .into_iter()
            .find(|p| p.extension() == ext)
    }

    /// Parses a protocol name.
    pub fn parse(s: &str) -> Result<Protocol> {
        match s {
            "csv" => Ok(Protocol::Csv),
            "canal-json" => Ok(Protocol::CanalJson),
            "avro" => Ok(Protocol::Avro),
            _ => Err(Error::param(
                "protocol",
                format!("`{s}` is not one of csv, canal-json, avro"),
            )),
        }
    }
}

/// Date directory granularity.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum DateSeparator {
    /// No date directory.
    None,
    /// `2006`
    Year,
    /// `2006-01`
    Month,
    /// `2006-01-02`
    Day,
}

impl DateSeparator {
    /// Parses `none | year | month | day`.
    pub fn parse(s: &str) -> Result<DateSeparator> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "" => Ok(DateSeparator::None),
            "year" => Ok(DateSeparator::Year),
            "month" => Ok(DateSeparator::Month),
            "day" => Ok(DateSeparator::Day),
            _ => Err(Error::param(
                "date-separator",
                format!("`{s}` is not one of none, year, month, day"),
            )),
        }
    }

    /// The option value.
    pub fn name(self) -> &'static str {
        match self {
            DateSeparator::None => "none",
            DateSeparator::Year => "year",
            DateSeparator::Month => "month",
            DateSeparator::Day => "day",
        }
    }
}

/// How csv renders binary column values.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum BinaryEncoding {
    /// Standard base64 with padding (TiCDC's default).
    Base64,
    /// Lower-case hex.
    Hex,
}

/// The csv protocol's options (TiCDC's names and defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvOptions {
    /// Field delimiter, 1 to 3 characters, no CR/LF, not containing the quote.
    pub delimiter: String,
    /// Quote character; `None` disables quoting.
    pub quote: Option<char>,
    /// The text written for NULL.
    pub null: String,
    /// Write the commit ts column after the schema column.
    pub include_commit_ts: bool,
    /// Binary column rendering.
    pub binary_encoding: BinaryEncoding,
    /// Write an update as a delete of the old image plus an insert of the new one.
    pub output_old_value: bool,
    /// Write a header line naming the columns at the start of each file.
    pub output_field_header: bool,
    /// Record terminator.
    pub terminator: String,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: ",".into(),
            quote: Some('"'),
            null: DEFAULT_NULL.into(),
            include_commit_ts: false,
            binary_encoding: BinaryEncoding::Base64,
            output_old_value: false,
            output_field_header: false,
            terminator: DEFAULT_TERMINATOR.into(),
        }
    }
}

impl CsvOptions {
    /// Checks the combination; errors name the parameter at fault.
    pub fn validate(&self) -> Result<()> {
        let n = self.delimiter.chars().count();
        if !(1..=3).contains(&n) {
            return Err(Error::param(
                "delimiter",
                format!("must be 1 to 3 characters, got {n}"),
            ));
        }
        if self.delimiter.contains(['\r', '\n']) {
            return Err(Error::param("delimiter", "must not contain CR or LF"));
        }
        if let Some(q) = self.quote {
            if q == '\r' || q == '\n' {
                return Err(Error::param("quote", "must not be CR or LF"));
            }
            if self.delimiter.contains(q) {
                return Err(Error::param(
                    "delimiter",
                    format!("must not contain the quote character `{q}`"),
                ));
            }
            if self.terminator.contains(q) {
                return Err(Error::param(
                    "terminator",
                    format!("must not contain the quote character `{q}`"),
                ));
            }
        }
        let t = self.terminator.chars().count();
        if !(1..=3).contains(&t) {
            return Err(Error::param(
                "terminator",
                format!("must be 1 to 3 characters, got {t}"),
            ));
        }
        if self.terminator.contains(&self.delimiter) || self.delimiter.contains(&self.terminator) {
            return Err(Error::param("terminator", "must differ from the delimiter"));
        }
        if self.null.contains(['\r', '\n']) {
            return Err(Error::param("null", "must not contain CR or LF"));
        }
        if !self.null.is_empty() && self.null.contains(&self.delimiter) {
            return Err(Error::param("null", "must not contain the delimiter"));
        }
        Ok(())
    }
}

/// Spool options. `None` means "derive from the machine" (the spool crate decides, see its docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpoolOptions {
    /// Bytes held in memory before entries spill to disk (`spool-memory-quota`).
    pub memory_quota: Option<u64>,
    /// Bytes allowed on disk before the writer must flush and wait (`spool-disk-quota`).
    pub disk_quota: Option<u64>,
    /// Directory for segment files (`spool-dir`); scratch, cleaned at open.
    pub dir: Option<PathBuf>,
    /// Total bytes above which wake callbacks are held (`spool-high-watermark`).
    pub high_watermark: Option<u64>,
    /// Total bytes at or below which held wakes are released (`spool-low-watermark`).
    pub low_watermark: Option<u64>,
}

impl SpoolOptions {
    /// Checks what can be checked without the machine's defaults.
    pub fn validate(&self) -> Result<()> {
        if self.dir.as_ref().is_some_and(|d| d.as_os_str().is_empty()) {
            return Err(Error::param("spool-dir", "must not be empty"));
        }
        for (name, v) in [
            ("spool-memory-quota", self.memory_quota),
            ("spool-disk-quota", self.disk_quota),
            ("spool-high-watermark", self.high_watermark),
        ] {
            if v == Some(0) {
                return Err(Error::param(name, "must be greater than 0"));
            }
        }
        if let (Some(lo), Some(hi)) = (self.low_watermark, self.high_watermark) {
            if lo >= hi {
                return Err(Error::param(
                    "spool-low-watermark",
                    format!("must be below spool-high-watermark ({lo} >= {hi})"),
                ));
            }
        }
        Ok(())
    }
}

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
    /// csv options.
    pub csv: CsvOptions,
    /// canal-json: add the `_tidb` object with the commit ts.
    pub enable_tidb_extension: bool,
    /// Expire data files older than this many days (0 = never; needs the day date separator).
    pub file_expiration_days: u32,
    /// How often expiry runs.
    pub file_cleanup_interval: Duration,
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
            csv: CsvOptions::default(),
            enable_tidb_extension: false,
            file_expiration_days: 0,
            file_cleanup_interval: Duration::from_secs(3600),
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
        if let Some(v) = params.take("delimiter") {
            o.csv.delimiter = unescape(&v);
        }
        if let Some(v) = params.take("quote") {
            let mut chars = v.chars();
            o.csv.quote = match (chars.next(), chars.next()) {
                (None, _) => None,
                (Some(c), None) => Some(c),
                _ => {
                    return Err(Error::param(
                        "quote",
                        format!("must be empty or one character, got `{v}`"),
                    ))
                }
            };
        }
        if let Some(v) = params.take("null") {
            o.csv.null = v;
        }
        if let Some(v) = params.take("include-commit-ts") {
            o.csv.include_commit_ts = parse_bool("include-commit-ts", &v)?;
        }
        if let Some(v) = params.take("binary-encoding-method") {
            o.csv.binary_encoding = match v.as_str() {
                "base64" => BinaryEncoding::Base64,
                "hex" => BinaryEncoding::Hex,
                _ => {
                    return Err(Error::param(
                        "binary-encoding-method",
                        format!("`{v}` is not one of base64, hex"),
                    ))
                }
            };
        }
        if let Some(v) = params.take("output-old-value") {
            o.csv.output_old_value = parse_bool("output-old-value", &v)?;
        }
        if let Some(v) = params.take("output-field-header") {
            o.csv.output_field_header = parse_bool("output-field-header", &v)?;
        }
        if let Some(v) = params.take("terminator") {
            o.csv.terminator = unescape(&v);
        }
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
        if let Some(v) = params.take("file-cleanup-interval") {
            o.file_cleanup_interval = parse_duration(
                "file-cleanup-interval",
                &v,
                MIN_FILE_CLEANUP_INTERVAL,
                MAX_FILE_CLEANUP_INTERVAL,
            )?;
        }
        let spool_size = |name: &str, v: String| parse_size(name, &v, 1, u64::MAX);
        if let Some(v) = params.take("spool-memory-quota") {
            o.spool.memory_quota = Some(spool_size("spool-memory-quota", v)?);
        }
        if let Some(v) = params.take("spool-disk-quota") {
            o.spool.disk_quota = Some(spool_size("spool-disk-quota", v)?);
        }
        if let Some(v) = params.take("spool-dir") {
            o.spool.dir = Some(PathBuf::from(v));
        }
        if let Some(v) = params.take("spool-high-watermark") {
            o.spool.high_watermark = Some(spool_size("spool-high-watermark", v)?);
        }
        if let Some(v) = params.take("spool-low-watermark") {
            o.spool.low_watermark = Some(parse_size("spool-low-watermark", &v, 0, u64::MAX)?);
        }
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
        if self.protocol == Protocol::Csv {
            self.csv.validate()?;
        }
        if self.file_expiration_days > 0 && self.date_separator != DateSeparator::Day {
            return Err(Error::param(
                "file-expiration-days",
                "needs date-separator=day",
            ));
        }
        self.spool.validate()
    }

    /// Parses options from a query string (`a=b&c=d`, percent-encoded); unknown names are errors.
    pub fn from_query(query: &str) -> Result<SinkOptions> {
        let mut p = Params::from_query(query)?;
        let o = SinkOptions::take_from(&mut p)?;
        p.finish(SINK_PARAMS)?;
        Ok(o)
    }
}

/// Named string parameters with "take" semantics: each parser takes the names it knows, and
/// [`Params::finish`] rejects whatever is left, naming it.
#[derive(Clone, Debug, Default)]
pub struct Params {
    values: BTreeMap<String, String>,
}

impl Params {
    /// Parses a percent-encoded query string. A repeated name is an error.
    pub fn from_query(query: &str) -> Result<Params> {
        let mut p = Params::default();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            p.insert(k.into_owned(), v.into_owned())?;
        }
        Ok(p)
    }

    /// Adds a parameter; a repeated name is an error.
    pub fn insert(&mut self, name: String, value: String) -> Result<()> {
        if self.values.contains_key(&name) {
            return Err(Error::param(name, "given more than once"));
        }
        self.values.insert(name, value);
        Ok(())
    }

    /// Adds the top-level keys of a TOML document that are not already present (the URI wins).
    pub fn merge_toml(&mut self, text: &str, file: &str) -> Result<()> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            Error::param(file.to_string(), format!("not valid TOML: {e}"))
        })?;
        for (k, v) in table {
            let s = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Float(f) => f.to_string(),
                other => {
                    return Err(Error::param(
                        k,
                        format!("in {file}: expected a string, number or bool, got {other}"),
                    ))
                }
            };
            self.values.entry(k).or_insert(s);
        }
        Ok(())
    }

    /// Removes and returns a parameter.
    pub fn take(&mut self, name: &str) -> Option<String> {
        self.values.remove(name)
    }

    /// True when nothing is left.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Errors on the first parameter nobody took, listing the names that are understood.
    pub fn finish(self, known: &[&str]) -> Result<()> {
        match self.values.into_keys().next() {
            None => Ok(()),
            Some(name) => Err(Error::param(
                name,
                format!("unknown parameter; known are: {}", known.join(", ")),
            )),
        }
    }
}

/// Parses `true|false|1|0`.
pub fn parse_bool(name: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(Error::param(name, format!("`{v}` is not true or false"))),
    }
}

/// Parses an integer in `min..=max`.
pub fn parse_int(name: &str, v: &str, min: u64, max: u64) -> Result<u64> {
    let n: u64 = v
        .trim()
        .parse()
        .map_err(|_| Error::param(name, format!("`{v}` is not a whole number")))?;
    if n < min || n > max {
        return Err(Error::param(
            name,
            format!("{n} is out of range {min}..={max}"),
        ));
    }
    Ok(n)
}

/// Parses a size (`67108864`, `64MiB`, `64MB`, `1GiB`) in `min..=max` bytes.
pub fn parse_size(name: &str, v: &str, min: u64, max: u64) -> Result<u64> {
    let n = match v.trim().parse::<u64>() {
        Ok(n) => n,
        Err(_) => v
            .trim()
            .parse::<bytesize::ByteSize>()
            .map_err(|e| {
                Error::param(
                    name,
                    format!("`{v}` is not a size ({e}); write bytes or e.g. 64MiB"),
                )
            })?
            .as_u64(),
    };
    if n < min || n > max {
        return Err(Error::param(
            name,
            format!("{n} bytes is out of range {min}..={max}"),
        ));
    }
    Ok(n)
}

/// Parses a duration (`5s`, `500ms`, `1m 30s`; a bare number is seconds) in `min..=max`.
pub fn parse_duration(name: &str, v: &str, min: Duration, max: Duration) -> Result<Duration> {
    let d = match v.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::from_secs_f64(secs),
        _ => humantime::parse_duration(v.trim()).map_err(|e| {
            Error::param(
                name,
                format!("`{v}` is not a duration ({e}); write e.g. 5s or 500ms"),
            )
        })?,
    };
    if d < min || d > max {
        return Err(Error::param(
            name,
            format!("{d:?} is out of range {min:?}..={max:?}"),
        ));
    }
    Ok(d)
}

/// Turns the escapes `\t`, `\r`, `\n` and `\\` into their characters (delimiter, terminator).
fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_name(r: Result<SinkOptions>) -> String {
        match r {
            Err(Error::InvalidParameter { name, .. }) => name,
            other => panic!("expected InvalidParameter, got {other:?}"),
        }
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
