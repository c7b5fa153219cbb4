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
    if lines is None:
        lines = [dumps_line({"Item": item}) for item in items]
    return _write_export(
        s3, bucket, table_arn, lines, prefix=prefix, started=export_time, files=files, shared_data=False,
        summary={"version": "2020-06-30", "exportTime": iso(export_time), "exportType": "FULL_EXPORT"},
    )


def incremental_line(
    keys: dict, new_image: dict | None, old_image: dict | None, write_micros: int, *, ts_form: str = "N",
    key_field: str = "Keys",
) -> bytes:
    """One incremental-export line; ``ts_form`` writes WriteTimestampMicros as {"N": s}, a string or a number."""
    ts = {"N": {"N": str(write_micros)}, "string": str(write_micros), "number": write_micros}[ts_form]
    doc: dict = {"Metadata": {"WriteTimestampMicros": ts}, key_field: keys}
    if new_image is not None:
        doc["NewImage"] = new_image
    if old_image is not None:
        doc["OldImage"] = old_image
    return dumps_line(doc)


def write_incremental_export(
    s3,
    bucket: str,
    table_arn: str,
    lines: list[bytes],
    *,
    export_from: datetime,
    export_to: datetime,
    prefix: str | None = None,
    view: str = "NEW_AND_OLD_IMAGES",
    files: int = 1,
) -> WrittenExport:
    """Write an incremental export: manifests in its own folder, data files in the shared AWSDynamoDB/data/."""
    return _write_export(
        s3, bucket, table_arn, lines, prefix=prefix, started=export_to, files=files, shared_data=True,
        summary={
            "version": "2023-08-01",
            "exportFromTime": iso(export_from),
            "exportToTime": iso(export_to),
            "outputView": view,
            "exportType": "INCREMENTAL_EXPORT",
        },
    )


def dumps_line(doc) -> bytes:
    """Compact JSON, UTF-8 as AWS writes it (no \\u escapes)."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _write_export(s3, bucket, table_arn, lines, *, prefix, started, files, shared_data, summary) -> WrittenExport:
    eid = export_id(started)
    base = f"{prefix.rstrip('/')}/" if prefix else ""
    folder = f"{base}AWSDynamoDB/{eid}/"
    data_folder = f"{base}AWSDynamoDB/data/" if shared_data else f"{folder}data/"
    export_arn = f"{table_arn}/export/{eid}"
    s3.put_object(Bucket=bucket, Key=folder + "_started", Body=b"")
    chunks = [lines[i::files] for i in range(files)]
    manifest_lines, data_keys = [], []
    for chunk in chunks:
        key = f"{data_folder}{_random_name()}.json.gz"
        body = gzip.compress(b"".join(line + b"\n" for line in chunk), mtime=0)
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        data_keys.append(key)
        manifest_lines.append(json.dumps(
            {"itemCount": len(chunk), "md5Checksum": md5_base64(body), "etag": secrets.token_hex(16) + "-1",
             "dataFileS3Key": key},
            separators=(",", ":"),
        ))
    files_body = ("\n".join(manifest_lines) + "\n").encode()
    s3.put_object(Bucket=bucket, Key=folder + "manifest-files.json", Body=files_body)
    s3.put_object(Bucket=bucket, Key=folder + "manifest-files.md5", Body=md5_base64(files_body).encode())
    doc = {
        "version": summary["version"],
        "exportArn": export_arn,
        "startTime": iso(started),
        "endTime": iso(started + timedelta(minutes=4)),
        "tableArn": table_arn,
        "tableId": "00000000-0000-4000-8000-000000000000",
        **{k: v for k, v in summary.items() if k != "version"},
        "s3Bucket": bucket,
        "s3Prefix": prefix,
        "s3SseAlgorithm": "AES256",
        "s3SseKmsKeyId": None,
        "manifestFilesS3Key": folder + "manifest-files.json",
        "billedSizeBytes": sum(len(x) for x in lines),
        "itemCount": len(lines),
        "outputFormat": "DYNAMODB_JSON",
    }
    summary_body = json.dumps(doc, separators=(",", ":")).encode()
    s3.put_object(Bucket=bucket, Key=folder + "manifest-summary.json", Body=summary_body)
    s3.put_object(Bucket=bucket, Key=folder + "manifest-summary.md5", Body=md5_base64(summary_body).encode())
    return WrittenExport(bucket, prefix, folder, export_arn, data_keys)
