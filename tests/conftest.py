"""Shared fixtures: a real moto server on loopback and a real ClickHouse (chDB, or a server via CLICKHOUSE_URL)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Real AWS captures (see tests/fixtures/aws/README.md for their origin), copied byte for byte.
SAMPLES = ROOT / "tests" / "fixtures" / "aws"
BIN = Path(sys.executable).parent
PACKAGE = re.search(r"^name:\s*(\S+)", (ROOT / "dbt_project.yml").read_text(), re.M).group(1)  # dynamodb_cdc


@pytest.fixture(scope="session")
def moto_endpoint():
    from dynamodb_cdc.testing.moto import moto_server

    with moto_server() as url:
        yield url


@pytest.fixture
def s3(moto_endpoint):
    """A boto3 S3 client on moto with a fresh bucket (``s3.bucket``)."""
    import boto3

    client = boto3.client("s3")
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    client.bucket = bucket
    return client


class ClickHouse:
    """Where a test's data lives: a fresh chDB directory, or a fresh database on CLICKHOUSE_URL."""

    def __init__(self, tmp_path: Path):
        server = os.environ.get("CLICKHOUSE_URL")
        suffix = uuid.uuid4().hex[:8]
        if server:
            self.url = server
            self.raw_db = f"dynamodb_raw_{suffix}"
            self.schema = f"analytics_{suffix}"
        else:
            self.url = f"chdb://{tmp_path / 'chdb'}"
            self.raw_db = "dynamodb_raw"
            self.schema = "analytics"
        self.embedded = self.url.startswith("chdb:")

    @contextmanager
    def client(self):
        """Open a client for the duration of a block (chDB allows one process at a time)."""
        from dynamodb_cdc.connection import open_client

        c = open_client(self.url)
        try:
            yield c
        finally:
            c.close()

    def rows(self, sql: str, **params):
        with self.client() as c:
            return c.query(sql, parameters=params or None).result_rows

    def scalar(self, sql: str, **params):
        return self.rows(sql, **params)[0][0]

    def cli(self, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        """Run ``dynamodb-cdc`` as a user would, against this ClickHouse."""
        command, *rest = args
        cmd = [str(BIN / "dynamodb-cdc"), command, *rest, "--clickhouse-url", self.url,
               "--raw-database", self.raw_db]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if check and result.returncode != 0:
            raise AssertionError(f"{cmd} exited {result.returncode}:\n{result.stderr}")
        return result

    def drop(self):
        if not self.embedded:
            with self.client() as c:
                c.command(f"DROP DATABASE IF EXISTS `{self.raw_db}`")
                c.command(f"DROP DATABASE IF EXISTS `{self.schema}`")


@pytest.fixture
def clickhouse(tmp_path):
    ch = ClickHouse(tmp_path)
    yield ch
    ch.drop()


def write_profile(ch: ClickHouse, directory: Path, profile: str) -> Path:
    """profiles.yml for `profile` aimed at the same ClickHouse as the loader (target `test`)."""
    from dynamodb_cdc.connection import parse_url

    directory.mkdir(parents=True, exist_ok=True)
    t = parse_url(ch.url)
    if t.embedded:
        output = f"      type: chdb\n      path: {t.path}\n"
    else:
        output = (
            f"      type: clickhouse\n      driver: http\n      host: {t.host}\n      port: {t.port}\n"
            f"      user: {t.username or 'default'}\n      password: '{t.password or ''}'\n"
            f"      secure: {str(t.kind == 'https').lower()}\n"
        )
    (directory / "profiles.yml").write_text(
        f"{profile}:\n  target: test\n  outputs:\n    test:\n{output}      schema: {ch.schema}\n      threads: 1\n"
    )
    return directory


def own_copy(project: Path, directory: Path) -> Path:
    """A copy of one of the repository's dbt projects (integration_tests/, examples/) for one test,
    its packages.yml `local: ../` written as the repository's absolute path, and the package
    installed as `dbt deps` installs a local one (a symlink in dbt_packages/).  `dbt deps` empties a
    project's dbt_packages and fills it again, and another test process (make test runs several)
    running dbt on the same project would find the package gone in between; and a test that does
    not run `dbt deps` itself does not depend on one that ran before it."""
    shutil.copytree(project, directory, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages",
                                                                      "package-lock.yml"))
    packages = directory / "packages.yml"
    text = packages.read_text()
    assert "local: ../\n" in text, f"{packages}: expected the package installed from local: ../"
    packages.write_text(text.replace("local: ../\n", f"local: {json.dumps(str(ROOT))}\n"))
    (directory / "dbt_packages").mkdir()
    (directory / "dbt_packages" / PACKAGE).symlink_to(ROOT, target_is_directory=True)
    return directory


class Dbt:
    """Runs the dbt CLI on a project, as a user would, against the test's ClickHouse."""

    def __init__(self, ch: ClickHouse, project: Path, work: Path, profile: str):
        self.ch = ch
        self.project = own_copy(project, work / "project") if project.parent == ROOT else project
        self.profiles = write_profile(ch, work / "profiles", profile)
        self.env = {**os.environ, "DBT_TARGET_PATH": str(work / "target"), "DBT_LOG_PATH": str(work / "logs"),
                    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        self.target = work / "target"

    def __call__(self, *args: str, vars: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
        all_vars = {"dynamodb_cdc_raw_database": self.ch.raw_db, **(vars or {})}
        cmd = [str(BIN / "dbt"), *args, "--project-dir", str(self.project), "--profiles-dir", str(self.profiles),
               "--vars", json.dumps(all_vars)]
        # From the project directory, as users run it.
        result = subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=600, cwd=self.project)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}")
        return result


def skew_clock(monkeypatch, skew) -> None:
    """This process stands for a host whose clock is `skew` off the server's (until the test ends:
    monkeypatch restores the clock module, the offset it measured included)."""
    from datetime import datetime, timedelta, timezone

    from dynamodb_cdc import clock

    class Skewed(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.now(tz) + skew

    monkeypatch.setattr(clock, "datetime", Skewed)
    monkeypatch.setattr(clock, "_last", datetime.min.replace(tzinfo=timezone.utc))
    monkeypatch.setattr(clock, "_offset", timedelta(0))


class Outage:
    """A real ClickHouse client whose calls fail the way a server going away makes them fail.

    ``plan(n, method, sql)`` is asked before the n-th call (1-based, counting command, query and
    insert; ``sql`` is the statement or the table) and answers None (the call goes through),
    "before" (the request never reached the server: nothing happened) or "after" (the server did
    the work and the answer was lost).  Either way the caller gets clickhouse-connect's
    OperationalError, as from a refused or dropped connection.  There is no ClickHouse server to
    stop here, so the engine stays real and only the failure is made up.
    """

    def __init__(self, client, plan):
        self.client, self.plan, self.calls, self.failed = client, plan, 0, []

    def _call(self, method, sql, *args, **kwargs):
        from clickhouse_connect.driver.exceptions import OperationalError

        self.calls += 1
        when = self.plan(self.calls, method, sql)
        if when == "before":
            self.failed.append((method, sql, when))
            raise OperationalError("Error HTTPConnectionPool(host='127.0.0.1', port=8123): Max retries exceeded "
                                   "(Caused by NewConnectionError: [Errno 111] Connection refused)")
        result = getattr(self.client, method)(sql, *args, **kwargs)
        if when == "after":
            self.failed.append((method, sql, when))
            raise OperationalError("Failed to read response data from server")
        return result

    def command(self, sql, *args, **kwargs):
        return self._call("command", sql, *args, **kwargs)

    def query(self, sql, *args, **kwargs):
        return self._call("query", sql, *args, **kwargs)

    def insert(self, table, *args, **kwargs):
        return self._call("insert", table, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.client, name)


def outage_store(ch: ClickHouse, client, plan):
    """A loader Store of ``ch`` on ``client`` behind Outage(plan), its raw tables created."""
    from dynamodb_cdc.store import Store

    store = Store(Outage(client, plan), ch.raw_db)
    store.embedded = ch.embedded  # the wrapper hides the client's kind
    store.ensure_schema()
    return store


class Crash(BaseException):
    """The loader's process dying at a chosen point (not an Exception: nothing catches it)."""


def crashing_store(client, database: str, method: str, after: int):
    """A loader Store that dies (raises Crash) as its ``after``-th call of ``method`` returns: the
    rows that call wrote are in ClickHouse, the checkpoint that follows it is not."""
    from dynamodb_cdc.store import Store

    calls = []

    def dying(self, *args, **kwargs):
        result = getattr(Store, method)(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == after:
            raise Crash()
        return result

    return type("CrashingStore", (Store,), {method: dying})(client, database)


def hold_lease(ch: ClickHouse, scope: str, *, command: str = "load-export", host: str = "etl-2", pid: int = 4242,
               renewed_ago: float = 5.0, acquired_ago: float | None = None, started: str | None = None) -> str:
    """The lease row another run or consumer holding ``scope`` (export:<ARN>, stream:<ARN>) would
    have written (lease.py), since chDB lets one process at a time open the directory: holder
    host:pid:start:run, or host:pid:run without a start time.  Returns the holder."""
    from dynamodb_cdc.store import Store

    acquired_ago = renewed_ago if acquired_ago is None else acquired_ago
    holder = f"{host}:{pid}:{started}:x" if started else f"{host}:{pid}:x"
    with ch.client() as c:
        c.command(f"CREATE DATABASE IF NOT EXISTS `{ch.raw_db}`")
        Store(c, ch.raw_db).ensure_schema()
        c.command(
            f"INSERT INTO `{ch.raw_db}`.leases SELECT '{scope}', '{holder}', '{host}', {pid}, '{command}', "
            f"now64(6) - toIntervalMicrosecond({int(acquired_ago * 1e6)}), "
            f"now64(6) - toIntervalMicrosecond({int(renewed_ago * 1e6)}), 0"
        )
    return holder


def release_leases(ch: ClickHouse) -> None:
    """Every lease released, as its holder would on ending."""
    with ch.client() as c:
        c.command(f"INSERT INTO `{ch.raw_db}`.leases SELECT scope, holder, host, pid, command, acquired_at, "
                  f"now64(6), 1 FROM `{ch.raw_db}`.leases FINAL")
