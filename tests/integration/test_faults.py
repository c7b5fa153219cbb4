"""Faults: the loader and the Kinesis consumer killed outright, ClickHouse unavailable, hostile input.

Kills are kill -9 at random delays (fixed seed) while the command runs against a real chDB
directory and a real moto server; each rerun must leave every line / record landed exactly, and
the dbt current view equal to the expected items.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone

import pytest

from conftest import BIN, ROOT, Dbt
from dynamodb_cdc.testing.exports import dumps_line, write_full_export
from dynamodb_cdc.testing.moto import free_port
from dynamodb_cdc.testing.streams import change_record

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/props"
T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
T_MS = 1_772_600_767_000


def props_item(i: int) -> dict:
    return {"pk": {"S": f"p{i:06d}"}, "v": {"N": str(i)}, "s": {"S": f"value {i} ünïcode"}}


def kill_during(cmd: list[str], marker: str, count: int, delay: float) -> int | None:
    """Start cmd; once its log (stderr) has shown ``marker`` ``count`` times, wait ``delay`` seconds and
    kill -9 it.  Returns its exit code if it ended first, or None if it was killed.

    The kill follows the command's own progress, not the clock, so it lands mid-run however fast
    the machine is; the extra delay puts it anywhere in the next batch or file.
    """
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = 0
    for line in proc.stderr:
        seen += marker in line
        if seen >= count:
            time.sleep(delay)
            break
    if proc.poll() is not None:
        proc.stderr.close()
        return proc.wait()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    return None


def cli_cmd(ch, *args: str) -> list[str]:
    command, *rest = args
    return [str(BIN / "dynamodb-cdc"), command, *rest, "--clickhouse-url", ch.url, "--raw-database", ch.raw_db]


def props_current(ch, tmp_path) -> list[tuple]:
    dbt = Dbt(ch, ROOT / "integration_tests", tmp_path, "dynamodb_cdc_integration_tests")
    dbt("run", "--select", "props_changes", "props_current")
    return ch.rows(f"SELECT pk, v, s FROM {ch.schema}.props_current ORDER BY pk")


def assert_every_line_landed_once(ch, tmp_path, data_keys: list[str], n: int) -> None:
    """The n props items of write_full_export, spread evenly over data_keys: each line once, nothing
    quarantined, every file loaded, and the current view exact."""
    per_file = dict(ch.rows(f"SELECT data_file_key, count() FROM {ch.raw_db}.export_lines GROUP BY data_file_key"))
    assert per_file == {key: n // len(data_keys) for key in data_keys}
    assert ch.scalar(f"SELECT uniqExact(data_file_key, line_number) FROM {ch.raw_db}.export_lines") == n
    assert ch.scalar(f"SELECT count() FROM {ch.raw_db}.quarantine") == 0
    assert ch.rows(f"SELECT DISTINCT status FROM {ch.raw_db}.export_files FINAL") == [("loaded",)]
    assert props_current(ch, tmp_path) == [(f"p{i:06d}", i, f"value {i} ünïcode") for i in range(n)]


@pytest.mark.parametrize("how", ["in-batches", "in-runs", "whole-files"])
def test_load_export_killed_at_random_points_lands_every_line_exactly_once(s3, clickhouse, tmp_path, how):
    """In batches of 500 lines, one to an insert (--parallel-files 1); in batches of 500 read
    several to an insert, checkpointed after each; and with each data file read whole by the engine,
    several to a statement."""
    batch_rows, extra = {"in-batches": ("500", ["--parallel-files", "1"]), "in-runs": ("500", []),
                         "whole-files": ("100000", [])}[how]
    n, files = (30_000, 10) if how == "in-batches" else (60_000, 20)  # the others go fast: more to kill in
    items = [props_item(i) for i in range(n)]
    w = write_full_export(s3, s3.bucket, ARN, items, prefix="p", export_time=T0, files=files)
    cmd = cli_cmd(clickhouse, "load-export", f"s3://{s3.bucket}/p", "--batch-rows", batch_rows, "--no-progress", *extra)
    rng = random.Random(5)
    for attempt in range(3):
        # After the 1st or 2nd data file of this run, then anywhere in the next one (mid-batch included).
        code = kill_during(cmd, "lines landed", rng.choice([1, 2]), rng.uniform(0.0, 0.3 if how == "in-batches" else 0.05))
        assert code is None, f"attempt {attempt}: the loader ended ({code}) before it was killed"
    clickhouse.cli("load-export", f"s3://{s3.bucket}/p", "--batch-rows", batch_rows, *extra, check=True)

    assert_every_line_landed_once(clickhouse, tmp_path, w.data_keys, n)


@pytest.mark.skipif(bool(os.environ.get("CLICKHOUSE_URL")), reason="a ClickHouse server elsewhere cannot reach this machine's moto")
def test_load_export_server_side_killed_at_random_points_lands_every_line_exactly_once(s3, clickhouse, tmp_path):
    """--server-side, 40 data files read in groups of up to 16 per statement: killed anywhere from
    its first ledger row on (files being marked loading, a statement running, files being marked
    loaded), then rerun; every line lands exactly once."""
    n, files = 60_000, 40
    items = [props_item(i) for i in range(n)]
    w = write_full_export(s3, s3.bucket, ARN, items, prefix="p", export_time=T0, files=files)
    cmd = cli_cmd(clickhouse, "load-export", f"s3://{s3.bucket}/p", "--server-side", "--no-progress")
    rng = random.Random(7)
    codes = [kill_during(cmd, "data files to load", 1, rng.uniform(0.0, 0.6)) for _ in range(3)]
    assert codes[0] is None, codes  # the first run at least was killed mid-way
    clickhouse.cli("load-export", f"s3://{s3.bucket}/p", "--server-side", check=True)

    assert_every_line_landed_once(clickhouse, tmp_path, w.data_keys, n)


def test_consume_kinesis_killed_at_random_points_lands_every_record(moto_endpoint, clickhouse, tmp_path):
    import boto3

    kinesis = boto3.client("kinesis")
    name = f"faults-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=name, ShardCount=2)
    rng = random.Random(11)
    state: dict[str, dict] = {}
    records = []
    for i in range(20_000):
        pk = f"p{rng.randrange(3000):06d}"
        keys, old = {"pk": {"S": pk}}, state.get(pk)
        if old is not None and rng.random() < 0.15:
            records.append((pk, change_record("props", "REMOVE", keys, old=old, at_ms=T_MS + i)))
            del state[pk]
        else:
            state[pk] = {"pk": {"S": pk}, "v": {"N": str(i)}, "s": {"S": f"s{i}"}}
            records.append((pk, change_record("props", "MODIFY" if old else "INSERT", keys, new=state[pk], old=old,
                                              at_ms=T_MS + i)))
    put: set[tuple[str, str]] = set()
    for start in range(0, len(records), 500):
        chunk = records[start:start + 500]
        response = kinesis.put_records(StreamName=name, Records=[{"Data": d, "PartitionKey": k} for k, d in chunk])
        assert response["FailedRecordCount"] == 0
        put |= {(r["ShardId"], r["SequenceNumber"]) for r in response["Records"]}

    cmd = cli_cmd(clickhouse, "consume-kinesis", "--stream", name, "--batch-rows", "500")
    for attempt in range(3):
        # After 1 to 4 batches of this run, then anywhere in the next (between insert and checkpoint included).
        code = kill_during(cmd, "checkpoints written", rng.randint(1, 4), rng.uniform(0.0, 0.3))
        assert code is None, f"attempt {attempt}: the consumer ended ({code}) before it was killed"
    clickhouse.cli("consume-kinesis", "--stream", name, "--batch-rows", "500", check=True)

    landed = set(clickhouse.rows(f"SELECT shard_id, sequence_number FROM {clickhouse.raw_db}.stream_records"))
    assert landed == put  # complete; a batch landed twice (killed before its checkpoint) is harmless
    assert props_current(clickhouse, tmp_path) == sorted(
        (pk, int(item["v"]["N"]), item["s"]["S"]) for pk, item in state.items())


@pytest.mark.parametrize("down", [0.3, 2.5])
def test_the_clickhouse_process_killed_mid_load_is_waited_for_and_nothing_is_lost(s3, tmp_path, down):
    """A real server process (chdb_http: ClickHouse's HTTP interface over its own chDB directory)
    killed -9 while load-export writes to it, then started again on the same directory and port
    ``down`` seconds later: the loader retries with backoff (one or several waits), no checkpoint
    advances past rows that were not written, and the load ends complete, every line once."""
    from conftest import ClickHouse
    from dynamodb_cdc.testing import chdb_http

    n, files = 30_000, 10
    items = [props_item(i) for i in range(n)]
    w = write_full_export(s3, s3.bucket, ARN, items, prefix="p", export_time=T0, files=files)
    data = tmp_path / "server"
    server = chdb_http.start(str(data))
    port = int(server.url.rsplit(":", 1)[1])
    ch = ClickHouse(tmp_path)
    ch.url, ch.embedded = f"http://loader:pw@127.0.0.1:{port}/", False
    try:
        proc = subprocess.Popen(cli_cmd(ch, "load-export", f"s3://{s3.bucket}/p", "--batch-rows", "500",
                                        "--parallel-files", "1", "--no-progress"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        log, landed = [], 0
        for line in proc.stderr:
            log.append(line)
            landed += "lines landed" in line
            if landed == 2:
                break
        assert proc.poll() is None, "".join(log)
        time.sleep(random.Random(down).uniform(0.0, 0.2))  # anywhere in the next batches
        server.kill()
        time.sleep(down)
        server = chdb_http.start(str(data), port)
        log += proc.stderr.readlines()
        assert proc.wait(120) == 0, "".join(log)
        retries = [line for line in log if "retrying in" in line]
        assert retries and all("ClickHouse failed while" in r for r in retries), "".join(log)
        assert "pw@" not in "".join(log)
        assert_every_line_landed_once(ch, tmp_path, w.data_keys, n)  # and dbt's HTTP driver builds the view
    finally:
        server.stop()


@pytest.mark.skipif(bool(os.environ.get("CLICKHOUSE_URL")), reason="the directory lock is chDB's")
def test_a_held_chdb_directory_is_waited_for_then_a_clear_error(s3, clickhouse):
    write_full_export(s3, s3.bucket, ARN, [props_item(i) for i in range(5)], prefix="p", export_time=T0)
    path = clickhouse.url[len("chdb://"):]
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from dynamodb_cdc.connection import open_client; "
         f"c = open_client({clickhouse.url!r}); c.command('SELECT 1'); print('ready', flush=True); "
         "sys.stdin.readline()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        started = time.monotonic()
        refused = clickhouse.cli("load-export", f"s3://{s3.bucket}/p", "--wait-for-lock", "2")
        assert time.monotonic() - started >= 2
        assert refused.returncode == 1
        assert "Traceback" not in refused.stderr
        (last,) = [line for line in refused.stderr.splitlines() if "ERROR" in line]
        assert f"{os.path.realpath(path)} is in use by process {holder.pid}" in last
        assert "after waiting 2 s" in last

        # Released while the loader waits: it goes ahead.
        waiting = subprocess.Popen(cli_cmd(clickhouse, "load-export", f"s3://{s3.bucket}/p", "--wait-for-lock", "60"),
                                   stderr=subprocess.PIPE, text=True)
        time.sleep(2)
        assert waiting.poll() is None
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(30)
        _, err = waiting.communicate(timeout=120)
        assert waiting.returncode == 0, err
        assert "waiting (up to" in err
    finally:
        if holder.poll() is None:
            holder.kill()
    assert clickhouse.scalar(f"SELECT count() FROM {clickhouse.raw_db}.export_lines") == 5


def test_a_refused_port_is_retried_with_backoff_then_one_clear_error(s3):
    write_full_export(s3, s3.bucket, ARN, [props_item(1)], prefix="p", export_time=T0)
    port = free_port()  # nothing listens there
    result = subprocess.run(
        [str(BIN / "dynamodb-cdc"), "load-export", f"s3://{s3.bucket}/p",
         "--clickhouse-url", f"http://bench:s3cr3t-pw@127.0.0.1:{port}/"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "s3cr3t-pw" not in result.stderr
    retries = [line for line in result.stderr.splitlines() if "retrying in" in line]
    assert len(retries) == 4 and "Connection refused" in retries[0]
    (error,) = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert f"Cannot reach ClickHouse at http://bench@127.0.0.1:{port}/" in error
    assert "5 attempts over 7.5 s" in error


def test_hostile_export_lines_are_set_aside_or_land_exactly(s3, clickhouse, tmp_path):
    """A 400 KB item lands whole; attribute names built to break SQL land and stay in
    _other_attributes; invalid UTF-8 and a non-item are quarantined; the lines around them land."""
    big = {"pk": {"S": "big"}, "v": {"N": "1"}, "s": {"S": "x" * (400 * 1024 - 40)}}
    hostile_names = ["'); DROP TABLE export_lines; --", "a`b", 'q"uote', "back\\slash", "{t:String}", "$1", "ü\u2028"]
    sqlish = {"pk": {"S": "sql"}, "v": {"N": "2"}, "s": {"S": "' OR 1=1 --"},
              **{name: {"S": name} for name in hostile_names}}
    lines = [
        dumps_line({"Item": big}),
        dumps_line({"Item": sqlish}),
        b'{"Item":{"pk":{"S":"bad\xc3\x28"},"v":{"N":"3"}}}',  # invalid UTF-8
        b'{"Keys":{"pk":{"S":"k"}}}',  # an incremental line in a full export
        dumps_line({"Item": props_item(4)}),
    ]
    w = write_full_export(s3, s3.bucket, ARN, [], prefix="p", export_time=T0, lines=lines)
    result = clickhouse.cli("load-export", f"s3://{s3.bucket}/p", check=True)
    assert "2 lines set aside in quarantine" in result.stderr
    assert "line 3: line is not valid UTF-8" in result.stderr
    raw = clickhouse.rows(f"SELECT line_number, line FROM {clickhouse.raw_db}.export_lines ORDER BY line_number")
    assert [(n, line.encode()) for n, line in raw] == [(1, lines[0]), (2, lines[1]), (5, lines[4])]
    q = clickhouse.rows(f"SELECT line_number, payload, error FROM {clickhouse.raw_db}.quarantine ORDER BY line_number")
    assert [(n, e) for n, _, e in q] == [(3, "line is not valid UTF-8"), (4, 'full-export line has no "Item" object')]
    assert w.export_arn

    assert props_current(clickhouse, tmp_path) == [
        ("big", 1, big["s"]["S"]), ("p000004", 4, "value 4 ünïcode"), ("sql", 2, "' OR 1=1 --")]
    other = json.loads(clickhouse.scalar(
        f"SELECT _other_attributes FROM {clickhouse.schema}.props_current WHERE pk = 'sql'"))
    assert other == {name: {"S": name} for name in hostile_names}


def test_hostile_stream_records_are_set_aside_and_the_rest_lands(moto_endpoint, clickhouse):
    import boto3

    kinesis = boto3.client("kinesis")
    name = f"hostile-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=name, ShardCount=1)
    big = {"pk": {"S": "big"}, "v": {"N": "1"}, "s": {"S": "y" * (400 * 1024 - 40)}}
    payloads = [
        change_record("props", "INSERT", {"pk": {"S": "big"}}, new=big, at_ms=T_MS),
        b'{"eventName":"INSERT","tableName":"props","dynamodb":{"Keys":{"pk":{"S":"\xff"}}}}',  # invalid UTF-8
        b'{"hello":"world"}',  # not a DynamoDB change record
        b"\x1f\x8b\x08\x00 not json",  # binary garbage
        change_record("props", "INSERT", {"pk": {"S": "ok"}}, new={"pk": {"S": "ok"}}, at_ms=T_MS + 1),
    ]
    seqs = [kinesis.put_record(StreamName=name, Data=d, PartitionKey="k")["SequenceNumber"] for d in payloads]
    result = clickhouse.cli("consume-kinesis", "--stream", name, check=True)
    assert "3 records set aside in quarantine" in result.stderr
    landed = clickhouse.rows(f"SELECT sequence_number, data FROM {clickhouse.raw_db}.stream_records "
                             "ORDER BY toUInt256(sequence_number)")
    assert [(s, d.encode()) for s, d in landed] == [(seqs[0], payloads[0]), (seqs[4], payloads[4])]
    q = dict(clickhouse.rows(f"SELECT sequence_number, error FROM {clickhouse.raw_db}.quarantine"))
    assert q == {seqs[1]: "record is not valid UTF-8",
                 seqs[2]: "not a DynamoDB change record (eventName is not INSERT, MODIFY or REMOVE)",
                 seqs[3]: "record is not valid UTF-8"}
