//! TLS to the PostgreSQL downstream against the test server, which scripts/servers.sh starts
//! with a certificate from a throwaway CA (plain connections still accepted): each `sslmode`
//! connects through the consumer's own connect path and the server reports the session as
//! encrypted; a wrong CA, a missing `sslrootcert` and an unknown mode are clear errors.
//! The same for MySQL/MariaDB with `ssl-mode` and `ssl-ca` (the session's `Ssl_cipher`).

use cdc_common::testing::server_uri;
use cdc_consumer::backend::postgres::tls;
use cdc_consumer::backend::{open, Access};
use cdc_consumer::config::DownstreamUri;

fn with(uri: &str, q: &str) -> String {
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{q}")
}

/// Whether the server sees this connection as TLS (`pg_stat_ssl`), over a connection made the
/// way the consumer makes it.
async fn encrypted(uri: &str) -> Result<bool, String> {
    let plan = tls::from_uri(uri)?;
    let config: tokio_postgres::Config = plan.uri.parse().map_err(|e| format!("{e}"))?;
    let q = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    let row = match plan.tls {
        None => {
            let (c, conn) = config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            c.query_one(q, &[]).await.map_err(|e| e.to_string())?
        }
        Some((rc, mode)) => {
            let mut config = config;
            config.ssl_mode(mode);
            let mk = tokio_postgres_rustls::MakeRustlsConnect::new(rc);
            let (c, conn) = config.connect(mk).await.map_err(|e| format!("{e:?}"))?;
            tokio::spawn(conn);
            c.query_one(q, &[]).await.map_err(|e| e.to_string())?
        }
    };
    Ok(row.get::<_, bool>(0))
}

async fn consumer_connects(uri: &str) -> Result<(), String> {
    let down = DownstreamUri::parse(uri, None).map_err(|e| e.to_string())?;
    open(&down, 16, Access::Apply)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn postgres_sslmodes_wrong_ca_and_plain() {
    let (Some(pg), Some(ca), Some(wrong_ca)) = (
        server_uri("CDC_TEST_POSTGRES_URI"),
        server_uri("CDC_TEST_TLS_CA"),
        server_uri("CDC_TEST_TLS_WRONG_CA"),
    ) else {
        return;
    };
    // Plain keeps working, and is plain.
    assert!(!encrypted(&pg).await.unwrap());
    consumer_connects(&pg).await.unwrap();
    for q in [
        "sslmode=require".to_string(),
        format!("sslmode=require&sslrootcert={ca}"),
        format!("sslmode=verify-ca&sslrootcert={ca}"),
        format!("sslmode=verify-full&sslrootcert={ca}"),
    ] {
        let uri = with(&pg, &q);
        assert!(encrypted(&uri).await.unwrap(), "{q}");
        consumer_connects(&uri)
            .await
            .unwrap_or_else(|e| panic!("{q}: {e}"));
    }
    // verify-full by name too (the certificate names localhost and 127.0.0.1).
    let by_name = pg.replace("127.0.0.1", "localhost");
    assert!(encrypted(&with(
        &by_name,
        &format!("sslmode=verify-full&sslrootcert={ca}")
    ))
    .await
    .unwrap());

    // A certificate from another CA is refused, and the error says which CA file was used.
    for mode in ["verify-ca", "verify-full", "require"] {
        let uri = with(&pg, &format!("sslmode={mode}&sslrootcert={wrong_ca}"));
        let err = consumer_connects(&uri).await.unwrap_err();
        assert!(
            err.contains("certificate") && err.contains(&wrong_ca),
            "{mode}: {err}"
        );
    }
    for (q, needle) in [
        ("sslmode=verify-full".to_string(), "sslrootcert"),
        ("sslmode=sometimes".to_string(), "sslmode `sometimes`"),
        (
            "sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem".to_string(),
            "/nonexistent/ca.pem",
        ),
    ] {
        let err = consumer_connects(&with(&pg, &q)).await.unwrap_err();
        assert!(err.contains(needle), "{q}: {err}");
    }
}

/// The session's `Ssl_cipher` (empty: plain), over a connection made the way the consumer
/// makes it.
async fn mysql_cipher(uri: &str) -> Result<String, String> {
    use mysql_async::prelude::Queryable;
    let plan = cdc_consumer::backend::mysql::tls::from_uri(uri)?;
    let opts = mysql_async::Opts::from_url(&plan.uri).map_err(|e| e.to_string())?;
    let mut conn =
        cdc_consumer::backend::mysql::connect_tls(mysql_async::OptsBuilder::from_opts(opts), &plan)
            .await?;
    let row: Option<(String, String)> = conn
        .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .await
        .map_err(|e| e.to_string())?;
    let _ = conn.disconnect().await;
    Ok(row.map(|(_, v)| v).unwrap_or_default())
}

#[tokio::test]
async fn mysql_ssl_modes_wrong_ca_and_plain() {
    let (Some(my), Some(ca), Some(wrong_ca)) = (
        server_uri("CDC_TEST_MYSQL_URI"),
        server_uri("CDC_TEST_TLS_CA"),
        server_uri("CDC_TEST_TLS_WRONG_CA"),
    ) else {
        return;
    };
    // Plain keeps working, and is plain, absent or DISABLED.
    for uri in [my.clone(), with(&my, "ssl-mode=disabled")] {
        assert_eq!(mysql_cipher(&uri).await.unwrap(), "", "{uri}");
        consumer_connects(&uri).await.unwrap();
    }
    for q in [
        "ssl-mode=PREFERRED".to_string(),
        "ssl-mode=required".to_string(),
        format!("ssl-mode=REQUIRED&ssl-ca={ca}"),
        format!("ssl-mode=VERIFY_CA&ssl-ca={ca}"),
        format!("ssl-mode=verify_identity&ssl-ca={ca}"),
    ] {
        let uri = with(&my, &q);
        let cipher = mysql_cipher(&uri)
            .await
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        assert!(!cipher.is_empty(), "{q}: not encrypted");
        consumer_connects(&uri)
            .await
            .unwrap_or_else(|e| panic!("{q}: {e}"));
    }
    // VERIFY_IDENTITY by name too (the certificate names localhost and 127.0.0.1).
    let by_name = with(
        &my.replace("127.0.0.1", "localhost"),
        &format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"),
    );
    assert!(!mysql_cipher(&by_name).await.unwrap().is_empty());

    // A certificate from another CA is refused, and the error says which CA file was used.
    for mode in ["VERIFY_CA", "VERIFY_IDENTITY", "REQUIRED"] {
        let uri = with(&my, &format!("ssl-mode={mode}&ssl-ca={wrong_ca}"));
        let err = consumer_connects(&uri).await.unwrap_err();
        assert!(
            err.contains("certificate") && err.contains(&wrong_ca),
            "{mode}: {err}"
        );
        assert!(!err.contains(":cdc@"), "password shown: {err}");
    }
    for (q, needle) in [
        ("ssl-mode=VERIFY_IDENTITY".to_string(), "ssl-ca"),
        ("ssl-mode=sometimes".to_string(), "ssl-mode `sometimes`"),
        (
            "ssl-mode=VERIFY_CA&ssl-ca=/nonexistent/ca.pem".to_string(),
            "/nonexistent/ca.pem",
        ),
    ] {
        let err = consumer_connects(&with(&my, &q)).await.unwrap_err();
        assert!(err.contains(needle), "{q}: {err}");
    }
}
