//! The capture command's flags, its TOML file, and the validated [`CaptureConfig`].
//!
//! Every flag has a TOML key of the same name (`source`, `publication`, `slot`, `sink-uri`,
//! `poll-interval`, `max-changes`, `changefeed`, `metrics-addr`); a flag given on the command line wins over
//! the file. Secrets (the source's password, the sink URI's keys) never appear in `Debug`
//! output or logs: both URIs are shown through `cdc_common::storage::redact_uri`.

use crate::error::{CaptureError, Result};
use cdc_common::storage::redact_uri;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Default pause between polls of an idle slot: a change waits at most this long before it is
/// decoded, and an idle capture costs one cheap query per interval.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Default change rows decoded per poll: bounds the memory of one poll (a poll always ends on
/// a transaction boundary, so one large transaction may exceed it).
pub const DEFAULT_MAX_CHANGES: u32 = 10_000;
/// Default changefeed name prefix (metric label, spool sub-directory): `capture-<slot>`.
pub const DEFAULT_CHANGEFEED: &str = "capture";

/// `cdc-storage capture` / `cdc-capture` flags.
#[derive(clap::Args, Clone, Default)]
pub struct CaptureArgs {
    /// Source database: postgres://user:password@host:port/db (the role needs REPLICATION).
    #[arg(long)]
    pub source: Option<String>,
    /// Publication naming the tables to capture (CREATE PUBLICATION ... FOR ALL TABLES).
    #[arg(long)]
    pub publication: Option<String>,
    /// Logical replication slot; created (pgoutput) with an initial snapshot when missing.
    #[arg(long)]
    pub slot: Option<String>,
    /// Storage URI with the sink options as query parameters (file:///dir?protocol=csv, s3://...).
    #[arg(long)]
    pub sink_uri: Option<String>,
    /// TOML file with any of the keys above (source, publication, slot, sink-uri, ...).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Pause between polls of an idle slot (e.g. 100ms).
    #[arg(long)]
    pub poll_interval: Option<String>,
    /// Change rows decoded per poll.
    #[arg(long)]
    pub max_changes: Option<u32>,
    /// Changefeed name (metrics label, spool directory); default `capture-<slot>`.
    #[arg(long)]
    pub changefeed: Option<String>,
    /// Serve capture's and the sink's metrics at http://ADDR/metrics (e.g. 127.0.0.1:9101).
    #[arg(long)]
    pub metrics_addr: Option<String>,
}

impl std::fmt::Debug for CaptureArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureArgs")
            .field("source", &self.source.as_deref().map(redact_uri))
            .field("publication", &self.publication)
            .field("slot", &self.slot)
            .field("sink_uri", &self.sink_uri.as_deref().map(redact_uri))
            .field("config", &self.config)
            .field("poll_interval", &self.poll_interval)
            .field("max_changes", &self.max_changes)
            .field("changefeed", &self.changefeed)
            .field("metrics_addr", &self.metrics_addr)
            .finish()
    }
}

/// The TOML file: the flags' keys.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    source: Option<String>,
    publication: Option<String>,
    slot: Option<String>,
    sink_uri: Option<String>,
    poll_interval: Option<String>,
    max_changes: Option<u32>,
    changefeed: Option<String>,
    metrics_addr: Option<String>,
}

/// The validated configuration.
#[derive(Clone)]
pub struct CaptureConfig {
    /// Source connection string.
    pub source: String,
    /// Publication name.
    pub publication: String,
    /// Slot name.
    pub slot: String,
    /// Sink storage URI with options.
    pub sink_uri: String,
    /// Pause between polls of an idle slot.
    pub poll_interval: Duration,
    /// Change rows per poll.
    pub max_changes: u32,
    /// Changefeed name.
    pub changefeed: String,
    /// Where to serve `/metrics`, if anywhere.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl std::fmt::Debug for CaptureConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureConfig")
            .field("source", &redact_uri(&self.source))
            .field("publication", &self.publication)
            .field("slot", &self.slot)
            .field("sink_uri", &redact_uri(&self.sink_uri))
            .field("poll_interval", &self.poll_interval)
            .field("max_changes", &self.max_changes)
            .field("changefeed", &self.changefeed)
            .field("metrics_addr", &self.metrics_addr)
            .finish()
    }
}

impl CaptureConfig {
    /// Merges the flags over the TOML file (if any) and validates.
    pub fn from_args(args: &CaptureArgs) -> Result<CaptureConfig> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let required = |name: &'static str, flag: &Option<String>, key: Option<String>| {
            flag.clone()
                .or(key)
                .filter(|v| !v.is_empty())
                .ok_or(CaptureError::InvalidParameter {
                    name,
                    reason: "required (flag or config-file key)".into(),
                })
        };
        let poll = args.poll_interval.clone().or(file.poll_interval);
        let slot = required("slot", &args.slot, file.slot)?;
        let cfg = CaptureConfig {
            source: required("source", &args.source, file.source)?,
            publication: required("publication", &args.publication, file.publication)?,
            sink_uri: required("sink-uri", &args.sink_uri, file.sink_uri)?,
            poll_interval: match poll {
                Some(p) => cdc_common::options::parse_duration(
                    "poll-interval",
                    &p,
                    Duration::from_millis(1),
                    Duration::from_secs(60),
                )
                .map_err(|e| CaptureError::InvalidParameter {
                    name: "poll-interval",
                    reason: e.to_string(),
                })?,
                None => DEFAULT_POLL_INTERVAL,
            },
            max_changes: args
                .max_changes
                .or(file.max_changes)
                .unwrap_or(DEFAULT_MAX_CHANGES),
            changefeed: args
                .changefeed
                .clone()
                .or(file.changefeed)
                // one spool sub-directory per slot: captures of different slots on one host
                // never share (nor lock each other out of) a spool directory
                .unwrap_or_else(|| format!("{DEFAULT_CHANGEFEED}-{slot}")),
            metrics_addr: match args.metrics_addr.clone().or(file.metrics_addr) {
                Some(a) => Some(a.parse().map_err(|e| CaptureError::InvalidParameter {
                    name: "metrics-addr",
                    reason: format!("`{a}` is not an address:port: {e}"),
                })?),
                None => None,
            },
            slot,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<()> {
        // Slot names: lower-case letters, digits, underscore (PostgreSQL's rule); quoting them
        // in the replication command is then never needed.
        if self.slot.len() > 63
            || !self
                .slot
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(CaptureError::InvalidParameter {
                name: "slot",
                reason: "use at most 63 lower-case letters, digits and underscores".into(),
            });
        }
        if self.max_changes == 0 {
            return Err(CaptureError::InvalidParameter {
                name: "max-changes",
                reason: "must be at least 1".into(),
            });
        }
        if self.poll_interval.is_zero() {
            return Err(CaptureError::InvalidParameter {
                name: "poll-interval",
                reason: "must be above 0".into(),
            });
        }
        self.source.parse::<tokio_postgres::Config>().map_err(|e| {
            CaptureError::InvalidParameter {
                name: "source",
                reason: format!("not a PostgreSQL connection string: {e}"),
            }
        })?;
        Ok(())
    }
}

fn read_file(path: &std::path::Path) -> Result<FileConfig> {
    let err = |reason: String| CaptureError::ConfigFile {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    toml::from_str(&text).map_err(|e| err(e.message().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> CaptureArgs {
        CaptureArgs {
            source: Some("postgres://cap:hunter2@127.0.0.1:5432/db".into()),
            publication: Some("p".into()),
            slot: Some("s1".into()),
            sink_uri: Some("s3://b?access-key=AK&secret-access-key=SECRETKEY".into()),
            ..CaptureArgs::default()
        }
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let a = args();
        let cfg = CaptureConfig::from_args(&a).unwrap();
        for text in [format!("{a:?}"), format!("{cfg:?}")] {
            assert!(!text.contains("hunter2"), "{text}");
            assert!(!text.contains("SECRETKEY"), "{text}");
        }
    }

    #[test]
    fn file_fills_what_flags_leave_out_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "source = \"postgres://x@h/db\"\npublication = \"filepub\"\nslot = \"fileslot\"\nsink-uri = \"file:///tmp/x\"\npoll-interval = \"250ms\"\n",
        )
        .unwrap();
        let a = CaptureArgs {
            config: Some(path.clone()),
            slot: Some("flagslot".into()),
            ..CaptureArgs::default()
        };
        let cfg = CaptureConfig::from_args(&a).unwrap();
        assert_eq!(cfg.publication, "filepub");
        assert_eq!(cfg.slot, "flagslot");
        assert_eq!(cfg.poll_interval, Duration::from_millis(250));
        std::fs::write(&path, "slots = \"typo\"\n").unwrap();
        assert!(matches!(
            CaptureConfig::from_args(&a),
            Err(CaptureError::ConfigFile { .. })
        ));
    }

    #[test]
    fn bad_values_name_their_parameter() {
        let mut a = args();
        a.slot = Some("Bad-Slot".into());
        assert!(matches!(
            CaptureConfig::from_args(&a),
            Err(CaptureError::InvalidParameter { name: "slot", .. })
        ));
        let mut a = args();
        a.publication = None;
        assert!(matches!(
            CaptureConfig::from_args(&a),
            Err(CaptureError::InvalidParameter {
                name: "publication",
                ..
            })
        ));
    }
}
