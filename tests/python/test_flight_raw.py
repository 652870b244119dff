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
