//! Progress bars of the long jobs (`generate`, `consume --once`, `verify`): drawn on a terminal
//! (the binary runs under `script`, which gives it a pseudo-terminal), absent when output is
//! not a terminal or with `--quiet`, and never sharing a line with a log line.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_cdc-storage");
const WORKLOAD: &[&str] = &[
    "--dispatchers",
    "4",
    "--tables",
    "3",
    "--transactions",
    "400",
    "--rows-per-txn",
    "5",
    "--ddl-every",
    "150",
];

fn args(job: &str, dir: &Path) -> Vec<String> {
    // each run its own spool directory: the tests run at once, and a spool directory is locked
    let storage = format!(
        "file://{}?protocol=csv&flush-interval=50ms&spool-dir={}",
        dir.join("storage").display(),
        dir.join("spool").display()
    );
    let db = format!("sqlite://{}", dir.join("out.db").display());
    let mut a: Vec<String> = match job {
        "generate" => vec!["generate".into(), "--sink-uri".into(), storage],
        "consume" => vec![
            "consume".into(),
            "--upstream-uri".into(),
            format!("file://{}?protocol=csv", dir.join("storage").display()),
            "--downstream-uri".into(),
            db,
            "--once".into(),
        ],
        "verify" => vec!["verify".into(), "--downstream-uri".into(), db],
        other => panic!("no job {other}"),
    };
    if job != "consume" {
        a.extend(WORKLOAD.iter().map(|s| s.to_string()));
    }
    a
}

/// Runs the binary with its output going to pipes (not a terminal).
fn piped(extra: &[&str], job_args: &[String]) -> Output {
    let out = Command::new(BIN)
        .args(extra)
        .args(job_args)
        .env("TERM", "xterm")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs the binary on a pseudo-terminal (`script`); returns everything it wrote there.
fn on_terminal(extra: &[&str], job_args: &[String]) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let cmd: Vec<String> = std::iter::once(BIN)
        .chain(extra.iter().copied())
        .chain(job_args.iter().map(String::as_str))
        .map(quote)
        .collect();
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &cmd.join(" "), "/dev/null"])
        .env("TERM", "xterm")
        .env_remove("CI")
        .output()
        .expect("`script` (util-linux / bsdutils) runs the binary on a pseudo-terminal");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    text
}

fn has_bar_bytes(s: &[u8]) -> bool {
    s.contains(&b'\r') || s.windows(2).any(|w| w == b"\x1b[")
}

#[test]
fn bars_draw_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();

    // on a terminal: each job draws its bar and leaves its final state
    let gen = on_terminal(&[], &args("generate", dir.path()));
    assert!(gen.contains("generate [") && gen.contains("txns"), "{gen}");
    assert!(gen.contains("400/400 txns done"), "{gen}");
    let consume = on_terminal(&[], &args("consume", dir.path()));
    assert!(
        consume.contains("replay [") && consume.contains("files"),
        "{consume}"
    );
    assert!(consume.contains("done"), "{consume}");
    let verify = on_terminal(&[], &args("verify", dir.path()));
    assert!(verify.contains("3/3 tables done"), "{verify}");
    assert!(verify.contains("OK: 3 tables"), "{verify}");

    // --quiet on a terminal: no bar
    let quiet = on_terminal(&["--quiet"], &args("verify", dir.path()));
    assert!(!quiet.contains("tables done"), "{quiet}");
    assert!(quiet.contains("OK: 3 tables"), "{quiet}");

    // not a terminal: no bar bytes at all, in either stream
    let dir2 = tempfile::tempdir().unwrap();
    for job in ["generate", "consume", "verify"] {
        let out = piped(&[], &args(job, dir2.path()));
        assert!(
            !has_bar_bytes(&out.stderr),
            "{job}: {:?}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !has_bar_bytes(&out.stdout),
            "{job}: {:?}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn log_lines_never_share_a_line_with_a_bar() {
    let dir = tempfile::tempdir().unwrap();
    on_terminal(&["--quiet"], &args("generate", dir.path()));
    // info logs every round while the bar draws
    let out = on_terminal(&["--log-level", "info"], &args("consume", dir.path()));
    let logs = out.matches("INFO").count();
    assert!(logs > 0, "no log line in {out}");
    assert!(out.contains("replay ["), "no bar in {out}");
    // every log line starts a line of its own: split at line ends and carriage returns, strip
    // the terminal's escape sequences, and no piece holds both a log level and a bar
    let plain = strip_escapes(&out);
    for piece in plain.split(['\n', '\r']) {
        assert!(
            !(piece.contains("INFO") && piece.contains(" files ")),
            "a log line inside the bar: {piece:?}"
        );
        if let Some(at) = piece.find("INFO") {
            let before = piece[..at].trim();
            // tracing's line: timestamp then level; nothing of a bar before it
            assert!(
                !before.contains('['),
                "a log line after bar text: {piece:?}"
            );
        }
    }
}

fn strip_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // parameters until the final byte (a letter)
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}
