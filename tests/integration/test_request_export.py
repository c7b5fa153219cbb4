"""request-export against moto's DynamoDB: the export is requested for the right table and waited for.

moto writes an export's data but no manifests and ignores the incremental window,
so the window chaining and the request parameters are checked in
tests/unit/test_request_export.py, and loading in test_load_export.py.
"""

from __future__ import annotations

import boto3


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
