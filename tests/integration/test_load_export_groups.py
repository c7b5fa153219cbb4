"""load-export on the embedded engine: data files that fit in one batch are downloaded and MD5-checked
by the loader, then read --parallel-files to a statement by the engine, which decompresses them itself."""

from __future__ import annotations

import gzip
import json
import os

import pytest

from conftest import Outage
from dynamodb_cdc.manifest import md5_base64
from dynamodb_cdc.testing.exports import dumps_line, write_full_export

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("CLICKHOUSE_URL")), reason="a ClickHouse server cannot read this process's files")

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/groups"


def lines_written(keys, lines):
    """(key, line number, line) of every line write_full_export wrote (dealt round-robin)."""
    return sorted((key, n, line.decode()) for i, key in enumerate(keys) for n, line in enumerate(lines[i::len(keys)], 1))


def rewrite_manifest(s3, folder: str, change) -> None:
    """Apply change(doc) to each manifest-files.json line, and fix the manifest's own MD5."""
    key = folder + "manifest-files.json"
    docs = [json.loads(line) for line in s3.get_object(Bucket=s3.bucket, Key=key)["Body"].read().splitlines()]
    for doc in docs:
        change(doc)
    body = ("\n".join(json.dumps(d) for d in docs) + "\n").encode()
    s3.put_object(Bucket=s3.bucket, Key=key, Body=body)
    s3.put_object(Bucket=s3.bucket, Key=folder + "manifest-files.md5", Body=md5_base64(body).encode())


def load(s3, clickhouse, uri: str, plan=None, **options):
    """load_exports in this process through a client that records every statement (and fails the
    ones ``plan`` says to, as conftest.Outage does)."""
    from dynamodb_cdc.load_export import LoadOptions, load_exports
    from dynamodb_cdc.s3export import s3_client
    from dynamodb_cdc.store import Store

    with clickhouse.client() as c:
        client = Outage(c, plan or (lambda *a: None))
        sql = []
        client.command = lambda s, *a, _c=client.command, **k: (sql.append((s, k.get("settings"))), _c(s, *a, **k))[1]
        store = Store(client, clickhouse.raw_db)
        store.embedded = clickhouse.embedded
        result = load_exports(s3_client(), store, uri, LoadOptions(progress=False, **options))
    reads = [(s.count("/proc/self/fd/"), "'gzip'" in s, settings) for s, settings in sql
             if s.startswith("INSERT") and "/proc/self/fd/" in s]
    return result, reads


@pytest.mark.parametrize("parallel", [1, 2, 3])
def test_files_that_fit_a_batch_are_read_parallel_files_to_a_statement(s3, clickhouse, parallel):
    """Four data files of ~12 MB (over the engine's 10 MiB chunk for parallel parsing): with
    --parallel-files 2, two statements of two gzip files each; with 3, one of three and the last
    file alone (the engine reading the loader's decompressed copy); with 1, every file alone.
    Every line keeps its file and number, a bad line is quarantined under its own, and each file's
    ledger row has its line counts and its stored size."""
    n = 24_000
    items = [{"id": {"S": f"u{i:05d}"}, "pad": {"S": f"{i:05d}" * 400}} for i in range(n)]
    lines = [dumps_line({"Item": item}) for item in items]
    lines[4_001] = b"{not json"  # line 1,001 of the second file
    w = write_full_export(s3, s3.bucket, ARN, [], prefix="g", export_time=None, files=4, lines=lines)
    result, reads = load(s3, clickhouse, f"s3://{s3.bucket}/g", parallel_files=parallel)
    assert result.ok, result.errors

    grouped = [(files, gz) for files, gz, _ in reads if files > 1]
    assert grouped == {1: [], 2: [(2, True), (2, True)], 3: [(3, True)]}[parallel]
    alone = [(files, gz) for files, gz, _ in reads if files == 1]
    assert alone == {1: [(1, False)] * 4, 2: [], 3: [(1, False)]}[parallel]  # decompressed by the loader
    assert all(s["max_threads"] == parallel and s["parallel_view_processing"] == 1 for f, _, s in reads if f > 1)
    rows = clickhouse.rows(f"SELECT data_file_key, line_number, line FROM {clickhouse.raw_db}.export_lines")
    assert sorted(rows) == [r for r in lines_written(w.data_keys, lines) if r[2] != "{not json"]
    assert clickhouse.rows(f"SELECT location, line_number, payload FROM {clickhouse.raw_db}.quarantine") == [
        (w.data_keys[1], 1_001, "{not json")]
    sizes = {k: s3.head_object(Bucket=s3.bucket, Key=k)["ContentLength"] for k in w.data_keys}
    ledger = clickhouse.rows(f"SELECT data_file_key, status, lines_landed, lines_quarantined, compressed_bytes "
                             f"FROM {clickhouse.raw_db}.export_files FINAL")
    assert sorted(ledger) == sorted((k, "loaded", 6_000 - (i == 1), int(i == 1), sizes[k])
                                    for i, k in enumerate(w.data_keys))


@pytest.mark.parametrize("damage", ["not gzip", "one line short"])
def test_a_bad_file_in_a_statement_is_loaded_alone_and_refused_and_the_other_lands(s3, clickhouse, damage):
    """Its MD5 matching the manifest, so only reading it shows the damage: a file the engine
    cannot decompress fails the statement, whose rows are removed; a file one line short of
    itemCount has its rows removed.  Either is then loaded alone (decompressed by the loader),
    refused with its own message; the other file of the statement lands."""
    lines = [dumps_line({"Item": {"id": {"S": f"u{i}"}}}) for i in range(10)]
    w = write_full_export(s3, s3.bucket, ARN, [], prefix="g", export_time=None, files=2, lines=lines)
    bad, good = w.data_keys
    body = b"this is not gzip\n" if damage == "not gzip" else gzip.compress(b"\n".join(lines[0:8:2]) + b"\n")
    s3.put_object(Bucket=s3.bucket, Key=bad, Body=body)
    rewrite_manifest(s3, w.folder, lambda d: d.update(md5Checksum=md5_base64(body)) if d["dataFileS3Key"] == bad else None)

    result, reads = load(s3, clickhouse, f"s3://{s3.bucket}/g")
    # The failed statement's good file is then loaded alone; the bad one is refused before the engine.
    assert [(files, gz) for files, gz, _ in reads] == [(2, True)] + [(1, False)] * (damage == "not gzip")
    errors = result.exports[0].errors
    message = "is not a valid gzip file" if damage == "not gzip" else "has 4 lines but the manifest says itemCount 5"
    assert len(errors) == 1 and f"{bad} {message}" in errors[0], errors
    rows = clickhouse.rows(f"SELECT data_file_key, line_number, line FROM {clickhouse.raw_db}.export_lines")
    assert sorted(rows) == [r for r in lines_written(w.data_keys, lines) if r[0] == good]
    assert dict(clickhouse.rows(f"SELECT data_file_key, status FROM {clickhouse.raw_db}.export_files FINAL")) == {
        bad: "failed", good: "loaded"}


def test_a_statement_cut_off_is_undone_and_read_again(s3, clickhouse, monkeypatch):
    """The engine took a statement's rows and the answer was lost, then the next one was refused
    twice: each time both files' rows are removed and the statement is read again; every line
    lands once."""
    from dynamodb_cdc import connection

    monkeypatch.setattr(connection, "WRITE_BACKOFF", 0.01)
    lines = [dumps_line({"Item": {"id": {"S": f"u{i}"}}}) for i in range(40)]
    w = write_full_export(s3, s3.bucket, ARN, [], prefix="g", export_time=None, files=4, lines=lines)
    reads = []

    def plan(n, method, sql):
        if sql.startswith("INSERT") and "/proc/self/fd/" in sql:
            reads.append(n)
            return {1: "after", 3: "before", 4: "before"}.get(len(reads))
        return None

    result, statements = load(s3, clickhouse, f"s3://{s3.bucket}/g", plan=plan)
    assert result.ok, result.errors
    assert len(statements) == 5 and {files for files, _, _ in statements} == {2}  # 2 statements, 3 of them redone
    rows = clickhouse.rows(f"SELECT data_file_key, line_number, line FROM {clickhouse.raw_db}.export_lines")
    assert sorted(rows) == lines_written(w.data_keys, lines)
