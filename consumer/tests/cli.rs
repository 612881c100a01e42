//! The binary's command line: `--help` explains every option; bad options and downstreams are
//! errors naming them; the stdout downstream prints JSON lines and keeps its progress file.

use crate::support;

use cdc_common::DdlKind;
use std::process::Command;
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_storage-consumer");

#[test]
fn help_explains_every_option() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--upstream-uri",
        "--config",
        "--downstream-uri",
        "--interval",
        "--once",
        "--until-ts",
        "--tables",
        "--metrics-addr",
        "--log-level",
        "--batch-rows",
        "--progress-file",
    ] {
        assert!(text.contains(opt), "--help lacks {opt}:\n{text}");
    }
}

#[test]
fn bad_options_are_errors_naming_them() {
    for (args, needle) in [
        (
            vec!["--upstream-uri", "memory://x?protocol=xml"],
            "protocol",
        ),
        (
            vec!["--upstream-uri", "memory://x?file-index-width=3"],
            "file-index-width",
        ),
        (vec!["--upstream-uri", "memory://x?bogus=1"], "bogus"),
        (
            vec![
                "--upstream-uri",
                "memory://x",
                "--downstream-uri",
                "oracle://db",
            ],
            "downstream-uri",
        ),
        (
            vec!["--upstream-uri", "memory://x", "--interval", "soon"],
            "interval",
        ),
    ] {
        let out = Command::new(BIN)
            .args(&args)
            .arg("--once")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn stdout_downstream_prints_json_lines_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s");
    std::fs::create_dir_all(&root).unwrap();
    let mut w = Writer::new(&format!(
        "file://{}?protocol=csv&include-commit-ts=true",
        root.display()
    ));
    let t = two_cols("db", "t", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    w.file(&t, &[(ts(2), vec![ins(1, "a"), del(1, "a")])]).await;
    w.checkpoint(ts(10)).await;
    let progress = dir.path().join("progress.json");
    let run = || {
        Command::new(BIN)
            .args([
                "--upstream-uri",
                &w.uri,
                "--downstream-uri",
                "stdout://",
                "--once",
            ])
            .arg("--progress-file")
            .arg(&progress)
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["op"], "ddl");
    assert_eq!(lines[1]["op"], "upsert");
    assert_eq!(lines[1]["row"]["name"], "a");
    assert_eq!(lines[2]["op"], "delete");
    let rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&progress).unwrap()).unwrap();
    assert_eq!(rec["format"], 1);
    // Restart: nothing printed again.
    let out = run();
    assert!(out.status.success());
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
