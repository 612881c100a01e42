//! Storage URIs, turned into `object_store` stores.
//!
//! | URI                                   | store                                             |
//! |---------------------------------------|---------------------------------------------------|
//! | `file:///abs/path` (or `/abs/path`)   | local directory (created if missing)              |
//! | `memory://[name]`                     | in-memory; one shared store per name per process |
//! | `s3://bucket[/prefix]`                | S3 or an S3-compatible server                     |
//! | `gcs://bucket[/prefix]` (`gs://`)     | Google Cloud Storage                              |
//! | `azure://container[/prefix]` (`azblob://`) | Azure Blob Storage or Azurite                |
//!
//! Storage parameters ride in the query next to the sink options (TiCDC's names where TiCDC has
//! one): S3 `endpoint`, `region`, `access-key`, `secret-access-key`, `session-token`,
//! `force-path-style` (default true: virtual-hosted style when false), `allow-http`; GCS
//! `credentials-file`, `endpoint`; Azure `account-name`, `account-key`, `sas-token`, `endpoint`,
//! `use-emulator`, `allow-http`, `connection-string`; local directories `fsync` (default true:
//! every file written and its directory are synced before the put returns, so what the sink
//! acknowledges survives a power loss; `fsync=false` leaves it to the page cache). Every other query parameter must be a
//! sink option ([`crate::options::SINK_PARAMS`]) or the caller's own; unknown names are errors.
//!
//! Credentials the URI does not give come from the environment, in the order the cloud SDKs use:
//! - S3: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, then the profile
//!   `AWS_PROFILE` (or `default`) of the shared credentials/config files
//!   ([`crate::aws_profile`]), then web identity (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`)
//!   and instance metadata (both `object_store`'s). Region: URI, `AWS_REGION` /
//!   `AWS_DEFAULT_REGION`, the profile's, else `us-east-1`.
//! - Azure: URI `account-name`/`account-key`/`sas-token`, then a connection string (URI
//!   `connection-string`, else `AZURE_STORAGE_CONNECTION_STRING`, [`crate::azure_conn`]) for
//!   what the URI left out, then `AZURE_STORAGE_*` variables.
//! - GCS: `credentials-file` (service-account JSON), then `GOOGLE_SERVICE_ACCOUNT` /
//!   `GOOGLE_APPLICATION_CREDENTIALS`, then application default credentials (gcloud's file or
//!   the metadata server).
//!
//! Secrets (`secret-access-key`, `session-token`, `account-key`, `sas-token`,
//! `connection-string`, URI passwords)
//! never appear in `Debug`/`Display` output or error messages: see [`redact_uri`] and [`Secret`].

pub use crate::error::store_error_is_retryable as is_retryable;

use crate::error::{Error, Result};
use crate::options::{Params, SinkOptions, SINK_PARAMS};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

/// Names of query parameters whose values are secrets.
pub const SECRET_PARAMS: &[&str] = &[
    "secret-access-key",
    "session-token",
    "account-key",
    "sas-token",
    "connection-string",
    "password",
];
/// Storage parameter names understood by [`StorageUri::parse`].
pub const STORAGE_PARAMS: &[&str] = &[
    "endpoint",
    "region",
    "access-key",
    "secret-access-key",
    "session-token",
    "force-path-style",
    "allow-http",
    "credentials-file",
    "account-name",
    "account-key",
    "sas-token",
    "use-emulator",
    "connection-string",
    "fsync",
];

/// A string that never shows itself in `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for handing to a client.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Which store a URI names, with its connection settings.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum StorageKind {
    /// A local directory.
    Local {
        /// Absolute root directory.
        root: PathBuf,
        /// Sync each written file and its directory before a put returns (`fsync`, default
        /// true).
        fsync: bool,
    },
    /// A process-wide in-memory store, shared by name.
    Memory {
        /// The store's name (`memory://name`); empty for the default.
        name: String,
    },
    /// S3 or S3-compatible.
    S3 {
        /// Bucket.
        bucket: String,
        /// Endpoint URL for S3-compatible servers.
        endpoint: Option<String>,
        /// Region.
        region: Option<String>,
        /// Access key id.
        access_key: Option<String>,
        /// Secret access key.
        secret_key: Option<Secret>,
        /// Session token.
        session_token: Option<Secret>,
        /// Path-style requests (`endpoint/bucket/key`) rather than virtual-hosted style.
        force_path_style: bool,
        /// Allow plain http endpoints.
        allow_http: bool,
    },
    /// Google Cloud Storage.
    Gcs {
        /// Bucket.
        bucket: String,
        /// Service account file.
        credentials_file: Option<String>,
        /// Base URL override.
        endpoint: Option<String>,
    },
    /// Azure Blob Storage (or Azurite).
    Azure {
        /// Container.
        container: String,
        /// Storage account.
        account: Option<String>,
        /// Account key.
        key: Option<Secret>,
        /// SAS token.
        sas_token: Option<Secret>,
        /// Endpoint URL (for Azurite: `http://127.0.0.1:<port>`; the account is appended).
        endpoint: Option<String>,
        /// Talk to the Azurite emulator with its well-known account.
        use_emulator: bool,
        /// Allow plain http endpoints.
        allow_http: bool,
        /// Connection string (`AccountName=..;AccountKey=..` or `BlobEndpoint=..;SharedAccessSignature=..`).
        connection_string: Option<Secret>,
    },
}

/// A parsed storage URI: the store and the key prefix inside it.
#[derive(Clone, Debug, PartialEq)]
pub struct StorageUri {
    /// The store.
    pub kind: StorageKind,
    /// Key prefix inside the store (no leading or trailing `/`), empty for the root.
    pub prefix: String,
    redacted: String,
}

impl fmt::Display for StorageUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

/// The Azurite emulator's published account name.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// The Azurite emulator's published account key (public, documented by Microsoft).
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

impl StorageUri {
    /// Parses a URI; storage parameters are taken from its query and the rest returned for the
    /// caller (sink options etc.).
    pub fn parse(uri: &str) -> Result<(StorageUri, Params)> {
        let redacted = redact_uri(uri);
        let bad = |reason: String| Error::InvalidUri {
            uri: redacted.clone(),
            reason,
        };
        if uri.starts_with('/') {
            return StorageUri::parse(&format!("file://{uri}"));
        }
        let url = url::Url::parse(uri).map_err(|e| bad(format!("not a URI ({e})")))?;
        let mut params = Params::from_query(url.query().unwrap_or(""))?;
        let host = url.host_str().unwrap_or("").to_string();
        let path = percent_encoding::percent_decode_str(url.path())
            .decode_utf8()
            .map_err(|_| bad("path is not UTF-8".into()))?
            .into_owned();
        let prefix = path.trim_matches('/').to_string();
        // The URL parser already resolves `.`/`..` (even percent-encoded); what it keeps must
        // still be a safe key prefix.
        if !prefix.is_empty() {
            for seg in prefix.split('/') {
                crate::layout::validate_name(seg).map_err(|e| bad(format!("path segment: {e}")))?;
            }
        }
        let opt_bool = |params: &mut Params, name: &str, default: bool| -> Result<bool> {
            params
                .take(name)
                .map(|v| crate::options::parse_bool(name, &v))
                .transpose()
                .map(|b| b.unwrap_or(default))
        };
        let need_bucket = |what: &str| -> Result<String> {
            if host.is_empty() {
                Err(bad(format!("missing {what} name (scheme://{what}/prefix)")))
            } else {
                Ok(host.clone())
            }
        };
        let (kind, prefix) = match url.scheme() {
            "file" | "local" => {
                if !host.is_empty() && host != "localhost" {
                    return Err(bad(format!(
                        "file URIs take an absolute path (file:///dir), got host `{host}`"
                    )));
                }
                if path.is_empty() || path == "/" {
                    return Err(bad("file URI needs a directory path".into()));
                }
                (
                    StorageKind::Local {
                        root: PathBuf::from(&path),
                        fsync: opt_bool(&mut params, "fsync", true)?,
                    },
                    String::new(),
                )
            }
            "memory" | "noop" => (StorageKind::Memory { name: host.clone() }, prefix),
            "s3" => {
                let endpoint = params.take("endpoint");
                let allow_default = endpoint
                    .as_deref()
                    .is_some_and(|e| e.starts_with("http://"));
                let kind = StorageKind::S3 {
                    bucket: need_bucket("bucket")?,
                    region: params.take("region"),
                    access_key: params.take("access-key"),
                    secret_key: params.take("secret-access-key").map(Secret),
                    session_token: params.take("session-token").map(Secret),
                    force_path_style: opt_bool(&mut params, "force-path-style", true)?,
                    allow_http: opt_bool(&mut params, "allow-http", allow_default)?,
                    endpoint,
                };
                (kind, prefix)
            }
            "gcs" | "gs" => (
                StorageKind::Gcs {
                    bucket: need_bucket("bucket")?,
                    credentials_file: params.take("credentials-file"),
                    endpoint: params.take("endpoint"),
                },
                prefix,
            ),
            "azure" | "azblob" => {
                let endpoint = params.take("endpoint");
                let allow_default = endpoint
                    .as_deref()
                    .is_some_and(|e| e.starts_with("http://"));
                let use_emulator = opt_bool(&mut params, "use-emulator", false)?;
                let kind = StorageKind::Azure {
                    container: need_bucket("container")?,
                    account: params.take("account-name"),
                    key: params.take("account-key").map(Secret),
                    sas_token: params.take("sas-token").map(Secret),
                    connection_string: params.take("connection-string").map(Secret),
                    allow_http: opt_bool(&mut params, "allow-http", allow_default || use_emulator)?,
                    use_emulator,
                    endpoint,
                };
                (kind, prefix)
            }
            other => {
                return Err(bad(format!(
                    "unknown scheme `{other}`; expected file, memory, s3, gcs or azure"
                )))
            }
        };
        Ok((
            StorageUri {
                kind,
                prefix,
                redacted,
            },
            params,
        ))
    }

    /// Parses a sink URI: storage plus every sink option, nothing else allowed.
    pub fn parse_sink(uri: &str) -> Result<(StorageUri, SinkOptions)> {
        let (s, mut params) = StorageUri::parse(uri)?;
        let o = SinkOptions::take_from(&mut params)?;
        params.finish(&[STORAGE_PARAMS, SINK_PARAMS].concat())?;
        Ok((s, o))
    }

    /// The directory the store's keys are under, when the store is a local directory (a file
    /// URI's path is all root, its prefix empty): what [`StorageUri::build`]'s store reads.
    pub fn local_root(&self) -> Option<PathBuf> {
        match &self.kind {
            StorageKind::Local { root, .. } if self.prefix.is_empty() => Some(root.clone()),
            _ => None,
        }
    }

    /// Builds the store, rooted at the prefix.
    pub fn build(&self) -> Result<Arc<dyn ObjectStore>> {
        let err = |e: object_store::Error| Error::InvalidUri {
            uri: self.redacted.clone(),
            reason: e.to_string(),
        };
        let store: Arc<dyn ObjectStore> = match &self.kind {
            StorageKind::Local { root, fsync } => {
                std::fs::create_dir_all(root).map_err(|e| Error::InvalidUri {
                    uri: self.redacted.clone(),
                    reason: format!("cannot create directory {}: {e}", root.display()),
                })?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(root)
                    .map_err(err)?
                    .with_automatic_cleanup(true)
                    .with_fsync(*fsync);
                Arc::new(fs)
            }
            StorageKind::Memory { name } => memory_store(name),
            StorageKind::S3 {
                bucket,
                endpoint,
                region,
                access_key,
                secret_key,
                session_token,
                force_path_style,
                allow_http,
            } => {
                let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
                // The chain's profile step: only when neither the URI nor the environment
                // gave a key (those come first, as in the AWS SDKs).
                let profile = if access_key.is_none() && env("AWS_ACCESS_KEY_ID").is_none() {
                    crate::aws_profile::resolve(&env).map_err(|reason| Error::InvalidUri {
                        uri: self.redacted.clone(),
                        reason,
                    })?
                } else {
                    None
                };
                let profile = profile.unwrap_or_default();
                let region = region
                    .clone()
                    .or_else(|| env("AWS_REGION"))
                    .or_else(|| env("AWS_DEFAULT_REGION"))
                    .or(profile.region)
                    .unwrap_or_else(|| "us-east-1".into());
                let mut b = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_allow_http(*allow_http)
                    .with_virtual_hosted_style_request(!force_path_style)
                    .with_region(region);
                if let Some(e) = endpoint {
                    b = b.with_endpoint(e);
                }
                if let Some(k) = access_key.clone().or(profile.access_key) {
                    b = b.with_access_key_id(k);
                }
                if let Some(s) = secret_key.clone().or(profile.secret_key) {
                    b = b.with_secret_access_key(s.expose());
                }
                if let Some(t) = session_token.clone().or(profile.session_token) {
                    b = b.with_token(t.expose());
                }
                Arc::new(b.build().map_err(err)?)
            }
            StorageKind::Gcs {
                bucket,
                credentials_file,
                endpoint,
            } => {
                let mut b = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(bucket);
                if let Some(f) = credentials_file {
                    b = b.with_service_account_path(f);
                }
                if let Some(e) = endpoint {
                    b = b.with_base_url(e);
                }
                Arc::new(b.build().map_err(err)?)
            }
            StorageKind::Azure {
                container,
                account,
                key,
                sas_token,
                endpoint,
                use_emulator,
                allow_http,
                connection_string,
            } => {
                let conn_text = connection_string.clone().or_else(|| {
                    std::env::var("AZURE_STORAGE_CONNECTION_STRING")
                        .ok()
                        .filter(|v| !v.is_empty())
                        .map(Secret::new)
                });
                let conn = match conn_text {
                    Some(t) => crate::azure_conn::parse(t.expose()).map_err(|reason| {
                        Error::InvalidUri {
                            uri: self.redacted.clone(),
                            reason,
                        }
                    })?,
                    None => Default::default(),
                };
                // The URI's own settings win; the connection string fills what it left out.
                let conn_http = endpoint.is_none()
                    && conn
                        .endpoint
                        .as_deref()
                        .is_some_and(|e| e.starts_with("http://"));
                let (endpoint, sas_token) = (
                    endpoint.clone().or(conn.endpoint),
                    sas_token.clone().or(conn.sas_token),
                );
                let use_emulator = *use_emulator || (conn.use_emulator && endpoint.is_none());
                let allow_http = *allow_http || conn_http || use_emulator;
                let mut b = object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_container_name(container)
                    .with_allow_http(allow_http);
                let account = account
                    .clone()
                    .or(conn.account)
                    .or_else(|| use_emulator.then(|| AZURITE_ACCOUNT.to_string()));
                // A SAS token alone authorizes: the emulator's key is only the default when
                // neither a key nor a token was given.
                let key = key.clone().or(conn.key).or_else(|| {
                    (use_emulator && sas_token.is_none()).then(|| Secret::new(AZURITE_KEY))
                });
                let endpoint = &endpoint;
                let sas_token = &sas_token;
                match (use_emulator, endpoint) {
                    // An emulator on another port: address it as a plain endpoint whose path
                    // carries the account, which is exactly the emulator's URL scheme.
                    (true, Some(e)) => {
                        let acct = account.clone().unwrap_or_default();
                        b = b.with_endpoint(format!("{}/{acct}", e.trim_end_matches('/')));
                    }
                    (true, None) => b = b.with_use_emulator(true),
                    (false, Some(e)) => b = b.with_endpoint(e.clone()),
                    (false, None) => {}
                }
                if let Some(a) = account {
                    b = b.with_account(a);
                }
                if let Some(k) = key {
                    b = b.with_access_key(k.expose());
                }
                if let Some(s) = sas_token {
                    let pairs: Vec<(String, String)> =
                        url::form_urlencoded::parse(s.expose().as_bytes())
                            .map(|(k, v)| (k.into_owned(), v.into_owned()))
                            .collect();
                    b = b.with_sas_authorization(pairs);
                }
                Arc::new(b.build().map_err(err)?)
            }
        };
        if self.prefix.is_empty() {
            return Ok(store);
        }
        let prefix = Path::parse(&self.prefix).map_err(|e| Error::InvalidUri {
            uri: self.redacted.clone(),
            reason: e.to_string(),
        })?;
        Ok(Arc::new(object_store::prefix::PrefixStore::new(
            store, prefix,
        )))
    }
}

fn memory_store(name: &str) -> Arc<dyn ObjectStore> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    let mut map = STORES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    map.entry(name.to_string())
        .or_insert_with(|| Arc::new(object_store::memory::InMemory::new()))
        .clone()
}

/// The object key of a layout path, verbatim. `Path::from` would percent-encode `"`, `` ` ``,
/// `%`, `#`, `{`, `?` and the like, so a table named with them would be stored under another
/// name than the one the layout (and TiCDC) writes and the consumer reads back; `Path::parse`
/// keeps the text and refuses only what the layout's name rules refuse already (control
/// characters, empty, `.` and `..` segments).
pub fn key(path: &str) -> Result<Path> {
    Path::parse(path).map_err(|e| Error::path(path, e.to_string()))
}

/// Reads a whole object, mapping "not found" to `Ok(None)`.
pub async fn get_opt(store: &dyn ObjectStore, path: &str) -> Result<Option<bytes::Bytes>> {
    Ok(get_if_exists(store, &key(path)?).await?)
}

/// [`get_opt`] with the store's own error, for callers that retry by that error's kind.
pub async fn get_if_exists(
    store: &dyn ObjectStore,
    path: &Path,
) -> object_store::Result<Option<bytes::Bytes>> {
    match store.get(path).await {
        Ok(r) => r.bytes().await.map(Some),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The URI with every secret replaced by `***` (query secrets and a userinfo password), for
/// logs and errors. Works on any URI-ish text, parseable or not, and on passwords that hold
/// `/`, `?` or `@` unencoded (see [`split_userinfo`]).
pub fn redact_uri(uri: &str) -> String {
    let (scheme, rest) = match uri.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, uri),
    };
    let (userinfo, after) = match split_userinfo(rest) {
        Some((u, a)) => (Some(u), a),
        None => (None, rest),
    };
    let (base, query) = match after.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (after, None),
    };
    let mut out = String::with_capacity(uri.len());
    if let Some(scheme) = scheme {
        out.push_str(scheme);
        out.push_str("://");
    }
    if let Some(u) = userinfo {
        match u.split_once(':') {
            Some((user, _)) => {
                out.push_str(user);
                out.push_str(":***@");
            }
            None => {
                out.push_str(u);
                out.push('@');
            }
        }
    }
    out.push_str(base);
    if let Some(q) = query {
        let parts: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if is_secret_param(k) => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&parts.join("&"));
    }
    out
}

/// True for a query parameter whose value is a secret: [`SECRET_PARAMS`] and any name ending
/// in `secret` or `key` (except `access-key`, an identifier).
pub fn is_secret_param(name: &str) -> bool {
    SECRET_PARAMS.contains(&name)
        || name.ends_with("secret")
        || (name.ends_with("key") && name != "access-key")
}

/// Splits `user[:password]@rest` (the part of a URI after `scheme://`) at its **last** `@`,
/// so a password holding `@`, `/` or `?` unencoded is still taken whole. The part before that
/// `@` is userinfo only when its first `:` comes before any `/` or `?` (or it has none of the
/// three): `bucket/dir@x`, `/tmp/a:b@c` and `c?endpoint=http://x@y` are not credentials.
pub fn split_userinfo(rest: &str) -> Option<(&str, &str)> {
    let (userinfo, after) = rest.rsplit_once('@')?;
    let special = userinfo.find(['/', '?']);
    let is_userinfo = match (userinfo.find(':'), special) {
        (Some(c), Some(s)) => c < s,
        (_, None) => true,
        (None, Some(_)) => false,
    };
    is_userinfo.then_some((userinfo, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_scheme() {
        let (s, _) = StorageUri::parse("file:///tmp/cdc-x").unwrap();
        assert_eq!(
            s.kind,
            StorageKind::Local {
                root: "/tmp/cdc-x".into(),
                fsync: true,
            }
        );
        let (s, _) = StorageUri::parse("file:///tmp/cdc-x?fsync=false").unwrap();
        assert_eq!(
            s.kind,
            StorageKind::Local {
                root: "/tmp/cdc-x".into(),
                fsync: false,
            }
        );
        let e = StorageUri::parse("file:///tmp/cdc-x?fsync=sometimes")
            .unwrap_err()
            .to_string();
        assert!(e.contains("fsync"), "{e}");
        let (s, _) = StorageUri::parse("memory://t1/a/b").unwrap();
        assert_eq!(
            (s.kind, s.prefix.as_str()),
            (StorageKind::Memory { name: "t1".into() }, "a/b")
        );
        let (s, rest) = StorageUri::parse(
            "s3://bkt/pre/fix?endpoint=http://127.0.0.1:9000&access-key=AK&secret-access-key=SK&protocol=csv",
        )
        .unwrap();
        assert_eq!(s.prefix, "pre/fix");
        match &s.kind {
            StorageKind::S3 {
                bucket,
                endpoint,
                allow_http,
                force_path_style,
                secret_key,
                ..
            } => {
                assert_eq!(bucket, "bkt");
                assert_eq!(endpoint.as_deref(), Some("http://127.0.0.1:9000"));
                assert!(*allow_http && *force_path_style);
                assert_eq!(secret_key.as_ref().unwrap().expose(), "SK");
            }
            other => panic!("{other:?}"),
        }
        assert!(!rest.is_empty());
        let (s, _) = StorageUri::parse("azure://ctr/p?use-emulator=true").unwrap();
        assert!(matches!(
            s.kind,
            StorageKind::Azure {
                use_emulator: true,
                allow_http: true,
                ..
            }
        ));
        let (s, _) = StorageUri::parse("gcs://b/p?credentials-file=/x.json").unwrap();
        assert!(matches!(s.kind, StorageKind::Gcs { .. }));
    }

    #[test]
    fn rejects_bad_uris_and_unknown_parameters() {
        for uri in [
            "ftp://x",
            "s3:///nobucket",
            "file://host/x",
            "not a uri",
            "memory://m/a%00b",
            "memory://m/a//b",
            "file:///",
        ] {
            assert!(
                matches!(StorageUri::parse(uri), Err(Error::InvalidUri { .. })),
                "{uri}"
            );
        }
        assert!(matches!(
            StorageUri::parse_sink("s3://b/p?bogus=1"),
            Err(Error::InvalidParameter { ref name, .. }) if name == "bogus"
        ));
        assert!(matches!(
            StorageUri::parse_sink("s3://b/p?file-index-width=30"),
            Err(Error::InvalidParameter { ref name, .. }) if name == "file-index-width"
        ));
        assert!(matches!(
            StorageUri::parse("s3://b/p?force-path-style=maybe"),
            Err(Error::InvalidParameter { .. })
        ));
    }

    #[test]
    fn secrets_never_show() {
        let uri = "s3://b/p?access-key=AK&secret-access-key=TOPSECRET&endpoint=http://h";
        let (s, _) = StorageUri::parse(uri).unwrap();
        assert!(!format!("{s:?}").contains("TOPSECRET"));
        assert!(!s.to_string().contains("TOPSECRET"));
        let err = StorageUri::parse("s3://b/p?secret-access-key=TOPSECRET&force-path-style=x")
            .unwrap_err();
        assert!(!err.to_string().contains("TOPSECRET"));
        let err = StorageUri::parse("bogus://b/p?account-key=TOPSECRET").unwrap_err();
        assert!(!err.to_string().contains("TOPSECRET"), "{err}");
        assert_eq!(
            redact_uri("postgres://u:pw@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            redact_uri("azure://c?account-key=k&x=1"),
            "azure://c?account-key=***&x=1"
        );
        // Unencoded `/`, `?` and `@` in a password, and a password in the query.
        for (uri, want) in [
            ("postgres://u:pa/ss@h/db", "postgres://u:***@h/db"),
            ("mysql://u:p?w@h:3306/db", "mysql://u:***@h:3306/db"),
            (
                "mysql://u:p@s@h/db?password=x2",
                "mysql://u:***@h/db?password=***",
            ),
            (
                "s3://b/dir@x?endpoint=http://h",
                "s3://b/dir@x?endpoint=http://h",
            ),
            ("file:///tmp/a:b@c", "file:///tmp/a:b@c"),
            ("sqlite:///tmp/x.db", "sqlite:///tmp/x.db"),
            ("not a uri:pw@x", "not a uri:***@x"),
        ] {
            assert_eq!(redact_uri(uri), want, "{uri}");
        }
    }

    #[test]
    fn gcs_service_account_file_is_read_when_the_store_is_built() {
        // Configuration level only: no GCS emulator speaks the XML API object_store uses.
        let err = StorageUri::parse("gcs://b/p?credentials-file=/nonexistent/sa.json")
            .unwrap()
            .0
            .build()
            .expect_err("a missing service-account file is an error");
        assert!(err.to_string().contains("/nonexistent/sa.json"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let sa = dir.path().join("sa.json");
        std::fs::write(
            &sa,
            r#"{"client_email":"x@y.iam.gserviceaccount.com","private_key":"","private_key_id":"k",
                "disable_oauth":true,"gcs_base_url":"http://127.0.0.1:9"}"#,
        )
        .unwrap();
        let uri = format!("gcs://b/p?credentials-file={}", sa.display());
        StorageUri::parse(&uri).unwrap().0.build().unwrap();
    }

    #[test]
    fn azure_connection_string_parameter_is_a_secret() {
        let uri = "azure://c/p?connection-string=AccountName%3Da%3BAccountKey%3DTOPSECRET";
        let (s, rest) = StorageUri::parse(uri).unwrap();
        assert!(rest.is_empty());
        assert!(!format!("{s:?} {s}").contains("TOPSECRET"));
        let bad = "azure://c/p?connection-string=AccountKeyTOPSECRET";
        let err = StorageUri::parse(bad).unwrap().0.build().err().unwrap();
        assert!(!err.to_string().contains("TOPSECRET"), "{err}");
        assert!(err.to_string().contains("not Key=Value"), "{err}");
    }

    #[tokio::test]
    async fn local_and_memory_stores_work_with_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        let uri = format!("file://{}/sub", dir.path().display());
        let store = StorageUri::parse(&uri).unwrap().0.build().unwrap();
        let (s, _) = StorageUri::parse("memory://m/a/../../x").unwrap();
        assert_eq!(s.prefix, "x", "dot segments are resolved inside the store");
        store
            .put(&Path::from("a/b.txt"), "hi".into())
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("sub/a/b.txt")).unwrap(),
            "hi"
        );
        assert_eq!(
            get_opt(store.as_ref(), "a/b.txt").await.unwrap().unwrap(),
            "hi"
        );
        assert_eq!(get_opt(store.as_ref(), "a/missing").await.unwrap(), None);

        let m1 = StorageUri::parse("memory://shared/x")
            .unwrap()
            .0
            .build()
            .unwrap();
        let m2 = StorageUri::parse("memory://shared")
            .unwrap()
            .0
            .build()
            .unwrap();
        m1.put(&Path::from("k"), "v".into()).await.unwrap();
        assert_eq!(get_opt(m2.as_ref(), "x/k").await.unwrap().unwrap(), "v");
    }
}
