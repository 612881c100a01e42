//! Keeping the secrets of the upstream and downstream URIs out of every text the consumer
//! shows: logs, errors, `/health`, the status page and `/metrics`.
//!
//! Two layers:
//!
//! 1. Structural: URIs are only ever shown through [`cdc_common::storage::redact_uri`] (query
//!    secrets and the userinfo password become `***`), and [`crate::config::DownstreamUri`]'s
//!    `Debug` shows the redacted form.
//! 2. By value, for texts the consumer does not build itself (a driver's or an object store
//!    client's error message may quote a URL or a connection string): [`Secrets`] holds every
//!    secret value of the configured URIs and [`Secrets::redact`] replaces each occurrence
//!    (raw and percent-decoded) by `***` in a round's fatal error, its warnings, the reconnect
//!    log lines and the binary's final error message.
//!
//! A secret shorter than [`MIN_SECRET_LEN`] characters is only redacted structurally: replacing
//! every occurrence of, say, `pw` would make messages unreadable while protecting nothing.

use cdc_common::storage::{is_secret_param, split_userinfo};
use std::borrow::Cow;

/// Shortest secret value redacted by value (see the module doc).
pub const MIN_SECRET_LEN: usize = 4;

/// The secret values of the configured URIs.
#[derive(Clone, Default)]
pub struct Secrets {
    values: Vec<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} values)", self.values.len())
    }
}

impl Secrets {
    /// Collects the secrets of `uris`: the values of secret query parameters
    /// ([`is_secret_param`]) and the userinfo password ([`split_userinfo`]: a password may hold
    /// unencoded `/`, `?` or `@`), each raw, percent-decoded and form-decoded.
    pub fn from_uris(uris: &[&str]) -> Secrets {
        let mut values = Vec::new();
        for uri in uris {
            let rest = uri.split_once("://").map(|(_, r)| r).unwrap_or(uri);
            let after = match split_userinfo(rest) {
                Some((userinfo, after)) => {
                    if let Some((_, pw)) = userinfo.split_once(':') {
                        values.push(pw.to_string());
                    }
                    after
                }
                None => rest,
            };
            let query = after.split_once('?').map(|(_, q)| q).unwrap_or("");
            for kv in query.split('&') {
                if let Some((k, v)) = kv.split_once('=') {
                    if is_secret_param(k) {
                        values.push(v.to_string());
                    }
                }
            }
        }
        let mut out: Vec<String> = Vec::new();
        for v in values {
            let decoded = percent_decode(&v);
            // Query values are form-encoded: `+` is a space to the store.
            let form = percent_decode(&v.replace('+', " "));
            for s in [v, decoded, form] {
                if s.chars().count() >= MIN_SECRET_LEN && !out.contains(&s) {
                    out.push(s);
                }
            }
        }
        // Longest first, so a secret containing another is replaced whole.
        out.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Secrets { values: out }
    }

    /// `text` with every secret value replaced by `***`.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = Cow::Owned(out.replace(v.as_str(), "***"));
            }
        }
        out
    }

    /// True when no secret is held (nothing to redact by value).
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// `%XX` sequences decoded (as UTF-8, lossily); other text unchanged.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_query_secrets_and_passwords_raw_and_decoded() {
        let s = Secrets::from_uris(&[
            "s3://b/p?endpoint=http://h&access-key=AKID&secret-access-key=S3cr%2Ft",
            "postgres://user:p%40ss%2Fword@127.0.0.1:5432/db",
            "azure://c?account-name=acct&account-key=KEYVALUE==",
            "mysql://root:pw@h/db",
            "mysql://u:sl/ash?q@h/db",
        ]);
        let text = "a S3cr%2Ft b S3cr/t c p%40ss%2Fword d p@ss/word e KEYVALUE== f AKID g pw \
                    h sl/ash?q";
        assert_eq!(
            s.redact(text),
            "a *** b *** c *** d *** e *** f AKID g pw h ***",
            "access keys are not secret; 2-character passwords are only redacted structurally"
        );
        assert!(!format!("{s:?}").contains("KEYVALUE"));
    }

    #[test]
    fn nothing_to_redact_borrows() {
        let s = Secrets::from_uris(&["memory://x", "sqlite:///tmp/a.db"]);
        assert!(s.is_empty());
        assert!(matches!(s.redact("text"), Cow::Borrowed("text")));
    }
}
