//! TLS to the PostgreSQL downstream (rustls), configured by libpq's URI parameters.
//!
//! | `sslmode` | encrypted | server certificate checked |
//! |---|---|---|
//! | absent or `disable` | no (plain, as before) | — |
//! | `prefer` | when the server offers it | no |
//! | `require` | yes | no; with `sslrootcert` as `verify-ca` (libpq's rule) |
//! | `verify-ca` | yes | chains to `sslrootcert` |
//! | `verify-full` | yes | chains to `sslrootcert` and names the host |
//!
//! Invariants: `sslmode` and `sslrootcert` are removed from the URI before tokio-postgres sees
//! it (it knows neither `verify-*` nor `sslrootcert`); `verify-ca`/`verify-full` without
//! `sslrootcert`, an unreadable or empty CA file and an unknown mode are errors naming the
//! parameter; there are no built-in roots (a database's CA is normally private).

use crate::backend::ca_file::{self, decode};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;
use tokio_postgres::config::SslMode;

/// How to connect: the URI for tokio-postgres and, for TLS, the rustls configuration.
pub struct PgTls {
    /// The URI without `sslmode` / `sslrootcert`.
    pub uri: String,
    /// `None`: plain connection.
    pub tls: Option<(rustls::ClientConfig, SslMode)>,
    /// The CA file, for error messages.
    pub root_cert: Option<String>,
}

/// Splits the TLS parameters off `uri` and builds the client configuration.
pub fn from_uri(uri: &str) -> Result<PgTls, String> {
    let (base, query) = match uri.split_once('?') {
        Some((b, q)) => (b, q),
        None => (uri, ""),
    };
    let (mut mode, mut root_cert, mut kept) = (None, None, Vec::new());
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        match kv.split_once('=') {
            Some(("sslmode", v)) => mode = Some(decode(v)),
            Some(("sslrootcert", v)) => root_cert = Some(decode(v)),
            _ => kept.push(kv),
        }
    }
    let uri = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mode = mode.as_deref().unwrap_or("disable");
    let verify = match (mode, &root_cert) {
        ("disable", _) => {
            return Ok(PgTls {
                uri,
                tls: None,
                root_cert,
            })
        }
        ("prefer", _) => Verify::Nothing,
        ("require", None) => Verify::Nothing,
        ("require" | "verify-ca", Some(_)) => Verify::Chain,
        ("verify-full", Some(_)) => Verify::ChainAndName,
        ("verify-ca" | "verify-full", None) => {
            return Err(format!("sslmode={mode} needs sslrootcert=<CA file (PEM)>"))
        }
        (other, _) => {
            return Err(format!(
                "sslmode `{other}`: expected disable, prefer, require, verify-ca or verify-full"
            ))
        }
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let verifier: Arc<dyn ServerCertVerifier> = match verify {
        Verify::Nothing => Arc::new(NoCheck(provider)),
        Verify::Chain | Verify::ChainAndName => {
            let path = root_cert.as_deref().unwrap_or_default();
            let webpki = webpki_verifier(path, provider)?;
            if matches!(verify, Verify::Chain) {
                Arc::new(AnyName(webpki))
            } else {
                webpki
            }
        }
    };
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    let ssl_mode = if mode == "prefer" {
        SslMode::Prefer
    } else {
        SslMode::Require
    };
    Ok(PgTls {
        uri,
        tls: Some((config, ssl_mode)),
        root_cert,
    })
}

enum Verify {
    Nothing,
    Chain,
    ChainAndName,
}

fn webpki_verifier(
    path: &str,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in ca_file::read("sslrootcert", path)?.certs {
        roots
            .add(cert)
            .map_err(|e| format!("sslrootcert {path}: {e}"))?;
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| format!("sslrootcert {path}: {e}"))
}

/// `require` without a CA: encrypted, the certificate taken as it is (libpq's behaviour).
/// Handshake signatures are still checked against the certificate presented.
#[derive(Debug)]
struct NoCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to the CA; the host name is not compared (webpki checks the
/// chain first, so a name mismatch is only reported for a chain that is already good).
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
