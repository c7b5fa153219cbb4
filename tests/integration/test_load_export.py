"""load-export against a real moto S3 server and a real ClickHouse (chDB, or CLICKHOUSE_URL)."""

from __future__ import annotations

import gzip
import json
import re
from datetime import datetime, timezone

import pytest

from conftest import SAMPLES, Crash, crashing_store, outage_store
from dynamodb_cdc.manifest import md5_base64
from dynamodb_cdc.testing.exports import dumps_line, write_full_export

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/users"
T0 = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)


def items(n: int, start: int = 0) -> list[dict]:
    return [{"id": {"S": f"u{i:04d}"}, "age": {"N": str(i)}, "name": {"S": f"name é {i}"}} for i in range(start, start + n)]


def line_of(item: dict) -> bytes:
    return dumps_line({"Item": item})


def landed(ch, table="export_lines"):
    return ch.rows(f"SELECT data_file_key, line_number, line FROM {ch.raw_db}.{table} ORDER BY data_file_key, line_number")


def ledger(ch):
    return {
        r[0]: r[1:]
        for r in ch.rows(
            f"SELECT data_file_key, status, lines_landed, lines_quarantined, manifest_item_count, error "
            f"FROM {ch.raw_db}.export_files FINAL"
        )
    }


def replace_data_file(s3, bucket, key, body, *, fix_manifest_md5: bool, manifest_key: str):
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    if fix_manifest_md5:
        manifest = s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read().decode()
        lines = []
        for line in manifest.splitlines():
            doc = json.loads(line)
            if doc["dataFileS3Key"] == key:
                doc["md5Checksum"] = md5_base64(body)
            lines.append(json.dumps(doc))
        new = ("\n".join(lines) + "\n").encode()
        s3.put_object(Bucket=bucket, Key=manifest_key, Body=new)
        s3.put_object(Bucket=bucket, Key=manifest_key[:-5] + ".md5", Body=md5_base64(new).encode())


def test_full_export_lands_every_line_exactly(s3, clickhouse):
    data = items(25)
    w = write_full_export(s3, s3.bucket, ARN, data, prefix="exports/users", export_time=T0, files=3)
    result = clickhouse.cli("load-export", f"s3://{s3.bucket}/exports/users", check=True)
    assert "3 files loaded" in result.stderr

    rows = clickhouse.rows(
        f"SELECT table_name, table_arn, export_arn, export_type, export_time, data_file_key, line_number, line "
        f"FROM {clickhouse.raw_db}.export_lines"
    )
    assert len(rows) == 25
    assert {r[7] for r in rows} == {line_of(i).decode() for i in data}  # raw lines, byte for byte
    assert {(r[0], r[1], r[2], r[3]) for r in rows} == {("users", ARN, w.export_arn, "FULL_EXPORT")}
    assert {r[4].replace(tzinfo=timezone.utc) for r in rows} == {T0}
    assert {r[5] for r in rows} == set(w.data_keys)
    for key in w.data_keys:  # line numbers 1..n per file, no gaps
        numbers = sorted(r[6] for r in rows if r[5] == key)
        assert numbers == list(range(1, len(numbers) + 1))

    book = ledger(clickhouse)
    assert set(book) == set(w.data_keys)
    assert all(v[0] == "loaded" and v[1] == v[3] and v[2] == 0 for v in book.values())
    assert sum(v[1] for v in book.values()) == 25
    assert clickhouse.rows(f"SELECT status, data_files FROM {clickhouse.raw_db}.exports FINAL") == [("loaded", 3)]


def test_rerun_is_a_no_op(s3, clickhouse):
    write_full_export(s3, s3.bucket, ARN, items(10), prefix="p", export_time=T0, files=2)
    clickhouse.cli("load-export", f"s3://{s3.bucket}/p", check=True)
    before = clickhouse.rows(f"SELECT line_number, line, _ingested_at FROM {clickhouse.raw_db}.export_lines ORDER BY ALL")
    again = clickhouse.cli("load-export", f"s3://{s3.bucket}/p", check=True)
    assert "all 2 data files already loaded" in again.stderr
    after = clickhouse.rows(f"SELECT line_number, line, _ingested_at FROM {clickhouse.raw_db}.export_lines ORDER BY ALL")
    assert after == before and len(after) == 10


def test_a_rerun_does_not_read_the_manifests_of_exports_already_loaded(s3, clickhouse):
    """A rerun on a prefix read every manifest of every export ever written there (4 GetObject each):
    an hourly chain of incremental exports made each no-op cron run longer without bound."""
    from dynamodb_cdc.load_export import LoadOptions, load_exports
    from dynamodb_cdc.s3export import s3_client
    from dynamodb_cdc.store import Store

    write_full_export(s3, s3.bucket, ARN, items(10), prefix="p", export_time=T0, files=2)
    write_full_export(s3, s3.bucket, ARN, items(12), prefix="p", export_time=T0.replace(hour=5), files=3)
    clickhouse.cli("load-export", f"s3://{s3.bucket}/p", check=True)
    client, calls = s3_client(), []
    client.meta.events.register("before-parameter-build.s3", lambda params, model, **_: calls.append(model.name))
    with clickhouse.client() as c:
        result = load_exports(client, Store(c, clickhouse.raw_db), f"s3://{s3.bucket}/p", LoadOptions(progress=False))
    assert result.ok
    assert sorted((e.files_loaded, e.files_skipped, e.lines_landed) for e in result.exports) == [(0, 2, 10), (0, 3, 12)]
    assert "GetObject" not in calls, calls  # only the listing, and each folder's summary looked for


def test_a_run_stopped_before_recording_the_export_loaded_is_completed_by_the_rerun(s3, clickhouse):
    """The process dies after its last data file is loaded but before the export's own row says
    so: the rerun has no file left to load, and records the export loaded (else the window checks
    and a full export's deletes in the changes model would never see it)."""
    from dynamodb_cdc.load_export import LoadOptions, load_exports
    from dynamodb_cdc.s3export import s3_client
    from dynamodb_cdc.store import LOADED, Store

    class DiesBeforeTheExportIsLoaded(Store):
        def record_export(self, summary, *, status, **kwargs):
            if status == LOADED:
                raise Crash()
            return super().record_export(summary, status=status, **kwargs)

    write_full_export(s3, s3.bucket, ARN, items(30), prefix="p", export_time=T0, files=3)
    with clickhouse.client() as client:
        with pytest.raises(Crash):
            load_exports(s3_client(), DiesBeforeTheExportIsLoaded(client, clickhouse.raw_db), f"s3://{s3.bucket}/p",
                         LoadOptions(progress=False))
    assert {v[0] for v in ledger(clickhouse).values()} == {"loaded"}
    assert clickhouse.rows(f"SELECT status FROM {clickhouse.raw_db}.exports FINAL") == [("loading",)]

    rerun = clickhouse.cli("load-export", f"s3://{s3.bucket}/p", check=True)
    assert "all 3 data files already loaded" in rerun.stderr and "recording the export loaded (it was loading)" in rerun.stderr
    assert clickhouse.rows(f"SELECT status, data_files FROM {clickhouse.raw_db}.exports FINAL") == [("loaded", 3)]
    status = clickhouse.cli("status", "--json", check=True)
    assert json.loads(status.stdout)["tables"][0]["exports"]["FULL_EXPORT"] == {"loaded": 1}
    again = clickhouse.cli("load-export", f"s3://{s3.bucket}/p", check=True)
    assert "recording the export loaded" not in again.stderr  # once recorded, a rerun writes nothing
    assert len(clickhouse.rows(f"SELECT * FROM {clickhouse.raw_db}.exports")) == 2


@pytest.mark.parametrize("resume_rows", ["10", "7"], ids=["same-batches", "other-batches"])
def test_interrupted_run_resumes_without_loss_or_doubles(s3, clickhouse, resume_rows):
    """The process dies after a batch is inserted but before the ledger records it.  The rerun
    resumes after the checkpoint, also with other batch sizes (inside one of its batches).  One
    batch to an insert (--parallel-files 1, as against a server; runs of batches read together:
    test_load_export_groups)."""
    from dynamodb_cdc.load_export import LoadOptions, load_exports
    from dynamodb_cdc.s3export import s3_client

    data = items(95)
    w = write_full_export(s3, s3.bucket, ARN, data, prefix="p", export_time=T0, files=2)

    with clickhouse.client() as client:
        with pytest.raises(Crash):  # as the 4th batch is inserted: its rows are in ClickHouse, its checkpoint is not
            load_exports(s3_client(), crashing_store(client, clickhouse.raw_db, "insert_segment", 4), f"s3://{s3.bucket}/p",
                         LoadOptions(batch_rows=10, parallel_files=1, progress=False))
    partial = clickhouse.scalar(f"SELECT count() FROM {clickhouse.raw_db}.export_lines")
    assert 0 < partial < 95
    book = ledger(clickhouse)
    assert any(v[0] == "loading" for v in book.values())

    resumed = clickhouse.cli("load-export", f"s3://{s3.bucket}/p", "--batch-rows", resume_rows, "--parallel-files", "1",
                             check=True)
    assert "resuming after line 30" in resumed.stderr  # 3 batches of 10 were checkpointed
    rows = landed(clickhouse)
    assert len(rows) == 95
    assert len({(r[0], r[1]) for r in rows}) == 95  # nothing doubled
    assert {r[2] for r in rows} == {line_of(i).decode() for i in data}  # nothing lost
    assert all(v[0] == "loaded" for v in ledger(clickhouse).values())
    assert set(ledger(clickhouse)) == set(w.data_keys)


def test_a_quarantined_line_past_the_checkpoint_is_not_quarantined_twice_on_resume(s3, clickhouse):
    """The batch cut off before its checkpoint held a refused line: it is in quarantine, as its
    neighbours are in export_lines.  The rerun removes both past the checkpoint before reading the
    batch again, so the line is quarantined once and the file loads (its counts add up)."""
    from dynamodb_cdc.load_export import LoadOptions, load_exports
    from dynamodb_cdc.s3export import s3_client

    data = items(50)
    lines = [line_of(i) for i in data]
    lines[34] = b"{not json"  # line 35, in the 4th batch of 10
    w = write_full_export(s3, s3.bucket, ARN, [], prefix="p", export_time=T0, files=1, lines=lines)

    with clickhouse.client() as client:
        with pytest.raises(Crash):  # as the 4th batch (lines 31-40) is inserted, before its checkpoint
            load_exports(s3_client(), crashing_store(client, clickhouse.raw_db, "insert_segment", 4), f"s3://{s3.bucket}/p",
                         LoadOptions(batch_rows=10, parallel_files=1, progress=False))
    assert clickhouse.rows(f"SELECT line_number FROM {clickhouse.raw_db}.quarantine") == [(35,)]

    resumed = clickhouse.cli("load-export", f"s3://{s3.bucket}/p", "--batch-rows", "10", "--parallel-files", "1",
                             check=True)
    assert "resuming after line 30" in resumed.stderr
    assert clickhouse.rows(f"SELECT line_number, payload FROM {clickhouse.raw_db}.quarantine") == [(35, "{not json")]
    assert [r[1] for r in landed(clickhouse)] == [n for n in range(1, 51) if n != 35]
    assert ledger(clickhouse)[w.data_keys[0]][:3] == ("loaded", 49, 1)


def test_bad_files_fail_clearly_and_the_good_ones_land(s3, clickhouse):
    w = write_full_export(s3, s3.bucket, ARN, items(40), prefix="p", export_time=T0, files=4)
    manifest = w.folder + "manifest-files.json"
    wrong_md5, truncated, not_gzip, missing = w.data_keys
    # 1. content replaced: its MD5 no longer matches the manifest
    s3.put_object(Bucket=s3.bucket, Key=wrong_md5, Body=gzip.compress(line_of(items(1, 900)[0]) + b"\n"))
    # 2. a gzip cut short, with a manifest MD5 that matches the cut bytes
    body = s3.get_object(Bucket=s3.bucket, Key=truncated)["Body"].read()
    replace_data_file(s3, s3.bucket, truncated, body[: len(body) // 2], fix_manifest_md5=True, manifest_key=manifest)
    # 3. not gzip at all
    replace_data_file(s3, s3.bucket, not_gzip, b"this is not gzip\n", fix_manifest_md5=True, manifest_key=manifest)
    # 4. listed in the manifest, absent from S3
    s3.delete_object(Bucket=s3.bucket, Key=missing)

    result = clickhouse.cli("load-export", f"s3://{s3.bucket}/p")
    assert result.returncode == 1
    err = result.stderr
    assert f"{wrong_md5}: MD5" in err and "does not match md5Checksum" in err
    assert f"{truncated} is a truncated gzip file" in err
    assert f"{not_gzip} is not a valid gzip file" in err
    assert f"{missing} is listed in the manifest but does not exist" in err
    assert "Traceback" not in err
    book = ledger(clickhouse)
    assert {k: v[0] for k, v in book.items()} == {k: "failed" for k in w.data_keys}
    assert clickhouse.scalar(f"SELECT count() FROM {clickhouse.raw_db}.export_lines") == 0
    assert clickhouse.rows(f"SELECT status FROM {clickhouse.raw_db}.exports FINAL") == [("failed",)]


def test_one_bad_file_does_not_stop_the_others(s3, clickhouse):
    w = write_full_export(s3, s3.bucket, ARN, items(30), prefix="p", export_time=T0, files=3)
    original = s3.get_object(Bucket=s3.bucket, Key=w.data_keys[1])["Body"].read()
    s3.delete_object(Bucket=s3.bucket, Key=w.data_keys[1])
    result = clickhouse.cli("load-export", f"s3://{s3.bucket}/p")
    assert result.returncode == 1
    book = ledger(clickhouse)
    assert [book[k][0] for k in w.data_keys] == ["loaded", "failed", "loaded"]
    assert clickhouse.scalar(f"SELECT count() FROM {clickhouse.raw_db}.export_lines") == 20
    # Put the file back: the rerun loads only that file, and the export is complete.
    s3.put_object(Bucket=s3.bucket, Key=w.data_keys[1], Body=original)
    rerun = clickhouse.cli("load-export", f"s3://{s3.bucket}/p", check=True)
    assert "1 of 3 data files to load" in rerun.stderr
    assert clickhouse.scalar(f"SELECT count() FROM {clickhouse.raw_db}.export_lines") == 30
    assert clickhouse.scalar(f"SELECT count(DISTINCT line) FROM {clickhouse.raw_db}.export_lines") == 30
    assert clickhouse.rows(f"SELECT status FROM {clickhouse.raw_db}.exports FINAL") == [("loaded",)]


def test_item_count_mismatch_fails_the_file(s3, clickhouse):
    w = write_full_export(s3, s3.bucket, ARN, items(5), prefix="p", export_time=T0)
    manifest = w.folder + "manifest-files.json"
    doc = json.loads(s3.get_object(Bucket=s3.bucket, Key=manifest)["Body"].read())
    doc["itemCount"] = 6
    new = (json.dumps(doc) + "\n").encode()
    s3.put_object(Bucket=s3.bucket, Key=manifest, Body=new)
    s3.put_object(Bucket=s3.bucket, Key=manifest[:-5] + ".md5", Body=md5_base64(new).encode())
    _set_summary_item_count(s3, w.folder, 6)  # (the manifests agree with each other; the data file does not)
    result = clickhouse.cli("load-export", f"s3://{s3.bucket}/p")
    assert result.returncode == 1
    assert "has 5 lines but the manifest says itemCount 6" in result.stderr
    assert clickhouse.scalar(f"SELECT count() FROM {clickhouse.raw_db}.export_lines") == 0


def _set_summary_item_count(s3, folder: str, count: int) -> None:
    key = folder + "manifest-summary.json"
    doc = json.loads(s3.get_object(Bucket=s3.bucket, Key=key)["Body"].read())
    doc["itemCount"] = count
    new = json.dumps(doc).encode()
    s3.put_object(Bucket=s3.bucket, Key=key, Body=new)
    s3.put_object(Bucket=s3.bucket, Key=key[:-5] + ".md5", Body=md5_base64(new).encode())


def test_a_full_export_whose_manifests_disagree_on_its_item_count_is_refused_whole(s3, clickhouse):
    """manifest-files.json listing fewer files than the export has (a copy that left one out, its .md5
    not copied) was loaded as the whole export, and its snapshot then deleted every item of the
    missing file from the current state.  The summary's itemCount is the check."""
    w = write_full_export(s3, s3.bucket, ARN, items(30), prefix="p", export_time=T0, files=3)
    manifest = w.folder + "manifest-files.json"
    lines = s3.get_object(Bucket=s3.bucket, Key=manifest)["Body"].read().decode().splitlines()
    s3.put_object(Bucket=s3.bucket, Key=manifest, Body=("\n".join(lines[:2]) + "\n").encode())
    s3.delete_object(Bucket=s3.bucket, Key=manifest[:-5] + ".md5")
    result = clickhouse.cli("load-export", f"s3://{s3.bucket}/p")
    assert result.returncode == 1, result.stderr
    assert (f"s3://{s3.bucket}/{manifest} lists 2 data files of 20 items in all, but s3://{s3.bucket}/"
            f"{w.folder}manifest-summary.json says itemCount 30") in result.stderr
    assert clickhouse.scalar(f"SELECT count() FROM {clickhouse.raw_db}.export_lines") == 0


def test_a_data_file_s3_refuses_to_give_is_failed_by_name_and_the_rest_lands(s3, clickhouse):
    """AccessDenied on one object (a KMS key the loader may not use) stopped the whole run with a bare
    ClientError: no file of the export landed, later exports were never tried, the export stayed
    'loading'.  S3 answers for the other objects; only this one GetObject is refused."""
    from botocore.exceptions import ClientError

    from dynamodb_cdc.load_export import LoadOptions, load_exports
    from dynamodb_cdc.s3export import s3_client
    from dynamodb_cdc.store import Store

    users = write_full_export(s3, s3.bucket, ARN, items(30), prefix="p", export_time=T0, files=3)
    orders = write_full_export(s3, s3.bucket, ARN.replace("users", "orders"), items(5), prefix="p",
                               export_time=T0.replace(hour=5), files=1)
    denied = users.data_keys[1]
    client = s3_client()

    def refuse(params, **_):
        if params.get("Key") == denied:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")

    client.meta.events.register("before-parameter-build.s3.GetObject", refuse)
    with clickhouse.client() as c:
        result = load_exports(client, Store(c, clickhouse.raw_db), f"s3://{s3.bucket}/p", LoadOptions(progress=False))
    assert not result.ok
    errors = [e for export in result.exports for e in export.errors]
    assert errors == [f"s3://{s3.bucket}/{denied} cannot be read from S3: AccessDenied: Access Denied"]
    book = ledger(clickhouse)
    assert [book[k][0] for k in users.data_keys] == ["loaded", "failed", "loaded"]
    assert book[orders.data_keys[0]][0] == "loaded"
    assert clickhouse.scalar(f"SELECT count() FROM {clickhouse.raw_db}.export_lines") == 25
    assert sorted(clickhouse.rows(f"SELECT table_name, status FROM {clickhouse.raw_db}.exports FINAL")) == [
        ("orders", "loaded"), ("users", "failed")]


def test_damaged_manifest_is_refused(s3, clickhouse):
    w = write_full_export(s3, s3.bucket, ARN, items(5), prefix="p", export_time=T0)
    s3.put_object(Bucket=s3.bucket, Key=w.folder + "manifest-files.md5", Body=b"AAAAAAAAAAAAAAAAAAAAAA==")
    result = clickhouse.cli("load-export", f"s3://{s3.bucket}/p")
    assert result.returncode == 1
    assert "manifest-files.json: MD5" in result.stderr and "damaged" in result.stderr


def test_invalid_lines_are_quarantined_and_the_lines_around_them_land(s3, clickhouse):
    good = items(4)
    lines = [
        line_of(good[0]),
        b'{"Item":{"id":{"S":"broken"}',  # truncated JSON
        line_of(good[1]),
        b'{"NotAnItem":{}}',
        b"",  # a blank line is not an item either
        b'{"Item":{"id":{"S":"\xff\xfe"}}}',  # invalid UTF-8
        line_of(good[2]),
        line_of(good[3]),
    ]
    w = write_full_export(s3, s3.bucket, ARN, [], prefix="p", export_time=T0, lines=lines)
    result = clickhouse.cli("load-export", f"s3://{s3.bucket}/p", check=True)
    assert "4 lines set aside in quarantine" in result.stderr and "line 2: line is not valid JSON" in result.stderr
    assert [r[1] for r in landed(clickhouse)] == [1, 3, 7, 8]
    assert {r[2] for r in landed(clickhouse)} == {line_of(i).decode() for i in good}
    q = clickhouse.rows(
        f"SELECT source, table_name, origin, location, line_number, error FROM {clickhouse.raw_db}.quarantine "
        f"ORDER BY line_number"
    )
    assert [(r[4], r[5]) for r in q] == [
        (2, "line is not valid JSON"),
        (4, 'full-export line has no "Item" object'),
        (5, "line is not valid JSON"),
        (6, "line is not valid UTF-8"),
    ]
    assert {(r[0], r[1], r[2], r[3]) for r in q} == {("export", "users", w.export_arn, w.data_keys[0])}
    assert ledger(clickhouse)[w.data_keys[0]][:3] == ("loaded", 4, 4)


def test_empty_export_and_null_prefix(s3, clickhouse):
    # An empty table still has data files, each gunzipping to zero bytes; s3Prefix is null.
    w = write_full_export(s3, s3.bucket, ARN, [], prefix=None, export_time=T0, files=2)
    assert w.folder.startswith("AWSDynamoDB/")
    summary = json.loads(s3.get_object(Bucket=s3.bucket, Key=w.folder + "manifest-summary.json")["Body"].read())
    assert summary["s3Prefix"] is None
    for key in w.data_keys:
        assert gzip.decompress(s3.get_object(Bucket=s3.bucket, Key=key)["Body"].read()) == b""
    result = clickhouse.cli("load-export", f"s3://{s3.bucket}", check=True)  # the bucket root
    assert "2 files loaded" in result.stderr
    assert clickhouse.scalar(f"SELECT count() FROM {clickhouse.raw_db}.export_lines") == 0
    assert {v[:2] for v in ledger(clickhouse).values()} == {("loaded", 0)}


def test_a_prefix_with_no_export_says_where_it_looked_and_names_an_export_still_in_progress(s3, clickhouse):
    """'No DynamoDB export found ... (looked for manifest-summary.json)' said neither where nor why: a
    parent of the export prefix, or an export AWS is still writing (manifest-summary.json comes last)."""
    write_full_export(s3, s3.bucket, ARN, items(2), prefix="exports/users", export_time=T0)
    parent = clickhouse.cli("load-export", f"s3://{s3.bucket}/exports")
    assert parent.returncode == 1
    assert (f"No DynamoDB export found at s3://{s3.bucket}/exports: no manifest-summary.json in it, nor in "
            f"s3://{s3.bucket}/exports/AWSDynamoDB/<export id>/") in parent.stderr, parent.stderr
    assert "has no manifest-summary.json yet" not in parent.stderr
    s3.put_object(Bucket=s3.bucket, Key="exports/orders/AWSDynamoDB/01700000000000-abcd1234/_started", Body=b"")
    s3.put_object(Bucket=s3.bucket, Key="exports/orders/AWSDynamoDB/01700000000000-abcd1234/data/x.json.gz", Body=b"")
    pending = clickhouse.cli("load-export", f"s3://{s3.bucket}/exports/orders")
    assert pending.returncode == 1
    assert (f"s3://{s3.bucket}/exports/orders/AWSDynamoDB/01700000000000-abcd1234/ has no manifest-summary.json yet: "
            "an export still in progress writes it last") in pending.stderr, pending.stderr


def test_one_export_folder_and_several_exports_oldest_first(s3, clickhouse):
    old = write_full_export(s3, s3.bucket, ARN, items(3), prefix="p", export_time=T0)
    new = write_full_export(s3, s3.bucket, ARN, items(4), prefix="p", export_time=T0.replace(year=2027))
    # One export folder: only that export.
    clickhouse.cli("load-export", new.uri, check=True)
    assert clickhouse.rows(f"SELECT DISTINCT export_arn FROM {clickhouse.raw_db}.export_lines") == [(new.export_arn,)]
    # Its manifest-summary.json, as a user may copy it from the console: the same export, already loaded.
    again = clickhouse.cli("load-export", f"s3://{s3.bucket}/{new.folder}manifest-summary.json", check=True)
    assert "already loaded" in again.stderr and new.export_arn in again.stderr, again.stderr
    # The prefix: every export; the one already loaded is skipped.
    result = clickhouse.cli("load-export", f"s3://{s3.bucket}/p/AWSDynamoDB/", check=True)
    assert result.stderr.index(old.export_arn) < result.stderr.index(new.export_arn)
    assert clickhouse.scalar(f"SELECT count() FROM {clickhouse.raw_db}.export_lines") == 7


def test_ion_export_is_refused(s3, clickhouse):
    w = write_full_export(s3, s3.bucket, ARN, items(2), prefix="p", export_time=T0)
    key = w.folder + "manifest-summary.json"
    doc = json.loads(s3.get_object(Bucket=s3.bucket, Key=key)["Body"].read())
    doc["outputFormat"] = "ION"
    body = json.dumps(doc).encode()
    s3.put_object(Bucket=s3.bucket, Key=key, Body=body)
    s3.put_object(Bucket=s3.bucket, Key=w.folder + "manifest-summary.md5", Body=md5_base64(body).encode())
    result = clickhouse.cli("load-export", f"s3://{s3.bucket}/p")
    assert result.returncode == 1
    assert "ION format; only DYNAMODB_JSON exports are supported" in result.stderr


def test_real_aws_manifests_are_read_and_a_missing_data_file_is_reported(s3, clickhouse):
    """The captured manifests of a real export, uploaded byte for byte with their real .md5 values."""
    folder = "AWSDynamoDB/01668227450456-b6733290/"
    s3.put_object(Bucket=s3.bucket, Key=folder + "manifest-summary.json",
                  Body=(SAMPLES / "full-export-manifest-summary.json").read_bytes())
    s3.put_object(Bucket=s3.bucket, Key=folder + "manifest-summary.md5", Body=b"iLBzJYa4HPixvLRk02MXZw==")
    s3.put_object(Bucket=s3.bucket, Key=folder + "manifest-files.json",
                  Body=(SAMPLES / "full-export-manifest-files.json").read_bytes())
    s3.put_object(Bucket=s3.bucket, Key=folder + "manifest-files.md5", Body=b"eF9XArdBefG4NFSVs2U2ow==")
    result = clickhouse.cli("load-export", f"s3://{s3.bucket}/")
    assert result.returncode == 1
    assert "livros_por_ler" in result.stderr
    assert "enpvklgbwq7gta42yshirxd6ea.json.gz is listed in the manifest but does not exist" in result.stderr
    assert clickhouse.rows(f"SELECT table_name, status FROM {clickhouse.raw_db}.exports FINAL") == [
        ("livros_por_ler", "failed")]


def test_incremental_exports_land_in_window_order_from_the_shared_data_folder(s3, clickhouse):
    from dynamodb_cdc.testing.exports import incremental_line, write_incremental_export

    hour = T0.replace(minute=0, second=0, microsecond=0)
    full = write_full_export(s3, s3.bucket, ARN, items(2), prefix="p", export_time=hour)
    k = {"id": {"S": "u0000"}}
    w2 = write_incremental_export(s3, s3.bucket, ARN, [
        incremental_line(k, None, {"id": {"S": "u0000"}}, 3, ts_form="number", key_field="Key"),
    ], export_from=hour.replace(hour=4), export_to=hour.replace(hour=5), prefix="p")
    w1 = write_incremental_export(s3, s3.bucket, ARN, [
        incremental_line(k, {"id": {"S": "u0000"}, "age": {"N": "7"}}, None, 1, ts_form="N"),
        incremental_line({"id": {"S": "new"}}, {"id": {"S": "new"}}, None, 2, ts_form="string"),
        b'{"Metadata":{},"Keys":{"id":{"S":"no-time"}},"NewImage":{"id":{"S":"no-time"}}}',
    ], export_from=hour.replace(hour=3), export_to=hour.replace(hour=4), prefix="p", view="NEW_IMAGE")
    assert all(key.startswith("p/AWSDynamoDB/data/") for key in w1.data_keys + w2.data_keys)

    result = clickhouse.cli("load-export", f"s3://{s3.bucket}/p", check=True)
    log = result.stderr
    assert log.index(full.export_arn) < log.index(w1.export_arn) < log.index(w2.export_arn)  # window order
    rows = clickhouse.rows(
        f"SELECT export_arn, export_type, export_from_time, line_number FROM {clickhouse.raw_db}.export_lines "
        f"WHERE export_type = 'INCREMENTAL_EXPORT' ORDER BY export_from_time, line_number"
    )
    assert [(r[0], r[3]) for r in rows] == [(w1.export_arn, 1), (w1.export_arn, 2), (w2.export_arn, 1)]
    assert clickhouse.rows(f"SELECT location, line_number, error FROM {clickhouse.raw_db}.quarantine") == [
        (w1.data_keys[0], 3, "incremental-export line has no usable Metadata.WriteTimestampMicros")]
    assert "gap" not in log


def test_an_incremental_line_without_keys_is_quarantined(s3, clickhouse):
    """An incremental-export line names its item by Keys (or Key): one with neither cannot be applied
    to any item, so it is set aside with its reason, not landed for the model to drop unseen."""
    from dynamodb_cdc.testing.exports import incremental_line, write_incremental_export

    hour = T0.replace(minute=0, second=0, microsecond=0)
    write_full_export(s3, s3.bucket, ARN, items(1), prefix="p", export_time=hour)
    w = write_incremental_export(s3, s3.bucket, ARN, [
        incremental_line({"id": {"S": "u0000"}}, {"id": {"S": "u0000"}, "age": {"N": "7"}}, None, 1),
        b'{"Metadata":{"WriteTimestampMicros":{"N":"2"}},"NewImage":{"id":{"S":"no-keys"}}}',
        b'{"Metadata":{"WriteTimestampMicros":{"N":"3"}},"Keys":"u0000","NewImage":{"id":{"S":"u0000"}}}',
    ], export_from=hour.replace(hour=3), export_to=hour.replace(hour=4), prefix="p", view="NEW_IMAGE")

    result = clickhouse.cli("load-export", f"s3://{s3.bucket}/p", check=True)
    assert "2 lines set aside in quarantine" in result.stderr
    assert clickhouse.rows(f"SELECT line_number FROM {clickhouse.raw_db}.export_lines "
                           f"WHERE export_type = 'INCREMENTAL_EXPORT'") == [(1,)]
    assert clickhouse.rows(f"SELECT location, line_number, error FROM {clickhouse.raw_db}.quarantine "
                           f"ORDER BY line_number") == [
        (w.data_keys[0], 2, 'incremental-export line has no "Keys" object'),
        (w.data_keys[0], 3, 'incremental-export line has no "Keys" object')]


def test_window_gaps_and_a_missing_full_export_are_reported(s3, clickhouse):
    from dynamodb_cdc.testing.exports import incremental_line, write_incremental_export

    hour = T0.replace(minute=0, second=0, microsecond=0)
    line = incremental_line({"id": {"S": "a"}}, {"id": {"S": "a"}}, None, 1)
    write_incremental_export(s3, s3.bucket, ARN, [line], export_from=hour.replace(hour=1), export_to=hour.replace(hour=2), prefix="p")
    write_incremental_export(s3, s3.bucket, ARN, [line], export_from=hour.replace(hour=3), export_to=hour.replace(hour=4), prefix="p")
    result = clickhouse.cli("load-export", f"s3://{s3.bucket}/p")
    assert result.returncode == 1
    assert "users: no full export loaded before the incremental windows" in result.stderr
    assert "users: gap from 2026-01-02T02:00:00+00:00 to 2026-01-02T03:00:00+00:00" in result.stderr
    # Everything that could land, landed.
    assert clickhouse.scalar(f"SELECT count() FROM {clickhouse.raw_db}.export_lines") == 2


def test_lines_sent_by_the_client_land_as_the_lines_read_by_chdb(s3, clickhouse, tmp_path):
    """chDB reads each batch from a local file (LineAsString); a server (here chdb_http, the engine
    behind ClickHouse's HTTP interface in a process of its own) gets each batch's bytes from the
    client.  Both land the same rows, line numbers and quarantine, batches cut mid-file."""
    from dynamodb_cdc.connection import open_client
    from dynamodb_cdc.load_export import LoadOptions, load_exports
    from dynamodb_cdc.s3export import s3_client
    from dynamodb_cdc.store import Store
    from dynamodb_cdc.testing.chdb_http import chdb_http

    good = items(30)
    lines = [line_of(i) for i in good[:10]] + [
        b'{"Item":{"id":{"S":"broken"}',
        b"",
        line_of(good[10]) + b"\r",  # a CRLF line ending
        b'{"Item":{"id":{"S":"\xff\xfe"}}}',
        b'{"Item":{"id":{"S":"tab\\t and \\\\ and \\"quotes\\""}}}',
    ] + [line_of(i) for i in good[11:]]
    write_full_export(s3, s3.bucket, ARN, [], prefix="p", export_time=T0, lines=lines)
    results = []
    with clickhouse.client() as local, chdb_http(str(tmp_path / "server")) as server:
        remote = open_client(server.url + "/")
        for client in (local, remote):
            store = Store(client, clickhouse.raw_db)
            result = load_exports(s3_client(), store, f"s3://{s3.bucket}/p", LoadOptions(batch_rows=7, progress=False))
            assert result.ok, result
            results.append((
                client.query(f"SELECT line_number, line FROM {clickhouse.raw_db}.export_lines ORDER BY line_number").result_rows,
                client.query(f"SELECT line_number, payload, error FROM {clickhouse.raw_db}.quarantine "
                             "ORDER BY line_number").result_rows,
            ))
        assert not Store(remote, clickhouse.raw_db).embedded
        remote.close()
    first, second = results
    assert first == second
    assert [r[0] for r in first[0]] == list(range(1, 11)) + [13, 15] + list(range(16, 35))
    assert first[0][10][1] == line_of(good[10]).decode()  # the \r is gone
    assert first[0][11][1] == '{"Item":{"id":{"S":"tab\\t and \\\\ and \\"quotes\\""}}}'
    assert [(r[0], r[2]) for r in first[1]] == [
        (11, "line is not valid JSON"), (12, "line is not valid JSON"), (14, "line is not valid UTF-8")]


@pytest.mark.parametrize("batch_rows", ["100000", "7000"], ids=["whole-file", "in-batches"])
def test_line_numbers_stay_exact_in_a_big_file_read_whole_or_in_batches(s3, clickhouse, batch_rows):
    """One ~26 MB data file, over the engine's 10 MiB chunk for parallel parsing: read whole (the
    engine reads the verified file) and in batches of ~15 MB, every row keeps its own line
    number, and a bad line among them is quarantined under its own."""
    n = 12_000
    big = [{"id": {"S": f"u{i:05d}"}, "n": {"N": str(i + 1)}, "pad": {"S": f"{i:05d}" * 400}} for i in range(n)]
    w = write_full_export(s3, s3.bucket, ARN, big, prefix="big", export_time=T0, files=1)
    key = w.data_keys[0]
    body = gzip.decompress(s3.get_object(Bucket=s3.bucket, Key=key)["Body"].read()).split(b"\n")
    body[9_000] = b"{not json"  # line 9,001
    data = b"\n".join(body)
    replace_data_file(s3, s3.bucket, key, gzip.compress(data), fix_manifest_md5=True, manifest_key=w.folder + "manifest-files.json")
    assert len(data) > 20 << 20

    clickhouse.cli("load-export", f"s3://{s3.bucket}/big", "--batch-rows", batch_rows, check=True)
    raw = clickhouse.raw_db
    assert clickhouse.rows(
        f"SELECT count(), uniqExact(line_number), countIf(toUInt64(JSONExtractString(line, 'Item', 'n', 'N')) != line_number) "
        f"FROM {raw}.export_lines") == [(n - 1, n - 1, 0)]
    assert clickhouse.rows(f"SELECT line_number, payload FROM {raw}.quarantine") == [(9_001, "{not json")]


def test_clickhouse_failing_mid_run_is_retried_and_every_line_lands_once(s3, clickhouse, monkeypatch, caplog):
    """Batches cut off before or after the server took them, and a lost checkpoint, are redone
    after a wait; nothing is doubled or lost."""
    from dynamodb_cdc import connection
    from dynamodb_cdc.load_export import LoadOptions, load_exports
    from dynamodb_cdc.s3export import s3_client

    monkeypatch.setattr(connection, "WRITE_BACKOFF", 0.01)
    data = items(95)
    w = write_full_export(s3, s3.bucket, ARN, data, prefix="p", export_time=T0, files=2)
    inserts, checkpoints = [], []

    def plan(n, method, sql):
        if sql.startswith("INSERT") and "_export_lines_in" in sql:
            inserts.append(n)
            return {2: "after", 4: "before", 5: "before"}.get(len(inserts))  # the 4th batch fails twice
        if "export_files" in sql and "INSERT" in sql and "'loading'" in sql:
            checkpoints.append(n)
            return "after" if len(checkpoints) == 3 else None
        return None

    with clickhouse.client() as client:
        store = outage_store(clickhouse, client, plan)
        result = load_exports(s3_client(), store, f"s3://{s3.bucket}/p", LoadOptions(batch_rows=10, parallel_files=1, progress=False))
        assert result.ok, result.errors
        assert [f[2] for f in store.client.failed] == ["after", "after", "before", "before"]
    rows = landed(clickhouse)
    assert len(rows) == 95 and len({(r[0], r[1]) for r in rows}) == 95  # nothing doubled
    assert {r[2] for r in rows} == {line_of(i).decode() for i in data}  # nothing lost
    assert {k: v[0] for k, v in ledger(clickhouse).items()} == {k: "loaded" for k in w.data_keys}
    retries = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) == 4 and all("Connection refused" in m or "OperationalError" in m for m in retries)


def test_clickhouse_failing_while_a_file_is_set_aside_is_retried(s3, clickhouse, monkeypatch):
    """A file refused for its MD5 is recorded failed, and the export recorded loading then failed,
    even when ClickHouse drops each of those writes once; the good file lands and the run reports
    the refusal."""
    from dynamodb_cdc import connection
    from dynamodb_cdc.load_export import LoadOptions, load_exports
    from dynamodb_cdc.s3export import s3_client

    monkeypatch.setattr(connection, "WRITE_BACKOFF", 0.01)
    data = items(40)
    w = write_full_export(s3, s3.bucket, ARN, data, prefix="p", export_time=T0, files=2)
    bad, good = w.data_keys
    s3.put_object(Bucket=s3.bucket, Key=bad, Body=gzip.compress(line_of(items(1, 900)[0]) + b"\n"))
    dropped = []

    def plan(n, method, sql):  # each of these writes is dropped once
        if re.match(r"INSERT INTO \S+\.`?exports`? ", sql) and "'loading'" in sql and "start" not in dropped:
            dropped.append("start")
            return "after"
        if "INSERT" in sql and "export_files" in sql and "'failed'" in sql and "file" not in dropped:
            dropped.append("file")
            return "before"
        if re.match(r"INSERT INTO \S+\.`?exports`? ", sql) and "'failed'" in sql and "end" not in dropped:
            dropped.append("end")
            return "before"
        return None

    with clickhouse.client() as client:
        store = outage_store(clickhouse, client, plan)
        result = load_exports(s3_client(), store, f"s3://{s3.bucket}/p", LoadOptions(progress=False))
        assert [f[2] for f in store.client.failed] == ["after", "before", "before"]
    errors = result.exports[0].errors
    assert not result.ok and len(errors) == 1 and bad in errors[0] and "does not match md5Checksum" in errors[0]
    states = ledger(clickhouse)
    assert states[bad][0] == "failed" and states[good][0] == "loaded"
    assert clickhouse.rows(f"SELECT status FROM {clickhouse.raw_db}.exports FINAL") == [("failed",)]
    rows = landed(clickhouse)
    assert {r[0] for r in rows} == {good} and len(rows) == states[good][3] > 0  # all of the good file


def test_clickhouse_gone_for_good_stops_with_a_clear_error_and_a_rerun_completes(s3, clickhouse, monkeypatch):
    from dynamodb_cdc import connection
    from dynamodb_cdc.connection import ClickHouseUnavailableError
    from dynamodb_cdc.load_export import LoadOptions, load_exports
    from dynamodb_cdc.s3export import s3_client

    monkeypatch.setattr(connection, "WRITE_BACKOFF", 0.01)
    data = items(95)
    w = write_full_export(s3, s3.bucket, ARN, data, prefix="p", export_time=T0, files=2)
    inserts, lost = [], []

    def plan(n, method, sql):
        """The server takes three batches but the answer to the third checkpoint is lost; from then
        on it refuses every batch (the ledger and deletes still go through)."""
        if sql.startswith("INSERT") and "_export_lines_in" in sql:
            inserts.append(n)
            return "before" if lost else None
        if len(inserts) == 3 and not lost and "export_files" in sql and "'loading'" in sql:
            lost.append(n)
            return "after"
        return None

    with clickhouse.client() as client:
        store = outage_store(clickhouse, client, plan)
        with pytest.raises(ClickHouseUnavailableError) as err:
            load_exports(s3_client(), store, f"s3://{s3.bucket}/p", LoadOptions(batch_rows=10, parallel_files=1, progress=False))
    first = w.data_keys[0]
    assert str(err.value).startswith(f"ClickHouse stopped answering while loading lines 21-30 of s3://{s3.bucket}/{first}")
    assert "6 attempts" in str(err.value) and "rerun to continue" in str(err.value)
    # The third batch was undone, its checkpoint first: the ledger never claims rows that are not there.
    assert clickhouse.rows(f"SELECT status, lines_committed FROM {clickhouse.raw_db}.export_files FINAL "
                           f"WHERE data_file_key = {{k:String}}", k=first) == [("loading", 20)]
    assert sorted(r[1] for r in landed(clickhouse)) == list(range(1, 21))

    resumed = clickhouse.cli("load-export", f"s3://{s3.bucket}/p", "--batch-rows", "10", check=True)
    assert "resuming after line 20" in resumed.stderr
    rows = landed(clickhouse)
    assert len(rows) == 95 and len({(r[0], r[1]) for r in rows}) == 95
    assert {r[2] for r in rows} == {line_of(i).decode() for i in data}


def _granules_read_by_skip_index(client, sql: str) -> tuple[int, int]:
    """(granules kept, granules in all) by export_lines' skip index on data_file_key in `sql`'s plan."""
    plan = "\n".join(r[0] for r in client.query(f"EXPLAIN indexes = 1 {sql}").result_rows)
    found = re.search(r"Name: data_file_key_set\n.*?Granules: (\d+)/(\d+)", plan, re.S)
    assert found, plan
    return int(found.group(1)), int(found.group(2))


def test_counting_a_files_lines_reads_its_granules_not_the_whole_history(s3, clickhouse):
    """load-export counts each file's landed lines by export and file, which are not in export_lines' sort
    key: the skip index keeps that from reading the whole history of the raw table on every count."""
    from dynamodb_cdc.store import Store

    write_full_export(s3, s3.bucket, ARN, items(30), prefix="p", export_time=T0, files=3)
    clickhouse.cli("load-export", f"s3://{s3.bucket}/p", check=True)
    history = 200_000  # lines of earlier exports, landed before: about 25 granules of 8,192 rows
    with clickhouse.client() as c:
        c.command(f"INSERT INTO `{clickhouse.raw_db}`.export_lines (table_name, table_arn, export_arn, export_type, "
                  f"export_time, data_file_key, line_number, line) SELECT 'users', '{ARN}', "
                  f"concat('{ARN}/export/old-', toString(intDiv(number, 50000))), 'FULL_EXPORT', now64(3), "
                  f"concat('old/data/', toString(intDiv(number, 10000)), '.json.gz'), number % 10000 + 1, "
                  f"'{{\"Item\":{{}}}}' FROM numbers({history})")
        (arn, key), = c.query(f"SELECT DISTINCT export_arn, data_file_key FROM `{clickhouse.raw_db}`.export_lines "
                              f"WHERE export_arn NOT LIKE '%/old-%' LIMIT 1").result_rows
        store = Store(c, clickhouse.raw_db)
        kept, total = _granules_read_by_skip_index(c, store.files_counts_sql(arn, [key, "old/data/3.json.gz"]))
        assert total >= history // 8192 and kept <= 3, (kept, total)
        assert store.files_counts(arn, [key])[key] == (10, 0)


def test_an_export_lines_table_made_before_its_skip_index_gets_it(s3, clickhouse):
    from dynamodb_cdc import schema

    with clickhouse.client() as c:
        schema.ensure(c, clickhouse.raw_db)
        c.command(f"ALTER TABLE `{clickhouse.raw_db}`.export_lines DROP INDEX data_file_key_set")
    write_full_export(s3, s3.bucket, ARN, items(10), prefix="p", export_time=T0, files=2)
    clickhouse.cli("load-export", f"s3://{s3.bucket}/p", check=True)
    assert clickhouse.rows(f"SELECT name, type_full FROM system.data_skipping_indices WHERE database = "
                           f"'{clickhouse.raw_db}' AND table = 'export_lines'") == [("data_file_key_set", "set(8)")]
