"""The loader's server path, over HTTP into chdb_http (ClickHouse's HTTP interface in front of a
chDB directory of its own, in another process), against the embedded path on the same input.

chdb_http is what lets these machines, which have no ClickHouse server, run the loader and dbt
over HTTP at all (see loader/testing/chdb_http.py); the first tests pin the parts of the
interface the clients rely on.
"""

from __future__ import annotations

import contextlib
import tempfile
from datetime import datetime, timezone

import pytest

from dynamodb_cdc.connection import open_client
from dynamodb_cdc.manifest import ExportSummary
from dynamodb_cdc.s3export import Segment
from dynamodb_cdc.store import Store
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
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as answered:  # what it cannot take is an error answer, not a dropped connection
        urllib.request.urlopen(urllib.request.Request(server.url + "/?query=SELECT", data=b"'\xff'"), timeout=30)
    assert answered.value.code == 400 and answered.value.headers["X-ClickHouse-Exception-Code"] == "1002"
    assert urllib.request.urlopen(server.url + "/ping", timeout=30).read() == b"Ok.\n"
    with pytest.raises(urllib.error.HTTPError) as answered:  # nor is a body in an encoding it does not read
        urllib.request.urlopen(urllib.request.Request(server.url + "/", data=b"SELECT 1",
                                                      headers={"Content-Encoding": "snappy"}), timeout=30)
    assert answered.value.code == 400 and b"unsupported Content-Encoding 'snappy'" in answered.value.read()


def summary() -> ExportSummary:
    return ExportSummary(
        export_arn="arn:aws:dynamodb:us-east-1:123456789012:table/t/export/1", table_arn="arn:aws:dynamodb:us-east-1:123456789012:table/t",
        table_name="t", export_type="FULL_EXPORT", export_time=datetime(2026, 1, 2, tzinfo=timezone.utc),
        export_from_time=None, export_to_time=None, output_format="DYNAMODB_JSON", output_view=None,
        s3_bucket="b", s3_prefix=None, manifest_files_key="m", item_count=None, summary_key="s")


# CRLF, a blank line, invalid UTF-8, a line that is not JSON, and a last line without its newline.
LINES = (b'{"Item":{"pk":{"S":"a"}}}\r\n' + b"\n" + b'{"Item":{"pk":{"S":"b\xff\xfe"}}}\n' + b"not json\n"
         + b"".join(b'{"Item":{"pk":{"S":"k%d"}}}\n' % i for i in range(1000)) + b'{"Item":{"pk":{"S":"last"}}}')


@pytest.mark.parametrize("skip", [0, 3])
def test_a_segment_lands_over_http_exactly_as_on_the_embedded_engine(server, tmp_path, skip):
    """Store.insert_segment: chDB reads the segment's file itself; a server gets its bytes as the
    data of an INSERT ... SELECT FROM input() (LineAsString): the same rows and quarantine either way,
    the first ``skip`` lines left out, line numbers counted from the segment's first line."""
    landed = {}
    for name, url in (("embedded", f"chdb://{tmp_path / 'chdb'}"), ("http", server.url + "/")):
        client = open_client(url)
        store = Store(client, f"raw_{skip}")
        assert store.embedded == (name == "embedded")
        store.ensure_schema()
        with tempfile.TemporaryFile() as f:
            f.write(LINES)
            store.insert_segment(summary(), "data/1.json.gz", Segment(first_line=41, lines=1005, size=len(LINES), file=f), skip)
        landed[name] = (
            client.query(f"SELECT line_number, line FROM raw_{skip}.export_lines ORDER BY line_number").result_rows,
            client.query(f"SELECT line_number, error FROM raw_{skip}.quarantine ORDER BY line_number").result_rows)
        client.close()
    assert landed["http"] == landed["embedded"]
    lines, quarantined = landed["http"]
    refused = [(42, "line is not valid JSON"), (43, "line is not valid UTF-8"), (44, "line is not valid JSON")]
    assert quarantined == [(n, why) for n, why in refused if n >= 41 + skip]
    assert [n for n, _ in lines] == ([41] if skip == 0 else []) + list(range(45, 41 + 1005))
    assert lines[-1] == (41 + 1004, '{"Item":{"pk":{"S":"last"}}}')  # a last line without its newline
    if skip == 0:
        assert lines[0] == (41, '{"Item":{"pk":{"S":"a"}}}')  # the CR trimmed


@pytest.mark.parametrize("secure", [None, "false", "False"])
def test_the_server_target_of_profiles_example_connects_as_written(server, tmp_path, secure):
    """profiles.example.yml's `server` target, copied as the README says, with only the
    CLICKHOUSE_* variables set: dbt debug passes (secure off by default, and for false or False)."""
    import os
    import shutil
    import subprocess

    from conftest import BIN, ROOT

    shutil.copy(ROOT / "profiles.example.yml", tmp_path / "profiles.yml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKHOUSE_")}
    env.update({"CLICKHOUSE_PORT": server.url.rsplit(":", 1)[1], "DBT_TARGET_PATH": str(tmp_path / "target"),
                "DBT_LOG_PATH": str(tmp_path / "logs"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"})
    if secure is not None:
        env["CLICKHOUSE_SECURE"] = secure
    result = subprocess.run([str(BIN / "dbt"), "debug", "--target", "server", "--profiles-dir", str(tmp_path),
                             "--profile", "dynamodb_cdc"], cwd=ROOT / "examples", env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "secure: False" in result.stdout and "All checks passed!" in result.stdout


def test_a_command_run_under_chdb_http_reaches_it_through_the_variables_it_reads(tmp_path):
    """`python -m dynamodb_cdc.testing.chdb_http -- COMMAND` set only CLICKHOUSE_URL, which neither the
    loader (DYNAMODB_CDC_CLICKHOUSE_URL) nor profiles.example.yml's `server` target (CLICKHOUSE_HOST,
    CLICKHOUSE_PORT) reads: dbt went to localhost:8123, and the loader to a .chdb of its own."""
    import os
    import shutil
    import subprocess
    import sys

    from conftest import BIN, ROOT

    shutil.copy(ROOT / "profiles.example.yml", tmp_path / "profiles.yml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLICKHOUSE_", "DYNAMODB_CDC_"))}
    env.update({"DBT_TARGET_PATH": str(tmp_path / "target"), "DBT_LOG_PATH": str(tmp_path / "logs"),
                "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"})
    harness = [sys.executable, "-m", "dynamodb_cdc.testing.chdb_http", "--path", str(tmp_path / "chdb"), "--"]
    (tmp_path / "chdb").mkdir()
    dbt = subprocess.run([*harness, str(BIN / "dbt"), "debug", "--target", "server", "--profiles-dir", str(tmp_path),
                          "--profile", "dynamodb_cdc"], cwd=ROOT / "examples", env=env, capture_output=True, text=True,
                         timeout=300)
    assert dbt.returncode == 0 and "All checks passed!" in dbt.stdout, dbt.stdout[-3000:]
    loader = subprocess.run([*harness, sys.executable, "-c", "from dynamodb_cdc.connection import parse_url; "
                             "print(parse_url().describe())"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert loader.returncode == 0, loader.stderr
    assert loader.stdout.splitlines()[-1].startswith("http://127.0.0.1:")


@contextlib.contextmanager
def _proxy(upstream_url: str, refuse):
    """A real HTTP proxy on 127.0.0.1 in front of ``upstream_url`` (yields its URL): a request whose body
    ``refuse(body)`` gives a status for (502, 503: a load balancer while ClickHouse restarts, with no
    ClickHouse error) gets that answer; every other request is forwarded as it is."""
    import http.client
    import http.server
    import threading
    from urllib.parse import urlsplit

    upstream = urlsplit(upstream_url)

    class Proxy(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = refuse(body)
            if status:
                headers, data = [], f"<html><body>{status} from the proxy</body></html>".encode()
            else:
                conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
                conn.request(self.command, self.path, body=body,
                             headers={k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")})
                reply = conn.getresponse()
                status, data = reply.status, reply.read()
                headers = [(k, v) for k, v in reply.getheaders()
                           if k.lower() not in ("transfer-encoding", "content-length", "connection")]
                conn.close()
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _forward

        def log_message(self, *args):
            pass

    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{proxy.server_address[1]}/"
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_a_proxy_answering_bad_gateway_while_clickhouse_restarts_is_waited_for(server, monkeypatch):
    """A load balancer in front of ClickHouse answers 502 Bad Gateway, with no ClickHouse error, while the
    server behind it restarts.  clickhouse-connect raises that as a DatabaseError, which was not retried:
    the command stopped at once.  Here a real HTTP proxy on loopback answers the first two requests
    with 502, then forwards each request to chdb_http as it is."""
    from dynamodb_cdc import connection

    answered = []

    def refuse(body):
        answered.append(body)
        return 502 if len(answered) <= 2 else None

    waits = []
    monkeypatch.setattr(connection.time, "sleep", waits.append)
    with _proxy(server.url, refuse) as url:
        client = open_client(url)
        assert client.command("SELECT 40 + 2") == 42
        client.close()
    assert waits == [0.5, 1.0]


def test_a_transient_error_while_bringing_a_routing_view_up_to_date_is_retried(server):
    """ensure() turned any failure of ALTER ... MODIFY QUERY into a RuntimeError advising DROP VIEW, so that
    load-export's retrying('creating the raw tables') stopped at a 503 of a proxy (ClickHouse restarting)."""
    from dynamodb_cdc import schema
    from dynamodb_cdc.connection import retrying

    refused = []

    def refuse(body):  # 503 to the first MODIFY QUERY
        if b"MODIFY QUERY" in body and not refused:
            refused.append(body)
            return 503
        return None

    db = "raw_stale_transient"
    with _proxy(server.url, refuse) as url:
        client = open_client(url)
        schema.ensure(client, db)
        for view in schema.ROUTING_VIEWS:
            client.command(f"ALTER TABLE {db}.{view} MODIFY COMMENT ''")
        retrying("creating the raw tables", lambda: schema.ensure(client, db), sleep=lambda s: None)
        assert refused
        assert client.query(f"SELECT DISTINCT comment FROM system.tables WHERE database = '{db}' "
                            "AND name IN ('_stream_records_accept', '_stream_records_refuse')").result_rows == [
            (schema.ROUTING_VERSION,)]
        client.close()


def test_readonly_runs_reads_whatever_comes_before_them_and_refuses_the_rest(server):
    """As a server in readonly mode: a leading comment (dbt's query comment) or parenthesis is still a read."""
    client = open_client(server.url, settings={"readonly": 2})
    try:
        for sql in ("/* {\"app\": \"dbt\"} */ SELECT 1", "-- a note\nSELECT 1", "(SELECT 1) UNION ALL (SELECT 1)"):
            assert client.query(sql).result_rows[0] == (1,), sql
        for sql in ("/* SELECT */ CREATE TABLE t_ro (x UInt8) ENGINE = Memory", "-- SELECT\nDROP TABLE IF EXISTS t_ro"):
            with pytest.raises(Exception, match="READONLY"):
                client.command(sql)
    finally:
        client.close()
