"""Times the TPC-H queries on DuckDB over the same Parquet files Shoal loaded.

Usage: bench_duckdb.py DATA_DIR QUERIES_JSON WARMUP REPETITIONS
QUERIES_JSON is a file holding [[name, sql], ...]. Prints one JSON object per query on stdout:
{"query": name, "seconds": [..], "rows": n} or {"query": name, "error": text}.
"""
import json
import os
import sys
import time

import duckdb


def main() -> None:
    data_dir, queries_path, warmup, repetitions = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with open(queries_path) as f:
        queries = json.load(f)
    con = duckdb.connect()
    con.execute(f"SET threads TO {os.cpu_count()}")
    for table in ["nation", "region", "part", "supplier", "partsupp", "customer", "orders", "lineitem"]:
        path = os.path.join(data_dir, f"{table}.parquet")
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{path}')")
    for name, sql in queries:
        try:
            for _ in range(warmup):
                con.execute(sql).fetch_arrow_table()
            seconds = []
            rows = 0
            for _ in range(repetitions):
                started = time.perf_counter()
                rows = con.execute(sql).fetch_arrow_table().num_rows
                seconds.append(time.perf_counter() - started)
            print(json.dumps({"query": name, "seconds": seconds, "rows": rows}), flush=True)
        except Exception as e:  # a failed query is reported, the others still run
            print(json.dumps({"query": name, "error": str(e).splitlines()[0]}), flush=True)


if __name__ == "__main__":
    main()
