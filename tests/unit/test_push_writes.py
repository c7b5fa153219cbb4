"""BatchWriteItem error paths moto cannot produce (UnprocessedItems, throttling, a refused item), with
botocore's Stubber, and the write-rate budget with a fake clock."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from dynamodb_cdc.push import PushError, RateLimiter, Request, write_batch
from dynamodb_cdc.push_convert import item_json

TABLE = "summary"


def client():
    return boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x",
                        endpoint_url="http://127.0.0.1:1")  # never reached: every call is stubbed


def put(i: int) -> Request:
    item = {"id": {"S": f"u-{i}"}, "n": {"N": str(i)}}
    return Request(item_json({"id": item["id"]}), f"h{i}", item=item)


def wire(requests):
    return {"RequestItems": {TABLE: [r.wire() for r in requests]}}


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


def test_unprocessed_items_are_retried_with_growing_jittered_backoff():
    c = client()
    requests = [put(i) for i in range(25)]
    sleeps = Sleeps()
    with Stubber(c) as stub:
        # a throttled peer: takes 5, then 10 more, then none, then the rest
        stub.add_response("batch_write_item", {"UnprocessedItems": {TABLE: [r.wire() for r in requests[5:]]}},
                          wire(requests))
        stub.add_response("batch_write_item", {"UnprocessedItems": {TABLE: [r.wire() for r in requests[15:]]}},
                          wire(requests[5:]))
        stub.add_response("batch_write_item", {"UnprocessedItems": {TABLE: [r.wire() for r in requests[15:]]}},
                          wire(requests[15:]))
        stub.add_response("batch_write_item", {"UnprocessedItems": {}}, wire(requests[15:]))
        outcome = write_batch(c, TABLE, requests, ["id"], RateLimiter(None), sleep=sleeps, rand=lambda: 1.0)
        stub.assert_no_pending_responses()
    assert [r.key_json for r in outcome.done] == [r.key_json for r in requests]  # each exactly once
    assert outcome.refused == []
    # full jitter with rand() = 1: the ceiling, 0.05 * 2**attempt; progress resets the attempt count
    assert sleeps == [0.05, 0.05, 0.1]


def test_throttling_errors_are_retried_then_give_up_with_a_clear_message():
    c = client()
    requests = [put(i) for i in range(3)]
    sleeps = Sleeps()
    with Stubber(c) as stub:
        for _ in range(3):
            stub.add_client_error("batch_write_item", "ProvisionedThroughputExceededException", "slow down",
                                  expected_params=wire(requests))
        with pytest.raises(PushError, match=r"3 item\(s\) still not written after 3 attempts "
                                            r"\(ProvisionedThroughputExceededException\).*--max-write-rate"):
            write_batch(c, TABLE, requests, ["id"], RateLimiter(None), sleep=sleeps, rand=lambda: 0.5,
                        max_attempts=3)
    assert sleeps == [0.025, 0.05]


def test_an_item_dynamodb_refuses_is_isolated_and_the_others_land():
    c = client()
    requests = [put(i) for i in range(3)]
    with Stubber(c) as stub:
        stub.add_client_error("batch_write_item", "ValidationException", "Item size has exceeded the maximum",
                              expected_params=wire(requests))
        stub.add_response("batch_write_item", {}, wire(requests[:1]))
        stub.add_client_error("batch_write_item", "ValidationException", "Item size has exceeded the maximum",
                              expected_params=wire(requests[1:2]))
        stub.add_response("batch_write_item", {}, wire(requests[2:]))
        outcome = write_batch(c, TABLE, requests, ["id"], RateLimiter(None), sleep=Sleeps())
        stub.assert_no_pending_responses()
    assert [r.key_json for r in outcome.done] == [requests[0].key_json, requests[2].key_json]
    assert [(r.key_json, reason) for r, reason in outcome.refused] == [
        (requests[1].key_json, "DynamoDB refused the item: Item size has exceeded the maximum")]


def test_a_missing_table_stops_at_once():
    c = client()
    with Stubber(c) as stub:
        stub.add_client_error("batch_write_item", "ResourceNotFoundException", "Requested resource not found")
        with pytest.raises(PushError, match="ResourceNotFoundException"):
            write_batch(c, TABLE, [put(1)], ["id"], RateLimiter(None), sleep=Sleeps())


def test_rate_limiter_spaces_items_over_time():
    now = [100.0]
    sleeps = Sleeps()

    def sleep(s):
        sleeps.append(s)
        now[0] += s

    limiter = RateLimiter(50, clock=lambda: now[0], sleep=sleep)
    for _ in range(4):
        limiter.acquire(25)  # 100 items at 50 items/s: 2 s, the first batch at once
    assert sleeps == pytest.approx([0.5, 0.5, 0.5])
    assert now[0] == pytest.approx(101.5)
    with pytest.raises(ValueError):
        RateLimiter(0)
