"""flightsql-dbapi, the driver behind Superset's Flight SQL support: plain
CommandStatementQuery, only the first endpoint redeemed on the same connection, and
GetSqlInfo read by id (0, 2, 3, 504) when its SQLAlchemy dialect connects."""

from urllib.parse import urlparse

import flightsql
from flightsql import FlightSQLClient


def connect(uri):
    address = urlparse(uri)
    return flightsql.connect(FlightSQLClient(host=address.hostname, port=address.port, insecure=True))


def test_query_through_the_first_endpoint(uri, conn, table_name):
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {table_name} (id BIGINT, name VARCHAR) WITH (distribution = 'id', shards = 6)")
        cur.executemany(f"INSERT INTO {table_name} VALUES (?, ?)", [(i, f"n{i}") for i in range(50)])
    dbapi = connect(uri)
    cur = dbapi.cursor()
    cur.execute(f"SELECT id, name FROM {table_name} ORDER BY id")
    rows = cur.fetchall()
    assert len(rows) == 50, "every row comes through the one endpoint"
    assert tuple(rows[0]) == (0, "n0") and tuple(rows[49]) == (49, "n49")
    dbapi.close()


def test_sql_info_the_dialect_reads(uri):
    dbapi = connect(uri)
    info = dbapi.flightsql_get_sql_info([0, 2, 3, 504])
    assert info[0] == "Shoal"
    assert info[2]
    assert info[3] is False
    assert info[504] == '"'
    dbapi.close()
