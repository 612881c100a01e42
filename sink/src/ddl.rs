//! DDL drain markers and the schema files a DDL writes.
//!
//! A DDL at commit ts `T` blocks its dispatchers upstream; before its schema file is written,
//! every DML `< T` those dispatchers handed in must be durable. The sink sends one marker per
//! blocked dispatcher along the route of its DML:
//!
//! ```text
//! pass_block_event / write_block_event(T, [d1, d2])
//!   d1: encoder[e(d1)] queue ... dml dml MARKER --> writer[s(d1)] queue ... entry entry MARKER
//!   d2: encoder[e(d2)] queue ... dml MARKER     --> writer[s(d2)] queue ... entry MARKER
//! ```
//!
//! Both queues are FIFO, so a marker reaches its writer after every entry its dispatcher
//! enqueued before it (the entries themselves wait in the spool; the queues carry their
//! handles). The writer then flushes every batch of that dispatcher (reason `drain`) and answers
//! the marker with the outcome. The caller waits for every answer (`cdc_sink_ddl_drain_seconds`);
//! only then does `write_block_event` write the schema files: one per table in `tables` (a
//! rename of several tables, a drop of several), or one database-level file for
//! CREATE/DROP DATABASE.

use crate::error::Result;
use cdc_common::schema_file::SchemaFile;
use cdc_common::{DdlEvent, Ts};
use tokio::sync::mpsc::UnboundedSender;

/// One dispatcher's drain request, answered by its writer.
pub(crate) struct DrainMarker {
    /// Commit ts of the DDL (for logs).
    pub ts: Ts,
    /// Where the writer answers.
    pub reply: UnboundedSender<Result<()>>,
}

impl DrainMarker {
    /// Answers the marker (the waiter may have gone away: then nobody needs the answer).
    pub fn answer(self, r: Result<()>) {
        let _ = self.reply.send(r);
    }
}

/// The schema files `event` writes once drained.
pub(crate) fn schema_files(event: &DdlEvent) -> Vec<SchemaFile> {
    if event.kind.is_schema_level() {
        return vec![SchemaFile::for_database(
            &event.schema,
            event.commit_ts,
            &event.query,
            &event.kind,
        )];
    }
    event
        .tables
        .iter()
        .map(|t| SchemaFile::for_table(t, &event.query, &event.kind))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_common::{ColumnDef, ColumnType, DdlKind, TableDef, TableName};

    fn def(t: &str) -> TableDef {
        TableDef {
            schema: "s".into(),
            table: t.into(),
            table_id: 1,
            version: Ts(7),
            columns: vec![ColumnDef::new("id", ColumnType::Int).pk()],
        }
    }

    #[test]
    fn one_file_per_table_or_one_for_the_database() {
        let rename = DdlEvent {
            commit_ts: Ts(7),
            query: "RENAME TABLE a TO a2, b TO b2".into(),
            kind: DdlKind::RenameTable,
            schema: "s".into(),
            tables: vec![def("a2"), def("b2")],
            prev_tables: vec![TableName::new("s", "a"), TableName::new("s", "b")],
        };
        let paths: Vec<String> = schema_files(&rename)
            .iter()
            .map(|f| f.path().build().unwrap())
            .collect();
        assert_eq!(paths.len(), 2);
        assert!(paths[0].starts_with("s/a2/meta/schema_7_"));
        assert!(paths[1].starts_with("s/b2/meta/schema_7_"));
        let drop = DdlEvent {
            commit_ts: Ts(9),
            query: "DROP DATABASE s".into(),
            kind: DdlKind::DropSchema,
            schema: "s".into(),
            tables: vec![],
            prev_tables: vec![],
        };
        let files = schema_files(&drop);
        assert_eq!(files.len(), 1);
        assert!(files[0]
            .path()
            .build()
            .unwrap()
            .starts_with("s/meta/schema_9_"));
    }
}
