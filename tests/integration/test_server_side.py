"""load-export --server-side: ClickHouse (chDB's s3() table function) reads the data files from moto itself."""

from __future__ import annotations

import gzip
import os
import subprocess
from datetime import datetime, timezone

import pytest

from conftest import BIN
from dynamodb_cdc.manifest import md5_base64
from dynamodb_cdc.testing.exports import dumps_line, write_full_export

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("CLICKHOUSE_URL")), reason="a ClickHouse server elsewhere cannot reach this machine's moto")

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/users"
T0 = datetime(2026, 4, 5, 6, 7, 8, tzinfo=timezone.utc)
SECRET = "srv-side-S3cret-0123456789"


def load(ch, uri: str, *extra: str, raw_db: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "AWS_SECRET_ACCESS_KEY": SECRET}
    return subprocess.run(
        [str(BIN / "dynamodb-cdc"), "load-export", uri, *extra, "--clickhouse-url", ch.url,
         "--raw-database", raw_db or ch.raw_db], capture_output=True, text=True, env=env, timeout=300)


def lines_of(ch, db: str):
    return ch.rows(f"SELECT data_file_key, line_number, line, export_arn, export_time FROM {db}.export_lines "
                   "ORDER BY data_file_key, line_number")


def test_server_side_lands_what_the_client_side_load_lands(s3, clickhouse):
    lines = [dumps_line({"Item": {"id": {"S": f"u{i}"}, "name": {"S": f"Zoë {i}"}, "n": {"N": str(i)}}})
             for i in range(50)]
    lines[7] = b'{"Item":{"id":{"S":"broken"}'
    lines[20] = b'{"Item":{"id":{"S":"\xff"}}}'
    lines[33] = b'{"Item":{"id":{"S":"crlf"}}}\r'
    w = write_full_export(s3, s3.bucket, ARN, [], prefix="p", export_time=T0, files=3, lines=lines)
    uri = f"s3://{s3.bucket}/p"

    server = load(clickhouse, uri, "--server-side")
    assert server.returncode == 0, server.stderr
    assert "read by ClickHouse" in server.stderr and SECRET not in server.stderr
    client = load(clickhouse, uri, raw_db="client_side")
    assert client.returncode == 0, client.stderr

    assert lines_of(clickhouse, clickhouse.raw_db) == lines_of(clickhouse, "client_side")
    assert len(lines_of(clickhouse, clickhouse.raw_db)) == 48
    quarantine = "SELECT location, line_number, payload, error FROM {}.quarantine ORDER BY location, line_number"
    assert clickhouse.rows(quarantine.format(clickhouse.raw_db)) == clickhouse.rows(quarantine.format("client_side"))
    ledger = ("SELECT data_file_key, status, lines_committed, lines_landed, lines_quarantined "
              "FROM {}.export_files FINAL ORDER BY data_file_key")
    rows = clickhouse.rows(ledger.format(clickhouse.raw_db))
    assert [r[:2] for r in rows] == [(k, "loaded") for k in sorted(w.data_keys)]
    assert sum(r[3] for r in rows) == 48 and sum(r[4] for r in rows) == 2

    again = load(clickhouse, uri, "--server-side")
    assert again.returncode == 0 and "all 3 data files already loaded" in again.stderr
    assert len(lines_of(clickhouse, clickhouse.raw_db)) == 48


def test_server_side_refuses_bad_files_clearly_and_lands_nothing_of_them(s3, clickhouse):
    good = [dumps_line({"Item": {"id": {"S": f"u{i}"}}}) for i in range(6)]
    w = write_full_export(s3, s3.bucket, ARN, [], prefix="p", export_time=T0, files=3, lines=good)
    missing, short, corrupt = w.data_keys
    s3.delete_object(Bucket=s3.bucket, Key=missing)
    # A file with one line fewer than its itemCount (its MD5 updated: server-side cannot check MD5 anyway).
    body = gzip.compress(good[1] + b"\n", mtime=0)
    s3.put_object(Bucket=s3.bucket, Key=short, Body=body)
    s3.put_object(Bucket=s3.bucket, Key=corrupt, Body=b"\x1f\x8b\x08\x00garbage, not deflate")
    manifest_key = w.folder + "manifest-files.json"
    manifest = s3.get_object(Bucket=s3.bucket, Key=manifest_key)["Body"].read().replace(
        md5_base64(gzip.compress(good[1] + b"\n" + good[4] + b"\n", mtime=0)).encode(), md5_base64(body).encode())
    s3.put_object(Bucket=s3.bucket, Key=manifest_key, Body=manifest)
    s3.put_object(Bucket=s3.bucket, Key=w.folder + "manifest-files.md5", Body=md5_base64(manifest).encode())

    result = load(clickhouse, f"s3://{s3.bucket}/p", "--server-side")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and SECRET not in result.stderr
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert any(f"s3://{s3.bucket}/{missing}: ClickHouse could not read it" in e for e in errors), errors
    assert any(f"s3://{s3.bucket}/{short} has 1 lines but the manifest says itemCount 2" in e for e in errors), errors
    assert any(f"s3://{s3.bucket}/{corrupt}: ClickHouse could not read it" in e for e in errors), errors
    assert clickhouse.scalar(f"SELECT count() FROM {clickhouse.raw_db}.export_lines") == 0
    assert clickhouse.rows(f"SELECT DISTINCT status FROM {clickhouse.raw_db}.export_files FINAL") == [("failed",)]


def test_an_interrupted_file_is_read_again_whole_and_lands_once(s3, clickhouse):
    """A file left `loading` with some of its lines landed (a killed run, client- or server-side) is
    removed and read again from its first line: every line exactly once."""
    from dynamodb_cdc.manifest import DataFile
    from dynamodb_cdc.s3export import read_export
    from dynamodb_cdc.store import LOADING, Store

    lines = [dumps_line({"Item": {"id": {"S": f"u{i}"}}}) for i in range(40)]
    w = write_full_export(s3, s3.bucket, ARN, [], prefix="p", export_time=T0, files=2, lines=lines)
    summary, files = read_export(s3, s3.bucket, w.folder + "manifest-summary.json")
    first: DataFile = next(f for f in files if f.key == w.data_keys[0])
    with clickhouse.client() as c:
        store = Store(c, clickhouse.raw_db)
        store.ensure_schema()
        store.record_export(summary, s3_uri=w.uri, data_files=2, status=LOADING)
        # 15 lines landed, the ledger says 10 committed: the state a kill leaves behind.
        store.insert_lines(summary, first.key, [(n, lines[2 * (n - 1)]) for n in range(1, 16)])
        store.record_file(summary, first, status=LOADING, lines_committed=10)

    result = load(clickhouse, f"s3://{s3.bucket}/p", "--server-side")
    assert result.returncode == 0, result.stderr
    rows = clickhouse.rows(f"SELECT data_file_key, line_number, line FROM {clickhouse.raw_db}.export_lines "
                           "ORDER BY data_file_key, line_number")
    expected = [(key, n, lines[i + 2 * (n - 1)].decode()) for i, key in enumerate(w.data_keys) for n in range(1, 21)]
    assert sorted(rows) == sorted(expected)


def expected_lines(keys, lines):
    """(key, line number, line) of every line written by write_full_export (dealt round-robin)."""
    return sorted((key, n, line.decode()) for i, key in enumerate(keys) for n, line in enumerate(lines[i::len(keys)], 1))


@pytest.mark.parametrize("parallel", [1, 3])
def test_files_are_read_in_groups_one_statement_each_parallel_files_at_once(s3, clickhouse, monkeypatch, parallel):
    """--server-side: up to GROUP_FILES data files of a directory are read in one statement,
    --parallel-files of them at once; every line lands once with its own file and line number,
    and each file has its own ledger row and outcome, in file order."""
    from conftest import Outage
    from dynamodb_cdc import load_export
    from dynamodb_cdc.load_export import LoadOptions, load_exports
    from dynamodb_cdc.s3export import s3_client
    from dynamodb_cdc.store import Store

    monkeypatch.setattr(load_export, "GROUP_FILES", 4)
    lines = [dumps_line({"Item": {"id": {"S": f"u{i}"}, "n": {"N": str(i)}}}) for i in range(60)]
    lines[9] = b"not json"
    w = write_full_export(s3, s3.bucket, ARN, [], prefix="p", export_time=T0, files=6, lines=lines)
    reads = []

    class Recording(Outage):
        def command(self, sql, *args, **kwargs):
            if sql.startswith("INSERT") and "s3(" in sql:
                reads.append((sql[sql.index("s3('") + 4:].split("'")[0].count(",") + 1, kwargs.get("settings")))
            return super().command(sql, *args, **kwargs)

    with clickhouse.client() as c:
        store = Store(Recording(c, lambda *a: None), clickhouse.raw_db)
        store.embedded = clickhouse.embedded
        result = load_exports(s3_client(), store, f"s3://{s3.bucket}/p",
                              LoadOptions(server_side=True, parallel_files=parallel, progress=False))
    assert result.ok, result.errors
    streams = {"max_threads": parallel, "max_insert_threads": parallel, "parallel_view_processing": 1,
               "min_insert_block_size_bytes": 64 << 20}
    assert reads == [(4, streams), (2, streams)]  # two statements: 4 files, then 2
    assert (result.exports[0].files_loaded, result.exports[0].lines_landed, result.exports[0].lines_quarantined) == (6, 59, 1)
    rows = clickhouse.rows(f"SELECT data_file_key, line_number, line FROM {clickhouse.raw_db}.export_lines")
    assert sorted(rows) == [r for r in expected_lines(w.data_keys, lines) if r[2] != "not json"]
    assert clickhouse.rows(f"SELECT location, line_number FROM {clickhouse.raw_db}.quarantine") == [(w.data_keys[3], 2)]
    ledger = clickhouse.rows(f"SELECT data_file_key, status, lines_committed, lines_landed, lines_quarantined "
                             f"FROM {clickhouse.raw_db}.export_files FINAL ORDER BY data_file_key")
    assert ledger == sorted((k, "loaded", 10, 10 - (i == 3), int(i == 3)) for i, k in enumerate(w.data_keys))


@pytest.mark.parametrize("damage", ["corrupt", "short", "missing", "missing, of no lines"])
def test_a_group_with_a_bad_file_lands_the_others_and_names_the_bad_one(s3, clickhouse, damage):
    """A damaged gzip or a missing object fails the group's statement: what it left is removed and
    the files are read one at a time, so the good ones land and the bad one is refused with its
    own message.  A file the statement read short (one line fewer than itemCount) has its rows
    removed and is likewise read again on its own.  A file of no lines is never in a group."""
    good = [dumps_line({"Item": {"id": {"S": f"u{i}"}}}) for i in range(3 if damage == "missing, of no lines" else 12)]
    w = write_full_export(s3, s3.bucket, ARN, [], prefix="p", export_time=T0, files=4, lines=good)
    bad = w.data_keys[3 if damage == "missing, of no lines" else 2]
    if damage.startswith("missing"):
        s3.delete_object(Bucket=s3.bucket, Key=bad)
    else:
        body = b"\x1f\x8b\x08\x00garbage" if damage == "corrupt" else gzip.compress(good[2] + b"\n" + good[6] + b"\n")
        s3.put_object(Bucket=s3.bucket, Key=bad, Body=body)

    result = load(clickhouse, f"s3://{s3.bucket}/p", "--server-side")
    assert result.returncode == 1
    together = "could not read them together" in result.stderr and "reading them one at a time" in result.stderr
    assert together == (damage in ("corrupt", "missing")), result.stderr  # the statement failed
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    message = " has 2 lines but the manifest says itemCount 3" if damage == "short" else ": ClickHouse could not read it"
    assert any(f"s3://{s3.bucket}/{bad}{message}" in e for e in errors), errors
    rows = clickhouse.rows(f"SELECT data_file_key, line_number, line FROM {clickhouse.raw_db}.export_lines")
    assert sorted(rows) == [r for r in expected_lines(w.data_keys, good) if r[0] != bad]
    ledger = dict(clickhouse.rows(f"SELECT data_file_key, status FROM {clickhouse.raw_db}.export_files FINAL"))
    assert ledger == {k: "failed" if k == bad else "loaded" for k in w.data_keys}


def test_a_server_side_failure_leaves_no_resume_point_past_what_it_removed(s3, clickhouse):
    """A file a killed client-side run left `loading` after line 10 is removed whole by --server-side;
    if that read then fails, the ledger must not still say line 10, or a later client-side run
    would resume there and lose lines 1-10."""
    from dynamodb_cdc.s3export import read_export
    from dynamodb_cdc.store import LOADING, Store

    lines = [dumps_line({"Item": {"id": {"S": f"u{i}"}}}) for i in range(40)]
    w = write_full_export(s3, s3.bucket, ARN, [], prefix="p", export_time=T0, files=2, lines=lines)
    summary, files = read_export(s3, s3.bucket, w.folder + "manifest-summary.json")
    first = next(f for f in files if f.key == w.data_keys[0])
    with clickhouse.client() as c:
        store = Store(c, clickhouse.raw_db)
        store.ensure_schema()
        store.insert_lines(summary, first.key, [(n, lines[2 * (n - 1)]) for n in range(1, 11)])
        store.record_file(summary, first, status=LOADING, lines_committed=10)
    body = s3.get_object(Bucket=s3.bucket, Key=first.key)["Body"].read()
    s3.put_object(Bucket=s3.bucket, Key=first.key, Body=body[:-12])  # truncated: ClickHouse cannot read it

    result = load(clickhouse, f"s3://{s3.bucket}/p", "--server-side")
    assert result.returncode == 1
    assert clickhouse.rows(f"SELECT status, lines_committed FROM {clickhouse.raw_db}.export_files FINAL "
                           f"WHERE data_file_key = '{first.key}'") == [("failed", 0)]
    s3.put_object(Bucket=s3.bucket, Key=first.key, Body=body)
    again = load(clickhouse, f"s3://{s3.bucket}/p")  # client-side, from the ledger's resume point
    assert again.returncode == 0, again.stderr
    rows = clickhouse.rows(f"SELECT data_file_key, line_number, line FROM {clickhouse.raw_db}.export_lines")
    assert sorted(rows) == expected_lines(w.data_keys, lines)


@pytest.mark.parametrize("group", [1, 3])
def test_clickhouse_failing_mid_read_is_retried_and_every_line_lands_once(s3, clickhouse, monkeypatch, caplog, group):
    """A read whose answer was lost after ClickHouse took the rows, one refused twice, a lost count
    and a lost `loaded` mark: each is undone (the file's, or the group's, rows removed) and done
    again after a wait; nothing is doubled or lost, and the S3 secret appears in no message.
    With group 1 each file is its own statement; with 3 the three are one."""
    from conftest import outage_store
    from dynamodb_cdc import connection, load_export
    from dynamodb_cdc.load_export import LoadOptions, load_exports
    from dynamodb_cdc.s3export import s3_client

    monkeypatch.setattr(connection, "WRITE_BACKOFF", 0.01)
    monkeypatch.setattr(load_export, "GROUP_FILES", group)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    lines = [dumps_line({"Item": {"id": {"S": f"u{i}"}}}) for i in range(30)]
    lines[4] = b"not json"
    w = write_full_export(s3, s3.bucket, ARN, [], prefix="p", export_time=T0, files=3, lines=lines)
    reads, counts, marks = [], [], []

    def plan(n, method, sql):
        if sql.startswith("INSERT") and "s3(" in sql:
            reads.append(n)
            # the 1st read loses its answer; then (the 2nd file's, or the group's) read is refused twice
            return ({1: "after", 3: "before", 4: "before"} if group == 1 else {1: "after", 2: "before", 3: "before"}
                    ).get(len(reads))
        if method == "query" and "count()" in sql and "export_lines" in sql:
            counts.append(n)
            return "before" if len(counts) == (3 if group == 1 else 1) else None
        if sql.startswith("INSERT") and "export_files" in sql and "'loaded'" in sql:
            marks.append(n)
            return "after" if len(marks) == 1 else None
        return None

    with clickhouse.client() as client:
        store = outage_store(clickhouse, client, plan)
        result = load_exports(s3_client(), store, f"s3://{s3.bucket}/p",
                              LoadOptions(server_side=True, parallel_files=1, progress=False))
        assert result.ok, result.errors
        assert [f[2] for f in store.client.failed] == (
            ["after", "after", "before", "before", "before"] if group == 1 else ["after", "before", "before", "before", "after"])
    assert (result.exports[0].files_loaded, result.exports[0].lines_landed, result.exports[0].lines_quarantined) == (3, 29, 1)
    rows = lines_of(clickhouse, clickhouse.raw_db)
    assert len(rows) == 29 and len({(r[0], r[1]) for r in rows}) == 29  # nothing doubled
    assert sorted(r[2].encode() for r in rows) == sorted(line for i, line in enumerate(lines) if i != 4)  # nothing lost
    assert clickhouse.rows(f"SELECT count() FROM {clickhouse.raw_db}.quarantine") == [(1,)]
    ledger = clickhouse.rows(f"SELECT data_file_key, status, lines_landed FROM {clickhouse.raw_db}.export_files FINAL")
    assert sorted(ledger) == sorted((k, "loaded", 10 - (i == 1)) for i, k in enumerate(w.data_keys))
    retries = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) == 5 and any("while reading s3://" in m for m in retries)
    assert not any(SECRET in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("group", [1, 2])
def test_clickhouse_gone_for_good_mid_read_stops_clearly_and_a_rerun_completes(s3, clickhouse, monkeypatch, group):
    from conftest import outage_store
    from dynamodb_cdc import connection, load_export
    from dynamodb_cdc.connection import ClickHouseUnavailableError
    from dynamodb_cdc.load_export import LoadOptions, load_exports
    from dynamodb_cdc.s3export import s3_client

    monkeypatch.setattr(connection, "WRITE_BACKOFF", 0.01)
    monkeypatch.setattr(load_export, "GROUP_FILES", group)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    lines = [dumps_line({"Item": {"id": {"S": f"u{i}"}}}) for i in range(40)]
    w = write_full_export(s3, s3.bucket, ARN, [], prefix="p", export_time=T0, files=4, lines=lines)
    reads = []

    def plan(n, method, sql):
        """The first statement lands; every read of the second takes its rows and loses the answer."""
        if sql.startswith("INSERT") and "s3(" in sql:
            reads.append(n)
            return "after" if len(reads) > 1 else None
        return None

    with clickhouse.client() as client:
        store = outage_store(clickhouse, client, plan)
        with pytest.raises(ClickHouseUnavailableError) as err:
            load_exports(s3_client(), store, f"s3://{s3.bucket}/p",
                         LoadOptions(server_side=True, parallel_files=1, progress=False))
    landed, failing = w.data_keys[:group], w.data_keys[group:2 * group]
    directory = failing[0].rpartition("/")[0] + "/"
    read = failing[0] if group == 1 else directory + "{" + ",".join(k[len(directory):] for k in failing) + "}"
    assert str(err.value).startswith(f"ClickHouse stopped answering while reading s3://{s3.bucket}/{read}: ")
    assert "6 attempts" in str(err.value) and SECRET not in str(err.value)
    # The ledger claims nothing of the failing statement's files, whatever its last read left.
    ledger = dict(clickhouse.rows(f"SELECT data_file_key, status FROM {clickhouse.raw_db}.export_files FINAL"))
    assert ledger == {**{k: "loaded" for k in landed}, **{k: "loading" for k in failing}}

    result = load(clickhouse, f"s3://{s3.bucket}/p", "--server-side")
    assert result.returncode == 0, result.stderr
    rows = clickhouse.rows(f"SELECT data_file_key, line_number, line FROM {clickhouse.raw_db}.export_lines")
    assert sorted(rows) == expected_lines(w.data_keys, lines)
