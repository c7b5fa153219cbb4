"""dynamodb-cdc status: what landed, per table, as text and as JSON."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from dynamodb_cdc.testing.exports import dumps_line, write_full_export

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/users"


def test_status_reports_exports_files_lines_and_quarantine(s3, clickhouse):
    if clickhouse.embedded:  # a mistyped path is not read as an empty engine, nor created
        path = clickhouse.url.removeprefix("chdb://")
        missing = clickhouse.cli("status")
        assert missing.returncode == 2, missing.stderr
        assert f"no chDB data directory at {path}, so nothing has landed there" in missing.stderr
        assert not Path(path).exists()
        with clickhouse.client():
            pass  # the engine's directory, as any loader command makes it
    empty = clickhouse.cli("status", check=True)
    assert "Nothing has landed" in empty.stdout
    when = datetime(2026, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    w = write_full_export(s3, s3.bucket, ARN, [], prefix="p", export_time=when, files=2,
                          lines=[dumps_line({"Item": {"id": {"S": str(i)}}}) for i in range(4)] + [b"{broken"])
    s3.delete_object(Bucket=s3.bucket, Key=w.data_keys[1])
    clickhouse.cli("load-export", f"s3://{s3.bucket}/p")  # one file lands, one is missing

    report = json.loads(clickhouse.cli("status", "--json", check=True).stdout)
    (users,) = report["tables"]
    assert users["table"] == "users"
    assert users["exports"] == {"FULL_EXPORT": {"failed": 1}}
    assert users["data_files"] == {"failed": 1, "loaded": 1}
    landed = clickhouse.scalar(f"SELECT count() FROM {clickhouse.raw_db}.export_lines")
    quarantined = clickhouse.scalar(f"SELECT count() FROM {clickhouse.raw_db}.quarantine")
    assert (users["lines_landed"], users["quarantined"]) == (landed, quarantined)
    assert (landed, quarantined) == (2, 1)  # the first file holds lines 0, 2 and the broken line
    assert users["last_landed_at"].endswith("+00:00")
    text = clickhouse.cli("status", check=True).stdout
    assert "users" in text and "data files    1 failed, 1 loaded" in text


def test_status_dates_an_export_only_table_by_its_latest_loaded_export(s3, clickhouse):
    """latest_export_time and last_change_at of a table fed by exports alone: the newest export that
    loaded, not a newer one that failed (its items did not land)."""
    loaded_at = datetime(2026, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    failed_at = datetime(2026, 2, 4, 4, 5, 6, tzinfo=timezone.utc)
    write_full_export(s3, s3.bucket, ARN, [], prefix="p", export_time=loaded_at,
                      lines=[dumps_line({"Item": {"id": {"S": str(i)}}}) for i in range(2)])
    clickhouse.cli("load-export", f"s3://{s3.bucket}/p", check=True)
    w = write_full_export(s3, s3.bucket, ARN, [], prefix="p", export_time=failed_at,
                          lines=[dumps_line({"Item": {"id": {"S": str(i)}}}) for i in range(2)])
    s3.delete_object(Bucket=s3.bucket, Key=w.data_keys[0])
    assert clickhouse.cli("load-export", f"s3://{s3.bucket}/p").returncode == 1

    (users,) = json.loads(clickhouse.cli("status", "--json", check=True).stdout)["tables"]
    assert users["exports"] == {"FULL_EXPORT": {"failed": 1, "loaded": 1}}
    assert users["latest_export_time"] == loaded_at.isoformat()
    assert users["last_change_at"] == loaded_at.isoformat()


def test_status_reports_each_shard_checkpoint_lag_and_last_change(moto_endpoint, clickhouse):
    import time
    import uuid

    import boto3

    from dynamodb_cdc.testing.streams import change_record

    kinesis = boto3.client("kinesis")
    name = f"status-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=name, ShardCount=2)
    at_ms = int(time.time() * 1000) - 3_600_000  # changes made an hour ago, landed now
    puts = []
    for i in range(6):
        data = change_record("users", "INSERT", {"id": {"S": f"u{i}"}}, new={"id": {"S": f"u{i}"}}, at_ms=at_ms + i)
        puts.append(kinesis.put_record(StreamName=name, Data=data, PartitionKey=f"key-{i}"))
    refused = kinesis.put_record(StreamName=name, Data=b'{"tableName":"users","eventName":"PUT"}', PartitionKey="x")
    clickhouse.cli("consume-kinesis", "--stream", name, check=True)

    report = json.loads(clickhouse.cli("status", "--json", check=True).stdout)
    (users,) = report["tables"]
    assert users["stream_records"] == 6
    assert users["quarantined"] == 1 and users["quarantined_by_source"] == {"kinesis": 1}
    shards = {s["shard_id"]: s for s in users["streams"]}
    assert set(shards) == {"shardId-000000000000", "shardId-000000000001"}
    newest: dict[str, int] = {}
    counts: dict[str, int] = {}
    for i, p in enumerate(puts):
        newest[p["ShardId"]] = at_ms + i
        counts[p["ShardId"]] = counts.get(p["ShardId"], 0) + 1
    last_seq = {}
    for p in puts + [refused]:  # in the order they were put: each shard's last record
        last_seq[p["ShardId"]] = p["SequenceNumber"]
    for shard_id, s in shards.items():
        assert s["records"] == counts.get(shard_id, 0)
        assert not s["finished"]
        if shard_id in newest:
            assert s["newest_change_at"] == datetime.fromtimestamp(newest[shard_id] / 1000, timezone.utc).isoformat()
            assert 3600 - 5 <= s["lag_seconds"] <= 3600 + 300
    # the checkpoint is the shard's last record read, the quarantined one included
    for shard_id, s in shards.items():
        assert s["checkpoint"] == last_seq[shard_id]
    assert users["stream_lag_seconds"] == max(s["lag_seconds"] for s in shards.values() if s["lag_seconds"] is not None)
    assert users["last_change_at"] == datetime.fromtimestamp((at_ms + 5) / 1000, timezone.utc).isoformat()

    text = clickhouse.cli("status", check=True).stdout
    assert "quarantined   1 from kinesis" in text
    assert "stream lag" in text and "last change seen" in text
    assert all(f"kinesis {shard_id}: at " in text for shard_id in shards)


def test_a_shard_read_to_its_end_has_no_lag(moto_endpoint, clickhouse):
    """A parent shard closed by a split and read to its end holds nothing more to land: its change
    an hour old is not an hour of lag (an alert on stream_lag_seconds would never clear)."""
    import time
    import uuid

    import boto3

    from dynamodb_cdc.testing.streams import change_record

    kinesis = boto3.client("kinesis")
    name = f"split-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=name, ShardCount=1)
    at_ms = int(time.time() * 1000) - 3_600_000
    kinesis.put_record(StreamName=name, PartitionKey="k", Data=change_record(
        "users", "INSERT", {"id": {"S": "u1"}}, new={"id": {"S": "u1"}}, at_ms=at_ms))
    (parent,) = kinesis.list_shards(StreamName=name)["Shards"]
    kinesis.split_shard(StreamName=name, ShardToSplit=parent["ShardId"], NewStartingHashKey=str(2**127))
    clickhouse.cli("consume-kinesis", "--stream", name, check=True)

    (users,) = json.loads(clickhouse.cli("status", "--json", check=True).stdout)["tables"]
    shards = {s["shard_id"]: s for s in users["streams"]}
    assert shards[parent["ShardId"]]["finished"] and shards[parent["ShardId"]]["records"] == 1
    assert shards[parent["ShardId"]]["lag_seconds"] is None
    assert users["stream_lag_seconds"] is None  # the children have landed nothing: no change to be behind on
    assert users["last_change_at"] == datetime.fromtimestamp(at_ms / 1000, timezone.utc).isoformat()


def test_status_keeps_apart_the_tables_of_one_stream_and_reads_microsecond_change_times(moto_endpoint, clickhouse):
    """One Kinesis shard carrying two tables, one of them with ApproximateCreationDateTime in
    microseconds (ApproximateCreationDateTimePrecision MICROSECOND): each table gets its own
    records, newest change and lag on that shard."""
    import time
    import uuid

    import boto3

    from dynamodb_cdc.testing.streams import change_record

    kinesis = boto3.client("kinesis")
    name = f"status-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=name, ShardCount=1)
    now_ms = int(time.time() * 1000)
    for i in range(2):  # users: 5 s ago, in microseconds
        doc = json.loads(change_record("users", "INSERT", {"id": {"S": f"u{i}"}}, new={"id": {"S": f"u{i}"}},
                                       at_ms=(now_ms - 5_000 + i) * 1000))
        doc["dynamodb"]["ApproximateCreationDateTimePrecision"] = "MICROSECOND"
        kinesis.put_record(StreamName=name, Data=json.dumps(doc).encode(), PartitionKey=f"u{i}")
    kinesis.put_record(StreamName=name, PartitionKey="o", Data=change_record(  # orders: 65 s ago, in milliseconds
        "orders", "INSERT", {"id": {"S": "o1"}}, new={"id": {"S": "o1"}}, at_ms=now_ms - 65_000))
    clickhouse.cli("consume-kinesis", "--stream", name, check=True)

    report = json.loads(clickhouse.cli("status", "--json", check=True).stdout)
    tables = {t["table"]: t for t in report["tables"]}
    assert set(tables) == {"orders", "users"}
    (users,), (orders,) = tables["users"]["streams"], tables["orders"]["streams"]
    assert (users["records"], orders["records"]) == (2, 1)
    assert users["newest_change_at"] == datetime.fromtimestamp((now_ms - 5_000 + 1) / 1000, timezone.utc).isoformat()
    assert orders["newest_change_at"] == datetime.fromtimestamp((now_ms - 65_000) / 1000, timezone.utc).isoformat()
    assert 5 <= users["lag_seconds"] < 60 and 65 <= orders["lag_seconds"] < 120
    assert tables["users"]["stream_records"] == 2 and tables["orders"]["stream_records"] == 1
    text = clickhouse.cli("status", check=True).stdout
    assert "kinesis shardId-000000000000: at " in text and ", 1 records, lag " in text


def test_status_reads_dynamodb_streams_change_times_in_seconds(moto_endpoint, clickhouse):
    import time

    dynamodb, name = _table_with_a_stream("status")
    before = time.time()
    for i in range(3):
        dynamodb.put_item(TableName=name, Item={"id": {"S": f"u{i}"}})
    after = time.time()
    clickhouse.cli("consume-streams", "--table", name, check=True)

    (t,) = json.loads(clickhouse.cli("status", "--json", check=True).stdout)["tables"]
    assert t["table"] == name and t["stream_records"] == 3
    (shard,) = t["streams"]
    assert shard["source"] == "dynamodb_streams" and shard["records"] == 3
    newest = datetime.fromisoformat(shard["newest_change_at"]).timestamp()
    assert before - 1 <= newest <= after + 1  # epoch seconds on the wire, read as seconds
    assert 0 <= shard["lag_seconds"] <= time.time() - before + 1
    assert t["last_change_at"] == shard["newest_change_at"]
    assert shard["millis_behind_latest"] is None and t["stream_millis_behind_latest"] is None  # Kinesis only


def test_checkpoints_record_kinesis_millis_behind_latest(moto_endpoint, clickhouse):
    """Each checkpoint keeps MillisBehindLatest of the last page read; status shows the latest."""
    import time
    import uuid

    import boto3

    from dynamodb_cdc.testing.streams import change_record

    kinesis = boto3.client("kinesis")
    name = f"behind-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=name, ShardCount=1)
    for i in range(3):
        kinesis.put_record(StreamName=name, PartitionKey="k",
                           Data=change_record("users", "INSERT", {"id": {"S": f"u{i}"}}, new={"id": {"S": f"u{i}"}},
                                               at_ms=int(time.time() * 1000)))
        time.sleep(0.3)
    clickhouse.cli("consume-kinesis", "--stream", name, "--batch-rows", "1", check=True)  # one record a page

    rows = clickhouse.rows(f"SELECT millis_behind_latest, caught_up_at IS NOT NULL "
                           f"FROM {clickhouse.raw_db}.stream_checkpoints ORDER BY updated_at")
    behind = [r[0] for r in rows]
    # moto: the time between the page's last record and the shard's newest one
    assert len(behind) == 5 and behind[0] is None  # the first row is written before any page is read
    assert 550 <= behind[1] <= 60_000 and 250 <= behind[2] <= behind[1] - 250 and behind[3] == 0
    # the third record's page was full (one record a page): the empty page after it is the tip, a row of its own
    assert behind[4] == 0 and [r[1] for r in rows] == [0, 0, 0, 0, 1]
    (t,) = json.loads(clickhouse.cli("status", "--json", check=True).stdout)["tables"]
    (shard,) = t["streams"]
    assert shard["millis_behind_latest"] == 0 and t["stream_millis_behind_latest"] == 0
    assert "0 ms behind latest when checkpointed" in clickhouse.cli("status", check=True).stdout


def test_status_into_a_pipe_closed_early_ends_quietly(clickhouse):
    """`dynamodb-cdc status | head -1`: the reader is gone before status writes; no error, exit 0."""
    import subprocess

    from conftest import BIN

    with clickhouse.client():
        pass  # (an embedded engine must exist to be read)
    proc = subprocess.Popen([str(BIN / "dynamodb-cdc"), "status", "--clickhouse-url", clickhouse.url,
                             "--raw-database", clickhouse.raw_db], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # long before the command has opened ClickHouse and written anything
    err = proc.stderr.read()
    assert proc.wait(120) == 0, err
    assert "BrokenPipeError" not in err and "Traceback" not in err and "ERROR" not in err
    assert f"raw database {clickhouse.raw_db}" in err  # which ClickHouse it read, on stderr (a mistyped URL shows)


def test_a_dynamodb_stream_with_nothing_landed_yet_is_reported_under_its_table(moto_endpoint, clickhouse):
    """A DynamoDB stream names its table in its ARN: its shards were listed under "(no records yet)"
    until a record landed, so a quiet table (or one whose records were all quarantined) showed no stream."""
    _, name = _table_with_a_stream("quiet")
    clickhouse.cli("consume-streams", "--table", name, check=True)

    (t,) = json.loads(clickhouse.cli("status", "--json", check=True).stdout)["tables"]
    assert t["table"] == name and t["stream_records"] == 0
    assert t["streams"] and all(s["source"] == "dynamodb_streams" and s["records"] == 0 for s in t["streams"])


def _table_with_a_stream(prefix: str):
    """A new DynamoDB table in moto with a NEW_AND_OLD_IMAGES stream: (the client, its name)."""
    import uuid

    import boto3

    dynamodb = boto3.client("dynamodb")
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    return dynamodb, name
