"""Python ADBC (adbc-driver-flightsql from PyPI) against a real Shoal cluster, used the way
an analyst's notebook uses it."""

import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timezone
from decimal import Decimal

import adbc_driver_flightsql.dbapi as flight_sql
import pyarrow as pa
import pytest
from adbc_driver_manager import AdbcStatusCode


def run(conn, sql, parameters=None):
    with conn.cursor() as cur:
        cur.execute(sql, parameters)
        return cur.fetchall()


def test_connect_and_select(conn):
    assert run(conn, "SELECT 1 AS one, 'x' AS letter") == [(1, "x")]


def test_get_objects_at_every_depth(conn, table_name):
    run(conn, f"CREATE TABLE {table_name} (id BIGINT NOT NULL, label VARCHAR) WITH (distribution = 'id')")

    catalogs = conn.adbc_get_objects(depth="catalogs").read_all().to_pylist()
    assert [c["catalog_name"] for c in catalogs] == ["shoal"]

    schemas = conn.adbc_get_objects(depth="db_schemas").read_all().to_pylist()
    names = [s["db_schema_name"] for s in schemas[0]["catalog_db_schemas"]]
    assert "public" in names and "information_schema" in names

    tables = conn.adbc_get_objects(depth="tables", db_schema_filter="public").read_all().to_pylist()
    public = tables[0]["catalog_db_schemas"][0]
    assert public["db_schema_name"] == "public"
    assert table_name in [t["table_name"] for t in public["db_schema_tables"]]
    assert all(t["table_type"] == "TABLE" for t in public["db_schema_tables"])

    columns = conn.adbc_get_objects(
        depth="all", db_schema_filter="public", table_name_filter=table_name
    ).read_all().to_pylist()
    table = columns[0]["catalog_db_schemas"][0]["db_schema_tables"][0]
    assert table["table_name"] == table_name
    assert [c["column_name"] for c in table["table_columns"]] == ["id", "label"]

    # LIKE patterns and table types reach the server's filters.
    prefix = table_name[:6] + "%"
    matched = conn.adbc_get_objects(depth="tables", table_name_filter=prefix, table_types_filter=["TABLE"])
    found = [
        t["table_name"]
        for s in matched.read_all().to_pylist()[0]["catalog_db_schemas"]
        for t in s["db_schema_tables"] or []
    ]
    assert table_name in found
    none = conn.adbc_get_objects(depth="tables", table_name_filter=table_name, table_types_filter=["VIEW"])
    assert all(
        not s["db_schema_tables"] for s in none.read_all().to_pylist()[0]["catalog_db_schemas"]
    )


def test_table_schema_and_types(conn, table_name):
    run(conn, f"CREATE TABLE {table_name} (id BIGINT NOT NULL, price DECIMAL(12, 2), day DATE)")
    schema = conn.adbc_get_table_schema(table_name)
    assert schema.names == ["id", "price", "day"]
    assert schema.field("id").type == pa.int64()
    assert not schema.field("id").nullable
    assert schema.field("price").type == pa.decimal128(12, 2)
    assert schema.field("day").type == pa.date32()
    assert set(conn.adbc_get_table_types()) == {"TABLE", "VIEW"}
    info = conn.adbc_get_info()
    assert info["vendor_name"] == "Shoal"


def test_queries_of_every_type(conn, table_name):
    run(
        conn,
        f"""CREATE TABLE {table_name} (
            i INT, b BIGINT, f DOUBLE, d DECIMAL(10, 3), s VARCHAR, flag BOOLEAN,
            day DATE, ts TIMESTAMP, tstz TIMESTAMP WITH TIME ZONE
        )""",
    )
    run(
        conn,
        f"""INSERT INTO {table_name} VALUES
            (1, 10000000000, 1.5, 12.345, 'héllo', true, DATE '2024-02-29',
             TIMESTAMP '2024-01-02 03:04:05', TIMESTAMP '2024-01-02 03:04:05+00:00'),
            (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)""",
    )
    with conn.cursor() as cur:
        cur.execute(f"SELECT * FROM {table_name} ORDER BY i NULLS LAST")
        table = cur.fetch_arrow_table()
    for field in table.schema:
        assert not pa.types.is_string_view(field.type), f"{field.name} is a view type"
    rows = table.to_pylist()
    assert rows[0]["i"] == 1 and rows[0]["b"] == 10000000000
    assert rows[0]["f"] == 1.5 and rows[0]["d"] == Decimal("12.345")
    assert rows[0]["s"] == "héllo" and rows[0]["flag"] is True
    assert rows[0]["day"] == date(2024, 2, 29)
    assert rows[0]["ts"] == datetime(2024, 1, 2, 3, 4, 5)
    # DataFusion keeps TIMESTAMP WITH TIME ZONE values as UTC instants.
    tstz = rows[0]["tstz"]
    assert tstz.replace(tzinfo=tstz.tzinfo or timezone.utc) == datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert all(v is None for v in rows[1].values())
    assert run(conn, "SELECT [1, 2, 3] AS l, {'a': 1} AS st") == [([1, 2, 3], {"a": 1})]
    assert run(conn, "SELECT INTERVAL '1 day' AS iv")[0][0] is not None


def test_result_over_a_million_rows(conn, table_name):
    rows = 1_200_000
    data = pa.table({"id": pa.array(range(rows), pa.int64()), "v": pa.array([i % 97 for i in range(rows)], pa.int32())})
    with conn.cursor() as cur:
        assert cur.adbc_ingest(table_name, data, mode="create") == rows
        cur.execute(f"SELECT * FROM {table_name}")
        result = cur.fetch_arrow_table()
    assert result.num_rows == rows
    assert sorted(result.column("id").to_pylist()) == list(range(rows))
    assert run(conn, f"SELECT count(*), sum(v) FROM {table_name}") == [(rows, sum(i % 97 for i in range(rows)))]


def test_prepared_statements_with_parameters(conn, table_name):
    run(conn, f"CREATE TABLE {table_name} (id BIGINT, label VARCHAR) WITH (distribution = 'id')")
    with conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {table_name} VALUES (?, ?)", [(1, "one"), (2, "two"), (3, "three")])
        assert cur.rowcount == 3
        # The same statement, bound again with new values each time.
        query = f"SELECT label FROM {table_name} WHERE id = ?"
        for key, label in [(1, "one"), (3, "three"), (2, "two")]:
            cur.execute(query, (key,))
            assert cur.fetchall() == [(label,)]
        cur.execute(f"SELECT count(*) FROM {table_name} WHERE id > $1 AND label <> $2", (1, "two"))
        assert cur.fetchall() == [(1,)]
        # A question mark inside a string is text, not a parameter.
        cur.execute(f"SELECT '?' AS q, label FROM {table_name} WHERE id = ?", (2,))
        assert cur.fetchall() == [("?", "two")]


def test_executemany_is_one_write(conn, table_name):
    """A batch of parameter rows for INSERT ... VALUES runs as one write: one file per bucket."""
    run(conn, f"CREATE TABLE {table_name} (id BIGINT, label VARCHAR) WITH (distribution = 'id', shards = 3)")
    rows = [(i, None if i == 7 else f"n{i}") for i in range(500)]
    with conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {table_name} VALUES (?, ?)", rows)
        assert cur.rowcount == 500
    assert run(conn, f"SELECT count(*), sum(id), count(label) FROM {table_name}") == [(500, sum(range(500)), 499)]
    assert run(conn, f"SELECT label FROM {table_name} WHERE id = 8") == [("n8",)]
    plan = "\n".join(str(row) for row in run(conn, f"EXPLAIN SELECT * FROM {table_name}"))
    files = [int(n) for n in re.findall(r"files=(\d+)", plan)]
    assert files and all(n == 1 for n in files), plan


def test_parameter_schema_is_typed(conn, table_name):
    run(conn, f"CREATE TABLE {table_name} (id BIGINT, label VARCHAR)")
    with conn.cursor() as cur:
        schema = cur.adbc_prepare(f"SELECT * FROM {table_name} WHERE id = ? AND label = ?")
        assert schema.names == ["$1", "$2"]
        assert schema.field("$1").type == pa.int64()
        assert schema.field("$2").type == pa.string()


def test_ingest_create_append_replace_fail(conn, table_name):
    first = pa.table({"id": [1, 2], "name": ["a", "b"]})
    more = pa.table({"id": [3], "name": ["c"]})
    with conn.cursor() as cur:
        assert cur.adbc_ingest(table_name, first, mode="create") == 2
        assert cur.adbc_ingest(table_name, more, mode="append") == 1
        assert run(conn, f"SELECT id, name FROM {table_name} ORDER BY id") == [(1, "a"), (2, "b"), (3, "c")]

        with pytest.raises(flight_sql.Error) as exists:
            cur.adbc_ingest(table_name, more, mode="create")
        assert exists.value.status_code == AdbcStatusCode.ALREADY_EXISTS
        assert "already exists" in str(exists.value)

        with pytest.raises(flight_sql.Error) as missing:
            cur.adbc_ingest(table_name + "_missing", more, mode="append")
        assert missing.value.status_code == AdbcStatusCode.NOT_FOUND

        with pytest.raises(flight_sql.Error) as mismatch:
            cur.adbc_ingest(table_name, pa.table({"other": [1]}), mode="append")
        assert "do not match the columns" in str(mismatch.value)

        assert cur.adbc_ingest(table_name, more, mode="replace") == 1
        assert run(conn, f"SELECT id, name FROM {table_name}") == [(3, "c")]
        assert cur.adbc_ingest(table_name, first, mode="create_append") == 2
        assert run(conn, f"SELECT count(*) FROM {table_name}") == [(3,)]


def test_concurrent_cursors(uri, table_name):
    setup = flight_sql.connect(uri, autocommit=True)
    run(setup, f"CREATE TABLE {table_name} (id BIGINT) WITH (distribution = 'id')")
    with setup.cursor() as cur:
        cur.adbc_ingest(table_name, pa.table({"id": pa.array(range(10_000), pa.int64())}), mode="append")

    def worker(k):
        with flight_sql.connect(uri, autocommit=True) as c, c.cursor() as a, c.cursor() as b:
            a.execute(f"SELECT count(*) FROM {table_name} WHERE id % 8 = {k}")
            b.execute(f"SELECT sum(id) FROM {table_name} WHERE id % 8 = {k}")
            return a.fetchall()[0][0], b.fetchall()[0][0]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(worker, range(8)))
    for k, (count, total) in enumerate(results):
        ids = [i for i in range(10_000) if i % 8 == k]
        assert (count, total) == (len(ids), sum(ids))
    setup.close()


def test_results_read_from_the_executors_with_the_call_header(uri, table_name):
    """ADBC follows every endpoint's location and reads them in parallel."""
    rows = 300_000
    setup = flight_sql.connect(uri, autocommit=True)
    run(setup, f"CREATE TABLE {table_name} (id BIGINT, v INT) WITH (distribution = 'id', shards = 6)")
    with setup.cursor() as cur:
        data = pa.table({"id": pa.array(range(rows), pa.int64()), "v": pa.array([i % 7 for i in range(rows)], pa.int32())})
        cur.adbc_ingest(table_name, data, mode="append")
    setup.close()
    header = {"adbc.flight.sql.rpc.call_header.x-shoal-endpoints": "executors"}
    with flight_sql.connect(uri, db_kwargs=header, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT id, v FROM {table_name} WHERE v <> 3")
        result = cur.fetch_arrow_table()
        expected = [i for i in range(rows) if i % 7 != 3]
        assert sorted(result.column("id").to_pylist()) == expected
        assert result.schema.field("v").type == pa.int32()
        # Queries that need the coordinator's merge still work under the header.
        cur.execute(f"SELECT count(*), sum(v) FROM {table_name}")
        assert cur.fetchall() == [(rows, sum(i % 7 for i in range(rows)))]


def test_errors_carry_codes_and_text(conn):
    with pytest.raises(flight_sql.Error) as bad:
        run(conn, "SELEC 1")
    assert bad.value.status_code == AdbcStatusCode.INVALID_ARGUMENT
    assert "SQL error" in str(bad.value)

    with pytest.raises(flight_sql.Error) as missing:
        run(conn, "SELECT * FROM no_such_table")
    assert missing.value.status_code == AdbcStatusCode.NOT_FOUND
    assert "no_such_table" in str(missing.value)
    # The connection is still usable.
    assert run(conn, "SELECT 2") == [(2,)]


def test_cancel_a_running_query(uri, conn, table_name):
    data = pa.table({"id": pa.array(range(20_000), pa.int64())})
    with conn.cursor() as cur:
        cur.adbc_ingest(table_name, data, mode="create")
    slow = f"SELECT count(*) FROM {table_name} a, {table_name} b, {table_name} c WHERE a.id + b.id + c.id < 0"
    cur = conn.cursor()
    failure = {}

    def execute():
        try:
            cur.execute(slow)
            cur.fetchall()
        except flight_sql.Error as e:
            failure["error"] = e

    thread = threading.Thread(target=execute)
    thread.start()
    time.sleep(1.0)
    started = time.monotonic()
    cur.adbc_cancel()
    thread.join(30)
    assert not thread.is_alive(), "the cancelled query did not return"
    assert time.monotonic() - started < 10
    assert failure["error"].status_code == AdbcStatusCode.CANCELLED
    # The cluster keeps answering, quickly.
    with flight_sql.connect(uri, autocommit=True) as other:
        started = time.monotonic()
        assert run(other, "SELECT 42") == [(42,)]
        assert time.monotonic() - started < 5


def test_password_protected_coordinator():
    """A coordinator with --flight-password: ADBC's username/password options log in; a wrong
    or missing password is UNAUTHENTICATED."""
    uri = os.environ["SHOAL_GUARDED_FLIGHT_URI"]
    password = os.environ["SHOAL_GUARDED_PASSWORD"]
    with flight_sql.connect(uri, db_kwargs={"username": "ada", "password": password}, autocommit=True) as conn:
        assert run(conn, "SELECT 6 * 7 AS answer") == [(42,)]
    for kwargs in ({"username": "ada", "password": "guess"}, {}):
        with pytest.raises(flight_sql.Error) as refused:
            with flight_sql.connect(uri, db_kwargs=kwargs, autocommit=True) as conn:
                run(conn, "SELECT 1")
        assert refused.value.status_code == AdbcStatusCode.UNAUTHENTICATED, refused.value
