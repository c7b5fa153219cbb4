"""Command-line options: bad values, on the command line or in DYNAMODB_CDC_* variables, are usage
errors (exit 2, one line naming the option and its variable) before anything is opened."""

from __future__ import annotations

import pytest

from dynamodb_cdc.cli import main


@pytest.mark.parametrize("env, argv, message", [
    ({"DYNAMODB_CDC_BATCH_ROWS": "abc"}, ["load-export", "s3://b/p"],
     "argument --batch-rows: 'abc' is not a whole number (on the command line, or in DYNAMODB_CDC_BATCH_ROWS)"),
    ({}, ["load-export", "s3://b/p", "--batch-rows", "0"],
     "argument --batch-rows: 0 is less than 1 (on the command line, or in DYNAMODB_CDC_BATCH_ROWS)"),
    ({"DYNAMODB_CDC_PARALLEL_FILES": "0"}, ["load-export", "s3://b/p"], "argument --parallel-files: 0 is less than 1"),
    ({"DYNAMODB_CDC_WAIT_FOR_LOCK": "soon"}, ["status"], "argument --wait-for-lock: 'soon' is not a number"),
    ({"DYNAMODB_CDC_READERS": "x"}, ["consume-kinesis", "--stream", "s"], "argument --readers: 'x' is not a whole number"),
    ({"DYNAMODB_CDC_POLL_SECONDS": "fast"}, ["consume-streams", "--table", "t"], "argument --poll-seconds: 'fast' is not a number"),
    ({}, ["scaffold", "t", "--sample", "0"], "argument --sample: 0 is less than 1\n"),  # (it read as 'nothing landed')
    ({}, ["scaffold", "t", "--sample", "-5"], "argument --sample: -5 is less than 1\n"),  # (a LIMIT of all but 5)
])
def test_a_bad_number_is_a_usage_error_naming_its_variable(monkeypatch, capsys, env, argv, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as ended:
        main(argv + ["--clickhouse-url", "chdb:///nonexistent/never-opened"])
    assert ended.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_help_works_whatever_the_variables_hold(monkeypatch, capsys):
    monkeypatch.setenv("DYNAMODB_CDC_BATCH_ROWS", "abc")
    monkeypatch.setenv("COLUMNS", "300")  # one line per option's help
    with pytest.raises(SystemExit) as ended:
        main(["load-export", "--help"])
    assert ended.value.code == 0
    assert "env DYNAMODB_CDC_BATCH_ROWS" in capsys.readouterr().out


def test_a_missing_tmp_dir_is_a_usage_error_before_clickhouse_is_opened(tmp_path, caplog):
    never = tmp_path / "chdb-never-opened"
    assert main(["load-export", "s3://b/p", "--tmp-dir", str(tmp_path / "missing"),
                 "--clickhouse-url", f"chdb://{never}"]) == 2
    assert f"--tmp-dir {tmp_path / 'missing'} does not exist or is not a directory" in caplog.text
    assert not never.exists()


@pytest.mark.parametrize("argv, message", [
    (["load-export", "http://b/p"], "Not an S3 URI: 'http://b/p' (expected s3://bucket/prefix)"),
    (["load-export", "s3:///p"], "No bucket in S3 URI 's3:///p'"),
    (["consume-kinesis", "--stream", "s", "--start-position", "at_timestamp"],
     "--start-position at_timestamp needs --start-timestamp"),
    (["consume-kinesis", "--stream", "s", "--start-timestamp", "2026-01-02T03:04:05Z"],
     "--start-timestamp goes with --start-position at_timestamp"),
    (["consume-kinesis", "--stream", "s", "--start-position", "at_timestamp", "--start-timestamp", "yesterday"],
     "--start-timestamp 'yesterday' is not an ISO 8601 time"),
])
def test_a_command_called_wrongly_is_a_usage_error(tmp_path, caplog, argv, message):
    never = tmp_path / "chdb-never-opened"
    assert main(argv + ["--clickhouse-url", f"chdb://{never}"]) == 2
    assert message in caplog.text and "Traceback" not in caplog.text
    assert not never.exists()


def test_any_other_value_error_is_a_failure_named_by_its_type(monkeypatch, tmp_path, caplog):
    """A ValueError from a fault in the loader or a library is not the caller's mistake: exit 1, not the
    usage error's exit 2, and its type in the one line."""
    import dynamodb_cdc.cli as cli

    def broken(args):
        return int("not a number")

    monkeypatch.setattr(cli, "cmd_status", broken)
    assert main(["status", "--clickhouse-url", f"chdb://{tmp_path / 'chdb'}"]) == 1
    assert "ValueError: invalid literal for int() with base 10: 'not a number'" in caplog.text


def test_request_export_loads_with_load_exports_options(monkeypatch, tmp_path, caplog):
    """request-export --load loaded with the defaults, whatever DYNAMODB_CDC_TMP_DIR, _BATCH_ROWS or
    _PARALLEL_FILES said: a disk or memory setting made for load-export was dropped in silence."""
    monkeypatch.setenv("DYNAMODB_CDC_TMP_DIR", str(tmp_path / "missing"))
    never = tmp_path / "chdb-never-opened"
    assert main(["request-export", "--table", "t", "--s3-bucket", "b", "--load",
                 "--clickhouse-url", f"chdb://{never}"]) == 2
    assert f"--tmp-dir {tmp_path / 'missing'} does not exist or is not a directory" in caplog.text
    assert not never.exists()
