"""The raw landing tables, created idempotently in the raw database.

All payloads stay unparsed strings; the dbt package parses them.  Names and
columns are documented in README.md ("Raw tables") and models/sources.yml.
"""

from __future__ import annotations

import logging
import re

from .sql import ident, literal

log = logging.getLogger(__name__)

# Why a data-file line is refused, computed by ClickHouse while routing the
# insert ('' means the line is good).  One expression used by both routing views.
LINE_ERROR_EXPR = """multiIf(
    export_type = 'FULL_EXPORT' AND isValidUTF8(line) AND JSONType(line, 'Item') = 'Object',
        '',  -- the common case in one JSON parse: JSONType is Null unless the whole line is valid JSON
    NOT isValidUTF8(line), 'line is not valid UTF-8',
    NOT isValidJSON(line), 'line is not valid JSON',
    JSONType(line) != 'Object', 'line is not a JSON object',
    export_type = 'FULL_EXPORT' AND JSONType(line, 'Item') != 'Object',
        'full-export line has no "Item" object',
    export_type = 'INCREMENTAL_EXPORT'
        AND JSONType(line, 'Keys') != 'Object' AND JSONType(line, 'Key') != 'Object',
        'incremental-export line has no "Keys" object',
    export_type = 'INCREMENTAL_EXPORT'
        AND toUInt64OrNull(multiIf(
            JSONType(line, 'Metadata', 'WriteTimestampMicros') = 'Object',
                JSONExtractString(line, 'Metadata', 'WriteTimestampMicros', 'N'),
            JSONType(line, 'Metadata', 'WriteTimestampMicros') = 'String',
                JSONExtractString(line, 'Metadata', 'WriteTimestampMicros'),
            JSONType(line, 'Metadata', 'WriteTimestampMicros') IN ('Int64', 'UInt64'),
                JSONExtractRaw(line, 'Metadata', 'WriteTimestampMicros'),
            '')) IS NULL,
        'incremental-export line has no usable Metadata.WriteTimestampMicros',
    '')"""


# Why a stream record is refused ('' means good).  Used by both routing views.
RECORD_ERROR_EXPR = """multiIf(
    NOT isValidUTF8(data), 'record is not valid UTF-8',
    NOT isValidJSON(data), 'record is not valid JSON',
    JSONType(data) != 'Object', 'record is not a JSON object',
    JSONExtractString(data, 'eventName') NOT IN ('INSERT', 'MODIFY', 'REMOVE'),
        'not a DynamoDB change record (eventName is not INSERT, MODIFY or REMOVE)',
    JSONType(data, 'dynamodb', 'Keys') != 'Object', 'change record has no dynamodb.Keys object',
    -- (source, not table_name: the views' own table_name alias would shadow the inserted column)
    source = 'kinesis' AND (JSONType(data, 'tableName') != 'String' OR JSONExtractString(data, 'tableName') = ''),
        'change record has no tableName (a Kinesis record names its DynamoDB table)',
    '')"""

# The routing views' version, kept as their COMMENT: ensure() brings an older view's query up to
# date with ALTER TABLE ... MODIFY QUERY (2: a Kinesis record without tableName is refused).
ROUTING_VERSION = "dynamodb-cdc routing 2"
ROUTING_VIEWS = ("_stream_records_accept", "_stream_records_refuse")


# stream_checkpoints' columns added after its first release: in its CREATE, and added to older tables.
MILLIS_BEHIND_LATEST = ("millis_behind_latest Nullable(Int64) "
                        "COMMENT 'Kinesis MillisBehindLatest of the last page read before this checkpoint'")
# export_lines' skip index on the data file: load-export counts each file's landed lines by export and
# file, which are not in the sort key; without it every count read those two columns of the whole history
# (0.25-0.35 s a count at 10,000,000 lines), with it only the granules of the files counted (0.01 s).
# Older raw tables get it on their new parts (merges build it for the rest; MATERIALIZE INDEX at once).
EXPORT_LINES_FILE_INDEX = "INDEX data_file_key_set data_file_key TYPE set(8) GRANULARITY 1"
CAUGHT_UP_AT = ("caught_up_at Nullable(DateTime64(6, 'UTC')) COMMENT 'Kinesis: every record after sequence_number "
                "arrived after this time (the shard was last read to its tip then, less a minute)'")


def ddl(db: str) -> list[str]:
    d = ident(db)
    return [
        f"CREATE DATABASE IF NOT EXISTS {d}",
        # One row per line of every export data file.
        f"""CREATE TABLE IF NOT EXISTS {d}.export_lines (
    table_name LowCardinality(String) COMMENT 'DynamoDB table name, from tableArn',
    table_arn String COMMENT 'DynamoDB table ARN',
    export_arn String COMMENT 'Export ARN',
    export_type LowCardinality(String) COMMENT 'FULL_EXPORT or INCREMENTAL_EXPORT',
    export_time DateTime64(3, 'UTC') COMMENT 'exportTime (full) or exportToTime (incremental): the state is as of this time',
    export_from_time Nullable(DateTime64(3, 'UTC')) COMMENT 'exportFromTime of an incremental export',
    data_file_key String COMMENT 'S3 key of the data file',
    line_number UInt64 COMMENT '1-based line number in the decompressed data file',
    line String COMMENT 'The raw JSON line, unparsed',
    _ingested_at DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'When the loader inserted the line',
    {EXPORT_LINES_FILE_INDEX}
) ENGINE = MergeTree
ORDER BY (table_name, _ingested_at)
COMMENT 'Raw lines of DynamoDB S3 exports, one row per line, unparsed'""",
        f"ALTER TABLE {d}.export_lines ADD {EXPORT_LINES_FILE_INDEX.replace('INDEX', 'INDEX IF NOT EXISTS', 1)}",
        # Per-export state.
        f"""CREATE TABLE IF NOT EXISTS {d}.exports (
    export_arn String,
    table_name LowCardinality(String),
    table_arn String,
    export_type LowCardinality(String),
    export_time DateTime64(3, 'UTC'),
    export_from_time Nullable(DateTime64(3, 'UTC')),
    export_to_time Nullable(DateTime64(3, 'UTC')),
    output_view String,
    s3_uri String COMMENT 's3://bucket/key of manifest-summary.json',
    manifest_item_count Nullable(UInt64),
    data_files UInt32,
    status LowCardinality(String) COMMENT 'loading, loaded or failed',
    error String,
    updated_at DateTime64(6, 'UTC') DEFAULT now64(6)
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY export_arn
COMMENT 'One row per export seen by the loader (read with FINAL)'""",
        # The ledger: one row per data file, the latest state wins.
        f"""CREATE TABLE IF NOT EXISTS {d}.export_files (
    export_arn String,
    table_name LowCardinality(String),
    data_file_key String,
    md5 String COMMENT 'md5Checksum from manifest-files.json (base64)',
    manifest_item_count UInt64,
    lines_committed UInt64 COMMENT 'Lines of the file fully inserted so far (resume point)',
    lines_landed UInt64 COMMENT 'Lines landed in export_lines',
    lines_quarantined UInt64 COMMENT 'Lines set aside in quarantine',
    compressed_bytes UInt64,
    status LowCardinality(String) COMMENT 'loading, loaded or failed',
    error String,
    updated_at DateTime64(6, 'UTC') DEFAULT now64(6)
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (export_arn, data_file_key)
COMMENT 'Ledger of export data files (read with FINAL)'""",
        f"""CREATE TABLE IF NOT EXISTS {d}.quarantine (
    source LowCardinality(String) COMMENT 'export, kinesis or dynamodb_streams',
    table_name String,
    origin String COMMENT 'Export ARN or stream ARN',
    location String COMMENT 'Data file key or shard id',
    line_number UInt64 COMMENT 'Line in the data file (exports)',
    sequence_number String COMMENT 'Record sequence number (streams)',
    payload String COMMENT 'The refused line or record, as received',
    error String,
    _ingested_at DateTime64(6, 'UTC') DEFAULT now64(6)
) ENGINE = MergeTree
ORDER BY (source, origin, location, line_number)
COMMENT 'Input the loader refused, with the reason; nothing is dropped silently'""",
        # Inserts of export lines go here; views check each line and route it to
        # export_lines or quarantine, so refused lines never reach the raw table.
        f"""CREATE TABLE IF NOT EXISTS {d}._export_lines_in (
    table_name String,
    table_arn String,
    export_arn String,
    export_type String,
    export_time DateTime64(3, 'UTC'),
    export_from_time Nullable(DateTime64(3, 'UTC')),
    data_file_key String,
    line_number UInt64,
    line String
) ENGINE = Null""",
        # Each line is checked once (LINE_ERROR_EXPR parses the JSON), into a second Null
        # table that the two routing views read.
        f"""CREATE TABLE IF NOT EXISTS {d}._export_lines_checked (
    table_name String,
    table_arn String,
    export_arn String,
    export_type String,
    export_time DateTime64(3, 'UTC'),
    export_from_time Nullable(DateTime64(3, 'UTC')),
    data_file_key String,
    line_number UInt64,
    line String,
    error String
) ENGINE = Null""",
        f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {d}._export_lines_check TO {d}._export_lines_checked AS
SELECT table_name, table_arn, export_arn, export_type, export_time, export_from_time,
       data_file_key, line_number, line, {LINE_ERROR_EXPR} AS error
FROM {d}._export_lines_in""",
        f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {d}._export_lines_accept TO {d}.export_lines AS
SELECT table_name, table_arn, export_arn, export_type, export_time, export_from_time,
       data_file_key, line_number, line, now64(6) AS _ingested_at
FROM {d}._export_lines_checked
WHERE error = ''""",
        f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {d}._export_lines_refuse TO {d}.quarantine AS
SELECT 'export' AS source, table_name, export_arn AS origin, data_file_key AS location,
       line_number, '' AS sequence_number, line AS payload, error, now64(6) AS _ingested_at
FROM {d}._export_lines_checked
WHERE error != ''""",
        leases_ddl(d),
        # Stream consumers (Kinesis Data Streams for DynamoDB, DynamoDB Streams).
        f"""CREATE TABLE IF NOT EXISTS {d}.stream_records (
    source LowCardinality(String) COMMENT 'kinesis or dynamodb_streams',
    stream_arn String,
    shard_id String,
    sequence_number String COMMENT 'as received (decimal string)',
    arrival_time DateTime64(3, 'UTC') COMMENT 'Kinesis ApproximateArrivalTimestamp; DynamoDB Streams: when the loader read the record',
    partition_key String COMMENT 'Kinesis partition key; empty for DynamoDB Streams',
    table_name LowCardinality(String) COMMENT 'DynamoDB table: tableName in a Kinesis record, from the stream ARN for DynamoDB Streams',
    data String COMMENT 'the change record JSON, unparsed',
    _ingested_at DateTime64(6, 'UTC') DEFAULT now64(6)
) ENGINE = MergeTree
ORDER BY (table_name, _ingested_at)
COMMENT 'Raw DynamoDB change records from Kinesis Data Streams and DynamoDB Streams, unparsed'""",
        f"""CREATE TABLE IF NOT EXISTS {d}.stream_checkpoints (
    source LowCardinality(String),
    stream_arn String,
    shard_id String,
    parent_shard_id String,
    adjacent_parent_shard_id String,
    sequence_number String COMMENT 'last sequence number whose record is in stream_records',
    finished UInt8 COMMENT '1 once a closed shard was read to its end',
    records UInt64 COMMENT 'records landed from this shard in this run',
    updated_at DateTime64(6, 'UTC') DEFAULT now64(6),
    {MILLIS_BEHIND_LATEST},
    {CAUGHT_UP_AT}
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (source, stream_arn, shard_id)
COMMENT 'Per-shard checkpoints of the stream consumers (read with FINAL)'""",
        # Raw databases created before the column existed get it.
        f"ALTER TABLE {d}.stream_checkpoints ADD COLUMN IF NOT EXISTS {MILLIS_BEHIND_LATEST}",
        f"ALTER TABLE {d}.stream_checkpoints ADD COLUMN IF NOT EXISTS {CAUGHT_UP_AT}",
        f"""CREATE TABLE IF NOT EXISTS {d}._stream_records_in (
    source String,
    stream_arn String,
    shard_id String,
    sequence_number String,
    arrival_time DateTime64(3, 'UTC'),
    partition_key String,
    table_name String COMMENT 'empty for Kinesis: taken from the record by the routing views',
    data String
) ENGINE = Null""",
        f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {d}._stream_records_accept TO {d}.stream_records AS
SELECT source, stream_arn, shard_id, sequence_number, arrival_time, partition_key,
       if(table_name != '', table_name, JSONExtractString(data, 'tableName')) AS table_name,
       data, now64(6) AS _ingested_at
FROM {d}._stream_records_in
WHERE {RECORD_ERROR_EXPR} = ''
COMMENT {literal(ROUTING_VERSION)}""",
        f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {d}._stream_records_refuse TO {d}.quarantine AS
SELECT source,
       if(table_name != '', table_name, if(isValidJSON(data), JSONExtractString(data, 'tableName'), '')) AS table_name,
       stream_arn AS origin, shard_id AS location, 0 AS line_number, sequence_number,
       data AS payload, {RECORD_ERROR_EXPR} AS error, now64(6) AS _ingested_at
FROM {d}._stream_records_in
WHERE error != ''
COMMENT {literal(ROUTING_VERSION)}""",
    ]


def leases_ddl(d: str) -> str:
    """The leases table (lease.py), of the quoted database ``d``: which run is loading each export,
    reading each stream or pushing to each DynamoDB table; a second leaves it alone."""
    return f"""CREATE TABLE IF NOT EXISTS {d}.leases (
    scope String COMMENT 'what is held: export:<export ARN>, stream:<stream ARN>, push:<region>/<DynamoDB table>',
    holder String COMMENT 'host:pid:start:run of the holding process (start: its start time, /proc)',
    host String,
    pid UInt32,
    command LowCardinality(String),
    acquired_at DateTime64(6, 'UTC'),
    renewed_at DateTime64(6, 'UTC'),
    released UInt8
) ENGINE = ReplacingMergeTree(renewed_at)
ORDER BY (scope, holder)
COMMENT 'Leases of the runs loading each export, reading each stream or pushing to each DynamoDB table (read with FINAL): one at a time'"""


def ensure(client, db: str) -> None:
    """Create what is missing of the raw database, and bring older tables and routing views up to date.

    What is there is read first (one query): when nothing is missing, as on every run after the first,
    no DDL is sent, so a user without CREATE / ALTER rights (a monitoring user running ``status``, or a
    loader once an administrator has made the tables) runs every command."""
    statements = ddl(db)
    comments = create_missing(client, db, statements)
    stale = [name for name in ROUTING_VIEWS if name in comments and comments[name] != ROUTING_VERSION]
    for name in stale:  # made by an older version: the same view, its query brought up to date
        (create,) = [s for s in statements if f".{name} TO " in s]
        select = create[create.index("\nSELECT ") + 1:create.index("\nCOMMENT ")]
        try:
            client.command(f"ALTER TABLE {ident(db)}.{ident(name)} MODIFY QUERY {select}")
            client.command(f"ALTER TABLE {ident(db)}.{ident(name)} MODIFY COMMENT {literal(ROUTING_VERSION)}")
        except Exception as ex:
            from .connection import is_transient

            if is_transient(ex):  # ClickHouse unavailable: load-export's retrying waits and runs ensure again
                raise
            if _NO_RIGHTS.search(str(ex)):
                raise RuntimeError(
                    f"the routing view {db}.{name} was made by an older dynamodb-cdc, and this ClickHouse user cannot "
                    f"alter it: {_no_rights_advice(ex, 'any dynamodb-cdc command', db)}") from None
            raise RuntimeError(
                f"cannot update the routing view {db}.{name} (made by an older dynamodb-cdc) with ALTER TABLE ... "
                f"MODIFY QUERY: {str(ex).splitlines()[0]}. With no loader running, DROP VIEW {db}.{name} and rerun "
                "any dynamodb-cdc command to create it anew") from None
        log.info("brought the routing view %s.%s up to date (%s)", db, name, ROUTING_VERSION)


# The error of a statement this ClickHouse user has no right to run.
_NO_RIGHTS = re.compile(r"\((READONLY|ACCESS_DENIED|NOT_ENOUGH_PRIVILEGES)\)")


def create_missing(client, db: str, statements: list[str], run: str = "any dynamodb-cdc command") -> dict[str, str]:
    """Run those of ``statements`` (CREATE ... IF NOT EXISTS and ALTER TABLE ... ADD ... IF NOT EXISTS in
    database ``db``) whose object is missing, after one query reading what is there; returns the comment
    of each table that was there before.  ``run``: what creates them, as the error names it."""
    present, comments = _present(client, db, statements)
    for statement in [s for s in statements if _object(s, db) not in present]:
        try:
            client.command(statement)
        except Exception as ex:
            if not _NO_RIGHTS.search(str(ex)):
                raise
            raise RuntimeError(f"{_describe(_object(statement, db), db)}, and this ClickHouse user cannot create it: "
                               f"{_no_rights_advice(ex, run, db)}") from None
    return comments


def _no_rights_advice(ex: Exception, run: str, db: str) -> str:
    """The server's refusal, then what to do: ``run`` once as a user with the rights."""
    return (f"{str(ex).splitlines()[0]}. Run {run} once as a user allowed to create and alter tables in {db}; "
            "later runs need no such rights")


def _object(statement: str, db: str) -> tuple:
    """What a statement of ddl(db) makes: ('database',), ('table', name), ('column', table, name) or
    ('index', table, name)."""
    d = re.escape(ident(db))
    for pattern, kind in ((rf"CREATE DATABASE IF NOT EXISTS {d}$", "database"),
                          (rf"CREATE (?:TABLE|MATERIALIZED VIEW) IF NOT EXISTS {d}\.(\w+)\s", "table"),
                          (rf"ALTER TABLE {d}\.(\w+) ADD COLUMN IF NOT EXISTS (\w+)\s", "column"),
                          (rf"ALTER TABLE {d}\.(\w+) ADD INDEX IF NOT EXISTS (\w+)\s", "index")):
        m = re.match(pattern, statement)
        if m:
            return (kind, *m.groups())
    raise ValueError(f"not a statement ensure() knows: {statement[:80]}")


def _present(client, db: str, statements: list[str]) -> tuple[set, dict]:
    """Which objects of ``statements`` exist (as _object names them), and the comment of every table."""
    altered = sorted({o[1] for o in (_object(s, db) for s in statements) if o[0] == "column"})
    rows = client.query(
        "SELECT 'database', name, '', '' FROM system.databases WHERE name = {db:String} "
        "UNION ALL SELECT 'table', name, '', comment FROM system.tables WHERE database = {db:String} "
        "UNION ALL SELECT 'column', table, name, '' FROM system.columns WHERE database = {db:String} "
        "AND table IN {altered:Array(String)} "
        "UNION ALL SELECT 'index', table, name, '' FROM system.data_skipping_indices WHERE database = {db:String}",
        parameters={"db": db, "altered": altered}).result_rows
    present = {("database",) if kind == "database" else (kind, a) if kind == "table" else (kind, a, b)
               for kind, a, b, _ in rows}
    return present, {a: comment for kind, a, _, comment in rows if kind == "table"}


def _describe(obj: tuple, db: str) -> str:
    kind, *names = obj
    if kind == "database":
        return f"the raw database {db} does not exist"
    if kind == "table":
        return f"the raw table {db}.{names[0]} does not exist"
    return f"{db}.{names[0]} has no {'column' if kind == 'column' else 'skip index'} {names[1]} (made by an older dynamodb-cdc)"
