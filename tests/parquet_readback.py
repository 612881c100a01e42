"""Reads the sink's Parquet files with pyarrow and checks them against the workload's model.

Usage: parquet_readback.py <storage-root> <expected.json>. expected.json holds the row count the
sink wrote, the Arrow type each column must read as, and per table the model's final rows
(id -> column -> text). Exits non-zero with a message on the first difference.
"""
import json, pathlib, sys
import pyarrow.parquet as pq

root, expected = pathlib.Path(sys.argv[1]), json.load(open(sys.argv[2]))
files = sorted(root.rglob("*.parquet"))
assert files, f"no parquet files under {root}"
total = 0
for table, want in expected["tables"].items():
    schema, name = table.split(".")
    paths = [f for f in files if f.relative_to(root).parts[:2] == (schema, name)]
    assert paths, f"no files for {table}"
    t = pq.ParquetDataset([str(p) for p in paths]).read() if len(paths) > 1 else pq.read_table(paths[0])
    total += t.num_rows
    for col, typ in expected["types"].items():
        got = str(t.schema.field(col).type)
        assert got == typ, f"{table}.{col}: pyarrow reads {got}, expected {typ}"
    # The last change of each id (by commit ts, file order breaking ties) is the final row.
    last = {}
    for r in t.to_pylist():
        prev = last.get(r["id"])
        if prev is None or r["_cdc_commit_ts"] >= prev["_cdc_commit_ts"]:
            last[r["id"]] = r
    live = {i: r for i, r in last.items() if r["_cdc_op"] != "D"}
    assert set(map(str, live)) == set(want), f"{table}: live ids differ: {sorted(set(map(str, live)) ^ set(want))[:10]}"
    for i, cols in want.items():
        r = live[int(i)]
        for col, text in cols.items():
            v = r[col]
            got = None if v is None else (v.hex() if isinstance(v, bytes) else str(v))
            assert got == text, f"{table} id {i} {col}: pyarrow {got!r}, model {text!r}"
assert total == expected["rows"], f"pyarrow read {total} rows, the sink wrote {expected['rows']}"
print(f"pyarrow read {total} rows from {len(files)} files")
