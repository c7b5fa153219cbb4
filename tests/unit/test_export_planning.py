"""Which export to request next, and the exact request sent for it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.stub import Stubber

from dynamodb_cdc.manifest import FULL_EXPORT, INCREMENTAL_EXPORT, ExportWindow
from dynamodb_cdc.request_export import ExportRequestError, covered_until, plan_export, request, wait

T = datetime(2026, 4, 1, 12, 0, 0, 456000, tzinfo=timezone.utc)
M = timedelta(minutes=1)


def full(at):
    return ExportWindow("f", FULL_EXPORT, at, None, None)


def inc(a, b):
    return ExportWindow("i", INCREMENTAL_EXPORT, None, a, b)


def test_first_run_requests_a_full_export():
    assert plan_export([], T).export_type == FULL_EXPORT


def test_next_window_starts_where_the_loaded_exports_end():
    plan = plan_export([full(T)], T + 90 * M)
    assert (plan.export_type, plan.export_from, plan.export_to) == (
        INCREMENTAL_EXPORT, T.replace(microsecond=0), (T + 90 * M).replace(microsecond=0))
    chained = plan_export([full(T), inc(T, T + 60 * M)], T + 200 * M)
    assert chained.export_from == (T + 60 * M).replace(microsecond=0)


def test_windows_are_at_least_15_minutes_and_at_most_24_hours():
    assert plan_export([full(T)], T + 14 * M) is None
    plan = plan_export([full(T)], T + timedelta(days=3))
    assert plan.export_to - plan.export_from == timedelta(hours=24)


def test_a_gap_stops_the_chain_so_the_next_request_fills_it():
    windows = [full(T), inc(T, T + 60 * M), inc(T + 120 * M, T + 180 * M)]
    assert covered_until(windows) == T + 60 * M
    assert plan_export(windows, T + 500 * M).export_from == (T + 60 * M).replace(microsecond=0)


def test_a_gap_is_filled_exactly_not_overlapping_the_window_after_it():
    """The window filling a gap ran up to now, over the loaded window after the gap: overlapping windows,
    which README says leave an item created and deleted inside the overlap in the current state."""
    windows = [full(T), inc(T, T + 60 * M), inc(T + 120 * M, T + 180 * M)]
    plan = plan_export(windows, T + 500 * M)
    assert (plan.export_from, plan.export_to) == ((T + 60 * M).replace(microsecond=0), T + 120 * M)
    # a gap narrower than AWS's shortest window cannot be requested as one
    with pytest.raises(ExportRequestError, match="gap from .*, shorter than the 15 minutes .*full export \\(--full\\)"):
        plan_export([full(T), inc(T, T + 60 * M), inc(T + 70 * M, T + 180 * M)], T + 500 * M)


def test_full_flag_forces_a_full_export():
    assert plan_export([full(T)], T + 90 * M, full=True).export_type == FULL_EXPORT


def test_incremental_request_parameters():
    # moto accepts incremental exports but does not keep their window, so the request is checked here.
    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    plan = plan_export([full(T)], T + 90 * M)
    with Stubber(client) as stub:
        stub.add_response(
            "export_table_to_point_in_time",
            {"ExportDescription": {"ExportArn": "arn:aws:dynamodb:us-east-1:1:table/t/export/01"}},
            {
                "TableArn": "arn:aws:dynamodb:us-east-1:1:table/t",
                "S3Bucket": "b",
                "S3Prefix": "exports/t",
                "ExportFormat": "DYNAMODB_JSON",
                "ExportType": "INCREMENTAL_EXPORT",
                "IncrementalExportSpecification": {
                    "ExportFromTime": T.replace(microsecond=0),
                    "ExportToTime": (T + 90 * M).replace(microsecond=0),
                    "ExportViewType": "NEW_AND_OLD_IMAGES",
                },
            },
        )
        assert request(client, "arn:aws:dynamodb:us-east-1:1:table/t", "b", "exports/t", plan).endswith("/01")


def test_wait_reports_a_failed_export():
    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/t/export/01700000000000-1a2b3c4d"
    with Stubber(client) as stub:
        stub.add_response("describe_export", {"ExportDescription": {"ExportStatus": "IN_PROGRESS"}}, {"ExportArn": arn})
        stub.add_response("describe_export", {"ExportDescription": {
            "ExportStatus": "FAILED", "FailureCode": "PITR_DISABLED", "FailureMessage": "enable PITR"}}, {"ExportArn": arn})
        with pytest.raises(ExportRequestError, match="PITR_DISABLED: enable PITR"):
            wait(client, arn, timeout=60, poll=1, sleep=lambda s: None)


def test_unfinished_exports_are_those_of_this_destination_not_loaded_and_not_yet_covered():
    """What keeps request-export from asking for a window that an export in flight (or completed but
    not loaded) already covers: the two would overlap."""
    from dynamodb_cdc.request_export import describe_pending, unfinished_exports

    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    table = "arn:aws:dynamodb:us-east-1:1:table/t"
    loaded = [ExportWindow(f"{table}/export/full", FULL_EXPORT, T, None, None)]

    def described(name, status, kind=INCREMENTAL_EXPORT, bucket="b", prefix="exports/t", window=None):
        d = {"ExportArn": f"{table}/export/{name}", "ExportStatus": status, "ExportType": kind, "S3Bucket": bucket,
             "S3Prefix": prefix}
        if window:
            d["IncrementalExportSpecification"] = {"ExportFromTime": window[0], "ExportToTime": window[1]}
        return d

    exports = [
        described("full", "COMPLETED", FULL_EXPORT),  # loaded here
        described("failed", "FAILED"),
        described("elsewhere", "IN_PROGRESS", prefix="other"),
        described("old", "COMPLETED", window=(T - 60 * M, T - 30 * M)),  # before what is loaded
        described("flying", "IN_PROGRESS", window=(T, T + 60 * M)),
        described("landed", "COMPLETED", window=(T + 60 * M, T + 120 * M), prefix="exports/t/"),
    ]
    def summaries(page):
        return [{k: d[k] for k in ("ExportArn", "ExportStatus", "ExportType")} for d in page]

    with Stubber(client) as stub:  # two pages; the loaded and the failed exports are not described
        stub.add_response("list_exports", {"ExportSummaries": summaries(exports[:3]), "NextToken": "n"}, {"TableArn": table})
        stub.add_response("describe_export", {"ExportDescription": exports[2]}, {"ExportArn": exports[2]["ExportArn"]})
        stub.add_response("list_exports", {"ExportSummaries": summaries(exports[3:])}, {"TableArn": table, "NextToken": "n"})
        for d in exports[3:]:
            stub.add_response("describe_export", {"ExportDescription": d}, {"ExportArn": d["ExportArn"]})
        pending = unfinished_exports(client, table, "b", "exports/t", loaded)
    assert [d["ExportArn"].rsplit("/", 1)[1] for d in pending] == ["flying", "landed"]
    assert describe_pending(pending[0]) == (f"{table}/export/flying (INCREMENTAL_EXPORT {T.isoformat()} .. "
                                            f"{(T + 60 * M).isoformat()}, IN_PROGRESS)")
