"""The Flight SQL wire as a plain Flight client (pyarrow.flight) sees it: what Grafana and
flightsql-dbapi rely on (one endpoint, redeemed on the same connection, no view types)."""

import pyarrow as pa
import pytest
import pyarrow.flight as flight


def _varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number, payload):
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def statement_query(sql):
    """CommandStatementQuery{query} packed in a google.protobuf.Any, as Flight SQL sends it."""
    command = _field(1, sql.encode())
    type_url = b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery"
    return flight.FlightDescriptor.for_command(_field(1, type_url) + _field(2, command))


def test_one_endpoint_redeemed_by_the_coordinator(uri, conn, table_name):
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {table_name} (id BIGINT, name VARCHAR) WITH (distribution = 'id', shards = 6)")
        cur.adbc_ingest(table_name, pa.table({"id": list(range(1000)), "name": [str(i) for i in range(1000)]}), mode="append")
    client = flight.connect(uri)
    info = client.get_flight_info(statement_query(f"SELECT id, name FROM {table_name}"))
    assert len(info.endpoints) == 1
    endpoint = info.endpoints[0]
    assert list(endpoint.locations) == [], "the coordinator redeems its own ticket"
    assert endpoint.expiration_time is not None, "tickets expire"
    assert info.schema.field("name").type == pa.string()
    table = client.do_get(endpoint.ticket).read_all()
    assert table.num_rows == 1000
    assert table.schema.field("name").type == pa.string(), "no view types on the wire"
    assert sorted(table.column("id").to_pylist()) == list(range(1000))
    # A ticket is redeemed once (gRPC NOT_FOUND, which pyarrow raises as ArrowKeyError).
    with pytest.raises(pa.ArrowKeyError, match="unknown or expired ticket"):
        client.do_get(endpoint.ticket).read_all()


def test_get_schema(uri):
    client = flight.connect(uri)
    descriptor = statement_query("SELECT 1 AS one, 'a' AS letter")
    schema = client.get_schema(descriptor).schema
    assert schema.names == ["one", "letter"]
    assert schema.field("letter").type == pa.string()


EXECUTORS = flight.FlightCallOptions(headers=[(b"x-shoal-endpoints", b"executors")])


def test_executor_endpoints_are_read_from_the_executors(uri, conn, table_name):
    rows = 50_000
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {table_name} (id BIGINT, name VARCHAR) WITH (distribution = 'id', shards = 6)")
        cur.adbc_ingest(table_name, pa.table({"id": list(range(rows)), "name": [f"n{i}" for i in range(rows)]}), mode="append")
    client = flight.connect(uri)
    info = client.get_flight_info(statement_query(f"SELECT id, name FROM {table_name}"), EXECUTORS)
    assert len(info.endpoints) == 3, "one endpoint per executor running the final stage"
    locations = [endpoint.locations[0].uri.decode() for endpoint in info.endpoints]
    assert len(set(locations)) == 3 and all(loc.startswith("grpc+tcp://") for loc in locations)
    tables = []
    for endpoint in info.endpoints:
        assert endpoint.expiration_time is not None, "tickets expire"
        executor = flight.connect(endpoint.locations[0])
        table = executor.do_get(endpoint.ticket).read_all()
        assert table.schema == info.schema, "every endpoint has the same schema, no view types"
        tables.append(table)
        if len(tables) == 1:
            # Redeemed once: a second read of a ticket is refused.
            with pytest.raises(pa.ArrowException, match="already redeemed"):
                executor.do_get(endpoint.ticket).read_all()
    assert 0 < min(t.num_rows for t in tables), "every executor holds some of the rows"
    result = pa.concat_tables(tables)
    assert sorted(result.column("id").to_pylist()) == list(range(rows))
    # An ordered result cannot be split: one coordinator endpoint.
    ordered = client.get_flight_info(statement_query(f"SELECT id FROM {table_name} ORDER BY id"), EXECUTORS)
    assert len(ordered.endpoints) == 1 and list(ordered.endpoints[0].locations) == []
