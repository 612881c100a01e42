//! AWS shared credential and config files (`~/.aws/credentials`, `~/.aws/config`), the part of
//! the standard AWS credential chain that `object_store` does not read itself.
//!
//! Resolution, as the AWS SDKs and CLI do it:
//! - profile name: `AWS_PROFILE`, else `default`;
//! - credentials file: `AWS_SHARED_CREDENTIALS_FILE`, else `$HOME/.aws/credentials`, section
//!   `[name]`; config file: `AWS_CONFIG_FILE`, else `$HOME/.aws/config`, section `[profile name]`
//!   (`[default]` for the default profile). Keys in the credentials file win over the config file;
//!   `region` comes from the config file;
//! - keys read: `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`, `region`.
//!
//! Invariants: a profile named explicitly (`AWS_PROFILE`) that no file holds, or that holds a key
//! id without its secret, is an error naming the profile and the files looked at; the implicit
//! `default` profile being absent is not (the chain goes on to web identity and instance
//! metadata). Secret values are wrapped in [`Secret`] and never appear in errors.

use crate::storage::Secret;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What one profile gives.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AwsProfile {
    /// The profile's name.
    pub name: String,
    /// `aws_access_key_id`.
    pub access_key: Option<String>,
    /// `aws_secret_access_key`.
    pub secret_key: Option<Secret>,
    /// `aws_session_token`.
    pub session_token: Option<Secret>,
    /// `region` (config file).
    pub region: Option<String>,
}

/// Looks up the profile the environment names (`env` reads one environment variable).
/// `Ok(None)`: no profile was named and the `default` profile exists in no file.
pub fn resolve(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<AwsProfile>, String> {
    let named = env("AWS_PROFILE");
    let name = named.clone().unwrap_or_else(|| "default".to_string());
    let home = env("HOME").map(PathBuf::from);
    let file = |var: &str, leaf: &str| {
        env(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(leaf)))
    };
    let creds_file = file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    let config_file = file("AWS_CONFIG_FILE", "config");

    let creds = read_section(creds_file.as_deref(), &name)?;
    let config_section = if name == "default" {
        "default".to_string()
    } else {
        format!("profile {name}")
    };
    let config = read_section(config_file.as_deref(), &config_section)?;
    if creds.is_none() && config.is_none() {
        if named.is_some() {
            return Err(format!(
                "AWS profile `{name}` (AWS_PROFILE) is in neither {} nor {}",
                shown(creds_file.as_deref()),
                shown(config_file.as_deref())
            ));
        }
        return Ok(None);
    }
    let creds = creds.unwrap_or_default();
    let config = config.unwrap_or_default();
    let get = |k: &str| creds.get(k).or_else(|| config.get(k)).cloned();
    let profile = AwsProfile {
        access_key: get("aws_access_key_id"),
        secret_key: get("aws_secret_access_key").map(Secret::new),
        session_token: get("aws_session_token").map(Secret::new),
        region: config.get("region").cloned(),
        name,
    };
    if profile.access_key.is_some() != profile.secret_key.is_some() {
        return Err(format!(
            "AWS profile `{}` has only one of aws_access_key_id and aws_secret_access_key ({})",
            profile.name,
            shown(creds_file.as_deref())
        ));
    }
    Ok(Some(profile))
}

fn shown(p: Option<&Path>) -> String {
    p.map_or_else(|| "(no HOME)".to_string(), |p| p.display().to_string())
}

/// The `key = value` pairs of section `[section]` of an INI-style file; `Ok(None)` when the file
/// or the section does not exist.
fn read_section(
    path: Option<&Path>,
    section: &str,
) -> Result<Option<HashMap<String, String>>, String> {
    let Some(path) = path else { return Ok(None) };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    Ok(parse_section(&text, section))
}

/// Parses one section out of INI text: `#`/`;` comment lines, `[name]` headers (inner blanks
/// trimmed), `key = value` lines (keys lower-cased, values trimmed). The last duplicate wins.
pub fn parse_section(text: &str, section: &str) -> Option<HashMap<String, String>> {
    let mut current: Option<String> = None;
    let mut found: Option<HashMap<String, String>> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(head) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let head = head.split_whitespace().collect::<Vec<_>>().join(" ");
            if head == section {
                found.get_or_insert_with(HashMap::new);
            }
            current = Some(head);
            continue;
        }
        if current.as_deref() != Some(section) {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            if let Some(map) = found.as_mut() {
                map.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn reads_named_and_default_profiles_from_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("credentials");
        let config = dir.path().join("config");
        std::fs::write(
            &creds,
            "# comment\n[default]\naws_access_key_id = AKDEF\naws_secret_access_key=SKDEF\n\n\
             [ ops ]\nAWS_ACCESS_KEY_ID = AKOPS\naws_secret_access_key = SKOPS\naws_session_token = TOK\n",
        )
        .unwrap();
        std::fs::write(
            &config,
            "[default]\nregion = eu-west-1\n[profile ops]\nregion = ap-south-1\n\
             [profile cfgonly]\naws_access_key_id = AKC\naws_secret_access_key = SKC\n",
        )
        .unwrap();
        let base = vec![
            ("AWS_SHARED_CREDENTIALS_FILE", creds.display().to_string()),
            ("AWS_CONFIG_FILE", config.display().to_string()),
        ];
        let p = resolve(&env_of(&base)).unwrap().unwrap();
        assert_eq!(p.name, "default");
        assert_eq!(p.access_key.as_deref(), Some("AKDEF"));
        assert_eq!(p.secret_key.unwrap().expose(), "SKDEF");
        assert_eq!(p.region.as_deref(), Some("eu-west-1"));

        let mut ops = base.clone();
        ops.push(("AWS_PROFILE", "ops".into()));
        let p = resolve(&env_of(&ops)).unwrap().unwrap();
        assert_eq!(p.access_key.as_deref(), Some("AKOPS"));
        assert_eq!(p.session_token.unwrap().expose(), "TOK");
        assert_eq!(p.region.as_deref(), Some("ap-south-1"));

        let mut cfg = base.clone();
        cfg.push(("AWS_PROFILE", "cfgonly".into()));
        let p = resolve(&env_of(&cfg)).unwrap().unwrap();
        assert_eq!(p.access_key.as_deref(), Some("AKC"));
    }

    #[test]
    fn missing_profiles_and_half_keys() {
        let dir = tempfile::tempdir().unwrap();
        // No files, no profile named: the chain goes on.
        let home = vec![("HOME", dir.path().display().to_string())];
        assert_eq!(resolve(&env_of(&home)).unwrap(), None);
        // Named but absent: an error naming the profile and the files.
        let mut named = home.clone();
        named.push(("AWS_PROFILE", "nosuch".into()));
        let err = resolve(&env_of(&named)).unwrap_err();
        assert!(
            err.contains("`nosuch`") && err.contains(".aws/credentials"),
            "{err}"
        );
        // A key id without its secret.
        std::fs::create_dir_all(dir.path().join(".aws")).unwrap();
        std::fs::write(
            dir.path().join(".aws/credentials"),
            "[half]\naws_secret_access_key = SECRETVALUE\n",
        )
        .unwrap();
        let mut half = home.clone();
        half.push(("AWS_PROFILE", "half".into()));
        let err = resolve(&env_of(&half)).unwrap_err();
        assert!(
            err.contains("`half`") && !err.contains("SECRETVALUE"),
            "{err}"
        );
    }
}
