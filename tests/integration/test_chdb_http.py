"""chdb_http: ClickHouse's HTTP interface in front of a chDB directory of its own, in another
process.  It is what lets these machines, which have no ClickHouse server, run the loader and dbt
over HTTP at all (see loader/testing/chdb_http.py); these tests pin the parts of the interface
the clients rely on.
"""

from __future__ import annotations


import pytest

from dynamodb_cdc.connection import open_client
from dynamodb_cdc.testing import chdb_http


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with chdb_http.chdb_http(str(tmp_path_factory.mktemp("chdb_http"))) as running:
        yield running


def test_queries_inserts_binds_and_errors_as_a_server_answers_them(server):
    from clickhouse_connect.driver.exceptions import DatabaseError

    client = open_client(server.url + "/")
    client.command("CREATE DATABASE IF NOT EXISTS h")
    client.command("CREATE TABLE h.t (n UInt32, s String) ENGINE = MergeTree ORDER BY n")
    rows = [[i, f"row {i} ü \\ ' \t" + "x" * 300] for i in range(20_000)]  # sent in several compressed frames
    client.insert("h.t", rows, column_names=["n", "s"])
    assert client.query("SELECT count(), sum(n), max(s) FROM h.t").result_rows == [(20_000, 199_990_000, rows[9999][1])]
    assert client.query("SELECT n FROM h.t WHERE s = {s:String}", parameters={"s": rows[7][1]}).result_rows == [(7,)]
    assert client.command("SELECT getSetting('max_threads')", settings={"max_threads": 1}) == 1
    assert client.command("SELECT getSetting('max_threads')") != 1  # a query's settings are its own
    assert client.query("SELECT * FROM h.t LIMIT 0").column_names == ("n", "s")
    with pytest.raises(DatabaseError, match="Code: 60"):
        client.query("SELECT * FROM h.missing")
    client.close()
