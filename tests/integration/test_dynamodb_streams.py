"""consume-streams against real moto DynamoDB + DynamoDB Streams and a real ClickHouse.

The table is written with real PutItem / UpdateItem / DeleteItem calls; moto keeps one open shard
per table stream.  Throttling and trimmed data, which moto cannot produce, use botocore's Stubber.
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import time
import uuid
from decimal import Decimal

import pytest

from conftest import BIN, ROOT, Dbt
from dynamodb_cdc.testing.streams import wait_for_log


@pytest.fixture
def dynamodb(moto_endpoint):
    import boto3

    return boto3.client("dynamodb")


def new_table(dynamodb, *, stream: bool = True) -> tuple[str, str | None]:
    name = f"orders-{uuid.uuid4().hex[:8]}"
    spec = {"StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}} if stream else {}
    table = dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "customer", "KeyType": "HASH"}, {"AttributeName": "order", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "customer", "AttributeType": "S"},
                              {"AttributeName": "order", "AttributeType": "N"}],
        BillingMode="PAY_PER_REQUEST", **spec,
    )["TableDescription"]
    return name, table.get("LatestStreamArn")


def wire(item: dict) -> dict:
    """An item as it appears in the stream's JSON: binary values base64-encoded."""
    out = {}
    for name, value in item.items():
        (tag, v), = value.items()
        if tag == "B":
            v = base64.b64encode(v).decode()
        elif tag == "BS":
            v = [base64.b64encode(b).decode() for b in v]
        elif tag == "M":
            v = wire(v)
        out[name] = {tag: v}
    return out


class Table:
    """Writes to a moto table and remembers, per key, the change records DynamoDB must emit."""

    def __init__(self, client, name):
        self.client, self.name = client, name
        self.state: dict[tuple, dict] = {}
        self.expected: list[dict] = []

    def key_of(self, item):
        return {"customer": item["customer"], "order": item["order"]}

    def _k(self, key):
        return key["customer"]["S"], key["order"]["N"]

    def put(self, item):
        key = self.key_of(item)
        old = self.state.get(self._k(key))
        self.client.put_item(TableName=self.name, Item=item)
        self.state[self._k(key)] = item
        self.expected.append({"eventName": "MODIFY" if old else "INSERT", "Keys": key, "NewImage": item, "OldImage": old})

    def update(self, key, attribute, value):
        old = self.state[self._k(key)]
        self.client.update_item(TableName=self.name, Key=key, UpdateExpression="SET #a = :v",
                                ExpressionAttributeNames={"#a": attribute}, ExpressionAttributeValues={":v": value})
        new = {**old, attribute: value}
        self.state[self._k(key)] = new
        self.expected.append({"eventName": "MODIFY", "Keys": key, "NewImage": new, "OldImage": old})

    def delete(self, key):
        old = self.state.pop(self._k(key))
        self.client.delete_item(TableName=self.name, Key=key)
        self.expected.append({"eventName": "REMOVE", "Keys": key, "NewImage": None, "OldImage": old})


def order(customer, n, **attrs):
    return {"customer": {"S": customer}, "order": {"N": str(n)}, **attrs}


def landed(ch):
    return ch.rows(
        f"SELECT source, stream_arn, shard_id, sequence_number, partition_key, table_name, data, arrival_time "
        f"FROM {ch.raw_db}.stream_records ORDER BY shard_id, toUInt256(sequence_number)"
    )


def as_change(data: str) -> dict:
    doc = json.loads(data)
    d = doc["dynamodb"]
    return {"eventName": doc["eventName"], "Keys": d["Keys"], "NewImage": d.get("NewImage"), "OldImage": d.get("OldImage")}


def expected_change(e: dict) -> dict:
    return {"eventName": e["eventName"], "Keys": wire(e["Keys"]),
            "NewImage": wire(e["NewImage"]) if e["NewImage"] else None,
            "OldImage": wire(e["OldImage"]) if e["OldImage"] else None}


def test_table_writes_land_in_order_with_their_images(dynamodb, clickhouse):
    name, stream_arn = new_table(dynamodb)
    t = Table(dynamodb, name)
    t.put(order("c1", 1, total={"N": "19.90"}, note={"S": "première commande ☃"}, raw={"B": b"\x00\xff\x10"}))
    t.put(order("c1", 2, total={"N": "5"}, tags={"SS": ["gift", "rush"]}, shipping={"M": {"city": {"S": "Lyon"}}}))
    t.put(order("c2", 1, total={"N": "123456789012345678901234567890.5"}, blobs={"BS": [b"\x01", b"\x02"]}))
    t.update({"customer": {"S": "c1"}, "order": {"N": "1"}}, "total", {"N": "21.00"})
    t.put(order("c1", 2, total={"N": "6"}, paid={"BOOL": True}))  # overwrite: MODIFY with the old image
    t.delete({"customer": {"S": "c2"}, "order": {"N": "1"}})
    t.update({"customer": {"S": "c1"}, "order": {"N": "2"}}, "note", {"NULL": True})

    result = clickhouse.cli("consume-streams", "--table", name, check=True)
    assert "7 records landed" in result.stderr
    rows = landed(clickhouse)
    assert len(rows) == len(t.expected) == 7
    assert {(r[0], r[1], r[4], r[5]) for r in rows} == {("dynamodb_streams", stream_arn, "", name)}
    # Per key, in sequence-number order, each change carries the keys and images of the write.
    for key in {json.dumps(e["Keys"], sort_keys=True) for e in t.expected}:
        want = [expected_change(e) for e in t.expected if json.dumps(e["Keys"], sort_keys=True) == key]
        got = [as_change(r[6]) for r in rows if json.dumps(json.loads(r[6])["dynamodb"]["Keys"], sort_keys=True)
               == json.dumps(wire(json.loads(key)), sort_keys=True)]
        assert got == want
    assert [as_change(r[6]) for r in rows] == [expected_change(e) for e in t.expected]  # one shard: global order too
    first = json.loads(rows[0][6], parse_float=Decimal)
    assert isinstance(first["dynamodb"]["ApproximateCreationDateTime"], (int, Decimal))  # epoch seconds, as on the wire
    assert first["dynamodb"]["SequenceNumber"] == rows[0][3] and first["eventSource"] == "aws:dynamodb"
    assert first["dynamodb"]["NewImage"]["raw"] == {"B": "AP8Q"}  # base64 as sent, not bytes

    book = clickhouse.rows(f"SELECT shard_id, sequence_number, finished, records "
                           f"FROM {clickhouse.raw_db}.stream_checkpoints FINAL")
    assert book == [(rows[-1][2], rows[-1][3], 0, 7)]

    # Nothing new: nothing lands.  New writes: only they land (by stream ARN this time).
    assert "0 records landed" in clickhouse.cli("consume-streams", "--stream-arn", stream_arn, check=True).stderr
    t.put(order("c3", 1, total={"N": "1"}))
    t.delete({"customer": {"S": "c3"}, "order": {"N": "1"}})
    clickhouse.cli("consume-streams", "--table", name, check=True)
    after = landed(clickhouse)
    assert after[:7] == rows and len(after) == 9
    assert [as_change(r[6]) for r in after[7:]] == [expected_change(e) for e in t.expected[7:]]


def test_latest_in_follow_mode_lands_only_new_writes_then_stops_on_sigterm(dynamodb, clickhouse, tmp_path):
    name, _ = new_table(dynamodb)
    t = Table(dynamodb, name)
    t.put(order("c1", 1))  # already in the stream: `latest` skips it
    log_path = tmp_path / "follow.log"
    cmd = [str(BIN / "dynamodb-cdc"), "consume-streams", "--table", name, "--start-position", "latest", "--follow",
           "--batch-seconds", "0.2", "--clickhouse-url", clickhouse.url, "--raw-database", clickhouse.raw_db]
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log_file)
    try:
        wait_for_log(log_path, "following until stopped", proc)
        time.sleep(1)  # the LATEST iterator is opened right after that line
        t.put(order("c1", 2))
        t.update({"customer": {"S": "c1"}, "order": {"N": "2"}}, "total", {"N": "3"})
        wait_for_log(log_path, "landed 2 records", proc)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "SIGINT received" in log_path.read_text()
    rows = landed(clickhouse)
    assert [as_change(r[6]) for r in rows] == [expected_change(e) for e in t.expected[1:]]
    # The checkpoint holds: a rerun lands nothing, and never goes back to the skipped record.
    assert "0 records landed" in clickhouse.cli("consume-streams", "--table", name, check=True).stderr


def scan(dynamodb, table: str) -> dict[str, tuple]:
    """The table as DynamoDB holds it now: a Scan, decoded with boto3's TypeDeserializer."""
    from boto3.dynamodb.types import TypeDeserializer

    d = TypeDeserializer()
    out = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            row = {k: d.deserialize(v) for k, v in item.items()}
            out[row["pk"]] = (int(row["v"]), row["s"])
    return out


def random_writes(dynamodb, rng, n: int) -> None:
    """PutItem / UpdateItem / DeleteItem over a few keys, many in the same second (ties on the timestamp)."""
    for _ in range(n):
        pk = f"k{rng.randint(0, 5)}"
        op = rng.choice(["put", "put", "update", "delete"])
        if op == "put":
            item = {"pk": {"S": pk}, "v": {"N": str(rng.randint(-(2**63), 2**63 - 1))},
                    "s": {"S": rng.choice(["", "a", "é漢", "quote\" \\ '"])}}
            dynamodb.put_item(TableName="props", Item=item)
        elif op == "update":  # on a missing item this creates it (an INSERT record)
            dynamodb.update_item(TableName="props", Key={"pk": {"S": pk}}, UpdateExpression="SET v = :v, s = :s",
                                 ExpressionAttributeValues={":v": {"N": str(rng.randint(-9, 9))}, ":s": {"S": "u"}})
        else:  # a delete of a missing item writes no stream record
            dynamodb.delete_item(TableName="props", Key={"pk": {"S": pk}})


def test_current_view_equals_a_scan_of_the_table_after_random_writes(dynamodb, clickhouse, tmp_path):
    """consume-streams -> dbt, twice: the current views (incremental and materialized view) equal a Scan."""
    import random

    try:
        dynamodb.delete_table(TableName="props")  # the table name is the declaration's; start afresh
    except dynamodb.exceptions.ResourceNotFoundException:
        pass
    dynamodb.create_table(
        TableName="props", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    rng = random.Random(20261122)
    dbt = Dbt(clickhouse, ROOT / "integration_tests", tmp_path, "dynamodb_cdc_integration_tests")
    for round_ in range(2):
        random_writes(dynamodb, rng, 60)
        clickhouse.cli("consume-streams", "--table", "props", check=True)
        # The materialized-view variant is built once: later records reach it through ClickHouse alone.
        dbt("run", "--select", "props_changes", "props_current",
            *(["props_live_changes", "props_live_current"] if round_ == 0 else []))
        expected = scan(dynamodb, "props")
        assert len(expected) >= 2  # the seed leaves items to compare, and deletes in between
        for view in ("props_current", "props_live_current"):
            got = {r[0]: (r[1], r[2]) for r in clickhouse.rows(f"SELECT pk, v, s FROM {clickhouse.schema}.{view}")}
            assert got == expected, view

    refs = clickhouse.rows(f"SELECT _source, _event, _source_ref FROM {clickhouse.schema}.props_changes")
    seqs = {r[0] for r in clickhouse.rows(
        f"SELECT concat(shard_id, '#', sequence_number) FROM {clickhouse.raw_db}.stream_records")}
    # (Merges may already have dropped superseded versions: a subset of the landed records.)
    assert {r[0] for r in refs} == {"dynamodb_streams"} and {r[2] for r in refs} <= seqs
    assert len(seqs) > 100 and {r[1] for r in refs} <= {"INSERT", "MODIFY", "REMOVE"}


def test_a_table_without_a_stream_or_missing_is_one_clear_line(dynamodb, clickhouse):
    name, _ = new_table(dynamodb, stream=False)
    result = clickhouse.cli("consume-streams", "--table", name)
    assert result.returncode == 1
    assert f"DynamoDB table {name} has no stream: enable one" in result.stderr
    missing = clickhouse.cli("consume-streams", "--table", "no-such-table")
    assert missing.returncode == 1 and "DynamoDB table no-such-table: ResourceNotFoundException" in missing.stderr
    bad = clickhouse.cli("consume-streams", "--stream-arn", "arn:aws:kinesis:us-east-1:1:stream/s")
    assert bad.returncode == 2 and "is not a DynamoDB stream ARN" in bad.stderr
    for r in (result, missing, bad):
        assert "Traceback" not in r.stderr


# -- errors moto cannot produce: botocore Stubber -------------------------------------------

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2026-01-02T03:04:05.678"
SHARD = {"ShardId": "shardId-00000001767323045678-abcdef01",
         "SequenceNumberRange": {"StartingSequenceNumber": "100000000000000000001"}}


def run_stubbed(clickhouse, stub_setup):
    import boto3
    from botocore.stub import Stubber

    from dynamodb_cdc.dynamodb_streams import DynamoDBStreamsSource
    from dynamodb_cdc.store import Store
    from dynamodb_cdc.streams import consume

    client = boto3.client("dynamodbstreams", region_name="us-east-1", endpoint_url="http://127.0.0.1:9")
    stub = Stubber(client)
    stub_setup(stub)
    sleeps: list[float] = []
    with stub, clickhouse.client() as ch:
        store = Store(ch, clickhouse.raw_db)
        store.ensure_schema()
        try:
            return consume(DynamoDBStreamsSource(client, ARN), store, sleep=sleeps.append), sleeps
        finally:
            stub.assert_no_pending_responses()


def test_limit_exceeded_is_retried(clickhouse):
    def setup(stub):
        stub.add_response("describe_stream", {"StreamDescription": {"Shards": [SHARD]}}, {"StreamArn": ARN})
        stub.add_response("get_shard_iterator", {"ShardIterator": "it-1"},
                          {"StreamArn": ARN, "ShardId": SHARD["ShardId"], "ShardIteratorType": "TRIM_HORIZON"})
        stub.add_client_error("get_records", "LimitExceededException", "slow down", 400)
        stub.add_response("get_records", {"Records": [], "NextShardIterator": "it-2"},
                          {"ShardIterator": "it-1", "Limit": 1000})
        for i in (2, 3):  # an open shard is caught up after three empty pages in a row
            stub.add_response("get_records", {"Records": [], "NextShardIterator": f"it-{i + 1}"},
                              {"ShardIterator": f"it-{i}", "Limit": 1000})

    result, sleeps = run_stubbed(clickhouse, setup)
    assert result.records == 0 and len(sleeps) == 1 and 0 <= sleeps[0] <= 0.1


def test_trimmed_data_is_fatal_and_names_the_stream_and_shard(clickhouse):
    from dynamodb_cdc.streams import StreamError

    def setup(stub):
        stub.add_response("describe_stream", {"StreamDescription": {"Shards": [SHARD]}})
        stub.add_client_error("get_shard_iterator", "TrimmedDataAccessException", "data trimmed", 400)

    with pytest.raises(StreamError, match=f"DynamoDB stream {ARN}: shard {SHARD['ShardId']}: GetShardIterator: "
                                          "TrimmedDataAccessException: data trimmed"):
        run_stubbed(clickhouse, setup)


def test_ttl_deletes_in_the_streams_api_spelling_are_flagged_and_kept_per_declaration(clickhouse, tmp_path):
    """The DynamoDB Streams API spells the TTL identity {"PrincipalId", "Type"} (botocore's Identity
    shape), Kinesis and Lambda {"principalId", "type"}: only the latter was recognised, so from
    consume-streams a TTL delete was an ordinary delete and `ttl_deletes: keep` deleted the item."""
    from datetime import datetime, timezone

    import botocore.session

    from dynamodb_cdc.store import Store
    from dynamodb_cdc.streams import Record

    assert list(botocore.session.get_session().get_service_model("dynamodbstreams")
                .shape_for("Identity").members) == ["PrincipalId", "Type"]
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/sessions/stream/2026-01-02T03:04:05.678"

    def record(number, event, key, name=None, old=None, ttl=False):
        body = {"ApproximateCreationDateTime": 1767323045 + number, "Keys": {"id": {"S": key}},
                "SequenceNumber": str(100 + number), "SizeBytes": 20, "StreamViewType": "NEW_AND_OLD_IMAGES"}
        if name:
            body["NewImage"] = {"id": {"S": key}, "name": {"S": name}}
        if old:
            body["OldImage"] = {"id": {"S": key}, "name": {"S": old}}
        r = {"eventID": f"e{number}", "eventName": event, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
             "awsRegion": "us-east-1", "dynamodb": body}
        if ttl:
            r["userIdentity"] = {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
        return Record("shardId-1", str(100 + number), datetime.now(timezone.utc), "", "sessions",
                      json.dumps(r).encode())

    with clickhouse.client() as c:
        store = Store(c, clickhouse.raw_db)
        store.ensure_schema()
        store.insert_stream_records("dynamodb_streams", arn, [
            record(1, "INSERT", "s1", name="Ann"), record(2, "INSERT", "s2", name="Bo"),
            record(3, "REMOVE", "s1", old="Ann"),  # a user's delete
            record(4, "REMOVE", "s2", old="Bo", ttl=True)])  # TTL, as the Streams API sends it
    dbt = Dbt(clickhouse, ROOT / "integration_tests", tmp_path, "dynamodb_cdc_integration_tests")
    dbt("run", "--select", "ttl_delete_changes", "ttl_delete_current", "ttl_keep_changes", "ttl_keep_current")
    s = clickhouse.schema
    assert clickhouse.rows(f"SELECT id FROM {s}.ttl_delete_current") == []
    assert clickhouse.rows(f"SELECT id, name, _ttl_deleted FROM {s}.ttl_keep_current") == [("s2", "Bo", 1)]
    last = "SELECT _is_deleted, _ttl_deleted FROM {}.{} WHERE id = '{}' ORDER BY _version DESC LIMIT 1"
    for model, deleted in (("ttl_delete_changes", 1), ("ttl_keep_changes", 0)):
        assert clickhouse.rows(last.format(s, model, "s2")) == [(deleted, 1)], model
        assert clickhouse.rows(last.format(s, model, "s1")) == [(1, 0)], model


def test_table_warns_of_an_older_stream_left_unread(dynamodb, clickhouse):
    """--table follows the table's latest stream; after the stream was disabled and enabled again,
    the older one's unread records were left behind without a word."""
    from dynamodb_cdc.store import Store
    from dynamodb_cdc.streams import Checkpoint

    name, arn = new_table(dynamodb)
    older = arn.rsplit("/stream/", 1)[0] + "/stream/2020-01-01T00:00:00.000"
    with clickhouse.client() as c:
        store = Store(c, clickhouse.raw_db)
        store.ensure_schema()
        store.record_checkpoints("dynamodb_streams", older, [Checkpoint("shardId-old-1", "100"),
                                                             Checkpoint("shardId-old-2", "200", finished=True)])
    result = clickhouse.cli("consume-streams", "--table", name, check=True)
    assert (f"an older stream of this table, {older}, has 1 shard(s) not read to their end; --table reads the latest "
            f"stream only: read what is left of it with --stream-arn {older}") in result.stderr
    quiet = clickhouse.cli("consume-streams", "--stream-arn", arn, check=True)
    assert "older stream" not in quiet.stderr


def test_a_new_stream_of_a_table_already_read_is_read_from_its_beginning(dynamodb, clickhouse):
    """--start-position applies the first time a table's changes are read.  After the table's stream was
    disabled and enabled again, the new stream's first run at `latest` skipped the changes made since it
    was enabled; it now goes on from the stream read before, from its beginning."""
    from dynamodb_cdc.store import Store
    from dynamodb_cdc.streams import Checkpoint

    name, arn = new_table(dynamodb)
    earlier = arn.rsplit("/stream/", 1)[0] + "/stream/2020-01-01T00:00:00.000"
    with clickhouse.client() as c:
        store = Store(c, clickhouse.raw_db)
        store.ensure_schema()
        store.record_checkpoints("dynamodb_streams", earlier, [Checkpoint("shardId-old-1", "100", finished=True)])
    table = Table(dynamodb, name)
    table.put(order("c1", 1))
    table.put(order("c2", 2))
    result = clickhouse.cli("consume-streams", "--table", name, "--start-position", "latest", check=True)
    assert f"read from its beginning (TRIM_HORIZON), not LATEST: another stream of this table was read before ({earlier})" \
        in result.stderr, result.stderr
    assert [as_change(r[6]) for r in landed(clickhouse)] == [expected_change(e) for e in table.expected]
    # a table read for the first time: latest, as asked (the two writes are before it)
    other, _ = new_table(dynamodb)
    Table(dynamodb, other).put(order("c3", 3))
    first = clickhouse.cli("consume-streams", "--table", other, "--start-position", "latest", check=True)
    assert "another stream of this table" not in first.stderr
    assert len(landed(clickhouse)) == 2


@pytest.mark.xfail(strict=True, reason="README Roadmap: a TTL delete landed after a later full export was applied is lost "
                   "under ttl_deletes: keep (a fix reviewed this session depended on the model's unmerged history and "
                   "doubled every incremental run's reads, and was taken out); strict: it fails the suite once fixed")
def test_ttl_keep_history_is_the_same_whether_the_ttl_delete_lands_before_or_after_a_later_snapshot(
        clickhouse, s3, tmp_path):
    """`ttl_deletes: keep`: a later full export, which no longer holds a TTL-expired item, does not delete
    it.  That held only when the TTL REMOVE had landed before the full export was applied: landed after
    (the stream consumer a run behind the export loader), the snapshot's delete row was already in the
    model, at a later version than the TTL REMOVE, and the item was gone; a full refresh keeps it."""
    from datetime import datetime, timezone

    from dynamodb_cdc.testing.exports import write_full_export

    table_arn = "arn:aws:dynamodb:us-east-1:123456789012:table/sessions"
    stream_arn = table_arn + "/stream/2026-01-02T03:04:05.678"
    t0 = 1767323045  # epoch seconds
    ann = {"id": {"S": "s1"}, "name": {"S": "Ann"}}
    cy = {"id": {"S": "s3"}, "name": {"S": "Cy"}}
    write_full_export(s3, s3.bucket, table_arn, [ann, cy], prefix="ttl1",
                      export_time=datetime.fromtimestamp(t0, timezone.utc), files=1)
    clickhouse.cli("load-export", f"s3://{s3.bucket}/ttl1", check=True)
    run = _ttl_keep_runs(clickhouse, tmp_path)
    run()
    # s1 expires (TTL) at t0 + 60; a full export at t0 + 120 no longer holds it, and is applied first.
    write_full_export(s3, s3.bucket, table_arn, [cy], prefix="ttl2",
                      export_time=datetime.fromtimestamp(t0 + 120, timezone.utc), files=1)
    clickhouse.cli("load-export", f"s3://{s3.bucket}/ttl2", check=True)
    run()
    # then the stream consumer lands the TTL REMOVE, with its old image
    _land_ttl_remove(clickhouse, stream_arn, {"id": {"S": "s1"}}, ann, t0 + 60)
    run()
    current = f"SELECT id, name, _ttl_deleted FROM {clickhouse.schema}.ttl_keep_current ORDER BY id"
    incremental = clickhouse.rows(current)
    run("--full-refresh")
    assert clickhouse.rows(current) == [("s1", "Ann", 1), ("s3", "Cy", 0)]  # the history kept, as documented
    assert incremental == clickhouse.rows(current)



def test_ttl_keep_a_late_ttl_delete_does_not_revive_an_item_deleted_after_it_once_the_model_merged(
        clickhouse, s3, tmp_path):
    """`ttl_deletes: keep`: a TTL delete that lands late (after a snapshot's delete row, and after the model's
    table merged away the rows below that row) must not bring back an item re-created and deleted by a user
    after it.  A fix for the late-TTL-delete case (README Roadmap) that looked at the model's rows below the
    delete row did: after a merge only the delete row is left.  A full refresh keeps the item deleted."""
    from datetime import datetime, timezone

    from dynamodb_cdc.testing.exports import incremental_line, write_full_export, write_incremental_export

    table_arn = "arn:aws:dynamodb:us-east-1:123456789012:table/sessions"
    stream_arn = table_arn + "/stream/2026-01-02T03:04:05.678"
    t0 = 1767323040  # epoch seconds
    at = lambda s: datetime.fromtimestamp(t0 + s, timezone.utc)  # noqa: E731
    ann, ann2 = {"id": {"S": "s1"}, "name": {"S": "Ann"}}, {"id": {"S": "s1"}, "name": {"S": "Ann 2"}}
    cy = {"id": {"S": "s3"}, "name": {"S": "Cy"}}
    key = {"id": {"S": "s1"}}
    write_full_export(s3, s3.bucket, table_arn, [ann, cy], prefix="ttl", export_time=at(0), files=1)
    # s1 expires (TTL) at +60, is created again at +600 and deleted by a user at +4000; a full export at +7200.
    write_incremental_export(s3, s3.bucket, table_arn, [incremental_line(key, ann2, None, (t0 + 600) * 1_000_000)],
                             export_from=at(0), export_to=at(3600), prefix="ttl")
    write_incremental_export(s3, s3.bucket, table_arn, [incremental_line(key, None, ann2, (t0 + 4000) * 1_000_000)],
                             export_from=at(3600), export_to=at(7200), prefix="ttl")
    write_full_export(s3, s3.bucket, table_arn, [cy], prefix="ttl", export_time=at(7200), files=1)
    clickhouse.cli("load-export", f"s3://{s3.bucket}/ttl", check=True)
    run = _ttl_keep_runs(clickhouse, tmp_path)
    run()
    with clickhouse.client() as c:  # a background merge, made to happen now
        c.command(f"OPTIMIZE TABLE {clickhouse.schema}.ttl_keep_changes FINAL")
    # the stream consumer, behind, lands the TTL REMOVE of +60
    _land_ttl_remove(clickhouse, stream_arn, key, ann, t0 + 60)
    run()
    current = f"SELECT id, name, _ttl_deleted FROM {clickhouse.schema}.ttl_keep_current ORDER BY id"
    incremental = clickhouse.rows(current)
    run("--full-refresh")
    assert clickhouse.rows(current) == [("s3", "Cy", 0)]  # s1 was deleted by a user at +4000
    assert incremental == clickhouse.rows(current)


def _land_ttl_remove(clickhouse, stream_arn: str, key: dict, old_image: dict, at_s: int) -> None:
    """Land, as the DynamoDB Streams consumer would, the TTL REMOVE of `key` made at `at_s` (epoch seconds),
    with its old image (a NEW_AND_OLD_IMAGES stream)."""
    from datetime import datetime, timezone

    from dynamodb_cdc.store import Store
    from dynamodb_cdc.streams import Record

    body = {"ApproximateCreationDateTime": at_s, "Keys": key, "OldImage": old_image,
            "SequenceNumber": "100", "SizeBytes": 20, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    ttl = {"eventID": "e1", "eventName": "REMOVE", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
           "awsRegion": "us-east-1", "dynamodb": body,
           "userIdentity": {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}}
    with clickhouse.client() as c:
        Store(c, clickhouse.raw_db).insert_stream_records("dynamodb_streams", stream_arn, [
            Record("shardId-1", "100", datetime.now(timezone.utc), "", "sessions", json.dumps(ttl).encode())])


def _ttl_keep_runs(clickhouse, tmp_path):
    """The integration project's ttl_keep models, installed: returns run(*args), a `dbt run` of them (lookback 0)."""
    dbt = Dbt(clickhouse, ROOT / "integration_tests", tmp_path, "dynamodb_cdc_integration_tests")

    def run(*args: str) -> None:
        dbt("run", *args, "--select", "ttl_keep_changes", "ttl_keep_current", vars={"dynamodb_cdc_lookback_seconds": 0})

    return run
