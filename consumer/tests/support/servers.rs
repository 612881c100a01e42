//! The SQL servers a test runs against (PostgreSQL, MySQL/MariaDB), each with a tag unique to
//! the test's use of it.
//!
//! The servers are shared by every test binary of a run, so a test names its schemas, storage
//! and triggers with the tag. A server whose variable is not set is passed over, except under
//! `CI=true`, where the test fails ([`cdc_common::testing::server_uri`]).

/// The variable holding the PostgreSQL URI.
pub const POSTGRES: &str = "CDC_TEST_POSTGRES_URI";
/// The variable holding the MySQL/MariaDB URI.
pub const MYSQL: &str = "CDC_TEST_MYSQL_URI";

/// One server of the test environment.
pub struct SqlServer {
    /// The variable its URI came from (for assertion messages).
    pub var: &'static str,
    /// Its URI, as a consumer's downstream.
    pub down: String,
    /// Unique to this use of it: for the names the test creates there.
    pub tag: u128,
}

/// The server named by `var` when the environment gives it (under `CI=true` it must).
pub fn sql_server(var: &'static str) -> Option<SqlServer> {
    let down = cdc_common::testing::server_uri(var)?;
    Some(SqlServer {
        var,
        down,
        tag: unique_tag(),
    })
}

/// PostgreSQL, then MySQL/MariaDB, each the environment gives. Lazy: the second is looked up
/// (and, under `CI=true`, found missing) only once the test is done with the first.
pub fn sql_servers() -> impl Iterator<Item = SqlServer> {
    [POSTGRES, MYSQL].into_iter().filter_map(sql_server)
}

/// The nanoseconds since the epoch: a name part no earlier test run used.
pub fn unique_tag() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A client of the PostgreSQL at `uri` (no TLS), its connection driven by a task of its own.
pub async fn postgres_client(uri: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(uri, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}
