//! TLS to the MySQL/MariaDB downstream (rustls through mysql_async), configured by the MySQL
//! client's URI parameters `ssl-mode` and `ssl-ca`.
//!
//! | `ssl-mode` (any case) | encrypted | server certificate checked |
//! |---|---|---|
//! | absent or `DISABLED` | no (plain, as before) | — |
//! | `PREFERRED` | when the server offers it | no |
//! | `REQUIRED` | yes | no; with `ssl-ca` the chain must lead to it |
//! | `VERIFY_CA` | yes | chains to `ssl-ca` |
//! | `VERIFY_IDENTITY` | yes | chains to `ssl-ca` and names the host |
//!
//! Invariants: `ssl-mode` and `ssl-ca` are removed from the URI before mysql_async parses it
//! (it knows neither); the CA file is read here, so an unreadable, non-PEM or empty file is an
//! error naming it before any connection is tried; `VERIFY_*` without `ssl-ca` and an unknown
//! mode are errors naming the parameter; with `ssl-ca` the driver's built-in web roots are off
//! (a database's CA is normally private).

use crate::backend::ca_file::{self, decode};
use mysql_async::SslOpts;

/// The parsed `ssl-mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// Plain.
    Disabled,
    /// TLS when the server offers it, certificate unchecked.
    Preferred,
    /// TLS; the certificate checked only against `ssl-ca` when given.
    Required,
    /// TLS; the chain leads to `ssl-ca`.
    VerifyCa,
    /// TLS; the chain leads to `ssl-ca` and the certificate names the host.
    VerifyIdentity,
}

/// How to connect: the URI for mysql_async and the TLS options.
#[derive(Debug)]
pub struct MysqlTls {
    /// The URI without `ssl-mode` / `ssl-ca`.
    pub uri: String,
    /// The mode asked for.
    pub mode: SslMode,
    /// `None`: plain connection.
    pub ssl: Option<SslOpts>,
    /// The CA file, for error messages.
    pub ca: Option<String>,
}

/// Splits the TLS parameters off `uri` and builds the driver's TLS options.
pub fn from_uri(uri: &str) -> Result<MysqlTls, String> {
    let (base, query) = match uri.split_once('?') {
        Some((b, q)) => (b, q),
        None => (uri, ""),
    };
    let (mut mode, mut ca, mut kept) = (None, None, Vec::new());
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        match kv.split_once('=') {
            Some(("ssl-mode", v)) => mode = Some(decode(v)),
            Some(("ssl-ca", v)) => ca = Some(decode(v)),
            _ => kept.push(kv),
        }
    }
    let uri = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mode = match mode.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None | Some("DISABLED") => SslMode::Disabled,
        Some("PREFERRED") => SslMode::Preferred,
        Some("REQUIRED") => SslMode::Required,
        Some("VERIFY_CA") => SslMode::VerifyCa,
        Some("VERIFY_IDENTITY") => SslMode::VerifyIdentity,
        Some(_) => {
            return Err(format!(
            "ssl-mode `{}`: expected DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY",
            mode.unwrap_or_default()
        ))
        }
    };
    if matches!(mode, SslMode::VerifyCa | SslMode::VerifyIdentity) && ca.is_none() {
        return Err(format!(
            "ssl-mode={} needs ssl-ca=<CA file (PEM)>",
            mode.name()
        ));
    }
    let ssl = match mode {
        SslMode::Disabled => None,
        SslMode::Preferred => Some(unchecked()),
        SslMode::Required if ca.is_none() => Some(unchecked()),
        SslMode::Required | SslMode::VerifyCa | SslMode::VerifyIdentity => {
            let path = ca.as_deref().unwrap_or_default();
            let opts = SslOpts::default()
                .with_root_certs(vec![ca_file::read("ssl-ca", path)?.bytes.into()])
                .with_disable_built_in_roots(true)
                .with_danger_skip_domain_validation(mode != SslMode::VerifyIdentity);
            Some(opts)
        }
    };
    Ok(MysqlTls { uri, mode, ssl, ca })
}

impl SslMode {
    /// The MySQL client's name of the mode.
    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disabled => "DISABLED",
            SslMode::Preferred => "PREFERRED",
            SslMode::Required => "REQUIRED",
            SslMode::VerifyCa => "VERIFY_CA",
            SslMode::VerifyIdentity => "VERIFY_IDENTITY",
        }
    }
}

/// Encrypted, the certificate taken as it is (the MySQL client's `REQUIRED` without a CA).
fn unchecked() -> SslOpts {
    SslOpts::default()
        .with_danger_accept_invalid_certs(true)
        .with_danger_skip_domain_validation(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_split_off_and_checked() {
        let t = from_uri("mysql://u:p@h/db?ssl-mode=disabled&x=1").unwrap();
        assert_eq!(t.uri, "mysql://u:p@h/db?x=1");
        assert!(t.ssl.is_none());
        let t = from_uri("mysql://u:p@h/db?ssl-mode=Required").unwrap();
        assert_eq!(
            (t.uri.as_str(), t.mode),
            ("mysql://u:p@h/db", SslMode::Required)
        );
        assert!(t.ssl.is_some());
        let e = from_uri("mysql://h/db?ssl-mode=sometimes").unwrap_err();
        assert!(e.contains("ssl-mode `sometimes`"), "{e}");
        let e = from_uri("mysql://h/db?ssl-mode=verify_ca").unwrap_err();
        assert!(e.contains("ssl-ca"), "{e}");
        let e = from_uri("mysql://h/db?ssl-mode=VERIFY_CA&ssl-ca=/nonexistent/ca.pem").unwrap_err();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        // The password stays hidden in what is logged, with the TLS parameters present.
        let shown = cdc_common::storage::redact_uri("mysql://u:secret@h/db?ssl-mode=REQUIRED");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
