//! A sink restarted from a checkpoint below a DDL it had already written writes the rows
//! between the checkpoint and the DDL again, into new files of the older table version. With
//! rows that carry no commit ts the consumer cannot tell those copies from new rows and applies
//! them as soon as they are indexed; the copies converge to the right state only if *all* of
//! them are applied before the DDL. A version therefore stays open (its index files re-read)
//! until a checkpoint at or above the newer version was read before the listings: from then on
//! no restarted sink can write below it again.

use crate::support;

use cdc_common::{ColumnDef, ColumnType, DdlKind, Value};
use support::*;

#[tokio::test]
async fn a_restarted_sinks_copies_below_a_ddl_are_applied_whole_before_it() {
    // csv without commit ts: the consumer applies each indexed file as it comes.
    let mut w = Writer::new("memory://restart-replays?protocol=csv");
    let v1 = two_cols("db", "t", ts(1));
    w.schema(&v1, "", DdlKind::CreateTable).await;
    // The first sink run: every row of version 1, then the DDL's schema file; it dies before
    // its checkpoint passes them.
    w.file(&v1, &[(ts(2), vec![ins(1, "a"), ins(2, "b")])])
        .await;
    w.file(&v1, &[(ts(3), vec![del(1, "a")])]).await;
    let mut v2 = v1.clone();
    v2.version = ts(10);
    v2.columns.push(ColumnDef::new("x", ColumnType::BigInt));
    w.schema(&v2, "ALTER TABLE t ADD COLUMN x BIGINT", DdlKind::AddColumn)
        .await;
    w.checkpoint(ts(1)).await;

    let (_dir, db, mut r) = sqlite_replayer(&w.uri).await;
    ok_round(&mut r).await;
    assert_eq!(id_names(&db, "db.t"), vec![s(2, "b")]);

    // The restarted sink resumes from the checkpoint (ts 1) and writes version 1's rows again:
    // the first copy lands before the consumer's next round, which applies it (row 1 is back).
    w.file(&v1, &[(ts(2), vec![ins(1, "a"), ins(2, "b")])])
        .await;
    ok_round(&mut r).await;
    assert_eq!(id_names(&db, "db.t"), vec![s(1, "a"), s(2, "b")]);

    // Then the rest of the copies, and only then a checkpoint past the DDL.
    w.file(&v1, &[(ts(3), vec![del(1, "a")])]).await;
    w.file(
        &v2,
        &[(
            ts(11),
            vec![cdc_common::RowChange::Insert {
                after: vec![Value::Int(3), Value::String("c".into()), Value::Int(7)],
            }],
        )],
    )
    .await;
    w.checkpoint(ts(12)).await;
    ok_rounds(&mut r, 3).await;
    assert_eq!(
        id_names(&db, "db.t"),
        vec![s(2, "b"), s(3, "c")],
        "every copy of version 1 is applied before the ADD COLUMN, so row 1 stays deleted"
    );
}
