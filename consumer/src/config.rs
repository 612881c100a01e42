//! Command-line options and their validated form.
//!
//! The upstream URI is any storage URI of `cdc_common::storage`; the sink's options that shape
//! the files (protocol, csv options, date-separator, file-index-width, partition separator) are
//! given as its query parameters or in a TOML file (`--config`, URI parameters win), which may
//! also set every flag ([`crate::config_file`]). Unknown parameters are errors naming them.

use crate::error::{Error, Result};
use crate::freshness::{default_unhealthy_after, HealthPolicy};
use crate::group::GroupConfig;
use crate::quarantine::BadFilePolicy;
use crate::secrets::Secrets;
use cdc_common::layout::LayoutConfig;
use cdc_common::options::{parse_bool, parse_duration, parse_size, SinkOptions, SINK_PARAMS};
use cdc_common::storage::{redact_uri, StorageUri, STORAGE_PARAMS};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Default pause between replay rounds: short enough for second-level freshness, long enough
/// that an idle consumer costs a few small requests per table per second.
pub const DEFAULT_INTERVAL: &str = "1s";
/// Default `--read-ahead-bytes` ([`crate::replay::DEFAULT_READ_AHEAD_BYTES`] written as a size).
pub const DEFAULT_READ_AHEAD_BYTES: &str = "128MiB";
/// Default rows per multi-row statement: 256 rows of 10 columns stay far below every
/// downstream's bound-parameter limit (SQLite 32766, PostgreSQL and MySQL 65535).
pub const DEFAULT_BATCH_ROWS: usize = 256;
/// Default downstream: an SQLite file in the working directory.
pub const DEFAULT_DOWNSTREAM: &str = "sqlite://storage-consumer.db";
/// Upstream URI parameter (consumer only): how long a listing may leave out new objects
/// (`0s`, the default, for the strongly consistent S3, GCS, Azure Blob and local stores).
pub const LISTING_LAG_PARAM: &str = "listing-lag";

/// TiCDC's canal-json `content-compatible` option (tiflow): `mysqlType` holds each column's
/// full type and `old` only the changed columns. Accepted (`true` or `false`) and read the same
/// either way: the decoder takes ENUM/SET elements from a full `mysqlType` and fills a partial
/// `old` from `data`.
pub const CONTENT_COMPATIBLE_PARAM: &str = "content-compatible";
/// Longest listing lag accepted.
pub const MAX_LISTING_LAG: Duration = Duration::from_secs(3600);

/// `storage-consumer` command line.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "storage-consumer",
    version,
    about = "Replays cdc-storage (TiCDC-compatible) data into SQLite, PostgreSQL, MySQL/MariaDB or stdout",
    long_about = "Replays the data, index and schema files a cdc-storage (or TiCDC) storage sink \
wrote, in order and exactly once in effect, into a downstream database. Per-table progress is \
stored in the downstream (table cdc_consumer_progress) in the same transaction as the rows, so a \
restart resumes where it stopped."
)]
pub struct Args {
    /// Storage to replay: file:///dir, memory://name, s3://bucket/prefix?endpoint=..., gcs://...,
    /// azure://...; the sink's options (protocol, compression, delimiter, quote, null, include-commit-ts,
    /// binary-encoding-method, output-old-value, terminator, enable-tidb-extension,
    /// date-separator, file-index-width, enable-partition-separator) as query parameters.
    #[arg(long, env = "CDC_CONSUMER_UPSTREAM_URI", hide_env_values = true)]
    pub upstream_uri: String,
    /// TOML file: any flag by its long name (`downstream-uri = "..."`, `once = true`) and the
    /// upstream URI's query parameters; the command line and environment win over it, the
    /// URI's query over its parameters (see docs/operations.md).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where to replay: sqlite:///path.db (or sqlite://relative.db), postgres://user@host/db,
    /// mysql://user@host/db, or stdout:// (JSON lines; progress in --progress-file).
    #[arg(
        long,
        default_value = DEFAULT_DOWNSTREAM,
        env = "CDC_CONSUMER_DOWNSTREAM_URI",
        hide_env_values = true
    )]
    pub downstream_uri: String,
    /// Pause between replay rounds (e.g. 500ms, 1s, 1m).
    #[arg(long, default_value = DEFAULT_INTERVAL)]
    pub interval: String,
    /// Replay what is in storage now (up to the checkpoint-ts) and exit.
    #[arg(long)]
    pub once: bool,
    /// /health says `failing` (HTTP 503) when no round succeeded for this long (default: ten
    /// --interval, at least 30s).
    #[arg(long)]
    pub unhealthy_after: Option<String>,
    /// /health says `stalled` (HTTP 503) when the checkpoint is older than this (e.g. 5m; off
    /// unless given: an idle upstream also ages its checkpoint).
    #[arg(long)]
    pub stale_after: Option<String>,
    /// Round audit records kept in the downstream (cdc_consumer_rounds, or the stdout
    /// progress file's .rounds.jsonl); the oldest beyond are deleted.
    #[arg(long, default_value_t = crate::audit::DEFAULT_KEEP_ROUNDS)]
    pub keep_rounds: u64,
    /// Exit (status 0) once every table is applied up to this commit ts.
    #[arg(long)]
    pub until_ts: Option<u64>,
    /// Only these tables: comma-separated `schema.table` patterns where either side may be `*`.
    #[arg(long)]
    pub tables: Option<String>,
    /// Serve GET / (status page), /health and /metrics on this address: off unless given; a
    /// bare port (9100) binds 127.0.0.1; another interface (0.0.0.0:9100) only when written;
    /// 127.0.0.1:0 picks a free port, logged at start.
    #[arg(long)]
    pub metrics_addr: Option<String>,
    /// Log filter (error, warn, info, debug, trace, or a tracing env-filter directive).
    #[arg(long, default_value = "info", env = "RUST_LOG")]
    pub log_level: String,
    /// Rows per multi-row statement.
    #[arg(long, default_value_t = DEFAULT_BATCH_ROWS)]
    pub batch_rows: usize,
    /// Data files read and decoded ahead of the one being applied (0..=256; 0 reads each file
    /// when its turn comes): this many GETs in flight hide the store's request latency.
    /// Default 32 from an object store, 8 from a local directory.
    #[arg(long)]
    pub read_ahead: Option<usize>,
    /// Stored bytes the read-ahead holds, about (e.g. 128MiB; 1MiB..=16GiB; at least one file
    /// is read ahead whatever its size). Memory: the decoded rows of that much data.
    #[arg(long, default_value = DEFAULT_READ_AHEAD_BYTES)]
    pub read_ahead_bytes: String,
    /// Consecutive data files of one stream applied in one downstream transaction with one
    /// progress row (1..=64; 1 applies every file alone). A unit also stops at 100,000 row
    /// changes, at a file partly above the checkpoint and at a file that does not read.
    #[arg(long, default_value_t = crate::replay::DEFAULT_UNIT_FILES)]
    pub unit_files: usize,
    /// Progress file for the stdout downstream (default: storage-consumer.progress.json).
    #[arg(long)]
    pub progress_file: Option<PathBuf>,
    /// A data file that does not decode: `stop` the round (progress stays before it), or
    /// `quarantine` it (recorded in the downstream's cdc_consumer_quarantine table with its
    /// path, reason and time, its rows NOT applied) and continue with the next file. Missing
    /// files, bad schema/index/metadata files and downstream errors always stop.
    #[arg(long, default_value = "stop")]
    pub on_bad_file: String,
    /// No progress bar with `--once` (it is drawn only on a terminal anyway).
    #[arg(long)]
    pub quiet: bool,
    /// Join the consumer group NAME: processes with the same group, storage and downstream
    /// share the tables through leases in the downstream (PostgreSQL and MySQL/MariaDB only).
    #[arg(long)]
    pub group: Option<String>,
    /// This member's id in its group (default: host name and process id).
    #[arg(long, requires = "group")]
    pub member_id: Option<String>,
    /// How long a group lease lives without renewal (a dead member's tables move after it).
    #[arg(long, default_value = "10s", requires = "group")]
    pub lease_ttl: String,
}

/// Tables to replay, from `--tables`.
#[derive(Clone, Debug, Default)]
pub struct TableFilter {
    patterns: Vec<(String, String)>,
}

impl TableFilter {
    /// Every table.
    pub fn all() -> TableFilter {
        TableFilter::default()
    }

    /// Parses `a.b,c.*,*.d`.
    pub fn parse(s: &str) -> Result<TableFilter> {
        let mut patterns = Vec::new();
        for p in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (schema, table) = p.split_once('.').ok_or_else(|| {
                Error::config(
                    "tables",
                    format!("`{p}` is not `schema.table` (`*` allowed)"),
                )
            })?;
            if schema.is_empty() || table.is_empty() {
                return Err(Error::config("tables", format!("`{p}` has an empty side")));
            }
            patterns.push((schema.to_string(), table.to_string()));
        }
        if patterns.is_empty() {
            return Err(Error::config("tables", "no pattern given"));
        }
        Ok(TableFilter { patterns })
    }

    /// True when the table is replayed.
    pub fn matches(&self, schema: &str, table: &str) -> bool {
        self.patterns.is_empty()
            || self
                .patterns
                .iter()
                .any(|(s, t)| (s == "*" || s == schema) && (t == "*" || t == table))
    }

    /// True when it accepts every table and schema (no patterns).
    pub fn is_all(&self) -> bool {
        self.patterns.is_empty()
    }

    /// True when some table of the schema may be replayed.
    pub fn matches_schema(&self, schema: &str) -> bool {
        self.patterns.is_empty() || self.patterns.iter().any(|(s, _)| s == "*" || s == schema)
    }
}

/// Where rows go. `Debug` shows connection URIs with their secrets redacted.
#[derive(Clone)]
pub enum DownstreamUri {
    /// An SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URI.
    Postgres(String),
    /// A MySQL/MariaDB connection URI.
    Mysql(String),
    /// JSON lines on stdout, progress in a file.
    Stdout(PathBuf),
}

impl std::fmt::Debug for DownstreamUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DownstreamUri::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
            DownstreamUri::Postgres(u) => f.debug_tuple("Postgres").field(&redact_uri(u)).finish(),
            DownstreamUri::Mysql(u) => f.debug_tuple("Mysql").field(&redact_uri(u)).finish(),
            DownstreamUri::Stdout(p) => f.debug_tuple("Stdout").field(p).finish(),
        }
    }
}

impl DownstreamUri {
    /// Parses `--downstream-uri` (with `--progress-file` for stdout).
    pub fn parse(uri: &str, progress_file: Option<PathBuf>) -> Result<DownstreamUri> {
        let bad = |reason: &str| {
            Error::config("downstream-uri", format!("`{}`: {reason}", redact_uri(uri)))
        };
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| bad("expected scheme://..."))?;
        match scheme {
            "sqlite" => {
                let path = rest.split('?').next().unwrap_or("");
                if path.is_empty() {
                    return Err(bad("sqlite needs a file path (sqlite:///abs/path.db)"));
                }
                Ok(DownstreamUri::Sqlite(PathBuf::from(path)))
            }
            "postgres" | "postgresql" => Ok(DownstreamUri::Postgres(uri.to_string())),
            "mysql" | "mariadb" => Ok(DownstreamUri::Mysql(format!("mysql://{rest}"))),
            "stdout" => {
                Ok(DownstreamUri::Stdout(progress_file.unwrap_or_else(|| {
                    PathBuf::from("storage-consumer.progress.json")
                })))
            }
            other => Err(bad(&format!(
                "unknown scheme `{other}`; expected sqlite, postgres, mysql or stdout"
            ))),
        }
    }
}

/// Validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The upstream storage.
    pub upstream: StorageUri,
    /// The upstream URI with secrets redacted (for logs).
    pub upstream_redacted: String,
    /// The sink options the storage was written with.
    pub sink: SinkOptions,
    /// Layout part of `sink`.
    pub layout: LayoutConfig,
    /// The downstream.
    pub downstream: DownstreamUri,
    /// The downstream URI with secrets redacted (for logs).
    pub downstream_redacted: String,
    /// Pause between rounds.
    pub interval: Duration,
    /// Exit after replaying what is there.
    pub once: bool,
    /// When `/health` turns failing or stalled (`--unhealthy-after`, `--stale-after`).
    pub health_policy: HealthPolicy,
    /// Round audit records kept in the downstream (`--keep-rounds`).
    pub keep_rounds: u64,
    /// Data files read ahead (`--read-ahead`).
    pub read_ahead: usize,
    /// Stored bytes the read-ahead holds, about (`--read-ahead-bytes`).
    pub read_ahead_bytes: u64,
    /// Data files per unit (`--unit-files`).
    pub unit_files: usize,
    /// Exit once this ts is applied.
    pub until_ts: Option<cdc_common::Ts>,
    /// Tables to replay.
    pub tables: TableFilter,
    /// HTTP address for /, /health and /metrics (see [`parse_metrics_addr`]).
    pub metrics_addr: Option<SocketAddr>,
    /// Rows per multi-row statement.
    pub batch_rows: usize,
    /// How long upstream listings may leave out new objects (`listing-lag`).
    pub listing_lag: Duration,
    /// What to do with a data file that does not decode.
    pub on_bad_file: BadFilePolicy,
    /// Secret values of both URIs, redacted from every text shown (see [`crate::secrets`]).
    pub secrets: Secrets,
    /// The consumer group this process joins (`--group`).
    pub group: Option<GroupConfig>,
}

/// `--group`, `--member-id` and `--lease-ttl`: only for PostgreSQL and MySQL/MariaDB.
fn group_config(a: &Args, down: &DownstreamUri) -> Result<Option<GroupConfig>> {
    let Some(name) = &a.group else {
        return Ok(None);
    };
    if matches!(down, DownstreamUri::Sqlite(_) | DownstreamUri::Stdout(_)) {
        return Err(Error::config(
            "group",
            "a consumer group needs a PostgreSQL or MySQL/MariaDB downstream; SQLite and stdout are single-member downstreams (drop --group)",
        ));
    }
    if a.once {
        return Err(Error::config(
            "group",
            "cannot be combined with --once: a group member runs until stopped (its tables then move to the other members)",
        ));
    }
    let ok = |s: &str| !s.is_empty() && s.len() <= 128 && !s.chars().any(char::is_control);
    if !ok(name) {
        return Err(Error::config(
            "group",
            "must be 1..=128 characters without control characters",
        ));
    }
    let member = a
        .member_id
        .clone()
        .unwrap_or_else(crate::group::default_member_id);
    if !ok(&member) {
        return Err(Error::config(
            "member-id",
            "must be 1..=128 characters without control characters",
        ));
    }
    let ttl = parse_duration(
        "lease-ttl",
        &a.lease_ttl,
        Duration::from_millis(300),
        Duration::from_secs(3600),
    )?;
    Ok(Some(GroupConfig {
        group: name.clone(),
        member,
        ttl,
    }))
}

/// Parses `--metrics-addr`: `ip:port` binds exactly that address (`0.0.0.0:9100` or
/// `[::]:9100` only when written so); a bare port (`9100` or `:9100`) binds 127.0.0.1, so the
/// endpoints are never reachable from other hosts unless an address says so.
pub fn parse_metrics_addr(s: &str) -> Result<SocketAddr> {
    let port = s.strip_prefix(':').unwrap_or(s);
    if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
        let port: u16 = port.parse().map_err(|_| {
            Error::config("metrics-addr", format!("port `{port}` is not 0..=65535"))
        })?;
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse::<SocketAddr>().map_err(|e| {
        Error::config(
            "metrics-addr",
            format!("`{}` is not ip:port or a port ({e})", s.escape_debug()),
        )
    })
}

/// `--unhealthy-after` (default from `--interval`, see [`default_unhealthy_after`]) and
/// `--stale-after` (off unless given).
fn health_policy(a: &Args, interval: Duration) -> Result<HealthPolicy> {
    let max = Duration::from_secs(7 * 24 * 3600);
    let unhealthy_after = match &a.unhealthy_after {
        Some(v) => parse_duration("unhealthy-after", v, Duration::from_millis(1), max)?,
        None => default_unhealthy_after(interval),
    };
    let stale_after = a
        .stale_after
        .as_deref()
        .map(|v| parse_duration("stale-after", v, Duration::from_millis(1), max))
        .transpose()?;
    Ok(HealthPolicy {
        unhealthy_after,
        stale_after,
    })
}

impl Config {
    /// Validates the command line (reading `--config` when given).
    pub fn from_args(a: &Args) -> Result<Config> {
        let (upstream, mut params) = StorageUri::parse(&a.upstream_uri)?;
        if let Some(file) = &a.config {
            let text = std::fs::read_to_string(file).map_err(|e| Error::Io {
                path: file.display().to_string(),
                source: e,
            })?;
            // The file's flag keys were applied by `config_file::parse_args`.
            let flags = crate::config_file::flag_names();
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            params.merge_toml_skipping(&text, &file.display().to_string(), &flags)?;
        }
        let sink = SinkOptions::take_from(&mut params)?;
        let listing_lag = match params.take(LISTING_LAG_PARAM) {
            Some(v) => parse_duration(LISTING_LAG_PARAM, &v, Duration::ZERO, MAX_LISTING_LAG)?,
            None => Duration::ZERO,
        };
        if let Some(v) = params.take(CONTENT_COMPATIBLE_PARAM) {
            parse_bool(CONTENT_COMPATIBLE_PARAM, &v)?;
        }
        params.finish(
            &[
                STORAGE_PARAMS,
                SINK_PARAMS,
                &[LISTING_LAG_PARAM, CONTENT_COMPATIBLE_PARAM],
            ]
            .concat(),
        )?;
        let interval = parse_duration(
            "interval",
            &a.interval,
            Duration::from_millis(1),
            Duration::from_secs(3600),
        )?;
        let health_policy = health_policy(a, interval)?;
        if a.keep_rounds == 0 {
            return Err(Error::config("keep-rounds", "must be at least 1"));
        }
        let read_ahead = a.read_ahead.unwrap_or(match upstream.kind {
            cdc_common::storage::StorageKind::Local { .. } => {
                crate::replay::DEFAULT_READ_AHEAD_LOCAL
            }
            _ => crate::replay::DEFAULT_READ_AHEAD,
        });
        if read_ahead > 256 {
            return Err(Error::config("read-ahead", "must be 0..=256 data files"));
        }
        let read_ahead_bytes =
            parse_size("read-ahead-bytes", &a.read_ahead_bytes, 1 << 20, 16 << 30)?;
        if a.unit_files == 0 || a.unit_files > crate::replay::MAX_UNIT_FILES {
            return Err(Error::config(
                "unit-files",
                format!("must be 1..={} data files", crate::replay::MAX_UNIT_FILES),
            ));
        }
        if a.batch_rows == 0 || a.batch_rows > 10_000 {
            return Err(Error::config("batch-rows", "must be 1..=10000"));
        }
        let metrics_addr = a
            .metrics_addr
            .as_deref()
            .map(parse_metrics_addr)
            .transpose()?;
        let downstream = DownstreamUri::parse(&a.downstream_uri, a.progress_file.clone())?;
        let group = group_config(a, &downstream)?;
        Ok(Config {
            group,
            upstream_redacted: redact_uri(&a.upstream_uri),
            layout: LayoutConfig::from_options(&sink),
            sink,
            upstream,
            downstream,
            downstream_redacted: redact_uri(&a.downstream_uri),
            interval,
            once: a.once,
            health_policy,
            keep_rounds: a.keep_rounds,
            read_ahead,
            read_ahead_bytes,
            unit_files: a.unit_files,
            until_ts: a.until_ts.map(cdc_common::Ts),
            tables: match &a.tables {
                Some(t) => TableFilter::parse(t)?,
                None => TableFilter::all(),
            },
            metrics_addr,
            batch_rows: a.batch_rows,
            listing_lag,
            on_bad_file: BadFilePolicy::parse(&a.on_bad_file)?,
            secrets: Secrets::from_uris(&[&a.upstream_uri, &a.downstream_uri]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_filter_patterns() {
        let f = TableFilter::parse("a.b, c.*,*.d").unwrap();
        assert!(f.matches("a", "b"));
        assert!(!f.matches("a", "c"));
        assert!(f.matches("c", "x"));
        assert!(f.matches("z", "d"));
        assert!(f.matches_schema("z"));
        assert!(TableFilter::parse("nodot").is_err());
        assert!(TableFilter::all().matches("x", "y"));
    }

    fn config(extra: &[&str]) -> Result<Config> {
        use clap::Parser;
        let mut argv = vec![
            "storage-consumer",
            "--upstream-uri",
            "memory://cfg?protocol=csv",
        ];
        argv.extend_from_slice(extra);
        Config::from_args(&Args::parse_from(argv))
    }

    #[test]
    fn read_ahead_defaults_by_store_and_the_flag_wins() {
        use clap::Parser;
        let at = |uri: &str, extra: &[&str]| {
            let mut argv = vec!["storage-consumer", "--upstream-uri", uri];
            argv.extend_from_slice(extra);
            Config::from_args(&Args::parse_from(argv))
                .unwrap()
                .read_ahead
        };
        let local = "file:///tmp/cfg-read-ahead?protocol=csv";
        assert_eq!(at(local, &[]), crate::replay::DEFAULT_READ_AHEAD_LOCAL);
        assert_eq!(
            at("memory://cfg?protocol=csv", &[]),
            crate::replay::DEFAULT_READ_AHEAD
        );
        assert_eq!(at(local, &["--read-ahead", "20"]), 20);
        assert_eq!(at("memory://cfg?protocol=csv", &["--read-ahead", "0"]), 0);
    }

    #[test]
    fn read_ahead_bytes_is_a_size_in_range() {
        assert_eq!(
            config(&[]).unwrap().read_ahead_bytes,
            crate::replay::DEFAULT_READ_AHEAD_BYTES
        );
        let c = config(&["--read-ahead-bytes", "64MiB"]).unwrap();
        assert_eq!(c.read_ahead_bytes, 64 << 20);
        for (bad, says) in [("lots", "`lots` is not a size"), ("512KiB", "out of range")] {
            let e = config(&["--read-ahead-bytes", bad])
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("read-ahead-bytes") && e.contains(says),
                "--read-ahead-bytes {bad}: {e}"
            );
        }
    }

    #[test]
    fn downstream_uris() {
        assert!(matches!(
            DownstreamUri::parse("sqlite:///tmp/x.db", None).unwrap(),
            DownstreamUri::Sqlite(p) if p == std::path::Path::new("/tmp/x.db")
        ));
        assert!(matches!(
            DownstreamUri::parse("stdout://", None).unwrap(),
            DownstreamUri::Stdout(_)
        ));
        assert!(matches!(
            DownstreamUri::parse("oracle://x", None),
            Err(Error::Config { name, .. }) if name == "downstream-uri"
        ));
    }
}
