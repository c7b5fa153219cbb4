"""Pure parsing of DynamoDB export manifests (no AWS, no ClickHouse).

Formats: ``manifest-summary.json`` (one JSON object) and ``manifest-files.json``
(JSON Lines, one data file per line).  See shared/reference/dynamodb-formats.md.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone

FULL_EXPORT = "FULL_EXPORT"
INCREMENTAL_EXPORT = "INCREMENTAL_EXPORT"


class ManifestError(ValueError):
    """A manifest cannot be read; the message names the object (and line)."""


class ExportRefused(ManifestError):
    """A readable export that this loader will not load (e.g. ION format)."""


@dataclass(frozen=True)
class ExportSummary:
    export_arn: str
    table_arn: str
    table_name: str
    export_type: str
    export_time: datetime | None
    export_from_time: datetime | None
    export_to_time: datetime | None
    output_format: str
    output_view: str | None
    s3_bucket: str
    s3_prefix: str | None
    manifest_files_key: str
    item_count: int | None
    summary_key: str

    @property
    def point_in_time(self) -> datetime:
        """The time the export's state is as of: exportTime, or the end of an incremental window."""
        when = self.export_time or self.export_to_time
        assert when is not None  # parse_summary guarantees one of them
        return when

    def sort_key(self) -> tuple:
        return export_order(self.export_arn, self.point_in_time, self.export_from_time)


def export_order(export_arn: str, point_in_time: datetime, export_from_time: datetime | None) -> tuple:
    """Oldest first: full exports by exportTime, incremental windows by their start."""
    return (export_from_time or point_in_time, point_in_time, export_arn)


@dataclass(frozen=True)
class DataFile:
    key: str
    item_count: int
    md5: str  # base64 MD5 of the stored .json.gz object
    etag: str | None
    manifest_line: int


def parse_time(value: str | None, *, field: str, where: str) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ManifestError(f"{where}: {field} must be an ISO-8601 string, got {value!r}")
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ManifestError(f"{where}: {field} is not an ISO-8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def table_name_from_arn(table_arn: str) -> str:
    """``arn:aws:dynamodb:region:acct:table/NAME[/...]`` -> ``NAME``."""
    _, sep, rest = table_arn.partition(":table/")
    if not sep or not rest:
        raise ManifestError(f"tableArn {table_arn!r} is not a DynamoDB table ARN")
    return rest.split("/", 1)[0]


def _table_name(table_arn: str, key: str) -> str:
    try:
        return table_name_from_arn(table_arn)
    except ManifestError as ex:
        raise ManifestError(f"{key}: {ex}") from None


def parse_summary(content: bytes, *, key: str) -> ExportSummary:
    """Parse ``manifest-summary.json``; ``key`` names it in error messages."""
    try:
        doc = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as ex:
        raise ManifestError(f"{key}: not valid JSON ({ex})") from None
    if not isinstance(doc, dict):
        raise ManifestError(f"{key}: expected a JSON object")

    def req(name: str) -> str:
        value = doc.get(name)
        if not isinstance(value, str) or not value:
            raise ManifestError(f"{key}: required field {name!r} is missing or empty")
        return value

    export_arn = req("exportArn")
    table_arn = req("tableArn")
    output_format = doc.get("outputFormat") or "DYNAMODB_JSON"
    if output_format != "DYNAMODB_JSON":
        raise ExportRefused(
            f"{key}: export {export_arn} is in {output_format} format; only DYNAMODB_JSON "
            "exports are supported. Export the table again with ExportFormat=DYNAMODB_JSON."
        )
    export_type = doc.get("exportType") or FULL_EXPORT  # absent in older full exports
    if export_type not in (FULL_EXPORT, INCREMENTAL_EXPORT):
        raise ManifestError(f"{key}: unknown exportType {export_type!r}")
    export_time = parse_time(doc.get("exportTime"), field="exportTime", where=key)
    from_time = parse_time(doc.get("exportFromTime"), field="exportFromTime", where=key)
    to_time = parse_time(doc.get("exportToTime"), field="exportToTime", where=key)
    if export_type == FULL_EXPORT and export_time is None:
        raise ManifestError(f"{key}: full export without exportTime")
    if export_type == INCREMENTAL_EXPORT and (from_time is None or to_time is None):
        raise ManifestError(f"{key}: incremental export without exportFromTime/exportToTime")
    item_count = doc.get("itemCount")
    return ExportSummary(
        export_arn=export_arn,
        table_arn=table_arn,
        table_name=_table_name(table_arn, key),
        export_type=export_type,
        export_time=export_time,
        export_from_time=from_time,
        export_to_time=to_time,
        output_format=output_format,
        output_view=doc.get("outputView"),
        s3_bucket=req("s3Bucket"),
        s3_prefix=doc.get("s3Prefix") or None,
        manifest_files_key=req("manifestFilesS3Key"),
        item_count=int(item_count) if item_count is not None else None,
        summary_key=key,
    )


def parse_files_manifest(content: bytes, *, key: str) -> list[DataFile]:
    """Parse ``manifest-files.json`` (JSON Lines); errors name the key and line."""
    files: list[DataFile] = []
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as ex:
        raise ManifestError(f"{key}: not UTF-8 ({ex})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{key} line {number}"
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as ex:
            raise ManifestError(f"{where}: not valid JSON ({ex})") from None
        if not isinstance(doc, dict):
            raise ManifestError(f"{where}: expected a JSON object")
        data_key = doc.get("dataFileS3Key")
        md5 = doc.get("md5Checksum")
        count = doc.get("itemCount")
        if not isinstance(data_key, str) or not data_key:
            raise ManifestError(f"{where}: dataFileS3Key is missing")
        if not isinstance(md5, str) or not md5:
            raise ManifestError(f"{where}: md5Checksum is missing")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ManifestError(f"{where}: itemCount must be a non-negative integer, got {count!r}")
        if data_key.endswith(".ion.gz"):
            raise ExportRefused(f"{where}: {data_key} is an ION data file; only DYNAMODB_JSON is supported")
        files.append(DataFile(key=data_key, item_count=count, md5=md5, etag=doc.get("etag"), manifest_line=number))
    return files


def md5_base64(content: bytes) -> str:
    return base64.b64encode(hashlib.md5(content).digest()).decode("ascii")


def check_manifest_md5(content: bytes, expected: bytes, *, key: str) -> None:
    """Compare a manifest with the base64 MD5 stored in its ``.md5``/``.checksum`` file."""
    want = expected.decode("ascii", errors="replace").strip()
    got = md5_base64(content)
    if got != want:
        raise ManifestError(f"{key}: MD5 {got} does not match its checksum file ({want}); the manifest is damaged")


def export_folder_of(summary_key: str) -> str:
    """The export folder (``.../AWSDynamoDB/<ExportId>/``) that holds a manifest-summary.json."""
    return summary_key.rsplit("/", 1)[0] + "/" if "/" in summary_key else ""


@dataclass(frozen=True)
class ExportWindow:
    """What coverage checks need to know of one export of a table."""

    export_arn: str
    export_type: str
    export_time: datetime | None  # full exports
    export_from_time: datetime | None  # incremental exports
    export_to_time: datetime | None

    @classmethod
    def of(cls, s: ExportSummary) -> "ExportWindow":
        return cls(s.export_arn, s.export_type, s.export_time, s.export_from_time, s.export_to_time)


def check_windows(table: str, exports: list[ExportWindow],
                  unloaded: list[tuple[ExportWindow, str]] = ()) -> tuple[list[str], list[str]]:
    """Check that the incremental windows after the latest full export cover time without gaps.

    Returns (errors, warnings).  A gap means changes were never exported, so the
    copy is not exact until it is filled; a missing full export means items not
    changed inside the windows are missing.  An overlap between two windows is a
    warning: versions order the changes, but a window is compacted, so an item
    created in the overlap and deleted before the later window ends has no line
    in the later one and stays.  ``unloaded``: (window, status) of the table's exports that did not
    load, so that a gap one of them covers says so (rather than asking for the window again).
    """
    errors: list[str] = []
    warnings: list[str] = []
    fulls = sorted(e.export_time for e in exports if e.export_type == FULL_EXPORT and e.export_time)
    windows = sorted(
        (e for e in exports if e.export_type == INCREMENTAL_EXPORT and e.export_from_time and e.export_to_time),
        key=lambda e: (e.export_from_time, e.export_to_time, e.export_arn),
    )
    if not windows:
        return errors, warnings
    if not fulls:
        errors.append(
            f"{table}: no full export loaded before the incremental windows (the first starts at "
            f"{windows[0].export_from_time.isoformat()}); items not changed since then are missing. "
            "Load a full export taken at or before the start of the windows."
        )
    # (a full export after every window's end heals any gap before it: every window is then skipped)
    latest_full = max(fulls, default=None)
    covered = latest_full if latest_full is not None else windows[0].export_from_time
    previous = None
    for w in windows:
        if w.export_to_time <= covered:
            continue  # entirely before what matters now (superseded by a later full export or window)
        if w.export_from_time > covered:
            stuck = [f"{u.export_arn} ({status})" for u, status in unloaded
                     if u.export_type == INCREMENTAL_EXPORT and u.export_from_time and u.export_to_time
                     and u.export_from_time < w.export_from_time and u.export_to_time > covered]
            if stuck:
                errors.append(
                    f"{table}: gap from {covered.isoformat()} to {w.export_from_time.isoformat()} before incremental "
                    f"export {w.export_arn}: the export of that window, {', '.join(stuck)}, did not load. Fix what "
                    "its errors say and rerun load-export (requesting the window again would overlap it)."
                )
            else:
                errors.append(
                    f"{table}: gap from {covered.isoformat()} to {w.export_from_time.isoformat()} before incremental "
                    f"export {w.export_arn}: changes in that interval were never exported. Request an incremental "
                    "export of exactly that window (ExportFromTime/ExportToTime) and load it."
                )
        elif (previous is None and latest_full is not None
              and w.export_from_time < latest_full.replace(microsecond=0) < w.export_to_time):
            # (request-export starts the first window at the full export's second: that fraction is the
            # documented case, README "request-export")
            warnings.append(
                f"{table}: incremental export {w.export_arn} starts before the full export it follows "
                f"({w.export_from_time.isoformat()} < {latest_full.isoformat()}) and runs past it: a window is "
                "compacted, so an item created before the full export and deleted after it, inside the window, has "
                "no line in it and stays in the current state; request windows that start at the full export's time"
            )
        elif previous is not None and w.export_from_time < previous.export_to_time:
            warnings.append(
                f"{table}: incremental exports {previous.export_arn} and {w.export_arn} overlap "
                f"({w.export_from_time.isoformat()} < {previous.export_to_time.isoformat()}): an item created "
                "in the overlap and deleted before the later one ends has no line in it and stays in the current "
                "state (the other changes are ordered by their write time); load a new full export to be exact again"
            )
        covered = max(covered, w.export_to_time)
        previous = w
    return errors, warnings
