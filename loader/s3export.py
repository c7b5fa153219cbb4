"""Reading DynamoDB exports from S3: discovery, manifests, and verified data files.

boto3's default credential chain and ``AWS_ENDPOINT_URL`` apply unchanged, so
moto, LocalStack or MinIO need no special flag.
"""

from __future__ import annotations

import hashlib
import base64
import logging
import tempfile
import zlib
from dataclasses import dataclass
from typing import IO, Iterator

from .manifest import (
    DataFile,
    ExportSummary,
    ManifestError,
    check_manifest_md5,
    parse_files_manifest,
    parse_summary,
)

log = logging.getLogger(__name__)

SUMMARY = "manifest-summary.json"
CHUNK = 1 << 20
OUT_CHUNK = 8 << 20  # cap on one decompression step, so a gzip bomb cannot fill memory


class DataFileError(Exception):
    """A data file that fails verification; nothing of it is landed."""


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    prefix: str  # no leading slash; "" for the bucket root

    @classmethod
    def parse(cls, uri: str) -> "S3Uri":
        if not uri.startswith("s3://"):
            raise ValueError(f"Not an S3 URI: {uri!r} (expected s3://bucket/prefix)")
        bucket, _, prefix = uri[5:].partition("/")
        if not bucket:
            raise ValueError(f"No bucket in S3 URI {uri!r}")
        return cls(bucket, prefix)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def s3_client():
    import boto3

    return boto3.client("s3")


def _get(s3, bucket: str, key: str) -> bytes | None:
    from botocore.exceptions import ClientError

    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as ex:
        if ex.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return None
        raise


def _exists(s3, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as ex:
        if ex.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return False
        raise


def _child_folders(s3, bucket: str, prefix: str) -> list[str]:
    folders: list[str] = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        folders.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
    return folders


def find_summaries(s3, uri: S3Uri) -> list[str]:
    """Keys of every manifest-summary.json the URI designates.

    The URI is an export folder (holds manifest-summary.json), an
    ``AWSDynamoDB/`` folder, or the prefix the export was written under.
    """
    prefix = uri.prefix
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    if _exists(s3, uri.bucket, prefix + SUMMARY):
        return [prefix + SUMMARY]
    base = prefix if prefix.rstrip("/").endswith("AWSDynamoDB") else prefix + "AWSDynamoDB/"
    keys = []
    for folder in _child_folders(s3, uri.bucket, base):
        if folder.rstrip("/").rsplit("/", 1)[-1] == "data":
            continue  # the shared data folder of incremental exports
        if _exists(s3, uri.bucket, folder + SUMMARY):
            keys.append(folder + SUMMARY)
    return keys


def read_export(s3, bucket: str, summary_key: str) -> tuple[ExportSummary, list[DataFile]]:
    """Read and verify one export's manifests."""
    content = _get(s3, bucket, summary_key)
    if content is None:
        raise ManifestError(f"s3://{bucket}/{summary_key} does not exist")
    _check_md5_beside(s3, bucket, summary_key, content)
    summary = parse_summary(content, key=f"s3://{bucket}/{summary_key}")
    files_key = summary.manifest_files_key
    files_content = _get(s3, bucket, files_key)
    if files_content is None:
        raise ManifestError(
            f"s3://{bucket}/{files_key} (manifestFilesS3Key of {summary.export_arn}) does not exist"
        )
    _check_md5_beside(s3, bucket, files_key, files_content)
    return summary, parse_files_manifest(files_content, key=f"s3://{bucket}/{files_key}")


def _check_md5_beside(s3, bucket: str, key: str, content: bytes) -> None:
    stem = key[: -len(".json")] if key.endswith(".json") else key
    for suffix in (".md5", ".checksum"):  # real exports write .md5; the docs say .checksum
        expected = _get(s3, bucket, stem + suffix)
        if expected is not None:
            check_manifest_md5(content, expected, key=f"s3://{bucket}/{key}")
            return
    log.warning("s3://%s/%s has no .md5 or .checksum beside it; not verified", bucket, key)


@dataclass
class VerifiedFile:
    """A data file downloaded, checked and decompressed into a temporary file."""

    data: IO[bytes]
    lines: int
    compressed_bytes: int
    decompressed_bytes: int

    def close(self) -> None:
        self.data.close()


def fetch_data_file(s3, bucket: str, data_file: DataFile, *, tmp_dir: str | None = None, on_bytes=None) -> VerifiedFile:
    """Download a data file, verify MD5, gzip integrity and line count; nothing lands before this passes.

    Memory stays flat: the object is streamed in 1 MiB chunks, hashed and
    decompressed into a temporary file on disk.
    """
    from botocore.exceptions import ClientError

    where = f"s3://{bucket}/{data_file.key}"
    try:
        body = s3.get_object(Bucket=bucket, Key=data_file.key)["Body"]
    except ClientError as ex:
        code = ex.response.get("Error", {}).get("Code")
        if code in ("NoSuchKey", "404", "NotFound"):
            raise DataFileError(f"{where} is listed in the manifest but does not exist") from None
        raise
    out = tempfile.TemporaryFile(dir=tmp_dir, prefix="dynamodb-cdc-")
    md5 = hashlib.md5()
    inflate = zlib.decompressobj(wbits=31)
    in_member = False  # bytes fed to a gzip member whose end has not been seen
    compressed = decompressed = newlines = 0
    last = b"\n"
    gzip_error = None  # once set, keep hashing so an MD5 mismatch can be named as the cause
    try:
        for chunk in body.iter_chunks(CHUNK):
            md5.update(chunk)
            compressed += len(chunk)
            if on_bytes:
                on_bytes(len(chunk))
            data = b"" if gzip_error else chunk
            while data:
                in_member = True
                try:
                    piece = inflate.decompress(data, OUT_CHUNK)
                except zlib.error as ex:
                    gzip_error = f"{where} is not a valid gzip file ({ex})"
                    break
                if piece:
                    out.write(piece)
                    decompressed += len(piece)
                    newlines += piece.count(b"\n")
                    last = piece[-1:]
                data = inflate.unconsumed_tail  # output was capped: feed the rest
                if inflate.eof:  # end of a gzip member; more members may follow
                    data = inflate.unused_data
                    inflate = zlib.decompressobj(wbits=31)
                    in_member = False
        got_md5 = base64.b64encode(md5.digest()).decode("ascii")
        if got_md5 != data_file.md5:
            raise DataFileError(
                f"{where}: MD5 {got_md5} does not match md5Checksum {data_file.md5} in the manifest; "
                "the file is damaged or was replaced"
            )
        if gzip_error:
            raise DataFileError(gzip_error)
        if in_member:
            raise DataFileError(f"{where} is a truncated gzip file (it ends inside a compressed stream)")
        lines = newlines + (0 if last == b"\n" else 1)
        if lines != data_file.item_count:
            raise DataFileError(
                f"{where} has {lines} lines but the manifest says itemCount {data_file.item_count}"
            )
        out.seek(0)
        return VerifiedFile(out, lines, compressed, decompressed)
    except BaseException:
        out.close()
        raise


def iter_lines(data: IO[bytes], *, start_after: int = 0) -> Iterator[tuple[int, bytes]]:
    """Yield (line_number, line) from a decompressed file, 1-based.

    Blank lines are yielded too: they are not items, so ClickHouse refuses
    them into quarantine rather than the loader dropping them unseen.
    """
    for number, line in enumerate(data, start=1):
        if number > start_after:
            yield number, line.rstrip(b"\r\n")
