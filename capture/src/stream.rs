//! The change stream loop: peek, decode, hand in, confirm.
//!
//! ```text
//! loop (until stopped):
//!   wait for room             (the sink's wake window, emit.rs)
//!   peek                      pg_logical_slot_peek_binary_changes(slot, NULL, n, proto 1, pub)
//!                             -- does not consume: until confirmed, the same transactions
//!                                come back; those ending at or before `handed_end` are skipped
//!   per transaction:          Begin -> ts (ts.rs); Relation -> definitions (relations.rs);
//!                             I/U/D -> rows (rows.rs, toast.rs); Truncate -> DDL;
//!                             Commit -> hand in the rows, queue (ts, end_lsn) in acks.rs
//!   confirm                   the flushed prefix: advance the slot, then checkpoint the sink
//!   idle?                     sleep poll-interval
//! stop: drain every dispatcher, confirm, close the sink.
//! ```
//!
//! Reconnect: a connection lost while peeking or confirming is re-opened with backoff (and the
//! slot lock re-taken); decoding resumes from the slot's confirmed position and the
//! transactions already handed in are skipped, so nothing is lost or sent twice. A failure
//! while a transaction is half handed in stops capture with the error instead; a restart then
//! resumes from the confirmed position, as after a crash.

use crate::ack::{Acks, Confirm, Ticket};
use crate::config::CaptureConfig;
use crate::emit::Emitter;
use crate::error::{CaptureError, Result};
use crate::pgoutput::{self, Lsn, Message};
use crate::relations::{Observed, Relations};
use crate::{rows, slot, source, toast};
use cdc_common::{DmlEvent, RowChange, Ts};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_postgres::Client;

/// Longest pause between reconnect attempts.
pub const MAX_RECONNECT_BACKOFF: Duration = Duration::from_secs(5);
/// Reconnect attempts before capture gives up.
pub const MAX_RECONNECT_ATTEMPTS: u32 = 30;

/// What the stream did.
#[derive(Clone, Copy, Debug, Default)]
pub struct StreamReport {
    /// Transactions handed in.
    pub transactions: u64,
    /// Reconnects after a lost connection.
    pub reconnects: u64,
    /// The last confirmed position.
    pub confirmed: Option<Confirm>,
}

/// One table's rows of the transaction being decoded, under the definition they were
/// decoded with.
struct Share {
    oid: u32,
    def: Arc<cdc_common::TableDef>,
    dispatcher: String,
    rows: Vec<RowChange>,
}

/// The transaction being decoded.
struct Txn {
    ts: Ts,
    ticket: Ticket,
    shares: Vec<Share>,
    messages: u64,
}

/// The stream's state.
pub struct Stream {
    cfg: CaptureConfig,
    pg: tokio_postgres::Config,
    client: Client,
    relations: Relations,
    emitter: Emitter,
    acks: Acks,
    clock: crate::ts::TsClock,
    handed_end: Lsn,
    /// The last WAL position an idle peek moved the slot to.
    idle_confirmed: Option<String>,
    report: StreamReport,
    metrics: crate::metrics::CaptureMetrics,
}

impl Stream {
    /// A stream over an open, slot-holding connection.
    pub fn new(
        cfg: CaptureConfig,
        pg: tokio_postgres::Config,
        client: Client,
        relations: Relations,
        emitter: Emitter,
        acks: Acks,
        clock: crate::ts::TsClock,
    ) -> Stream {
        Stream {
            cfg,
            pg,
            client,
            relations,
            emitter,
            acks,
            clock,
            handed_end: 0,
            idle_confirmed: None,
            report: StreamReport::default(),
            metrics: crate::metrics::CaptureMetrics::unregistered(),
        }
    }

    /// Reports into `metrics` (see [`crate::metrics`]).
    pub fn with_metrics(mut self, metrics: crate::metrics::CaptureMetrics) -> Stream {
        self.metrics = metrics;
        self
    }

    /// Runs until `stop` turns true, then drains and confirms everything handed in.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> Result<(StreamReport, Emitter)> {
        while !*stop.borrow() {
            let idle = match self.poll().await {
                Ok(n) => n == 0,
                Err(e) if e.is_connection_lost() => {
                    self.reconnect(e).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let Err(e) = self.confirm().await {
                if !e.is_connection_lost() {
                    return Err(e);
                }
                self.reconnect(e).await?;
            }
            if idle {
                tokio::select! {
                    _ = tokio::time::sleep(self.cfg.poll_interval) => {}
                    _ = stop.changed() => {}
                }
            }
        }
        self.emitter.drain_all().await?;
        self.confirm().await?;
        Ok((self.report, self.emitter))
    }

    /// One peek: returns the transactions handed in.
    async fn poll(&mut self) -> Result<u64> {
        self.emitter.wait_for_room().await?;
        let limit =
            (u64::from(self.cfg.max_changes) + self.acks.rows_behind()).min(i32::MAX as u64) as i32;
        let publication = format!("\"{}\"", self.cfg.publication.replace('"', "\"\""));
        // The WAL position before the peek: every transaction that committed below it is in
        // the peek's answer, so an empty answer with nothing pending lets the slot follow it.
        // The same query reads how much WAL the server keeps for the slot.
        let now = self
            .client
            .query_one(
                "SELECT pg_current_wal_lsn()::text, \
                 (SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::int8 \
                  FROM pg_replication_slots WHERE slot_name = $1)",
                &[&self.cfg.slot],
            )
            .await
            .map_err(|e| peek_error(&self.cfg, e))?;
        let upto: String = now.get(0);
        let lag: Option<i64> = now.get(1);
        self.metrics.slot_lag_bytes.set(lag.unwrap_or(0));
        self.metrics.polls.inc();
        let rows = self
            .client
            .query(
                "SELECT data FROM pg_logical_slot_peek_binary_changes($1, $4::text::pg_lsn, $2, \
                 'proto_version', '1', 'publication_names', $3)",
                &[&self.cfg.slot, &limit, &publication, &upto],
            )
            .await
            .map_err(|e| peek_error(&self.cfg, e))?;
        if rows.is_empty() && self.acks.is_empty() {
            self.follow_idle_wal(&upto).await?;
        }
        let mut txn: Option<Txn> = None;
        let mut skipping = false;
        let mut handed = 0;
        for row in &rows {
            let data: &[u8] = row.get(0);
            let msg = pgoutput::decode(data)?;
            if let Some(t) = txn.as_mut() {
                t.messages += 1;
            }
            match msg {
                Message::Begin {
                    final_lsn,
                    commit_time,
                    ..
                } => {
                    skipping = final_lsn < self.handed_end;
                    if !skipping {
                        txn = Some(Txn {
                            ts: self.clock.next(commit_time),
                            ticket: Ticket::new(),
                            shares: Vec::new(),
                            messages: 1,
                        });
                    }
                }
                _ if skipping => {
                    if matches!(msg, Message::Commit { .. }) {
                        skipping = false;
                    }
                }
                Message::Commit { end_lsn, .. } => {
                    let t = txn
                        .take()
                        .ok_or_else(|| CaptureError::Protocol("Commit without Begin".into()))?;
                    self.commit(t, end_lsn)?;
                    handed += 1;
                }
                other => {
                    let t = txn.as_mut().ok_or_else(|| {
                        CaptureError::Protocol("change outside a transaction".into())
                    })?;
                    self.change(t, other).await?;
                }
            }
        }
        self.report.transactions += handed;
        self.metrics.transactions.inc_by(handed);
        Ok(handed)
    }

    /// One message inside a transaction.
    async fn change(&mut self, txn: &mut Txn, msg: Message) -> Result<()> {
        match msg {
            Message::Relation(rel) => {
                let oid = rel.oid;
                let observed = self.relations.observe(&self.client, rel, txn.ts).await?;
                let r = self.rel(oid)?;
                if r.replica_identity == b'n'
                    || (r.replica_identity == b'd' && r.def.pk_indexes().is_empty())
                {
                    tracing::warn!(table = %r.def.name(), "table has no primary key or replica identity: PostgreSQL refuses its updates and deletes until it gets one (ALTER TABLE ... REPLICA IDENTITY FULL, or add a primary key)");
                }
                let id = r.dispatcher.clone();
                if let Observed::Created(ddl) | Observed::Altered(ddl) = observed {
                    // Rows decoded under the previous definition go first.
                    self.hand_share(txn, oid)?;
                    self.emitter.ddl(&ddl, Some(&id)).await?;
                }
            }
            Message::Insert { rel, new } => {
                let r = self.rel(rel)?;
                let rows = rows::insert(r, &new)?;
                push(txn, r, rows);
            }
            Message::Update { rel, old, mut new } => {
                let r = self.rel(rel)?.clone();
                toast::resolve(&self.client, &r, &mut new, old.as_ref()).await?;
                push(txn, &r, rows::update(&r, old.as_ref(), &new)?);
            }
            Message::Delete { rel, old } => {
                let r = self.rel(rel)?;
                let rows = rows::delete(r, &old)?;
                push(txn, r, rows);
            }
            Message::Truncate { rels } => {
                for oid in rels {
                    self.hand_share(txn, oid)?;
                    if let Some(ddl) = self.relations.truncate(oid, txn.ts) {
                        let id = self.rel(oid)?.dispatcher.clone();
                        self.emitter.ddl(&ddl, Some(&id)).await?;
                    }
                }
            }
            Message::Type { .. } | Message::Ignored(_) => {}
            Message::Begin { .. } | Message::Commit { .. } => unreachable!("handled by poll"),
        }
        Ok(())
    }

    fn rel(&self, oid: u32) -> Result<&crate::relations::Rel> {
        self.relations.get(oid).ok_or_else(|| {
            CaptureError::Protocol(format!(
                "change of relation {oid} before its Relation message"
            ))
        })
    }

    /// Hands in the rows of `oid` decoded so far in `txn`.
    fn hand_share(&mut self, txn: &mut Txn, oid: u32) -> Result<()> {
        let Some(pos) = txn.shares.iter().position(|s| s.oid == oid) else {
            return Ok(());
        };
        let share = txn.shares.remove(pos);
        let event = DmlEvent {
            table: share.def,
            partition_id: None,
            commit_ts: txn.ts,
            rows: share.rows,
        };
        self.emitter.dml(&share.dispatcher, event, &txn.ticket)
    }

    /// Hands in the transaction and queues its position.
    fn commit(&mut self, mut txn: Txn, end_lsn: Lsn) -> Result<()> {
        let oids: Vec<u32> = txn.shares.iter().map(|s| s.oid).collect();
        for oid in oids {
            self.hand_share(&mut txn, oid)?;
        }
        // Transactions arrive in commit order: everything at or below this ts is handed in,
        // which lets the sink close a keyless table's file at it (its checkpoint comes only
        // once the rows are durable, so it cannot say so; docs/format.md, writer rule 7).
        self.emitter.sink().mark_resolved(txn.ts);
        self.handed_end = end_lsn;
        self.acks.push(
            Confirm {
                ts: txn.ts,
                lsn: end_lsn,
            },
            txn.ticket,
            txn.messages,
        );
        Ok(())
    }

    /// Nothing to replicate below `upto` and nothing pending: moves the slot's confirmed
    /// position to `upto`, so that WAL written by other databases or by unpublished tables is
    /// not retained for this slot (a transaction still open commits above `upto` and is decoded
    /// later from the slot's restart position, so nothing is skipped).
    async fn follow_idle_wal(&mut self, upto: &str) -> Result<()> {
        if self.idle_confirmed.as_deref() == Some(upto) {
            return Ok(());
        }
        self.client
            .execute(
                "SELECT pg_replication_slot_advance($1, $2::text::pg_lsn) \
                 WHERE (SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = $1) \
                 < $2::text::pg_lsn",
                &[&self.cfg.slot, &upto],
            )
            .await
            .map_err(|e| slot::slot_error(&self.cfg.slot, "advancing an idle slot", e))?;
        self.idle_confirmed = Some(upto.to_string());
        Ok(())
    }

    /// Confirms the flushed prefix: the slot first, then the sink's checkpoint.
    async fn confirm(&mut self) -> Result<()> {
        let Some(c) = self.acks.flushed_prefix() else {
            return Ok(());
        };
        slot::advance(&self.client, &self.cfg.slot, c.lsn).await?;
        self.emitter.sink().checkpoint(c.ts).await?;
        self.report.confirmed = Some(c);
        self.metrics
            .confirmed_ts
            .set(c.ts.0.min(i64::MAX as u64) as i64);
        Ok(())
    }

    async fn reconnect(&mut self, cause: CaptureError) -> Result<()> {
        let mut backoff = Duration::from_millis(100);
        for attempt in 1..=MAX_RECONNECT_ATTEMPTS {
            tracing::warn!(error = %cause, attempt, "source connection lost; reconnecting");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_RECONNECT_BACKOFF);
            let client = match source::connect(&self.pg).await {
                Ok(c) => c,
                Err(e) if e.is_connection_lost() => continue,
                Err(e) => return Err(e),
            };
            let info = slot::inspect(&client, &self.cfg.slot).await?;
            slot::hold(&client, &self.cfg.slot, info.as_ref()).await?;
            self.client = client;
            self.report.reconnects += 1;
            self.metrics.reconnects.inc();
            return Ok(());
        }
        Err(cause)
    }
}

fn push(txn: &mut Txn, rel: &crate::relations::Rel, rows: Vec<RowChange>) {
    let oid = rel.def.table_id as u32;
    match txn.shares.iter_mut().find(|s| s.oid == oid) {
        Some(s) => s.rows.extend(rows),
        None => txn.shares.push(Share {
            oid,
            def: Arc::clone(&rel.def),
            dispatcher: rel.dispatcher.clone(),
            rows,
        }),
    }
}

/// Peek errors that mean a bad set-up.
fn peek_error(cfg: &CaptureConfig, e: tokio_postgres::Error) -> CaptureError {
    if let Some((code, msg)) = crate::error::db_error(&e) {
        if code == "42704" && msg.contains("publication") {
            return CaptureError::PublicationMissing {
                name: cfg.publication.clone(),
            };
        }
    }
    slot::slot_error(&cfg.slot, "peeking the slot's changes", e)
}
