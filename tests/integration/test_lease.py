"""One load-export run at a time per export: the lease (lease.py), against a real moto S3 server and
a real ClickHouse (chDB, or CLICKHOUSE_URL).  Another run is stood in for by its lease row, written
as that run would write it (another host, or a process of this host), since chDB lets one process
at a time open its directory."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from conftest import hold_lease, release_leases
from dynamodb_cdc import lease as lease_module
from dynamodb_cdc.testing.exports import write_full_export

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/users"
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
ITEMS = [{"id": {"S": f"u{i}"}, "age": {"N": str(i)}} for i in range(12)]


def export(s3) -> tuple[str, str]:
    w = write_full_export(s3, s3.bucket, ARN, ITEMS, prefix="exports/users", export_time=T0, files=2)
    return f"s3://{s3.bucket}/exports/users", w.export_arn


def lines(ch) -> int:
    return ch.scalar(f"SELECT count() FROM `{ch.raw_db}`.export_lines")


def load_with(ch, store_class, uri: str, **options):
    """load_exports in this process, through a Store of the given (sub)class (LoadOptions: ``options``)."""
    import boto3

    from dynamodb_cdc.connection import open_client
    from dynamodb_cdc.load_export import LoadOptions, load_exports

    client = open_client(ch.url)
    try:
        return load_exports(boto3.client("s3"), store_class(client, ch.raw_db), uri,
                            LoadOptions(progress=False, **options))
    finally:
        client.close()


def holders(ch) -> list[tuple]:
    return ch.rows(f"SELECT holder, released FROM `{ch.raw_db}`.leases FINAL ORDER BY holder")


def test_an_export_another_run_holds_is_left_to_it(s3, clickhouse):
    uri, arn = export(s3)
    hold_lease(clickhouse, f"export:{arn}")
    result = clickhouse.cli("load-export", uri)
    assert result.returncode == 1
    assert (f"{arn} (users) is being loaded by load-export (process 4242 on etl-2) since " in result.stderr
            and "this run leaves it to that one" in result.stderr), result.stderr
    assert result.stderr.count("is being loaded by") == 1
    assert "1 export(s) left to the run that holds them" in result.stderr and "Fix the cause" not in result.stderr
    assert "Traceback" not in result.stderr
    assert lines(clickhouse) == 0
    assert clickhouse.scalar(f"SELECT count() FROM `{clickhouse.raw_db}`.export_files") == 0
    assert [h for h, _ in holders(clickhouse)] == ["etl-2:4242:x"]  # it did not even write a lease row
    # once that run is done (its lease released), the next run loads the export
    release_leases(clickhouse)
    clickhouse.cli("load-export", uri, check=True)
    assert lines(clickhouse) == len(ITEMS)


def test_a_lapsed_lease_does_not_hold_the_export(s3, clickhouse):
    uri, arn = export(s3)
    hold_lease(clickhouse, f"export:{arn}", renewed_ago=lease_module.LEASE_SECONDS + 30)
    clickhouse.cli("load-export", uri, check=True)
    assert lines(clickhouse) == len(ITEMS)


def test_a_gone_process_of_this_host_holds_nothing(s3, clickhouse):
    """A run killed with -9 and started again on the same host goes on at once."""
    uri, arn = export(s3)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    hold_lease(clickhouse, f"export:{arn}", host=lease_module.HOST, pid=gone.pid)
    clickhouse.cli("load-export", uri, check=True)
    assert lines(clickhouse) == len(ITEMS)
    # and the run released its own lease as it ended
    assert [released for holder, released in holders(clickhouse) if not holder.endswith(":x")] == [1]
    assert [h.count(":") for h, _ in holders(clickhouse) if not h.endswith(":x")] == [3]  # host:pid:start:run


def test_a_pid_given_to_a_later_process_holds_nothing(s3, clickhouse):
    """A container restarted under the same host name runs its loader with the pid the killed one
    had: the start time recorded with the pid tells them apart.  The same pid started at the
    recorded time still holds the export."""
    uri, arn = export(s3)
    me = os.getpid()  # alive, as a later process with the holder's pid would be
    hold_lease(clickhouse, f"export:{arn}", host=lease_module.HOST, pid=me, started=lease_module._started(me))
    held = clickhouse.cli("load-export", uri)
    assert held.returncode == 1 and f"(process {me} on {lease_module.HOST})" in held.stderr, held.stderr
    with clickhouse.client() as c:
        c.command(f"TRUNCATE TABLE `{clickhouse.raw_db}`.leases")
    hold_lease(clickhouse, f"export:{arn}", host=lease_module.HOST, pid=me, started="1")  # started at boot: not this one
    clickhouse.cli("load-export", uri, check=True)
    assert lines(clickhouse) == len(ITEMS)


def test_of_two_runs_taking_the_lease_at_once_the_later_yields(s3, clickhouse):
    """Both write their row before either reads the other's: the one acquired first keeps it."""
    from dynamodb_cdc.store import Store

    uri, arn = export(s3)

    class Racing(Store):
        def take_lease(self, scope, holder, host, pid, command):
            super().take_lease(scope, holder, host, pid, command)
            # the other run's row, written in the same instant but acquired a moment before this one
            self.client.command(
                f"INSERT INTO {self.q}.leases SELECT {scope!r}, 'etl-2:7:x', 'etl-2', 7, 'load-export', "
                f"acquired_at - toIntervalMillisecond(1), now64(6), 0 FROM {self.q}.leases FINAL "
                f"WHERE scope = {scope!r} AND holder = {holder!r}")

    result = load_with(clickhouse, Racing, uri)
    [out] = result.exports
    assert out.held and not result.ok
    assert "which took it at the same time" in out.errors[0]
    assert lines(clickhouse) == 0
    assert dict(holders(clickhouse)) == {"etl-2:7:x": 0, lease_module.HOLDER: 1}


def test_a_run_that_got_the_lease_after_another_loaded_the_export_loads_nothing_again(s3, clickhouse):
    """The ledger was read before the lease was taken: a run that finished the export in between left
    this one a stale plan, and it loaded every file again."""
    from dynamodb_cdc.load_export import LoadOptions, load_exports
    from dynamodb_cdc.store import Store

    import boto3

    uri, arn = export(s3)

    class Late(Store):
        def take_lease(self, scope, holder, host, pid, command):
            if not getattr(self, "raced", False):  # meanwhile, another run loads the whole export
                self.raced = True
                other = load_exports(boto3.client("s3"), Store(self.client, self.db), uri, LoadOptions(progress=False))
                assert other.ok and other.exports[0].files_loaded == 2
            super().take_lease(scope, holder, host, pid, command)

    result = load_with(clickhouse, Late, uri)
    [out] = result.exports
    assert result.ok and (out.files_loaded, out.files_skipped) == (0, 2)
    assert lines(clickhouse) == len(ITEMS)


@pytest.mark.parametrize("refused", [False, True])
def test_the_holder_renews_its_lease_while_files_land(s3, clickhouse, monkeypatch, refused):
    """After every data file, a refused one included (a run of bad files may take long too)."""
    from dynamodb_cdc import status
    from dynamodb_cdc.store import Store

    uri, arn = export(s3)
    if refused:  # the first data file corrupt: refused, the other lands
        first = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=s3.bucket, Prefix="exports/users")["Contents"]
                       if o["Key"].endswith(".json.gz"))[0]
        s3.put_object(Bucket=s3.bucket, Key=first, Body=b"not gzip")
    renewed, loading = [], []

    class Watching(Store):
        def renew_lease(self, scope, holder):
            super().renew_lease(scope, holder)
            renewed.append(self.client.query(
                f"SELECT renewed_at > acquired_at, released FROM {self.q}.leases FINAL WHERE holder = {holder!r}"
            ).result_rows[0])
            # what `dynamodb-cdc status` says meanwhile
            [users] = status.collect(self.client, self.db)["tables"]
            loading.append([(h["export_arn"], h["pid"], h["by"]) for h in users["loading_now"]])

    monkeypatch.setattr(lease_module, "RENEW_SECONDS", 0)
    result = load_with(clickhouse, Watching, uri, parallel_files=1)
    assert result.ok is not refused and result.exports[0].files_failed == int(refused)
    assert renewed == [(1, 0), (1, 0)]  # once per data file, still held
    assert loading == [[(arn, os.getpid(), "load-export")]] * 2
    assert holders(clickhouse) == [(lease_module.HOLDER, 1)]
    with clickhouse.client() as c:
        [users] = status.collect(c, clickhouse.raw_db)["tables"]
    assert users["loading_now"] == []


@pytest.mark.parametrize("renewed_ago, live", [(1.0, True), (lease_module.LEASE_SECONDS - 1.0, True),
                                                (lease_module.LEASE_SECONDS + 1.0, False)])
def test_a_lease_is_live_until_it_lapses(renewed_ago, live):
    assert lease_module.Holder("h", "etl-2", 1, "load-export", "", renewed_ago).live() is live


def test_a_run_paused_past_its_lease_stops_instead_of_renewing(s3, clickhouse, monkeypatch):
    """A run paused (stopped, its VM frozen) for longer than LEASE_SECONDS after its first file, while
    another host's run took the lapsed lease: renewing would have made two live holders of the
    export, both loading its files.  It stops, leaving the export to the other run."""
    import time

    from dynamodb_cdc.store import Store

    uri, arn = export(s3)
    monkeypatch.setattr(lease_module, "RENEW_SECONDS", 0)
    monkeypatch.setattr(lease_module, "LEASE_SECONDS", 1)

    class Paused(Store):
        def record_file(self, summary, data_file, **kwargs):
            super().record_file(summary, data_file, **kwargs)
            if kwargs.get("status") == "loaded" and not getattr(self, "paused", False):
                self.paused = True
                time.sleep(1.5)  # past the lapse: another host's run takes the lease meanwhile
                self.client.command(
                    f"INSERT INTO {self.q}.leases SELECT 'export:{arn}', 'etl-2:4242:x', 'etl-2', 4242, "
                    "'load-export', now64(6), now64(6), 0")

    result = load_with(clickhouse, Paused, uri, parallel_files=1)
    [out] = result.exports
    assert not result.ok and out.held, out
    assert "this run's lease lapsed" in out.errors[0] and "(process 4242 on etl-2)" in out.errors[0]
    assert (out.files_loaded, out.lines_landed) == (1, 6)  # the first file landed; the second is left to the other run
    assert holders(clickhouse) == [("etl-2:4242:x", 0), (lease_module.HOLDER, 1)]  # the other run's row stays live
