"""``dynamodb-cdc consume-streams``: DynamoDB Streams (the ``dynamodbstreams`` API) into ``stream_records``.

botocore parses GetRecords into Python values (``ApproximateCreationDateTime``
as a datetime, B and BS as bytes), which would have to be re-serialised.
Instead, a handler on the client's ``after-call`` event keeps the HTTP body,
and ``raw_records`` cuts it into each record's JSON text exactly as AWS sent it:
that text is what lands in ``data``, so ``ApproximateCreationDateTime`` stays
the epoch-seconds number of the wire and B values stay base64.  The table name
comes from the stream ARN (``arn:...:table/NAME/stream/LABEL``).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

from .errors import UsageError
from .streams import Page, Record, Shard, StreamError, fatal_message, stream_clients

log = logging.getLogger(__name__)

RETRIABLE = frozenset({
    "LimitExceededException", "ThrottlingException", "InternalServerError", "InternalFailure",
    "ServiceUnavailable",
})
MAX_RECORDS_PER_CALL = 1_000  # GetRecords' own limit
_RAW_BODY = "RawBody"  # where the after-call handler leaves the HTTP body in the parsed response


def streams_clients():
    """(dynamodb, dynamodbstreams) clients for the consumer (see ``streams.stream_clients``)."""
    return stream_clients("dynamodb", "dynamodbstreams")


def resolve_stream_arn(dynamodb, table: str) -> str:
    """The table's latest stream (DescribeTable's LatestStreamArn)."""
    from botocore.exceptions import ClientError

    try:
        description = dynamodb.describe_table(TableName=table)["Table"]
    except ClientError as ex:
        raise StreamError(fatal_message(ex, f"DynamoDB table {table}")) from None
    arn = description.get("LatestStreamArn")
    if not arn:
        raise StreamError(
            f"DynamoDB table {table} has no stream: enable one (StreamSpecification, StreamViewType "
            "NEW_AND_OLD_IMAGES) or use consume-kinesis for a Kinesis streaming destination"
        )
    if not description.get("StreamSpecification", {}).get("StreamEnabled", True):
        log.warning("DynamoDB table %s: its stream is disabled; reading what %s still holds (24 h)", table, arn)
    return arn


def table_from_stream_arn(arn: str) -> str:
    """``arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/stream/LABEL`` -> NAME."""
    resource = arn.split(":", 5)[-1] if arn.count(":") >= 5 else ""
    parts = resource.split("/")
    if len(parts) < 4 or parts[0] != "table" or parts[2] != "stream" or not parts[1]:
        raise UsageError(f"{arn!r} is not a DynamoDB stream ARN (arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/stream/LABEL)")
    return parts[1]


def raw_records(body: bytes) -> list[str]:
    """The text of each element of ``Records`` in a GetRecords response body, exactly as sent."""
    text = body.decode("utf-8")
    decoder = json.JSONDecoder()
    i = _skip(text, 0)
    if text[i:i + 1] != "{":
        raise ValueError("GetRecords response is not a JSON object")
    i = _skip(text, i + 1)
    while text[i:i + 1] != "}":
        key, i = decoder.raw_decode(text, i)
        i = _skip(text, i)
        if text[i:i + 1] != ":":
            raise ValueError("malformed GetRecords response")
        i = _skip(text, i + 1)
        if key != "Records":
            _, i = decoder.raw_decode(text, i)
        else:
            if text[i:i + 1] != "[":
                raise ValueError("GetRecords Records is not a list")
            out = []
            i = _skip(text, i + 1)
            while text[i:i + 1] != "]":
                _, end = decoder.raw_decode(text, i)
                out.append(text[i:end])
                i = _skip(text, end)
                if text[i:i + 1] == ",":
                    i = _skip(text, i + 1)
            return out
        i = _skip(text, i)
        if text[i:i + 1] == ",":
            i = _skip(text, i + 1)
    return []


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _keep_body(http_response, parsed, **_kwargs) -> None:
    if getattr(http_response, "raw", None) is not None and http_response.status_code < 300:
        parsed[_RAW_BODY] = http_response.content


class DynamoDBStreamsSource:
    name = "dynamodb_streams"
    sequence_field = "SequenceNumber"
    retriable_codes = RETRIABLE
    expired_code = "ExpiredIteratorException"
    max_page_records = MAX_RECORDS_PER_CALL
    closed_empty_tip_ends = False  # an empty page is ordinary here; AWS ends a closed shard with no iterator
    # GetRecords may give empty pages before the part of a shard that has records: an open shard is
    # caught up after this many in a row (a closed one is read until AWS ends it with no iterator)
    empty_pages_at_tip = 3
    verifies_checkpoint = False  # a checkpoint whose records were trimmed is refused (TrimmedDataAccessException)

    def __init__(self, client, stream_arn: str):
        self.client = client
        self.stream_arn = stream_arn
        self.table_name = table_from_stream_arn(stream_arn)
        self.label = f"DynamoDB stream {stream_arn}"
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(f"after-call.{service}.GetRecords", _keep_body, unique_id="dynamodb-cdc-raw-body")

    def list_shards(self) -> list[Shard]:
        """Every shard of the stream, open or closed, following LastEvaluatedShardId."""
        shards: list[Shard] = []
        kwargs: dict = {"StreamArn": self.stream_arn}
        while True:
            description = self.client.describe_stream(**kwargs)["StreamDescription"]
            for s in description.get("Shards", []):
                shards.append(Shard(
                    s["ShardId"], s.get("ParentShardId") or "", "",
                    s.get("SequenceNumberRange", {}).get("EndingSequenceNumber") or "",
                ))
            last = description.get("LastEvaluatedShardId")
            if not last:
                return shards
            kwargs = {"StreamArn": self.stream_arn, "ExclusiveStartShardId": last}

    def get_iterator(self, args: dict) -> str:
        return self.client.get_shard_iterator(StreamArn=self.stream_arn, **args)["ShardIterator"]

    def get_records(self, shard_id: str, iterator: str, limit: int) -> Page:
        response = self.client.get_records(ShardIterator=iterator, Limit=limit)
        parsed = response.get("Records", [])
        read_at = datetime.now(timezone.utc)
        body = response.get(_RAW_BODY)
        if body is None and parsed:
            raise StreamError(f"{self.label}: shard {shard_id}: GetRecords returned records without a raw body")
        try:
            texts = raw_records(body) if body is not None else []
        except ValueError as ex:
            raise StreamError(f"{self.label}: shard {shard_id}: cannot split the GetRecords response: {ex}") from None
        if len(texts) != len(parsed):
            raise StreamError(f"{self.label}: shard {shard_id}: GetRecords body has {len(texts)} records, "
                              f"botocore parsed {len(parsed)}")
        records = []
        for record, text in zip(parsed, texts):
            number = record["dynamodb"]["SequenceNumber"]
            if number not in text:
                raise StreamError(f"{self.label}: shard {shard_id}: record {number} does not match the raw body")
            records.append(Record(shard_id, number, read_at, "", self.table_name, text.encode("utf-8")))
        return Page(records, response.get("NextShardIterator"), at_tip=not records)
