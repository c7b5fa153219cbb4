"""``dynamodb-cdc request-export``: ask DynamoDB for the next export, wait for it, load it.

Without a stream, one scheduled command keeps a table current: the first run
requests a full export; every later run requests the incremental window that
starts where the loaded exports end (``exportToTime`` of the last window, or the
full export's time), up to now, at most 24 hours, at least 15 minutes (AWS's
limits).  Point-in-time recovery must be enabled on the table.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .manifest import FULL_EXPORT, INCREMENTAL_EXPORT, ExportWindow

log = logging.getLogger(__name__)

MIN_WINDOW = timedelta(minutes=15)
MAX_WINDOW = timedelta(hours=24)


class ExportRequestError(RuntimeError):
    """The export could not be requested or did not complete."""


@dataclass(frozen=True)
class ExportPlan:
    export_type: str
    export_from: datetime | None = None
    export_to: datetime | None = None
    reason: str = ""


def covered_until(windows: list[ExportWindow]) -> datetime | None:
    """The time up to which loaded exports hold the table: the latest full export, extended by
    the incremental windows that continue it without a gap."""
    fulls = [w.export_time for w in windows if w.export_type == FULL_EXPORT and w.export_time]
    if not fulls:
        return None
    covered = max(fulls)
    incs = sorted(
        (w for w in windows if w.export_type == INCREMENTAL_EXPORT and w.export_from_time and w.export_to_time),
        key=lambda w: w.export_from_time,
    )
    for w in incs:
        if w.export_from_time <= covered < w.export_to_time:
            covered = w.export_to_time
    return covered


def plan_export(windows: list[ExportWindow], now: datetime, *, full: bool = False) -> ExportPlan | None:
    """What to request next; None when the next window is not yet 15 minutes wide."""
    start = covered_until(windows)
    if full or start is None:
        return ExportPlan(FULL_EXPORT, reason="requested" if full else "no full export loaded yet")
    # The API takes whole seconds; never start after what is covered.
    covered, start = start, start.replace(microsecond=0)
    end = min(now.replace(microsecond=0), start + MAX_WINDOW)
    # A gap before a loaded window is filled exactly: a window running past its start would overlap it.
    later = [w.export_from_time for w in windows if w.export_type == INCREMENTAL_EXPORT and w.export_from_time
             and w.export_to_time and w.export_from_time > covered]
    if later and min(later) < end:
        end = min(later)
        if end - start < MIN_WINDOW:
            raise ExportRequestError(
                f"the loaded exports have a gap from {covered.isoformat()} to {end.isoformat()}, shorter than the "
                "15 minutes of the shortest incremental export: request a full export (--full)")
    if end - start < MIN_WINDOW:
        return None
    return ExportPlan(INCREMENTAL_EXPORT, start, end, reason=f"continues the loaded exports from {start.isoformat()}")


def unfinished_exports(dynamodb, table_arn: str, bucket: str, prefix: str | None,
                       windows: list[ExportWindow]) -> list[dict]:
    """Exports of the table to this bucket and prefix that are in progress, or completed but not
    loaded here and not yet covered by what is (descriptions, as DescribeExport gives them).

    Requesting the next window while one of them is pending would request its window again: two
    windows that overlap, and an item created and deleted inside the overlap has no line in the
    later one, so it could come back (README: request-export)."""
    loaded = {w.export_arn for w in windows}
    covered = covered_until(windows)
    pending, token = [], None
    while True:
        page = dynamodb.list_exports(TableArn=table_arn, **({"NextToken": token} if token else {}))
        for summary in page.get("ExportSummaries", []):
            if summary.get("ExportStatus") == "FAILED" or summary["ExportArn"] in loaded:
                continue
            d = dynamodb.describe_export(ExportArn=summary["ExportArn"])["ExportDescription"]
            if d.get("S3Bucket") != bucket or (d.get("S3Prefix") or "").strip("/") != (prefix or "").strip("/"):
                continue  # another destination: not this chain's
            if d.get("ExportStatus") == "COMPLETED" and covered is not None:
                spec = d.get("IncrementalExportSpecification") or {}
                end = spec.get("ExportToTime") if d.get("ExportType") == INCREMENTAL_EXPORT else d.get("ExportTime")
                if end is not None and end <= covered:
                    continue  # older than what is loaded: it would change nothing
            pending.append(d)
        token = page.get("NextToken")
        if not token:
            return pending


def describe_pending(d: dict) -> str:
    spec = d.get("IncrementalExportSpecification") or {}
    when = (f"{spec['ExportFromTime'].isoformat()} .. {spec['ExportToTime'].isoformat()}"
            if spec.get("ExportFromTime") and spec.get("ExportToTime") else
            d["ExportTime"].isoformat() if d.get("ExportTime") else "")
    return f"{d['ExportArn']} ({d.get('ExportType', 'export')}{' ' + when if when else ''}, {d.get('ExportStatus')})"


def request(dynamodb, table_arn: str, bucket: str, prefix: str | None, plan: ExportPlan) -> str:
    """Start the export; returns its ARN."""
    kwargs = {
        "TableArn": table_arn,
        "S3Bucket": bucket,
        "ExportFormat": "DYNAMODB_JSON",
        "ExportType": plan.export_type,
    }
    if prefix:
        kwargs["S3Prefix"] = prefix
    if plan.export_type == INCREMENTAL_EXPORT:
        kwargs["IncrementalExportSpecification"] = {
            "ExportFromTime": plan.export_from,
            "ExportToTime": plan.export_to,
            "ExportViewType": "NEW_AND_OLD_IMAGES",
        }
    response = dynamodb.export_table_to_point_in_time(**kwargs)
    return response["ExportDescription"]["ExportArn"]


def wait(dynamodb, export_arn: str, *, timeout: float, poll: float = 10.0, sleep=time.sleep) -> dict:
    """Poll until the export is no longer IN_PROGRESS; returns its description."""
    deadline = time.monotonic() + timeout
    delay = min(poll, 2.0)
    while True:
        description = dynamodb.describe_export(ExportArn=export_arn)["ExportDescription"]
        status = description.get("ExportStatus")
        if status == "COMPLETED":
            return description
        if status == "FAILED":
            raise ExportRequestError(
                f"export {export_arn} failed: {description.get('FailureCode')}: {description.get('FailureMessage')}"
            )
        if time.monotonic() + delay > deadline:
            raise ExportRequestError(
                f"export {export_arn} still {status} after {timeout:.0f} s; rerun with --wait later, or load it "
                "with load-export once it completes"
            )
        log.info("export %s is %s; checking again in %.0f s", export_arn, status, delay)
        sleep(delay)
        delay = min(delay * 2, poll)


def load_uri(description: dict, bucket: str, prefix: str | None) -> str:
    """Where to load a completed export from: its folder when AWS names its manifest, else the prefix."""
    manifest = description.get("ExportManifest")
    if manifest and "/" in manifest:
        return f"s3://{bucket}/{manifest.rsplit('/', 1)[0]}/"
    return f"s3://{bucket}/{prefix or ''}"


def now_utc() -> datetime:
    return datetime.now(timezone.utc)
