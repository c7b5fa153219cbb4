"""Deterministic benchmark data: a full export of N items, an incremental export and Kinesis
records of M changes, in AWS's exact layouts.

Items come from one seeded generator, so the first N/10 items of an N-item export are the
N/10-item export; the changes touch only keys of the first N/10 items (and new keys), so one
batch of changes applies alike to both bases.  Data files are written line by line through
gzip to local files (memory stays flat whatever N), then uploaded.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from dynamodb_cdc.manifest import md5_base64
from dynamodb_cdc.testing.exports import dumps_line, iso

TABLE = "bench_items"
TABLE_ARN = f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}"
T0 = datetime(2026, 1, 5, 12, 0, 0, tzinfo=timezone.utc)  # the full export's time
ITEMS_PER_FILE = 100_000
SEED = 20260105
CITIES = ["Berlin", "Lyon", "Osaka", "Recife", "Tromsø", "Zürich", "Nairobi", "Perth"]
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]


def pk(i: int) -> str:
    return f"item-{i:09d}"


def item(i: int, rng: random.Random) -> dict:
    """One item, ~8 attributes of mixed types: S, N int, N decimal, BOOL, M, L, SS, NULL."""
    doc = {
        "pk": {"S": pk(i)},
        "name": {"S": f"{rng.choice(WORDS)} {rng.choice(WORDS)} {i}"},
        "age": {"N": str(rng.randint(0, 99))},
        "balance": {"N": f"{rng.randint(-10**7, 10**9) / 100:.2f}"},
        "active": {"BOOL": rng.random() < 0.5},
        "address": {"M": {"city": {"S": rng.choice(CITIES)}, "zip": {"S": f"{rng.randint(0, 99999):05d}"}}},
        "tags": {"L": [{"S": rng.choice(WORDS)} for _ in range(rng.randint(0, 3))]},
        "labels": {"SS": sorted(rng.sample(WORDS, rng.randint(1, 3)))},
    }
    doc["note"] = {"NULL": True} if i % 5 == 0 else {"S": f"note {rng.random():.6f}"}
    return doc


def items(n: int):
    rng = random.Random(SEED)
    for i in range(n):
        yield item(i, rng)


@dataclass
class Change:
    event: str  # INSERT, MODIFY, REMOVE
    key: int
    micros: int
    image: dict | None


@dataclass
class Changes:
    changes: list[Change] = field(default_factory=list)
    deleted_existing: int = 0  # keys of the base whose last change is a delete
    inserted_new: int = 0  # new keys alive at the end

    def expected_count(self, base: int) -> int:
        return base - self.deleted_existing + self.inserted_new


def changes(base: int, m: int) -> Changes:
    """M changes: 80% updates of base keys, 10% deletes, 10% inserts of new keys (keys < base/10
    of the largest base, so the same changes apply to both bases)."""
    rng = random.Random(SEED + 1)
    alive: dict[int, bool] = {}
    out = Changes()
    start = int((T0 + timedelta(minutes=5)).timestamp() * 1_000_000)
    next_new = 10 ** 8
    for j in range(m):
        micros = start + j * 10
        roll = rng.random()
        if roll < 0.1:
            key = next_new
            next_new += 1
            out.changes.append(Change("INSERT", key, micros, item(key, rng)))
            alive[key] = True
        elif roll < 0.2:
            key = rng.randrange(base)
            out.changes.append(Change("REMOVE", key, micros, None))
            alive[key] = False
        else:
            key = rng.randrange(base)
            out.changes.append(Change("MODIFY" if alive.get(key, True) else "INSERT", key, micros, item(key, rng)))
            alive[key] = True
    out.deleted_existing = sum(1 for k, a in alive.items() if k < base and not a)
    out.inserted_new = sum(1 for k, a in alive.items() if k >= base and a)
    return out


def incremental_lines(ch: Changes):
    for c in ch.changes:
        doc: dict = {"Metadata": {"WriteTimestampMicros": {"N": str(c.micros)}}, "Keys": {"pk": {"S": pk(c.key)}}}
        if c.image is not None:
            doc["NewImage"] = c.image
        yield dumps_line(doc)


def kinesis_record(c: Change) -> bytes:
    """A Kinesis Data Streams for DynamoDB record, as AWS writes it."""
    dynamodb: dict = {"ApproximateCreationDateTime": c.micros // 1000, "Keys": {"pk": {"S": pk(c.key)}}}
    if c.image is not None:
        dynamodb["NewImage"] = c.image
    dynamodb["SizeBytes"] = len(json.dumps(dynamodb, separators=(",", ":")))
    doc = {
        "awsRegion": "us-east-1",
        "eventID": hashlib.md5(f"{c.key}/{c.micros}".encode()).hexdigest(),
        "eventName": c.event,
        "userIdentity": None,
        "recordFormat": "application/json",
        "tableName": TABLE,
        "dynamodb": dynamodb,
        "eventSource": "aws:dynamodb",
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


# -- writing exports ---------------------------------------------------------------


def write_data_files(lines, directory: Path, stem: str, per_file: int = ITEMS_PER_FILE) -> list[tuple[Path, int]]:
    """Gzip the lines into files of ``per_file`` lines, streaming; returns (path, line count)."""
    directory.mkdir(parents=True, exist_ok=True)
    out: list[tuple[Path, int]] = []
    f = None
    count = 0
    for line in lines:
        if f is None:
            path = directory / f"{stem}-{len(out):04d}.json.gz"
            f = gzip.open(path, "wb", compresslevel=6)
            count = 0
        f.write(line + b"\n")
        count += 1
        if count == per_file:
            f.close()
            out.append((path, count))
            f = None
    if f is not None:
        f.close()
        out.append((path, count))
    return out


def _md5_file(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    import base64

    return base64.b64encode(h.digest()).decode()


@dataclass
class Written:
    uri: str  # s3://bucket/<export folder>/
    data_keys: list[str]
    local_files: list[Path]
    lines: int
    compressed_bytes: int


def upload_export(s3, bucket: str, prefix: str, export_id: str, files: list[tuple[Path, int]], *,
                  summary: dict, shared_data: bool) -> Written:
    """Upload data files and write the manifests of one export (the layout of testing.exports)."""
    folder = f"{prefix}/AWSDynamoDB/{export_id}/"
    data_folder = f"{prefix}/AWSDynamoDB/data/" if shared_data else f"{folder}data/"
    s3.put_object(Bucket=bucket, Key=folder + "_started", Body=b"")
    manifest, keys = [], []
    for n, (path, count) in enumerate(files):
        key = f"{data_folder}{export_id[-8:]}{n:018d}.json.gz"
        s3.upload_file(str(path), bucket, key)
        keys.append(key)
        manifest.append(json.dumps({"itemCount": count, "md5Checksum": _md5_file(path),
                                    "etag": hashlib.md5(key.encode()).hexdigest() + "-1", "dataFileS3Key": key},
                                   separators=(",", ":")))
    files_body = ("\n".join(manifest) + "\n").encode()
    s3.put_object(Bucket=bucket, Key=folder + "manifest-files.json", Body=files_body)
    s3.put_object(Bucket=bucket, Key=folder + "manifest-files.md5", Body=md5_base64(files_body).encode())
    started = datetime.fromisoformat(summary.get("exportTime", summary.get("exportToTime")).replace("Z", "+00:00"))
    total = sum(c for _, c in files)
    doc = {
        "version": summary.pop("version"),
        "exportArn": f"{TABLE_ARN}/export/{export_id}",
        "startTime": iso(started),
        "endTime": iso(started + timedelta(minutes=4)),
        "tableArn": TABLE_ARN,
        "tableId": "00000000-0000-4000-8000-000000000000",
        **summary,
        "s3Bucket": bucket,
        "s3Prefix": prefix,
        "s3SseAlgorithm": "AES256",
        "s3SseKmsKeyId": None,
        "manifestFilesS3Key": folder + "manifest-files.json",
        "billedSizeBytes": sum(os.path.getsize(p) for p, _ in files),
        "itemCount": total,
        "outputFormat": "DYNAMODB_JSON",
    }
    body = json.dumps(doc, separators=(",", ":")).encode()
    s3.put_object(Bucket=bucket, Key=folder + "manifest-summary.json", Body=body)
    s3.put_object(Bucket=bucket, Key=folder + "manifest-summary.md5", Body=md5_base64(body).encode())
    return Written(f"s3://{bucket}/{folder}", keys, [p for p, _ in files], total,
                   sum(os.path.getsize(p) for p, _ in files))


def full_export_files(n: int, directory: Path, stem: str) -> list[tuple[Path, int]]:
    return write_data_files((dumps_line({"Item": it}) for it in items(n)), directory, stem)


def write_full(s3, bucket, prefix, files, export_id="01767614400000-00000001") -> Written:
    return upload_export(s3, bucket, prefix, export_id, files, shared_data=False,
                         summary={"version": "2020-06-30", "exportTime": iso(T0), "exportType": "FULL_EXPORT"})


def write_incremental(s3, bucket, prefix, files, export_id="01767618000000-00000002") -> Written:
    return upload_export(s3, bucket, prefix, export_id, files, shared_data=True, summary={
        "version": "2023-08-01", "exportFromTime": iso(T0), "exportToTime": iso(T0 + timedelta(hours=1)),
        "outputView": "NEW_IMAGE", "exportType": "INCREMENTAL_EXPORT"})
