"""A loader host whose clock is off by minutes or hours against the ClickHouse server's: the
changes model must still read every landed row and apply every full export's deletes."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

import boto3
import pytest

from conftest import ROOT, Crash, Dbt, crashing_store, skew_clock
from dynamodb_cdc.testing.exports import write_full_export

ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/customers"
T1 = datetime(2026, 1, 1, tzinfo=timezone.utc)
T2 = datetime(2026, 1, 2, tzinfo=timezone.utc)
T3 = datetime(2026, 1, 3, tzinfo=timezone.utc)


def customer(cid):
    return {"tenant": {"S": "acme"}, "customer_id": {"N": str(cid)}, "name": {"S": f"c{cid}"}}


@pytest.fixture
def dbt(clickhouse, tmp_path):
    return Dbt(clickhouse, ROOT / "integration_tests", tmp_path, "dynamodb_cdc_integration_tests")


def load_skewed(s3, ch, monkeypatch, ids, when, skew: timedelta):
    """load-export in this process, its host's clock `skew` off the server's."""
    from dynamodb_cdc.connection import open_client
    from dynamodb_cdc.load_export import LoadOptions, load_exports
    from dynamodb_cdc.store import Store

    skew_clock(monkeypatch, skew)
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


# Runs that alternate between hosts: the first on a host an hour ahead of the server, the next on
# one in step with it.  ReplacingMergeTree keeps the ledger row with the highest updated_at, so
# rows stamped by the first host's clock would outrank the later run's for an hour.  (The same for
# Kinesis checkpoints and pushes: test_kinesis.py, test_push.py.)


def test_an_export_resumed_on_a_host_whose_clock_is_behind_the_first_ones_is_recorded_loaded(s3, clickhouse, monkeypatch,
                                                                                               caplog):
    """The first run dies after three batches of a file; the next, on another host, finishes the
    export.  Its `loaded` rows must win: a third run finds nothing to load."""
    from dynamodb_cdc.load_export import LoadOptions, load_exports
    from dynamodb_cdc.s3export import s3_client
    from dynamodb_cdc.store import Store

    ch = clickhouse
    write_full_export(s3, s3.bucket, ARN, [customer(i) for i in range(45)], prefix="p", export_time=T1, files=2)
    options = LoadOptions(batch_rows=10, parallel_files=1, progress=False)
    uri = f"s3://{s3.bucket}/p"
    with ch.client() as client:
        skew_clock(monkeypatch, timedelta(hours=1))
        with pytest.raises(Crash):  # as the 4th batch is inserted: three are checkpointed
            load_exports(s3_client(), crashing_store(client, ch.raw_db, "insert_segment", 4), uri, options)
        warned = re.search(r"this host's clock is ([0-9.]+) s ahead of the ClickHouse server's", caplog.text)
        assert warned and abs(float(warned.group(1)) - 3600) < 1, caplog.text
        caplog.clear()
        skew_clock(monkeypatch, timedelta(0))
        assert load_exports(s3_client(), Store(client, ch.raw_db), uri, options).ok
        again = load_exports(s3_client(), Store(client, ch.raw_db), uri, options)
    assert again.ok
    assert [(e.files_loaded, e.files_skipped, e.lines_landed) for e in again.exports] == [(0, 2, 45)]
    assert ch.rows(f"SELECT status, count() FROM {ch.raw_db}.export_files FINAL GROUP BY status") == [("loaded", 2)]
    assert "host's clock" not in caplog.text  # in step: no warning
    assert ch.scalar(f"SELECT count() FROM {ch.raw_db}.export_lines") == 45
