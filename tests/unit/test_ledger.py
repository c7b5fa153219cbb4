"""Ledger decisions and progress reporting, without AWS or ClickHouse."""

from __future__ import annotations

import io
import logging

from dynamodb_cdc.load_export import FilePlan, plan_file
from dynamodb_cdc.progress import Progress
from dynamodb_cdc.store import FAILED, LOADED, LOADING, FileState


def state(status, committed=0):
    return FileState(status=status, lines_committed=committed, lines_landed=0, lines_quarantined=0, error="")


def test_new_file_loads_from_the_start():
    assert plan_file(None) == FilePlan(load=True, resume_after=0)


def test_loaded_file_is_skipped():
    assert plan_file(state(LOADED, 500)) == FilePlan(load=False)


def test_interrupted_file_resumes_after_its_checkpoint():
    assert plan_file(state(LOADING, 300)) == FilePlan(load=True, resume_after=300)


def test_failed_file_is_retried_from_its_checkpoint():
    assert plan_file(state(FAILED, 0)) == FilePlan(load=True, resume_after=0)
    assert plan_file(state(FAILED, 200)) == FilePlan(load=True, resume_after=200)


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_draws_a_bar_on_a_terminal(caplog):
    out = Tty()
    p = Progress(2, stream=out)
    p.add_bytes(3 * 1024 * 1024)
    p.add_rows(1500)
    with caplog.at_level(logging.INFO, logger="dynamodb_cdc"):
        p.file_done("s3://b/k1: 1,500 lines landed")
    p.close()
    text = out.getvalue()
    assert "files 1/2" in text and "rows 1,500" in text and "3.0 MiB read" in text
    assert "[1/2] s3://b/k1: 1,500 lines landed" in caplog.text


def test_progress_is_plain_log_lines_when_not_a_terminal(caplog):
    out = io.StringIO()
    p = Progress(1, stream=out)
    p.add_rows(10)
    with caplog.at_level(logging.INFO, logger="dynamodb_cdc"):
        p.file_done("done")
    assert out.getvalue() == ""
    assert "[1/1] done" in caplog.text


def test_a_load_report_tells_a_held_export_from_a_failed_one(caplog):
    """load-export and request-export --load report alike: an export left to the run holding its
    lease exits 1 with 'nothing to fix', never the 'Fix the cause' of a failed file."""
    from dynamodb_cdc.cli import EXIT_FAILED, EXIT_OK, _report_load
    from dynamodb_cdc.load_export import ExportResult, LoadResult

    arn = "arn:aws:dynamodb:us-east-1:1:table/t/export/1"
    with caplog.at_level(logging.INFO, logger="dynamodb_cdc"):
        held = _report_load(LoadResult([ExportResult(arn, "t", errors=[f"{arn}: loading now (etl-2)"], held=True)]))
    assert held == EXIT_FAILED
    assert "left to the run that holds it" in caplog.text and "nothing to fix" in caplog.text
    assert "Fix the cause" not in caplog.text

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="dynamodb_cdc"):
        failed = _report_load(LoadResult([ExportResult(arn, "t", files_loaded=1, files_failed=1,
                                                       lines_landed=1500, errors=["s3://b/k2: MD5 mismatch"])]))
    assert failed == EXIT_FAILED
    assert "1 files loaded, 0 already loaded, 1 failed; 1,500 lines landed" in caplog.text
    assert "s3://b/k2: MD5 mismatch" in caplog.text and "Fix the cause" in caplog.text
    assert "nothing to fix" not in caplog.text

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="dynamodb_cdc"):
        assert _report_load(LoadResult([ExportResult(arn, "t", files_loaded=2, lines_landed=3)])) == EXIT_OK
    assert "ERROR" not in caplog.text
