"""load-export on the embedded engine: data files that fit in one batch are downloaded and MD5-checked
by the loader, then read several to a statement by the engine, --parallel-files at a time, which
decompresses them itself."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import time

import pytest

from conftest import Crash, Outage, crashing_store
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
    return result, reads_of(sql)


def reads_of(sql):
    """(files, the engine decompressing them, settings) of each statement that read data files: a
    group's names its files' keys in a transform(_file, ...); a file loaded alone (decompressed by
    the loader) is read through /proc/self/fd."""
    reads = []
    for s, settings in sql:
        group = re.search(r"transform\(_file, \[([^\]]*)\]", s)
        if s.startswith("INSERT") and group:
            reads.append((group.group(1).count(",") + 1, "'gzip'" in s, settings))
        elif s.startswith("INSERT") and "/proc/self/fd/" in s:
            reads.append((s.count("/proc/self/fd/"), "'gzip'" in s, settings))
    return reads


@pytest.mark.parametrize("parallel", [1, 2])
@pytest.mark.parametrize("limit", ["none", "lines", "files"])
def test_files_that_fit_a_batch_are_read_several_to_a_statement(s3, clickhouse, monkeypatch, tmp_path, parallel, limit):
    """Four data files of ~12 MB (over the engine's 10 MiB chunk for parallel parsing): one
    statement reads the four gzip files, --parallel-files at a time; with at most 12,000 lines to a
    statement, two statements of two; with at most three files, one of three and the last file
    alone (the engine reading the loader's decompressed copy); with --parallel-files 1, each file
    alone.  Every line keeps its file and
    number, a bad line is quarantined under its own, each file's ledger row has its line counts and
    its stored size, and no link to the files is left in --tmp-dir."""
    from dynamodb_cdc import load_export

    if limit == "lines":
        monkeypatch.setattr(load_export, "GROUP_LINES", 12_000)
    if limit == "files":
        monkeypatch.setattr(load_export, "GROUP_FILES", 3)
    n = 24_000
    items = [{"id": {"S": f"u{i:05d}"}, "pad": {"S": f"{i:05d}" * 400}} for i in range(n)]
    lines = [dumps_line({"Item": item}) for item in items]
    lines[4_001] = b"{not json"  # line 1,001 of the second file
    w = write_full_export(s3, s3.bucket, ARN, [], prefix="g", export_time=None, files=4, lines=lines)
    staging = tmp_path / "staging"
    staging.mkdir()
    result, reads = load(s3, clickhouse, f"s3://{s3.bucket}/g", parallel_files=parallel, tmp_dir=str(staging))
    assert result.ok, result.errors

    grouped = [(files, gz) for files, gz, _ in reads if files > 1]
    alone = [(files, gz) for files, gz, _ in reads if files == 1]  # decompressed by the loader
    if parallel == 1:  # one file at a time: each on its own
        assert grouped == [] and alone == [(1, False)] * 4
    else:
        assert grouped == {"none": [(4, True)], "lines": [(2, True), (2, True)], "files": [(3, True)]}[limit]
        assert alone == {"none": [], "lines": [], "files": [(1, False)]}[limit]
    assert all(s["max_threads"] == parallel and s["parallel_view_processing"] == 1 for f, _, s in reads if f > 1)
    assert os.listdir(staging) == []
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


def test_a_file_replaced_by_one_of_the_same_line_count_is_refused_for_its_md5_before_the_statement(s3, clickhouse):
    """A data file whose bytes no longer match the manifest's md5Checksum, but whose line count still
    does (another export's file copied over it, say): only the MD5 tells it apart.  The copy the
    engine would read in a statement is checked before it; the file is refused by name, nothing of
    it lands, and the other file of the group lands."""
    lines = [dumps_line({"Item": {"id": {"S": f"u{i}"}}}) for i in range(10)]
    w = write_full_export(s3, s3.bucket, ARN, [], prefix="g", export_time=None, files=2, lines=lines)
    bad, good = w.data_keys
    impostor = [dumps_line({"Item": {"id": {"S": f"other{i}"}}}) for i in range(5)]  # 5 lines, as itemCount says
    s3.put_object(Bucket=s3.bucket, Key=bad, Body=gzip.compress(b"\n".join(impostor) + b"\n"))

    result, reads = load(s3, clickhouse, f"s3://{s3.bucket}/g")
    errors = result.exports[0].errors
    assert len(errors) == 1 and f"{bad}: MD5" in errors[0] and "does not match md5Checksum" in errors[0], errors
    rows = clickhouse.rows(f"SELECT data_file_key, line_number, line FROM {clickhouse.raw_db}.export_lines")
    assert sorted(rows) == [r for r in lines_written(w.data_keys, lines) if r[0] == good]
    assert not any("other" in r[2] for r in rows)
    assert dict(clickhouse.rows(f"SELECT data_file_key, status FROM {clickhouse.raw_db}.export_files FINAL")) == {
        bad: "failed", good: "loaded"}


def test_a_statement_cut_off_is_undone_and_read_again(s3, clickhouse, monkeypatch):
    """The engine took a statement's rows and the answer was lost, then the next one was refused
    twice: each time both files' rows are removed and the statement is read again; every line
    lands once."""
    from dynamodb_cdc import connection, load_export

    monkeypatch.setattr(connection, "WRITE_BACKOFF", 0.01)
    monkeypatch.setattr(load_export, "GROUP_FILES", 2)
    lines = [dumps_line({"Item": {"id": {"S": f"u{i}"}}}) for i in range(40)]
    w = write_full_export(s3, s3.bucket, ARN, [], prefix="g", export_time=None, files=4, lines=lines)
    reads = []

    def plan(n, method, sql):
        if sql.startswith("INSERT") and "transform(_file" in sql:
            reads.append(n)
            return {1: "after", 3: "before", 4: "before"}.get(len(reads))
        return None

    result, statements = load(s3, clickhouse, f"s3://{s3.bucket}/g", plan=plan)
    assert result.ok, result.errors
    assert len(statements) == 5 and {files for files, _, _ in statements} == {2}  # 2 statements, 3 of them redone
    rows = clickhouse.rows(f"SELECT data_file_key, line_number, line FROM {clickhouse.raw_db}.export_lines")
    assert sorted(rows) == lines_written(w.data_keys, lines)


def test_link_directories_left_by_killed_loaders_are_removed(s3, clickhouse, tmp_path):
    """A loader killed mid-statement leaves its directory of links (the files themselves are
    unlinked temporary files, freed with it).  The next load removes those of processes that no
    longer run, once 10 minutes old; a running loader's, a young one and other files stay."""
    from dynamodb_cdc.store import LINKS_PREFIX

    gone = subprocess.Popen(["true"])
    gone.wait()
    staging = tmp_path / "staging"
    staging.mkdir()
    old = time.time() - 3600
    dirs = {"dead_old": f"{LINKS_PREFIX}{gone.pid}-a", "dead_young": f"{LINKS_PREFIX}{gone.pid}-b",
            "alive_old": f"{LINKS_PREFIX}{os.getpid()}-c", "other": "dynamodb-cdc-data-x"}
    for name in dirs.values():
        (staging / name).mkdir()
        os.symlink(f"/proc/{gone.pid}/fd/7", staging / name / "0")
    for key in ("dead_old", "alive_old", "other"):
        os.utime(staging / dirs[key], (old, old))
    lines = [dumps_line({"Item": {"id": {"S": f"u{i}"}}}) for i in range(4)]
    write_full_export(s3, s3.bucket, ARN, [], prefix="g", export_time=None, files=2, lines=lines)
    result, reads = load(s3, clickhouse, f"s3://{s3.bucket}/g", tmp_dir=str(staging))
    assert result.ok and [files for files, _, _ in reads] == [2], (result.errors, reads)
    assert sorted(os.listdir(staging)) == sorted(dirs[k] for k in ("dead_young", "alive_old", "other"))


def test_a_tmp_dir_the_engine_cannot_name_as_it_is_loads_files_one_at_a_time(s3, clickhouse, tmp_path):
    """The engine reads a group through a pattern in --tmp-dir; a directory whose path holds a
    pattern character or a quote cannot stand in one, so each file is loaded on its own instead."""
    staging = tmp_path / "stag{ing}'s"
    staging.mkdir()
    lines = [dumps_line({"Item": {"id": {"S": f"u{i}"}}}) for i in range(4)]
    w = write_full_export(s3, s3.bucket, ARN, [], prefix="g", export_time=None, files=2, lines=lines)
    result, reads = load(s3, clickhouse, f"s3://{s3.bucket}/g", tmp_dir=str(staging))
    assert result.ok, result.errors
    assert [(files, gz) for files, gz, _ in reads] == [(1, False), (1, False)]
    rows = clickhouse.rows(f"SELECT data_file_key, line_number, line FROM {clickhouse.raw_db}.export_lines")
    assert sorted(rows) == lines_written(w.data_keys, lines)


def test_a_file_of_several_batches_is_read_in_runs_checkpointed_after_each(s3, clickhouse, monkeypatch):
    """A data file of 4,500 lines in batches of 1,000, at most 2,000 lines to a statement: the
    engine reads batches 1-2 together, then 3-4, then the last alone, and the ledger records lines
    2,000 and 4,000 committed before the file is loaded.  Every line keeps its number and a bad
    line in the second run is quarantined under its own."""
    from dynamodb_cdc import load_export

    monkeypatch.setattr(load_export, "GROUP_LINES", 2_000)
    lines = [dumps_line({"Item": {"id": {"S": f"u{i:05d}"}}}) for i in range(4_500)]
    lines[2_500] = b"{not json"  # line 2,501
    w = write_full_export(s3, s3.bucket, ARN, [], prefix="g", export_time=None, files=1, lines=lines)
    checkpoints = []

    def plan(n, method, sql):  # the ledger rows written: (status, lines_committed)
        if sql.startswith("INSERT") and "export_files" in sql:
            committed, *_, status = re.search(r"(\d+), (\d+), (\d+), (\d+), '(loading|loaded)'", sql).groups()
            checkpoints.append((status, int(committed)))
        return None

    result, reads = load(s3, clickhouse, f"s3://{s3.bucket}/g", plan=plan, batch_rows=1_000)
    assert result.ok, result.errors
    assert [(files, gz) for files, gz, _ in reads] == [(2, False), (2, False), (1, False)]
    rows = clickhouse.rows(f"SELECT data_file_key, line_number, line FROM {clickhouse.raw_db}.export_lines")
    assert sorted(rows) == [r for r in lines_written(w.data_keys, lines) if r[2] != "{not json"]
    assert clickhouse.rows(f"SELECT line_number, payload FROM {clickhouse.raw_db}.quarantine") == [(2_501, "{not json")]
    assert checkpoints == [("loading", 0), ("loading", 2_000), ("loading", 4_000), ("loaded", 4_500)]


@pytest.mark.parametrize("resume_rows", [1_000, 500, 700, 1_500],
                         ids=["same-batches", "other-batches", "inside-a-batch", "inside-a-longer-batch"])
def test_a_run_cut_off_resumes_after_the_last_checkpoint(s3, clickhouse, monkeypatch, resume_rows):
    """The process dies after the second run of batches landed but before its checkpoint: the
    rerun removes that run's rows and resumes after line 2,000, also with other batch sizes,
    where the resume point falls inside a batch (that batch is read alone from the line after)."""
    from dynamodb_cdc import load_export
    from dynamodb_cdc.load_export import LoadOptions, load_exports
    from dynamodb_cdc.s3export import s3_client

    monkeypatch.setattr(load_export, "GROUP_LINES", 2_000)
    lines = [dumps_line({"Item": {"id": {"S": f"u{i:05d}"}}}) for i in range(4_500)]
    w = write_full_export(s3, s3.bucket, ARN, [], prefix="g", export_time=None, files=1, lines=lines)

    with clickhouse.client() as client:
        with pytest.raises(Crash):  # as the 2nd run is inserted: its rows are in ClickHouse, its checkpoint is not
            load_exports(s3_client(), crashing_store(client, clickhouse.raw_db, "insert_segments", 2), f"s3://{s3.bucket}/g",
                         LoadOptions(batch_rows=1_000, progress=False))
    assert clickhouse.scalar(f"SELECT count() FROM {clickhouse.raw_db}.export_lines") == 4_000

    result, reads = load(s3, clickhouse, f"s3://{s3.bucket}/g", batch_rows=resume_rows)
    assert result.ok, result.errors
    files_read = [files for files, _, _ in reads]
    # resuming after line 2,000 with batches of 1,000: 2 together, then 1; of 500: 4, then 1; of 700:
    # 1,401-2,100 is cut (read alone from line 2,001), then 2, then 2; of 1,500: 1,501-3,000 is cut, then 1
    assert files_read == {1_000: [2, 1], 500: [4, 1], 700: [1, 2, 2], 1_500: [1, 1]}[resume_rows]
    rows = clickhouse.rows(f"SELECT data_file_key, line_number, line FROM {clickhouse.raw_db}.export_lines")
    assert sorted(rows) == lines_written(w.data_keys, lines)


def test_where_no_link_can_be_made_files_load_one_at_a_time(s3, clickhouse, monkeypatch, caplog):
    """A --tmp-dir where links cannot be made (or /proc is missing): the loader says so once, and
    each file and batch is read on its own; every line lands."""
    from dynamodb_cdc import store as store_module

    def no_links(*args):
        raise PermissionError("links are not allowed here")

    store_module._links_work.cache_clear()
    monkeypatch.setattr(store_module.os, "symlink", no_links)
    lines = [dumps_line({"Item": {"id": {"S": f"u{i}"}}}) for i in range(30)]
    w = write_full_export(s3, s3.bucket, ARN, [], prefix="g", export_time=None, files=2, lines=lines)
    try:
        with caplog.at_level("INFO"):
            result, reads = load(s3, clickhouse, f"s3://{s3.bucket}/g", batch_rows=5)
    finally:
        store_module._links_work.cache_clear()
    assert result.ok, result.errors
    assert [files for files, _, _ in reads] == [1] * 6  # 3 batches of each file, one at a time
    assert any("no link to an open file can be made" in r.getMessage() for r in caplog.records)
    rows = clickhouse.rows(f"SELECT data_file_key, line_number, line FROM {clickhouse.raw_db}.export_lines")
    assert sorted(rows) == lines_written(w.data_keys, lines)


def test_batches_the_engine_will_not_read_together_are_read_one_at_a_time(s3, clickhouse, monkeypatch, caplog):
    """The statement reading a run of batches fails for the engine's sake (not ClickHouse being
    away): what it left is removed and the run's batches are read one at a time; every line once."""
    from dynamodb_cdc.store import ServerReadError, Store

    real = Store._read_linked
    refused = []

    def refusing(self, summary, files, streams, tmp_dir, *, compressed):
        if not compressed and not refused:
            refused.append(len(files))
            real(self, summary, files[:1], streams, tmp_dir, compressed=compressed)  # some rows land first
            raise ServerReadError("Code: 1001. the engine would not follow the link")
        return real(self, summary, files, streams, tmp_dir, compressed=compressed)

    monkeypatch.setattr(Store, "_read_linked", refusing)
    lines = [dumps_line({"Item": {"id": {"S": f"u{i}"}}}) for i in range(30)]
    w = write_full_export(s3, s3.bucket, ARN, [], prefix="g", export_time=None, files=1, lines=lines)
    result, reads = load(s3, clickhouse, f"s3://{s3.bucket}/g", batch_rows=10)
    assert result.ok, result.errors
    assert refused == [3]
    assert any("could not read lines 1-30 together" in r.getMessage() for r in caplog.records)
    rows = clickhouse.rows(f"SELECT data_file_key, line_number, line FROM {clickhouse.raw_db}.export_lines")
    assert sorted(rows) == lines_written(w.data_keys, lines)


def test_where_links_lead_nowhere_files_load_one_at_a_time(monkeypatch, tmp_path, caplog):
    """No /proc (the link is made but leads nowhere): the engine is not given links."""
    from dynamodb_cdc import store as store_module

    store_module._links_work.cache_clear()
    monkeypatch.setattr(store_module.os, "getpid", lambda: 999_999_999)  # /proc/999999999/fd does not exist
    try:
        with caplog.at_level("INFO"):
            assert store_module._links_work(str(tmp_path)) is False
    finally:
        store_module._links_work.cache_clear()
    assert any("the link leads nowhere" in r.getMessage() for r in caplog.records)
    assert os.listdir(tmp_path) == []
