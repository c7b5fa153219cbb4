"""dynamodb-cdc status: what landed, per table, as text and as JSON."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from dynamodb_cdc.testing.exports import dumps_line, write_full_export

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/users"


def test_status_reports_exports_files_lines_and_quarantine(s3, clickhouse):
    empty = clickhouse.cli("status", check=True)
    assert "Nothing has landed" in empty.stdout
    when = datetime(2026, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    w = write_full_export(s3, s3.bucket, ARN, [], prefix="p", export_time=when, files=2,
                          lines=[dumps_line({"Item": {"id": {"S": str(i)}}}) for i in range(4)] + [b"{broken"])
    s3.delete_object(Bucket=s3.bucket, Key=w.data_keys[1])
    clickhouse.cli("load-export", f"s3://{s3.bucket}/p")  # one file lands, one is missing

    report = json.loads(clickhouse.cli("status", "--json", check=True).stdout)
    (users,) = report["tables"]
    assert users["table"] == "users"
    assert users["exports"] == {"FULL_EXPORT": {"failed": 1}}
    assert users["data_files"] == {"failed": 1, "loaded": 1}
    landed = clickhouse.scalar(f"SELECT count() FROM {clickhouse.raw_db}.export_lines")
    quarantined = clickhouse.scalar(f"SELECT count() FROM {clickhouse.raw_db}.quarantine")
    assert (users["lines_landed"], users["quarantined"]) == (landed, quarantined)
    assert (landed, quarantined) == (2, 1)  # the first file holds lines 0, 2 and the broken line
    assert users["last_landed_at"].endswith("+00:00")
    text = clickhouse.cli("status", check=True).stdout
    assert "users" in text and "data files    1 failed, 1 loaded" in text
