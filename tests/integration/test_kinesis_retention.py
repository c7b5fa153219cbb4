"""Kinesis records trimmed past the stream's retention before the consumer read them, against real
chDB.

Kinesis does not refuse a checkpoint whose following records were trimmed (DynamoDB Streams does,
see test_stream_retention.py): it reads on from the oldest record kept.  So the consumer resumes AT
the checkpoint's own record, and when that record is gone it decides from the shard's
``caught_up_at`` (when it was last read to its tip) whether records after it can have been trimmed.

moto's Kinesis never trims a record, so these tests drive the real source, consumer and store
through ``ScriptedKinesis``: a Kinesis client answering from a list of records per shard, of which
those before ``trim_before`` are gone, read on from the oldest kept (as AWS does).  The consumer's
clock (``dynamodb_cdc.clock.now``) is moved forward to stand for the hours between runs.  That the
AT_SEQUENCE_NUMBER resume lands nothing twice on a real peer is covered against moto in
test_kinesis.py (every rerun there resumes that way)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dynamodb_cdc.testing.streams import change_record

ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/orders-cdc"
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def data(n: int) -> bytes:
    return change_record("orders", "INSERT", {"id": {"S": f"o{n}"}}, new={"id": {"S": f"o{n}"}, "n": {"N": str(n)}},
                         at_ms=int(T0.timestamp() * 1000) + n)


class ScriptedKinesis:
    """One open shard, ``shardId-0``: ``records`` (sequence numbers) of which those below
    ``trim_before`` are trimmed.  An iterator is the lowest sequence number it may return next."""

    def __init__(self, records: list[int], trim_before: int = 0, retention_hours: int = 24):
        self.records, self.trim_before, self.retention_hours = list(records), trim_before, retention_hours
        self.iterators: list[tuple[str, str | None]] = []

    def list_shards(self, StreamARN, **_):
        return {"Shards": [{"ShardId": "shardId-0", "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": "9"},
                            "SequenceNumberRange": {"StartingSequenceNumber": "1"}}]}

    def describe_stream_summary(self, StreamARN):
        return {"StreamDescriptionSummary": {"StreamARN": StreamARN, "RetentionPeriodHours": self.retention_hours}}

    def get_shard_iterator(self, StreamARN, ShardId, ShardIteratorType, StartingSequenceNumber=None, **_):
        self.iterators.append((ShardIteratorType, StartingSequenceNumber))
        start = {"TRIM_HORIZON": 0, "LATEST": max(self.records, default=0) + 1,
                 "AT_SEQUENCE_NUMBER": int(StartingSequenceNumber or 0),
                 "AFTER_SEQUENCE_NUMBER": int(StartingSequenceNumber or 0) + 1}[ShardIteratorType]
        return {"ShardIterator": str(start)}

    def get_records(self, ShardIterator, Limit, StreamARN=None):
        start = max(int(ShardIterator), self.trim_before)  # a trimmed position reads on from the oldest kept
        out = [n for n in self.records if n >= start][:Limit]
        following = (out[-1] + 1) if out else start
        behind = 0 if not [n for n in self.records if n >= following] else 1000
        return {"Records": [{"SequenceNumber": str(n), "ApproximateArrivalTimestamp": T0 + timedelta(seconds=n),
                             "Data": data(n), "PartitionKey": f"o{n}"} for n in out],
                "NextShardIterator": str(following), "MillisBehindLatest": behind}


@pytest.fixture
def hours_later(monkeypatch):
    """Move the loader's clock forward by the hours given (each call from now, real time)."""
    import dynamodb_cdc.clock as clock

    real = clock.now
    shift = [timedelta(0)]
    monkeypatch.setattr(clock, "now", lambda: real() + shift[0])

    def later(hours: float) -> None:
        shift[0] += timedelta(hours=hours)

    return later


def consume(clickhouse, client, start: str = "trim_horizon"):
    from dynamodb_cdc.kinesis import KinesisSource
    from dynamodb_cdc.store import Store
    from dynamodb_cdc.streams import ConsumeOptions, StartPosition, consume

    with clickhouse.client() as ch:
        store = Store(ch, clickhouse.raw_db)
        store.ensure_schema()
        return consume(KinesisSource(client, ARN), store,
                       ConsumeOptions(start=StartPosition.parse(start), poll_interval=0), sleep=lambda s: None)


def landed(clickhouse) -> list[str]:
    return [r[0] for r in clickhouse.rows(f"SELECT sequence_number FROM {clickhouse.raw_db}.stream_records "
                                          "ORDER BY toUInt256(sequence_number)")]


def checkpoint(clickhouse) -> tuple:
    return clickhouse.rows(f"SELECT sequence_number, caught_up_at FROM {clickhouse.raw_db}.stream_checkpoints FINAL "
                           "WHERE shard_id = 'shardId-0'")[0]


def losses(clickhouse) -> list[tuple]:
    return clickhouse.rows(f"SELECT location, sequence_number, payload, error FROM {clickhouse.raw_db}.quarantine "
                           "ORDER BY _ingested_at")


def test_a_checkpoint_whose_record_was_trimmed_is_a_recorded_loss_unless_the_shard_was_caught_up_since(
        clickhouse, hours_later):
    """Records 1-3 land and the shard is read to its tip.  Record 4 arrives, and the consumer next runs
    23 hours later, after 1-3 were trimmed: 4 arrived after the last run had read to the tip, inside
    the retention, so nothing can be lost.  Record 5 arrives; the next run comes 25 hours after that
    one, with 4 trimmed and 6 arrived meanwhile: what came after 4 may have been trimmed unread (5
    was), so the loss is recorded, and reading goes on from 6."""
    stream = ScriptedKinesis([1, 2, 3])
    first = consume(clickhouse, stream)
    assert (first.records, first.losses) == (3, [])
    assert stream.iterators == [("TRIM_HORIZON", None)]
    seq, caught_up = checkpoint(clickhouse)
    assert seq == "3" and caught_up is not None

    hours_later(23)
    stream.records.append(4)
    stream.trim_before = 4
    second = consume(clickhouse, stream)
    assert (second.records, second.losses) == (1, [])
    assert stream.iterators[-1] == ("AT_SEQUENCE_NUMBER", "3")
    assert losses(clickhouse) == []

    hours_later(25)
    stream.records += [5, 6]
    stream.trim_before = 6
    third = consume(clickhouse, stream)
    assert third.records == 1 and len(third.losses) == 1
    assert stream.iterators[-1] == ("AT_SEQUENCE_NUMBER", "4")
    assert landed(clickhouse) == ["1", "2", "3", "4", "6"]
    [(shard, after, payload, error)] = losses(clickhouse)
    assert (shard, after, payload) == ("shardId-0", "4", "")
    assert error.startswith("the record at the checkpoint, sequence number 4, is gone (past the stream's 24 h "
                            "retention) and the shard was last read to its tip at ")
    assert error.endswith("records after it trimmed before they were read are lost; reading went on from the "
                          "oldest record kept, 6")
    assert checkpoint(clickhouse)[0] == "6"


def test_a_run_that_lands_nothing_still_records_the_shard_read_to_its_tip(clickhouse, hours_later):
    """A quiet stream: daily runs that land nothing.  Each must record that the shard was read to its
    tip, or the run after the checkpoint's record is trimmed (a day after it arrived) reports a loss
    though no record came after it."""
    stream = ScriptedKinesis([1])
    consume(clickhouse, stream)
    _, first_caught_up = checkpoint(clickhouse)
    hours_later(20)
    assert consume(clickhouse, stream).records == 0
    seq, caught_up = checkpoint(clickhouse)
    assert seq == "1" and caught_up - first_caught_up >= timedelta(hours=20)
    hours_later(20)
    stream.trim_before = 2  # record 1 is 40 hours old
    quiet = consume(clickhouse, stream)
    assert (quiet.records, quiet.losses) == (0, [])
    assert losses(clickhouse) == []


def test_a_checkpoint_never_seen_at_the_tip_with_its_record_trimmed_is_a_loss(clickhouse, hours_later):
    """A run that stopped before reaching the tip (its batch landed, then it was killed) leaves no
    caught_up_at: with the checkpoint's record trimmed, records after it may have gone unread."""
    stream = ScriptedKinesis([1, 2, 3])
    consume(clickhouse, stream)
    with clickhouse.client() as ch:  # as if that run had ended before the tip: no caught_up_at
        ch.command(f"INSERT INTO {clickhouse.raw_db}.stream_checkpoints (source, stream_arn, shard_id, "
                   f"sequence_number, updated_at) VALUES ('kinesis', '{ARN}', 'shardId-0', '3', now64(6) + 1)")
    hours_later(30)
    stream.records.append(4)
    stream.trim_before = 4
    result = consume(clickhouse, stream)
    assert (result.records, len(result.losses)) == (1, 1)
    [(_, after, _, error)] = losses(clickhouse)
    assert after == "3" and "and the shard was not read to its tip since: " in error
    assert landed(clickhouse) == ["1", "2", "3", "4"]


def test_a_checkpoint_whose_record_is_kept_resumes_after_it_with_no_loss(clickhouse, hours_later):
    stream = ScriptedKinesis([1, 2])
    consume(clickhouse, stream)
    hours_later(48)  # long after, but nothing was trimmed (Kinesis trims lazily; retention may be longer)
    stream.records.append(3)
    result = consume(clickhouse, stream)
    assert (result.records, result.losses) == (1, [])
    assert landed(clickhouse) == ["1", "2", "3"]


@pytest.mark.parametrize("start", ["latest", "trim_horizon"])
def test_a_shard_with_nothing_landed_yet_still_reports_records_trimmed_unread(clickhouse, hours_later, start):
    """A first run that lands nothing (started at `latest`, or on a shard that holds no record yet)
    leaves a checkpoint with no sequence number.  Records 3 and 4 arrive, and the consumer next runs
    two days later with 3 trimmed: it was never read, so the loss is recorded as for any checkpoint."""
    stream = ScriptedKinesis([1, 2] if start == "latest" else [])
    first = consume(clickhouse, stream, start)
    assert (first.records, first.losses) == (0, [])
    hours_later(48)
    stream.records += [3, 4]
    stream.trim_before = 4
    later = consume(clickhouse, stream, start)
    assert landed(clickhouse) == ["4"]
    assert len(later.losses) == 1
    [(shard, after, payload, error)] = losses(clickhouse)
    assert (shard, after, payload) == ("shardId-0", "", "")
    # and once reported, the next run (the shard read to its tip meanwhile) is quiet
    assert consume(clickhouse, stream, start).losses == []


def test_a_shard_with_nothing_landed_read_within_the_retention_is_not_a_loss(clickhouse, hours_later):
    stream = ScriptedKinesis([])
    consume(clickhouse, stream)
    hours_later(20)
    stream.records += [1, 2]
    stream.trim_before = 0
    assert consume(clickhouse, stream).losses == []
    assert landed(clickhouse) == ["1", "2"]


def test_a_quiet_stream_read_daily_at_a_24_hour_retention_is_reported_and_at_25_hours_is_not(
        clickhouse, hours_later):
    """The README's rule: a quiet stream read once a day.  Its checkpoint's record is a day old at
    the next run, and the last run read the shard to its tip a day before: not inside a 24-hour
    retention (less the margins), so the run reports a loss; with a 25-hour retention it does not."""
    stream = ScriptedKinesis([1])
    consume(clickhouse, stream)
    hours_later(24)
    stream.trim_before = 2  # record 1 arrived before the first run: more than 24 hours old
    daily = consume(clickhouse, stream)
    assert (daily.records, len(daily.losses)) == (0, 1)

    stream.retention_hours = 25
    hours_later(24)
    assert consume(clickhouse, stream).losses == []
