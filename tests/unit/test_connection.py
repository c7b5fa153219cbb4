"""URL parsing and the embedded engine's one-process rule."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from dynamodb_cdc.connection import ConnectionConfigError, EngineLockedError, open_chdb_client, parse_url


def test_chdb_urls(tmp_path):
    assert parse_url("chdb:///var/data").path == "/var/data"
    rel = parse_url("chdb://.chdb", cwd=str(tmp_path))
    assert rel.embedded and rel.path == os.path.realpath(tmp_path / ".chdb")
    assert parse_url(None, cwd=str(tmp_path)).path.endswith(".chdb")


def test_http_urls_keep_secrets_out_of_descriptions():
    t = parse_url("https://alice:s%40cret@ch.example.com/analytics")
    assert (t.kind, t.host, t.port, t.username, t.password, t.database) == (
        "https", "ch.example.com", 8443, "alice", "s@cret", "analytics")
    assert "s@cret" not in t.describe()
    assert parse_url("http://localhost").port == 8123


@pytest.mark.parametrize("url", ["postgres://x", "chdb://", "chdb://memory", "http:///nohost"])
def test_bad_urls(url):
    with pytest.raises(ConnectionConfigError):
        parse_url(url)


def test_a_chdb_path_is_the_profiles_path(monkeypatch):
    """The loader kept ~ as a directory name (dbt's chdb profile expands it) and cut a path at # or ?:
    the two then wrote and read different directories."""
    monkeypatch.setenv("HOME", "/home/someone")
    assert parse_url("chdb://~/data").path == "/home/someone/data"
    assert parse_url("chdb:///tmp/a%23b%3Fc").path == "/tmp/a#b?c"
    for url in ("chdb:///tmp/a#b", "chdb:///tmp/x?y", "chdb:///tmp/x?"):
        with pytest.raises(ConnectionConfigError, match=re.escape("no ?query or #fragment; write ? and # in a dir")):
            parse_url(url)


@pytest.mark.parametrize("url", ["http://default:s3cr/etPW@127.0.0.1:8123/db", "https://u:pa#ss@h.example.com:8443"])
def test_a_password_that_ends_the_host_early_is_a_usage_error_that_does_not_show_it(url, tmp_path, caplog):
    """A / or # in a password ended the host part early: the port was read from the password, and the
    CLI printed 'ValueError: Port could not be cast to integer value as 's3cr'' (exit 1)."""
    from dynamodb_cdc.cli import main

    assert main(["status", "--clickhouse-url", url]) == 2
    assert "must be percent-encoded (/ as %2F, # as %23, @ as %40)" in caplog.text
    assert "s3cr" not in caplog.text and "pa#ss" not in caplog.text and "ss@h" not in caplog.text
    assert parse_url(url.replace("s3cr/etPW", "s3cr%2FetPW").replace("pa#ss", "pa%23ss")).password in ("s3cr/etPW", "pa#ss")


def test_second_process_gets_one_line_lock_error(tmp_path):
    path = str(tmp_path / "engine")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys,time; from dynamodb_cdc.connection import open_chdb_client as o; "
         f"c=o({path!r}); c.command('SELECT 1'); print('ready', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(EngineLockedError) as err:
            open_chdb_client(path)
        message = str(err.value)
        assert path in message and str(holder.pid) in message and "\n" not in message
        # The CLI prints it as one line, with no traceback, and exits non-zero.
        cli = subprocess.run(
            [os.path.join(os.path.dirname(sys.executable), "dynamodb-cdc"), "load-export", "s3://bucket/x",
             "--clickhouse-url", f"chdb://{path}"],
            capture_output=True, text=True, timeout=60,
        )
        assert cli.returncode == 1
        assert "is in use by process" in cli.stderr and "Traceback" not in cli.stderr
    finally:
        holder.kill()
        holder.wait()
    # Once the holder is gone, the directory opens again.
    client = open_chdb_client(path)
    assert client.command("SELECT 1") == 1
    client.close()


def test_only_failures_that_waiting_may_cure_are_retried():
    from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

    from dynamodb_cdc.connection import ClickHouseUnavailableError, is_transient, retrying

    assert is_transient(OperationalError("Error executing HTTP request"))
    assert is_transient(DatabaseError("Code: 252. DB::Exception: Too many parts (300). (TOO_MANY_PARTS)"))
    assert not is_transient(DatabaseError("Code: 62. DB::Exception: Syntax error (SYNTAX_ERROR)"))
    assert not is_transient(ValueError("Code: 252"))

    calls, waits, undone = [], [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("[Errno 111] Connection refused")
        return "done"

    assert retrying("testing", flaky, redo=lambda: undone.append(len(calls)), sleep=waits.append) == "done"
    assert (len(calls), waits, undone) == (3, [1.0, 2.0], [1, 2])  # doubling waits; undone before each rerun

    def broken():
        raise DatabaseError("Code: 62. DB::Exception: Syntax error (SYNTAX_ERROR)")

    with pytest.raises(DatabaseError):  # not retried: the same statement would fail again
        retrying("testing", broken, sleep=waits.append)

    def gone():
        raise OperationalError(  # as clickhouse-connect words it
            "Error HTTPConnectionPool(host='127.0.0.1', port=8123): Max retries exceeded with url: /?database=x "
            "(Caused by NewConnectionError(\"<urllib3.connection.HTTPConnection object at 0x7f>: Failed to "
            "establish a new connection: [Errno 111] Connection refused\")) executing HTTP request attempt 1 "
            "(http://127.0.0.1:8123)")

    with pytest.raises(ClickHouseUnavailableError) as err:
        retrying("loading lines 1-10 of s3://b/k", gone, attempts=3, sleep=lambda s: None)
    assert str(err.value) == ("ClickHouse stopped answering while loading lines 1-10 of s3://b/k: [Errno 111] "
                              "Connection refused (3 attempts over 3 s). Nothing is checkpointed past the rows "
                              "written: rerun to continue.")


def test_a_url_to_the_wrong_port_or_scheme_says_what_is_wrong():
    """https:// to a plain-HTTP port, or a port that is not ClickHouse's HTTP interface, was reported
    as a bare 'OperationalError' five times over."""
    from clickhouse_connect.driver.exceptions import OperationalError

    from dynamodb_cdc.connection import _reason

    tls = OperationalError(
        "Error HTTPSConnectionPool(host='h', port=8123): Max retries exceeded with url: /?query_id=1 (Caused by "
        "SSLError(SSLError(1, '[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)'))) executing HTTP "
        "request attempt 1 (https://h:8123)")
    assert _reason(tls) == "TLS handshake failed (WRONG_VERSION_NUMBER; is the port plain HTTP? use http://)"
    other = OperationalError("Unexpected response to server version query: '<?xml version=\"1.0\"?><Error/>'")
    assert "not ClickHouse's" in _reason(other) and "8123" in _reason(other)
    assert _reason(OperationalError("[Errno 111] Connection refused")) == "[Errno 111] Connection refused"


def test_a_url_no_wait_can_cure_fails_at_once(monkeypatch):
    """https:// to a plain-HTTP port (TLS WRONG_VERSION_NUMBER), a certificate that does not verify, or
    a port whose 200 answer is not ClickHouse's: the same URL meets the same answer after any wait,
    so it is one clear error at once, not five attempts over 7.5 s.  A refused connection (a server
    restarting) is still waited for."""
    import clickhouse_connect
    from clickhouse_connect.driver.exceptions import OperationalError

    from dynamodb_cdc import connection
    from dynamodb_cdc.connection import ClickHouseUnavailableError, open_client

    permanent = [
        "Error HTTPSConnectionPool(host='h', port=8123): Max retries exceeded with url: /?query_id=1 (Caused by "
        "SSLError(SSLError(1, '[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)'))) executing HTTP "
        "request attempt 1 (https://h:8123)",
        "Error HTTPSConnectionPool(host='h', port=8443): Max retries exceeded with url: / (Caused by "
        "SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
        "self-signed certificate (_ssl.c:1006)')))",
        "Unexpected response to server version query: '<html>hello</html>'",
    ]
    for message in permanent + ["[Errno 111] Connection refused"]:
        calls, waits = [], []

        def get_client(**_kwargs):
            calls.append(1)
            raise OperationalError(message)

        monkeypatch.setattr(clickhouse_connect, "get_client", get_client)
        monkeypatch.setattr(connection.time, "sleep", waits.append)
        with pytest.raises(ClickHouseUnavailableError) as err:
            open_client("https://u:secret@h:8123/")
        assert "secret" not in str(err.value)
        if message in permanent:
            assert (len(calls), waits) == (1, []), message
            assert "1 attempt" not in str(err.value) and "Check that the server is running" not in str(err.value)
        else:
            assert (len(calls), waits) == (5, [0.5, 1.0, 2.0, 4.0])



def test_a_proxy_answering_bad_gateway_is_transient():
    """A load balancer in front of ClickHouse answers 502/503/504 with no ClickHouse error while the server
    behind it restarts (clickhouse-connect raises a DatabaseError): waited for, as a refused connection is."""
    from clickhouse_connect.driver.exceptions import DatabaseError

    from dynamodb_cdc.connection import _reason, is_transient

    for status in (502, 503, 504):
        assert is_transient(DatabaseError(f"HTTP driver received HTTP status {status}, server response: <html>"))
    assert not is_transient(DatabaseError("HTTP driver received HTTP status 404, server response: no such page"))
    assert _reason(DatabaseError("HTTP driver received HTTP status 502, server response: <html>")) == (
        "HTTP status 502, with no ClickHouse error (a proxy in front of the server?)")
