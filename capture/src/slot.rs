//! The replication slot: inspect, create (with an exported snapshot), hold, advance.
//!
//! ```text
//! missing slot  --CREATE_REPLICATION_SLOT s LOGICAL pgoutput EXPORT_SNAPSHOT--> (walsender)
//!                  -> consistent_point LSN + snapshot name, valid while that connection idles
//! hold          --pg_try_advisory_lock(<slot key>)-- on the stream's session: one capture per slot
//! advance       --pg_replication_slot_advance(s, lsn)-- ONLY with an LSN whose transactions
//!                  are flushed in storage (ack.rs decides which)
//! ```
//!
//! The slot's `confirmed_flush_lsn` is capture's only record of its position in the source:
//! after a crash decoding resumes there, and everything after it is sent to the sink again.

use crate::error::{db_error, CaptureError, Result};
use crate::pgoutput::Lsn;
use crate::walsender::WalSender;
use tokio_postgres::Client;

/// A slot as `pg_replication_slots` shows it.
#[derive(Clone, Debug)]
pub struct SlotInfo {
    /// Output plugin.
    pub plugin: String,
    /// The pid of the walsender using it, if any.
    pub active_pid: Option<i32>,
    /// Confirmed position.
    pub confirmed_flush: Option<Lsn>,
}

/// A slot just created, with its snapshot.
pub struct NewSlot {
    /// The first LSN the slot decodes after; the snapshot shows everything before.
    pub consistent_point: Lsn,
    /// The exported snapshot's name (for `SET TRANSACTION SNAPSHOT`).
    pub snapshot_name: String,
    /// The replication connection keeping the snapshot alive: close it after the import.
    pub conn: WalSender,
}

/// Parses `16/B374D848`.
pub fn parse_lsn(s: &str) -> Option<Lsn> {
    let (hi, lo) = s.split_once('/')?;
    Some(u64::from_str_radix(hi, 16).ok()? << 32 | u64::from_str_radix(lo, 16).ok()?)
}

/// Formats an LSN as PostgreSQL does.
pub fn format_lsn(lsn: Lsn) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff)
}

/// The slot, if it exists.
pub async fn inspect(client: &Client, slot: &str) -> Result<Option<SlotInfo>> {
    let row = client
        .query_opt(
            "SELECT plugin::text, active_pid, confirmed_flush_lsn::text \
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(|e| CaptureError::pg("reading pg_replication_slots", e))?;
    Ok(row.map(|r| SlotInfo {
        plugin: r.get::<_, Option<String>>(0).unwrap_or_default(),
        active_pid: r.get(1),
        confirmed_flush: r.get::<_, Option<String>>(2).as_deref().and_then(parse_lsn),
    }))
}

/// Takes the session-level advisory lock that says "a capture runs on this slot"; refused
/// with [`CaptureError::SlotInUse`] when another session holds it or a walsender streams
/// the slot.
pub async fn hold(client: &Client, slot: &str, info: Option<&SlotInfo>) -> Result<()> {
    if let Some(pid) = info.and_then(|i| i.active_pid) {
        return Err(CaptureError::SlotInUse {
            slot: slot.into(),
            holder: format!("walsender pid {pid}"),
        });
    }
    let key = lock_key(slot);
    let ok: bool = client
        .query_one("SELECT pg_try_advisory_lock(hashtext($1))", &[&key])
        .await
        .map_err(|e| CaptureError::pg("taking the slot's advisory lock", e))?
        .get(0);
    if ok {
        return Ok(());
    }
    let holder: Option<i32> = client
        .query_opt(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND objid = hashtext($1)::oid LIMIT 1",
            &[&key],
        )
        .await
        .ok()
        .flatten()
        .and_then(|r| r.get(0));
    Err(CaptureError::SlotInUse {
        slot: slot.into(),
        holder: match holder {
            Some(pid) => format!("another cdc-capture, backend pid {pid}"),
            None => "another cdc-capture".into(),
        },
    })
}

fn lock_key(slot: &str) -> String {
    format!("cdc-capture slot {slot}")
}

/// Creates the slot on a replication connection and keeps the connection (its snapshot).
pub async fn create(config: &tokio_postgres::Config, slot: &str) -> Result<NewSlot> {
    let mut conn = WalSender::connect(config).await?;
    let sql = format!("CREATE_REPLICATION_SLOT {slot} LOGICAL pgoutput EXPORT_SNAPSHOT");
    let rows = match conn.query(&sql).await? {
        Ok(rows) => rows,
        Err(e) => {
            conn.close().await;
            return Err(match e.code.as_str() {
                "55000" if e.message.contains("wal_level") => CaptureError::WalLevel {
                    current: "below logical".into(),
                },
                "42710" => CaptureError::SlotInUse {
                    slot: slot.into(),
                    holder: "created concurrently by another process".into(),
                },
                _ => {
                    CaptureError::Replication(format!("{sql}: {} (SQLSTATE {})", e.message, e.code))
                }
            });
        }
    };
    // slot_name, consistent_point, snapshot_name, output_plugin
    let row = rows.first().ok_or_else(|| {
        CaptureError::Replication("CREATE_REPLICATION_SLOT returned no row".into())
    })?;
    let field = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    let consistent_point = parse_lsn(&field(1))
        .ok_or_else(|| CaptureError::Replication(format!("bad consistent point {:?}", field(1))))?;
    Ok(NewSlot {
        consistent_point,
        snapshot_name: field(2),
        conn,
    })
}

/// Moves the slot's confirmed position to `lsn` (never backwards: a lower LSN is a no-op).
pub async fn advance(client: &Client, slot: &str, lsn: Lsn) -> Result<()> {
    let r = client
        .execute(
            "SELECT pg_replication_slot_advance($1, $2::text::pg_lsn)",
            &[&slot, &format_lsn(lsn)],
        )
        .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) => Err(slot_error(slot, "advancing the slot", e)),
    }
}

/// Maps a slot function's error: "is active for PID n" means another process holds it.
pub fn slot_error(slot: &str, context: &str, e: tokio_postgres::Error) -> CaptureError {
    if let Some(("55006", msg)) = db_error(&e) {
        return CaptureError::SlotInUse {
            slot: slot.into(),
            holder: msg.to_string(),
        };
    }
    CaptureError::pg(context, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_text_round_trips() {
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(format_lsn(0x16_B374_D848), "16/B374D848");
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("x"), None);
    }
}
