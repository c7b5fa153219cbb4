"""Kinesis Data Streams for DynamoDB records for tests, in the exact form AWS writes them.

The shape (key order, compact separators, millisecond ``ApproximateCreationDateTime``)
follows the real capture in tests/fixtures/aws/kinesis-lambda-event-dynamodb.json;
``sample_records`` returns that capture's two records byte for byte.
"""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def change_record(
    table: str,
    event: str,
    keys: dict,
    *,
    new: dict | None = None,
    old: dict | None = None,
    at_ms: int,
    user_identity: dict | None = None,
    region: str = "us-east-1",
) -> bytes:
    """One Kinesis ``Data`` payload: a DynamoDB change record as JSON (UTF-8)."""
    dynamodb: dict = {"ApproximateCreationDateTime": at_ms, "Keys": keys}
    if new is not None:
        dynamodb["NewImage"] = new
    if old is not None:
        dynamodb["OldImage"] = old
    dynamodb["SizeBytes"] = len(json.dumps(dynamodb, separators=(",", ":")))
    doc = {
        "awsRegion": region,
        "eventID": str(uuid.uuid4()),
        "eventName": event,
        "userIdentity": user_identity,
        "recordFormat": "application/json",
        "tableName": table,
        "dynamodb": dynamodb,
        "eventSource": "aws:dynamodb",
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def sample_records(path: Path) -> list[tuple[str, bytes]]:
    """(partition key, Data bytes) of each record of a captured Lambda Kinesis event."""
    event = json.loads(path.read_text())
    return [(r["kinesis"]["partitionKey"], base64.b64decode(r["kinesis"]["data"])) for r in event["Records"]]


def partition_key() -> str:
    """A 32-hex partition key like the ones DynamoDB writes."""
    return uuid.uuid4().hex.upper()


def hash_key_in(shard: dict) -> str:
    """An ExplicitHashKey inside a shard's HashKeyRange (from ListShards), to aim a record at it."""
    r = shard["HashKeyRange"]
    return str((int(r["StartingHashKey"]) + int(r["EndingHashKey"])) // 2)


def wait_for_log(path: Path, text: str, proc, timeout: float = 30.0) -> None:
    """Wait until a running consumer's log file (its stderr) contains ``text``."""
    import time

    deadline = time.monotonic() + timeout
    while text not in path.read_text():
        if proc.poll() is not None:
            raise AssertionError(f"consumer exited {proc.returncode}:\n{path.read_text()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not logged within {timeout} s:\n{path.read_text()}")
        time.sleep(0.1)
