//! Set-up checks before anything is created or sent: each failure is a
//! [`CaptureError`] variant naming the problem and the fix, and nothing has been touched yet.
//!
//! | check | query | error |
//! |-------|-------|-------|
//! | logical WAL | `SHOW wal_level` | [`CaptureError::WalLevel`] |
//! | publication | `pg_publication` | [`CaptureError::PublicationMissing`] |
//! | replication right | `pg_roles.rolreplication` (or superuser) | [`CaptureError::NoReplicationPrivilege`] |
//! | keyed updates/deletes | published tables with identity NOTHING, or DEFAULT without a primary key, in a publication that publishes updates or deletes | [`CaptureError::NoReplicaIdentity`] |
//!
//! A table created later without a key is not refused (PostgreSQL itself rejects its updates
//! and deletes); capture logs a warning when its Relation arrives.

use crate::error::{CaptureError, Result};
use tokio_postgres::Client;

/// Runs every check.
pub async fn check(client: &Client, publication: &str) -> Result<()> {
    wal_level(client).await?;
    replication_right(client).await?;
    let publishes_keyed = publication_exists(client, publication).await?;
    if publishes_keyed {
        replica_identities(client, publication).await?;
    }
    Ok(())
}

async fn wal_level(client: &Client) -> Result<()> {
    let level: String = client
        .query_one("SHOW wal_level", &[])
        .await
        .map_err(|e| CaptureError::pg("reading wal_level", e))?
        .get(0);
    if level != "logical" {
        return Err(CaptureError::WalLevel { current: level });
    }
    Ok(())
}

async fn replication_right(client: &Client) -> Result<()> {
    let row = client
        .query_one(
            "SELECT current_user::text, rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(|e| CaptureError::pg("reading the role", e))?;
    if !row.get::<_, bool>(1) {
        return Err(CaptureError::NoReplicationPrivilege { user: row.get(0) });
    }
    Ok(())
}

/// True when the publication publishes updates or deletes.
async fn publication_exists(client: &Client, publication: &str) -> Result<bool> {
    let row = client
        .query_opt(
            "SELECT pubupdate OR pubdelete FROM pg_publication WHERE pubname = $1",
            &[&publication],
        )
        .await
        .map_err(|e| CaptureError::pg("reading pg_publication", e))?;
    match row {
        Some(r) => Ok(r.get(0)),
        None => Err(CaptureError::PublicationMissing {
            name: publication.into(),
        }),
    }
}

async fn replica_identities(client: &Client, publication: &str) -> Result<()> {
    let rows = client
        .query(
            "SELECT format('%I.%I', p.schemaname, p.tablename) FROM pg_publication_tables p \
             JOIN pg_namespace n ON n.nspname = p.schemaname \
             JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename \
             WHERE p.pubname = $1 AND (c.relreplident = 'n' OR (c.relreplident = 'd' AND NOT EXISTS \
               (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))) \
             ORDER BY 1",
            &[&publication],
        )
        .await
        .map_err(|e| CaptureError::pg("reading replica identities", e))?;
    if rows.is_empty() {
        return Ok(());
    }
    let tables: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    Err(CaptureError::NoReplicaIdentity {
        tables: tables.join(", "),
    })
}
