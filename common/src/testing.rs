//! Test support shared by every crate's tests: where the real servers are.
//!
//! `scripts/servers.sh` starts them and exports `CDC_TEST_S3_URI`, `CDC_TEST_AZURE_URI`,
//! `CDC_TEST_POSTGRES_URI` and `CDC_TEST_MYSQL_URI`. A test that needs one calls
//! [`server_uri`]: outside CI a missing server skips the test with a note on stderr; under
//! `CI=true` it fails the test, so CI can never pass by silently skipping.

/// The URI of a test server from the environment variable `var`.
///
/// # Panics
/// When the variable is unset and `CI` is `true` or `1`.
pub fn server_uri(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            let ci = std::env::var("CI")
                .map(|v| v == "true" || v == "1")
                .unwrap_or(false);
            assert!(!ci, "{var} is not set: under CI=true every server must be running (run scripts/test.sh)");
            eprintln!("note: {var} not set; skipping (run scripts/test.sh to start the servers)");
            None
        }
    }
}
