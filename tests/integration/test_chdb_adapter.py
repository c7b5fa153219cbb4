"""End to end: dbt-clickhouse on chDB through the ``chdb`` adapter plugin (./adapter).

A scratch dbt project is built in a temporary directory and dbt runs in
subprocesses exactly as a user would run it.  Results are read back with
``open_chdb_client`` once dbt has exited (chDB allows one process per data
directory).  Needs the adapter installed: ``pip install ./adapter``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("chdb", reason="chDB is not installed (pip install 'clickhouse-connect[chdb]')")
pytest.importorskip("dbt.adapters.chdb", reason="the chdb dbt adapter is not installed (pip install ./adapter)")

from dynamodb_cdc.connection import open_chdb_client  # noqa: E402

PROFILE = "chdb_scratch"

PROJECT_FILES = {
    "dbt_project.yml": f"""
        name: chdb_scratch
        version: '1.0'
        config-version: 2
        profile: {PROFILE}
        model-paths: ["models"]
        """,
    "models/base_table.sql": """
        {{ config(materialized='table', order_by='id') }}
        select toUInt64(number) as id, toString(number) as name from numbers(10)
        """,
    "models/base_view.sql": """
        {{ config(materialized='view') }}
        select id, name from {{ ref('base_table') }} where id < 5
        """,
    # First run: ids 0-4 at version 1.  Second (incremental) run appends ids
    # 0-2 at version 2, id 1 as a delete.
    "models/events_inc.sql": """
        {{ config(
            materialized='incremental',
            engine='ReplacingMergeTree(_version, _is_deleted)',
            order_by='id',
            incremental_strategy='append'
        ) }}
        {% if is_incremental() %}
        select toUInt64(number) as id, concat('v2-', toString(number)) as name,
               toUInt64(2) as _version, toUInt8(number = 1) as _is_deleted
        from numbers(3)
        {% else %}
        select toUInt64(number) as id, concat('v1-', toString(number)) as name,
               toUInt64(1) as _version, toUInt8(0) as _is_deleted
        from numbers(5)
        {% endif %}
        """,
    "models/mv_source.sql": """
        {{ config(materialized='table', engine='MergeTree()', order_by='id') }}
        select toUInt64(number) as id, toUInt64(number * 10) as amount from numbers(4)
        """,
    "models/mv_amounts.sql": """
        {{ config(materialized='materialized_view', engine='MergeTree()', order_by='id') }}
        select id, amount * 2 as doubled from {{ ref('mv_source') }}
        """,
    "models/schema.yml": """
        version: 2
        models:
          - name: base_table
            columns:
              - name: id
                data_tests: [not_null, unique]
        """,
}

# One line on purpose: the lock message quotes the holder's command line
# (/proc/<pid>/cmdline) and a multi-line -c script would be quoted verbatim.
HOLDER = (
    "import sys; from dynamodb_cdc.connection import open_chdb_client; "
    "c = open_chdb_client(sys.argv[1]); c.command('SELECT 1'); print('ready', flush=True); "
    "sys.stdin.read(); c.close()"  # hold the directory until the test closes stdin
)


def write_project(project: Path, data_dir: Path) -> None:
    for name, text in PROJECT_FILES.items():
        target = project / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip())
    (project / "profiles.yml").write_text(
        textwrap.dedent(
            f"""
            {PROFILE}:
              target: dev
              outputs:
                dev:
                  type: chdb
                  path: {data_dir}
                  schema: analytics
                  threads: 2
                rel:
                  type: chdb
                  path: rel_chdb
                  schema: analytics
                  threads: 1
                url:
                  type: chdb
                  path: "{{{{ env_var('DYNAMODB_CDC_CLICKHOUSE_URL', 'chdb://url_chdb') }}}}"
                  schema: analytics
                  threads: 1
            """
        ).lstrip()
    )


def dbt_start(project: Path, *args: str, cwd: Path | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    env.update(DBT_SEND_ANONYMOUS_USAGE_STATS="false", DBT_USE_COLORS="false")
    cmd = [
        sys.executable, "-m", "dbt.cli.main", *args,
        "--project-dir", str(project), "--profiles-dir", str(project),
    ]
    return subprocess.Popen(
        cmd, cwd=cwd or project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def dbt_finish(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    try:
        stdout, stderr = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def dbt(project: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run dbt as a user would: its own process, with the project's profiles.yml."""
    return dbt_finish(dbt_start(project, *args, cwd=cwd))


def ok(result: subprocess.CompletedProcess) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{result.args} exited {result.returncode}:\n{output}"
    return output


def query(data_dir: Path, sql: str):
    client = open_chdb_client(str(data_dir))
    try:
        return client.query(sql).result_rows
    finally:
        client.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The scratch project after ``dbt run`` twice (the second run is incremental)."""
    root = tmp_path_factory.mktemp("chdb_dbt")
    project, data_dir = root / "project", root / "chdb data"
    write_project(project, data_dir)
    first = ok(dbt(project, "run"))
    second = ok(dbt(project, "run"))
    return project, data_dir, first, second


def test_run_materializes_every_model(built):
    project, data_dir, first, second = built
    for output in (first, second):
        assert "PASS=5 WARN=0 ERROR=0 SKIP=0" in output
        assert "Registered adapter: chdb=" in output
    log = (project / "logs" / "dbt.log").read_text()
    # threads: 2 means two worker connections, each its own chDB client in the process.
    assert "Thread-1" in log and "Thread-2" in log

    tables = dict(query(data_dir, "SELECT name, engine FROM system.tables WHERE database = 'analytics'"))
    assert tables["base_table"] == "MergeTree"
    assert tables["base_view"] == "View"
    assert tables["events_inc"] == "ReplacingMergeTree"
    assert tables["mv_source"] == "MergeTree"
    assert tables["mv_amounts"] == "MergeTree"
    assert tables["mv_amounts_mv"] == "MaterializedView"

    assert query(data_dir, "SELECT count(), sum(id) FROM analytics.base_table") == [(10, 45)]
    assert query(data_dir, "SELECT id, name FROM analytics.base_view ORDER BY id") == [
        (i, str(i)) for i in range(5)
    ]
    [(sorting_key,)] = query(
        data_dir, "SELECT sorting_key FROM system.tables WHERE database = 'analytics' AND name = 'events_inc'"
    )
    assert sorting_key.strip("()") == "id"


def test_second_run_appends_incrementally(built):
    _, data_dir, _, _ = built
    # Append kept the five version-1 rows and added three version-2 rows.
    assert query(data_dir, "SELECT id, name, _version, _is_deleted FROM analytics.events_inc ORDER BY id, _version") == [
        (0, "v1-0", 1, 0), (0, "v2-0", 2, 0),
        (1, "v1-1", 1, 0), (1, "v2-1", 2, 1),
        (2, "v1-2", 1, 0), (2, "v2-2", 2, 0),
        (3, "v1-3", 1, 0),
        (4, "v1-4", 1, 0),
    ]
    # ReplacingMergeTree(_version, _is_deleted) collapses them: latest wins, id 1 deleted.
    assert query(data_dir, "SELECT id, name FROM analytics.events_inc FINAL ORDER BY id") == [
        (0, "v2-0"), (2, "v2-2"), (3, "v1-3"), (4, "v1-4"),
    ]


def test_materialized_view_is_populated_and_live(built):
    _, data_dir, _, _ = built
    assert query(data_dir, "SELECT id, doubled FROM analytics.mv_amounts ORDER BY id") == [
        (0, 0), (1, 20), (2, 40), (3, 60),
    ]
    client = open_chdb_client(str(data_dir))
    try:
        client.command("INSERT INTO analytics.mv_source VALUES (100, 7)")
        assert client.query("SELECT doubled FROM analytics.mv_amounts WHERE id = 100").result_rows == [(14,)]
        client.command("DELETE FROM analytics.mv_source WHERE id = 100")
        client.command("DELETE FROM analytics.mv_amounts WHERE id = 100")
    finally:
        client.close()


def test_dbt_test_passes(built):
    project, _, _, _ = built
    output = ok(dbt(project, "test"))
    assert "PASS not_null_base_table_id" in output
    assert "PASS unique_base_table_id" in output
    assert "PASS=2 WARN=0 ERROR=0" in output


def test_docs_generate_builds_catalog(built):
    project, _, _, _ = built
    output = ok(dbt(project, "docs", "generate"))
    assert "Catalog written" in output
    catalog = json.loads((project / "target" / "catalog.json").read_text())
    assert not catalog.get("errors")
    nodes = catalog["nodes"]
    events = nodes["model.chdb_scratch.events_inc"]
    assert events["metadata"]["schema"] == "analytics"
    assert set(events["columns"]) == {"id", "name", "_version", "_is_deleted"}
    assert events["columns"]["_version"]["type"] == "UInt64"
    assert nodes["model.chdb_scratch.base_view"]["metadata"]["type"] == "view"


def test_debug_and_relative_path(built, tmp_path):
    project, data_dir, _, _ = built
    # The `rel` target has its own data directory, so both can run at once.
    # A relative path resolves against the directory dbt runs from, not the project.
    rel = dbt_start(project, "debug", "--target", "rel", cwd=tmp_path)
    output = ok(dbt(project, "debug"))
    assert "adapter type: chdb" in output
    assert f"path: {data_dir}" in output
    assert "Connection test: [OK connection ok]" in output
    assert "All checks passed!" in output

    output = ok(dbt_finish(rel))
    assert f"path: {tmp_path / 'rel_chdb'}" in output
    assert "Connection test: [OK connection ok]" in output
    # The connection test created the profile's schema in that directory.
    assert query(tmp_path / "rel_chdb", "EXISTS DATABASE analytics") == [(1,)]
    assert not (project / "rel_chdb").exists()


def test_path_may_be_the_loaders_chdb_url(built, tmp_path, monkeypatch):
    """The loader reads DYNAMODB_CDC_CLICKHOUSE_URL, a chdb:// URL; the profile's path takes the same
    value, so one variable names the directory for both (dbt read another variable, and an unset one
    sent it to an empty .chdb of its own)."""
    project = built[0]
    monkeypatch.setenv("DYNAMODB_CDC_CLICKHOUSE_URL", f"chdb://{tmp_path}/url%23dir")
    output = ok(dbt(project, "debug", "--target", "url"))
    assert f"path: {tmp_path}/url#dir" in output and "Connection test: [OK connection ok]" in output
    monkeypatch.setenv("DYNAMODB_CDC_CLICKHOUSE_URL", "https://user:secret@ch.example.com:8443/")
    refused = dbt(project, "debug", "--target", "url")
    assert refused.returncode != 0
    assert "is a chDB data directory, not a server URL" in refused.stdout + refused.stderr


def test_locked_directory_fails_with_one_line_message(built):
    project, data_dir, _, _ = built
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(data_dir)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready", holder.stderr.read()
        result = dbt(project, "run")
    finally:
        holder.stdin.close()
        try:
            holder.wait(timeout=30)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait()
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if "is in use by process" in line]
    assert len(lines) == 1, output
    line = lines[0].strip()
    assert line.startswith(f"The embedded ClickHouse data directory {data_dir} is in use by process {holder.pid} ")
    assert line.endswith("or use a ClickHouse server instead of the embedded engine.")
    assert "PASS=" not in output

    # Nothing was changed, and once the holder is gone the directory is usable again.
    assert query(data_dir, "SELECT count() FROM analytics.base_table") == [(10,)]


@pytest.mark.parametrize("url", ["chdb://", "chdb:// ", "chdb://memory", "chdb://:memory:", ":memory:"])
def test_a_chdb_url_naming_no_directory_is_refused_as_the_loader_refuses_it(url):
    """The loader refuses a chdb:// URL without a data directory; the profile's path took `chdb://`
    as the directory dbt runs from (the engine's files spread over the project) and `chdb://memory`
    as a directory named memory, another engine than the loader's."""
    from dbt.adapters.chdb.credentials import ChdbCredentials
    from dbt_common.exceptions import DbtRuntimeError

    with pytest.raises(DbtRuntimeError, match="needs a data directory"):
        ChdbCredentials(path=url, schema="analytics")


def test_cancel_stops_the_query_in_flight(tmp_path):
    """dbt cancels open connections on Ctrl-C with dbt-clickhouse's cancel, which only closes the
    client; a chDB handle's close() waits for the query in flight, so dbt hung (holding the
    directory) until the query ended.  The adapter's cancel kills the query first."""
    import threading
    import time
    from types import SimpleNamespace

    from dbt.adapters.chdb.client import ChdbClient
    from dbt.adapters.chdb.connections import ChdbConnectionManager
    from dbt.adapters.chdb.credentials import ChdbCredentials

    client = ChdbClient(ChdbCredentials(path=str(tmp_path / "chdb"), schema="analytics"))
    outcome = {}

    def long_query():
        try:
            # (max_execution_time: should cancel() fail, the query ends by itself and the test fails, not hangs)
            client.command("SELECT count() FROM system.numbers WHERE number < 1e12 "
                           "SETTINGS max_block_size = 1000, max_execution_time = 60")
        except Exception as ex:  # noqa: BLE001 - the cancelled query's error is the point
            outcome["error"] = str(ex)

    worker = threading.Thread(target=long_query)
    worker.start()
    try:
        time.sleep(1)  # the query is running
        started = time.monotonic()
        manager = object.__new__(ChdbConnectionManager)  # cancel() uses no manager state
        manager.cancel(SimpleNamespace(handle=client, name="model.scratch.slow"))
        worker.join(30)
        assert not worker.is_alive(), "the query was still running 30 s after cancel()"
        assert time.monotonic() - started < 10
        assert "QUERY_WAS_CANCELLED" in outcome.get("error", ""), outcome
    finally:
        if worker.is_alive():  # do not leave the engine busy for the other tests
            worker.join(90)
        client.close()
    # Another client's queries are not touched, and the directory is free again.
    assert query(tmp_path / "chdb", "SELECT 1") == [(1,)]
