//! The CA file a downstream URI names (`sslrootcert` for PostgreSQL, `ssl-ca` for MySQL), read
//! once when the URI is parsed, and the percent-decoding of TLS parameter values.
//!
//! Invariants: a CA file that cannot be read, holds something other than PEM certificates, or
//! holds none is an error naming the parameter and the path, before any connection is tried;
//! the bytes returned are exactly the file's.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// A CA file checked to hold at least one PEM certificate.
pub(crate) struct CaFile {
    /// The file's bytes, as read.
    pub bytes: Vec<u8>,
    /// Its certificates, in file order.
    pub certs: Vec<CertificateDer<'static>>,
}

/// Reads the CA file `path` named by the URI parameter `param`.
pub(crate) fn read(param: &str, path: &str) -> Result<CaFile, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{param} {path}: cannot read: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{param} {path}: not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{param} {path}: holds no certificate"));
    }
    Ok(CaFile { bytes, certs })
}

/// A URI parameter value, percent-decoded (lossy for bytes that are not UTF-8).
pub(crate) fn decode(v: &str) -> String {
    percent_encoding::percent_decode_str(v)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_empty_and_non_pem_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let e = read("ssl-ca", missing.to_str().unwrap()).err().unwrap();
        assert!(e.starts_with("ssl-ca ") && e.contains("cannot read"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, b"").unwrap();
        let e = read("sslrootcert", empty.to_str().unwrap()).err().unwrap();
        assert!(e.contains("holds no certificate"), "{e}");
        let bad = dir.path().join("bad.pem");
        std::fs::write(
            &bad,
            b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = read("ssl-ca", bad.to_str().unwrap()).err().unwrap();
        assert!(e.contains("not PEM certificates"), "{e}");
        assert_eq!(decode("a%2Fb%20c"), "a/b c");
    }
}
