"""Write DynamoDB exports to S3 in the exact layout AWS uses (see shared/reference/dynamodb-formats.md)."""

from __future__ import annotations

import gzip
import json
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..manifest import md5_base64


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def export_id(t: datetime) -> str:
    return f"0{int(t.timestamp() * 1000):013d}-{secrets.token_hex(4)}"


def _random_name() -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(26))


@dataclass
class WrittenExport:
    bucket: str
    prefix: str | None
    folder: str  # key prefix of the export folder, ending in "/"
    export_arn: str
    data_keys: list[str]

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.folder}"


def write_full_export(
    s3,
    bucket: str,
    table_arn: str,
    items: list[dict],
    *,
    prefix: str | None = None,
    export_time: datetime | None = None,
    files: int = 1,
    lines: list[bytes] | None = None,
) -> WrittenExport:
    """Write a full export of ``items`` (DynamoDB JSON attribute maps) spread over ``files`` data files.

    ``lines`` replaces the generated data lines (to plant bad input).
    """
    export_time = export_time or datetime.now(timezone.utc).replace(microsecond=0)
    eid = export_id(export_time)
    base = f"{prefix.rstrip('/')}/" if prefix else ""
    folder = f"{base}AWSDynamoDB/{eid}/"
    export_arn = f"{table_arn}/export/{eid}"
    s3.put_object(Bucket=bucket, Key=folder + "_started", Body=b"")
    if lines is None:
        lines = [json.dumps({"Item": item}, separators=(",", ":")).encode() for item in items]
    chunks = [lines[i::files] for i in range(files)]
    manifest_lines, data_keys = [], []
    for chunk in chunks:
        key = f"{folder}data/{_random_name()}.json.gz"
        body = gzip.compress(b"".join(line + b"\n" for line in chunk), mtime=0)
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        data_keys.append(key)
        manifest_lines.append(
            json.dumps(
                {
                    "itemCount": len(chunk),
                    "md5Checksum": md5_base64(body),
                    "etag": secrets.token_hex(16) + "-1",
                    "dataFileS3Key": key,
                },
                separators=(",", ":"),
            )
        )
    files_body = ("\n".join(manifest_lines) + "\n").encode()
    s3.put_object(Bucket=bucket, Key=folder + "manifest-files.json", Body=files_body)
    s3.put_object(Bucket=bucket, Key=folder + "manifest-files.md5", Body=md5_base64(files_body).encode())
    summary = {
        "version": "2020-06-30",
        "exportArn": export_arn,
        "startTime": iso(export_time),
        "endTime": iso(export_time + timedelta(minutes=4)),
        "tableArn": table_arn,
        "tableId": "00000000-0000-4000-8000-000000000000",
        "exportTime": iso(export_time),
        "s3Bucket": bucket,
        "s3Prefix": prefix,
        "s3SseAlgorithm": "AES256",
        "s3SseKmsKeyId": None,
        "manifestFilesS3Key": folder + "manifest-files.json",
        "billedSizeBytes": sum(len(x) for x in lines),
        "itemCount": len(lines),
        "outputFormat": "DYNAMODB_JSON",
        "exportType": "FULL_EXPORT",
    }
    summary_body = json.dumps(summary, separators=(",", ":")).encode()
    s3.put_object(Bucket=bucket, Key=folder + "manifest-summary.json", Body=summary_body)
    s3.put_object(Bucket=bucket, Key=folder + "manifest-summary.md5", Body=md5_base64(summary_body).encode())
    return WrittenExport(bucket, prefix, folder, export_arn, data_keys)
