//! `docs/alerts.yml` (the consumer's Prometheus alerting rules, see docs/operations.md) is
//! accepted by `promtool check rules`, and every `cdc_consumer_*` series it names is one the
//! consumer exports. Without promtool the check is skipped with a note, except under `CI=true`
//! where that is a failure (scripts/servers.sh installs the Debian package `prometheus`).

use cdc_consumer::metrics::Metrics;
use std::path::PathBuf;
use std::process::Command;

fn rules_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/alerts.yml")
}

#[test]
fn promtool_accepts_the_alert_rules() {
    let out = match Command::new("promtool")
        .args(["check", "rules"])
        .arg(rules_file())
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "promtool is required under CI=true (Debian package `prometheus`): {e}"
            );
            eprintln!("promtool not found ({e}): docs/alerts.yml not checked");
            return;
        }
    };
    assert!(
        out.status.success(),
        "promtool check rules failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn alert_rules_name_only_exported_series() {
    let rules = std::fs::read_to_string(rules_file()).unwrap();
    let exported = Metrics::new().render();
    let mut named = 0;
    for (i, _) in rules.match_indices("cdc_consumer_") {
        let name: String = rules[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        assert!(
            exported.contains(&format!("\n{name} ")),
            "docs/alerts.yml names `{name}`, which the consumer does not export"
        );
        named += 1;
    }
    assert!(named >= 4, "the rules name the consumer's freshness series");
}
