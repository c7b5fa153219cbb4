"""consume-kinesis against a real moto Kinesis server and a real ClickHouse (chDB, or CLICKHOUSE_URL).

moto quirks these tests work with (see the comments where they matter):
- after a split or merge, moto keeps routing PutRecord to the closed parent (the first shard whose
  hash range matches), so child shards of a split stay empty; records for the open part of the
  stream are aimed at an open shard with ExplicitHashKey;
- a merge copies the parents' records into the child (AWS does not), which lets a test see that a
  child with two parents is read only after both;
- moto never returns a null NextShardIterator for a closed shard (the consumer also ends a closed
  shard once its EndingSequenceNumber is read).
Throttling and expired iterators, which moto cannot produce, use botocore's Stubber.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from conftest import BIN, ROOT, SAMPLES, Crash, Dbt, crashing_store, hold_lease, outage_store, release_leases, skew_clock
from dynamodb_cdc.testing.streams import (
    TTL_IDENTITY, change_record, hash_key_in, partition_key, sample_records, wait_for_log,
)

T_MS = 1_767_323_045_678  # 2026-01-02T03:04:05.678Z


@pytest.fixture
def kinesis(moto_endpoint):
    import boto3

    return boto3.client("kinesis")


def new_stream(kinesis, shards: int) -> tuple[str, str]:
    name = f"cdc-{uuid.uuid4().hex[:10]}"
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    return name, arn


def shards_of(kinesis, name) -> dict[str, dict]:
    return {s["ShardId"]: s for s in kinesis.list_shards(StreamName=name)["Shards"]}


def put(kinesis, name, shard: dict, data: bytes, key: str | None = None) -> dict:
    """Put one record aimed at ``shard``; returns what a consumer must land for it."""
    key = key or partition_key()
    r = kinesis.put_record(StreamName=name, Data=data, PartitionKey=key, ExplicitHashKey=hash_key_in(shard))
    return {"shard_id": r["ShardId"], "sequence_number": r["SequenceNumber"], "partition_key": key, "data": data}


def users_changes(t0: int) -> list[bytes]:
    """INSERT, MODIFY, REMOVE and a TTL REMOVE of the `users` table, like the real capture."""
    a = {"id": {"S": "u1"}}
    v1 = {"id": {"S": "u1"}, "name": {"S": "Zoë"}, "age": {"N": "41"}}
    v2 = {"id": {"S": "u1"}, "name": {"S": "Zoë"}, "age": {"N": "42"}, "tags": {"SS": ["a", "b"]}}
    b = {"id": {"S": "u2"}}
    vb = {"id": {"S": "u2"}, "ttl": {"N": "1767323000"}, "blob": {"B": "AP8="}}
    return [
        change_record("users", "INSERT", a, new=v1, at_ms=t0),
        change_record("users", "MODIFY", a, new=v2, old=v1, at_ms=t0 + 1),
        change_record("users", "INSERT", b, new=vb, at_ms=t0 + 2),
        change_record("users", "REMOVE", a, old=v2, at_ms=t0 + 3),
        change_record("users", "REMOVE", b, old=vb, at_ms=t0 + 4, user_identity=TTL_IDENTITY),
    ]


def orders_changes(t0: int, n: int = 3) -> list[bytes]:
    return [
        change_record("orders", "INSERT", {"customer": {"S": "c1"}, "order": {"N": str(i)}},
                      new={"customer": {"S": "c1"}, "order": {"N": str(i)}, "total": {"N": "19.90"}}, at_ms=t0 + i)
        for i in range(n)
    ]


def landed(ch) -> list[tuple]:
    return ch.rows(
        f"SELECT source, stream_arn, shard_id, sequence_number, partition_key, table_name, data, arrival_time, "
        f"_ingested_at FROM {ch.raw_db}.stream_records ORDER BY shard_id, toUInt256(sequence_number)"
    )


def checkpoints(ch) -> dict[str, tuple]:
    return {
        r[0]: r[1:]
        for r in ch.rows(
            f"SELECT shard_id, parent_shard_id, adjacent_parent_shard_id, sequence_number, finished, records "
            f"FROM {ch.raw_db}.stream_checkpoints FINAL WHERE source = 'kinesis'"
        )
    }


def arrival_times(kinesis, name) -> dict[tuple[str, str], datetime]:
    """ApproximateArrivalTimestamp of every record, read straight from moto."""
    out = {}
    for shard_id in shards_of(kinesis, name):
        it = kinesis.get_shard_iterator(StreamName=name, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        for r in kinesis.get_records(ShardIterator=it, Limit=10_000)["Records"]:
            out[(shard_id, r["SequenceNumber"])] = r["ApproximateArrivalTimestamp"].astimezone(timezone.utc)
    return out


def test_a_split_stream_lands_every_record_once_and_reruns_land_only_new_ones(kinesis, clickhouse):
    name, arn = new_stream(kinesis, 2)
    first = shards_of(kinesis, name)
    s0, s1 = first["shardId-000000000000"], first["shardId-000000000001"]
    real = sample_records(SAMPLES / "kinesis-lambda-event-dynamodb.json")  # the captured records, as AWS wrote them
    users, orders = users_changes(T_MS), orders_changes(T_MS, 4)
    stranger = b'{"message":"not a DynamoDB change","eventName":"PUT"}'

    puts = [put(kinesis, name, s0, users[0]), put(kinesis, name, s1, orders[0])]
    puts += [put(kinesis, name, s0, data, key) for key, data in real]
    puts += [put(kinesis, name, s1, users[1]), put(kinesis, name, s0, orders[1]), put(kinesis, name, s1, stranger)]
    # Split shard 1 in the middle of the data.  (moto routes what follows for its hash range to the closed
    # parent, not to the children: the parent ends later than it would on AWS.)
    kinesis.split_shard(StreamName=name, ShardToSplit="shardId-000000000001",
                        NewStartingHashKey=str((int(s1["HashKeyRange"]["StartingHashKey"]) + int(s1["HashKeyRange"]["EndingHashKey"])) // 2))
    puts += [put(kinesis, name, s1, users[2]), put(kinesis, name, s0, orders[2]), put(kinesis, name, s1, users[3]),
             put(kinesis, name, s0, users[4]), put(kinesis, name, s1, orders[3])]
    assert {p["shard_id"] for p in puts} == {"shardId-000000000000", "shardId-000000000001"}
    assert len(shards_of(kinesis, name)) == 4

    result = clickhouse.cli("consume-kinesis", "--stream", name, "--batch-rows", "4", check=True)
    assert "closed shard read to its end" in result.stderr
    assert "1 record set aside in quarantine" in result.stderr
    stranger_put = puts[6]
    assert f"{stranger_put['shard_id']} #{stranger_put['sequence_number']}: not a DynamoDB change record" in result.stderr

    rows = landed(clickhouse)
    good = [p for p in puts if p["data"] is not stranger]
    assert len(rows) == len(good) == 11
    by_key = {(r[2], r[3]): r for r in rows}
    assert len(by_key) == len(rows)  # each record exactly once
    arrivals = arrival_times(kinesis, name)
    for p in good:
        row = by_key[(p["shard_id"], p["sequence_number"])]
        source, stream_arn, _, _, pkey, table, data, arrival, _ = row
        assert (source, stream_arn, pkey) == ("kinesis", arn, p["partition_key"])
        assert data.encode() == p["data"]  # the Data bytes, unparsed
        assert table == json.loads(p["data"])["tableName"]
        assert arrival.replace(tzinfo=timezone.utc) == arrivals[(p["shard_id"], p["sequence_number"])].replace(
            microsecond=arrivals[(p["shard_id"], p["sequence_number"])].microsecond // 1000 * 1000)
    assert {r[5] for r in rows} == {"users", "orders", "PowertoolsEventsStack-DynamoDBTable59784FC0-8NKAMTERTAXY"}
    ttl = [json.loads(r[6]) for r in rows if json.loads(r[6])["eventName"] == "REMOVE"
           and json.loads(r[6])["userIdentity"]]
    assert [t["userIdentity"] for t in ttl] == [TTL_IDENTITY]

    q = clickhouse.rows(f"SELECT source, table_name, origin, location, line_number, sequence_number, payload, error "
                        f"FROM {clickhouse.raw_db}.quarantine")
    assert q == [("kinesis", "", arn, stranger_put["shard_id"], 0, stranger_put["sequence_number"], stranger.decode(),
                  "not a DynamoDB change record (eventName is not INSERT, MODIFY or REMOVE)")]

    last, count = {}, {}
    for p in puts:
        last[p["shard_id"]] = max(last.get(p["shard_id"], 0), int(p["sequence_number"]))
        count[p["shard_id"]] = count.get(p["shard_id"], 0) + 1
    book = checkpoints(clickhouse)  # records counts what was inserted, the quarantined record included
    assert book["shardId-000000000000"] == ("", "", str(last["shardId-000000000000"]), 0, count["shardId-000000000000"])
    assert book["shardId-000000000001"] == ("", "", str(last["shardId-000000000001"]), 1, count["shardId-000000000001"])
    assert book["shardId-000000000002"][:2] == ("shardId-000000000001", "")
    assert book["shardId-000000000003"][:2] == ("shardId-000000000001", "")
    assert book["shardId-000000000002"][3] == 0

    # A rerun lands nothing (by name or by ARN).
    again = clickhouse.cli("consume-kinesis", "--stream-arn", arn, check=True)
    assert "0 records landed" in again.stderr
    assert landed(clickhouse) == rows

    # New records land, and only they: aimed at the open shard 0 (moto would send the others to the closed parent).
    more = [put(kinesis, name, s0, data) for data in orders_changes(T_MS + 1000, 3)]
    clickhouse.cli("consume-kinesis", "--stream", name, check=True)
    after = landed(clickhouse)
    assert len(after) == len(rows) + 3
    assert {(r[2], r[3]) for r in after} - set(by_key) == {(p["shard_id"], p["sequence_number"]) for p in more}
    assert checkpoints(clickhouse)["shardId-000000000000"][2] == more[-1]["sequence_number"]


def test_a_merged_child_is_read_only_after_both_parents(kinesis, clickhouse):
    name, _ = new_stream(kinesis, 2)
    first = shards_of(kinesis, name)
    for i, data in enumerate(orders_changes(T_MS, 6)):
        put(kinesis, name, first[f"shardId-00000000000{i % 2}"], data)
    kinesis.merge_shards(StreamName=name, ShardToMerge="shardId-000000000000", AdjacentShardToMerge="shardId-000000000001")
    child = shards_of(kinesis, name)["shardId-000000000002"]
    assert (child["ParentShardId"], child["AdjacentParentShardId"]) == ("shardId-000000000000", "shardId-000000000001")

    clickhouse.cli("consume-kinesis", "--stream", name, "--batch-rows", "1", check=True)  # one insert per record
    rows = clickhouse.rows(f"SELECT shard_id, _ingested_at FROM {clickhouse.raw_db}.stream_records ORDER BY _ingested_at")
    # moto copies the parents' records into the merged child, so the child holds 6 too
    assert [r[0] for r in rows].count("shardId-000000000002") == 6 and len(rows) == 12
    last_parent = max(r[1] for r in rows if r[0] != "shardId-000000000002")
    first_child = min(r[1] for r in rows if r[0] == "shardId-000000000002")
    assert last_parent < first_child
    book = checkpoints(clickhouse)
    assert book["shardId-000000000000"][3:] == (1, 3) and book["shardId-000000000001"][3:] == (1, 3)
    assert book["shardId-000000000002"] == ("shardId-000000000000", "shardId-000000000001", "6", 0, 6)


def test_list_shards_follows_next_token(kinesis):
    from dynamodb_cdc.kinesis import KinesisSource

    name, arn = new_stream(kinesis, 3)
    kinesis.split_shard(StreamName=name, ShardToSplit="shardId-000000000002", NewStartingHashKey=str(2**127 + 2**126))
    shards = KinesisSource(kinesis, arn, list_page_size=1).list_shards()
    assert [s.shard_id for s in shards] == [f"shardId-00000000000{i}" for i in range(5)]
    assert shards[2].closed and shards[4].parent_shard_id == "shardId-000000000002"


def test_a_crash_between_insert_and_checkpoint_loses_nothing(kinesis, clickhouse):
    """The process dies after a batch is inserted but before its checkpoint is written."""
    from dynamodb_cdc.kinesis import KinesisSource
    from dynamodb_cdc.streams import BatchLimits, ConsumeOptions, consume

    name, arn = new_stream(kinesis, 1)
    shard = shards_of(kinesis, name)["shardId-000000000000"]
    puts = [put(kinesis, name, shard, data) for data in orders_changes(T_MS, 10)]

    with clickhouse.client() as client:
        # dies as the 2nd batch is inserted: its rows are in ClickHouse, its checkpoint is not
        store = crashing_store(client, clickhouse.raw_db, "insert_stream_records", 2)
        store.ensure_schema()
        with pytest.raises(Crash):
            consume(KinesisSource(kinesis, arn), store, ConsumeOptions(limits=BatchLimits(rows=3)))
    assert clickhouse.scalar(f"SELECT count() FROM {clickhouse.raw_db}.stream_records") == 6
    assert checkpoints(clickhouse)["shardId-000000000000"][2] == puts[2]["sequence_number"]  # the first batch only

    clickhouse.cli("consume-kinesis", "--stream", name, "--batch-rows", "3", check=True)
    numbers = [r[0] for r in clickhouse.rows(
        f"SELECT sequence_number FROM {clickhouse.raw_db}.stream_records ORDER BY toUInt256(sequence_number)")]
    assert set(numbers) == {p["sequence_number"] for p in puts}  # nothing missing
    duplicated = {n for n in numbers if numbers.count(n) > 1}
    assert duplicated == {p["sequence_number"] for p in puts[3:6]}  # only the batch without a checkpoint, once more
    assert len(numbers) == 13
    assert checkpoints(clickhouse)["shardId-000000000000"][2] == puts[-1]["sequence_number"]


def test_a_stream_consumed_on_a_host_whose_clock_is_behind_the_last_ones_keeps_its_checkpoint(kinesis, clickhouse,
                                                                                              monkeypatch):
    """Two consumers of a stream, one after the other on hosts an hour apart (the first ahead of the
    ClickHouse server): the second one's checkpoint wins, so a third run reads nothing again."""
    from dynamodb_cdc.kinesis import KinesisSource
    from dynamodb_cdc.store import Store
    from dynamodb_cdc.streams import ConsumeOptions, consume

    name, arn = new_stream(kinesis, 1)
    shard = shards_of(kinesis, name)["shardId-000000000000"]
    changes = orders_changes(T_MS, 5)

    def run(skew):
        skew_clock(monkeypatch, skew)
        with clickhouse.client() as client:
            store = Store(client, clickhouse.raw_db)
            store.ensure_schema()
            return consume(KinesisSource(kinesis, arn), store, ConsumeOptions())

    for data in changes[:3]:
        put(kinesis, name, shard, data)
    assert run(timedelta(hours=1)).records == 3
    last = [put(kinesis, name, shard, data) for data in changes[3:]][-1]
    assert run(timedelta(0)).records == 2
    assert run(timedelta(0)).records == 0
    assert checkpoints(clickhouse)["shardId-000000000000"][2] == last["sequence_number"]
    assert clickhouse.scalar(f"SELECT count() FROM {clickhouse.raw_db}.stream_records") == 5


def test_after_a_crash_between_insert_and_checkpoint_the_current_view_is_exact(kinesis, clickhouse, tmp_path):
    """Inserts, updates and deletes of `props`; the consumer dies with a batch landed but not
    checkpointed; the rerun lands that batch again; dbt's current view is still the end state."""
    from dynamodb_cdc.kinesis import KinesisSource
    from dynamodb_cdc.streams import BatchLimits, ConsumeOptions, consume

    name, arn = new_stream(kinesis, 1)
    shard = shards_of(kinesis, name)["shardId-000000000000"]
    state: dict[str, dict] = {}
    for i, (pk, v) in enumerate([("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", None), ("a", None), ("c", 5),
                                 ("a", 6), ("d", 7), ("d", None), ("b", 8)]):
        keys, old = {"pk": {"S": pk}}, state.get(pk)
        if v is None:
            data = change_record("props", "REMOVE", keys, old=old, at_ms=T_MS + i)
            del state[pk]
        else:
            state[pk] = {"pk": {"S": pk}, "v": {"N": str(v)}, "s": {"S": f"s{i}"}}
            data = change_record("props", "MODIFY" if old else "INSERT", keys, new=state[pk], old=old, at_ms=T_MS + i)
        put(kinesis, name, shard, data, key=pk)

    with clickhouse.client() as client:
        store = crashing_store(client, clickhouse.raw_db, "insert_stream_records", 2)
        store.ensure_schema()
        with pytest.raises(Crash):
            consume(KinesisSource(kinesis, arn), store, ConsumeOptions(limits=BatchLimits(rows=4)))
    clickhouse.cli("consume-kinesis", "--stream", name, "--batch-rows", "4", check=True)
    assert clickhouse.scalar(f"SELECT count() FROM {clickhouse.raw_db}.stream_records") == 11 + 4  # one batch twice

    dbt = Dbt(clickhouse, ROOT / "integration_tests", tmp_path, "dynamodb_cdc_integration_tests")
    dbt("run", "--select", "props_changes", "props_current")
    assert clickhouse.rows(f"SELECT pk, v, s FROM {clickhouse.schema}.props_current ORDER BY pk") == [
        ("a", 6, "s7"), ("b", 8, "s10"), ("c", 5, "s6")]


def test_follow_lands_until_sigterm_then_flushes_and_checkpoints(kinesis, clickhouse, tmp_path):
    name, arn = new_stream(kinesis, 2)
    shards = list(shards_of(kinesis, name).values())
    early = [put(kinesis, name, shards[i % 2], data) for i, data in enumerate(orders_changes(T_MS, 4))]
    log_path = tmp_path / "follow.log"
    cmd = [str(BIN / "dynamodb-cdc"), "consume-kinesis", "--stream", name, "--follow", "--batch-rows", "4",
           "--batch-seconds", "3600", "--clickhouse-url", clickhouse.url, "--raw-database", clickhouse.raw_db]
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log_file)
    try:
        wait_for_log(log_path, "landed 4 records", proc)  # the first 4 fill a batch
        late = [put(kinesis, name, shards[i % 2], data) for i, data in enumerate(users_changes(T_MS + 10)[:2])]
        time.sleep(3)  # open shards are polled every second when idle: these two are read, pending in the batch
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log_path.read_text()
    assert "SIGTERM received" in text and "landed 2 records" in text and "Traceback" not in text
    rows = landed(clickhouse)
    assert {(r[2], r[3]) for r in rows} == {(p["shard_id"], p["sequence_number"]) for p in early + late}
    assert len(rows) == 6
    book = checkpoints(clickhouse)
    for shard_id in {p["shard_id"] for p in early + late}:
        last = max((p for p in early + late if p["shard_id"] == shard_id), key=lambda p: int(p["sequence_number"]))
        assert book[shard_id][2] == last["sequence_number"]


# -- errors moto cannot produce: botocore Stubber -------------------------------------------

ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/stubbed"
SHARD = {"ShardId": "shardId-000000000000", "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": "1"},
         "SequenceNumberRange": {"StartingSequenceNumber": "49657828409187701520019995242508390119953358325192589313"}}


def seqn(i: int) -> str:
    return str(49657828409187701520019995242508390119953358325192589313 + i * 1_000_000_000_000)


def kinesis_record(i: int) -> dict:
    return {"SequenceNumber": seqn(i), "PartitionKey": f"{i:032X}",
            "ApproximateArrivalTimestamp": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc) + timedelta(milliseconds=i),
            "Data": change_record("users", "INSERT", {"id": {"S": f"u{i}"}}, new={"id": {"S": f"u{i}"}}, at_ms=T_MS + i)}


def stubbed():
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("kinesis", region_name="us-east-1", endpoint_url="http://127.0.0.1:9")
    return client, Stubber(client)


def run_stubbed(client, clickhouse, sleeps: list, rows: int = 100):
    from dynamodb_cdc.kinesis import KinesisSource
    from dynamodb_cdc.store import Store
    from dynamodb_cdc.streams import BatchLimits, ConsumeOptions, consume

    with clickhouse.client() as ch:
        store = Store(ch, clickhouse.raw_db)
        store.ensure_schema()
        return consume(KinesisSource(client, ARN), store, ConsumeOptions(limits=BatchLimits(rows=rows)),
                       sleep=sleeps.append)


def test_throttling_is_retried_and_an_expired_iterator_reopens_after_the_last_record_read(clickhouse):
    client, stub = stubbed()
    stub.add_response("list_shards", {"Shards": [SHARD]}, {"StreamARN": ARN})
    stub.add_response("get_shard_iterator", {"ShardIterator": "it-1"},
                      {"StreamARN": ARN, "ShardId": SHARD["ShardId"], "ShardIteratorType": "TRIM_HORIZON"})
    records = {"ShardIterator": "it-1", "Limit": 100, "StreamARN": ARN}
    stub.add_client_error("get_records", "ProvisionedThroughputExceededException", "Rate exceeded for shard", 400,
                          expected_params=records)
    stub.add_client_error("get_records", "LimitExceededException", "Rate exceeded", 400, expected_params=records)
    stub.add_response("get_records", {"Records": [kinesis_record(1), kinesis_record(2)], "NextShardIterator": "it-2",
                                      "MillisBehindLatest": 5000}, records)
    stub.add_client_error("get_records", "ExpiredIteratorException", "Iterator expired", 400,
                          expected_params={**records, "ShardIterator": "it-2"})
    stub.add_response("get_shard_iterator", {"ShardIterator": "it-3"},
                      {"StreamARN": ARN, "ShardId": SHARD["ShardId"], "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                       "StartingSequenceNumber": seqn(2)})
    stub.add_response("get_records", {"Records": [kinesis_record(3)], "NextShardIterator": "it-4",
                                      "MillisBehindLatest": 0}, {**records, "ShardIterator": "it-3"})
    sleeps: list[float] = []
    with stub:
        result = run_stubbed(client, clickhouse, sleeps)
        stub.assert_no_pending_responses()
    assert result.records == 3
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 0.1 and 0 <= sleeps[1] <= 0.2
    assert [r[3] for r in landed(clickhouse)] == [seqn(1), seqn(2), seqn(3)]
    assert checkpoints(clickhouse)["shardId-000000000000"][2:4] == (seqn(3), 0)


def test_throttling_without_end_is_a_clear_error_after_bounded_retries(clickhouse):
    from dynamodb_cdc.streams import MAX_ATTEMPTS, StreamError

    client, stub = stubbed()
    stub.add_response("list_shards", {"Shards": [SHARD]})
    stub.add_response("get_shard_iterator", {"ShardIterator": "it-1"})
    for _ in range(MAX_ATTEMPTS):
        stub.add_client_error("get_records", "ProvisionedThroughputExceededException", "Rate exceeded", 400)
    sleeps: list[float] = []
    with stub, pytest.raises(StreamError) as err:
        run_stubbed(client, clickhouse, sleeps)
    assert str(err.value).startswith(f"Kinesis stream {ARN}: shard shardId-000000000000: GetRecords: still "
                                     f"ProvisionedThroughputExceededException after {MAX_ATTEMPTS} attempts")
    assert len(sleeps) == MAX_ATTEMPTS - 1 and all(0 <= s <= 10 for s in sleeps)
    assert checkpoints(clickhouse)["shardId-000000000000"][2] == ""  # nothing read, nothing checkpointed


@pytest.mark.parametrize("operation,code", [("list_shards", "ResourceNotFoundException"),
                                            ("get_records", "AccessDeniedException")])
def test_missing_stream_or_access_denied_fails_at_once_naming_the_stream(clickhouse, operation, code):
    from dynamodb_cdc.streams import StreamError

    client, stub = stubbed()
    if operation == "get_records":
        stub.add_response("list_shards", {"Shards": [SHARD]})
        stub.add_response("get_shard_iterator", {"ShardIterator": "it-1"})
    stub.add_client_error(operation, code, "no", 400)
    sleeps: list[float] = []
    with stub, pytest.raises(StreamError, match=f"Kinesis stream {ARN}.*{code}: no"):
        run_stubbed(client, clickhouse, sleeps)
    assert sleeps == []


def test_a_missing_stream_is_one_line_and_exit_1(moto_endpoint, clickhouse):
    result = clickhouse.cli("consume-kinesis", "--stream", "no-such-stream")
    assert result.returncode == 1
    assert "Kinesis stream no-such-stream: ResourceNotFoundException" in result.stderr
    assert "Traceback" not in result.stderr
    bad = clickhouse.cli("consume-kinesis", "--stream", "s", "--start-position", "at_timestamp")
    assert bad.returncode == 2 and "needs --start-timestamp" in bad.stderr


def test_one_consumer_per_stream_a_second_leaves_it_to_the_first(kinesis, clickhouse, monkeypatch):
    """The stream's lease (lease.py): a consumer finding another's live lease on the stream stops at
    once, naming it, and lands nothing; the holder renews its lease as batches land and releases
    it when it returns."""
    from dynamodb_cdc import lease
    from dynamodb_cdc.kinesis import KinesisSource
    from dynamodb_cdc.store import Store
    from dynamodb_cdc.streams import BatchLimits, ConsumeOptions, consume

    name, arn = new_stream(kinesis, 1)
    shard = shards_of(kinesis, name)["shardId-000000000000"]
    puts = [put(kinesis, name, shard, data) for data in orders_changes(T_MS, 6)]
    hold_lease(clickhouse, f"stream:{arn}", command="consume-kinesis", pid=77)  # another consumer, another host
    held = clickhouse.cli("consume-kinesis", "--stream", name)
    assert held.returncode == 1 and "Traceback" not in held.stderr
    assert (f"Kinesis stream {arn} is being read by consume-kinesis (process 77 on etl-2) since " in held.stderr
            and "this run leaves it to that one" in held.stderr), held.stderr
    assert clickhouse.scalar(f"SELECT count() FROM {clickhouse.raw_db}.stream_records") == 0
    status = clickhouse.cli("status", check=True)
    assert f"reading now    {arn} by consume-kinesis (process 77 on etl-2) since " in status.stdout, status.stdout
    release_leases(clickhouse)  # that consumer stops and releases it

    renewed, reading = [], []

    class Watching(Store):
        def renew_lease(self, scope, holder):
            super().renew_lease(scope, holder)
            renewed.append(scope)
            from dynamodb_cdc import status

            reading.append([(h["stream_arn"], h["pid"]) for h in status.collect(self.client, self.db)["consumers_now"]])

    monkeypatch.setattr(lease, "RENEW_SECONDS", 0)
    with clickhouse.client() as client:
        result = consume(KinesisSource(kinesis, arn), Watching(client, clickhouse.raw_db),
                         ConsumeOptions(limits=BatchLimits(rows=2)))
    assert result.records == len(puts)
    assert len(renewed) >= 3 and set(renewed) == {f"stream:{arn}"}  # at least once per batch of 2
    assert set(map(tuple, (r[0] for r in reading))) == {(arn, os.getpid())} and all(len(r) == 1 for r in reading)
    assert clickhouse.rows(f"SELECT holder, released FROM {clickhouse.raw_db}.leases FINAL WHERE holder != 'etl-2:77:x'"
                           ) == [(lease.HOLDER, 1)]


def test_a_change_stamped_after_its_ingestion_fails_changes_not_after_ingestion(kinesis, clickhouse, tmp_path):
    """A record whose ApproximateCreationDateTime is a day ahead (a clock or unit error), or in seconds
    where Kinesis writes milliseconds (1970 once read: before DynamoDB existed), fails the dbt test."""
    name, _ = new_stream(kinesis, 1)
    shard = shards_of(kinesis, name)["shardId-000000000000"]
    now_ms = int(time.time() * 1000)
    for pk, at in (("ok", now_ms - 5_000), ("ahead", now_ms + 86_400_000), ("seconds", now_ms // 1000)):
        image = {"pk": {"S": pk}, "v": {"N": "1"}, "s": {"S": "x"}}
        put(kinesis, name, shard, change_record("props", "INSERT", {"pk": image["pk"]}, new=image, at_ms=at))
    clickhouse.cli("consume-kinesis", "--stream", name, check=True)
    dbt = Dbt(clickhouse, ROOT / "integration_tests", tmp_path, "dynamodb_cdc_integration_tests")
    dbt("run", "--select", "props_changes")
    result = dbt("test", "--select", "props_changes", check=False)
    assert result.returncode == 1
    assert "Failure in test dynamodb_cdc_changes_not_after_ingestion_props_changes_60" in result.stdout
    assert "Got 2 results, configured to fail if != 0" in result.stdout


@pytest.mark.parametrize("readers", [1, 4])
def test_shards_are_read_in_parallel_up_to_readers_and_every_record_lands_once(kinesis, clickhouse, readers):
    """GetRecords of several shards overlap (in threads) up to `readers`, never beyond; pages are
    still applied one at a time, so every record lands once and each checkpoint is its shard's last."""
    import threading
    import time

    from dynamodb_cdc.kinesis import KinesisSource
    from dynamodb_cdc.store import Store
    from dynamodb_cdc.streams import ConsumeOptions, consume

    name, arn = new_stream(kinesis, 6)
    puts = [put(kinesis, name, shard, data)
            for shard in shards_of(kinesis, name).values() for data in orders_changes(T_MS, 5)]

    class Overlap(KinesisSource):
        lock = threading.Lock()
        now = peak = 0

        def get_records(self, shard_id, iterator, limit):
            with Overlap.lock:
                Overlap.now += 1
                Overlap.peak = max(Overlap.peak, Overlap.now)
            try:
                time.sleep(0.1)  # long enough for the other readers to be in flight too
                return super().get_records(shard_id, iterator, limit)
            finally:
                with Overlap.lock:
                    Overlap.now -= 1

    with clickhouse.client() as client:
        store = Store(client, clickhouse.raw_db)
        store.ensure_schema()
        result = consume(Overlap(kinesis, arn), store, ConsumeOptions(readers=readers))
    assert Overlap.peak == readers
    assert result.records == len(puts) == 30
    landed = clickhouse.rows(f"SELECT shard_id, sequence_number FROM {clickhouse.raw_db}.stream_records")
    assert sorted(landed) == sorted((p["shard_id"], p["sequence_number"]) for p in puts)
    last = {}
    for p in puts:
        last[p["shard_id"]] = p["sequence_number"]
    assert {k: v[2] for k, v in checkpoints(clickhouse).items()} == last


def test_ttl_deletes_are_flagged_and_applied_or_kept_as_history_per_declaration(kinesis, clickhouse, tmp_path, s3):
    """A TTL REMOVE (userIdentity: the DynamoDB service) and a user's REMOVE, through a moto stream:
    `ttl_delete` (default) deletes both items; `ttl_keep` keeps the TTL-expired one with its last
    values as soft-deleted history (_ttl_deleted = 1, _is_deleted = 0). Both flag the TTL delete.
    A TTL REMOVE without its old image (a KEYS_ONLY or NEW_IMAGE stream) has nothing to keep: a delete in
    both (it was dropped by `ttl_keep`, leaving the expired item live). A later full export, which no
    longer holds the expired item, does not delete that history."""
    name, _ = new_stream(kinesis, 1)
    shard = shards_of(kinesis, name)["shardId-000000000000"]
    a, b, c, d = ({"id": {"S": k}} for k in ("s1", "s2", "s3", "s4"))
    va, vb, vc, vd = ({"id": {"S": k}, "name": {"S": n}} for k, n in (("s1", "Ann"), ("s2", "Bo"), ("s3", "Cy"), ("s4", "Di")))
    vb2 = {"id": {"S": "s2"}, "name": {"S": "Bo v2"}}
    for data in (
        change_record("sessions", "INSERT", a, new=va, at_ms=T_MS),
        change_record("sessions", "INSERT", b, new=vb, at_ms=T_MS + 1),
        change_record("sessions", "INSERT", c, new=vc, at_ms=T_MS + 2),
        change_record("sessions", "MODIFY", b, new=vb2, old=vb, at_ms=T_MS + 3),
        change_record("sessions", "REMOVE", a, old=va, at_ms=T_MS + 4),  # a user's delete
        change_record("sessions", "REMOVE", b, old=vb2, at_ms=T_MS + 5, user_identity=TTL_IDENTITY),  # TTL
        change_record("sessions", "INSERT", d, new=vd, at_ms=T_MS + 6),
        change_record("sessions", "REMOVE", d, at_ms=T_MS + 7, user_identity=TTL_IDENTITY),  # TTL, keys only
    ):
        put(kinesis, name, shard, data)
    clickhouse.cli("consume-kinesis", "--stream", name, check=True)
    dbt = Dbt(clickhouse, ROOT / "integration_tests", tmp_path, "dynamodb_cdc_integration_tests")
    dbt("run", "--select", "ttl_delete_changes", "ttl_delete_current", "ttl_keep_changes", "ttl_keep_current")

    s = clickhouse.schema
    assert clickhouse.rows(f"SELECT id, name, _ttl_deleted FROM {s}.ttl_delete_current ORDER BY id") == [("s3", "Cy", 0)]
    assert clickhouse.rows(f"SELECT id, name, _ttl_deleted FROM {s}.ttl_keep_current ORDER BY id") == [
        ("s2", "Bo v2", 1), ("s3", "Cy", 0)]
    last = "SELECT _event, _is_deleted, _ttl_deleted FROM {}.{} WHERE id = '{}' ORDER BY _version DESC LIMIT 1"
    for model, deleted in (("ttl_delete_changes", 1), ("ttl_keep_changes", 0)):
        assert clickhouse.rows(last.format(s, model, "s2")) == [("REMOVE", deleted, 1)], model  # the TTL delete
        assert clickhouse.rows(last.format(s, model, "s1")) == [("REMOVE", 1, 0)], model  # the user's delete
        assert clickhouse.rows(last.format(s, model, "s4")) == [("REMOVE", 1, 1)], model  # nothing to keep

    from dynamodb_cdc.testing.exports import write_full_export

    later = datetime.fromtimestamp((T_MS + 60_000) / 1000, timezone.utc)  # the table as it is a minute later
    write_full_export(s3, s3.bucket, "arn:aws:dynamodb:us-east-1:123456789012:table/sessions", [vc], prefix="x",
                      export_time=later, files=1)
    clickhouse.cli("load-export", f"s3://{s3.bucket}/x", check=True)
    dbt("run", "--select", "ttl_delete_changes", "ttl_delete_current", "ttl_keep_changes", "ttl_keep_current")
    assert clickhouse.rows(f"SELECT id, name, _ttl_deleted FROM {s}.ttl_delete_current ORDER BY id") == [("s3", "Cy", 0)]
    assert clickhouse.rows(f"SELECT id, name, _ttl_deleted FROM {s}.ttl_keep_current ORDER BY id") == [
        ("s2", "Bo v2", 1), ("s3", "Cy", 0)]


def _stream_insert(method, sql) -> bool:
    """A batch of stream records: RowBinary read by chDB, or clickhouse-connect's insert on a server."""
    return "_stream_records_in" in sql and (method == "insert" or sql.startswith("INSERT"))


def test_clickhouse_failing_mid_consume_is_retried_and_nothing_is_lost(kinesis, clickhouse, monkeypatch):
    """A batch whose answer was lost is inserted again (at least once, as after a crash), a refused
    checkpoint is written again; every record lands and the checkpoint reaches the last one."""
    from dynamodb_cdc import connection
    from dynamodb_cdc.kinesis import KinesisSource
    from dynamodb_cdc.streams import BatchLimits, ConsumeOptions, consume

    monkeypatch.setattr(connection, "WRITE_BACKOFF", 0.01)
    name, arn = new_stream(kinesis, 1)
    shard = shards_of(kinesis, name)["shardId-000000000000"]
    puts = [put(kinesis, name, shard, data) for data in orders_changes(T_MS, 10)]
    inserts, marks = [], []

    def plan(n, method, sql):
        if _stream_insert(method, sql):
            inserts.append(n)
            return "after" if len(inserts) == 2 else None  # the 2nd batch lands, its answer is lost
        if "stream_checkpoints" in sql and (method == "insert" or sql.startswith("INSERT")):
            marks.append(n)
            return "before" if len(marks) == 4 else None
        return None

    with clickhouse.client() as client:
        store = outage_store(clickhouse, client, plan)
        result = consume(KinesisSource(kinesis, arn), store, ConsumeOptions(limits=BatchLimits(rows=3)))
        assert [f[2] for f in store.client.failed] == ["after", "before"]
    assert result.records == 10
    numbers = [r[0] for r in clickhouse.rows(
        f"SELECT sequence_number FROM {clickhouse.raw_db}.stream_records ORDER BY toUInt256(sequence_number)")]
    assert set(numbers) == {p["sequence_number"] for p in puts}  # nothing lost
    assert {n for n in numbers if numbers.count(n) > 1} == {p["sequence_number"] for p in puts[3:6]}
    assert len(numbers) == 13  # only the batch whose answer was lost, once more
    assert checkpoints(clickhouse)["shardId-000000000000"][2] == puts[-1]["sequence_number"]


def test_clickhouse_gone_for_good_stops_the_consumer_with_its_checkpoint_at_the_rows_written(
        kinesis, clickhouse, monkeypatch):
    from dynamodb_cdc import connection
    from dynamodb_cdc.connection import ClickHouseUnavailableError
    from dynamodb_cdc.kinesis import KinesisSource
    from dynamodb_cdc.streams import BatchLimits, ConsumeOptions, consume

    monkeypatch.setattr(connection, "WRITE_BACKOFF", 0.01)
    name, arn = new_stream(kinesis, 1)
    shard = shards_of(kinesis, name)["shardId-000000000000"]
    puts = [put(kinesis, name, shard, data) for data in orders_changes(T_MS, 10)]
    inserts = []

    def plan(n, method, sql):  # two batches land, then the server is gone
        if _stream_insert(method, sql):
            inserts.append(n)
        return "before" if len(inserts) > 2 else None

    with clickhouse.client() as client:
        store = outage_store(clickhouse, client, plan)
        with pytest.raises(ClickHouseUnavailableError) as err:
            consume(KinesisSource(kinesis, arn), store, ConsumeOptions(limits=BatchLimits(rows=3)))
    assert str(err.value).startswith("ClickHouse stopped answering while landing 3 records of Kinesis stream")
    assert checkpoints(clickhouse)["shardId-000000000000"][2] == puts[5]["sequence_number"]
    assert clickhouse.scalar(f"SELECT count() FROM {clickhouse.raw_db}.stream_records") == 6
    # The stream's lease could not be released either (ClickHouse was gone).  The consumer's
    # process would now exit, and a lease of a process gone from this host holds nothing; this
    # one (the test's) lives on, so it is released here as the next consumer would find it.
    assert clickhouse.rows(f"SELECT count() FROM {clickhouse.raw_db}.leases FINAL WHERE released = 0") == [(1,)]
    release_leases(clickhouse)

    clickhouse.cli("consume-kinesis", "--stream", name, "--batch-rows", "3", check=True)
    numbers = [r[0] for r in clickhouse.rows(f"SELECT sequence_number FROM {clickhouse.raw_db}.stream_records")]
    assert sorted(numbers, key=int) == [p["sequence_number"] for p in puts]  # all, each once


def test_the_next_pages_are_read_while_a_batch_lands_and_batches_land_in_order(kinesis, clickhouse):
    """Landing runs beside reading: while batch 1 is being inserted, the consumer reads the next
    page.  Batches still land one at a time and in order, each checkpoint after its rows."""
    import threading

    from dynamodb_cdc.kinesis import KinesisSource
    from dynamodb_cdc.store import Store
    from dynamodb_cdc.streams import BatchLimits, ConsumeOptions, consume

    name, arn = new_stream(kinesis, 1)
    shard = shards_of(kinesis, name)["shardId-000000000000"]
    puts = [put(kinesis, name, shard, data) for data in orders_changes(T_MS, 9)]
    read_while_landing = threading.Event()
    landing = threading.Event()
    events: list[tuple[str, str]] = []  # (what, last sequence number), in the order they happened

    class WatchedSource(KinesisSource):
        def get_records(self, *args, **kwargs):
            if landing.is_set():
                read_while_landing.set()
            return super().get_records(*args, **kwargs)

    class SlowStore(Store):
        def insert_stream_records(self, source, stream_arn, records):
            landing.set()
            if len(events) == 0:  # the first batch waits (bounded) for a read of the next page
                read_while_landing.wait(timeout=10)
            super().insert_stream_records(source, stream_arn, records)
            events.append(("insert", records[-1].sequence_number))
            landing.clear()

        def record_checkpoints(self, source, stream_arn, cps):
            super().record_checkpoints(source, stream_arn, cps)
            events.extend(("checkpoint", cp.sequence_number) for cp in cps if cp.sequence_number)

    with clickhouse.client() as client:
        store = SlowStore(client, clickhouse.raw_db)
        store.ensure_schema()
        result = consume(WatchedSource(kinesis, arn), store, ConsumeOptions(limits=BatchLimits(rows=3)))
    assert read_while_landing.is_set()  # reading went on while batch 1 landed
    assert result.records == 9
    last = [puts[i]["sequence_number"] for i in (2, 5, 8)]
    assert [e for e in events if e[0] == "insert"] == [("insert", n) for n in last]  # in order, once each
    for n in last:  # each batch's checkpoint comes after its rows, and before the next batch's rows
        i = events.index(("insert", n))
        assert events[i + 1] == ("checkpoint", n)
    numbers = [r[0] for r in clickhouse.rows(f"SELECT sequence_number FROM {clickhouse.raw_db}.stream_records")]
    assert sorted(numbers, key=int) == [p["sequence_number"] for p in puts]


def test_the_consumers_client_reads_arrival_times_straight_into_utc(kinesis, moto_endpoint):
    """kinesis_client() parses ApproximateArrivalTimestamp with utc_timestamp (botocore's default
    makes a local-time datetime through dateutil: half the client's CPU on a full page)."""
    from dynamodb_cdc.kinesis import kinesis_client

    name, _ = new_stream(kinesis, 1)
    shard = shards_of(kinesis, name)["shardId-000000000000"]
    put(kinesis, name, shard, orders_changes(T_MS, 1)[0])
    ours = kinesis_client()
    it = ours.get_shard_iterator(StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
    [mine] = ours.get_records(ShardIterator=it["ShardIterator"])["Records"]
    it = kinesis.get_shard_iterator(StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
    [theirs] = kinesis.get_records(ShardIterator=it["ShardIterator"])["Records"]
    assert mine["ApproximateArrivalTimestamp"].tzinfo is timezone.utc
    assert theirs["ApproximateArrivalTimestamp"].tzinfo is not timezone.utc  # botocore's default parser
    assert mine["ApproximateArrivalTimestamp"] == theirs["ApproximateArrivalTimestamp"]


def test_getrecords_on_a_shard_start_a_poll_interval_apart_and_a_slow_page_is_followed_at_once(kinesis, clickhouse):
    """Kinesis allows 5 GetRecords a second per shard: the calls on one shard start at least
    poll_interval apart, counted from the start of the one before (of its last attempt, when it was
    throttled and retried).  A page that took longer than that to arrive (a slow network, a busy
    stream) is followed by the next call at once."""
    import threading

    from botocore.exceptions import ClientError

    from dynamodb_cdc.kinesis import KinesisSource
    from dynamodb_cdc.store import Store
    from dynamodb_cdc.streams import BatchLimits, ConsumeOptions, consume

    name, arn = new_stream(kinesis, 1)
    shard = shards_of(kinesis, name)["shardId-000000000000"]
    puts = [put(kinesis, name, shard, data) for data in orders_changes(T_MS, 8)]
    calls: list[tuple[float, float, bool]] = []  # (start, end, answered) of each GetRecords attempt
    lock = threading.Lock()
    poll, slow, backoff = 0.5, 1.0, 0.6

    class TimedSource(KinesisSource):
        def get_records(self, *args, **kwargs):
            start = time.monotonic()
            answered = False
            try:
                if len(calls) == 1:
                    time.sleep(slow)  # the second page is slow to arrive
                if len(calls) == 3:  # the fourth call is throttled, and retried after the backoff
                    raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException",
                                                 "Message": "Rate exceeded for shard"}}, "GetRecords")
                page = super().get_records(*args, **kwargs)
                answered = True
                return page
            finally:
                with lock:
                    calls.append((start, time.monotonic(), answered))

    with clickhouse.client() as client:
        store = Store(client, clickhouse.raw_db)
        store.ensure_schema()
        result = consume(TimedSource(kinesis, arn), store, ConsumeOptions(limits=BatchLimits(rows=2), poll_interval=poll),
                         sleep=lambda seconds: time.sleep(backoff))
    assert result.records == len(puts) == 8
    assert [answered for _, _, answered in calls[:5]] == [True, True, True, False, True]
    starts = [c[0] for c in calls]
    assert starts[4] - starts[3] >= backoff  # the throttled call was retried after its backoff
    for i, (start, _, answered) in enumerate(calls[:-1]):
        if answered:  # after each page, the next call waits for poll_interval from this call's start
            assert starts[i + 1] - start >= poll, (i, starts)
    assert calls[1][1] - calls[1][0] >= slow
    assert starts[2] - calls[1][1] < poll / 2, (starts[2] - calls[1][1])  # no extra wait after the slow page


def test_a_batch_that_cannot_land_stops_a_following_consumer_at_once(kinesis, clickhouse, monkeypatch):
    """--follow with nothing more to read: a batch whose landing fails for good ends the run with
    the error, without waiting for a next batch or a stop signal; no later record lands."""
    import threading

    from dynamodb_cdc import connection
    from dynamodb_cdc.connection import ClickHouseUnavailableError
    from dynamodb_cdc.kinesis import KinesisSource
    from dynamodb_cdc.streams import BatchLimits, ConsumeOptions, consume

    monkeypatch.setattr(connection, "WRITE_BACKOFF", 0.01)
    name, arn = new_stream(kinesis, 1)
    shard = shards_of(kinesis, name)["shardId-000000000000"]
    puts = [put(kinesis, name, shard, data) for data in orders_changes(T_MS, 4)]
    inserts = []

    def plan(n, method, sql):  # the first batch lands, then the server is gone
        if _stream_insert(method, sql):
            inserts.append(n)
        return "before" if len(inserts) > 1 else None

    stop = threading.Event()
    safety = threading.Timer(60, stop.set)  # only if the error never surfaced
    safety.start()
    try:
        with clickhouse.client() as client:
            store = outage_store(clickhouse, client, plan)
            with pytest.raises(ClickHouseUnavailableError):
                consume(KinesisSource(kinesis, arn), store,
                        ConsumeOptions(follow=True, limits=BatchLimits(rows=3, seconds=0.2), idle_interval=0.2),
                        stop=stop)
        assert not stop.is_set()  # the failure ended the run, not the safety stop
    finally:
        safety.cancel()
    assert checkpoints(clickhouse)["shardId-000000000000"][2] == puts[2]["sequence_number"]
    assert clickhouse.scalar(f"SELECT count() FROM {clickhouse.raw_db}.stream_records") == 3


def test_a_record_without_a_table_name_is_quarantined_not_landed_under_no_table(kinesis, clickhouse):
    """A DynamoDB Streams record forwarded into Kinesis (a Lambda of one's own) has eventName and Keys
    but no tableName: it landed under table '' where no model reads it."""
    name, _ = new_stream(kinesis, 1)
    (shard,) = shards_of(kinesis, name).values()
    good = json.loads(orders_changes(T_MS, 1)[0])
    forwarded = {k: v for k, v in good.items() if k != "tableName"}
    numbered = {**good, "tableName": 42}
    puts = [put(kinesis, name, shard, json.dumps(d).encode()) for d in (good, forwarded, numbered)]
    result = clickhouse.cli("consume-kinesis", "--stream", name, check=True)
    assert "2 records set aside in quarantine" in result.stderr, result.stderr
    assert [r[3] for r in landed(clickhouse)] == [puts[0]["sequence_number"]]
    q = clickhouse.rows(f"SELECT sequence_number, error FROM {clickhouse.raw_db}.quarantine ORDER BY sequence_number")
    assert q == [(p["sequence_number"], "change record has no tableName (a Kinesis record names its DynamoDB table)")
                 for p in puts[1:]]


def test_routing_views_of_an_older_version_are_brought_up_to_date(kinesis, clickhouse):
    from dynamodb_cdc import schema

    with clickhouse.client() as c:  # the views as an older dynamodb-cdc made them: no tableName check, no version
        schema.ensure(c, clickhouse.raw_db)
        old = schema.RECORD_ERROR_EXPR.replace(
            "    source = 'kinesis' AND (JSONType(data, 'tableName') != 'String' OR JSONExtractString(data, 'tableName') = ''),\n"
            "        'change record has no tableName (a Kinesis record names its DynamoDB table)',\n", "")
        assert old != schema.RECORD_ERROR_EXPR
        db = f"`{clickhouse.raw_db}`"
        c.command(f"ALTER TABLE {db}._stream_records_accept MODIFY QUERY SELECT source, stream_arn, shard_id, "
                  f"sequence_number, arrival_time, partition_key, if(table_name != '', table_name, "
                  f"JSONExtractString(data, 'tableName')) AS table_name, data, now64(6) AS _ingested_at "
                  f"FROM {db}._stream_records_in WHERE {old} = ''")
        for view in schema.ROUTING_VIEWS:
            c.command(f"ALTER TABLE {db}.{view} MODIFY COMMENT ''")
    name, _ = new_stream(kinesis, 1)
    (shard,) = shards_of(kinesis, name).values()
    forwarded = {k: v for k, v in json.loads(orders_changes(T_MS, 1)[0]).items() if k != "tableName"}
    put(kinesis, name, shard, json.dumps(forwarded).encode())
    result = clickhouse.cli("consume-kinesis", "--stream", name, check=True)
    assert "brought the routing view" in result.stderr
    assert landed(clickhouse) == []
    assert clickhouse.scalar(f"SELECT count() FROM {clickhouse.raw_db}.quarantine") == 1
    comments = clickhouse.rows(f"SELECT comment FROM system.tables WHERE database = '{clickhouse.raw_db}' "
                               f"AND name IN ('_stream_records_accept', '_stream_records_refuse')")
    assert comments == [(schema.ROUTING_VERSION,)] * 2


def test_the_closing_line_does_not_count_quarantined_records_as_landed(kinesis, clickhouse):
    """One record of three is not a DynamoDB change: it goes to quarantine, not stream_records.  The
    run's closing line said "3 records landed" while stream_records got 2."""
    name, _ = new_stream(kinesis, 1)
    (shard,) = shards_of(kinesis, name).values()
    for data in orders_changes(T_MS, 2) + [b'{"message":"not a DynamoDB change","eventName":"PUT"}']:
        put(kinesis, name, shard, data)
    result = clickhouse.cli("consume-kinesis", "--stream", name, check=True)
    assert len(landed(clickhouse)) == 2
    (closing,) = [line for line in result.stderr.splitlines() if " landed from " in line and " in " in line
                  and "checkpoints written" not in line]
    assert "2 records landed from 1 shard" in closing and "1 record set aside in quarantine" in closing, closing
    (batch,) = [line for line in result.stderr.splitlines() if "checkpoints written" in line]
    assert "landed 2 records from 1 shard (a batch of " in batch and "; 1 record set aside in quarantine;" in batch, batch
