//! SQL identifiers are always quoted and values always bound: a replay whose schema, table and
//! column names and whose values are made to break out of quoting (`"`, `` ` ``, `'`, `;`,
//! `--`, `\`, spaces, unicode, `x"; DROP TABLE canary; --`) lands every row exactly, runs
//! every DDL the consumer emits (CREATE, ADD/RENAME/MODIFY COLUMN with hostile ENUM elements,
//! RENAME TABLE, DROP TABLE, statements for tables without key) and touches no other object,
//! on SQLite, PostgreSQL, MariaDB and stdout (whose JSON lines must stay valid and exact).

use crate::support;

use cdc_common::{ColumnDef, ColumnType, DdlKind, RowChange, TableDef, TableName, Ts, Value};
use cdc_consumer::backend::{self, Access};
use cdc_consumer::config::DownstreamUri;
use cdc_consumer::freshness::Health;
use cdc_consumer::metrics::Metrics;
use mysql_async::prelude::Queryable;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use support::*;

/// Unique names: the servers are shared between runs.
fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}_{}_{}", std::process::id(), n % 1_000_000_000)
}

/// Backquoted as in MySQL query text (the schema files' `Query`).
fn bq(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `"`-quoted (SQLite, PostgreSQL) for the test's own reads.
fn dq(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The names of one run.
struct Names {
    schema: String,
    canary: String,
    t1: String,
    t2: String,
    t3: String,
    nopk: String,
    /// id, name, value, enum, added (later renamed).
    cols: [String; 5],
    renamed: String,
    elems: Vec<String>,
    new_elem: String,
}

impl Names {
    fn new() -> Names {
        let canary = unique("canary");
        let u = unique("h");
        Names {
            schema: format!("{u} \"s'`;--"),
            t1: format!("x\"; DROP TABLE {canary}; --"),
            t2: "it's \"renamed\" `t` ü".into(),
            t3: "drop me\"; --".into(),
            nopk: "no\"pk'`".into(),
            cols: [
                "id\"".into(),
                "na`me".into(),
                "v'al;--".into(),
                format!("e\"; DROP TABLE {canary}; --"),
                "add\"ed".into(),
            ],
            renamed: "ren`amed' ∑".into(),
            elems: vec![
                "a'b".into(),
                "c\\".into(),
                format!("'); DROP TABLE {canary}; --"),
                "é\"".into(),
            ],
            new_elem: "new'\\".into(),
            canary,
        }
    }
}

/// Values that break naive quoting; NUL only where the downstream can hold it in text.
fn values(nul: bool) -> Vec<String> {
    let mut v: Vec<String> = [
        "'); DROP TABLE t; --",
        "\\",
        "\\N",
        "\"",
        "`",
        "a\nb",
        "t\tab",
        "cr\r",
        "\\.",
        "ü∑表😀",
        "",
        "NULL",
        "--",
        ";",
        "'",
        "\u{2028}",
        "$1 ? :x @y %s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("x".repeat(200));
    if nul {
        v.push("nul\0byte".into());
    }
    v
}

fn s(v: &str) -> Value {
    Value::String(v.into())
}

type Model = BTreeMap<i64, Vec<Option<String>>>;

/// Compares rows read back (any order) with the model, reporting the first difference only.
fn assert_rows(mut got: Vec<Vec<Option<String>>>, model: &Model, what: &str) {
    got.sort_by_key(|r| r[0].as_deref().and_then(|s| s.parse::<i64>().ok()));
    let want: Vec<Vec<Option<String>>> = model.values().cloned().collect();
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "{what}: first differing row");
    }
    assert_eq!(got.len(), want.len(), "{what}: row count");
}

/// Reads `schema.table` back through the downstream's read-back: `cols` as text, ordered by
/// the first column when `keyed`, else by every column.
async fn read_back(
    down: &str,
    schema: &str,
    table: &str,
    cols: &[&str],
    keyed: bool,
) -> Vec<Vec<Option<String>>> {
    let defs: Vec<ColumnDef> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| match ColumnDef::new(*c, ColumnType::Text) {
            d if i == 0 && keyed => d.pk(),
            d => d,
        })
        .collect();
    let uri = DownstreamUri::parse(down, None).unwrap();
    let mut d = backend::open(&uri, 1, Access::ReadBack).await.unwrap();
    d.read_rows(&TableName::new(schema, table), &defs)
        .await
        .unwrap()
}

/// The tables of `schema` through the downstream's read-back.
async fn read_tables(down: &str, schema: &str) -> Vec<String> {
    let uri = DownstreamUri::parse(down, None).unwrap();
    let mut d = backend::open(&uri, 1, Access::ReadBack).await.unwrap();
    d.read_tables(schema).await.unwrap()
}

/// Writes the storage and returns the final expected rows of `t2` (columns id, name, value,
/// enum, renamed) and of the table without key (sorted).
async fn write_storage(
    w: &mut Writer,
    n: &Names,
    vals: &[String],
) -> (Model, Vec<(String, String)>) {
    let c = &n.cols;
    let mut enum_col = ColumnDef::new(&c[3], ColumnType::Enum).with_elems(n.elems.clone());
    enum_col.default = Some(serde_json::json!(n.elems[2]));
    let mut val_col = ColumnDef::new(&c[2], ColumnType::Text);
    val_col.default = Some(serde_json::json!(format!(
        "'); DROP TABLE {}; --",
        n.canary
    )));
    let v1 = table(
        &n.schema,
        &n.t1,
        ts(1),
        vec![
            ColumnDef::new(&c[0], ColumnType::BigInt).pk(),
            ColumnDef::new(&c[1], ColumnType::VarChar).with_precision(Some(255), None),
            val_col,
            enum_col,
        ],
    );
    w.schema(&v1, "", DdlKind::CreateTable).await;
    let row = |id: i64| -> Vec<Value> {
        let i = id.unsigned_abs() as usize;
        vec![
            Value::Int(id),
            s(&vals[i % vals.len()]),
            s(&vals[(i + 3) % vals.len()]),
            s(&n.elems[i % n.elems.len()]),
        ]
    };
    let mut model = Model::new();
    let text = |v: &[Value]| -> Vec<Option<String>> {
        v.iter()
            .map(|x| match x {
                Value::Null => None,
                Value::Int(i) => Some(i.to_string()),
                Value::String(s) => Some(s.to_string()),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    // 2100 upserts: PostgreSQL's COPY path.
    let file1: Vec<RowChange> = (0..2100)
        .map(|i| RowChange::Insert { after: row(i) })
        .collect();
    for i in 0..2100 {
        model.insert(i, text(&row(i)));
    }
    w.file(&v1, &[(ts(2), file1)]).await;
    let mut upd1 = row(1);
    upd1[1] = s("upd'; --\"`");
    let mut moved = row(3);
    moved[0] = Value::Int(5000);
    w.file(
        &v1,
        &[(
            ts(3),
            vec![
                RowChange::Update {
                    before: Some(row(1)),
                    after: upd1.clone(),
                },
                RowChange::Delete { before: row(2) },
                RowChange::Update {
                    before: Some(row(3)),
                    after: moved.clone(),
                },
            ],
        )],
    )
    .await;
    model.insert(1, text(&upd1));
    model.remove(&2);
    model.remove(&3);
    model.insert(5000, text(&moved));
    for r in model.values_mut() {
        r.push(None);
    }

    // ADD COLUMN, rows with it.
    let mut v2 = v1.clone();
    v2.version = ts(4);
    v2.columns.push(ColumnDef::new(&c[4], ColumnType::Int));
    let q = |s: &str| bq(s);
    w.schema(
        &v2,
        &format!(
            "ALTER TABLE {}.{} ADD COLUMN {} INT",
            q(&n.schema),
            q(&n.t1),
            q(&c[4])
        ),
        DdlKind::AddColumn,
    )
    .await;
    let mut r4 = row(4);
    r4.push(Value::Int(42));
    let mut r6000 = row(6000);
    r6000.push(Value::Int(-1));
    w.file(
        &v2,
        &[(
            ts(5),
            vec![
                RowChange::Update {
                    before: Some({
                        let mut b = row(4);
                        b.push(Value::Null);
                        b
                    }),
                    after: r4.clone(),
                },
                RowChange::Insert {
                    after: r6000.clone(),
                },
            ],
        )],
    )
    .await;
    model.insert(4, text(&r4));
    model.insert(6000, text(&r6000));

    // RENAME COLUMN (paired from the query text).
    let mut v3 = v2.clone();
    v3.version = ts(6);
    v3.columns[4].name = n.renamed.clone();
    w.schema(
        &v3,
        &format!(
            "ALTER TABLE {}.{} RENAME COLUMN {} TO {}",
            q(&n.schema),
            q(&n.t1),
            q(&c[4]),
            q(&n.renamed)
        ),
        DdlKind::RenameColumn {
            from: c[4].clone(),
            to: n.renamed.clone(),
        },
    )
    .await;
    let mut r6000b = r6000.clone();
    r6000b[4] = Value::Int(7);
    w.file(
        &v3,
        &[(
            ts(7),
            vec![RowChange::Update {
                before: Some(r6000.clone()),
                after: r6000b.clone(),
            }],
        )],
    )
    .await;
    model.insert(6000, text(&r6000b));

    // MODIFY COLUMN: the ENUM gains a hostile element (MySQL renders the literals).
    let mut v4 = v3.clone();
    v4.version = ts(8);
    v4.columns[3].elems.push(n.new_elem.clone());
    w.schema(
        &v4,
        "ALTER TABLE t MODIFY COLUMN e ENUM(...)",
        DdlKind::ModifyColumn,
    )
    .await;

    // RENAME TABLE, then rows under the new name.
    let mut v5 = v4.clone();
    v5.version = ts(9);
    v5.table = n.t2.clone();
    w.schema(
        &v5,
        &format!(
            "RENAME TABLE {}.{} TO {}.{}",
            q(&n.schema),
            q(&n.t1),
            q(&n.schema),
            q(&n.t2)
        ),
        DdlKind::RenameTable,
    )
    .await;
    let mut r7000 = row(7000);
    r7000[3] = s(&n.new_elem);
    r7000.push(Value::Null);
    w.file(
        &v5,
        &[(
            ts(10),
            vec![RowChange::Insert {
                after: r7000.clone(),
            }],
        )],
    )
    .await;
    model.insert(7000, text(&r7000));

    // A table created and dropped.
    let t3 = two_cols(&n.schema, &n.t3, ts(1));
    w.schema(&t3, "", DdlKind::CreateTable).await;
    w.file(&t3, &[(ts(2), vec![ins(1, "gone")])]).await;
    let mut t3d = t3.clone();
    t3d.version = ts(11);
    w.schema(
        &t3d,
        &format!("DROP TABLE {}", q(&n.t3)),
        DdlKind::DropTable,
    )
    .await;

    // A table without key: insert, duplicate, delete one (full-row match statements).
    let nopk = table(
        &n.schema,
        &n.nopk,
        ts(1),
        vec![
            ColumnDef::new(&c[0], ColumnType::Int),
            ColumnDef::new(&c[2], ColumnType::Text),
        ],
    );
    w.schema(&nopk, "", DdlKind::CreateTable).await;
    let nk = |id: i64, v: &str| vec![Value::Int(id), s(v)];
    w.file(
        &nopk,
        &[(
            ts(2),
            vec![
                RowChange::Insert { after: nk(1, "x'") },
                RowChange::Insert { after: nk(1, "x'") },
                RowChange::Insert {
                    after: nk(2, "--\""),
                },
            ],
        )],
    )
    .await;
    w.file(
        &nopk,
        &[(
            ts(3),
            vec![RowChange::Delete {
                before: nk(1, "x'"),
            }],
        )],
    )
    .await;
    w.checkpoint(ts(20)).await;
    (
        model,
        vec![("1".into(), "x'".into()), ("2".into(), "--\"".into())],
    )
}

async fn replay(uri: &str, down: &str) {
    ReplayerBuilder::new(uri, down).once().run().await.unwrap();
}

const STORAGE: &str = "protocol=canal-json&enable-tidb-extension=true";

fn final_cols(n: &Names) -> Vec<&str> {
    vec![&n.cols[0], &n.cols[1], &n.cols[2], &n.cols[3], &n.renamed]
}

#[tokio::test]
async fn hostile_names_and_values_on_sqlite() {
    let n = Names::new();
    let vals = values(true);
    let mut w = Writer::new(&format!("memory://{}?{STORAGE}", unique("hs")));
    let (model, nopk) = write_storage(&mut w, &n, &vals).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    let canaries = [n.canary.clone(), format!("{}.{}", n.schema, n.canary)];
    for t in &canaries {
        c.execute_batch(&format!(
            "CREATE TABLE {} (v TEXT); INSERT INTO {0} VALUES ('alive');",
            dq(t)
        ))
        .unwrap();
    }
    replay(&w.uri, &format!("sqlite://{}", db.display())).await;
    // Idempotent: a second run changes nothing.
    replay(&w.uri, &format!("sqlite://{}", db.display())).await;

    let down = format!("sqlite://{}", db.display());
    let got = read_back(&down, &n.schema, &n.t2, &final_cols(&n), true).await;
    assert_rows(got, &model, "sqlite");
    let got = read_back(&down, &n.schema, &n.nopk, &[&n.cols[0], &n.cols[2]], false).await;
    let want: Vec<Vec<Option<String>>> = nopk
        .iter()
        .map(|(a, b)| vec![Some(a.clone()), Some(b.clone())])
        .collect();
    assert_eq!(got, want);
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut want: Vec<String> = vec![
        n.canary.clone(),
        "cdc_consumer_progress".into(),
        "cdc_consumer_rounds".into(),
        format!("{}.{}", n.schema, n.canary),
        format!("{}.{}", n.schema, n.nopk),
        format!("{}.{}", n.schema, n.t2),
    ];
    want.sort();
    assert_eq!(
        tables, want,
        "only the replayed tables and the canaries exist"
    );
    for t in &canaries {
        let v: String = c
            .query_row(&format!("SELECT v FROM {}", dq(t)), [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, "alive");
    }
}

#[tokio::test]
async fn hostile_names_and_values_on_postgres() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_POSTGRES_URI") else {
        return;
    };
    let n = Names::new();
    // PostgreSQL text cannot hold NUL.
    let vals = values(false);
    let mut w = Writer::new(&format!("memory://{}?{STORAGE}", unique("hp")));
    let (model, nopk) = write_storage(&mut w, &n, &vals).await;
    let c = postgres_client(&uri).await;
    let canaries = [
        format!("public.{}", dq(&n.canary)),
        format!("{}.{}", dq(&n.schema), dq(&n.canary)),
    ];
    c.batch_execute(&format!("CREATE SCHEMA {}", dq(&n.schema)))
        .await
        .unwrap();
    for t in &canaries {
        c.batch_execute(&format!(
            "CREATE TABLE {t} (v TEXT); INSERT INTO {t} VALUES ('alive')"
        ))
        .await
        .unwrap();
    }
    replay(&w.uri, &uri).await;
    replay(&w.uri, &uri).await;

    let got = read_back(&uri, &n.schema, &n.t2, &final_cols(&n), true).await;
    assert_rows(got, &model, "postgres");
    let got = read_back(&uri, &n.schema, &n.nopk, &[&n.cols[0], &n.cols[2]], false).await;
    let want: Vec<Vec<Option<String>>> = nopk
        .iter()
        .map(|(a, b)| vec![Some(a.clone()), Some(b.clone())])
        .collect();
    assert_eq!(got, want);
    let tables = read_tables(&uri, &n.schema).await;
    let mut want = vec![n.canary.clone(), n.nopk.clone(), n.t2.clone()];
    want.sort();
    assert_eq!(tables, want);
    for t in &canaries {
        let v: String = c
            .query_one(&format!("SELECT v FROM {t}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(v, "alive");
    }
}

#[tokio::test]
async fn hostile_names_and_values_on_mariadb() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_MYSQL_URI") else {
        return;
    };
    let n = Names::new();
    let vals = values(true);
    let mut w = Writer::new(&format!("memory://{}?{STORAGE}", unique("hm")));
    let (model, nopk) = write_storage(&mut w, &n, &vals).await;
    let mut c = mysql_async::Conn::from_url(uri.as_str()).await.unwrap();
    let canaries = [
        bq(&n.canary),
        format!("{}.{}", bq(&n.schema), bq(&n.canary)),
    ];
    c.query_drop(format!("CREATE DATABASE {}", bq(&n.schema)))
        .await
        .unwrap();
    for t in &canaries {
        c.query_drop(format!("CREATE TABLE {t} (v TEXT)"))
            .await
            .unwrap();
        c.query_drop(format!("INSERT INTO {t} VALUES ('alive')"))
            .await
            .unwrap();
    }
    replay(&w.uri, &uri).await;
    replay(&w.uri, &uri).await;

    let got = read_back(&uri, &n.schema, &n.t2, &final_cols(&n), true).await;
    assert_rows(got, &model, "mariadb");
    let rows: Vec<(String, String)> =
        read_back(&uri, &n.schema, &n.nopk, &[&n.cols[0], &n.cols[2]], false)
            .await
            .into_iter()
            .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
            .collect();
    assert_eq!(rows, nopk);
    let tables = read_tables(&uri, &n.schema).await;
    let mut want = vec![n.canary.clone(), n.nopk.clone(), n.t2.clone()];
    want.sort();
    let mut tables = tables;
    tables.sort();
    assert_eq!(tables, want);
    // The ENUM kept its hostile elements as data, exactly (information_schema shows them as
    // literals with `'` doubled and `\` escaped).
    let ty: String = c
        .exec_first(
            "SELECT CAST(column_type AS CHAR) FROM information_schema.columns \
             WHERE table_schema = ? AND table_name = ? AND column_name = ?",
            (n.schema.as_str(), n.t2.as_str(), n.cols[3].as_str()),
        )
        .await
        .unwrap()
        .unwrap();
    let want_ty = format!(
        "enum({})",
        n.elems
            .iter()
            .chain([&n.new_elem])
            .map(|e| format!("'{}'", e.replace('\\', "\\\\").replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(",")
    );
    assert_eq!(ty, want_ty);
    for t in &canaries {
        let v: Option<String> = c.query_first(format!("SELECT v FROM {t}")).await.unwrap();
        assert_eq!(v.as_deref(), Some("alive"));
    }
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn hostile_names_and_values_on_stdout() {
    use cdc_consumer::backend::stdout::StdoutDownstream;
    use cdc_consumer::config::TableFilter;
    use cdc_consumer::discovery::{Discovery, Upstream};
    use cdc_consumer::replay::Replayer;
    let n = Names::new();
    let vals = values(true);
    let mut w = Writer::new(&format!("memory://{}?{STORAGE}", unique("ho")));
    let (model, _) = write_storage(&mut w, &n, &vals).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = ReplayerBuilder::new(&w.uri, "stdout://")
        .once()
        .config()
        .unwrap();
    let out = Captured::default();
    let metrics = Metrics::new();
    let up = Upstream::new(cfg.upstream.build().unwrap(), metrics.clone());
    let down = StdoutDownstream::with_writer(dir.path().join("p.json"), Box::new(out.clone()));
    let r = Replayer::new(
        Discovery::new(up, cfg.layout, TableFilter::all()),
        Box::new(down),
        &cfg.sink,
        cfg.on_bad_file,
        cdc_consumer::replay::ProgressRead::Settled,
        metrics,
        Arc::new(Mutex::new(Health::default())),
    )
    .await
    .unwrap();
    cdc_consumer::run(&cfg, r).await.unwrap();

    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    // Every line is one valid JSON object; replaying the lines rebuilds the model exactly.
    let mut rows: BTreeMap<i64, serde_json::Map<String, serde_json::Value>> = BTreeMap::new();
    let mut ddl = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if v["op"] == "ddl" {
            ddl.push(v["kind"].as_str().unwrap().to_string());
            continue;
        }
        assert_eq!(v["schema"], n.schema.as_str());
        let table = v["table"].as_str().unwrap();
        if table != n.t1 && table != n.t2 {
            continue;
        }
        let row = v["row"].as_object().unwrap().clone();
        let id = row[&n.cols[0]].as_i64().unwrap();
        match v["op"].as_str().unwrap() {
            "upsert" => {
                let mut merged = rows.remove(&id).unwrap_or_default();
                for (k, x) in row {
                    merged.insert(k, x);
                }
                // A rename carries the value over under the new column name.
                if let Some(x) = merged.remove(&n.cols[4]) {
                    if !merged.contains_key(&n.renamed) {
                        merged.insert(n.renamed.clone(), x);
                    }
                }
                rows.insert(id, merged);
            }
            "delete" => {
                rows.remove(&id);
            }
            other => panic!("unexpected op {other}"),
        }
    }
    // (stdout has no tables to rename: rows after a RENAME TABLE carry the new name.)
    for kind in [
        "create table",
        "add column",
        "rename column",
        "modify column",
        "drop table",
    ] {
        assert!(ddl.iter().any(|k| k == kind), "{kind} missing from {ddl:?}");
    }
    let cols = final_cols(&n);
    let got: Vec<Vec<Option<String>>> = rows
        .values()
        .map(|r| {
            cols.iter()
                .map(|c| match r.get(*c) {
                    None | Some(serde_json::Value::Null) => None,
                    Some(serde_json::Value::String(s)) => Some(s.clone()),
                    Some(serde_json::Value::Number(x)) => Some(x.to_string()),
                    Some(other) => panic!("{other}"),
                })
                .collect()
        })
        .collect();
    assert_rows(got, &model, "stdout");
    let _: Option<(TableDef, Ts)> = None;
}

/// SQLite keeps every table in one namespace as `"schema.table"`: DROP SCHEMA `p` must drop
/// the tables the consumer created for `p`, not every name starting with `p.` (schema `p.y`).
#[tokio::test]
async fn sqlite_drop_schema_leaves_a_schema_whose_name_extends_it() {
    let p = unique("p");
    let py = format!("{p}.y");
    let mut w = Writer::new(&format!(
        "memory://{}?protocol=csv&include-commit-ts=true",
        unique("hd")
    ));
    for (schema, t) in [(&p, "x"), (&py, "z")] {
        let def = two_cols(schema, t, ts(1));
        w.schema(&def, "", DdlKind::CreateTable).await;
        w.file(&def, &[(ts(2), vec![ins(1, "a")])]).await;
    }
    w.db_schema(&p, ts(5), "DROP DATABASE p", DdlKind::DropSchema)
        .await;
    w.checkpoint(ts(10)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    replay(&w.uri, &format!("sqlite://{}", db.display())).await;
    let c = rusqlite::Connection::open(&db).unwrap();
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('cdc_consumer_progress', 'cdc_consumer_rounds') ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(tables, vec![format!("{py}.z")]);
}

/// PostgreSQL truncates identifiers to 63 bytes in DDL: two names sharing their first 63 bytes
/// would become one object. A long table name is refused (by the server's own lookup, or by
/// the consumer), a long column name by the consumer, each with an error naming the table, and
/// nothing is created.
#[tokio::test]
async fn postgres_refuses_identifiers_it_would_truncate() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_POSTGRES_URI") else {
        return;
    };
    let long = format!("{}_a", "l".repeat(63));
    for long_table in [true, false] {
        let schema = unique("hl");
        let mut w = Writer::new(&format!(
            "memory://{}?protocol=csv&include-commit-ts=true",
            unique("hl")
        ));
        let mut t = two_cols(&schema, if long_table { &long } else { "t" }, ts(1));
        if !long_table {
            t.columns[1].name = long.clone();
        }
        w.schema(&t, "", DdlKind::CreateTable).await;
        w.file(&t, &[(ts(2), vec![ins(1, "a")])]).await;
        w.checkpoint(ts(10)).await;
        let e = ReplayerBuilder::new(&w.uri, &uri)
            .once()
            .run()
            .await
            .unwrap_err();
        let text = e.to_string();
        let want_table = t.name().to_string();
        assert!(
            matches!(&e, cdc_consumer::Error::Downstream { table, .. } if *table == want_table),
            "{text}"
        );
        assert!(
            text.contains("identifier") && text.contains(&long),
            "{text}"
        );
        if !long_table {
            assert!(text.contains("63-byte"), "{text}");
        }
        let n = read_tables(&uri, &schema).await.len();
        assert_eq!(n, 0);
    }
}
