"""request-export against moto's DynamoDB: the export is requested for the right table and waited for.

moto writes an export's data but no manifests and ignores the incremental window,
so the window chaining and the request parameters are checked in
tests/unit/test_request_export.py, and loading in test_load_export.py.
"""

from __future__ import annotations

from datetime import datetime, timezone

import boto3

from dynamodb_cdc.testing.exports import write_full_export


def test_first_request_is_a_full_export_and_waits_for_it(moto_endpoint, clickhouse, s3):
    dynamodb = boto3.client("dynamodb")
    name = f"orders-{s3.bucket[-6:]}"
    dynamodb.create_table(
        TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName=name, Item={"id": {"S": "1"}})
    refused = clickhouse.cli("request-export", "--table", name, "--s3-bucket", s3.bucket, "--s3-prefix", "exports")
    assert refused.returncode == 1 and "Point in time recovery is not enabled" in refused.stderr
    dynamodb.update_continuous_backups(
        TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    result = clickhouse.cli("request-export", "--table", name, "--s3-bucket", s3.bucket, "--s3-prefix", "exports",
                            "--wait", "--poll-seconds", "1", check=True)
    assert "requested FULL_EXPORT (no full export loaded yet)" in result.stderr
    assert "export completed" in result.stderr
    table_arn = dynamodb.describe_table(TableName=name)["Table"]["TableArn"]
    exports = dynamodb.list_exports(TableArn=table_arn)["ExportSummaries"]
    assert [e["ExportType"] for e in exports] == ["FULL_EXPORT"]


def test_unknown_table_is_a_clear_error(moto_endpoint, clickhouse, s3):
    result = clickhouse.cli("request-export", "--table", "no-such-table", "--s3-bucket", s3.bucket)
    assert result.returncode == 1
    assert "ResourceNotFoundException" in result.stderr and "Traceback" not in result.stderr


def test_no_second_request_while_an_export_is_not_loaded_and_load_says_what_it_did_not_find(moto_endpoint, clickhouse, s3):
    """A run that requested an export and did not load it (no --load, or a timeout) leaves it pending:
    the next run requests nothing new (its window would be requested again, overlapping), and names it.
    With --load, an export whose manifests are not under the prefix (moto writes none) is an error,
    not a load of whatever else is there."""
    dynamodb = boto3.client("dynamodb")
    name = f"pending-{s3.bucket[-6:]}"
    dynamodb.create_table(
        TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    table_arn = dynamodb.describe_table(TableName=name)["Table"]["TableArn"]
    args = ("request-export", "--table", name, "--s3-bucket", s3.bucket, "--s3-prefix", "exports")
    clickhouse.cli(*args, "--wait", "--poll-seconds", "1", check=True)
    (first,) = dynamodb.list_exports(TableArn=table_arn)["ExportSummaries"]

    again = clickhouse.cli(*args, check=True)
    assert f"export {first['ExportArn']} (FULL_EXPORT, COMPLETED) is not loaded yet" in again.stderr
    assert "nothing requested; load it (load-export s3://" in again.stderr
    assert len(dynamodb.list_exports(TableArn=table_arn)["ExportSummaries"]) == 1
    # Another destination, holding an older export of another table: requested, completed, not found there.
    write_full_export(s3, s3.bucket, "arn:aws:dynamodb:us-east-1:123456789012:table/older", [{"id": {"S": "x"}}],
                      prefix="other", export_time=datetime(2026, 1, 1, tzinfo=timezone.utc))
    elsewhere = clickhouse.cli("request-export", "--table", name, "--s3-bucket", s3.bucket, "--s3-prefix", "other",
                               "--load", "--poll-seconds", "1")
    assert elsewhere.returncode == 1, elsewhere.stderr
    assert "table/older" in elsewhere.stderr  # what was under the prefix did load
    assert f"completed but was not found under s3://{s3.bucket}/other (no manifest-summary.json of it): " \
           "nothing of it was loaded" in elsewhere.stderr
    assert len(dynamodb.list_exports(TableArn=table_arn)["ExportSummaries"]) == 2
