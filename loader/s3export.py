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

from .errors import UsageError
from .manifest import (
    FULL_EXPORT,
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
            raise UsageError(f"Not an S3 URI: {uri!r} (expected s3://bucket/prefix)")
        bucket, _, prefix = uri[5:].partition("/")
        if not bucket:
            raise UsageError(f"No bucket in S3 URI {uri!r}")
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
    ``AWSDynamoDB/`` folder, or the prefix the export was written under; or
    the manifest-summary.json of one export.
    """
    if uri.prefix.endswith("/" + SUMMARY) and _exists(s3, uri.bucket, uri.prefix):
        return [uri.prefix]
    prefix, base = _folders(uri)
    if _exists(s3, uri.bucket, prefix + SUMMARY):
        return [prefix + SUMMARY]
    return [f + SUMMARY for f in _export_folders(s3, uri.bucket, base) if _exists(s3, uri.bucket, f + SUMMARY)]


def _folders(uri: S3Uri) -> tuple[str, str]:
    """The URI's prefix as a folder, and the AWSDynamoDB/ folder its exports would be in."""
    prefix = uri.prefix
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return prefix, (prefix if prefix.rstrip("/").endswith("AWSDynamoDB") else prefix + "AWSDynamoDB/")


def _export_folders(s3, bucket: str, base: str) -> list[str]:
    """The export folders in an AWSDynamoDB/ folder (not the shared data folder of incremental exports)."""
    return [f for f in _child_folders(s3, bucket, base) if f.rstrip("/").rsplit("/", 1)[-1] != "data"]


def no_export_message(s3, uri: S3Uri) -> str:
    """Why find_summaries found nothing at ``uri``, in words a user can act on: where it looked, and any
    export folder there that has no manifest-summary.json yet (AWS writes it last)."""
    _, base = _folders(uri)
    message = (f"No DynamoDB export found at {uri}: no {SUMMARY} in it, nor in s3://{uri.bucket}/{base}<export id>/. "
               "Give the S3 prefix the export was written under (its S3Prefix), its AWSDynamoDB/ folder, or one "
               "export folder")
    pending = _export_folders(s3, uri.bucket, base)
    if pending:
        message += (f"; s3://{uri.bucket}/{pending[0]}" + (f" (and {len(pending) - 1} more)" if len(pending) > 1 else "")
                    + f" has no {SUMMARY} yet: an export still in progress writes it last (wait for COMPLETED)")
    return message


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
    files = parse_files_manifest(files_content, key=f"s3://{bucket}/{files_key}")
    listed = sum(f.item_count for f in files)
    if summary.item_count is not None and listed != summary.item_count:
        why = (f"s3://{bucket}/{files_key} lists {len(files)} data files of {listed:,} items in all, but "
               f"s3://{bucket}/{summary_key} says itemCount {summary.item_count:,}")
        if summary.export_type == FULL_EXPORT:
            # a file missing from the list would read as its items deleted from the table
            raise ManifestError(f"{why}: the manifests do not describe the same export (a data file left out?); "
                                "nothing of it is loaded")
        log.warning("%s; loading the listed files", why)
    return summary, files


def _check_md5_beside(s3, bucket: str, key: str, content: bytes) -> None:
    stem = key[: -len(".json")] if key.endswith(".json") else key
    for suffix in (".md5", ".checksum"):  # real exports write .md5; the docs say .checksum
        expected = _get(s3, bucket, stem + suffix)
        if expected is not None:
            check_manifest_md5(content, expected, key=f"s3://{bucket}/{key}")
            return
    log.warning("s3://%s/%s has no .md5 or .checksum beside it; not verified", bucket, key)


@dataclass
class Segment:
    """Consecutive whole lines of a verified data file, in a temporary file of their own."""

    first_line: int  # 1-based line number of its first line in the data file
    lines: int
    size: int  # bytes
    file: IO[bytes]


@dataclass
class VerifiedFile:
    """A data file downloaded, checked and decompressed into temporary files: its lines cut into
    segments of at most one batch each, in order."""

    segments: list[Segment]
    lines: int
    compressed_bytes: int

    def close(self) -> None:
        for segment in self.segments:
            segment.file.close()


class Segmenter:
    """Cuts a stream of decompressed bytes into Segments of at most ``max_rows`` lines and, unless
    one line is longer, at most ``max_bytes`` bytes (a segment that ends inside a line it could not
    hold grows to that line's end).  Lines are split on \\n and numbered from 1 exactly as
    ``iter_lines`` numbers them: a last line without its newline counts, blank lines count."""

    def __init__(self, max_rows: int, max_bytes: int, tmp_dir: str | None = None):
        self.max_rows, self.max_bytes, self.tmp_dir = max(1, max_rows), max(1, max_bytes), tmp_dir
        self.segments: list[Segment] = []
        self.file: IO[bytes] | None = None
        self.rows = self.size = self.whole = 0  # newlines, bytes, and bytes up to the last newline

    def write(self, piece: bytes) -> None:
        while piece:
            if self.file is None:
                self.file = tempfile.TemporaryFile(dir=self.tmp_dir, prefix="dynamodb-cdc-")
                self.rows = self.size = self.whole = 0
            cut = self._cut(piece)
            if cut is None:
                self._put(piece)
                return
            self._put(piece[:cut])
            piece = piece[cut:]
            self._close()

    def finish(self) -> list[Segment]:
        if self.file is not None:
            self._close()
        return self.segments

    def discard(self) -> None:
        if self.file is not None:
            self.file.close()
        for segment in self.segments:
            segment.file.close()

    def _cut(self, piece: bytes) -> int | None:
        """Where the current segment ends in ``piece`` (0: before it), or None if not in it."""
        need = self.max_rows - self.rows
        by_rows = _after_newline(piece, need) if piece.count(b"\n") >= need else None
        room = self.max_bytes - self.size
        if by_rows is not None and by_rows <= room or len(piece) <= room:
            return by_rows
        last = piece.rfind(b"\n", 0, max(room, 0))  # the last line that still fits
        if last >= 0:
            return last + 1
        if self.rows and self.size == self.whole:  # the next line does not fit: end here
            return 0
        first = piece.find(b"\n")  # a line longer than max_bytes, or the rest of one begun: keep it whole
        return first + 1 if first >= 0 else None

    def _put(self, data: bytes) -> None:
        if data:
            self.file.write(data)
            newlines = data.count(b"\n")
            self.rows += newlines
            self.size += len(data)
            if newlines:
                self.whole = self.size - (len(data) - data.rindex(b"\n") - 1)

    def _close(self) -> None:
        lines = self.rows + (1 if self.size > self.whole else 0)
        first = self.segments[-1].first_line + self.segments[-1].lines if self.segments else 1
        self.file.flush()
        self.file.seek(0)
        if lines:
            self.segments.append(Segment(first, lines, self.size, self.file))
        else:
            self.file.close()
        self.file = None


def _after_newline(data: bytes, n: int) -> int:
    """The position just past the n-th newline of data (which has at least n)."""
    pos = -1
    for _ in range(n):
        pos = data.index(b"\n", pos + 1)
    return pos + 1


READ_ATTEMPTS = 3  # downloads of one data file cut off mid-stream (botocore retries only the request)


def _reading(bucket: str, data_file: DataFile, download):
    """``download()``, once more after a connection lost mid-stream (up to READ_ATTEMPTS); any other
    S3 failure (access denied, a KMS key the loader cannot use, throttling past botocore's retries)
    refuses this file as DataFileError naming the object, so the export's other files still land."""
    from botocore.exceptions import BotoCoreError, ClientError, ConnectionClosedError, ReadTimeoutError

    try:
        from botocore.exceptions import ResponseStreamingError
    except ImportError:  # (older botocore)
        ResponseStreamingError = ConnectionClosedError
    where = f"s3://{bucket}/{data_file.key}"
    for attempt in range(1, READ_ATTEMPTS + 1):
        try:
            return download()
        except (ResponseStreamingError, ConnectionClosedError, ReadTimeoutError) as ex:
            if attempt == READ_ATTEMPTS:
                raise DataFileError(f"{where}: the download was cut off {READ_ATTEMPTS} times ({ex})") from None
            log.warning("%s: the download was cut off (%s); reading it again (attempt %d of %d)",
                        where, ex, attempt + 1, READ_ATTEMPTS)
        except ClientError as ex:
            error = ex.response.get("Error", {})
            raise DataFileError(f"{where} cannot be read from S3: {error.get('Code') or 'error'}: "
                                f"{error.get('Message') or ex}") from None
        except BotoCoreError as ex:
            raise DataFileError(f"{where} cannot be read from S3: {type(ex).__name__}: {ex}") from None


def fetch_data_file(s3, bucket: str, data_file: DataFile, *, tmp_dir: str | None = None, on_bytes=None,
                    max_rows: int = 1 << 62, max_bytes: int = 1 << 62) -> VerifiedFile:
    """Download a data file, verify MD5, gzip integrity and line count; nothing lands before this passes.

    Memory stays flat: the object is streamed in 1 MiB chunks, hashed and decompressed into
    temporary files on disk, one per batch of at most ``max_rows`` lines and about ``max_bytes``.
    """
    return _reading(bucket, data_file, lambda: _fetch_data_file(s3, bucket, data_file, tmp_dir, on_bytes,
                                                                max_rows, max_bytes))


def _fetch_data_file(s3, bucket, data_file, tmp_dir, on_bytes, max_rows, max_bytes) -> VerifiedFile:
    where = f"s3://{bucket}/{data_file.key}"
    body = _body(s3, bucket, data_file)
    out = Segmenter(max_rows, max_bytes, tmp_dir)
    md5 = hashlib.md5()
    inflate = zlib.decompressobj(wbits=31)
    in_member = False  # bytes fed to a gzip member whose end has not been seen
    compressed = 0
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
                out.write(piece)
                data = inflate.unconsumed_tail  # output was capped: feed the rest
                if inflate.eof:  # end of a gzip member; more members may follow
                    data = inflate.unused_data
                    inflate = zlib.decompressobj(wbits=31)
                    in_member = False
        _check_md5(where, md5, data_file)
        if gzip_error:
            raise DataFileError(gzip_error)
        if in_member:
            raise DataFileError(f"{where} is a truncated gzip file (it ends inside a compressed stream)")
        segments = out.finish()
        lines = sum(segment.lines for segment in segments)
        if lines != data_file.item_count:
            raise DataFileError(
                f"{where} has {lines} lines but the manifest says itemCount {data_file.item_count}"
            )
        return VerifiedFile(segments, lines, compressed)
    except BaseException:
        out.discard()
        raise


def _body(s3, bucket: str, data_file: DataFile):
    """The object's streaming body; DataFileError if it does not exist."""
    from botocore.exceptions import ClientError

    try:
        return s3.get_object(Bucket=bucket, Key=data_file.key)["Body"]
    except ClientError as ex:
        code = ex.response.get("Error", {}).get("Code")
        if code in ("NoSuchKey", "404", "NotFound"):
            raise DataFileError(f"s3://{bucket}/{data_file.key} is listed in the manifest but does not exist") from None
        raise


def _check_md5(where: str, md5, data_file: DataFile) -> None:
    got_md5 = base64.b64encode(md5.digest()).decode("ascii")
    if got_md5 != data_file.md5:
        raise DataFileError(
            f"{where}: MD5 {got_md5} does not match md5Checksum {data_file.md5} in the manifest; "
            "the file is damaged or was replaced"
        )


@dataclass
class CompressedFile:
    """A data file downloaded as it is stored (gzip) into an unlinked temporary file, its MD5 checked."""

    file: IO[bytes]
    compressed_bytes: int

    def close(self) -> None:
        self.file.close()


def fetch_compressed(s3, bucket: str, data_file: DataFile, *, tmp_dir: str | None = None,
                     on_bytes=None) -> CompressedFile:
    """Download a data file and verify its MD5; the engine decompresses it and the loader counts its
    lines after (load_export: files that fit in one batch, read by the embedded engine)."""
    return _reading(bucket, data_file, lambda: _fetch_compressed(s3, bucket, data_file, tmp_dir, on_bytes))


def _fetch_compressed(s3, bucket, data_file, tmp_dir, on_bytes) -> CompressedFile:
    where = f"s3://{bucket}/{data_file.key}"
    body = _body(s3, bucket, data_file)
    out = tempfile.TemporaryFile(prefix="dynamodb-cdc-data-", dir=tmp_dir)
    md5 = hashlib.md5()
    compressed = 0
    try:
        for chunk in body.iter_chunks(CHUNK):
            md5.update(chunk)
            out.write(chunk)
            compressed += len(chunk)
            if on_bytes:
                on_bytes(len(chunk))
        _check_md5(where, md5, data_file)
        out.flush()
        return CompressedFile(out, compressed)
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
