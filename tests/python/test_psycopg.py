"""psycopg 3 (from PyPI) over Shoal's Postgres wire protocol: the simple and extended query
protocols, parameters, prepared statements, types, errors with their SQLSTATEs, cancel."""

import os
import threading
import time
from datetime import date, datetime
from decimal import Decimal

import psycopg
import pytest
from psycopg import errors


@pytest.fixture
def pg():
    host = os.environ.get("SHOAL_PG_HOST")
    port = os.environ.get("SHOAL_PG_PORT")
    if not host or not port:
        pytest.fail("SHOAL_PG_HOST/SHOAL_PG_PORT are not set; run these tests through `cargo test`")
    # Any user name is accepted until Shoal has users; autocommit matches what Shoal does.
    connection = psycopg.connect(host=host, port=int(port), user="analyst", dbname="shoal", autocommit=True)
    yield connection
    connection.close()


def test_connect_and_select(pg):
    assert pg.execute("SELECT 1 AS one, 'x' AS letter").fetchall() == [(1, "x")]
    assert pg.info.server_version >= 160000


def test_writes_report_postgres_command_tags(pg, table_name):
    cur = pg.execute(f"CREATE TABLE {table_name} (id BIGINT NOT NULL, label VARCHAR) WITH (distribution = 'id', shards = 3)")
    assert cur.statusmessage == "CREATE TABLE"
    cur = pg.execute(f"INSERT INTO {table_name} VALUES (1, 'a'), (2, 'b'), (3, NULL)")
    assert cur.statusmessage == "INSERT 0 3"
    assert cur.rowcount == 3
    cur = pg.execute(f"SELECT id FROM {table_name} ORDER BY id")
    assert cur.statusmessage == "SELECT 3"
    assert cur.fetchall() == [(1,), (2,), (3,)]
    cur = pg.execute(f"DROP TABLE {table_name}")
    assert cur.statusmessage == "DROP TABLE"


def test_parameters_through_the_extended_protocol(pg, table_name):
    pg.execute(f"CREATE TABLE {table_name} (id BIGINT NOT NULL, label VARCHAR, amount DOUBLE) WITH (distribution = 'id')")
    with pg.cursor() as cur:
        cur.executemany(
            f"INSERT INTO {table_name} VALUES (%s, %s, %s)",
            [(i, f"row {i}", i * 1.5) for i in range(1, 6)],
        )
        # Small Python ints go out as int2; the server casts them to the column's BIGINT.
        cur.execute(f"SELECT label, amount FROM {table_name} WHERE id = %s", (4,))
        assert cur.fetchall() == [("row 4", 6.0)]
        cur.execute(f"SELECT count(*) FROM {table_name} WHERE label = %s OR id > %s", ("row 1", 3))
        assert cur.fetchone() == (3,)
        cur.execute("SELECT %s::VARCHAR IS NULL", (None,))
        assert cur.fetchone() == (True,)


def test_prepared_statement_rebound(pg, table_name):
    pg.execute(f"CREATE TABLE {table_name} (id BIGINT NOT NULL, label VARCHAR) WITH (distribution = 'id')")
    pg.execute(f"INSERT INTO {table_name} SELECT value, 'v' || value FROM generate_series(1, 100)")
    query = f"SELECT label FROM {table_name} WHERE id = %s"
    with pg.cursor() as cur:
        for key in (7, 42, 99):
            # prepare=True: one Parse, then Bind/Execute per value.
            cur.execute(query, (key,), prepare=True)
            assert cur.fetchall() == [(f"v{key}",)]


def test_binary_results(pg):
    with pg.cursor(binary=True) as cur:
        cur.execute("SELECT CAST(42 AS BIGINT), 2.5::DOUBLE, 'text', true, DATE '2024-02-29'")
        assert cur.fetchone() == (42, 2.5, "text", True, date(2024, 2, 29))


def test_types(pg):
    row = pg.execute(
        "SELECT CAST(1 AS SMALLINT), CAST(2 AS INT), CAST(3 AS BIGINT), CAST(1.25 AS REAL), "
        "CAST(12.34 AS DECIMAL(10, 2)), 'str', true, DATE '2024-01-02', "
        "TIMESTAMP '2024-01-02 03:04:05', NULL::VARCHAR"
    ).fetchone()
    assert row == (
        1,
        2,
        3,
        1.25,
        Decimal("12.34"),
        "str",
        True,
        date(2024, 1, 2),
        datetime(2024, 1, 2, 3, 4, 5),
        None,
    )


def test_a_large_result_streams(pg):
    with pg.cursor() as cur:
        cur.execute("SELECT value FROM generate_series(1, 300000)")
        total = 0
        rows = 0
        for (value,) in cur:
            total += value
            rows += 1
    assert rows == 300000
    assert total == 300000 * 300001 // 2


def test_errors_carry_sqlstates(pg, table_name):
    with pytest.raises(errors.UndefinedTable) as missing:
        pg.execute("SELECT * FROM no_such_table")
    assert missing.value.sqlstate == "42P01"
    assert "no_such_table" in str(missing.value)
    with pytest.raises(errors.SyntaxError):
        pg.execute("SELEC 1")
    pg.execute(f"CREATE TABLE {table_name} (id BIGINT)")
    with pytest.raises(errors.DuplicateTable):
        pg.execute(f"CREATE TABLE {table_name} (id BIGINT)")
    with pytest.raises(errors.UndefinedColumn):
        pg.execute(f"SELECT nope FROM {table_name}")
    with pytest.raises(errors.DivisionByZero):
        pg.execute("SELECT 1 / 0")
    # The connection is still usable after errors.
    assert pg.execute("SELECT 2").fetchone() == (2,)


def test_transactions_are_accepted_and_commit_each_statement(pg, table_name):
    # psycopg's default (autocommit off) wraps statements in BEGIN ... COMMIT.
    with psycopg.connect(
        host=os.environ["SHOAL_PG_HOST"], port=int(os.environ["SHOAL_PG_PORT"]), user="analyst"
    ) as conn:
        conn.execute(f"CREATE TABLE {table_name} (id BIGINT)")
        conn.execute(f"INSERT INTO {table_name} VALUES (1)")
        conn.commit()
    assert pg.execute(f"SELECT count(*) FROM {table_name}").fetchone() == (1,)


def test_cancel_stops_a_running_query(pg):
    # 4e10 pairs: minutes of work unless the cancel stops it.
    slow = "SELECT count(*) FROM generate_series(1, 200000) a CROSS JOIN generate_series(1, 200000) b WHERE a.value + b.value < 0"

    def cancel_soon():
        time.sleep(1.0)
        pg.cancel_safe()

    canceller = threading.Thread(target=cancel_soon)
    canceller.start()
    started = time.monotonic()
    with pytest.raises(errors.QueryCanceled):
        pg.execute(slow)
    canceller.join()
    assert time.monotonic() - started < 10
    # The server answers at once afterwards.
    started = time.monotonic()
    assert pg.execute("SELECT 1").fetchone() == (1,)
    assert time.monotonic() - started < 5


def test_system_catalog_queries(pg, table_name):
    pg.execute(f"CREATE TABLE {table_name} (id BIGINT NOT NULL, label VARCHAR)")
    tables = pg.execute(
        "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind = 'r'"
    ).fetchall()
    assert (table_name,) in tables
    columns = pg.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
        (table_name,),
    ).fetchall()
    assert [c[0] for c in columns] == ["id", "label"]
    assert pg.execute("SELECT current_database()").fetchone() == ("shoal",)
