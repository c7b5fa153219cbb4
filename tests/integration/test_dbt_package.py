"""The dbt package as a user installs it (integration_tests/, a local package: see conftest.own_copy), over
a full refresh and incremental runs, against exports landed by the real loader from moto."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from conftest import ROOT, Dbt
from dynamodb_cdc.testing.exports import dumps_line, write_full_export

ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/customers"
T0 = datetime(2025, 12, 31, tzinfo=timezone.utc)
T1 = datetime(2026, 1, 1, tzinfo=timezone.utc)
T2 = datetime(2026, 1, 2, tzinfo=timezone.utc)
T3 = datetime(2026, 1, 3, tzinfo=timezone.utc)


def S(v):
    return {"S": v}


def N(v):
    return {"N": v}


def customer(tenant, cid, **attrs):
    return {"tenant": S(tenant), "customer_id": N(cid), **attrs}


ACME1_V1 = customer("acme", "1", name=S("Ada"), balance=N("1234.56"), visits=N("10"), score=N("4.5"),
                    vip={"BOOL": True}, address={"M": {"city": S("London"), "street.line": S("1 Main St")}},
                    avatar={"B": "AAEC"}, **{"we'ird.attr": S("x1")})
ACME1_V2 = customer("acme", "1", name=S("Ada L."), balance=N("1300"), visits=N("11"), score=N("4.5"),
                    vip={"BOOL": True}, address={"M": {"city": S("London"), "street.line": S("2 Main St")}},
                    avatar={"B": "AAEC"}, **{"we'ird.attr": S("x2")})
ACME2 = customer("acme", "2", name=S("Bob"), balance=N("-0.0001"), visits=N("-5"), score=N("0.25"), vip={"BOOL": False})
ACME3 = customer("acme", "3", name=S("Cé"), balance=N("9999999999999999999999999999999999.9999"),
                 visits=N("2147483647"), score=N("-3"), vip={"NULL": True}, address={"M": {"city": {"NULL": True}}})
GLOBEX1 = customer("globex", "1", name=S("Globex One"), balance=N("0"), visits=N("0"))
GLOBEX_MAX = customer("globex", "18446744073709551615", name=S("Max"))
INITECH7 = customer("initech", "7", name=S("Neo"), address={"M": {"city": S("Zion")}})


@pytest.fixture
def dbt(clickhouse, tmp_path):
    return Dbt(clickhouse, ROOT / "integration_tests", tmp_path, "dynamodb_cdc_integration_tests")


def load(s3, ch, items, when, files=2):
    write_full_export(s3, s3.bucket, ARN, items, prefix="exports/customers", export_time=when, files=files)
    ch.cli("load-export", f"s3://{s3.bucket}/exports/customers", check=True)


def run_results(dbt: Dbt) -> dict[str, tuple[str, int]]:
    doc = json.loads((dbt.target / "run_results.json").read_text())
    return {r["unique_id"]: (r["status"], r.get("failures")) for r in doc["results"]}


def test_full_refresh_then_incremental_runs_match_expected_seeds(s3, clickhouse, dbt):
    ch = clickhouse
    changes = f"{ch.schema}.customers_changes"

    # Stage 1: a first full export, a full build.
    load(s3, ch, [ACME1_V1, ACME2, ACME3, GLOBEX1, GLOBEX_MAX], T1)
    dbt("seed", vars={"stage": 1})
    dbt("run", vars={"stage": 1})
    dbt("test", vars={"stage": 1})
    assert ch.scalar(f"SELECT count() FROM {changes}") == 5
    # The insert's settings: the package's optimize_on_insert = 0, and the project's own merged in.
    run_sql = dbt.target / "run" / "dynamodb_cdc_integration_tests" / "models"
    assert "SETTINGS optimize_on_insert=0, max_execution_time=3600" in (run_sql / "customers_changes.sql").read_text()
    # Binary decoded to bytes, and the same attribute kept as base64 text.
    assert ch.rows(f"SELECT avatar, avatar_b64 FROM {ch.schema}.customers_current WHERE customer_id = 1 AND tenant = 'acme'") \
        in ([(b"\x00\x01\x02", "AAEC")], [("\x00\x01\x02", "AAEC")])
    assert ch.rows(f"SELECT toTypeName(balance), toTypeName(customer_id), toTypeName(tenant) FROM {changes} LIMIT 1") == [
        ("Nullable(Decimal(38, 4))", "UInt64", "LowCardinality(String)")]
    # Attributes no column takes whole are kept as DynamoDB JSON: here the map read through a path.
    other = ch.scalar(f"SELECT _other_attributes FROM {ch.schema}.customers_current WHERE tenant = 'acme' AND customer_id = 1")
    assert json.loads(other) == {"address": ACME1_V1["address"]}

    # Stage 2: a newer full export: acme/1 updated, acme/3 gone (a delete), initech/7 new.
    load(s3, ch, [ACME1_V2, ACME2, GLOBEX1, GLOBEX_MAX, INITECH7], T2)
    dbt("run", vars={"stage": 2})
    dbt("test", vars={"stage": 2})
    # (DISTINCT: a row read again through the look-back window is the same row, until a merge drops it)
    assert ch.rows(
        f"SELECT DISTINCT _event, _is_deleted, bitShiftRight(_version, 200), _changed_at FROM {changes} "
        f"WHERE tenant = 'acme' AND customer_id = 3 ORDER BY _version"
    ) == [("SNAPSHOT", 0, int(T1.timestamp() * 1e6), T1.replace(tzinfo=None)),
          ("SNAPSHOT_ABSENT", 1, int(T2.timestamp() * 1e6), T2.replace(tzinfo=None))]
    # Incremental: the run appended the new export's rows and one delete; rows read again
    # through the look-back window collapse in the ReplacingMergeTree.
    assert ch.scalar(f"SELECT count() FROM (SELECT DISTINCT * EXCEPT _ingested_at FROM {changes})") == 5 + 5 + 1

    # Stage 3: an OLDER export (T0) lands late: it must not bring back old values or deleted items,
    # and acme/99, which a later snapshot does not have, must not appear.
    load(s3, ch, [customer("acme", "1", name=S("Old Ada")), customer("acme", "3", name=S("Old C")),
                  customer("acme", "99", name=S("Ghost"))], T0, files=1)
    dbt("run", vars={"stage": 3})
    dbt("test", vars={"stage": 3})
    assert ch.scalar(f"SELECT count() FROM {ch.schema}.customers_current WHERE customer_id = 99") == 0
    # The current state as a plain table, ordered like the changes model, equals the view (dbt test).
    assert ch.rows(f"SELECT engine, sorting_key FROM system.tables WHERE database = '{ch.schema}' "
                   f"AND name = 'customers_current_table'") == [("MergeTree", "tenant, customer_id")]
    # optimize_changes merges the changes model into one part; the current state is unchanged.
    parts = f"SELECT count() FROM system.parts WHERE active AND database = '{ch.schema}' AND table = 'customers_changes'"
    assert ch.scalar(parts) > 1
    before = ch.rows(f"SELECT * FROM {ch.schema}.customers_current ORDER BY tenant, customer_id")
    optimized = dbt("run-operation", "dynamodb_cdc.optimize_changes", "--args", "{model: customers_changes}", vars={"stage": 3})
    unnamed = dbt("run-operation", "dynamodb_cdc.optimize_changes", vars={"stage": 3}, check=False)
    assert unnamed.returncode != 0 and "optimize_changes needs the changes model's name" in unnamed.stdout
    assert "active parts before, 1 after" in optimized.stdout
    assert ch.scalar(parts) == 1
    assert ch.rows(f"SELECT * FROM {ch.schema}.customers_current ORDER BY tenant, customer_id") == before
    assert ch.scalar(f"SELECT countIf(_is_deleted = 1) FROM {changes}") > 0  # delete rows are kept

    # Stage 4: a value that overflows its declared type becomes NULL and is counted; a key that
    # cannot be converted leaves the row out, and is counted too.
    initech_overflow = customer("initech", "7", name=S("Neo"), address={"M": {"city": S("Zion")}}, visits=N("99999999999"))
    bad_key = customer("acme", "-1", name=S("negative id"))
    load(s3, ch, [ACME1_V2, ACME2, GLOBEX1, GLOBEX_MAX, initech_overflow, bad_key], T3)
    dbt("run", vars={"stage": 4})
    tested = dbt("test", vars={"stage": 4}, check=False)
    assert tested.returncode == 1
    results = run_results(dbt)
    conversion = [v for k, v in results.items() if "no_conversion_errors" in k]
    assert conversion == [("fail", 2)]
    assert all(v[0] == "pass" for k, v in results.items() if "no_conversion_errors" not in k)
    assert ch.rows(f"SELECT visits, _conversion_errors FROM {changes} WHERE tenant = 'initech' "
                   f"AND bitShiftRight(_version, 200) = {int(T3.timestamp() * 1e6)}") == [(None, ["visits"])]
    # The test reads each item's latest change: runs that read rows again through the look-back window
    # (default 300 s) do not count them twice, and once a later change supersedes the bad value, only
    # the key that cannot be converted is left.
    for _ in range(2):
        dbt("run", vars={"stage": 4})
        dbt("test", "--select", "test_name:no_conversion_errors", vars={"stage": 4}, check=False)
        assert [v for k, v in run_results(dbt).items() if "no_conversion_errors" in k] == [("fail", 2)]
    load(s3, ch, [ACME1_V2, ACME2, GLOBEX1, GLOBEX_MAX, INITECH7], T3 + timedelta(days=1))  # (the bad key's raw row stays)
    dbt("run", vars={"stage": 4})
    dbt("test", "--select", "test_name:no_conversion_errors", vars={"stage": 4}, check=False)
    assert [v for k, v in run_results(dbt).items() if "no_conversion_errors" in k] == [("fail", 1)]

    # A full refresh rebuilds the same current state from the raw tables.
    dbt("run", "--full-refresh", vars={"stage": 4})
    dbt("test", "--exclude", "test_name:no_conversion_errors", vars={"stage": 4})


def test_an_incremental_change_at_the_full_exports_own_microsecond_wins_whatever_lands_first(s3, clickhouse, dbt):
    """The source rank breaks a tie of change times: an incremental-export line written in the very
    microsecond of a full export's exportTime is a later change than the snapshot (rank 1 over 0),
    also when the full export lands after it (late): a delete stays a delete, an update stays."""
    from dynamodb_cdc.testing.exports import incremental_line, write_incremental_export

    arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/props"
    at = datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=timezone.utc)
    at_us = int(at.timestamp()) * 1_000_000 + at.microsecond

    def item(pk, v):
        return {"pk": S(pk), "v": N(str(v)), "s": S(f"{pk}-{v}")}

    write_incremental_export(s3, s3.bucket, arn, [
        incremental_line({"pk": S("gone")}, None, item("gone", 1), at_us),
        incremental_line({"pk": S("changed")}, item("changed", 20), item("changed", 2), at_us),
    ], export_from=at.replace(microsecond=0), export_to=at.replace(minute=30, microsecond=0), prefix="late")
    clickhouse.cli("load-export", f"s3://{s3.bucket}/late")  # exit 1: no full export before the window yet
    dbt("run", "--select", "props_changes", "props_current")
    write_full_export(s3, s3.bucket, arn, [item("gone", 1), item("changed", 2), item("kept", 3)], prefix="late",
                      export_time=at)
    clickhouse.cli("load-export", f"s3://{s3.bucket}/late", check=True)
    dbt("run", "--select", "props_changes", "props_current")
    assert clickhouse.rows(f"SELECT pk, v FROM {clickhouse.schema}.props_current ORDER BY pk") == [
        ("changed", 20), ("kept", 3)]


def test_changes_of_one_millisecond_are_ordered_by_sequence_number_whatever_their_arrival_order(clickhouse, dbt):
    """Two changes of an item in the same Kinesis millisecond differ only by sequence number: the
    higher one wins, also when the lower one lands after it (a batch landed again), in a later
    insert and in a later dbt run, so the order is the same whatever the arrival order."""
    from dynamodb_cdc.store import Store
    from dynamodb_cdc.streams import Record
    from dynamodb_cdc.testing.streams import change_record

    arn, at_ms = "arn:aws:kinesis:eu-west-1:123456789012:stream/props", 1_772_366_400_123
    arrived = datetime(2026, 3, 1, 12, 0, 1, tzinfo=timezone.utc)

    def record(seq, v, event="MODIFY"):
        image = {"pk": S("k"), "v": N(str(v)), "s": S(f"v{v}")}
        return Record("shardId-000000000000", str(seq), arrived, "k", "",
                      change_record("props", event, {"pk": S("k")}, new=image, at_ms=at_ms))

    for batch in ([record(49_600_000_000_000_000_000_002, 2)], [record(49_600_000_000_000_000_000_001, 1, "INSERT")]):
        with clickhouse.client() as c:
            store = Store(c, clickhouse.raw_db)
            store.ensure_schema()
            store.insert_stream_records("kinesis", arn, batch)
        dbt("run", "--select", "props_changes", "props_current")
    assert clickhouse.rows(f"SELECT pk, v, s FROM {clickhouse.schema}.props_current") == [("k", 2, "v2")]


def test_a_run_with_nothing_new_skips_the_snapshot_pass_and_a_new_snapshot_still_deletes(s3, clickhouse, dbt):
    """Each successful run records the full exports it has applied (dynamodb_cdc_applied_snapshots);
    a later run with nothing new reads no raw rows and skips the pass that re-reads the whole
    table, and a newer snapshot still deletes the keys it no longer has."""
    ch = clickhouse
    v = {"stage": 1, "dynamodb_cdc_lookback_seconds": 0}  # one step after the other: no margin needed
    model = "customers_changes"
    compiled = dbt.target / "run" / "dynamodb_cdc_integration_tests" / "models" / f"{model}.sql"
    marks = f"{ch.schema}.dynamodb_cdc_applied_snapshots"

    def applied():
        return ch.rows(f"SELECT export_arn FROM {marks} WHERE model = '{ch.schema}.{model}' ORDER BY updated_at")

    def current():
        return ch.rows(f"SELECT tenant, customer_id FROM {ch.schema}.customers_current ORDER BY 1, 2")

    load(s3, ch, [ACME1_V1, ACME2, ACME3], T1)
    dbt("run", "--select", model, "customers_current", vars=v)
    [(first,)] = applied()
    assert first.startswith(ARN + "/export/")
    for _ in range(2):  # nothing new: no snapshot pass, nothing recorded twice
        dbt("run", "--select", model, vars=v)
        assert "snapshot_keys" not in compiled.read_text()
    assert applied() == [(first,)]
    assert current() == [("acme", 1), ("acme", 2), ("acme", 3)]

    load(s3, ch, [ACME1_V2, ACME2], T2)  # acme/3 is gone from the newer snapshot
    dbt("run", "--select", model, vars=v)
    assert "snapshot_keys" in compiled.read_text()
    assert current() == [("acme", 1), ("acme", 2)]
    assert len(applied()) == 2
    dbt("run", "--select", model, vars=v)
    assert "snapshot_keys" not in compiled.read_text()
    assert current() == [("acme", 1), ("acme", 2)]


def test_a_loader_clock_ahead_of_the_server_does_not_hide_later_raw_rows(s3, clickhouse, dbt):
    """A snapshot's delete rows took _ingested_at from the exports ledger's updated_at, stamped by the
    loader's host clock, while raw rows get the server's now64(): a loader clock ahead of the server
    moved the model's newest _ingested_at, from which the next run reads, past raw rows not read yet,
    and those were never read."""
    ch = clickhouse
    v = {"stage": 1}
    current = f"SELECT tenant, customer_id, name FROM {ch.schema}.customers_current ORDER BY 1, 2"
    load(s3, ch, [ACME1_V1, ACME2, ACME3], T1, files=1)
    dbt("run", "--select", "customers_changes", "customers_current", vars=v)
    load(s3, ch, [ACME1_V1, ACME2], T2, files=1)  # acme/3 deleted
    # The ledger row of that export as a loader whose clock is an hour ahead of the server's stamps it.
    ch.rows(f"INSERT INTO {ch.raw_db}.exports SELECT * REPLACE (updated_at + INTERVAL 1 HOUR AS updated_at) "
            f"FROM {ch.raw_db}.exports FINAL WHERE export_time = '{T2:%Y-%m-%d %H:%M:%S}'")
    dbt("run", "--select", "customers_changes", vars=v)
    assert ch.rows(current) == [("acme", 1, "Ada"), ("acme", 2, "Bob")]
    load(s3, ch, [ACME1_V2, ACME2], T3, files=1)  # acme/1 renamed
    dbt("run", "--select", "customers_changes", vars=v)
    assert ch.rows(current) == [("acme", 1, "Ada L."), ("acme", 2, "Bob")]


def test_a_declaration_named_apart_from_its_dynamodb_table_records_the_snapshots_it_applied(s3, clickhouse, dbt):
    """ttl_delete declares DynamoDB table `sessions` under another name (dynamodb_table): its runs
    record the full exports of `sessions` they applied, as customers_changes does its own (else each
    run would read the whole table again for the snapshot pass)."""
    ch = clickhouse
    v = {"stage": 1, "dynamodb_cdc_lookback_seconds": 0}
    sessions = "arn:aws:dynamodb:us-east-1:123456789012:table/sessions"
    write_full_export(s3, s3.bucket, sessions, [{"id": {"S": "s1"}, "name": {"S": "a"}}], prefix="exports/sessions",
                      export_time=T1, files=1)
    ch.cli("load-export", f"s3://{s3.bucket}/exports/sessions", check=True)
    dbt("run", "--select", "ttl_delete_changes", vars=v)
    applied = ch.rows(f"SELECT table_name, export_arn FROM {ch.schema}.dynamodb_cdc_applied_snapshots "
                      f"WHERE model = '{ch.schema}.ttl_delete_changes'")
    assert [(t, arn.startswith(sessions + "/export/")) for t, arn in applied] == [("sessions", True)]
    compiled = dbt.target / "run" / "dynamodb_cdc_integration_tests" / "models" / "ttl_delete_changes.sql"
    dbt("run", "--select", "ttl_delete_changes", vars=v)  # nothing new: no snapshot pass
    assert "snapshot_keys" not in compiled.read_text()


def test_a_snapshot_with_a_quarantined_line_deletes_nothing(s3, clickhouse, dbt):
    """A full export one line of which is quarantined (its item unreadable) is not a whole key set:
    the item on that line cannot be told apart from a deleted one, so that snapshot adds no delete
    rows; a later whole snapshot deletes what it no longer holds."""
    ch = clickhouse
    v = {"stage": 1, "dynamodb_cdc_lookback_seconds": 0}
    load(s3, ch, [ACME1_V1, ACME2, ACME3], T1, files=1)
    dbt("run", "--select", "customers_changes", "customers_current", vars=v)
    # T2: acme/3 deleted, acme/2's line damaged (quarantined), acme/1 updated
    lines = [dumps_line({"Item": ACME1_V2}), dumps_line({"Item": ACME2})[:-1]]  # acme/2's line cut short: not JSON
    write_full_export(s3, s3.bucket, ARN, [], prefix="exports/damaged", export_time=T2, files=1, lines=lines)
    loaded = ch.cli("load-export", f"s3://{s3.bucket}/exports/damaged", check=True)
    assert "1 quarantined" in loaded.stderr
    dbt("run", "--select", "customers_changes", "customers_current", vars=v)
    current = f"SELECT tenant, customer_id, name FROM {ch.schema}.customers_current ORDER BY 1, 2"
    assert ch.rows(current) == [("acme", 1, "Ada L."), ("acme", 2, "Bob"), ("acme", 3, "Cé")]
    load(s3, ch, [ACME1_V2, ACME2], T3, files=1)  # a whole snapshot: acme/3 is gone
    dbt("run", "--select", "customers_changes", "customers_current", vars=v)
    assert ch.rows(current) == [("acme", 1, "Ada L."), ("acme", 2, "Bob")]


def test_a_snapshot_item_whose_key_does_not_convert_does_not_keep_another_item(s3, clickhouse, dbt):
    """customer_id is declared UInt64.  A snapshot item whose customer_id is not a number (its row is
    left out and reported by no_conversion_errors) had its key read as the type's default, 0, in the
    snapshot's key set: the real item acme/0, deleted in that snapshot, was kept as if still there."""
    ch = clickhouse
    v = {"stage": 1, "dynamodb_cdc_lookback_seconds": 0}
    acme0 = customer("acme", "0", name=S("Zero"))
    load(s3, ch, [acme0, ACME1_V1], T1, files=1)
    dbt("run", "--select", "customers_changes", "customers_current", vars=v)
    current = f"SELECT tenant, customer_id, name FROM {ch.schema}.customers_current ORDER BY 1, 2"
    assert ch.rows(current) == [("acme", 0, "Zero"), ("acme", 1, "Ada")]
    bad = {"tenant": S("acme"), "customer_id": S("not-a-number"), "name": S("Bad")}
    load(s3, ch, [ACME1_V1, bad], T2, files=1)  # acme/0 deleted
    dbt("run", "--select", "customers_changes", "customers_current", vars=v)
    assert ch.rows(current) == [("acme", 1, "Ada")]


def _sort_key_named_snapshot_key_1(t):
    t["key"] = ["tenant", "_snapshot_key_1"]
    t["columns"][1] = {"name": "_snapshot_key_1", "attribute": "customer_id", "type": "UInt64"}


def test_a_key_column_named_like_the_snapshot_passs_own_columns_keeps_its_items(s3, clickhouse, dbt):
    """The snapshot pass converted each key as _snapshot_key_<n>, then named the typed keys after the
    declared columns in the same SELECT: a key column declared as _snapshot_key_1 (not a reserved
    name) took precedence over the converted one, so the partition key read the sort key's value,
    no known key was in the snapshot's key set, and a full export holding every item deleted them all."""
    ch = clickhouse
    v = {**_customers(_sort_key_named_snapshot_key_1), "dynamodb_cdc_lookback_seconds": 0}
    load(s3, ch, [ACME1_V1, ACME2], T1, files=1)
    dbt("run", "--select", "customers_changes", vars=v)
    load(s3, ch, [ACME1_V2, ACME2], T2, files=1)  # the same items: nothing to delete
    dbt("run", "--select", "customers_changes", vars=v)
    assert ch.rows(f"SELECT tenant, _snapshot_key_1, name FROM {ch.schema}.customers_changes FINAL "
                   f"WHERE NOT _is_deleted ORDER BY 1, 2") == [("acme", 1, "Ada L."), ("acme", 2, "Bob")]


def test_a_column_added_to_the_declaration_asks_for_a_full_refresh(s3, clickhouse, dbt):
    """A declaration that gains (or loses) a column no longer matches the table the changes model
    built: the next incremental run stops with the columns and the command that rebuilds it, and
    that rebuild gives the new column its values from the raw rows already landed."""
    import yaml

    ch = clickhouse
    load(s3, ch, [ACME1_V1, ACME2], T1, files=1)
    dbt("run", "--select", "customers_changes", vars={"stage": 1})
    tables = yaml.safe_load((ROOT / "integration_tests" / "dbt_project.yml").read_text())["vars"]["dynamodb_cdc_tables"]
    tables["customers"]["columns"].append({"name": "nickname", "attribute": "name", "type": "String"})
    v = {"stage": 1, "dynamodb_cdc_tables": tables}
    failed = dbt("run", "--select", "customers_changes", vars=v, check=False)
    assert failed.returncode != 0
    assert "was built with other columns than dynamodb_cdc_tables.customers declares now (added: nickname)" in failed.stdout
    assert "dbt run --full-refresh --select customers_changes" in failed.stdout
    dbt("run", "--full-refresh", "--select", "customers_changes", vars=v)
    assert ch.rows(f"SELECT DISTINCT customer_id, nickname FROM {ch.schema}.customers_changes ORDER BY 1") == [
        (1, "Ada"), (2, "Bob")]
    dbt("run", "--select", "customers_changes", vars=v)  # and incremental runs go on


def _customers(edit):
    import copy

    import yaml

    tables = yaml.safe_load((ROOT / "integration_tests" / "dbt_project.yml").read_text())["vars"]["dynamodb_cdc_tables"]
    tables = copy.deepcopy(tables)
    edit(tables["customers"])
    return {"stage": 1, "dynamodb_cdc_tables": tables}


def _swap_name_and_balance(t):
    cols = t["columns"]
    cols[2], cols[3] = cols[3], cols[2]


def _retype_balance(t):
    t["columns"][3]["type"] = "Decimal(38, 6)"


def test_a_column_moved_or_retyped_in_the_declaration_asks_for_a_full_refresh(s3, clickhouse, dbt):
    """dbt-clickhouse inserts by position: two declared columns swapped put each one's values in the
    other, and a new type cut values to the old one, silently.  Both stop with the command that
    rebuilds; a type spelled otherwise but the same (Decimal128(4) is Decimal(38, 4)) does not."""
    ch = clickhouse
    load(s3, ch, [ACME1_V1, ACME2], T1, files=1)
    dbt("run", "--select", "customers_changes", vars={"stage": 1})
    for edit, words in ((_swap_name_and_balance, "(in another order: tenant, customer_id, balance, name, visits"),
                        (_retype_balance, "(retyped: balance is Nullable(Decimal(38, 4)) in the table, "
                                          "Nullable(Decimal(38, 6)) now)")):
        failed = dbt("run", "--select", "customers_changes", vars=_customers(edit), check=False)
        assert failed.returncode != 0 and words in failed.stdout, failed.stdout[-3000:]
        assert "dbt run --full-refresh --select customers_changes" in failed.stdout
    same = _customers(lambda t: t["columns"][3].update(type="Decimal128(4)"))
    dbt("run", "--select", "customers_changes", vars=same)
    v = _customers(_swap_name_and_balance)
    dbt("run", "--full-refresh", "--select", "customers_changes", vars=v)
    load(s3, ch, [ACME1_V2, ACME2], T2, files=1)
    dbt("run", "--select", "customers_changes", vars=v)
    assert ch.rows(f"SELECT name, balance FROM {ch.schema}.customers_changes FINAL WHERE customer_id = 1") == [
        ("Ada L.", Decimal("1300"))]


def test_a_misspelt_type_on_a_built_model_is_a_compiler_error_naming_the_column(s3, clickhouse, dbt):
    """A type misspelt in the declaration of a model already built went to ClickHouse in the column
    check (UNKNOWN_TYPE, quoting the check's own SQL and naming neither the column nor the var);
    it is the same compiler error, listing the supported types, as on a first build."""
    ch = clickhouse
    load(s3, ch, [ACME1_V1, ACME2], T1, files=1)
    dbt("run", "--select", "customers_changes", vars={"stage": 1})
    v = _customers(lambda t: t["columns"][4].update(type="Int23"))
    for args in (("run",), ("run", "--full-refresh")):
        failed = dbt(*args, "--select", "customers_changes", vars=v, check=False)
        assert failed.returncode != 0
        assert ("dynamodb_cdc: dynamodb_cdc_tables.customers, column 'visits': column type 'Int23' is not "
                "supported yet") in failed.stdout, failed.stdout[-3000:]
        assert "UNKNOWN_TYPE" not in failed.stdout


@pytest.mark.parametrize("edit, words", [
    (lambda t: t.update(ttl_delete="keep"), "dynamodb_cdc_tables.customers has unknown key(s) ttl_delete"),
    (lambda t: t["columns"][2].update(atribute="Name"), "column 'name' has unknown key(s) atribute"),
    (lambda t: t["columns"][2].update(attribute="name", path=["name"]), "column 'name' has both attribute and path"),
    (lambda t: t["columns"].append({"name": "_version", "type": "Int64"}),
     "column name _version is one the changes model uses for its own columns"),
    (lambda t: t["columns"].append({"name": "_tv_2", "type": "Int64"}),
     "column name _tv_2 is one the changes model uses for its own columns"),
    (lambda t: t["columns"][4].update(type="Int23"),
     "dynamodb_cdc_tables.customers, column 'visits': column type 'Int23' is not supported yet"),
    (lambda t: t["columns"][1].update(type="Float64"),
     "key column 'customer_id' is declared Float64. Distinct DynamoDB numbers that round to the same float"),
], ids=["table-key", "column-key", "attribute-and-path", "reserved", "reserved-pattern", "type", "float-key"])
def test_a_declaration_with_a_misspelt_key_or_a_reserved_name_is_refused(clickhouse, dbt, edit, words):
    """A misspelt key was ignored (ttl_delete: keep deleted; atribute: read the attribute named as the
    column), and a column named _version or _seq broke or skewed the model's own columns."""
    failed = dbt("parse", vars=_customers(edit), check=False)  # refused while dbt parses the project
    assert failed.returncode != 0 and words in failed.stdout, failed.stdout[-3000:]


def test_switching_the_materialization_of_a_built_model_asks_for_a_rebuild(s3, clickhouse, dbt):
    """Incremental to materialized views: the views would type only rows inserted from then on, so
    what landed since the last run was never in the model.  Views to incremental: the views would
    go on writing into the table."""
    ch = clickhouse
    load(s3, ch, [ACME1_V1], T1, files=1)
    dbt("run", "--select", "customers_changes", vars={"stage": 1})
    load(s3, ch, [ACME1_V1, ACME2], T2, files=1)
    views = _customers(lambda t: t.update(materialization="materialized_view"))
    failed = dbt("run", "--select", "customers_changes", vars=views, check=False)
    assert failed.returncode != 0
    assert "was built by the incremental changes model" in failed.stdout
    assert "dbt run --full-refresh --select customers_changes" in failed.stdout
    dbt("run", "--full-refresh", "--select", "customers_changes", vars=views)
    assert ch.rows(f"SELECT DISTINCT customer_id FROM {ch.schema}.customers_changes ORDER BY 1") == [(1,), (2,)]
    dbt("run", "--select", "customers_changes", vars=views)  # and the views are kept as they are
    failed = dbt("run", "--select", "customers_changes", vars={"stage": 1}, check=False)
    assert failed.returncode != 0
    assert "was built with materialization: materialized_view" in failed.stdout
    assert f"DROP VIEW {ch.schema}.customers_changes_exports" in failed.stdout


def test_dbt_run_empty_builds_every_model_without_rows(s3, clickhouse, dbt):
    """dbt's --empty renders refs and sources as subqueries, which ClickHouse cannot read with
    FINAL: every model of the package failed.  Now the limit goes around the FINAL read."""
    ch = clickhouse
    load(s3, ch, [ACME1_V1, ACME2], T1, files=1)
    dbt("run", "--empty", "--select", "customers_changes", "customers_current", "customers_current_table")
    assert ch.scalar(f"SELECT count() FROM {ch.schema}.customers_changes") == 0
    assert ch.scalar(f"SELECT count() FROM {ch.schema}.customers_current") == 0
    dbt("run", "--select", "customers_changes", "customers_current")
    assert ch.scalar(f"SELECT count() FROM {ch.schema}.customers_current") == 2


def test_dbt_run_empty_after_a_new_snapshot_deletes_nothing_and_leaves_it_to_the_next_run(s3, clickhouse, dbt):
    """Under dbt's --empty the raw sources read as empty while the exports ledger is read whole: the
    snapshot pass of a full export landed since the last run saw none of its keys, wrote a delete
    row for every item and recorded the export as applied, so the next real run never undid it."""
    ch = clickhouse
    v = {"stage": 1, "dynamodb_cdc_lookback_seconds": 0}
    model = "customers_changes"
    load(s3, ch, [ACME1_V1, ACME2], T1)
    dbt("run", "--select", model, "customers_current", vars=v)
    load(s3, ch, [ACME1_V2, ACME2], T2)  # the same keys: nothing to delete
    dbt("run", "--empty", "--select", model, vars=v)
    assert ch.scalar(f"SELECT count() FROM {ch.schema}.{model} WHERE _is_deleted") == 0
    dbt("run", "--select", model, "customers_current", vars=v)
    assert ch.rows(f"SELECT tenant, customer_id, name FROM {ch.schema}.customers_current ORDER BY 1, 2") == [
        ("acme", 1, "Ada L."), ("acme", 2, "Bob")]


def test_dbt_run_empty_leaves_the_materialized_views_of_a_changes_model_reading_every_insert(s3, clickhouse, dbt):
    """Under dbt's --empty the raw sources render as subqueries reading no rows; dbt-clickhouse's
    materialized_view puts the model's query into the views (MODIFY QUERY), so the views of a
    `materialization: materialized_view` changes model then dropped every row landed after it, and
    the next dbt run (MODIFY QUERY again, no back-fill) never brought those rows back."""
    ch = clickhouse
    props = "arn:aws:dynamodb:us-east-1:123456789012:table/props"

    def land(items, when):
        write_full_export(s3, s3.bucket, props, items, prefix="exports/props", export_time=when, files=1)
        ch.cli("load-export", f"s3://{s3.bucket}/exports/props", check=True)

    land([{"pk": S("a"), "v": N("1")}], T1)
    dbt("run", "--select", "props_live_changes")
    dbt("run", "--empty", "--select", "props_live_changes")
    land([{"pk": S("a"), "v": N("2")}, {"pk": S("b"), "v": N("3")}], T2)
    dbt("run", "--select", "props_live_changes")
    assert ch.rows(f"SELECT pk, v FROM {ch.schema}.props_live_changes FINAL ORDER BY pk") == [("a", 2), ("b", 3)]


def test_a_materialized_view_model_warns_when_a_later_full_export_lands(s3, clickhouse, dbt):
    """Materialized views infer no deletes from a full export (README): an item missing from a later
    one stays current.  That was silent at run time; each run now says so once two have landed."""
    ch = clickhouse
    props = "arn:aws:dynamodb:us-east-1:123456789012:table/props"

    def land(items, when):
        write_full_export(s3, s3.bucket, props, items, prefix="exports/props", export_time=when, files=1)
        ch.cli("load-export", f"s3://{s3.bucket}/exports/props", check=True)

    land([{"pk": S("a"), "v": N("1")}, {"pk": S("b"), "v": N("1")}], T1)
    first = dbt("run", "--select", "props_live_changes")
    assert "full exports of DynamoDB table props" not in first.stdout
    land([{"pk": S("b"), "v": N("2")}], T2)  # a deleted
    second = dbt("run", "--select", "props_live_changes")
    assert ("2 full exports of DynamoDB table props have landed, the newest as of 2026-01-02 00:00:00.000 UTC. "
            "Materialized views infer no deletes from a full export") in " ".join(second.stdout.split())
    assert ch.rows(f"SELECT pk, v FROM {ch.schema}.props_live_changes FINAL ORDER BY pk") == [("a", 1), ("b", 2)]


def test_a_target_without_the_raw_tables_is_a_clear_error_naming_it(clickhouse, dbt):
    """A profile pointed away from the loader's ClickHouse (on the embedded engine: a mistyped or
    relative path, which opens an empty engine) failed on an unknown table, or, with --empty, built
    empty models without a word."""
    for args in (("run",), ("run", "--empty")):
        result = dbt(*args, "--select", "customers_changes", vars={"stage": 1}, check=False)
        assert result.returncode == 1
        out = " ".join(result.stdout.split())
        assert (f"customers_changes`: the loader's raw tables are not on this target: {clickhouse.raw_db}.export_lines "
                "does not exist (target ") in out
        assert "Point the profile at the ClickHouse the loader writes to" in out
        assert "--no-compile" not in out
    # dbt docs generate says how to build the docs there all the same, and that way works
    docs = dbt("docs", "generate", "--select", "customers_changes", vars={"stage": 1}, check=False)
    assert docs.returncode == 2  # (dbt's exit code for an error outside a node)
    assert "To build the docs without them: dbt docs generate --no-compile" in " ".join(docs.stdout.split())
    dbt("docs", "generate", "--no-compile", vars={"stage": 1})
    parents = json.loads((dbt.target / "manifest.json").read_text())["parent_map"]
    assert "source.dynamodb_cdc.dynamodb_cdc_raw.export_lines" in parents[
        "model.dynamodb_cdc_integration_tests.customers_changes"]


def test_docs_lineage_and_source_freshness(s3, clickhouse, dbt):
    load(s3, clickhouse, [ACME2], T1, files=1)
    dbt("run", vars={"stage": 1})
    dbt("docs", "generate", vars={"stage": 1})
    manifest = json.loads((dbt.target / "manifest.json").read_text())
    parents = manifest["parent_map"]
    current = "model.dynamodb_cdc_integration_tests.customers_current"
    changes = "model.dynamodb_cdc_integration_tests.customers_changes"
    assert parents[current] == [changes]
    assert "source.dynamodb_cdc.dynamodb_cdc_raw.export_lines" in parents[changes]
    catalog = json.loads((dbt.target / "catalog.json").read_text())
    assert "balance" in catalog["nodes"][changes]["columns"]
    # The package has no models of its own to build in a user's project.
    assert not any(k.startswith("model.dynamodb_cdc.") for k in manifest["nodes"])
    fresh = dbt("source", "freshness", "--select", "source:dynamodb_cdc.dynamodb_cdc_raw.export_lines", vars={"stage": 1})
    assert "PASS" in fresh.stdout


def test_parsing_records_the_sources_the_compiled_models_read(s3, clickhouse, dbt):
    """A changes model's query is rendered only when dbt compiles or runs it (parsing renders its
    config and the sources it reads, _parse_time_body): the sources dbt records while parsing, for
    lineage and freshness, are every raw table the compiled query reads, for the incremental and
    the materialized-view models alike."""
    load(s3, clickhouse, [ACME2], T1, files=1)
    dbt("parse", vars={"stage": 1})
    parsed = json.loads((dbt.target / "manifest.json").read_text())["nodes"]
    dbt("compile", vars={"stage": 1})
    manifest = json.loads((dbt.target / "manifest.json").read_text())
    raw = {k: v["relation_name"] for k, v in manifest["sources"].items() if v["package_name"] == "dynamodb_cdc"}
    models = {k: v for k, v in manifest["nodes"].items()
              if v["resource_type"] == "model" and v["name"].endswith("_changes")}
    assert {v["config"]["materialized"] for v in models.values()} == {"incremental", "materialized_view"}
    for key, node in models.items():
        compiled = node["compiled_code"]
        assert "SELECT * EXCEPT (_key_ok, _failed_attributes)" in compiled and "parsing only" not in compiled, key
        read = {k for k, relation in raw.items() if relation in compiled}
        assert {"source.dynamodb_cdc.dynamodb_cdc_raw.export_lines",
                "source.dynamodb_cdc.dynamodb_cdc_raw.stream_records"} <= read, key
        assert read <= set(parsed[key]["depends_on"]["nodes"]), key
        if node["config"]["materialized"] == "incremental":  # its snapshot pass reads these (when it runs)
            assert {"source.dynamodb_cdc.dynamodb_cdc_raw.exports",
                    "source.dynamodb_cdc.dynamodb_cdc_raw.quarantine"} <= set(parsed[key]["depends_on"]["nodes"]), key


def test_each_conversion_is_written_once_in_the_compiled_query(s3, clickhouse, dbt):
    """A column's conversion is computed once per event branch (as _tv_N in the `typed` step) and
    read from there by the column, its conversion check and the key check: written out in each
    place, the query was twice the size and ClickHouse analysed it for twice as long, in every run
    and in every insert a materialized-view model sees."""
    import re

    load(s3, clickhouse, [ACME2], T1, files=1)
    dbt("compile", vars={"stage": 1})
    manifest = json.loads((dbt.target / "manifest.json").read_text())
    models = {k: v for k, v in manifest["nodes"].items()
              if v["resource_type"] == "model" and v["name"].endswith("_changes")}
    branches = {key: node["compiled_code"].count("\ntyped AS (") for key, node in models.items()}
    assert min(branches.values()) >= 1 and max(branches.values()) >= 2  # exports and streams, or one of them
    for key, node in models.items():
        compiled = node["compiled_code"]
        conversions = re.findall(r"^ {8}(.+) AS (_tv_\d+),?$", compiled, flags=re.M)
        assert len(conversions) == compiled.count(" AS _av_") > 0, key  # one per column and branch
        for expr, name in conversions:
            # the same conversion in each branch, and nowhere else
            assert compiled.count(expr) == branches[key], (key, name)


META_COLUMNS = ["_other_attributes", "_version", "_is_deleted", "_ttl_deleted", "_changed_at", "_event", "_source",
                "_source_ref", "_conversion_errors", "_ingested_at"]


def test_every_macro_model_and_column_is_documented(clickhouse, tmp_path):
    """dbt docs is useful: the package's macros, the example project's models and all their columns
    have descriptions; and the package brings a project that installs it no models or exposures of
    its own (none to parse, build or list), only macros and the raw sources."""
    import yaml

    examples = Dbt(clickhouse, ROOT / "examples", tmp_path, "dynamodb_cdc")
    examples("deps")
    examples("parse")
    manifest = json.loads((examples.target / "manifest.json").read_text())
    macros = {k: v for k, v in manifest["macros"].items() if v["package_name"] == "dynamodb_cdc"}
    assert len(macros) > 40
    assert [k for k, v in macros.items() if not v["description"].strip()] == []
    # from the package: only the test it applies to its quarantine source, nothing disabled
    from_package = [k for k, v in [*manifest["nodes"].items(), *manifest["exposures"].items(),
                                   *((k, n) for k, ns in manifest["disabled"].items() for n in ns)]
                    if v["package_name"] == "dynamodb_cdc"]
    assert [k.split(".")[2] for k in from_package] == ["dynamodb_cdc_source_quarantine_is_empty_dynamodb_cdc_raw_quarantine_"]
    assert {v["name"] for v in manifest["sources"].values() if v["package_name"] == "dynamodb_cdc"} >= {
        "export_lines", "stream_records", "quarantine"}
    tables = yaml.safe_load((ROOT / "examples" / "dbt_project.yml").read_text())["vars"]["dynamodb_cdc_tables"]
    models = {v["name"]: v for v in manifest["nodes"].values()
              if v["resource_type"] == "model" and v["package_name"] == "dynamodb_cdc_examples"}
    assert {"users_changes", "users_current", "orders_changes", "orders_current", "user_summary"} <= set(models)
    for name, node in models.items():
        assert node["description"].strip(), name
        documented = {c for c, v in node["columns"].items() if v["description"].strip()}
        table = name.rsplit("_", 1)[0]
        if table in tables:
            expected = {c["name"] for c in tables[table]["columns"]} | set(META_COLUMNS)
            if name.endswith("_current"):
                expected -= {"_is_deleted"}
            assert expected - documented == set(), name
    # a model of the project's own: every column of its SELECT
    summary = (ROOT / "examples" / "models" / "user_summary.sql").read_text()
    selected = set(re.findall(r"\bAS (\w+),?$", summary.split("FROM", 1)[0], re.MULTILINE))
    assert selected == {"user_id", "first_name", "age", "orders", "total_spent", "paid_orders"}
    summary_docs = {c for c, v in models["user_summary"]["columns"].items() if v["description"].strip()}
    assert selected - summary_docs == set()


class _LiveServer:
    """The integration project on a ClickHouse server (chdb_http in this process), whose engine's run can
    be wrapped to act between dbt's statements; land(key) lands a stream record of the props table."""

    def __init__(self, tmp_path, monkeypatch):
        import threading

        from conftest import ClickHouse
        from dynamodb_cdc.testing import chdb_http

        self.server = chdb_http.serve(str(tmp_path / "server"))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        monkeypatch.setenv("CLICKHOUSE_URL", f"http://127.0.0.1:{self.server.server_address[1]}")
        self.monkeypatch = monkeypatch
        self.ch = ClickHouse(tmp_path)
        self.dbt = Dbt(self.ch, ROOT / "integration_tests", tmp_path, "dynamodb_cdc_integration_tests")
        self.engine = self.server.RequestHandlerClass.engine
        self.run = self.engine.run  # the engine's own
        self.landed: list[str] = []

    def land(self, key: str) -> None:
        from dynamodb_cdc.sql import literal
        from dynamodb_cdc.testing.streams import change_record

        data = change_record("props", "INSERT", {"pk": {"S": key}}, new={"pk": {"S": key}, "v": {"N": "1"}},
                             at_ms=1_777_000_000_000 + len(self.landed)).decode()
        self.run(f"INSERT INTO `{self.ch.raw_db}`._stream_records_in (source, stream_arn, shard_id, sequence_number, "
                 f"arrival_time, partition_key, table_name, data) VALUES ('kinesis', 'arn:s', 'shard-0', "
                 f"'{len(self.landed) + 1}', now64(3), 'p', '', {literal(data)})", "TabSeparated", database=None,
                 settings={}, params={})
        self.landed.append(key)

    def wrap(self, run=None) -> None:
        """The engine runs every statement through run(sql, fmt, **kwargs) (None: its own)."""
        self.monkeypatch.setattr(self.engine, "run", run or self.run)

    def model(self) -> list:
        return self.ch.rows(f"SELECT DISTINCT pk FROM {self.ch.schema}.props_live_changes ORDER BY pk")

    def close(self) -> None:
        self.wrap()
        self.server.shutdown()
        self.server.server_close()
        self.engine.close()  # chDB in this process: the tests after it open their own


# the materialized_view post-hook's catch-up INSERT (dbt-clickhouse's back-fill writes "insert into")
CATCH_UP = re.compile(r"^\s*INSERT INTO `[^`]+`\.`props_live_changes`$", re.M)


def test_rows_landed_while_the_views_are_created_or_rebuilt_are_in_the_model(tmp_path, monkeypatch):
    """materialization: materialized_view.  dbt-clickhouse back-fills the model's table, then creates
    the views (and on --full-refresh back-fills a new table while the old views still write into the
    old one, then drops them, swaps the tables and creates the views again): a row the loader landed
    in between went to no view, or to the table thrown away.  A server (chdb_http in this process)
    lands a stream record right after each statement that creates, drops or alters a view of the model."""
    live = _LiveServer(tmp_path, monkeypatch)
    try:
        ch, dbt, landed = live.ch, live.dbt, live.landed
        ch.cli("status", check=True)  # the raw tables, empty
        statements = []

        def run_and_land(sql, fmt, **kwargs):
            result = live.run(sql, fmt, **kwargs)
            statements.append(sql)
            if re.search(r"(create materialized view|drop view|alter table)[^\n]*props_live_changes_exports", sql, re.I):
                live.land(f"k{len(landed)}")
            return result

        def caught_up() -> bool:
            return any(CATCH_UP.search(sql) for sql in statements)

        live.land("before")
        live.wrap(run_and_land)
        dbt("run", "--select", "props_live_changes")
        assert len(landed) == 2  # before; created
        assert live.model() == [(k,) for k in sorted(landed)]
        assert caught_up()
        statements.clear()
        dbt("run", "--full-refresh", "--select", "props_live_changes")
        assert len(landed) == 4  # dropped and created again
        assert live.model() == [(k,) for k in sorted(landed)]
        assert caught_up()
        # a run on the views as they are: their query is changed in place (ALTER ... MODIFY QUERY), so a
        # row landed meanwhile goes through a view, and nothing is typed again
        statements.clear()
        dbt("run", "--select", "props_live_changes")
        assert len(landed) == 5
        assert live.model() == [(k,) for k in sorted(landed)]
        assert not caught_up()
        # one view dropped by hand, and a row landed while it was gone: the run creates it again and types
        # that row too
        live.wrap()
        with ch.client() as c:
            c.command(f"DROP VIEW {ch.schema}.props_live_changes_streams")
        live.land("while_dropped")
        live.wrap(run_and_land)
        statements.clear()
        dbt("run", "--select", "props_live_changes")
        assert caught_up()
        assert live.model() == [(k,) for k in sorted(landed)]
        ch.drop()
    finally:
        live.close()


def test_a_row_landed_in_a_run_whose_catch_up_failed_is_typed_by_the_next_run(tmp_path, monkeypatch):
    """materialization: materialized_view.  A run creates the views (a row lands between the back-fill and
    the streams view), then its post-hook's catch-up fails (or dbt is stopped before it): the views are
    there, with the UUIDs the next run finds before and after, and that run must still type the row, however
    long after (here with no lookback at all)."""
    live = _LiveServer(tmp_path, monkeypatch)
    try:
        ch, dbt, landed = live.ch, live.dbt, live.landed
        ch.cli("status", check=True)

        def failing_catch_up(sql, fmt, **kwargs):
            if CATCH_UP.search(sql):
                raise RuntimeError("the catch-up failed (memory limit, a timeout, a lost connection)")
            result = live.run(sql, fmt, **kwargs)
            if re.search(r"create materialized view[^\n]*props_live_changes_exports", sql, re.I):
                live.land(f"gap{len(landed)}")  # the streams view is not there yet
            return result

        live.land("before")
        for args in ((), ("--full-refresh",)):
            live.wrap(failing_catch_up)
            failed = dbt("run", *args, "--select", "props_live_changes", check=False)
            live.wrap()
            assert failed.returncode != 0
            dbt("run", "--select", "props_live_changes", vars={"dynamodb_cdc_lookback_seconds": 0})
            assert live.model() == [(k,) for k in sorted(landed)], args
        ch.drop()
    finally:
        live.close()


def test_a_window_running_across_the_full_export_warns_of_the_items_it_cannot_delete(s3, clickhouse, dbt):
    """An incremental export is compacted: an item created and deleted inside its window has no line
    in it.  A window that starts before the latest full export and ends after it (hourly windows
    scheduled apart from a full export taken at 00:20, say) therefore has no line for an item
    created before the full export and deleted after it, which the snapshot holds: that item stays
    in the current view for good.  load-export said nothing (the window was taken as covering the
    full export); it is the overlap case, and warns as an overlap does."""
    from dynamodb_cdc.testing.exports import incremental_line, write_incremental_export

    ch = clickhouse
    v = {"stage": 1, "dynamodb_cdc_lookback_seconds": 0}
    us = lambda t: int(t.timestamp() * 1_000_000)  # noqa: E731
    ghost = customer("acme", "5", name=S("Eve"))  # created at T1 + 10 min, deleted at T1 + 40 min
    write_full_export(s3, s3.bucket, ARN, [ACME1_V1, ghost], prefix="exports/straddle",
                      export_time=T1 + timedelta(minutes=20), files=1)
    # The window [T1, T1 + 1 h): acme/1 updated at T1 + 50 min; acme/5 created and deleted inside it: no line.
    write_incremental_export(s3, s3.bucket, ARN, [incremental_line({"tenant": S("acme"), "customer_id": N("1")}, ACME1_V2,
                                                                   ACME1_V1, us(T1 + timedelta(minutes=50)))],
                             export_from=T1, export_to=T1 + timedelta(hours=1), prefix="exports/straddle")
    loaded = ch.cli("load-export", f"s3://{s3.bucket}/exports/straddle", check=True)
    dbt("run", "--select", "customers_changes", "customers_current", vars=v)
    current = f"SELECT tenant, customer_id, name FROM {ch.schema}.customers_current ORDER BY 1, 2"
    # DynamoDB holds acme/1 alone; acme/5, deleted at T1 + 40 min, cannot be told deleted from these exports.
    assert ch.rows(current) == [("acme", 1, "Ada L."), ("acme", 5, "Eve")]
    assert "stays in the current state" in loaded.stderr and "starts before the full export" in loaded.stderr
