"""What the loader writes reads back exactly: ledger rows written as INSERT ... VALUES, and
stream records (RowBinary from a local file on chDB, clickhouse-connect's insert on a server)."""

from __future__ import annotations

import contextlib
from datetime import datetime, timezone

import pytest

from dynamodb_cdc.manifest import DataFile, ExportSummary
from dynamodb_cdc.store import LOADING, Store
from dynamodb_cdc.streams import Checkpoint, Record

HOSTILE = [
    "plain",
    "it's",
    "back\\slash\\",
    "new\nline\r\ttab",
    "nul\x00byte",
    "{arn:String} %s %(x)s {{}}",
    "'); DROP TABLE export_files; --",
    "ü \u2028 \U0001f600",
    "",
]


@pytest.fixture
def store(clickhouse):
    with clickhouse.client() as c:
        s = Store(c, clickhouse.raw_db)
        s.ensure_schema()
        yield s


def test_ledger_rows_with_hostile_text_read_back_exactly(store):
    summary = ExportSummary(
        export_arn="arn:aws:dynamodb:us-east-1:1:table/t/export/x'y", table_arn="arn:aws:dynamodb:us-east-1:1:table/t",
        table_name="t", export_type="FULL_EXPORT", export_time=datetime(2026, 1, 5, 12, 0, 0, 123000, timezone.utc),
        export_from_time=None, export_to_time=None, output_format="DYNAMODB_JSON", output_view=None,
        s3_bucket="b", s3_prefix=None, manifest_files_key="k", item_count=3, summary_key="s",
    )
    for i, text in enumerate(HOSTILE):
        data_file = DataFile(key=f"data/{i}-{text}.json.gz", item_count=2**40 + i, md5="m", etag=None, manifest_line=i)
        store.record_file(summary, data_file, status=LOADING, lines_committed=2**63 - 1 - i, lines_landed=i,
                          error=text)
    store.record_export(summary, s3_uri="s3://b/it's", data_files=len(HOSTILE), status="loaded", error=HOSTILE[5])
    assert [w.export_time for w in store.loaded_windows("t")] == [summary.export_time]  # milliseconds kept
    # updated_at keeps its microseconds: ledger rows written within one second still order
    stamps = [r[0] for r in store.client.query(
        f"SELECT updated_at FROM {store.q}.export_files ORDER BY updated_at").result_rows]
    assert len(set(stamps)) == len(HOSTILE)
    states = store.file_states(summary.export_arn)
    assert {key: (s.lines_committed, s.lines_landed, s.error) for key, s in states.items()} == {
        f"data/{i}-{text}.json.gz": (2**63 - 1 - i, i, text) for i, text in enumerate(HOSTILE)
    }


def test_checkpoints_read_back_exactly_and_the_latest_row_wins(store):
    arn = "arn:aws:kinesis:us-east-1:1:stream/s"
    first = [Checkpoint(f"shard-{i}-{text}", str(10**30 + i), False, text, "", i, None) for i, text in enumerate(HOSTILE)]
    store.record_checkpoints("kinesis", arn, first)
    caught_up = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    later = [Checkpoint(c.shard_id, str(10**40), True, c.parent_shard_id, "adj", 7, 1234, caught_up)
             for c in first[:3]]
    store.record_checkpoints("kinesis", arn, later)
    got = store.stream_checkpoints("kinesis", arn)
    assert got == {c.shard_id: Checkpoint(c.shard_id, c.sequence_number, c.finished, c.parent_shard_id,
                                          c.adjacent_parent_shard_id, c.records, caught_up_at=c.caught_up_at)
                   for c in later + first[3:]}


def test_stream_records_land_byte_for_byte_with_their_times(store, clickhouse):
    arn = "arn:aws:kinesis:us-east-1:1:stream/s"
    good = b'{"eventName":"INSERT","tableName":"t","dynamodb":{"Keys":{"pk":{"S":"%d"}}}}'
    datas = [
        good % 1,
        b'{"eventName":"MODIFY","tableName":"t","dynamodb":{"Keys":{"pk":{"S":"\xc3\xa9 \\u00e9 \\" 2"}}}}',
        b'{"eventName":"INSERT","tableName":"t","dynamodb":{"Keys":{"pk":{"S":"' + b"x" * 400_000 + b'"}}}}',
        b"\xff\xfe not json, not UTF-8",
        b"",
        b"line\nbreak\ttab\x00nul",
    ]
    records = [
        Record(("shard-" + "9" * 200) if i % 2 else f"shard-{i}", str(10**45 + i),
               datetime(2026, 1, 5, 12, 0, i, 7000 * i, timezone.utc), f"pk-{i}'", "", data)
        for i, data in enumerate(datas)
    ]
    store.insert_stream_records("kinesis", arn, records)
    rows = clickhouse.rows(
        f"SELECT sequence_number, shard_id, hex(data), toUnixTimestamp64Milli(arrival_time), partition_key "
        f"FROM {clickhouse.raw_db}.stream_records WHERE stream_arn = {{a:String}} "
        f"UNION ALL SELECT sequence_number, location, hex(payload), 0, '' "
        f"FROM {clickhouse.raw_db}.quarantine WHERE origin = {{a:String}}",
        a=arn,
    )
    landed = {r[0]: r[1:] for r in rows}
    assert len(rows) == len(records)
    for r in records:
        shard, data_hex, millis, partition_key = landed[r.sequence_number]
        assert (shard, bytes.fromhex(data_hex)) == (r.shard_id, r.data)
        if millis:  # landed in stream_records (the quarantine keeps no arrival time)
            assert millis == int(r.arrival_time.timestamp() * 1000)
            assert partition_key == r.partition_key
    quarantined = {r[0] for r in rows if r[3] == 0}
    assert quarantined == {records[i].sequence_number for i in (3, 4, 5)}


# -- the raw schema: read first, made only where missing ----------------------------------------------
@contextlib.contextmanager
def _read_only(clickhouse):
    """A client whose every query runs with readonly = 2: reads and settings, no DDL, no INSERT (the
    rights of a monitoring user)."""
    from dynamodb_cdc.connection import open_client

    c = open_client(clickhouse.url, settings={"readonly": 2})
    try:
        yield c
    finally:
        c.close()


def test_once_the_raw_tables_exist_commands_need_no_create_or_alter_rights(clickhouse):
    from dynamodb_cdc import schema, status

    with clickhouse.client() as c:
        schema.ensure(c, clickhouse.raw_db)
        # a table made by an older version gets its later column, as before
        c.command(f"ALTER TABLE `{clickhouse.raw_db}`.stream_checkpoints DROP COLUMN caught_up_at")
        schema.ensure(c, clickhouse.raw_db)
        assert c.command(f"SELECT count() FROM system.columns WHERE database = '{clickhouse.raw_db}' "
                         "AND table = 'stream_checkpoints' AND name = 'caught_up_at'") == 1
    with _read_only(clickhouse) as c:
        with pytest.raises(Exception, match="READONLY"):  # the session really refuses DDL
            c.command(f"CREATE TABLE IF NOT EXISTS `{clickhouse.raw_db}`.exports (x UInt8) ENGINE = Memory")
        schema.ensure(c, clickhouse.raw_db)  # nothing missing: no DDL sent
        assert status.collect(c, clickhouse.raw_db)["tables"] == []


@pytest.mark.parametrize("removed, told", [
    (None, r"the raw database {db} does not exist, and this ClickHouse user cannot create it: .*READONLY.* Run any "
           r"dynamodb-cdc command once as a user allowed to create and alter tables in {db}; later runs need no such"),
    ("ALTER TABLE `{db}`.export_lines DROP INDEX data_file_key_set",
     r"{db}.export_lines has no skip index data_file_key_set \(made by an older dynamodb-cdc\), and this ClickHouse"),
    ("DROP TABLE `{db}`.leases", r"the raw table {db}.leases does not exist, and this ClickHouse user cannot create it"),
])
def test_a_user_who_cannot_create_what_is_missing_is_told_what_and_how(clickhouse, removed, told):
    from dynamodb_cdc import schema

    db = clickhouse.raw_db
    if removed:  # (none: the whole database is missing)
        with clickhouse.client() as c:
            schema.ensure(c, db)
            c.command(removed.format(db=db))
    with _read_only(clickhouse) as c:
        with pytest.raises(RuntimeError, match=told.format(db=db)):
            schema.ensure(c, db)


def test_a_user_who_cannot_alter_the_routing_views_of_an_older_version_is_told_so(clickhouse):
    """Not told to DROP VIEW (a monitoring user cannot; nothing is wrong with the view)."""
    from dynamodb_cdc import schema

    with clickhouse.client() as c:
        schema.ensure(c, clickhouse.raw_db)
        for view in schema.ROUTING_VIEWS:  # as an older dynamodb-cdc left them
            c.command(f"ALTER TABLE `{clickhouse.raw_db}`.{view} MODIFY COMMENT ''")
    with _read_only(clickhouse) as c:
        with pytest.raises(RuntimeError, match=rf"routing view {clickhouse.raw_db}._stream_records_accept was made by "
                                               r"an older dynamodb-cdc, and this ClickHouse user cannot alter it: "
                                               r".*READONLY.* Run any dynamodb-cdc command once as a user allowed") as e:
            schema.ensure(c, clickhouse.raw_db)
        assert "DROP VIEW" not in str(e.value)


def test_a_push_user_who_cannot_create_the_push_tables_is_told_that_push_makes_them(clickhouse):
    """Only dynamodb-cdc push makes push_runs and the rest: "run any dynamodb-cdc command once" left them missing."""
    from dynamodb_cdc import schema
    from dynamodb_cdc.push import PushState

    with clickhouse.client() as c:
        schema.ensure(c, clickhouse.raw_db)  # what every other command makes
    with _read_only(clickhouse) as c:
        with pytest.raises(RuntimeError, match=rf"raw table {clickhouse.raw_db}.push_runs does not exist, and this "
                                               r"ClickHouse user cannot create it: .*READONLY.* Run dynamodb-cdc push "
                                               r"once as a user allowed to create and alter tables"):
            PushState(c, clickhouse.raw_db).ensure()
