"""Fixtures for the client suites: the test command starts a Shoal cluster and passes its
Flight SQL address in SHOAL_FLIGHT_URI (see tests/it/python_clients.rs)."""

import os
import uuid

import adbc_driver_flightsql.dbapi as flight_sql
import pytest


@pytest.fixture(scope="session")
def uri():
    value = os.environ.get("SHOAL_FLIGHT_URI")
    if not value:
        pytest.fail("SHOAL_FLIGHT_URI is not set; run these tests through `cargo test`")
    return value


@pytest.fixture
def conn(uri):
    connection = flight_sql.connect(uri, autocommit=True)
    yield connection
    connection.close()


@pytest.fixture
def table_name():
    """A fresh table name per test, so tests do not see each other's tables."""
    return f"t_{uuid.uuid4().hex[:12]}"
