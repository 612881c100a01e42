//! One shared suite for every storage backend: the same put/get/list/delete/conditional-create
//! checks run on memory, a local directory, the S3-compatible server and Azurite, through the
//! storage URIs users write.

use cdc_common::storage::{get_opt, StorageUri};
use cdc_common::testing::server_uri;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions};
use std::sync::Arc;

fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{n}")
}

/// `backslash_kept`: whether a `\` in a key survives (not on Azurite: the object_store Azure
/// client sends it as a `/`, see docs/format.md).
async fn suite(store: Arc<dyn ObjectStore>, conditional_create: bool, backslash_kept: bool) {
    let data = Path::from("db/t/1/CDC000001.csv");
    let index = Path::from("db/t/1/meta/CDC.index");
    store.put(&data, "row\r\n".into()).await.unwrap();
    store.put(&index, "CDC000001.csv\n".into()).await.unwrap();
    assert_eq!(
        get_opt(store.as_ref(), "db/t/1/CDC000001.csv")
            .await
            .unwrap()
            .unwrap(),
        "row\r\n"
    );
    assert_eq!(
        get_opt(store.as_ref(), "db/t/1/CDC000002.csv")
            .await
            .unwrap(),
        None
    );

    // Overwrite is visible.
    store.put(&index, "CDC000002.csv\n".into()).await.unwrap();
    assert_eq!(
        get_opt(store.as_ref(), "db/t/1/meta/CDC.index")
            .await
            .unwrap()
            .unwrap(),
        "CDC000002.csv\n"
    );

    // Delimited listing sees directories without listing the whole tree.
    let listed = store
        .list_with_delimiter(Some(&Path::from("db/t/1")))
        .await
        .unwrap();
    let dirs: Vec<String> = listed
        .common_prefixes
        .iter()
        .map(|p| p.to_string())
        .collect();
    let files: Vec<String> = listed
        .objects
        .iter()
        .map(|o| o.location.to_string())
        .collect();
    assert_eq!(dirs, vec!["db/t/1/meta"]);
    assert_eq!(files, vec!["db/t/1/CDC000001.csv"]);
    let all: Vec<_> = store
        .list(Some(&Path::from("db")))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 2);

    if conditional_create {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let again = store.put_opts(&data, "other".into(), opts).await;
        assert!(
            matches!(again, Err(object_store::Error::AlreadyExists { .. })),
            "{again:?}"
        );
    }

    // Names are stored verbatim (the TiCDC layout writes table names as they are): characters
    // that object_store's `Path::from` would percent-encode keep their byte values in the key,
    // and a listing hands back the same text.
    let odd = if backslash_kept {
        "db/t{1}%41#~[x]?*|^`<>\"\\ é表/1/CDC000001.csv"
    } else {
        "db/t{1}%41#~[x]?*|^`<>\" é表/1/CDC000001.csv"
    };
    let odd_path = Path::parse(odd).unwrap();
    store.put(&odd_path, "odd".into()).await.unwrap();
    assert_eq!(
        get_opt(store.as_ref(), odd).await.unwrap().unwrap(),
        "odd",
        "read back by its verbatim key"
    );
    let listed: Vec<String> = store
        .list(Some(&Path::parse("db").unwrap()))
        .map_ok(|o| o.location.to_string())
        .try_collect()
        .await
        .unwrap();
    assert!(listed.iter().any(|k| k == odd), "{listed:?}");
    store.delete(&odd_path).await.unwrap();

    store.delete(&data).await.unwrap();
    store.delete(&index).await.unwrap();
    assert_eq!(
        get_opt(store.as_ref(), "db/t/1/CDC000001.csv")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn memory_backend() {
    let store = StorageUri::parse(&format!("memory://{}/p", unique("m")))
        .unwrap()
        .0
        .build()
        .unwrap();
    suite(store, true, true).await;
}

#[tokio::test]
async fn local_backend() {
    let dir = tempfile::tempdir().unwrap();
    let store = StorageUri::parse(&format!("file://{}/root", dir.path().display()))
        .unwrap()
        .0
        .build()
        .unwrap();
    suite(Arc::clone(&store), true, true).await;
    // On disk, the key's segments are the file names, verbatim.
    let odd = "db/t{1}%41#~ é表/1/CDC000001.csv";
    store
        .put(&Path::parse(odd).unwrap(), "odd".into())
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("root").join(odd)).unwrap(),
        b"odd"
    );
    store.delete(&Path::parse(odd).unwrap()).await.unwrap();
    // Automatic cleanup removed the emptied directories.
    assert!(!dir.path().join("root/db/t/1/meta").exists());
}

/// Puts the prefix into the URI's path part (before the query).
fn with_prefix(uri: &str, prefix: &str) -> String {
    match uri.split_once('?') {
        Some((base, q)) => format!("{base}/{prefix}?{q}"),
        None => format!("{uri}/{prefix}"),
    }
}

#[tokio::test]
async fn s3_compatible_backend() {
    let Some(uri) = server_uri("CDC_TEST_S3_URI") else {
        return;
    };
    let store = StorageUri::parse(&with_prefix(&uri, &unique("suite")))
        .unwrap()
        .0
        .build()
        .unwrap();
    suite(store, true, true).await;
}

#[tokio::test]
async fn s3_wrong_secret_is_refused_without_leaking_it() {
    let Some(uri) = server_uri("CDC_TEST_S3_URI") else {
        return;
    };
    let bad = uri.replace("secret-access-key=", "secret-access-key=wrong");
    let store = StorageUri::parse(&bad).unwrap().0.build().unwrap();
    let err = store.put(&Path::from("x"), "y".into()).await.unwrap_err();
    let text = err.to_string();
    assert!(!text.contains("wrong"), "secret leaked: {text}");
    assert!(
        text.contains("403") || text.to_lowercase().contains("signature"),
        "{text}"
    );
}

#[tokio::test]
async fn azurite_backend() {
    let Some(uri) = server_uri("CDC_TEST_AZURE_URI") else {
        return;
    };
    let store = StorageUri::parse(&with_prefix(&uri, &unique("suite")))
        .unwrap()
        .0
        .build()
        .unwrap();
    suite(store, false, false).await;
}
