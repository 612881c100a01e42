//! Credentials the way cloud users hand them over, against the local servers: S3 keys from the
//! environment and from an AWS profile file (s3s-fs checks signatures, so a key that was not
//! used fails), Azure with a SAS token and with a connection string (Azurite checks the SAS
//! signature). Process environment is changed here, so this binary holds one test only.
//!
//! Not exercised here (no server for it, see docs/operations.md): S3 web identity and instance
//! metadata, GCS service accounts and application default credentials.

use cdc_common::storage::{get_opt, StorageUri};
use cdc_common::testing::server_uri;
use object_store::path::Path;
use object_store::ObjectStoreExt;

fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{n}")
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Writes and reads back one object through `uri`; the store's error text otherwise.
async fn round_trip(uri: &str) -> Result<(), String> {
    let store = StorageUri::parse(uri)
        .map_err(|e| e.to_string())?
        .0
        .build()
        .map_err(|e| e.to_string())?;
    store
        .put(&Path::from("creds/probe.txt"), "ok".into())
        .await
        .map_err(|e| e.to_string())?;
    let back = get_opt(store.as_ref(), "creds/probe.txt")
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(back.as_deref(), Some(&b"ok"[..]));
    Ok(())
}

fn set(vars: &[(&str, &str)]) {
    for (k, v) in vars {
        std::env::set_var(k, v);
    }
}

fn clear() {
    for k in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CONFIG_FILE",
        "AZURE_STORAGE_CONNECTION_STRING",
    ] {
        std::env::remove_var(k);
    }
}

#[tokio::test]
async fn credentials_from_environment_profile_sas_and_connection_string() {
    let (Some(s3), Some(sas), Some(blob)) = (
        server_uri("CDC_TEST_S3_URI"),
        server_uri("CDC_TEST_AZURE_SAS"),
        server_uri("CDC_TEST_AZURE_BLOB_ENDPOINT"),
    ) else {
        return;
    };
    clear();
    let home = tempfile::tempdir().unwrap();
    set(&[("HOME", home.path().to_str().unwrap())]);
    let (parsed, _) = StorageUri::parse(&s3).unwrap();
    let cdc_common::storage::StorageKind::S3 {
        endpoint,
        access_key,
        secret_key,
        ..
    } = parsed.kind
    else {
        panic!("not an S3 URI: {s3}")
    };
    let (key_id, secret) = (access_key.unwrap(), secret_key.unwrap());
    let bare = format!(
        "s3://cdc-test/{}?endpoint={}",
        unique("creds"),
        endpoint.unwrap()
    );

    // 1. Environment keys.
    set(&[
        ("AWS_ACCESS_KEY_ID", &key_id),
        ("AWS_SECRET_ACCESS_KEY", secret.expose()),
    ]);
    round_trip(&bare).await.expect("keys from the environment");
    clear();
    set(&[("HOME", home.path().to_str().unwrap())]);

    // 2. A named profile in a credentials file (region from the config file).
    let creds = home.path().join("credentials");
    std::fs::write(
        &creds,
        format!(
            "[default]\naws_access_key_id = {key_id}\naws_secret_access_key = wrongsecret\n\
             [ci]\naws_access_key_id = {key_id}\naws_secret_access_key = {}\n",
            secret.expose()
        ),
    )
    .unwrap();
    let config = home.path().join("config");
    std::fs::write(&config, "[profile ci]\nregion = us-east-1\n").unwrap();
    set(&[
        ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
        ("AWS_CONFIG_FILE", config.to_str().unwrap()),
        ("AWS_PROFILE", "ci"),
    ]);
    round_trip(&bare).await.expect("keys from profile ci");
    // The default profile holds a wrong secret: it is the one used without AWS_PROFILE, and
    // the server refuses it (so the profile's keys, not some other source, were sent).
    std::env::remove_var("AWS_PROFILE");
    let err = round_trip(&bare).await.unwrap_err();
    assert!(!err.contains("wrongsecret"), "secret leaked: {err}");
    assert!(
        err.contains("403") || err.to_lowercase().contains("signature"),
        "{err}"
    );
    // A profile that does not exist is a clear error naming it.
    std::env::set_var("AWS_PROFILE", "nosuch");
    let err = round_trip(&bare).await.unwrap_err();
    assert!(
        err.contains("`nosuch`") && err.contains("credentials"),
        "{err}"
    );
    clear();

    // 3. Azure: a SAS token alone (no account key anywhere).
    let container = format!("azure://cdc-test/{}", unique("creds"));
    let with_sas = format!(
        "{container}?account-name=devstoreaccount1&endpoint={blob}&sas-token={}",
        enc(&sas)
    );
    round_trip(&with_sas).await.expect("azure SAS token");
    // A tampered signature is refused, without showing the token.
    let bad_sas = sas.replace("sig=", "sig=AAAA");
    let err = round_trip(&format!(
        "{container}?account-name=devstoreaccount1&endpoint={blob}&sas-token={}",
        enc(&bad_sas)
    ))
    .await
    .unwrap_err();
    assert!(!err.contains(&bad_sas), "token leaked: {err}");
    assert!(err.contains("403") || err.contains("uthenticat"), "{err}");

    // 4. Azure connection string: in the URI, then from AZURE_STORAGE_CONNECTION_STRING.
    let conn = format!("BlobEndpoint={blob};SharedAccessSignature={sas}");
    round_trip(&format!("{container}?connection-string={}", enc(&conn)))
        .await
        .expect("connection string in the URI");
    std::env::set_var("AZURE_STORAGE_CONNECTION_STRING", &conn);
    round_trip(&container)
        .await
        .expect("connection string from the environment");
    clear();
}
