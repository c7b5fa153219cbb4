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
