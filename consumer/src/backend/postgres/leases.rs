//! PostgreSQL's side of consumer groups (see [`crate::group`]): the lease and member tables in
//! schema `public`, the [`LeaseStore`] on a connection of its own, and the fence check run
//! inside a unit's transaction.
//!
//! Times are the server's clock in milliseconds (`clock_timestamp()`, not `now()`, which is
//! frozen at the start of a transaction). The two tables are created by
//! [`super::create_table::ensure`], so members starting at once do not race on the create.

use super::create_table;
use super::error::PgError;
use crate::backend::downstream_error;
use crate::error::{Error, Result};
use crate::group::store::{LeaseRow, MemberRow};
use crate::group::store::{LEASES_TABLE, MEMBERS_TABLE};
use crate::group::{Fence, LeaseKey, LeaseStore};
use cdc_common::storage::redact_uri;
use tokio_postgres::{Client, NoTls, Transaction};

/// The server's clock in milliseconds.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// The lease store on its own connection.
pub struct PgLeaseStore {
    client: Client,
}

fn bad(what: &str) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
    move |e| downstream_error(LEASES_TABLE, "-", what, PgError(&e))
}

impl PgLeaseStore {
    /// Connects to `uri`.
    pub async fn connect(uri: &str) -> Result<PgLeaseStore> {
        let (client, conn) =
            tokio_postgres::connect(uri, NoTls)
                .await
                .map_err(|e| Error::Connect {
                    uri: redact_uri(uri),
                    reason: PgError(&e).to_string(),
                })?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::error!(error = %e, "postgres lease connection closed");
            }
        });
        // A claim waits on a lease row an apply transaction holds (a member paused between
        // its fence check and its commit); waiting past this would stop our own renewals.
        client
            .batch_execute("SET lock_timeout = '2s'")
            .await
            .map_err(|e| Error::Connect {
                uri: redact_uri(uri),
                reason: PgError(&e).to_string(),
            })?;
        Ok(PgLeaseStore { client })
    }
}

#[async_trait::async_trait]
impl LeaseStore for PgLeaseStore {
    async fn init(&mut self) -> Result<()> {
        create_table::ensure(
            &self.client,
            LEASES_TABLE,
            "group_name TEXT NOT NULL, table_key TEXT NOT NULL, owner TEXT NOT NULL,
             epoch BIGINT NOT NULL, expiry_ms BIGINT NOT NULL,
             PRIMARY KEY (group_name, table_key)",
        )
        .await
        .map_err(bad("create"))?;
        create_table::ensure(
            &self.client,
            MEMBERS_TABLE,
            "group_name TEXT NOT NULL, member TEXT NOT NULL, expiry_ms BIGINT NOT NULL,
             pending BIGINT NOT NULL, tables BIGINT NOT NULL,
             PRIMARY KEY (group_name, member)",
        )
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
        self.client
            .execute(
                &format!(
                    "INSERT INTO public.{MEMBERS_TABLE} (group_name, member, expiry_ms, pending, tables) \
                     VALUES ($1, $2, {NOW_MS} + $3, $4, $5) \
                     ON CONFLICT (group_name, member) DO UPDATE SET expiry_ms = EXCLUDED.expiry_ms, \
                     pending = EXCLUDED.pending, tables = EXCLUDED.tables"
                ),
                &[&group, &me, &ttl_ms, &pending, &tables],
            )
            .await
            .map_err(bad("heartbeat"))?;
        Ok(())
    }

    async fn renew(&mut self, group: &str, me: &str, ttl_ms: i64) -> Result<Vec<(LeaseKey, i64)>> {
        let rows = self
            .client
            .query(
                &format!(
                    "UPDATE public.{LEASES_TABLE} SET expiry_ms = {NOW_MS} + $3 \
                     WHERE group_name = $1 AND owner = $2 RETURNING table_key, epoch"
                ),
                &[&group, &me, &ttl_ms],
            )
            .await
            .map_err(bad("renew"))?;
        let mut out = Vec::new();
        for r in rows {
            let text: String = r.try_get(0).map_err(bad("renew"))?;
            if let Some(k) = LeaseKey::parse(&text) {
                out.push((k, r.try_get(1).map_err(bad("renew"))?));
            }
        }
        Ok(out)
    }

    async fn members(&mut self, group: &str) -> Result<Vec<MemberRow>> {
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT member, expiry_ms - {NOW_MS}, pending, tables FROM public.{MEMBERS_TABLE} \
                     WHERE group_name = $1 ORDER BY member"
                ),
                &[&group],
            )
            .await
            .map_err(bad("members"))?;
        rows.iter()
            .map(|r| {
                Ok(MemberRow {
                    member: r.try_get(0).map_err(bad("members"))?,
                    expires_in_ms: r.try_get(1).map_err(bad("members"))?,
                    pending: r.try_get(2).map_err(bad("members"))?,
                    tables: r.try_get(3).map_err(bad("members"))?,
                })
            })
            .collect()
    }

    async fn leases(&mut self, group: &str) -> Result<Vec<LeaseRow>> {
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT table_key, owner, epoch, expiry_ms - {NOW_MS} FROM public.{LEASES_TABLE} \
                     WHERE group_name = $1 ORDER BY table_key"
                ),
                &[&group],
            )
            .await
            .map_err(bad("leases"))?;
        let mut out = Vec::new();
        for r in rows {
            let text: String = r.try_get(0).map_err(bad("leases"))?;
            let Some(key) = LeaseKey::parse(&text) else {
                continue;
            };
            out.push(LeaseRow {
                key,
                owner: r.try_get(1).map_err(bad("leases"))?,
                epoch: r.try_get(2).map_err(bad("leases"))?,
                expires_in_ms: r.try_get(3).map_err(bad("leases"))?,
            });
        }
        Ok(out)
    }

    async fn claim(
        &mut self,
        group: &str,
        key: &LeaseKey,
        me: &str,
        ttl_ms: i64,
    ) -> Result<Option<i64>> {
        let row = self
            .client
            .query_opt(
                &format!(
                    "INSERT INTO public.{LEASES_TABLE} AS l (group_name, table_key, owner, epoch, expiry_ms) \
                     VALUES ($1, $2, $3, 1, {NOW_MS} + $4) \
                     ON CONFLICT (group_name, table_key) DO UPDATE SET owner = EXCLUDED.owner, \
                     epoch = l.epoch + 1, expiry_ms = EXCLUDED.expiry_ms \
                     WHERE l.owner = '' OR l.expiry_ms < {NOW_MS} \
                     RETURNING epoch"
                ),
                &[&group, &key.text(), &me, &ttl_ms],
            )
            .await
            .map_err(bad("claim"))?;
        row.map(|r| r.try_get(0).map_err(bad("claim"))).transpose()
    }

    async fn release(&mut self, group: &str, key: &LeaseKey, me: &str, epoch: i64) -> Result<()> {
        self.client
            .execute(
                &format!(
                    "UPDATE public.{LEASES_TABLE} SET owner = '', expiry_ms = 0 \
                     WHERE group_name = $1 AND table_key = $2 AND owner = $3 AND epoch = $4"
                ),
                &[&group, &key.text(), &me, &epoch],
            )
            .await
            .map_err(bad("release"))?;
        Ok(())
    }

    async fn leave(&mut self, group: &str, me: &str) -> Result<()> {
        self.client
            .execute(
                &format!(
                    "UPDATE public.{LEASES_TABLE} SET owner = '', expiry_ms = 0 \
                     WHERE group_name = $1 AND owner = $2"
                ),
                &[&group, &me],
            )
            .await
            .map_err(bad("leave"))?;
        self.client
            .execute(
                &format!(
                    "DELETE FROM public.{MEMBERS_TABLE} WHERE group_name = $1 AND member = $2"
                ),
                &[&group, &me],
            )
            .await
            .map_err(bad("leave"))?;
        Ok(())
    }
}

/// The fence check inside a unit's transaction: locks the lease row and matches it only when
/// it still names this member at this epoch (see [`crate::group::fence`]).
pub(super) async fn check_fence(tx: &Transaction<'_>, fence: &Fence, file: &str) -> Result<()> {
    let n = tx
        .execute(
            &format!(
                "UPDATE public.{LEASES_TABLE} SET epoch = epoch \
                 WHERE group_name = $1 AND table_key = $2 AND owner = $3 AND epoch = $4"
            ),
            &[&fence.group, &fence.key.text(), &fence.owner, &fence.epoch],
        )
        .await
        .map_err(|e| downstream_error(LEASES_TABLE, file, "fence", PgError(&e)))?;
    if n == 1 {
        Ok(())
    } else {
        Err(fence.lost(file))
    }
}
