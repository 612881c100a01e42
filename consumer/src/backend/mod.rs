//! The downstreams: what a backend provides ([`Downstream`]), the [`Unit`] it applies, and
//! [`open`], the one place where a configured downstream URI picks its backend.
//!
//! # One folder per backend
//!
//! Each backend owns everything about its downstream in its own folder: identifier quoting,
//! type mapping and DDL text (`dialect.rs`), its bookkeeping tables (progress, quarantine and
//! the round audit record, `bookkeeping.rs`), the transactional apply path (`apply.rs`), and
//! the read-back of a replicated table (`read_back.rs`; bookkeeping tables are not listed). Adding a downstream is one new folder plus one arm in
//! [`open`] (and its scheme in [`crate::config::DownstreamUri`]). What is dialect-free (the
//! DDL operation model in [`crate::ddl`], the row-operation plan in [`crate::plan`]) stays in
//! the consumer core; the SQL backends share the [`dialect::Dialect`] trait's default texts.
//!
//! # Unit of work
//!
//! A [`Unit`] is the rows of consecutive data files of one stream (up to `--unit-files`, see
//! `replay/file_unit.rs`; `file` then names the first and last of them), or one schema file's
//! DDL, together with the progress rows that cover it. A backend applies a unit **atomically**: rows and progress in one transaction
//! (MySQL DDL autocommits; there the DDL statements are written to be idempotent, `IF [NOT]
//! EXISTS`, and the progress row follows them, so a crash in between re-runs harmless DDL).
//!
//! # Read-back
//!
//! A SQL backend reads a replicated table back as **canonical text**, one `Option<String>` per
//! column, so one comparison serves every database (`cdc-storage verify` and the tests):
//! integers and text as written, floats as the database's shortest text (MySQL's through
//! DOUBLE), DECIMAL as the database prints it, binary columns as lowercase hex, NULL as `None`.
//! Rows come ordered by the table's primary key (by every column when it has none), so two
//! reads of the same table compare equal. stdout keeps no tables and refuses a read-back.

mod ca_file;
pub mod dialect;
mod escape;
pub mod mysql;
pub mod postgres;
pub mod sqlite;
pub mod stdout;

use crate::config::DownstreamUri;
use crate::ddl::DdlOp;
use crate::error::Result;
use crate::freshness::RoundRecord;
use crate::group::{Fence, LeaseStore};
use crate::plan::RowOp;
use crate::progress::{Position, ProgressKey};
use crate::quarantine::QuarantinedFile;
use cdc_common::{ColumnDef, TableDef, TableName};

/// What one unit carries.
pub struct Unit<'a> {
    /// The data or schema file being applied, or `first .. last (n files)` for a unit of
    /// several data files (for errors).
    pub file: &'a str,
    /// The table of the row operations (or of the DDL).
    pub table: Option<&'a TableDef>,
    /// DDL operations, applied first.
    pub ddl: &'a [DdlOp],
    /// Row operations, in order.
    pub rows: &'a [RowOp],
    /// The progress rows to write in the same transaction.
    pub progress: &'a [(ProgressKey, Position)],
    /// A quarantined data file to record in the same transaction (its rows are not applied;
    /// see [`crate::quarantine`]).
    pub quarantine: Option<&'a QuarantinedFile>,
    /// In a consumer group: the lease this unit is applied under, checked inside its
    /// transaction (see [`crate::group::fence`]); `None` outside a group.
    pub fence: Option<&'a Fence>,
}

/// Rows of one table read back, one canonical text per column (see the module doc).
pub type TextRows = Vec<Vec<Option<String>>>;

/// A downstream database (or stdout).
#[async_trait::async_trait]
pub trait Downstream: Send {
    /// Creates the progress table when missing and reads it back.
    async fn load_progress(&mut self) -> Result<Vec<(ProgressKey, Position)>>;

    /// [`Downstream::load_progress`], after waiting for every unit still in flight on the
    /// progress record to commit or roll back: a killed consumer's server session that had
    /// received `COMMIT` still commits, and a consumer starting (or reopening its downstream)
    /// must read the record after that (see the PostgreSQL and MySQL module docs). SQLite and
    /// stdout have no such late commits. Not used for a group member's per-round reload: there
    /// the lease fence, checked inside every unit's transaction, orders a takeover after the
    /// last unit of the member it replaces.
    async fn load_progress_settled(&mut self) -> Result<Vec<(ProgressKey, Position)>> {
        self.load_progress().await
    }

    /// True when a unit's DDL is part of its transaction (rolled back with it): the replayer
    /// then creates many tables in one unit (`replay/create_batch.rs`). False by default
    /// (MySQL commits each DDL statement on its own; stdout prints each schema file's lines).
    fn transactional_ddl(&self) -> bool {
        false
    }

    /// True when the downstream has the table.
    async fn table_exists(&mut self, name: &TableName) -> Result<bool>;

    /// Applies one unit atomically (see the module doc).
    async fn apply(&mut self, unit: Unit<'_>) -> Result<()>;

    /// True when the downstream keeps the settled mark in its progress record (see
    /// [`crate::settled`]): every SQL downstream. stdout does not (its progress file is read
    /// by other tools as frozen format), so a stdout consumer always starts with a full round.
    fn keeps_settled_mark(&self) -> bool {
        true
    }

    /// How a file's row changes are planned for this downstream: each key's last state for a
    /// database (see [`crate::plan`]), every change for a change log.
    fn reduce(&self) -> crate::plan::Reduce {
        crate::plan::Reduce::LastState
    }

    /// In a consumer group: asks the server to end this session when it sits idle inside a
    /// transaction for longer than `limit`, so a member paused mid-unit (SIGSTOP) releases its
    /// row locks to the member taking its tables over (PostgreSQL: an idle-in-transaction
    /// timeout; MySQL: the session's `wait_timeout`). SQLite and stdout do nothing.
    async fn limit_idle_transactions(&mut self, _limit: std::time::Duration) -> Result<()> {
        Ok(())
    }

    /// Reads the quarantine record, oldest first. With `create` the record is created when
    /// missing (policy `quarantine`); without, a missing record reads as empty.
    async fn load_quarantine(&mut self, create: bool) -> Result<Vec<QuarantinedFile>>;

    /// Stores a round's audit record (creating its table when missing) and drops the oldest
    /// beyond `keep` (see [`crate::audit`]).
    async fn save_round(&mut self, rec: &RoundRecord, keep: u64) -> Result<()>;

    /// The newest `limit` stored round records, oldest first (empty when none is stored).
    async fn load_rounds(&mut self, limit: usize) -> Result<Vec<RoundRecord>>;

    /// Read-back: the replicated tables of upstream schema `schema`, sorted by name (the
    /// consumer's bookkeeping tables are not among them).
    async fn read_tables(&mut self, schema: &str) -> Result<Vec<String>>;

    /// Read-back: the column names of a table in their downstream order (empty when the table
    /// does not exist).
    async fn read_columns(&mut self, table: &TableName) -> Result<Vec<String>>;

    /// Read-back: every row of a table, the given columns as canonical text, ordered by the
    /// columns marked primary key (by every given column when none is; see the module doc).
    async fn read_rows(&mut self, table: &TableName, columns: &[ColumnDef]) -> Result<TextRows>;

    /// The ENUM/SET elements the downstream's existing definition of `table` declares, as
    /// `(column, elements)` (empty when the table is missing or declares none): the last
    /// source of [`crate::enum_elems`]. Only MySQL/MariaDB keeps them (`COLUMN_TYPE`); this
    /// project creates ENUM and SET as plain text in PostgreSQL and SQLite and stdout keeps no
    /// tables, so those have none to give.
    async fn read_elems(&mut self, table: &TableName) -> Result<Vec<(String, Vec<String>)>> {
        let _ = table;
        Ok(Vec::new())
    }
}

/// How a downstream is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// To apply units (creates what is missing).
    Apply,
    /// Only to read back (SQLite opens the file read-only; a missing file is an error).
    ReadBack,
}

/// Opens the downstream `uri`: the one place where a URI picks its backend.
pub async fn open(
    uri: &DownstreamUri,
    batch_rows: usize,
    access: Access,
) -> Result<Box<dyn Downstream>> {
    Ok(match uri {
        DownstreamUri::Sqlite(path) => Box::new(match access {
            Access::Apply => sqlite::SqliteDownstream::open(path, batch_rows)?,
            Access::ReadBack => sqlite::SqliteDownstream::open_read_only(path)?,
        }),
        DownstreamUri::Stdout(path) => Box::new(stdout::StdoutDownstream::new(path.clone())),
        DownstreamUri::Postgres(uri) => {
            Box::new(postgres::PostgresDownstream::connect(uri, batch_rows).await?)
        }
        DownstreamUri::Mysql(uri) => {
            Box::new(mysql::MysqlDownstream::connect(uri, batch_rows).await?)
        }
    })
}

/// Opens the lease store of a consumer group on its own connection to `uri`: PostgreSQL and
/// MySQL/MariaDB only (SQLite and stdout are single-member downstreams).
pub async fn open_lease_store(uri: &DownstreamUri) -> Result<Box<dyn LeaseStore>> {
    Ok(match uri {
        DownstreamUri::Postgres(uri) => Box::new(postgres::PgLeaseStore::connect(uri).await?),
        DownstreamUri::Mysql(uri) => Box::new(mysql::MysqlLeaseStore::connect(uri).await?),
        DownstreamUri::Sqlite(_) | DownstreamUri::Stdout(_) => {
            return Err(crate::error::Error::config(
                "group",
                "a consumer group needs a PostgreSQL or MySQL/MariaDB downstream; SQLite and stdout are single-member downstreams (drop --group)",
            ))
        }
    })
}

/// Logs that a unit is not applied because its progress row already holds its position: a
/// killed consumer's commit of this very unit landed after the restart read the record (see
/// the PostgreSQL and MySQL module docs). The caller rolls its transaction back.
pub(crate) fn warn_already_applied(file: &str) {
    tracing::warn!(
        file,
        "unit already applied by an earlier commit that landed late; not applying it again"
    );
}

/// The [`crate::error::Error::Downstream`] for a failed statement.
pub fn downstream_error(
    table: &str,
    file: &str,
    kind: &str,
    reason: impl std::fmt::Display,
) -> crate::error::Error {
    crate::error::Error::Downstream {
        table: table.to_string(),
        file: file.to_string(),
        kind: kind.to_string(),
        reason: reason.to_string(),
    }
}

/// The [`crate::error::Error::Downstream`] of a failed read-back (no data file is involved).
pub(crate) fn read_back_error(table: &str, reason: impl std::fmt::Display) -> crate::error::Error {
    downstream_error(table, "-", "read back", reason)
}

/// The lowercase hex text of binary column values in a read-back.
pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The columns a read-back orders by: the primary key, or every column when there is none.
pub(crate) fn order_columns(columns: &[ColumnDef]) -> Vec<&ColumnDef> {
    let pk: Vec<&ColumnDef> = columns.iter().filter(|c| c.primary_key).collect();
    if pk.is_empty() {
        columns.iter().collect()
    } else {
        pk
    }
}
