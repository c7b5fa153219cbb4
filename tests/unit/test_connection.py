"""URL parsing and the embedded engine's one-process rule."""

from __future__ import annotations

import os
import subprocess
import sys
import time

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
