"""Stream-consumer decisions, without AWS or ClickHouse: shard order, iterators, sequence numbers,
batching, backoff, error classes, and cutting raw records out of a DynamoDB Streams response."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from dynamodb_cdc.dynamodb_streams import raw_records, table_from_stream_arn
from dynamodb_cdc.streams import (
    AT_TIMESTAMP,
    EXPIRED,
    FATAL,
    LATEST,
    RETRY,
    TRIM_HORIZON,
    BatchLimits,
    Checkpoint,
    Page,
    Shard,
    StartPosition,
    StreamError,
    backoff_delay,
    classify,
    fatal_message,
    iterator_args,
    readable,
    seq,
    shard_ended,
    shard_order,
    should_flush,
    start_position,
)

S56 = "49657828409187701520019995242508390119953358325192589314"  # a real 56-digit Kinesis sequence number


def ids(shards):
    return [s.shard_id for s in shards]


# -- shard graph ------------------------------------------------------------------


def test_parents_come_before_children_whatever_the_listing_order():
    shards = [Shard("s-3", "s-1"), Shard("s-2", "s-1"), Shard("s-1", ending_sequence_number="9")]
    assert ids(shard_order(shards)) == ["s-1", "s-2", "s-3"]


def test_a_merged_child_comes_after_both_parents():
    # s-2 and s-0 are merged into s-1 (ids need not follow the graph)
    shards = [Shard("s-1", "s-2", "s-0"), Shard("s-2", ending_sequence_number="5"), Shard("s-0", ending_sequence_number="7")]
    order = ids(shard_order(shards))
    assert order.index("s-0") < order.index("s-1") and order.index("s-2") < order.index("s-1")


def test_several_generations_of_splits_and_merges():
    # a splits into b, c; c splits into d, e; b and d merge into f; f splits into g, h
    shards = [
        Shard("h", "f"), Shard("g", "f"), Shard("f", "b", "d", "99"), Shard("e", "c"), Shard("d", "c", "", "50"),
        Shard("c", "a", "", "40"), Shard("b", "a", "", "30"), Shard("a", "", "", "10"),
    ]
    order = ids(shard_order(shards))
    assert sorted(order) == sorted(ids(shards)) and len(order) == len(set(order))
    for s in shards:
        for p in s.parents:
            assert order.index(p) < order.index(s.shard_id), (p, s.shard_id)


def test_expired_parents_and_cycles_do_not_block_the_order():
    assert ids(shard_order([Shard("b", "gone"), Shard("a")])) == ["a", "b"]
    assert sorted(ids(shard_order([Shard("x", "y"), Shard("y", "x")]))) == ["x", "y"]


def test_a_child_is_readable_only_once_both_parents_are_done():
    child = Shard("c", "p1", "p2")
    listed = {"p1", "p2", "c"}
    assert not readable(child, listed, set())
    assert not readable(child, listed, {"p1"})
    assert not readable(child, listed, {"p2"})
    assert readable(child, listed, {"p1", "p2"})
    # a parent past the retention period is no longer listed: it cannot hold its child back
    assert readable(child, {"p2", "c"}, {"p2"})
    assert readable(Shard("root"), {"root"}, set())


# -- where a shard starts ------------------------------------------------------------


def test_iterator_args_after_the_checkpoint():
    shard = Shard("shardId-000000000001")
    cp = Checkpoint("shardId-000000000001", S56)
    for start in (StartPosition(), StartPosition(LATEST)):
        assert iterator_args(shard, cp, start) == {
            "ShardId": "shardId-000000000001", "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
            "StartingSequenceNumber": S56}
    assert iterator_args(shard, cp, StartPosition(), sequence_field="SequenceNumber") == {
        "ShardId": "shardId-000000000001", "ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": S56}


def test_iterator_args_without_a_checkpoint_use_the_start_position():
    shard = Shard("s")
    t = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert iterator_args(shard, None, StartPosition()) == {"ShardId": "s", "ShardIteratorType": TRIM_HORIZON}
    assert iterator_args(shard, None, StartPosition(LATEST)) == {"ShardId": "s", "ShardIteratorType": LATEST}
    assert iterator_args(shard, Checkpoint("s"), StartPosition(AT_TIMESTAMP, t)) == {
        "ShardId": "s", "ShardIteratorType": AT_TIMESTAMP, "Timestamp": t}


def test_the_start_position_applies_at_first_contact_only():
    latest, at = StartPosition(LATEST), StartPosition(AT_TIMESTAMP, datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert start_position(None, latest, first_contact=True) == latest
    assert start_position(Checkpoint("s"), at, first_contact=True) == at
    # a shard born after the first run (a reshard's child): all of it is new
    assert start_position(None, latest, first_contact=False).kind == TRIM_HORIZON
    assert start_position(None, at, first_contact=False).kind == TRIM_HORIZON
    # first read at LATEST, nothing landed since: LATEST again would skip what arrived in between
    assert start_position(Checkpoint("s"), latest, first_contact=False).kind == TRIM_HORIZON
    assert start_position(Checkpoint("s"), at, first_contact=False) == at


def test_start_position_parsing():
    assert StartPosition.parse("trim_horizon") == StartPosition(TRIM_HORIZON)
    p = StartPosition.parse("at_timestamp", "2026-01-02T03:04:05Z")
    assert p == StartPosition(AT_TIMESTAMP, datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc))
    assert StartPosition.parse("at_timestamp", "2026-01-02T05:04:05+02:00").timestamp == p.timestamp
    assert StartPosition.parse("at_timestamp", "2026-01-02 03:04:05").timestamp == p.timestamp  # naive = UTC
    with pytest.raises(ValueError, match="needs --start-timestamp"):
        StartPosition.parse("at_timestamp")
    with pytest.raises(ValueError, match="goes with --start-position at_timestamp"):
        StartPosition.parse("latest", "2026-01-02T03:04:05Z")
    with pytest.raises(ValueError, match="not an ISO 8601 time"):
        StartPosition.parse("at_timestamp", "yesterday")


# -- sequence numbers ----------------------------------------------------------------


def test_sequence_numbers_compare_as_integers():
    assert "9" > "10" and seq("9") < seq("10")
    shorter, longer = "9" * 55, "1" + "0" * 55  # 55 nines < 10^55
    assert shorter > longer and seq(shorter) < seq(longer)
    assert seq(S56) + 1 == seq("49657828409187701520019995242508390119953358325192589315")
    for bad in ("", "12a", "-1", "1.5", None):
        with pytest.raises(StreamError, match="unexpected sequence number"):
            seq(bad)


def page(records=0, next_iterator="it", at_tip=False):
    return Page([object()] * records, next_iterator, at_tip)  # records are only counted here


def test_a_shard_ends_when_there_is_no_next_iterator():
    assert shard_ended(Shard("s"), page(0, None), None)
    assert shard_ended(Shard("s", ending_sequence_number="5"), page(3, None), 5)


def test_a_closed_shard_ends_at_its_ending_sequence_number_compared_as_an_integer():
    closed = Shard("s", ending_sequence_number="10")
    assert not shard_ended(closed, page(1), seq("9"))  # '9' > '10' as strings
    assert shard_ended(closed, page(1), seq("10"))
    big = Shard("s", ending_sequence_number="1" + "0" * 55)
    assert not shard_ended(big, page(1), seq("9" * 55))
    assert shard_ended(big, page(1), seq("1" + "0" * 55))


def test_an_open_shard_never_ends_and_an_empty_tip_ends_a_closed_one_only_where_allowed():
    assert not shard_ended(Shard("s"), page(0, at_tip=True), 5, closed_empty_tip_ends=True)
    closed = Shard("s", ending_sequence_number="100")
    assert shard_ended(closed, page(0, at_tip=True), None, closed_empty_tip_ends=True)
    assert not shard_ended(closed, page(0, at_tip=True), None, closed_empty_tip_ends=False)
    assert not shard_ended(closed, page(0, at_tip=False), None, closed_empty_tip_ends=True)
    assert not shard_ended(closed, page(2, at_tip=True), 50, closed_empty_tip_ends=True)


# -- batching and backoff ------------------------------------------------------------


def test_a_batch_flushes_at_whichever_limit_comes_first():
    limits = BatchLimits(rows=100, bytes=1000, seconds=5)
    assert not should_flush(99, 999, 4.99, limits)
    assert should_flush(100, 0, 0, limits)
    assert should_flush(1, 1000, 0, limits)
    assert should_flush(1, 10, 5.0, limits)
    assert should_flush(0, 0, 5.0, limits)  # a finished shard's checkpoint is owed too
    assert BatchLimits() == BatchLimits(100_000, 20 * 1024 * 1024, 5.0)  # ClickPipes-like defaults
    with pytest.raises(ValueError):
        BatchLimits(rows=0)
    with pytest.raises(ValueError):
        BatchLimits(seconds=-1)


def test_backoff_is_full_jitter_bounded_by_the_cap():
    assert backoff_delay(0, rand=lambda: 0.0) == 0.0
    ceilings = [backoff_delay(n, rand=lambda: 1.0) for n in range(12)]
    assert ceilings[:5] == [0.1, 0.2, 0.4, 0.8, 1.6]
    assert max(ceilings) == 10.0 and ceilings == sorted(ceilings)
    assert backoff_delay(10_000, rand=lambda: 1.0) == 10.0  # no overflow
    import random

    rng = random.Random(7)
    for n in range(20):
        d = backoff_delay(n, rand=rng.random)
        assert 0.0 <= d <= min(10.0, 0.1 * 2 ** n)


def client_error(code, message="boom", op="GetRecords"):
    return ClientError({"Error": {"Code": code, "Message": message}}, op)


def test_throttling_and_network_errors_are_retried_the_rest_is_fatal():
    kinesis = frozenset({"ProvisionedThroughputExceededException", "LimitExceededException"})
    expired = "ExpiredIteratorException"
    assert classify(client_error("ProvisionedThroughputExceededException"), kinesis, expired) == RETRY
    assert classify(client_error("LimitExceededException"), kinesis, expired) == RETRY
    assert classify(client_error(expired), kinesis, expired) == EXPIRED
    for code in ("ResourceNotFoundException", "AccessDeniedException", "InvalidArgumentException", "KMSAccessDeniedException"):
        assert classify(client_error(code), kinesis, expired) == FATAL
    assert classify(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), kinesis, expired) == RETRY
    assert classify(ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), kinesis, expired) == RETRY
    assert classify(RuntimeError("bug"), kinesis, expired) == FATAL


def test_fatal_messages_name_the_stream_and_say_what_to_check():
    m = fatal_message(client_error("ResourceNotFoundException", "Stream s under account 1 not found."),
                      "Kinesis stream arn:aws:kinesis:us-east-1:1:stream/s: listing shards")
    assert m == ("Kinesis stream arn:aws:kinesis:us-east-1:1:stream/s: listing shards: ResourceNotFoundException: "
                 "Stream s under account 1 not found. (check the name, the region and AWS_ENDPOINT_URL)")
    assert "check the credentials and the IAM policy" in fatal_message(client_error("AccessDeniedException"), "x")


# -- DynamoDB Streams: raw records and table names -------------------------------------


def test_raw_records_are_cut_out_of_the_body_exactly():
    r1 = ('{"eventID":"1","eventName":"INSERT","dynamodb":{"ApproximateCreationDateTime":1.7319245E9,'
          '"Keys":{"id":{"S":"a]}\\"[{"}},"NewImage":{"b":{"B":"AP8="},"l":{"L":[{"N":"1.50"},{"NULL":true}]}},'
          '"SequenceNumber":"111","SizeBytes":9,"StreamViewType":"NEW_AND_OLD_IMAGES"}}')
    r2 = '{ "eventID" : "2", "eventName" : "REMOVE", "text": "\\u00e9t\\u00e9 ☃" }'
    body = ('{"NextShardIterator":"arn:aws:dynamodb:...|1|AAA",  "Records" : [ ' + r1 + ' ,\n' + r2 + ' ] }').encode()
    assert raw_records(body) == [r1, r2]
    assert json.loads(raw_records(body)[0])["dynamodb"]["ApproximateCreationDateTime"] == 1.7319245e9
    assert raw_records(b'{"Records":[],"NextShardIterator":"x"}') == []
    assert raw_records(b'{"NextShardIterator":null}') == []
    with pytest.raises(ValueError):
        raw_records(b'[1]')


def test_table_name_from_a_stream_arn():
    arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/orders/stream/2026-01-02T03:04:05.678"
    assert table_from_stream_arn(arn) == "orders"
    assert table_from_stream_arn("arn:aws-cn:dynamodb:cn-north-1:1:table/a.b-c_d/stream/x") == "a.b-c_d"
    for bad in ("arn:aws:kinesis:us-east-1:1:stream/s", "orders", "arn:aws:dynamodb:us-east-1:1:table/orders"):
        with pytest.raises(ValueError, match="is not a DynamoDB stream ARN"):
            table_from_stream_arn(bad)


def test_kinesis_times_are_read_straight_into_utc_whatever_the_local_zone(monkeypatch):
    import time as _time

    from botocore.utils import parse_timestamp

    from dynamodb_cdc.streams import utc_timestamp

    monkeypatch.setenv("TZ", "America/New_York")
    _time.tzset()
    try:
        for wire in (1767323045.678, 1767323045, "2026-01-02T03:04:05.678Z", "2026-01-01T22:04:05.678-05:00"):
            got = utc_timestamp(wire)
            assert got.utcoffset().total_seconds() == 0
            assert got == parse_timestamp(wire)  # the same instant as botocore's own parser
            assert got == datetime(2026, 1, 2, 3, 4, 5, 678000 if wire != 1767323045 else 0, tzinfo=timezone.utc)
    finally:
        monkeypatch.delenv("TZ")
        _time.tzset()



def test_poll_seconds_reaches_the_consumer_and_a_negative_one_is_refused(monkeypatch, caplog):
    from dynamodb_cdc.cli import _consume_options, build_parser, main

    parse = build_parser().parse_args
    assert _consume_options(parse(["consume-kinesis", "--stream", "s"])).poll_interval == 0.2
    assert _consume_options(parse(["consume-kinesis", "--stream", "s", "--poll-seconds", "1.5"])).poll_interval == 1.5
    monkeypatch.setenv("DYNAMODB_CDC_POLL_SECONDS", "0.7")
    assert _consume_options(build_parser().parse_args(["consume-streams", "--table", "t"])).poll_interval == 0.7
    assert main(["consume-kinesis", "--stream", "s", "--poll-seconds", "-1"]) == 2
    assert "--poll-seconds must be 0 or more" in caplog.text
