//! MySQL/MariaDB's side of consumer groups (see [`crate::group`]): the lease and member tables
//! in the progress database, the [`LeaseStore`] on a connection of its own, and the fence
//! check run inside a unit's transaction.
//!
//! - Times are the server's clock in milliseconds (`UNIX_TIMESTAMP(NOW(3))`).
//! - The fence check is a locking read (`SELECT ... FOR UPDATE`), which in InnoDB reads the
//!   newest committed row whatever the transaction's snapshot, and holds the row until commit.
//! - A claim is one transaction: a locking read of the lease row, then the insert or the
//!   conditional update with the epoch incremented.
//! - MySQL DDL autocommits (see [`super::apply`]): a unit with DDL checks its fence once
//!   before its DDL statements and again inside the transaction of its progress row. A member
//!   that loses its lease between that first check and its DDL may still run the (idempotent)
//!   DDL statements; its progress write is fenced. PostgreSQL has no such window.

use crate::backend::dialect::Dialect;
use crate::backend::downstream_error;
use crate::error::{Error, Result};
use crate::group::store::{LeaseRow, MemberRow, LEASES_TABLE, MEMBERS_TABLE};
use crate::group::{Fence, LeaseKey, LeaseStore};
use cdc_common::storage::redact_uri;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, TxOpts};

/// The server's clock in milliseconds.
const NOW_MS: &str = "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)";

/// The lease store on its own connection.
pub struct MysqlLeaseStore {
    conn: Conn,
    /// The quoted progress database (where the lease tables live).
    db: String,
}

fn bad(what: &str) -> impl Fn(mysql_async::Error) -> Error + '_ {
    move |e| downstream_error(LEASES_TABLE, "-", what, e)
}

impl MysqlLeaseStore {
    /// Connects to `uri`.
    pub async fn connect(uri: &str) -> Result<MysqlLeaseStore> {
        let fail = |reason: String| Error::Connect {
            uri: redact_uri(uri),
            reason,
        };
        let plan = super::tls::from_uri(uri).map_err(fail)?;
        let opts = Opts::from_url(&plan.uri).map_err(|e| fail(e.to_string()))?;
        let db = opts.db_name().unwrap_or("cdc_consumer").to_string();
        let opts = OptsBuilder::from_opts(opts).init(vec![
            "SET time_zone = '+00:00'",
            // See the PostgreSQL store: a claim must not wait long on a held lease row.
            "SET SESSION innodb_lock_wait_timeout = 2",
        ]);
        let conn = super::connect_tls(opts, &plan).await.map_err(fail)?;
        Ok(MysqlLeaseStore {
            conn,
            db: super::dialect::Mysql.quote(&db),
        })
    }
}

#[async_trait::async_trait]
impl LeaseStore for MysqlLeaseStore {
    async fn init(&mut self) -> Result<()> {
        let db = &self.db;
        self.conn
            .query_drop(format!(
                "CREATE TABLE IF NOT EXISTS {db}.{LEASES_TABLE} (
                    group_name VARCHAR(128) NOT NULL, table_key VARCHAR(512) NOT NULL,
                    owner VARCHAR(255) NOT NULL, epoch BIGINT NOT NULL, expiry_ms BIGINT NOT NULL,
                    PRIMARY KEY (group_name, table_key)) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            ))
            .await
            .map_err(bad("create"))?;
        self.conn
            .query_drop(format!(
                "CREATE TABLE IF NOT EXISTS {db}.{MEMBERS_TABLE} (
                    group_name VARCHAR(128) NOT NULL, member VARCHAR(255) NOT NULL,
                    expiry_ms BIGINT NOT NULL, pending BIGINT NOT NULL, tables BIGINT NOT NULL,
                    PRIMARY KEY (group_name, member)) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            ))
            .await
            .map_err(bad("create"))
    }

    async fn heartbeat(
        &mut self,
        group: &str,
        me: &str,
        ttl_ms: i64,
        pending: i64,
        tables: i64,
    ) -> Result<()> {
        let db = &self.db;
        self.conn
            .exec_drop(
                format!(
                    "INSERT INTO {db}.{MEMBERS_TABLE} (group_name, member, expiry_ms, pending, tables) \
                     VALUES (?, ?, {NOW_MS} + ?, ?, ?) ON DUPLICATE KEY UPDATE \
                     expiry_ms = VALUES(expiry_ms), pending = VALUES(pending), tables = VALUES(tables)"
                ),
                (group, me, ttl_ms, pending, tables),
            )
            .await
            .map_err(bad("heartbeat"))
    }

    async fn renew(&mut self, group: &str, me: &str, ttl_ms: i64) -> Result<Vec<(LeaseKey, i64)>> {
        let db = &self.db;
        self.conn
            .exec_drop(
                format!(
                    "UPDATE {db}.{LEASES_TABLE} SET expiry_ms = {NOW_MS} + ? \
                     WHERE group_name = ? AND owner = ?"
                ),
                (ttl_ms, group, me),
            )
            .await
            .map_err(bad("renew"))?;
        let rows: Vec<(String, i64)> = self
            .conn
            .exec(
                format!(
                    "SELECT table_key, epoch FROM {db}.{LEASES_TABLE} \
                     WHERE group_name = ? AND owner = ?"
                ),
                (group, me),
            )
            .await
            .map_err(bad("renew"))?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, e)| LeaseKey::parse(&k).map(|k| (k, e)))
            .collect())
    }

    async fn members(&mut self, group: &str) -> Result<Vec<MemberRow>> {
        let db = &self.db;
        let rows: Vec<(String, i64, i64, i64)> = self
            .conn
            .exec(
                format!(
                    "SELECT member, expiry_ms - {NOW_MS}, pending, tables FROM {db}.{MEMBERS_TABLE} \
                     WHERE group_name = ? ORDER BY member"
                ),
                (group,),
            )
            .await
            .map_err(bad("members"))?;
        Ok(rows
            .into_iter()
            .map(|(member, expires_in_ms, pending, tables)| MemberRow {
                member,
                expires_in_ms,
                pending,
                tables,
            })
            .collect())
    }

    async fn leases(&mut self, group: &str) -> Result<Vec<LeaseRow>> {
        let db = &self.db;
        let rows: Vec<(String, String, i64, i64)> = self
            .conn
            .exec(
                format!(
                    "SELECT table_key, owner, epoch, expiry_ms - {NOW_MS} FROM {db}.{LEASES_TABLE} \
                     WHERE group_name = ? ORDER BY table_key"
                ),
                (group,),
            )
            .await
            .map_err(bad("leases"))?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, owner, epoch, expires_in_ms)| {
                Some(LeaseRow {
                    key: LeaseKey::parse(&k)?,
                    owner,
                    epoch,
                    expires_in_ms,
                })
            })
            .collect())
    }

    async fn claim(
        &mut self,
        group: &str,
        key: &LeaseKey,
        me: &str,
        ttl_ms: i64,
    ) -> Result<Option<i64>> {
        let db = self.db.clone();
        let k = key.text();
        let mut tx = self
            .conn
            .start_transaction(TxOpts::default())
            .await
            .map_err(bad("claim"))?;
        let cur: Option<(String, i64, i64)> = tx
            .exec_first(
                format!(
                    "SELECT owner, epoch, expiry_ms - {NOW_MS} FROM {db}.{LEASES_TABLE} \
                     WHERE group_name = ? AND table_key = ? FOR UPDATE"
                ),
                (group, &k),
            )
            .await
            .map_err(bad("claim"))?;
        let epoch = match cur {
            None => {
                tx.exec_drop(
                    format!(
                        "INSERT INTO {db}.{LEASES_TABLE} (group_name, table_key, owner, epoch, expiry_ms) \
                         VALUES (?, ?, ?, 1, {NOW_MS} + ?)"
                    ),
                    (group, &k, me, ttl_ms),
                )
                .await
                .map_err(bad("claim"))?;
                1
            }
            Some((owner, epoch, left)) if owner.is_empty() || left < 0 => {
                tx.exec_drop(
                    format!(
                        "UPDATE {db}.{LEASES_TABLE} SET owner = ?, epoch = ?, expiry_ms = {NOW_MS} + ? \
                         WHERE group_name = ? AND table_key = ?"
                    ),
                    (me, epoch + 1, ttl_ms, group, &k),
                )
                .await
                .map_err(bad("claim"))?;
                epoch + 1
            }
            Some(_) => {
                tx.rollback().await.map_err(bad("claim"))?;
                return Ok(None);
            }
        };
        tx.commit().await.map_err(bad("claim"))?;
        Ok(Some(epoch))
    }

    async fn release(&mut self, group: &str, key: &LeaseKey, me: &str, epoch: i64) -> Result<()> {
        let db = &self.db;
        self.conn
            .exec_drop(
                format!(
                    "UPDATE {db}.{LEASES_TABLE} SET owner = '', expiry_ms = 0 \
                     WHERE group_name = ? AND table_key = ? AND owner = ? AND epoch = ?"
                ),
                (group, key.text(), me, epoch),
            )
            .await
            .map_err(bad("release"))
    }

    async fn leave(&mut self, group: &str, me: &str) -> Result<()> {
        let db = &self.db;
        self.conn
            .exec_drop(
                format!(
                    "UPDATE {db}.{LEASES_TABLE} SET owner = '', expiry_ms = 0 \
                     WHERE group_name = ? AND owner = ?"
                ),
                (group, me),
            )
            .await
            .map_err(bad("leave"))?;
        self.conn
            .exec_drop(
                format!("DELETE FROM {db}.{MEMBERS_TABLE} WHERE group_name = ? AND member = ?"),
                (group, me),
            )
            .await
            .map_err(bad("leave"))
    }
}

/// The fence check (see the module doc): a locking read matching the lease row only when it
/// still names this member at this epoch. Runs in `q` (the unit's transaction, or the
/// connection before a unit's autocommitted DDL).
pub(super) async fn check_fence<Q: Queryable>(
    q: &mut Q,
    db: &str,
    fence: &Fence,
    file: &str,
) -> Result<()> {
    let row: Option<i64> = q
        .exec_first(
            format!(
                "SELECT epoch FROM {db}.{LEASES_TABLE} WHERE group_name = ? AND table_key = ? \
                 AND owner = ? AND epoch = ? FOR UPDATE"
            ),
            (
                fence.group.as_str(),
                fence.key.text(),
                fence.owner.as_str(),
                fence.epoch,
            ),
        )
        .await
        .map_err(|e| super::conflict::unit_error(LEASES_TABLE, file, "fence", e))?;
    match row {
        Some(_) => Ok(()),
        None => Err(fence.lost(file)),
    }
}
