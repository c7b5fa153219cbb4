"""A loader host whose clock is off by minutes or hours against the ClickHouse server's: the
changes model must still read every landed row and apply every full export's deletes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import boto3
import pytest
import time

from conftest import ROOT, Dbt
from dynamodb_cdc.testing.exports import write_full_export

ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/customers"
T1 = datetime(2026, 1, 1, tzinfo=timezone.utc)
T2 = datetime(2026, 1, 2, tzinfo=timezone.utc)
T3 = datetime(2026, 1, 3, tzinfo=timezone.utc)


def customer(cid):
    return {"tenant": {"S": "acme"}, "customer_id": {"N": str(cid)}, "name": {"S": f"c{cid}"}}


@pytest.fixture
def dbt(clickhouse, tmp_path):
    runner = Dbt(clickhouse, ROOT / "integration_tests", tmp_path, "dynamodb_cdc_integration_tests")
    runner("deps")
    return runner


def load_skewed(s3, ch, monkeypatch, ids, when, skew: timedelta):
    """load-export in this process, its host's clock `skew` off the server's."""
    from dynamodb_cdc import clock
    from dynamodb_cdc.connection import open_client
    from dynamodb_cdc.load_export import LoadOptions, load_exports
    from dynamodb_cdc.store import Store

    class Skewed(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.now(tz) + skew

    monkeypatch.setattr(clock, "datetime", Skewed)
    monkeypatch.setattr(clock, "_last", datetime.min.replace(tzinfo=timezone.utc))
    write_full_export(s3, s3.bucket, ARN, [customer(i) for i in ids], prefix="exports/customers", export_time=when)
    client = open_client(ch.url)
    try:
        assert load_exports(boto3.client("s3"), Store(client, ch.raw_db), f"s3://{s3.bucket}/exports/customers",
                            LoadOptions(progress=False)).ok
    finally:
        client.close()


@pytest.mark.parametrize("skew", [timedelta(0), timedelta(hours=1), timedelta(hours=-1)], ids=["same", "ahead", "behind"])
def test_a_loader_clock_off_the_servers_loses_no_change(s3, clickhouse, dbt, monkeypatch, skew):
    """Ahead: the delete rows of a snapshot took the loader's time as their _ingested_at, and every
    row landed before that time was skipped by the runs after.  Behind: a full export loaded after
    the model's last run looked older than the rows it had read, and its deletes were never applied."""
    ch = clickhouse
    run = lambda: (dbt("run", "--select", "customers_changes", "customers_current",
                       vars={"dynamodb_cdc_lookback_seconds": 0}), time.sleep(1))
    current = f"SELECT customer_id FROM {ch.schema}.customers_current ORDER BY customer_id"
    load_skewed(s3, ch, monkeypatch, [1, 2, 3], T1, skew)
    run()
    assert [r[0] for r in ch.rows(current)] == [1, 2, 3]
    load_skewed(s3, ch, monkeypatch, [1, 2], T2, skew)  # 3 deleted
    run()
    assert [r[0] for r in ch.rows(current)] == [1, 2]
    load_skewed(s3, ch, monkeypatch, [1, 2, 4], T3, skew)  # 4 created
    run()
    assert [r[0] for r in ch.rows(current)] == [1, 2, 4]
