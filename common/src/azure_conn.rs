//! Azure Storage connection strings (`AccountName=...;AccountKey=...;BlobEndpoint=...`), the
//! form the Azure portal, CLI and SDKs hand out (`AZURE_STORAGE_CONNECTION_STRING`).
//!
//! Keys read (case-insensitive, as the SDKs do): `AccountName`, `AccountKey`,
//! `SharedAccessSignature`, `BlobEndpoint`, `DefaultEndpointsProtocol`, `EndpointSuffix`,
//! `UseDevelopmentStorage`. Other services' keys (`QueueEndpoint`, ...) are ignored. Without an
//! `AccountName` the account is read from the `BlobEndpoint` (host `<account>.blob.…`, or the
//! first path segment of an emulator's URL).
//! Invariants: a value keeps every `=` after the first one (account keys are base64); a
//! segment without `=` is an error naming the segment's key text only, never a value;
//! without a `BlobEndpoint` the endpoint is `<protocol>://<account>.blob.<suffix>` only when an
//! `EndpointSuffix` or protocol was given (otherwise the client's default endpoint is used).

use crate::storage::{Secret, AZURITE_ACCOUNT, AZURITE_KEY};

/// What a connection string gives.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AzureConnection {
    /// `AccountName`.
    pub account: Option<String>,
    /// `AccountKey`.
    pub key: Option<Secret>,
    /// `SharedAccessSignature` (without a leading `?`).
    pub sas_token: Option<Secret>,
    /// `BlobEndpoint`, or one built from the protocol and suffix.
    pub endpoint: Option<String>,
    /// `UseDevelopmentStorage=true`: Azurite on its default port.
    pub use_emulator: bool,
}

/// Parses a connection string.
pub fn parse(text: &str) -> Result<AzureConnection, String> {
    let mut c = AzureConnection::default();
    let (mut protocol, mut suffix) = (None, None);
    let segments = text.split(';').map(str::trim).filter(|s| !s.is_empty());
    for (i, seg) in segments.enumerate() {
        let Some((k, v)) = seg.split_once('=') else {
            // The segment may be a mistyped secret: show its position, not its text.
            return Err(format!(
                "connection string segment {} (of {} characters) is not Key=Value",
                i + 1,
                seg.len()
            ));
        };
        let v = v.trim().to_string();
        match k.trim().to_ascii_lowercase().as_str() {
            "accountname" => c.account = Some(v),
            "accountkey" => c.key = Some(Secret::new(v)),
            "sharedaccesssignature" => {
                c.sas_token = Some(Secret::new(v.trim_start_matches('?').to_string()))
            }
            "blobendpoint" => c.endpoint = Some(v.trim_end_matches('/').to_string()),
            "defaultendpointsprotocol" => protocol = Some(v),
            "endpointsuffix" => suffix = Some(v),
            "usedevelopmentstorage" => c.use_emulator = v.eq_ignore_ascii_case("true"),
            _ => {}
        }
    }
    if c.use_emulator {
        c.account.get_or_insert_with(|| AZURITE_ACCOUNT.to_string());
        if c.key.is_none() && c.sas_token.is_none() {
            c.key = Some(Secret::new(AZURITE_KEY));
        }
    }
    if c.endpoint.is_none() && (protocol.is_some() || suffix.is_some()) {
        if let Some(account) = &c.account {
            c.endpoint = Some(format!(
                "{}://{account}.blob.{}",
                protocol.as_deref().unwrap_or("https"),
                suffix.as_deref().unwrap_or("core.windows.net")
            ));
        }
    }
    if c.account.is_none() {
        c.account = c.endpoint.as_deref().and_then(account_of_endpoint);
    }
    if c.account.is_none() && c.endpoint.is_none() && !c.use_emulator {
        return Err("connection string names neither AccountName nor BlobEndpoint".into());
    }
    Ok(c)
}

/// The account a blob endpoint addresses (the client needs it even with a SAS token):
/// `https://<account>.blob.<suffix>`, or an emulator's `http://host:port/<account>`.
fn account_of_endpoint(endpoint: &str) -> Option<String> {
    let url = url::Url::parse(endpoint).ok()?;
    let host = url.host_str()?;
    if let Some((account, _)) = host.split_once(".blob.") {
        return Some(account.to_string());
    }
    url.path_segments()?
        .find(|s| !s.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_key_sas_and_endpoint_forms() {
        let c = parse(
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5Cg==;EndpointSuffix=core.windows.net",
        )
        .unwrap();
        assert_eq!(c.account.as_deref(), Some("acct"));
        assert_eq!(c.key.unwrap().expose(), "a2V5Cg==");
        assert_eq!(
            c.endpoint.as_deref(),
            Some("https://acct.blob.core.windows.net")
        );

        let c = parse("BlobEndpoint=http://127.0.0.1:1234/devstoreaccount1/;SharedAccessSignature=?sv=2019&sig=a%2Fb=").unwrap();
        assert_eq!(
            c.endpoint.as_deref(),
            Some("http://127.0.0.1:1234/devstoreaccount1")
        );
        assert_eq!(c.sas_token.unwrap().expose(), "sv=2019&sig=a%2Fb=");
        assert_eq!(c.account.as_deref(), Some("devstoreaccount1"));

        let c = parse("UseDevelopmentStorage=true").unwrap();
        assert!(c.use_emulator);
        assert_eq!(c.account.as_deref(), Some(AZURITE_ACCOUNT));
    }

    #[test]
    fn bad_strings_are_errors_without_values() {
        let err = parse("AccountName=a;AccountKeySECRETSECRETSECRETSECRET").unwrap_err();
        assert!(
            err.contains("segment 2") && err.contains("not Key=Value"),
            "{err}"
        );
        assert!(!err.contains("SECRETSECRETSECRETSECRET"), "{err}");
        let err = parse("QueueEndpoint=http://x").unwrap_err();
        assert!(err.contains("AccountName"), "{err}");
    }
}
