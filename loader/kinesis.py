"""``dynamodb-cdc consume-kinesis``: Kinesis Data Streams for DynamoDB into ``stream_records``.

Each Kinesis record's ``Data`` is one DynamoDB change as JSON; it lands as the
bytes received, with the shard, sequence number, partition key and arrival
time.  The table name is read from the data by ClickHouse (the routing view),
so the loader never parses a payload.  The shard-reading logic is in
``streams``.
"""

from __future__ import annotations

import logging
from datetime import timezone

from .streams import Page, Record, Shard, StreamError, fatal_message, stream_clients

log = logging.getLogger(__name__)

# Throttling (GetRecords: 5 calls/s and 2 MB/s per shard; ListShards and friends:
# LimitExceededException), KMS throttling of encrypted streams, and 5xx answers.
RETRIABLE = frozenset({
    "ProvisionedThroughputExceededException", "LimitExceededException", "KMSThrottlingException",
    "InternalFailure", "InternalFailureException", "ServiceUnavailable", "ServiceUnavailableException",
})
MAX_RECORDS_PER_CALL = 10_000  # GetRecords' own limit


def kinesis_client():
    """A Kinesis client for the consumer (see ``streams.stream_clients``)."""
    return stream_clients("kinesis")[0]


def resolve_stream_arn(client, *, name: str | None = None, arn: str | None = None) -> str:
    """The stream's ARN (checkpoints are keyed on it), checking that the stream exists."""
    from botocore.exceptions import ClientError

    what = f"Kinesis stream {arn or name}"
    try:
        summary = client.describe_stream_summary(**({"StreamARN": arn} if arn else {"StreamName": name}))
    except ClientError as ex:
        raise StreamError(fatal_message(ex, what)) from None
    return summary["StreamDescriptionSummary"]["StreamARN"]


class KinesisSource:
    name = "kinesis"
    sequence_field = "StartingSequenceNumber"
    retriable_codes = RETRIABLE
    expired_code = "ExpiredIteratorException"
    max_page_records = MAX_RECORDS_PER_CALL
    # A closed shard never gets a null NextShardIterator from moto; at the tip with nothing left
    # it is at its end on AWS too (see streams.shard_ended).
    closed_empty_tip_ends = True
    empty_pages_at_tip = 0  # MillisBehindLatest says when a shard is caught up
    # Kinesis reads on from the oldest record kept when a checkpoint's records were trimmed, without
    # a word: a consumer resumes AT the checkpoint's own record, which must come back first (streams).
    verifies_checkpoint = True

    def __init__(self, client, stream_arn: str, *, list_page_size: int | None = None):
        self.client = client
        self.stream_arn = stream_arn
        self.label = f"Kinesis stream {stream_arn}"
        self.list_page_size = list_page_size  # ListShards MaxResults (tests page through small listings)

    def list_shards(self) -> list[Shard]:
        """Every shard not yet expired, open or closed, following NextToken."""
        shards: list[Shard] = []
        kwargs: dict = {"StreamARN": self.stream_arn}
        if self.list_page_size:
            kwargs["MaxResults"] = self.list_page_size
        while True:
            response = self.client.list_shards(**kwargs)
            for s in response.get("Shards", []):
                shards.append(Shard(
                    s["ShardId"], s.get("ParentShardId") or "", s.get("AdjacentParentShardId") or "",
                    s.get("SequenceNumberRange", {}).get("EndingSequenceNumber") or "",
                ))
            token = response.get("NextToken")
            if not token or not response.get("Shards"):
                return shards
            # StreamName may not go with NextToken; StreamARN may, and moto needs it.
            kwargs = {"StreamARN": self.stream_arn, "NextToken": token}
            if self.list_page_size:
                kwargs["MaxResults"] = self.list_page_size

    def get_iterator(self, args: dict) -> str:
        return self.client.get_shard_iterator(StreamARN=self.stream_arn, **args)["ShardIterator"]

    def retention_hours(self) -> float:
        """The stream's retention period: records older than this may have been trimmed."""
        summary = self.client.describe_stream_summary(StreamARN=self.stream_arn)["StreamDescriptionSummary"]
        return float(summary["RetentionPeriodHours"])

    def get_records(self, shard_id: str, iterator: str, limit: int) -> Page:
        response = self.client.get_records(ShardIterator=iterator, Limit=limit, StreamARN=self.stream_arn)
        records = [
            Record(
                shard_id=shard_id,
                sequence_number=r["SequenceNumber"],
                arrival_time=r["ApproximateArrivalTimestamp"].astimezone(timezone.utc),
                partition_key=r.get("PartitionKey", ""),
                table_name="",  # ClickHouse reads tableName from the data
                data=bytes(r["Data"]),  # exactly as received
            )
            for r in response.get("Records", [])
        ]
        # MillisBehindLatest == 0 means caught up; a full page may still have more behind it
        # (moto counts it in whole milliseconds between records).
        at_tip = response.get("MillisBehindLatest") == 0 and len(records) < limit
        return Page(records, response.get("NextShardIterator"), at_tip, response.get("MillisBehindLatest"))
