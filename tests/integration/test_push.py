"""`dynamodb-cdc push`: ClickHouse relation -> moto's DynamoDB on loopback, compared with a Scan."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from datetime import timedelta
from decimal import Decimal

import boto3
import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer

from conftest import BIN, skew_clock

deserialize = TypeDeserializer().deserialize


# -- helpers ---------------------------------------------------------------------------


def new_table(name_prefix: str, key: dict[str, str]) -> str:
    """A fresh DynamoDB table in moto; key: {attribute: S|N|B}, partition key first."""
    name = f"{name_prefix}-{uuid.uuid4().hex[:8]}"
    boto3.client("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": a, "KeyType": kt} for a, kt in zip(key, ("HASH", "RANGE"))],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": t} for a, t in key.items()],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def scan(table: str) -> dict:
    """The table's items, deserialized, by their first key attribute's value."""
    client = boto3.client("dynamodb")
    items, kwargs = [], {"TableName": table, "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return {i["id"]["S"]: {k: deserialize(v) for k, v in i.items()} for i in items}


def set_model(ch, name: str, ddl: str, values: str | None) -> None:
    """(Re)build a ClickHouse relation, as `dbt run` rebuilds a table model."""
    with ch.client() as c:
        c.command(f"CREATE DATABASE IF NOT EXISTS `{ch.schema}`")
        c.command(f"CREATE TABLE IF NOT EXISTS `{ch.schema}`.`{name}` ({ddl}) ENGINE = MergeTree ORDER BY tuple()")
        c.command(f"TRUNCATE TABLE `{ch.schema}`.`{name}`")
        if values:
            c.command(f"INSERT INTO `{ch.schema}`.`{name}` VALUES {values}")


def in_process_push(ch, dynamodb=None, sleep=None, **options):
    from dynamodb_cdc.connection import open_client
    from dynamodb_cdc.push import PushOptions, dynamodb_client, push

    reader, state = open_client(ch.url), open_client(ch.url)
    try:
        return push(reader, state, dynamodb or dynamodb_client(), ch.raw_db, PushOptions(**options),
                    **({"sleep": sleep} if sleep else {}))
    finally:
        state.close()
        reader.close()


def runs(ch, table: str) -> list[dict]:
    with ch.client() as c:
        r = c.query(f"SELECT * FROM `{ch.raw_db}`.push_runs FINAL WHERE target_table = {{t:String}} "
                    f"ORDER BY started_at", parameters={"t": table})
        return [dict(zip(r.column_names, row)) for row in r.result_rows]


def quarantine(ch, table: str) -> list[dict]:
    with ch.client() as c:
        r = c.query(f"SELECT * FROM `{ch.raw_db}`.push_quarantine FINAL WHERE target_table = {{t:String}} "
                    f"ORDER BY quarantined_at", parameters={"t": table})
        return [dict(zip(r.column_names, row)) for row in r.result_rows]


def push_status(ch, table: str) -> list[dict]:
    """`dynamodb-cdc status --json`'s entries for the pushes to one DynamoDB table."""
    report = json.loads(ch.cli("status", "--json", check=True).stdout)
    return [p for p in report["pushes"] if p["table"] == table]


def model_rows(ch, sql: str) -> list[dict]:
    """The relation's rows as clickhouse-connect gives them (String as bytes)."""
    with ch.client() as c:
        r = c.query(sql, query_formats={"String": "bytes"})
        return [dict(zip(r.column_names, row)) for row in r.result_rows]


def as_dynamodb(value, *, binary=False, as_set=False):
    """What TypeDeserializer must give back for a ClickHouse value (an independent statement of the rules)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bytes):
        return Binary(value) if binary else value.decode()
    if isinstance(value, list):
        items = [None if v is None else as_dynamodb(v, binary=binary) for v in value]
        return set(items) if as_set else items
    if isinstance(value, tuple):
        return {str(i + 1): as_dynamodb(v, binary=binary) for i, v in enumerate(value)}
    if isinstance(value, dict):
        return {(k.decode() if isinstance(k, bytes) else str(k)): None if v is None else as_dynamodb(v, binary=binary)
                for k, v in value.items()}
    return str(value)


# -- every type, round trip ----------------------------------------------------------------

EVERYTHING = """id String, i32 Int32, u64 UInt64, i128 Int128, i256 Int256, u256 UInt256, d18 Decimal(18, 4),
 d38 Decimal(38, 10), d76 Decimal256(20), f64 Float64, s String, lc LowCardinality(String), bin String, flag Bool,
 day Date, at DateTime64(9, 'UTC'), uid UUID, arr Array(Int64), strs Array(Nullable(String)), tags Array(String),
 nums Array(UInt32), m Map(String, Decimal(20, 5)), deep Map(String, Array(Tuple(a Int32, b Nullable(String)))),
 tup Tuple(x Int32, y String), pair Tuple(String, Decimal(10, 2)), maybe Nullable(Int64), maybe_s Nullable(String),
 v UInt64"""

EVERYTHING_ROWS = """
('u-1', -2147483648, 18446744073709551615, toInt128('-85070591730234615865843651857942052864'),
 toInt256('-99999999999999999999999999999999999999'), toUInt256('10000000000000000000000000000000000000000000000000000000000000000000000'),
 '-12345678901234.5678', '9999999999999999999999999999.9999999999', '-1234567890123456.78901234567890123456', 0.1,
 'hé ☃', 'low', unhex('00ff80'), true, '2149-06-06', '2024-01-02 03:04:05.123456789', '61f0c404-5cb3-11e7-907b-a6006ad3dba0',
 [1, -9223372036854775808], ['a', NULL, ''], ['x', 'y'], [1, 4294967295], {'k': 1.5, 'z': -0.00001},
 {'orders': [(1, 'one'), (2, NULL)]}, (7, 'seven'), ('p', 2.50), 9007199254740993, 'text', 1),
('u-2', 0, 0, 0, 0, 0, 0, 0, 0, -0.0, '', '', '', false, '1970-01-01', '1970-01-01 00:00:00', '00000000-0000-0000-0000-000000000000',
 [], [], ['only'], [0], {}, {}, (0, ''), ('', 0), NULL, NULL, 2),
('u-3-decimal256-too-precise', 1, 1, 1, 1, 1, 1, 1, '12345678901234567890.12345678901234567890', 1, 's', 'l', 'b', true,
 '2020-01-01', '2020-01-01 00:00:00', '00000000-0000-0000-0000-000000000001', [], [], ['t'], [1], {}, {}, (1, 'x'), ('y', 1), 1, 'x', 3),
('u-4-int256-too-long', 1, 1, 1, toInt256('-57896044618658097711785492504343953926634992332820282019728792003956564819968'), 1, 1, 1, 1, 1,
 's', 'l', 'b', true, '2020-01-01', '2020-01-01 00:00:00', '00000000-0000-0000-0000-000000000001', [], [], ['t'], [1], {}, {},
 (1, 'x'), ('y', 1), 1, 'x', 4),
('u-5-empty-set', 1, 1, 1, 1, 1, 1, 1, 1, 1, 's', 'l', 'b', true, '2020-01-01', '2020-01-01 00:00:00',
 '00000000-0000-0000-0000-000000000001', [], [], [], [1], {}, {}, (1, 'x'), ('y', 1), 1, 'x', 5),
('', 1, 1, 1, 1, 1, 1, 1, 1, 1, 's', 'l', 'b', true, '2020-01-01', '2020-01-01 00:00:00',
 '00000000-0000-0000-0000-000000000001', [], [], ['t'], [1], {}, {}, (1, 'x'), ('y', 1), 1, 'x', 6)
"""


def test_round_trip_every_type_through_the_cli(clickhouse, moto_endpoint):
    ch = clickhouse
    set_model(ch, "everything", EVERYTHING, EVERYTHING_ROWS)
    table = new_table("everything", {"id": "S"})
    result = ch.cli("push", f"{ch.schema}.everything", "--table", table, "--sets", "tags,nums", "--binary", "bin",
                    "--version-column", "v")
    assert result.returncode == 1, result.stderr  # rows were set aside: a scheduler must notice
    assert " 3 row(s) set aside" in result.stderr, result.stderr

    refused = {q["key_json"]: q["reason"] for q in quarantine(ch, table)}
    assert set(refused) == {'{"id":{"S":"u-3-decimal256-too-precise"}}', '{"id":{"S":"u-4-int256-too-long"}}',
                            '{"id":{"S":""}}'}
    assert "column d76: number 12345678901234567890.12345678901234567890 has 39 significant digits" \
        in refused['{"id":{"S":"u-3-decimal256-too-precise"}}']
    assert "column i256: number -578960446186580977117854925...0282019728792003956564819968 has 77 significant" \
        in refused['{"id":{"S":"u-4-int256-too-long"}}']
    assert "key column id is empty" in refused['{"id":{"S":""}}']

    got = scan(table)
    assert sorted(got) == ["u-1", "u-2", "u-5-empty-set"]  # nothing of a refused row was written
    assert "tags" not in got["u-5-empty-set"] and got["u-5-empty-set"]["nums"] == {1}  # DynamoDB has no empty set
    rows = model_rows(ch, f"SELECT * EXCEPT (at), toString(at, 'UTC') AS at FROM `{ch.schema}`.everything "
                          f"WHERE id IN ('u-1', 'u-2')")
    for row in rows:
        expected = {}
        for name, value in row.items():
            if value is None:
                continue  # NULL columns are omitted by default
            if name == "at":
                expected[name] = value.decode().replace(" ", "T") + "Z"
            elif name == "day":
                expected[name] = value.isoformat()
            elif name == "tup":
                expected[name] = {"x": Decimal(value["x"]), "y": value["y"].decode()}
            elif name == "deep":
                expected[name] = {k.decode(): [{"a": Decimal(t["a"]), "b": None if t["b"] is None else t["b"].decode()}
                                               for t in v] for k, v in value.items()}
            else:
                expected[name] = as_dynamodb(value, binary=name == "bin", as_set=name in ("tags", "nums"))
        assert got[row["id"].decode()] == expected
    u1 = got["u-1"]
    assert u1["d38"] == Decimal("9999999999999999999999999999.9999999999")  # 38 digits, exact
    assert u1["u256"] == Decimal(10**70) and u1["i128"] == Decimal(-(2**126))
    assert u1["maybe"] == Decimal(9007199254740993)  # 2**53 + 1: not through a float
    assert u1["at"] == "2024-01-02T03:04:05.123456789Z"
    assert u1["bin"] == Binary(b"\x00\xff\x80")

    [run] = runs(ch, table)
    assert (run["mode"], run["status"], run["rows_read"], run["rows_written"], run["rows_set_aside"],
            run["watermark"]) == ("full", "partial", 6, 3, 3, "6")


def test_nulls_can_be_written_as_null(clickhouse, moto_endpoint):
    ch = clickhouse
    set_model(ch, "sparse", "id String, note Nullable(String), n Nullable(Decimal(38, 2))",
              "('a', NULL, NULL), ('b', 'x', 12345678901234567890123456789012345.67)")
    table = new_table("sparse", {"id": "S"})
    result = in_process_push(ch, relation=f"{ch.schema}.sparse", table=table,
                             convert=__import__("dynamodb_cdc.push_convert", fromlist=["x"]).ConvertOptions(nulls="null"))
    assert (result.status, result.rows_written) == ("succeeded", 2)
    assert scan(table) == {"a": {"id": "a", "note": None, "n": None},
                           "b": {"id": "b", "note": "x", "n": Decimal("12345678901234567890123456789012345.67")}}


# -- incremental and delete sync ---------------------------------------------------------

SUMMARY = "id String, total Decimal(18, 2), orders UInt32, v UInt64"


def expected_summary(values: list[tuple]) -> dict:
    return {i: {"id": i, "total": Decimal(t), "orders": Decimal(o), "v": Decimal(v)} for i, t, o, v in values}


def summary_values(values) -> str:
    return ", ".join(f"('{i}', {t}, {o}, {v})" for i, t, o, v in values)


def test_incremental_and_delete_sync_over_three_runs(clickhouse, moto_endpoint):
    ch = clickhouse
    table = new_table("summary", {"id": "S"})
    args = ("push", "summary", "--table", table, "--version-column", "v", "--sync-deletes")

    run1 = [("a", "10.00", 1, 1), ("b", "20.50", 2, 2), ("c", "0.01", 1, 3)]
    set_model(ch, "summary", SUMMARY, summary_values(run1))
    ch.cli(*args, check=True)
    assert scan(table) == expected_summary(run1)

    # b changes, c disappears, d appears
    run2 = [("a", "10.00", 1, 1), ("b", "99.99", 5, 4), ("d", "7.00", 1, 5)]
    set_model(ch, "summary", SUMMARY, summary_values(run2))
    ch.cli(*args, check=True)
    assert scan(table) == expected_summary(run2)

    # a changes, d disappears, c comes back, e appears
    run3 = [("a", "11.00", 2, 6), ("b", "99.99", 5, 4), ("c", "3.00", 1, 8), ("e", "1.00", 1, 7)]
    set_model(ch, "summary", SUMMARY, summary_values(run3))
    ch.cli(*args, check=True)
    assert scan(table) == expected_summary(run3)

    r = runs(ch, table)
    assert [(x["mode"], x["status"], x["watermark_from"], x["watermark"], x["rows_read"], x["rows_written"],
             x["rows_deleted"]) for x in r] == [
        ("full", "succeeded", "", "3", 3, 3, 0),
        ("incremental", "succeeded", "3", "5", 2, 2, 1),  # b and d (v >= 3); c deleted
        ("incremental", "succeeded", "5", "8", 3, 3, 1),  # a, c, e (v >= 5); d deleted
    ]
    # a full push writes everything again and deletes nothing more
    ch.cli(*args, "--full", check=True)
    last = runs(ch, table)[-1]
    assert (last["mode"], last["rows_written"], last["rows_deleted"]) == ("full", 4, 0)
    assert scan(table) == expected_summary(run3)


def test_pushes_alternating_between_hosts_whose_clocks_differ_go_on_from_the_last_run(clickhouse, moto_endpoint,
                                                                                      monkeypatch):
    """The first push runs on a host an hour ahead of the ClickHouse server, the next two on one in
    step with it: each incremental run goes on from the run before it, not from the first one."""
    ch = clickhouse
    table = new_table("skewed", {"id": "S"})
    options = {"relation": "summary", "table": table, "version_column": "v"}
    set_model(ch, "summary", SUMMARY, summary_values([("a", "1.00", 1, 1), ("b", "2.00", 1, 2)]))
    skew_clock(monkeypatch, timedelta(hours=1))
    in_process_push(ch, **options)
    skew_clock(monkeypatch, timedelta(0))
    set_model(ch, "summary", SUMMARY, summary_values([("a", "1.00", 1, 1), ("b", "3.00", 2, 3)]))
    in_process_push(ch, **options)
    in_process_push(ch, **options)
    assert [(x["mode"], x["watermark_from"], x["watermark"], x["rows_read"]) for x in runs(ch, table)] == [
        ("full", "", "2", 2), ("incremental", "2", "3", 1), ("incremental", "3", "3", 1)]


def test_sync_deletes_deletes_only_the_keys_its_own_relation_pushed(clickhouse, moto_endpoint):
    """Two relations pushed to one DynamoDB table, one after the other: --sync-deletes of one deletes
    the keys it pushed and no longer has, never the items the other relation wrote."""
    ch = clickhouse
    table = new_table("shared", {"id": "S"})
    east, west = [("e1", "1.00", 1, 1), ("e2", "2.00", 1, 2)], [("w1", "3.00", 1, 1), ("w2", "4.00", 1, 2)]
    set_model(ch, "east", SUMMARY, summary_values(east))
    set_model(ch, "west", SUMMARY, summary_values(west))
    ch.cli("push", "east", "--table", table, "--sync-deletes", check=True)
    ch.cli("push", "west", "--table", table, "--sync-deletes", check=True)
    assert scan(table) == expected_summary(east + west)

    set_model(ch, "east", SUMMARY, summary_values(east[:1]))  # e2 leaves east; west's items are not east's
    ch.cli("push", "east", "--table", table, "--sync-deletes", check=True)
    assert scan(table) == expected_summary(east[:1] + west)
    assert runs(ch, table)[-1]["rows_deleted"] == 1


def test_an_empty_relation_does_not_delete_everything_unless_allowed(clickhouse, moto_endpoint):
    """A model left empty by a failed build would have --sync-deletes delete every item it pushed."""
    ch = clickhouse
    table = new_table("emptied", {"id": "S"})
    rows = [("a", "1.00", 1, 1), ("b", "2.00", 1, 2)]
    set_model(ch, "emptied", SUMMARY, summary_values(rows))
    ch.cli("push", "emptied", "--table", table, "--sync-deletes", check=True)
    set_model(ch, "emptied", SUMMARY, None)
    refused = ch.cli("push", "emptied", "--table", table, "--sync-deletes")
    assert refused.returncode == 1
    assert "is empty: --sync-deletes would delete all 2 items it pushed to" in refused.stderr
    assert scan(table) == expected_summary(rows)
    ch.cli("push", "emptied", "--table", table, "--sync-deletes", "--allow-empty", check=True)
    assert scan(table) == {}


def test_an_incremental_push_of_another_shape_asks_for_a_full_one(clickhouse, moto_endpoint):
    """Other columns or options with an incremental push gave the new shape to changed rows only: the
    items not changed since kept the old one, in silence."""
    ch = clickhouse
    table = new_table("shape", {"id": "S"})
    rows = [("a", "1.00", 1, 1), ("b", "2.00", 1, 2)]
    set_model(ch, "shape", SUMMARY, summary_values(rows))
    args = ("push", "shape", "--table", table, "--version-column", "v")
    ch.cli(*args, check=True)
    changed = ch.cli(*args, "--exclude", "orders")
    assert changed.returncode == 2
    assert ("what is pushed changed since the last push (it was: id String, total Decimal(18, 2), orders UInt32, "
            "v UInt64; nulls omit; sets -; binary -; it is: id String, total Decimal(18, 2), v UInt64; nulls omit; "
            "sets -; binary -): run once with --full") in changed.stderr
    ch.cli(*args, "--exclude", "orders", "--full", check=True)
    assert all("orders" not in item for item in scan(table).values())
    ch.cli(*args, "--exclude", "orders", check=True)  # and incremental runs go on
    assert [r["mode"] for r in runs(ch, table)] == ["full", "full", "incremental"]



def test_a_push_to_a_table_another_push_holds_is_left_to_it(clickhouse, moto_endpoint, monkeypatch):
    """Two pushes to one DynamoDB table at once (a cron run overlapping the last one, or two relations
    declaring the same table) would interleave their writes and deletes: one push per table at a time,
    by a lease as load-export holds an export's (another push stood in for by its lease row)."""
    from conftest import hold_lease, release_leases
    from dynamodb_cdc import lease as lease_module
    from dynamodb_cdc.store import Store

    ch = clickhouse
    table = new_table("leased", {"id": "S"})
    rows = [("a", "1.00", 1, 1), ("b", "2.00", 1, 2)]
    set_model(ch, "leased", SUMMARY, summary_values(rows))
    scope = f"push:{boto3.client('dynamodb').meta.region_name}/{table}"
    hold_lease(ch, scope, command="push")
    held = ch.cli("push", "leased", "--table", table, "--sync-deletes")
    assert held.returncode == 1, held.stderr
    assert (f"DynamoDB table {table} is being pushed to by push (process 4242 on etl-2) since " in held.stderr
            and "this run leaves it to that one" in held.stderr), held.stderr
    assert "Traceback" not in held.stderr
    assert scan(table) == {} and runs(ch, table) == []  # nothing written, no run recorded
    text = ch.cli("status", check=True).stdout
    assert f"-> {table}" not in text  # no run of this table yet; the holder is shown once one ran

    release_leases(ch)  # that push ended: the next one writes, renewing its lease as it goes
    renewed = []
    renew = Store.renew_lease
    monkeypatch.setattr(Store, "renew_lease", lambda self, s, holder: (renewed.append(s), renew(self, s, holder)))
    monkeypatch.setattr(lease_module, "RENEW_SECONDS", 0)
    assert in_process_push(ch, relation="leased", table=table, sync_deletes=True).status == "succeeded"
    assert scan(table) == expected_summary(rows)
    assert renewed and set(renewed) == {scope}
    assert dict(ch.rows(f"SELECT holder, released FROM `{ch.raw_db}`.leases FINAL WHERE scope = {{s:String}}",
                        s=scope)) == {"etl-2:4242:x": 1, lease_module.HOLDER: 1}  # released as it ended
    # a push whose lease lapsed while it wrote (paused past LEASE_SECONDS) stops at its next renewal
    from dynamodb_cdc.push import PushError

    monkeypatch.setattr(lease_module, "LEASE_SECONDS", 0)
    with pytest.raises(PushError, match="this run's lease lapsed"):
        in_process_push(ch, relation="leased", table=table, full=True)
    assert runs(ch, table)[-1]["status"] == "failed"
    monkeypatch.setattr(lease_module, "LEASE_SECONDS", 600)
    # `status` shows who pushes to the table now
    hold_lease(ch, scope, command="push", pid=4343)
    [pushed] = push_status(ch, table)
    assert [(h["by"], h["pid"], h["host"]) for h in pushed["pushing_now"]] == [("push", 4343, "etl-2")]
    assert (pushed["last_run"]["status"], pushed["last_succeeded_at"] is not None) == ("failed", True)
    assert "this run's lease lapsed" in pushed["last_run"]["error"]
    text = ch.cli("status", check=True).stdout
    assert f"push {ch.schema}.leased -> {table}: last run failed (full, started " in text, text
    assert "  pushing now   by push (process 4343 on etl-2) since " in text, text


# -- throttling, parallel writers, rate ----------------------------------------------------


def test_unprocessed_items_from_a_throttling_peer_are_written_again(clickhouse, moto_endpoint):
    """moto never returns UnprocessedItems: a handler on the client's after-call event makes its answers
    say that the second half of each of the first batches was not processed (moto did write them, so
    the rewrite is what a real throttled table sees: the same PutRequest again)."""
    from dynamodb_cdc.push import dynamodb_client

    ch = clickhouse
    n = 300
    set_model(ch, "many", SUMMARY, ", ".join(f"('k{i:04d}', {i}.25, {i}, {i})" for i in range(n)))
    table = new_table("many", {"id": "S"})
    client = dynamodb_client()
    local = threading.local()
    calls = {"n": 0, "throttled": 0}
    lock = threading.Lock()

    def remember(params, **_):
        local.items = params["RequestItems"][table]

    def throttle(parsed, **_):
        with lock:
            calls["n"] += 1
            if calls["throttled"] >= 20 or len(local.items) < 2:
                return
            calls["throttled"] += 1
        parsed["UnprocessedItems"] = {table: local.items[len(local.items) // 2:]}

    client.meta.events.register("before-parameter-build.dynamodb.BatchWriteItem", remember)
    client.meta.events.register("after-call.dynamodb.BatchWriteItem", throttle)
    sleeps = []
    result = in_process_push(ch, dynamodb=client, sleep=sleeps.append, relation="many", table=table, writers=3,
                             max_write_rate=1_000_000)
    assert (result.status, result.rows_read, result.rows_written) == ("succeeded", n, n)
    # at least 12 batches (300 / 25; three writers may each end on a short one), and 20 retries
    assert calls["throttled"] == 20 and calls["n"] >= 12 + 20
    assert len([s for s in sleeps if s <= 0.05 * 2]) >= 20  # each retry waited a jittered backoff
    assert scan(table) == expected_summary(
        [(f"k{i:04d}", f"{i}.25", i, i) for i in range(n)])


# -- interrupted pushes ------------------------------------------------------------------------


def test_a_push_that_dies_after_some_batches_is_completed_by_the_rerun(clickhouse, moto_endpoint):
    from dynamodb_cdc.push import dynamodb_client

    ch = clickhouse
    table = new_table("crash", {"id": "S"})
    first = [(f"k{i:03d}", f"{i}.00", i, 1) for i in range(50)]
    set_model(ch, "crash", SUMMARY, summary_values(first))
    assert in_process_push(ch, relation="crash", table=table, version_column="v").status == "succeeded"

    # every row changes; the push dies after three batches
    second = [(f"k{i:03d}", f"{i}.50", i + 1, 2) for i in range(200)]
    set_model(ch, "crash", SUMMARY, summary_values(second))
    client = dynamodb_client()
    calls = {"n": 0}

    def crash(**_):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("injected crash after 3 batches")

    client.meta.events.register("before-call.dynamodb.BatchWriteItem", crash)
    with pytest.raises(RuntimeError, match="injected crash"):
        in_process_push(ch, dynamodb=client, relation="crash", table=table, version_column="v", writers=1)
    half = scan(table)
    assert 75 <= sum(1 for v in half.values() if v["v"] == 2) < 200  # some of the new rows landed, not all

    ch.cli("push", "crash", "--table", table, "--version-column", "v", check=True)
    assert scan(table) == expected_summary(second)
    r = runs(ch, table)
    assert [(x["mode"], x["status"], x["watermark_from"], x["watermark"]) for x in r] == [
        ("full", "succeeded", "", "1"),
        ("incremental", "failed", "1", "2"),
        ("incremental", "succeeded", "1", "2"),  # the rerun starts where the last successful run ended
    ]
    assert "injected crash" in r[1]["error"]


def test_a_killed_push_process_is_completed_by_the_rerun(clickhouse, moto_endpoint):
    ch = clickhouse
    n = 400
    values = [(f"k{i:03d}", f"{i}.75", i, i) for i in range(n)]
    set_model(ch, "killed", SUMMARY, summary_values(values))
    table = new_table("killed", {"id": "S"})
    cmd = [str(BIN / "dynamodb-cdc"), "push", "killed", "--table", table, "--version-column", "v",
           "--writers", "1", "--max-write-rate", "100", "--clickhouse-url", ch.url, "--raw-database", ch.raw_db]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(scan(table)) < 50:  # wait until it is part-way through
            assert proc.poll() is None, "the push ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert 50 <= len(scan(table)) < n
    # Rows whose items the killed run wrote leave the model before the rerun: --sync-deletes must know
    # of those items (their keys were recorded as sent before the writes; they were kept in memory
    # until 10,000 were confirmed, so a kill left items no run would ever delete).
    kept = values[25:]
    set_model(ch, "killed", SUMMARY, summary_values(kept))
    ch.cli("push", "killed", "--table", table, "--version-column", "v", "--sync-deletes", check=True)
    assert scan(table) == expected_summary(kept)
    statuses = [x["status"] for x in runs(ch, table)]
    assert statuses == ["running", "succeeded"]  # the killed run never finished; the rerun read everything
    assert runs(ch, table)[1]["mode"] == "full"


# -- set aside, then retried ------------------------------------------------------------------


def test_date_time_keys_and_version_columns_whatever_the_time_zone(clickhouse, moto_endpoint):
    """A DateTime column was read as its ISO text under its own name, which the key hash and the
    watermark's WHERE then read: a DateTime key with --sync-deletes deleted every item it had just
    written, and a DateTime version column (an updated_at, the changes models' _ingested_at) failed
    every run.  The watermark of a date-time is UTC text, so a run in another time zone skips nothing."""
    ch = clickhouse
    ddl = "user_id String, at DateTime64(3, 'UTC'), n Int32, updated_at DateTime"
    rows = [("u1", "2024-01-01 10:00:00", 1, "2024-01-01 10:00:00"), ("u2", "2024-01-01 11:00:00", 2, "2024-01-01 11:00:00")]

    def values(rs):
        return ", ".join(f"('{u}', '{a}', {n}, toDateTime('{v}', 'UTC'))" for u, a, n, v in rs)

    set_model(ch, "events", ddl, values(rows))
    table = new_table("events", {"user_id": "S", "at": "S"})
    args = [str(BIN / "dynamodb-cdc"), "push", "events", "--table", table, "--version-column", "updated_at",
            "--sync-deletes", "--clickhouse-url", ch.url, "--raw-database", ch.raw_db]

    def push(tz):
        p = subprocess.run(args, capture_output=True, text=True, timeout=300, env={**os.environ, "TZ": tz})
        assert p.returncode == 0, p.stderr

    def items():
        got = boto3.client("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"]
        return sorted((i["user_id"]["S"], i["at"]["S"], i["n"]["N"], i["updated_at"]["S"]) for i in got)

    push("Asia/Tokyo")
    assert items() == [("u1", "2024-01-01T10:00:00.000Z", "1", "2024-01-01T10:00:00Z"),
                       ("u2", "2024-01-01T11:00:00.000Z", "2", "2024-01-01T11:00:00Z")]
    rows = [("u2", "2024-01-01 11:00:00", 3, "2024-01-01 11:30:00"), ("u3", "2024-01-01 12:00:00", 4, "2024-01-01 11:15:00")]
    set_model(ch, "events", ddl, values(rows))
    push("UTC")  # u1 gone: deleted; u2 and u3 past the watermark (11:00 UTC, written in Tokyo)
    assert items() == [("u2", "2024-01-01T11:00:00.000Z", "3", "2024-01-01T11:30:00Z"),
                       ("u3", "2024-01-01T12:00:00.000Z", "4", "2024-01-01T11:15:00Z")]
    assert [(r["mode"], r["watermark"], r["rows_written"], r["rows_deleted"]) for r in runs(ch, table)] == [
        ("full", "2024-01-01 11:00:00", 2, 0), ("incremental", "2024-01-01 11:30:00", 2, 1)]


def test_retry_failed_resends_rows_once_the_model_is_fixed(clickhouse, moto_endpoint):
    ch = clickhouse
    ddl = "id String, score Float64, v UInt64"
    set_model(ch, "scores", ddl, "('a', 1.5, 1), ('b', 1e200, 1), ('c', nan, 1), ('d', 2, 1)")
    table = new_table("scores", {"id": "S"})
    result = ch.cli("push", "scores", "--table", table, "--version-column", "v")
    assert result.returncode == 1
    assert " 2 row(s) set aside" in result.stderr, result.stderr
    assert sorted(scan(table)) == ["a", "d"]
    open_entries = {q["key_json"]: q for q in quarantine(ch, table)}
    assert "out of DynamoDB's range" in open_entries['{"id":{"S":"b"}}']["reason"]
    assert "nan is not a number DynamoDB can store" in open_entries['{"id":{"S":"c"}}']["reason"]
    assert json.loads(open_entries['{"id":{"S":"b"}}']["row_json"]) == {"id": "b", "score": 1e200, "v": 1}
    [pushed] = push_status(ch, table)
    assert (pushed["relation"], pushed["last_run"]["status"], pushed["last_run"]["mode"],
            pushed["last_run"]["rows_written"], pushed["last_run"]["rows_set_aside"], pushed["set_aside_open"]) == (
        f"{ch.schema}.scores", "partial", "full", 2, 2, 2)
    assert pushed["last_succeeded_at"] is not None and pushed["pushing_now"] == []

    # the model is fixed for b; c leaves the model
    set_model(ch, "scores", ddl, "('a', 1.5, 1), ('b', 1e100, 1), ('d', 2, 1)")
    ch.cli("push", "scores", "--table", table, "--version-column", "v", "--retry-failed", check=True)
    assert scan(table)["b"]["score"] == Decimal("1E+100")
    assert {q["key_json"]: q["status"] for q in quarantine(ch, table)} == {
        '{"id":{"S":"b"}}': "resolved", '{"id":{"S":"c"}}': "gone"}
    [pushed] = push_status(ch, table)
    assert (pushed["last_run"]["mode"], pushed["last_run"]["status"], pushed["set_aside_open"]) == (
        "retry_failed", "succeeded", 0)
    last = runs(ch, table)[-1]
    assert (last["mode"], last["rows_read"], last["rows_written"], last["watermark"]) == ("retry_failed", 1, 1, "")
    # the next push continues from the last run that read by version (the first one), as incremental
    set_model(ch, "scores", ddl, "('a', 1.5, 1), ('b', 1e100, 1), ('d', 3, 2)")
    ch.cli("push", "scores", "--table", table, "--version-column", "v", check=True)
    last = runs(ch, table)[-1]
    assert (last["mode"], last["watermark_from"], last["rows_read"], last["watermark"]) == ("incremental", "1", 3, "2")
    assert scan(table)["d"]["score"] == 3


# -- ImportTable ----------------------------------------------------------------------------


def test_bulk_first_load_via_import_then_incremental_pushes(clickhouse, moto_endpoint, s3):
    """moto implements ImportTable (it reads the S3 objects and creates the table), so this runs against it."""
    ch = clickhouse
    values = [(f"k{i:02d}", f"{i}.10", i, i) for i in range(1, 31)]
    set_model(ch, "imported", SUMMARY + ", blob String", ", ".join(
        f"('{i}', {t}, {o}, {v}, unhex('00ff{o:02x}'))" for i, t, o, v in values))
    table = f"imported-{uuid.uuid4().hex[:8]}"
    result = ch.cli("push", "imported", "--table", table, "--key", "id", "--binary", "blob", "--version-column", "v",
                    "--via-import", f"s3://{s3.bucket}/imports/users", "--poll-seconds", "0.2", check=True)
    assert "ImportTable" in result.stderr

    [run] = runs(ch, table)
    assert (run["mode"], run["status"], run["rows_written"], run["watermark"]) == ("import", "succeeded", 30, "30")
    assert run["import_arn"].startswith("arn:aws:dynamodb:")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=s3.bucket, Prefix="imports/users/")["Contents"]]
    assert keys == [f"imports/users/{run['run_id']}/data-00001.json.gz"]
    lines = gzip.decompress(s3.get_object(Bucket=s3.bucket, Key=keys[0])["Body"].read()).decode().splitlines()
    assert json.loads(lines[0]) == {"Item": {"id": {"S": "k01"}, "total": {"N": "1.1"}, "orders": {"N": "1"},
                                             "v": {"N": "1"}, "blob": {"B": "AP8B"}}}
    description = boto3.client("dynamodb").describe_table(TableName=table)["Table"]
    assert description["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    got = scan(table)
    assert got == {i: {"id": i, "total": Decimal(t), "orders": Decimal(o), "v": Decimal(v),
                       "blob": Binary(bytes([0, 255, o]))} for i, t, o, v in values}

    # later pushes write changes only, from the import's watermark
    changed = values[:-1] + [("k30", "300.00", 30, 31), ("k31", "1.00", 31, 32)]
    set_model(ch, "imported", SUMMARY + ", blob String", ", ".join(
        f"('{i}', {t}, {o}, {v}, unhex('00ff{o:02x}'))" for i, t, o, v in changed))
    ch.cli("push", "imported", "--table", table, "--binary", "blob", "--version-column", "v", check=True)
    last = runs(ch, table)[-1]
    assert (last["mode"], last["watermark_from"], last["rows_read"], last["rows_written"]) == ("incremental", "30", 2, 2)
    assert scan(table)["k30"]["total"] == Decimal("300") and scan(table)["k31"]["v"] == 32


def test_an_import_still_running_is_settled_by_the_next_push(clickhouse, moto_endpoint, s3):
    """ImportTable's IN_PROGRESS -> COMPLETED sequence is chosen with botocore's Stubber (moto completes an
    import at once); the S3 objects are written to moto."""
    from botocore.stub import ANY, Stubber

    from dynamodb_cdc.push import ImportPending

    ch = clickhouse
    set_model(ch, "pending", SUMMARY, summary_values([("a", "1.00", 1, 1), ("b", "2.00", 2, 2)]))
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/pending/import/01"
    key_schema = [{"AttributeName": "id", "KeyType": "HASH"}]
    attributes = [{"AttributeName": "id", "AttributeType": "S"}]
    dynamodb = boto3.client("dynamodb")
    with Stubber(dynamodb) as stub:
        stub.add_client_error("describe_table", "ResourceNotFoundException", expected_params={"TableName": "pending"})
        stub.add_response("import_table", {"ImportTableDescription": {"ImportArn": arn, "ImportStatus": "IN_PROGRESS"}}, {
            "ClientToken": ANY, "S3BucketSource": {"S3Bucket": s3.bucket, "S3KeyPrefix": ANY},
            "InputFormat": "DYNAMODB_JSON", "InputCompressionType": "GZIP",
            "TableCreationParameters": {"TableName": "pending", "AttributeDefinitions": attributes,
                                        "KeySchema": key_schema, "BillingMode": "PAY_PER_REQUEST"}})
        stub.add_response("describe_import", {"ImportTableDescription": {"ImportArn": arn, "ImportStatus": "IN_PROGRESS"}},
                          {"ImportArn": arn})
        with pytest.raises(ImportPending, match="still IN_PROGRESS"):
            in_process_push(ch, dynamodb=dynamodb, relation="pending", table="pending", key=["id"],
                            version_column="v", via_import=f"s3://{s3.bucket}/imports", import_timeout=0)
        stub.assert_no_pending_responses()
    [run] = runs(ch, "pending")
    assert (run["status"], run["import_arn"], run["watermark"], run["rows_written"]) == ("importing", arn, "2", 2)
    [key] = [o["Key"] for o in s3.list_objects_v2(Bucket=s3.bucket, Prefix="imports/")["Contents"]]
    lines = gzip.decompress(s3.get_object(Bucket=s3.bucket, Key=key)["Body"].read()).decode().splitlines()
    assert sorted(json.loads(x)["Item"]["id"]["S"] for x in lines) == ["a", "b"]

    # the next push: DescribeImport says COMPLETED, so the import's watermark counts
    dynamodb = boto3.client("dynamodb")
    with Stubber(dynamodb) as stub:
        stub.add_response("describe_table", {"Table": {"TableName": "pending", "KeySchema": key_schema,
                                                       "AttributeDefinitions": attributes}}, {"TableName": "pending"})
        stub.add_response("describe_import", {"ImportTableDescription": {
            "ImportArn": arn, "ImportStatus": "COMPLETED", "ErrorCount": 0, "ImportedItemCount": 2}}, {"ImportArn": arn})
        stub.add_response("batch_write_item", {}, {"RequestItems": {"pending": [{"PutRequest": {"Item": {
            "id": {"S": "b"}, "total": {"N": "2"}, "orders": {"N": "2"}, "v": {"N": "2"}}}}]}})
        result = in_process_push(ch, dynamodb=dynamodb, relation="pending", table="pending", version_column="v")
        stub.assert_no_pending_responses()
    assert (result.mode, result.rows_read, result.rows_written) == ("incremental", 1, 1)
    assert [(x["mode"], x["status"], x["watermark_from"], x["watermark"]) for x in runs(ch, "pending")] == [
        ("import", "succeeded", "", "2"), ("incremental", "succeeded", "2", "2")]


# -- bad arguments -------------------------------------------------------------------------


def test_bad_arguments_stop_before_anything_is_written(clickhouse, moto_endpoint):
    ch = clickhouse
    set_model(ch, "args", "id UInt64, j Array(String), v UInt64", "(1, ['a'], 1)")
    table = new_table("args", {"id": "S"})
    cases = [
        (("--key", "j"), "differs from table"),
        ((), "key column id becomes N but table"),
        (("--sets", "v"), "only an Array column"),
        (("--version-column", "nope"), "has no column(s) nope"),
    ]
    for extra, message in cases:
        result = ch.cli("push", "args", "--table", table, *extra)
        assert result.returncode == 2 and message in result.stderr, (extra, result.stderr)
    result = ch.cli("push", "args", "--table", "no-such-table")
    assert result.returncode == 1 and "does not exist: create it, or use --via-import" in result.stderr
    result = ch.cli("push", "no_such_model", "--table", table)
    assert result.returncode == 1 and "no relation named no_such_model" in result.stderr
    assert scan(table) == {}


# -- the YAML declaration: the example exposure ------------------------------------------------


def test_push_declared_on_the_example_exposure(clickhouse, moto_endpoint, tmp_path):
    """`dbt parse` of the example project (examples/, which installs this package) gives the
    manifest; the exposure user_summary_dynamodb declares the relation, the DynamoDB table and the key."""
    from conftest import ROOT, Dbt

    ch = clickhouse
    dbt = Dbt(ch, ROOT / "examples", tmp_path / "dbt", "dynamodb_cdc")
    dbt("parse")
    manifest = dbt.target / "manifest.json"
    exposure = json.loads(manifest.read_text())["exposures"]["exposure.dynamodb_cdc_examples.user_summary_dynamodb"]
    assert exposure["depends_on"]["nodes"] == ["model.dynamodb_cdc_examples.user_summary"]

    # the model's relation, as dbt would build it (its columns and types)
    set_model(ch, "user_summary", "user_id String, first_name Nullable(String), age Nullable(Int32), orders UInt64, "
              "total_spent Decimal(38, 2), paid_orders UInt64",
              "('u-001', 'Ada', 37, 2, 144.90, 1), ('u-005', 'Barbara', NULL, 0, 0, 0)")
    boto3.client("dynamodb").create_table(
        TableName="user_summary", KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    try:
        ch.cli("push", "--exposure", "user_summary_dynamodb", "--manifest", str(manifest), check=True)
        items = boto3.client("dynamodb").scan(TableName="user_summary")["Items"]
        got = {i["user_id"]["S"]: {k: deserialize(v) for k, v in i.items()} for i in items}
        assert got == {
            "u-001": {"user_id": "u-001", "first_name": "Ada", "age": 37, "orders": 2,
                      "total_spent": Decimal("144.90"), "paid_orders": 1},
            "u-005": {"user_id": "u-005", "first_name": "Barbara", "orders": 0, "total_spent": 0, "paid_orders": 0},
        }
        [run] = runs(ch, "user_summary")
        assert (run["relation"], run["status"]) == (f"{ch.schema}.user_summary", "succeeded")
    finally:
        boto3.client("dynamodb").delete_table(TableName="user_summary")


def test_a_rate_limited_delete_sync_keeps_its_lease(clickhouse, moto_endpoint, monkeypatch):
    """--sync-deletes submits a whole block of keys read from push_keys before it renews: under
    --max-write-rate a block can take longer than LEASE_SECONDS (65k keys at 100 items/s: 650 s), and the
    run then found its own lease lapsed and failed after deleting it.  Renewed as the keys are sent
    (here LEASE_SECONDS 3 s, about 6 s of deletes at 200 items/s, one writer: some 125 keys queued)."""
    from dynamodb_cdc import lease as lease_module

    ch = clickhouse
    table = new_table("slowdel", {"id": "S"})
    rows = [(f"k{i:04d}", "1.00", 1, 1) for i in range(1200)]
    set_model(ch, "slowdel", SUMMARY, summary_values(rows))
    assert in_process_push(ch, relation="slowdel", table=table).status == "succeeded"
    assert len(scan(table)) == 1200
    set_model(ch, "slowdel", SUMMARY, summary_values(rows[:1]))
    monkeypatch.setattr(lease_module, "LEASE_SECONDS", 3)
    monkeypatch.setattr(lease_module, "RENEW_SECONDS", 1)
    result = in_process_push(ch, relation="slowdel", table=table, sync_deletes=True, max_write_rate=200,
                             writers=1)
    assert (result.status, result.rows_deleted) == ("succeeded", 1199)
    assert list(scan(table)) == ["k0000"]


def test_a_row_set_aside_by_the_full_push_after_a_key_type_change_keeps_its_item(clickhouse, moto_endpoint):
    """The README's way after a key type change is one run with --full --sync-deletes.  The key hash
    (sipHash128) changes with the type (Int32 -> Int64), so a row that run sets aside kept its old hash
    in push_keys, matched no row of the relation, and its item was deleted: a row set aside must never
    delete its item."""
    ch = clickhouse
    table = new_table("retyped", {"id": "N"})
    set_model(ch, "retyped", "id Int32, score Float64", "(1, 1.5), (2, 2.5)")
    ch.cli("push", "retyped", "--table", table, "--sync-deletes", check=True)
    with ch.client() as c:
        c.command(f"DROP TABLE `{ch.schema}`.`retyped`")
    set_model(ch, "retyped", "id Int64, score Float64", "(1, 1.75), (2, nan)")  # row 2 cannot be pushed now
    result = ch.cli("push", "retyped", "--table", table, "--full", "--sync-deletes")
    assert result.returncode == 1, result.stderr  # a row set aside
    items = boto3.client("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"]
    assert sorted((i["id"]["N"], i["score"]["N"]) for i in items) == [("1", "1.75"), ("2", "2.5")]
    assert [(q["key_json"], q["status"]) for q in quarantine(ch, table)] == [('{"id":{"N":"2"}}', "open")]
    assert runs(ch, table)[-1]["rows_deleted"] == 0


# A Decimal wider than its declared precision (ClickHouse does not check P on INSERT ... SELECT or on
# arithmetic) was read by clickhouse-connect rounded to P digits and pushed as another number.
def test_a_decimal_wider_than_its_type_is_written_exactly_or_set_aside(clickhouse, moto_endpoint):
    ch = clickhouse
    set_model(ch, "wide", "id String, d Decimal(20, 5), s Decimal(38, 10)", None)
    with ch.client() as c:
        c.command(f"INSERT INTO `{ch.schema}`.wide SELECT 'a', toDecimal128('123456789012345678901234.12345', 5), 1")
        c.command(f"INSERT INTO `{ch.schema}`.wide SELECT 'b', 1, x + x "
                  f"FROM (SELECT toDecimal128('7500000000000000000000000000.0000000001', 10) AS x)")
        held = dict(c.query(f"SELECT id, (toString(d), toString(s)) FROM `{ch.schema}`.wide").result_rows)
    assert held == {"a": ("123456789012345678901234.12345", "1"),  # 29 digits: DynamoDB holds them
                    "b": ("1", "15000000000000000000000000000.0000000002")}  # 39 digits: DynamoDB cannot
    table = new_table("wide", {"id": "S"})
    in_process_push(ch, relation=f"{ch.schema}.wide", table=table)
    got = scan(table)
    assert got.get("a", {}).get("d") == Decimal("123456789012345678901234.12345")  # HEAD: 123456789012345678900000
    assert "b" not in got  # HEAD: written as 15000000000000000000000000000
    [entry] = quarantine(ch, table)
    assert "column s" in entry["reason"] and "39 significant digits" in entry["reason"], entry["reason"]


# A ClickHouse Map may hold one key twice (map(), mapFromArrays, CAST from arrays do not dedupe);
# clickhouse-connect read it into a dict, so push wrote the last value (m['k'] in ClickHouse is the
# first) and dropped the others, in silence.
def test_a_map_holding_a_key_twice_is_set_aside_not_collapsed(clickhouse, moto_endpoint):
    ch = clickhouse
    set_model(ch, "maps", "id String, m Map(String, UInt8), am Array(Map(Float64, UInt8))", None)
    with ch.client() as c:
        c.command(f"INSERT INTO `{ch.schema}`.maps SELECT 'a', mapFromArrays(['x', 'x'], [1, 2]), [map(1., 1)]")
        c.command(f"INSERT INTO `{ch.schema}`.maps SELECT 'b', map('x', 1), [map(0., 1, -0., 2)]")
        c.command(f"INSERT INTO `{ch.schema}`.maps SELECT 'c', map('x', 1), [map(1., 1)]")
        assert c.query(f"SELECT m['x'], length(m) FROM `{ch.schema}`.maps WHERE id = 'a'").result_rows == [(1, 2)]
    table = new_table("maps", {"id": "S"})
    in_process_push(ch, relation=f"{ch.schema}.maps", table=table)
    got = scan(table)
    assert got == {"c": {"id": "c", "m": {"x": Decimal(1)}, "am": [{"1": Decimal(1)}]}}  # HEAD: a as {'x': 2}, b as [{'0': 2}]
    reasons = {q["key_json"]: q["reason"] for q in quarantine(ch, table)}
    assert "column m" in reasons['{"id":{"S":"a"}}'] and "column am" in reasons['{"id":{"S":"b"}}'], reasons


# README: IPv6 is written "as ClickHouse writes them"; an IPv4-compatible address (::1.2.3.4) went
# out as Python writes it (::102:304).
def test_ipv6_is_written_as_clickhouse_writes_it(clickhouse, moto_endpoint):
    ch = clickhouse
    set_model(ch, "addrs", "id String, ip IPv6",
              "('compat', '::1.2.3.4'), ('mapped', '::ffff:1.2.3.4'), ('plain', '2001:db8::1'), ('one', '::1'), "
              "('small', '::0.0.1.2'), ('zero', '::')")
    table = new_table("addrs", {"id": "S"})
    in_process_push(ch, relation=f"{ch.schema}.addrs", table=table)
    shown = dict(ch.rows(f"SELECT id, toString(ip) FROM `{ch.schema}`.addrs"))
    assert shown["compat"] == "::1.2.3.4"
    assert {i: item["ip"] for i, item in scan(table).items()} == shown  # HEAD: compat as ::102:304


def test_a_float_key_that_is_minus_zero_in_one_run_and_zero_in_the_next_keeps_its_item(clickhouse, moto_endpoint):
    """DynamoDB writes -0.0 and 0.0 as the number 0: one item, whose two key hashes (of the float's bytes)
    differ.  push_keys holds one row per DynamoDB key (its key_json), so the second run's row replaces the
    first's and --sync-deletes finds nothing gone (a review suspected it deleted the item just written)."""
    ch = clickhouse
    table = new_table("fkey", {"id": "S", "k": "N"})
    set_model(ch, "fkey", "id String, k Float64, v String", "('a', -0., 'first'), ('a', 1.5, 'other')")
    ch.cli("push", "fkey", "--table", table, "--sync-deletes", check=True)
    set_model(ch, "fkey", "id String, k Float64, v String", "('a', 0., 'second'), ('a', 1.5, 'other')")
    ch.cli("push", "fkey", "--table", table, "--sync-deletes", "--full", check=True)
    items = boto3.client("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"]
    assert sorted((i["k"]["N"], i["v"]["S"]) for i in items) == [("0", "second"), ("1.5", "other")]
    assert runs(ch, table)[-1]["rows_deleted"] == 0
