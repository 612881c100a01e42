//! `--config` TOML covers every flag, and the downstream URI (with its password) can come from
//! `CDC_CONSUMER_DOWNSTREAM_URI`: precedence command line > environment > file > default, and
//! neither the file nor the environment's secrets show in `--help` or errors.

use cdc_consumer::config::Config;
use cdc_consumer::config_file::{flag_names, parse_args};
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_storage-consumer");

fn consumer() -> Command {
    let mut c = Command::new(BIN);
    for var in [
        "CDC_CONSUMER_UPSTREAM_URI",
        "CDC_CONSUMER_DOWNSTREAM_URI",
        "RUST_LOG",
    ] {
        c.env_remove(var);
    }
    c
}

#[test]
fn config_file_sets_every_flag() {
    for var in [
        "CDC_CONSUMER_UPSTREAM_URI",
        "CDC_CONSUMER_DOWNSTREAM_URI",
        "RUST_LOG",
    ] {
        std::env::remove_var(var);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("consumer.toml");
    let text = r#"
upstream-uri = "memory://cfg-every-flag?protocol=csv"
downstream-uri = "sqlite:///tmp/cfg-every-flag.db"
interval = "250ms"
once = true
unhealthy-after = "45s"
stale-after = "10m"
keep-rounds = 7
until-ts = 12345
tables = "db.*"
metrics-addr = "127.0.0.1:0"
log-level = "debug"
batch-rows = 99
read-ahead = 3
read-ahead-bytes = "2MiB"
unit-files = 5
progress-file = "/tmp/cfg-every-flag.json"
on-bad-file = "quarantine"
quiet = true
group = "orders"
member-id = "m-1"
lease-ttl = "5s"
# an upstream URI parameter next to the flags
listing-lag = "2s"
"#;
    std::fs::write(&file, text).unwrap();
    // The file names every flag there is: a flag added later without a file key fails here.
    let table: toml::Table = text.parse().unwrap();
    let keys: BTreeSet<String> = table
        .keys()
        .filter(|k| *k != "listing-lag")
        .cloned()
        .collect();
    let flags: BTreeSet<String> = flag_names().into_iter().collect();
    assert_eq!(keys, flags);

    let mut a = parse_args(["storage-consumer", "--config", file.to_str().unwrap()]).unwrap();
    assert_eq!(a.upstream_uri, "memory://cfg-every-flag?protocol=csv");
    assert_eq!(a.downstream_uri, "sqlite:///tmp/cfg-every-flag.db");
    assert_eq!(a.interval, "250ms");
    assert!(a.once);
    assert_eq!(a.unhealthy_after.as_deref(), Some("45s"));
    assert_eq!(a.stale_after.as_deref(), Some("10m"));
    assert_eq!(a.keep_rounds, 7);
    assert_eq!(a.until_ts, Some(12345));
    assert_eq!(a.tables.as_deref(), Some("db.*"));
    assert_eq!(a.metrics_addr.as_deref(), Some("127.0.0.1:0"));
    assert_eq!(a.log_level, "debug");
    assert_eq!(a.batch_rows, 99);
    assert_eq!(a.read_ahead, Some(3));
    assert_eq!(a.read_ahead_bytes, "2MiB");
    assert_eq!(a.unit_files, 5);
    assert_eq!(
        a.progress_file.as_deref(),
        Some(std::path::Path::new("/tmp/cfg-every-flag.json"))
    );
    assert_eq!(a.on_bad_file, "quarantine");
    assert!(a.quiet);
    assert_eq!(a.group.as_deref(), Some("orders"));
    assert_eq!(a.member_id.as_deref(), Some("m-1"));
    assert_eq!(a.lease_ttl, "5s");
    // (a group needs PostgreSQL or MySQL and refuses --once: validated without it)
    a.group = None;
    a.member_id = None;
    // The validated configuration takes the flags and the URI parameter from the same file.
    let cfg = Config::from_args(&a).unwrap();
    assert_eq!(cfg.interval, Duration::from_millis(250));
    assert_eq!(cfg.listing_lag, Duration::from_secs(2));
    assert_eq!(cfg.batch_rows, 99);
    assert_eq!(cfg.read_ahead, 3);
    assert_eq!(cfg.read_ahead_bytes, 2 << 20);
    assert_eq!(cfg.unit_files, 5);

    // The command line wins over the file.
    let a = parse_args([
        "storage-consumer",
        "--config",
        file.to_str().unwrap(),
        "--interval",
        "5s",
        "--batch-rows=3",
    ])
    .unwrap();
    assert_eq!((a.interval.as_str(), a.batch_rows), ("5s", 3));
    assert_eq!(a.keep_rounds, 7, "the rest still from the file");
}

#[test]
fn bad_config_files_are_errors_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (text, needle) in [
        ("config = \"other.toml\"\n", "`config`"),
        ("once = \"yes\"\n", "`once`"),
        (
            "downstream-uri = [\"postgres://u:TOPSECRET@h/db\"]\n",
            "`downstream-uri`",
        ),
        ("batch-rows = 0\n", "batch-rows"),
        ("no-such-option = 1\n", "no-such-option"),
        ("interval = \n", "not valid TOML"),
    ] {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, text).unwrap();
        let mut cmd = consumer();
        cmd.args(["--upstream-uri", "memory://cfg-bad", "--config"])
            .arg(&file);
        if !text.starts_with("once") {
            cmd.arg("--once"); // the command line would win over the file's `once`
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{text}: {err}");
        assert!(!err.contains("TOPSECRET"), "{text}: {err}");
    }
}

#[test]
fn downstream_uri_from_the_environment_beats_the_file_and_stays_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("up");
    std::fs::create_dir_all(&up).unwrap();
    let env_db = dir.path().join("env.db");
    let file_db = dir.path().join("file.db");
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        format!(
            "upstream-uri = \"file://{}\"\ndownstream-uri = \"sqlite://{}\"\nonce = true\n",
            up.display(),
            file_db.display()
        ),
    )
    .unwrap();

    // The file alone: its downstream is used.
    let out = consumer().arg("--config").arg(&file).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(file_db.exists());
    std::fs::remove_file(&file_db).unwrap();

    // The environment wins over the file.
    let out = consumer()
        .arg("--config")
        .arg(&file)
        .env(
            "CDC_CONSUMER_DOWNSTREAM_URI",
            format!("sqlite://{}", env_db.display()),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(env_db.exists() && !file_db.exists());

    // A password in the environment shows neither in --help nor in the connection error.
    let secret_uri = "postgres://cdc:TOPSECRETPW@127.0.0.1:1/db";
    let help = consumer()
        .arg("--help")
        .env("CDC_CONSUMER_DOWNSTREAM_URI", secret_uri)
        .output()
        .unwrap();
    let help_text = String::from_utf8_lossy(&help.stdout);
    assert!(
        help_text.contains("CDC_CONSUMER_DOWNSTREAM_URI"),
        "{help_text}"
    );
    assert!(!help_text.contains("TOPSECRETPW"), "{help_text}");
    let out = consumer()
        .args([
            "--upstream-uri",
            &format!("file://{}", up.display()),
            "--once",
        ])
        .env("CDC_CONSUMER_DOWNSTREAM_URI", secret_uri)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("TOPSECRETPW"), "{err}");
}

#[test]
fn unit_files_out_of_range_is_refused_naming_the_flag() {
    for bad in ["0", "65"] {
        let a = parse_args([
            "storage-consumer",
            "--upstream-uri",
            "memory://units?protocol=csv",
            "--downstream-uri",
            "sqlite:///tmp/units.db",
            "--unit-files",
            bad,
        ])
        .unwrap();
        let e = Config::from_args(&a).unwrap_err().to_string();
        assert!(
            e.contains("unit-files") && e.contains("1..=64"),
            "--unit-files {bad}: {e}"
        );
    }
}
