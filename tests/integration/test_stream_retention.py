"""DynamoDB Streams behaviour moto cannot produce, against real chDB: empty pages before a shard's
records, closed shards, shards gone past the retention period, checkpoints whose records were
trimmed, and a stop signal while a throttled call waits.

moto's DynamoDB Streams never closes, trims or expires a shard and never answers an empty page
before records, and botocore's Stubber cannot hand the raw body the source cuts records from, so
these tests drive the real source, consumer and store through ``ScriptedStreams``: a DynamoDB
Streams client that answers from a script of pages per shard, in the wire format of AWS's
responses (the raw JSON body included)."""

from __future__ import annotations

import json
import threading

import pytest
from botocore.exceptions import ClientError

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2026-01-02T03:04:05.678"
TRIMMED = ClientError({"Error": {"Code": "TrimmedDataAccessException", "Message": "data trimmed"}}, "GetShardIterator")
THROTTLED = ClientError({"Error": {"Code": "LimitExceededException", "Message": "rate exceeded"}}, "GetRecords")


def rec(number: int, key: str, event: str = "INSERT") -> dict:
    image = {"id": {"S": key}, "v": {"N": str(number)}}
    body = {"ApproximateCreationDateTime": 1767323045, "Keys": {"id": {"S": key}}, "SequenceNumber": str(number),
            "SizeBytes": 10, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    body["OldImage" if event == "REMOVE" else "NewImage"] = image
    return {"eventID": f"e{number}", "eventName": event, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1", "dynamodb": body}


class _Meta:
    class service_model:
        class service_id:
            @staticmethod
            def hyphenize():
                return "dynamodb-streams"

    class events:
        @staticmethod
        def register(*_args, **_kwargs):
            pass


class ScriptedStreams:
    """shards: {shard id: {"parent": id, "closed": bool, "pages": [[record, ...], ...]}}.  An iterator is
    (shard, page, offset); the page after the last is empty, and a closed shard's last page has no
    NextShardIterator.  ``trimmed``: shards whose AFTER_SEQUENCE_NUMBER iterators are refused."""

    meta = _Meta

    def __init__(self, shards: dict, trimmed=(), on_get_records=None):
        self.shards, self.trimmed, self.on_get_records = shards, set(trimmed), on_get_records
        self.calls: list[tuple] = []

    def describe_stream(self, StreamArn, ExclusiveStartShardId=None):
        out = []
        for shard_id, s in self.shards.items():
            numbers = [r["dynamodb"]["SequenceNumber"] for page in s["pages"] for r in page] or ["1"]
            span = {"StartingSequenceNumber": numbers[0]}
            if s.get("closed"):
                span["EndingSequenceNumber"] = numbers[-1]
            out.append({"ShardId": shard_id, "SequenceNumberRange": span,
                        **({"ParentShardId": s["parent"]} if s.get("parent") else {})})
        return {"StreamDescription": {"StreamArn": StreamArn, "Shards": out}}

    def get_shard_iterator(self, StreamArn, ShardId, ShardIteratorType, SequenceNumber=None):
        self.calls.append(("GetShardIterator", ShardId, ShardIteratorType, SequenceNumber))
        pages = self.shards[ShardId]["pages"]
        if ShardIteratorType == "TRIM_HORIZON":
            return {"ShardIterator": f"{ShardId}|0|0"}
        if ShardIteratorType == "LATEST":
            return {"ShardIterator": f"{ShardId}|{len(pages)}|0"}
        if ShardId in self.trimmed:
            raise TRIMMED
        for p, page in enumerate(pages):
            for i, r in enumerate(page):
                if int(r["dynamodb"]["SequenceNumber"]) == int(SequenceNumber):
                    return {"ShardIterator": f"{ShardId}|{p}|{i + 1}"}
        raise AssertionError(f"no record {SequenceNumber} in {ShardId}")

    def get_records(self, ShardIterator, Limit):
        if self.on_get_records:
            self.on_get_records(self)
        shard_id, p, i = ShardIterator.split("|")
        p, i = int(p), int(i)
        s = self.shards[shard_id]
        self.calls.append(("GetRecords", shard_id, p))
        records = s["pages"][p][i:] if p < len(s["pages"]) else []
        following = f"{shard_id}|{min(p + 1, len(s['pages']))}|0"
        if s.get("closed") and p >= len(s["pages"]) - 1:
            following = None
        body = {"Records": records, **({"NextShardIterator": following} if following else {})}
        return {**body, "RawBody": json.dumps(body).encode()}


def consume(clickhouse, client, **options):
    from dynamodb_cdc.dynamodb_streams import DynamoDBStreamsSource
    from dynamodb_cdc.store import Store
    from dynamodb_cdc.streams import ConsumeOptions, consume

    with clickhouse.client() as ch:
        store = Store(ch, clickhouse.raw_db)
        store.ensure_schema()
        stop = options.pop("stop", None)
        return consume(DynamoDBStreamsSource(client, ARN), store, ConsumeOptions(poll_interval=0, **options),
                       stop=stop, sleep=None if stop else (lambda s: None))


def landed(clickhouse, shard: str | None = None) -> list[str]:
    where = f"WHERE shard_id = '{shard}'" if shard else ""
    return [r[0] for r in clickhouse.rows(f"SELECT sequence_number FROM {clickhouse.raw_db}.stream_records {where} "
                                          "ORDER BY toUInt256(sequence_number)")]


def checkpoints(clickhouse) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in clickhouse.rows(
        f"SELECT shard_id, sequence_number, finished FROM {clickhouse.raw_db}.stream_checkpoints FINAL")}


def losses(clickhouse) -> list[tuple]:
    return clickhouse.rows(f"SELECT source, table_name, origin, location, sequence_number, payload, error "
                           f"FROM {clickhouse.raw_db}.quarantine ORDER BY location, sequence_number")


def test_a_closed_shard_is_read_past_empty_pages_to_its_end_and_then_its_child(clickhouse):
    """AWS: 'it might take multiple calls to get to a portion of the shard that contains stream records'.
    A closed parent whose first page is empty was taken as caught up: never finished, its child never read."""
    client = ScriptedStreams({
        "shardId-A": {"closed": True, "pages": [[], [], [rec(101, "a"), rec(102, "b")], [rec(103, "a", "REMOVE")]]},
        "shardId-B": {"parent": "shardId-A", "pages": [[rec(201, "c")]]},
    })
    result = consume(clickhouse, client)
    assert (result.records, result.shards_finished, result.waiting, result.losses) == (4, 1, [], [])
    assert landed(clickhouse) == ["101", "102", "103", "201"]
    assert checkpoints(clickhouse) == {"shardId-A": ("103", 1), "shardId-B": ("201", 0)}


def test_an_open_shard_is_caught_up_only_after_empty_pages_in_a_row(clickhouse):
    client = ScriptedStreams({"shardId-A": {"pages": [[], [rec(101, "a")], [], [], [rec(102, "b")]]}})
    result = consume(clickhouse, client)
    assert result.records == 2 and landed(clickhouse) == ["101", "102"]
    # the pages after 102 are empty: three in a row end the run (none more)
    assert [c for c in client.calls if c[0] == "GetRecords"][-3:] == [("GetRecords", "shardId-A", 5)] * 3


def test_a_shard_gone_before_it_was_read_to_its_end_is_a_recorded_loss_and_its_child_goes_on(clickhouse):
    first = ScriptedStreams({"shardId-A": {"pages": [[rec(101, "a"), rec(102, "b")]]}})
    assert consume(clickhouse, first).records == 2
    # The consumer stopped for longer than the retention: A got 103 and 104, closed, and expired.
    later = ScriptedStreams({"shardId-B": {"parent": "shardId-A", "pages": [[rec(201, "c")]]}})
    result = consume(clickhouse, later)
    assert result.records == 1 and len(result.losses) == 1
    assert "shard shardId-A: the shard is gone (past the stream's retention) before it was read to its end: " \
           "its records after sequence number 102 were never read" in result.losses[0]
    assert losses(clickhouse) == [("dynamodb_streams", "orders", ARN, "shardId-A", "102", "",
                                   "the shard is gone (past the stream's retention) before it was read to its end: "
                                   "its records after sequence number 102 were never read")]
    assert checkpoints(clickhouse) == {"shardId-A": ("102", 1), "shardId-B": ("201", 0)}
    # reported once: the next run has nothing to say
    again = consume(clickhouse, later)
    assert (again.records, again.losses) == (0, []) and len(losses(clickhouse)) == 1


def test_a_trimmed_checkpoint_is_a_recorded_loss_and_every_shard_goes_on(clickhouse):
    """TrimmedDataAccessException on a checkpoint stopped every run, healthy shards included."""
    first = ScriptedStreams({"shardId-A": {"pages": [[rec(101, "a")]]}, "shardId-Z": {"pages": [[rec(901, "z")]]}})
    assert consume(clickhouse, first).records == 2
    later = ScriptedStreams({"shardId-A": {"pages": [[rec(150, "a"), rec(151, "b")]]},
                             "shardId-Z": {"pages": [[rec(901, "z")], [rec(902, "y")]]}}, trimmed={"shardId-A"})
    result = consume(clickhouse, later, readers=1)
    assert result.records == 3 and len(result.losses) == 1
    assert landed(clickhouse) == ["101", "150", "151", "901", "902"]
    assert [r[3:5] + r[6:] for r in losses(clickhouse)] == [(
        "shardId-A", "101", "records after sequence number 101 were trimmed (past the stream's retention) before "
        "they were read; reading went on from the oldest record kept")]
    assert checkpoints(clickhouse)["shardId-A"] == ("151", 0)


def test_a_checkpoint_trimmed_on_a_first_read_is_not_a_loss_but_a_trimmed_start_still_fails(clickhouse):
    from dynamodb_cdc.streams import StreamError

    class TrimmedEverywhere(ScriptedStreams):
        def get_shard_iterator(self, **kwargs):
            raise TRIMMED

    with pytest.raises(StreamError, match="shard shardId-A: GetShardIterator: TrimmedDataAccessException"):
        consume(clickhouse, TrimmedEverywhere({"shardId-A": {"pages": [[rec(1, "a")]]}}))
    assert losses(clickhouse) == []


def test_a_stop_signal_while_a_throttled_call_waits_lands_checkpoints_and_returns(clickhouse):
    """--follow and SIGTERM during a throttling backoff: the pending batch lands, the checkpoint is
    written, and the run ends as on any stop (it raised 'stopped while retrying': exit 1)."""
    stop = threading.Event()
    seen = []

    def throttled_after_the_first_page(client):
        seen.append(1)
        if len(seen) > 1:
            stop.set()  # the signal arrives while this call is throttled
            raise THROTTLED

    client = ScriptedStreams({"shardId-A": {"pages": [[rec(101, "a"), rec(102, "b")]]}},
                             on_get_records=throttled_after_the_first_page)
    result = consume(clickhouse, client, follow=True, stop=stop)
    assert result.records == 2 and result.losses == []
    assert landed(clickhouse) == ["101", "102"] and checkpoints(clickhouse)["shardId-A"] == ("102", 0)


def test_the_cli_exits_1_after_a_recorded_loss_and_0_on_the_next_run(clickhouse, monkeypatch, caplog):
    import dynamodb_cdc.dynamodb_streams as ddb
    from dynamodb_cdc.cli import main

    clients = iter([ScriptedStreams({"shardId-A": {"pages": [[rec(101, "a")]]}}),
                    ScriptedStreams({"shardId-B": {"parent": "shardId-A", "pages": [[rec(201, "c")]]}}),
                    ScriptedStreams({"shardId-B": {"parent": "shardId-A", "pages": [[rec(201, "c")]]}})])
    monkeypatch.setattr(ddb, "streams_clients", lambda: (None, next(clients)))
    argv = ["consume-streams", "--stream-arn", ARN, "--clickhouse-url", clickhouse.url,
            "--raw-database", clickhouse.raw_db, "--poll-seconds", "0"]
    assert main(argv) == 0
    assert main(argv) == 1
    assert "1 loss(es): the stream dropped records before they were read" in caplog.text
    assert main(argv) == 0
    assert landed(clickhouse) == ["101", "201"]


def test_records_read_from_a_shard_that_is_then_no_longer_listed_land_before_it_is_finished(clickhouse):
    """--follow: a shard read to the edge of its retention drops out of a later listing while records read
    from it wait in the batch.  Its checkpoint was finished past them before they landed, and its state
    dropped, so no checkpoint was owed at the next flush and the batch never landed: records lost, and
    the loss recorded after them, as if they had been landed."""
    stop = threading.Event()

    class Expiring(ScriptedStreams):
        def describe_stream(self, StreamArn, ExclusiveStartShardId=None):
            out = super().describe_stream(StreamArn, ExclusiveStartShardId)
            if ("GetRecords", "shardId-A", 0) in self.calls:  # gone past the retention once read
                out["StreamDescription"]["Shards"] = []
                stop.set()
            return out

    client = Expiring({"shardId-A": {"closed": True, "pages": [[rec(101, "a"), rec(102, "b")], [rec(103, "c")]]}})
    result = consume(clickhouse, client, follow=True, stop=stop, relist_interval=0)
    assert landed(clickhouse) == ["101", "102"]
    assert checkpoints(clickhouse) == {"shardId-A": ("102", 1)}
    assert result.records == 2 and len(result.losses) == 1
    assert [r[3:5] for r in losses(clickhouse)] == [("shardId-A", "102")]


def test_an_iterator_opened_at_latest_that_expires_before_a_record_is_read_is_not_reopened_at_latest(clickhouse):
    """First contact at `latest`: the shard's iterator expires (the consumer was paused) after a record
    arrived.  Reopened at LATEST again, the iterator started after that record, which was never read nor
    reported (as a second run at `latest` would skip it, which is why a later run reads such a shard
    from its beginning)."""
    from dynamodb_cdc.streams import StartPosition

    expired = ClientError({"Error": {"Code": "ExpiredIteratorException", "Message": "expired"}}, "GetRecords")
    seen = []

    def a_record_arrives_then_the_iterator_expires(client):
        seen.append(1)
        if len(seen) == 2:
            client.shards["shardId-A"]["pages"].append([rec(101, "a")])
            raise expired

    client = ScriptedStreams({"shardId-A": {"pages": [[rec(100, "old")]]}},
                             on_get_records=a_record_arrives_then_the_iterator_expires)
    result = consume(clickhouse, client, start=StartPosition.parse("latest"))
    assert "101" in landed(clickhouse) and result.losses == []
