"""``dynamodb-cdc push``: a ClickHouse relation (a dbt model) written back into a DynamoDB table.

One run:

1. resolves the relation (``model`` or ``schema.model``), reads its columns and
   compiles the converter (``push_convert``), so an unsupported type or a wrong
   key stops before anything is read or written;
2. checks the target table's key schema (DescribeTable) against the key, and
   takes the table's lease (lease.py: one push per DynamoDB table at a time);
3. records the run in ``push_runs`` (status ``running``);
4. streams the rows (``query_row_block_stream``: memory stays flat): all of them
   (``--full``, or the first run), the rows whose version column is at or past
   the last successful run's watermark (incremental), or the rows whose keys
   wait in ``push_quarantine`` (``--retry-failed``);
5. converts each row; a row DynamoDB would refuse goes to ``push_quarantine``
   with the reason, whole, and the rows around it go on;
6. writes items with BatchWriteItem, 25 per call, from ``--writers`` threads
   sharing one ``--max-write-rate`` budget; an item always goes to the same
   thread (by key), so two rows with one key are written in the model's order;
   UnprocessedItems and throttling are retried with full-jitter exponential
   backoff; an item DynamoDB refuses (ValidationException) is isolated and set
   aside with DynamoDB's message, the others land;
7. records each written key in ``push_keys`` (key, a hash of the key columns
   computed by ClickHouse, the run);
8. with ``--sync-deletes``, deletes the items whose keys were pushed before
   by this relation and are no longer in it;
9. marks the run ``succeeded`` (or ``partial`` when rows were set aside) with
   the new watermark.  A run that fails or dies leaves the watermark where it
   was, so the next run writes those rows again: at-least-once, and idempotent
   since an item is written whole (PutRequest) with the model's values.

``--via-import s3://bucket/prefix`` writes the rows as DynamoDB JSON (gzip, one
``{"Item": ...}`` per line) to S3 and calls ImportTable, which creates the table
without consuming write capacity; later pushes continue from its watermark.
"""

from __future__ import annotations

import gzip
import logging
import os
import queue
import random
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from . import clock
from .errors import UsageError
from .push_convert import (
    Column,
    ConvertOptions,
    ItemConverter,
    Refused,
    UnsupportedColumn,
    item_json,
    parse_type,
    row_json,
)
from .lease import Lease, holding
from .schema import leases_ddl
from .sql import ident, literal
from .streams import backoff_delay, error_code

log = logging.getLogger(__name__)

BATCH_SIZE = 25  # BatchWriteItem's limit
STATE_FLUSH_ROWS = 10_000  # keys and quarantine rows per insert into ClickHouse
MAX_ATTEMPTS = 10  # consecutive BatchWriteItem attempts without progress before giving up
BACKOFF_BASE, BACKOFF_CAP = 0.05, 20.0
RETRIABLE = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "InternalFailure", "ServiceUnavailable", "LimitExceededException",
})
KEY_HASH_NULL = ""

RUNNING, SUCCEEDED, PARTIAL, FAILED, IMPORTING = "running", "succeeded", "partial", "failed", "importing"
FULL, INCREMENTAL, RETRY, IMPORT = "full", "incremental", "retry_failed", "import"


class PushError(RuntimeError):
    """The push cannot go on; the message says why and what to do."""


class ImportPending(PushError):
    """ImportTable is still running when the push stops waiting; the next push settles it."""


# -- options and results ----------------------------------------------------------


@dataclass
class PushOptions:
    relation: str
    table: str
    key: list[str] | None = None  # default: the table's KeySchema
    version_column: str | None = None
    full: bool = False
    sync_deletes: bool = False
    allow_empty: bool = False  # with sync_deletes: an empty relation may delete every item it pushed
    retry_failed: bool = False
    columns: list[str] | None = None  # only these (plus the key)
    exclude: list[str] = field(default_factory=list)
    convert: ConvertOptions = field(default_factory=ConvertOptions)
    max_write_rate: float | None = None  # items per second, all writers together
    writers: int = 4
    via_import: str | None = None  # s3://bucket/prefix
    import_timeout: float = 3600.0
    poll_seconds: float = 10.0
    import_file_rows: int = 1_000_000


@dataclass
class PushResult:
    run_id: str
    mode: str
    status: str
    relation: str
    table: str
    rows_read: int = 0
    rows_written: int = 0
    rows_deleted: int = 0
    rows_set_aside: int = 0
    watermark: str = ""
    import_arn: str = ""
    error: str = ""


# -- state in ClickHouse ------------------------------------------------------------


def state_ddl(db: str) -> list[str]:
    d = ident(db)
    return [
        f"CREATE DATABASE IF NOT EXISTS {d}",
        f"""CREATE TABLE IF NOT EXISTS {d}.push_runs (
    run_id String,
    relation String COMMENT 'database.table of the ClickHouse relation pushed',
    target_table String COMMENT 'DynamoDB table',
    mode LowCardinality(String) COMMENT 'full, incremental, retry_failed or import',
    started_at DateTime64(6, 'UTC'),
    finished_at Nullable(DateTime64(6, 'UTC')),
    rows_read UInt64,
    rows_written UInt64,
    rows_deleted UInt64,
    rows_set_aside UInt64,
    version_column String,
    version_type String,
    watermark_from String COMMENT 'rows with version >= this were read (incremental)',
    watermark String COMMENT 'highest version read; the next incremental run starts here',
    key_types String COMMENT 'key columns and their ClickHouse types, e.g. id String',
    shape String DEFAULT '' COMMENT 'the columns pushed, their types and the conversion options',
    import_arn String,
    status LowCardinality(String) COMMENT 'running, succeeded, partial (rows set aside), failed, importing',
    error String,
    updated_at DateTime64(6, 'UTC') DEFAULT now64(6)
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (target_table, relation, run_id)
COMMENT 'One row per dynamodb-cdc push run (read with FINAL)'""",
        f"ALTER TABLE {d}.push_runs ADD COLUMN IF NOT EXISTS shape String DEFAULT '' "
        "COMMENT 'the columns pushed, their types and the conversion options' AFTER key_types",
        f"""CREATE TABLE IF NOT EXISTS {d}.push_quarantine (
    entry_id String,
    run_id String,
    relation String,
    target_table String,
    key_json String COMMENT 'the DynamoDB key as DynamoDB JSON; empty when the key itself was refused',
    key_hash String COMMENT 'sipHash128 of the key columns, by which --retry-failed re-reads the row',
    row_json String COMMENT 'the row as read (or the item DynamoDB refused), for people',
    reason String,
    status LowCardinality(String) COMMENT 'open, resolved (written later), superseded (set aside again), gone (no longer in the relation)',
    resolved_by String COMMENT 'run that resolved it',
    quarantined_at DateTime64(6, 'UTC'),
    updated_at DateTime64(6, 'UTC') DEFAULT now64(6)
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (target_table, relation, entry_id)
COMMENT 'Rows dynamodb-cdc push set aside, with the reason (read with FINAL)'""",
        f"""CREATE TABLE IF NOT EXISTS {d}.push_keys (
    target_table String,
    key_json String COMMENT 'the DynamoDB key as DynamoDB JSON',
    key_hash String COMMENT 'sipHash128 of the key columns in the relation',
    relation String,
    run_id String COMMENT 'the run that last wrote or deleted the item',
    deleted UInt8 COMMENT '0 written, 1 deleted, 2 a write sent but not confirmed (its run was stopped)',
    updated_at DateTime64(6, 'UTC') DEFAULT now64(6)
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (target_table, key_json)
COMMENT 'Every key dynamodb-cdc push wrote, for --sync-deletes (read with FINAL)'""",
        leases_ddl(d),  # one push per DynamoDB table at a time
    ]


RUN_COLUMNS = ["run_id", "relation", "target_table", "mode", "started_at", "finished_at", "rows_read",
               "rows_written", "rows_deleted", "rows_set_aside", "version_column", "version_type",
               "watermark_from", "watermark", "key_types", "shape", "import_arn", "status", "error", "updated_at"]
QUARANTINE_COLUMNS = ["entry_id", "run_id", "relation", "target_table", "key_json", "key_hash", "row_json",
                      "reason", "status", "resolved_by", "quarantined_at", "updated_at"]
KEY_COLUMNS = ["target_table", "key_json", "key_hash", "relation", "run_id", "deleted", "updated_at"]
SENT = 2  # push_keys.deleted of a key whose write was sent and not (yet) confirmed


class PushState:
    """push_runs, push_quarantine and push_keys in the raw database."""

    def __init__(self, client, database: str):
        self.client = client
        self.db = database
        self.q = ident(database)

    def ensure(self) -> None:
        from .schema import create_missing

        create_missing(self.client, self.db, state_ddl(self.db), run="dynamodb-cdc push")  # (no other command makes them)
        clock.align(self.client)  # push_runs are stamped by the server's clock

    def record_run(self, run: dict) -> None:
        self.client.insert(f"{self.q}.push_runs", [[run[c] for c in RUN_COLUMNS]], column_names=RUN_COLUMNS)

    def last_run(self, relation: str, table: str, statuses: tuple[str, ...],
                 modes: tuple[str, ...] = ("full", "incremental", "retry_failed", "import")) -> dict | None:
        result = self.client.query(
            f"SELECT {', '.join(RUN_COLUMNS)} FROM {self.q}.push_runs FINAL "
            f"WHERE relation = {{r:String}} AND target_table = {{t:String}} AND status IN {{s:Array(String)}} "
            f"AND mode IN {{m:Array(String)}} ORDER BY started_at DESC LIMIT 1",
            parameters={"r": relation, "t": table, "s": list(statuses), "m": list(modes)},
        )
        rows = result.result_rows
        return dict(zip(RUN_COLUMNS, rows[0])) if rows else None

    def insert_keys(self, rows: list[list]) -> None:
        if rows:
            self.client.insert(f"{self.q}.push_keys", rows, column_names=KEY_COLUMNS)

    def insert_quarantine(self, rows: list[list]) -> None:
        if rows:
            self.client.insert(f"{self.q}.push_quarantine", rows, column_names=QUARANTINE_COLUMNS)

    def close_entries(self, run_id: str, relation: str, table: str) -> dict[str, int]:
        """After a run: open entries whose key this run wrote are resolved; older open entries of a key
        set aside again by this run are superseded."""
        counts = {}
        base = (f"SELECT entry_id, run_id, relation, target_table, key_json, key_hash, row_json, reason, "
                f"{{status:String}}, {{run:String}}, quarantined_at, now64(6) FROM {self.q}.push_quarantine FINAL "
                f"WHERE target_table = {{t:String}} AND relation = {{r:String}} AND status = 'open' "
                f"AND run_id != {{run:String}} AND key_hash != '' AND key_hash IN ")
        params = {"t": table, "r": relation, "run": run_id}
        for status, subquery in (
            ("resolved", f"(SELECT key_hash FROM {self.q}.push_keys FINAL WHERE target_table = {{t:String}} "
                         f"AND run_id = {{run:String}} AND deleted = 0)"),
            ("superseded", f"(SELECT key_hash FROM {self.q}.push_quarantine WHERE target_table = {{t:String}} "
                           f"AND relation = {{r:String}} AND run_id = {{run:String}})"),
        ):
            before = self._open_count(relation, table)
            self.client.command(f"INSERT INTO {self.q}.push_quarantine ({', '.join(QUARANTINE_COLUMNS)}) "
                                + base + subquery, parameters={**params, "status": status})
            counts[status] = before - self._open_count(relation, table)
        return counts

    def _open_count(self, relation: str, table: str) -> int:
        return int(self.client.query(
            f"SELECT count() FROM {self.q}.push_quarantine FINAL WHERE target_table = {{t:String}} "
            f"AND relation = {{r:String}} AND status = 'open'", parameters={"t": table, "r": relation},
        ).result_rows[0][0])


# -- the relation ---------------------------------------------------------------------


def _is_datetime(ch_type: str) -> bool:
    return parse_type(ch_type).base_type in ("DateTime", "DateTime64")


def _wide_decimals(ch_type: str) -> str:
    """The type with each Decimal(P, S) of P > 18 widened to Decimal(76, S).  ClickHouse does not hold a
    Decimal to its P (INSERT ... SELECT, arithmetic, sum): a Decimal(20, 5) can hold 29 digits, which
    clickhouse-connect reads rounded to P digits; read as Decimal(76, S) every 128-bit value is exact
    (a 256-bit one is rounded at 76 digits only past 38, which push_convert refuses anyway)."""
    import re

    return re.sub(r"\bDecimal\((\d+), (\d+)\)",
                  lambda m: f"Decimal(76, {m[2]})" if int(m[1]) > 18 else m[0], ch_type)


def resolve_relation(client, name: str) -> tuple[str, str]:
    """(database, table) for ``schema.model`` or a bare model name found in exactly one database."""
    if "." in name:
        db, table = name.split(".", 1)
        found = client.query(
            "SELECT count() FROM system.tables WHERE database = {d:String} AND name = {t:String}",
            parameters={"d": db, "t": table},
        ).result_rows[0][0]
        if not found:
            raise PushError(f"relation {name} does not exist in ClickHouse (run dbt first?)")
        return db, table
    rows = client.query(
        "SELECT database FROM system.tables WHERE name = {t:String} "
        "AND database NOT IN ('system', 'INFORMATION_SCHEMA', 'information_schema') ORDER BY database",
        parameters={"t": name},
    ).result_rows
    if not rows:
        raise PushError(f"no relation named {name} in ClickHouse (run dbt first, or name it schema.model)")
    if len(rows) > 1:
        raise PushError(f"{name} exists in several databases ({', '.join(r[0] for r in rows)}): "
                        f"name it schema.model")
    return rows[0][0], name


def describe(client, db: str, table: str) -> list[Column]:
    rows = client.query(f"DESCRIBE TABLE {ident(db)}.{ident(table)}").result_rows
    return [Column(r[0], r[1]) for r in rows if (len(r) < 3 or r[2] in ("", "DEFAULT"))]


# -- writing --------------------------------------------------------------------------


class RateLimiter:
    """At most ``rate`` items per second over all writers (None: no limit)."""

    def __init__(self, rate: float | None, *, clock=time.monotonic, sleep=time.sleep):
        if rate is not None and rate <= 0:
            raise UsageError("--max-write-rate must be positive")
        self.rate = rate
        self.clock = clock
        self.sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self, n: int) -> None:
        if not self.rate:
            return
        with self._lock:
            now = self.clock()
            start = max(now, self._next)
            self._next = start + n / self.rate
        if start > now:
            self.sleep(start - now)


@dataclass
class Request:
    """One write: a PutRequest (item) or a DeleteRequest (key), with what to record once it lands."""

    key_json: str
    key_hash: str
    item: dict | None = None  # a put
    key: dict | None = None  # a delete

    def wire(self) -> dict:
        if self.item is not None:
            return {"PutRequest": {"Item": self.item}}
        return {"DeleteRequest": {"Key": self.key}}


@dataclass
class BatchOutcome:
    done: list[Request]
    refused: list[tuple[Request, str]]


def _request_key_json(wire: dict, key: list[str]) -> str:
    if "PutRequest" in wire:
        item = wire["PutRequest"]["Item"]
        return item_json({k: item[k] for k in key})
    return item_json(wire["DeleteRequest"]["Key"])


def write_batch(client, table: str, requests: list[Request], key: list[str], limiter: RateLimiter, *,
                sleep: Callable[[float], None] = time.sleep, rand: Callable[[], float] = random.random,
                max_attempts: int = MAX_ATTEMPTS) -> BatchOutcome:
    """Write up to 25 requests with BatchWriteItem until each has landed or DynamoDB refused it.

    UnprocessedItems and throttling errors are retried with full-jitter backoff; ``max_attempts``
    consecutive attempts without progress raise PushError.  A ValidationException (an item DynamoDB
    refuses) writes the requests one by one, so the refused one is set aside with DynamoDB's message.
    """
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    pending = list(requests)
    done: list[Request] = []
    refused: list[tuple[Request, str]] = []
    stalled = 0
    while pending:
        limiter.acquire(len(pending))
        try:
            response = client.batch_write_item(RequestItems={table: [r.wire() for r in pending]})
        except ClientError as ex:
            code = error_code(ex)
            if code == "ValidationException":
                if len(pending) == 1:
                    refused.append((pending[0], f"DynamoDB refused the item: {ex.response['Error'].get('Message', ex)}"))
                    return BatchOutcome(done, refused)
                for r in pending:
                    one = write_batch(client, table, [r], key, limiter, sleep=sleep, rand=rand,
                                      max_attempts=max_attempts)
                    done += one.done
                    refused += one.refused
                return BatchOutcome(done, refused)
            if code not in RETRIABLE:
                raise PushError(f"BatchWriteItem on {table}: {code}: {ex.response['Error'].get('Message', '')}") from None
            reason = code
            unprocessed_n = len(pending)
        except (ConnectionError, HTTPClientError) as ex:
            reason, unprocessed_n = type(ex).__name__, len(pending)
        else:
            unprocessed = response.get("UnprocessedItems", {}).get(table, [])
            if not unprocessed:
                done += pending
                return BatchOutcome(done, refused)
            by_key = {r.key_json: r for r in pending}
            left = [by_key[_request_key_json(w, key)] for w in unprocessed]
            left_ids = {id(r) for r in left}
            done += [r for r in pending if id(r) not in left_ids]
            if len(left) < len(pending):
                stalled = 0
            pending = left
            reason, unprocessed_n = "UnprocessedItems", len(left)
        stalled += 1
        if stalled >= max_attempts:
            raise PushError(
                f"BatchWriteItem on {table}: {unprocessed_n} item(s) still not written after {max_attempts} "
                f"attempts ({reason}); the table is throttled: lower --max-write-rate or rerun later "
                "(the watermark did not move, so nothing is skipped)")
        delay = backoff_delay(stalled - 1, base=BACKOFF_BASE, cap=BACKOFF_CAP, rand=rand)
        log.debug("%s: %s for %d item(s); retrying in %.3f s", table, reason, unprocessed_n, delay)
        sleep(delay)
    return BatchOutcome(done, refused)


class WriterPool:
    """``n`` threads writing batches; a key always goes to the same thread, so its writes keep their order."""

    def __init__(self, client, table: str, key: list[str], n: int, limiter: RateLimiter, *,
                 sleep: Callable[[float], None] = time.sleep):
        self.client, self.table, self.key, self.limiter, self.sleep = client, table, key, limiter, sleep
        self.n = max(1, n)
        self.queues = [queue.Queue(maxsize=4) for _ in range(self.n)]
        self.pending: list[list[Request]] = [[] for _ in range(self.n)]
        self.pending_keys: list[set[str]] = [set() for _ in range(self.n)]
        self.outcomes: queue.Queue = queue.Queue()
        self.error: BaseException | None = None
        self.batches = 0
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True, name=f"push-writer-{i}")
                        for i in range(self.n)]
        for t in self.threads:
            t.start()

    def _run(self, i: int) -> None:
        q = self.queues[i]
        while True:
            batch = q.get()
            if batch is None:
                return
            if self.error is not None:
                continue  # drain without writing once a writer failed
            try:
                self.outcomes.put(write_batch(self.client, self.table, batch, self.key, self.limiter,
                                              sleep=self.sleep))
            except BaseException as ex:  # handed to the main thread, which stops the run
                self.error = ex

    def submit(self, request: Request) -> None:
        i = _route(request.key_json, self.n)
        if request.key_json in self.pending_keys[i]:
            self._send(i)  # the same key twice in a batch is refused by DynamoDB; keep their order
        self.pending[i].append(request)
        self.pending_keys[i].add(request.key_json)
        if len(self.pending[i]) >= BATCH_SIZE:
            self._send(i)

    def _send(self, i: int) -> None:
        if not self.pending[i]:
            return
        self.check()
        batch, self.pending[i], self.pending_keys[i] = self.pending[i], [], set()
        while True:
            try:
                self.queues[i].put(batch, timeout=1.0)
                break
            except queue.Full:
                self.check()
        self.batches += 1

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def drain(self) -> list[BatchOutcome]:
        out = []
        while True:
            try:
                out.append(self.outcomes.get_nowait())
            except queue.Empty:
                return out

    def finish(self) -> list[BatchOutcome]:
        """Send what is pending, wait for every writer, return the remaining outcomes."""
        try:
            for i in range(self.n):
                self._send(i)
        finally:
            for q in self.queues:
                q.put(None)
            for t in self.threads:
                t.join()
        self.check()
        return self.drain()

    def abort(self) -> None:
        self.error = self.error or PushError("aborted")
        for q in self.queues:
            try:
                while True:
                    q.get_nowait()
            except queue.Empty:
                pass
            q.put(None)
        for t in self.threads:
            t.join()


def _route(key_json: str, n: int) -> int:
    import zlib

    return zlib.crc32(key_json.encode()) % n


# -- the run ---------------------------------------------------------------------------


class Pusher:
    def __init__(self, client, state_client, dynamodb, raw_database: str, options: PushOptions, *, s3=None,
                 sleep: Callable[[float], None] = time.sleep):
        self.client = client  # reads the relation (one streaming query at a time)
        self.state = PushState(state_client, raw_database)  # writes state while the stream is open
        self.dynamodb = dynamodb
        self.s3 = s3
        self.opt = options
        self.sleep = sleep

    # -- setup ---------------------------------------------------------------------
    def prepare(self) -> None:
        opt = self.opt
        if opt.retry_failed and (opt.full or opt.via_import):
            raise UsageError("--retry-failed goes alone (not with --full or --via-import)")
        if opt.via_import and opt.sync_deletes:
            raise UsageError("--via-import creates a new table: --sync-deletes has nothing to delete")
        self.state.ensure()
        db, name = resolve_relation(self.client, opt.relation)
        self.relation = f"{db}.{name}"
        self.rel_sql = f"{ident(db)}.{ident(name)}"
        all_columns = describe(self.client, db, name)
        by_name = {c.name: c for c in all_columns}
        table_key, table_types = self._table_key()
        key = opt.key or table_key
        if not key:
            raise UsageError(f"name the key attributes with --key (table {opt.table} does not exist yet)")
        if table_key and list(key) != list(table_key):
            raise UsageError(f"--key {','.join(key)} differs from table {opt.table}'s key {','.join(table_key)}")
        missing = [c for c in [*key, *(opt.columns or []), *opt.exclude] if c not in by_name]
        if opt.version_column and opt.version_column not in by_name:
            missing.append(opt.version_column)
        if missing:
            raise UsageError(f"{self.relation} has no column(s) {', '.join(missing)}; "
                             f"it has {', '.join(by_name)}")
        if any(k in opt.exclude for k in key):
            raise UsageError("the key columns cannot be excluded")
        wanted = set(opt.columns) | set(key) if opt.columns else set(by_name)
        self.columns = [c for c in all_columns if c.name in wanted and c.name not in opt.exclude]
        self.converter = ItemConverter(self.columns, list(key), opt.convert)
        self.key = list(key)
        for k in key:
            if table_types and table_types.get(k) != self.converter.key_types[k]:
                raise UsageError(f"key column {k} becomes {self.converter.key_types[k]} but table {opt.table} "
                                 f"declares it {table_types.get(k)}")
        self.key_types = ", ".join(f"{k} {by_name[k].type}" for k in key)
        self.key_hash_sql = "lower(hex(sipHash128(" + ", ".join(ident(k) for k in key) + ")))"
        self.version_type = by_name[opt.version_column].type if opt.version_column else ""
        c = opt.convert
        self.shape = (", ".join(f"{col.name} {col.type}" for col in self.columns)
                      + f"; nulls {c.nulls}; sets {','.join(sorted(c.sets)) or '-'}; binary {','.join(sorted(c.binary)) or '-'}")

    def _table_key(self) -> tuple[list[str], dict[str, str]]:
        from botocore.exceptions import ClientError

        try:
            table = self.dynamodb.describe_table(TableName=self.opt.table)["Table"]
        except ClientError as ex:
            if error_code(ex) == "ResourceNotFoundException":
                if self.opt.via_import:
                    return [], {}
                raise PushError(f"DynamoDB table {self.opt.table} does not exist: create it, or use "
                                "--via-import s3://bucket/prefix to create it by an import") from None
            raise
        if self.opt.via_import:
            raise PushError(f"DynamoDB table {self.opt.table} already exists; --via-import creates a new table "
                            "(push without --via-import to write into it)")
        schema = sorted(table["KeySchema"], key=lambda k: k["KeyType"] != "HASH")
        types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
        return [k["AttributeName"] for k in schema], types

    # -- one run -----------------------------------------------------------------------
    def run(self) -> PushResult:
        self.prepare()
        # One push per DynamoDB table at a time (lease.py): two at once would interleave their writes
        # and deletes, and their ledgers (push_keys, watermarks) would each miss the other's.
        from .store import Store

        region = getattr(getattr(self.dynamodb, "meta", None), "region_name", None) or "-"
        self.lease = Lease(Store(self.state.client, self.state.db), f"push:{region}/{self.opt.table}", "push",
                           what=f"DynamoDB table {self.opt.table}", doing="pushed to")
        return holding(self.lease, self._run, PushError)

    def _run(self) -> PushResult:
        opt = self.opt
        self._settle_imports()
        # the watermark and key types come from the last successful run that read by version
        # (a --retry-failed run re-reads set-aside rows only)
        previous = self.state.last_run(self.relation, opt.table, (SUCCEEDED, PARTIAL), (FULL, INCREMENTAL, IMPORT))
        mode = RETRY if opt.retry_failed else IMPORT if opt.via_import else FULL
        watermark_from = ""
        if mode == FULL and opt.version_column and not opt.full and previous and previous["watermark"]:
            if previous["version_column"] != opt.version_column or previous["version_type"] != self.version_type:
                raise UsageError(
                    f"the version column was {previous['version_column']} {previous['version_type']} at the last push "
                    f"and is {opt.version_column} {self.version_type} now: run once with --full")
            if previous["shape"] and previous["shape"] != self.shape:
                # the items not changed since would keep the old shape
                raise UsageError(f"what is pushed changed since the last push (it was: {previous['shape']}; it is: "
                                 f"{self.shape}): run once with --full, which writes every item in the new shape")
            mode, watermark_from = INCREMENTAL, previous["watermark"]
        if opt.sync_deletes and mode == INCREMENTAL and previous and previous["key_types"] != self.key_types:
            raise UsageError(f"the key columns were {previous['key_types']} at the last push and are "
                             f"{self.key_types} now: run once with --full --sync-deletes")
        watermark = self._max_version() if opt.version_column and mode != RETRY else ""
        self.result = PushResult(str(uuid.uuid4()), mode, RUNNING, self.relation, opt.table, watermark=watermark)
        self.run_row = {
            "run_id": self.result.run_id, "relation": self.relation, "target_table": opt.table, "mode": mode,
            "started_at": clock.now(), "finished_at": None, "rows_read": 0, "rows_written": 0, "rows_deleted": 0,
            "rows_set_aside": 0, "version_column": opt.version_column or "", "version_type": self.version_type,
            "watermark_from": watermark_from, "watermark": watermark, "key_types": self.key_types, "shape": self.shape,
            "import_arn": "", "status": RUNNING, "error": "",
        }
        self._save_run()
        log.info("push %s -> DynamoDB %s (%s%s), run %s", self.relation, opt.table, mode,
                 f" from {opt.version_column} >= {watermark_from}" if watermark_from else "", self.result.run_id)
        try:
            sql, params = self._select(mode, watermark_from, watermark)
            if mode == IMPORT:
                self._import(sql, params)
            else:
                self._write(sql, params)
                if mode == RETRY:
                    self._retire_gone()
                if opt.sync_deletes and mode != RETRY:
                    self._sync_deletes()
                counts = self.state.close_entries(self.result.run_id, self.relation, opt.table)
                if any(counts.values()):
                    log.info("push_quarantine: %d entries resolved, %d set aside again",
                             counts["resolved"], counts["superseded"])
                self.result.status = PARTIAL if self.result.rows_set_aside else SUCCEEDED
        except BaseException as ex:
            # an import still running stays `importing`: the next push settles it
            self.result.status = IMPORTING if isinstance(ex, ImportPending) else FAILED
            self.result.error = str(ex) or type(ex).__name__
            self._save_run()
            raise
        self._save_run()
        return self.result

    def _save_run(self) -> None:
        r = self.result
        self.run_row.update(
            rows_read=r.rows_read, rows_written=r.rows_written, rows_deleted=r.rows_deleted,
            rows_set_aside=r.rows_set_aside, status=r.status, error=r.error[:10_000], import_arn=r.import_arn,
            finished_at=None if r.status in (RUNNING, IMPORTING) else clock.now(), updated_at=clock.now(),
        )
        self.state.record_run(self.run_row)

    def _max_version(self) -> str:
        v = ident(self.opt.version_column)
        utc = ", 'UTC'" if _is_datetime(self.version_type) else ""  # (not the session's time zone: see _version_value)
        row = self.client.query(f"SELECT toString(max({v}){utc}) FROM {self.rel_sql}").result_rows[0]
        return row[0] or ""

    def _version_value(self, param: str) -> str:
        """The watermark parameter as a value of the version column's type: a date-time as the UTC
        text _max_version wrote, whatever the time zone of the session or of the column."""
        t = parse_type(self.version_type)
        if t.base_type == "DateTime64":
            return f"toDateTime64({{{param}:String}}, {int(t.scale)}, 'UTC')"
        if t.base_type == "DateTime":
            return f"toDateTime({{{param}:String}}, 'UTC')"
        return f"CAST({{{param}:String}}, {literal(self.version_type)})"

    def _select(self, mode: str, watermark_from: str, watermark: str) -> tuple[str, dict]:
        exprs = []
        for i, c in enumerate(self.columns):
            if _is_datetime(c.type):  # exact ISO text, nanoseconds included (see push_convert)
                # (aliased apart: named as the column, it would stand for the column in the key hash and
                # the WHERE clause, which would then hash and compare the text)
                exprs.append(f"toString({ident(c.name)}, 'UTC') AS _push_c{i}")
            elif (wide := _wide_decimals(c.type)) != c.type:  # read exactly, see _wide_decimals (aliased apart too)
                exprs.append(f"CAST({ident(c.name)}, {literal(wide)}) AS _push_c{i}")
            else:
                exprs.append(ident(c.name))
        exprs.append(f"{self.key_hash_sql} AS _push_key_hash")
        sql = f"SELECT {', '.join(exprs)} FROM {self.rel_sql}"
        params: dict = {}
        if mode == INCREMENTAL:
            v = ident(self.opt.version_column)
            sql += (f" WHERE ({v} >= {self._version_value('wf')} AND {v} <= {self._version_value('wt')})"
                    f" OR {v} IS NULL")
            params = {"wf": watermark_from, "wt": watermark}
        elif mode == RETRY:
            sql += (f" WHERE {self.key_hash_sql} IN (SELECT key_hash FROM {self.state.q}.push_quarantine FINAL "
                    f"WHERE target_table = {{t:String}} AND relation = {{r:String}} AND status = 'open' "
                    f"AND key_hash != '')")
            params = {"t": self.opt.table, "r": self.relation}
        elif self.opt.version_column and watermark:
            # a full read up to the watermark taken before it, and every row after it is read next time
            v = ident(self.opt.version_column)
            sql += f" WHERE {v} <= {self._version_value('wt')} OR {v} IS NULL"
            params = {"wt": watermark}
        return sql, params

    def _rows(self, sql: str, params: dict):
        """(values, key_hash) per row, streamed block by block."""
        names = [c.name for c in self.columns]
        formats = {"String": "bytes", "FixedString": "bytes", "Map": "pairs"}  # (pairs: a key held twice is seen)
        with self.client.query_row_block_stream(sql, parameters=params or None, query_formats=formats) as stream:
            for block in stream:
                for row in block:
                    h = row[-1]
                    h = h.decode() if isinstance(h, (bytes, bytearray)) else (h or KEY_HASH_NULL)
                    yield names, row[:-1], h

    def _convert(self, names, values, key_hash: str, pending_quarantine: list) -> dict | None:
        self.result.rows_read += 1
        try:
            return self.converter.convert(values)
        except Refused as ex:
            key_json = self.converter.key_json_of(values)
            self._set_aside(pending_quarantine, key_json, key_hash, row_json(names, values), str(ex))
            return None

    def _set_aside(self, pending: list, key_json: str, key_hash: str, row: str, reason: str) -> None:
        now = clock.now()
        self.result.rows_set_aside += 1
        if self.result.rows_set_aside <= 20:
            log.warning("set aside %s: %s", key_json or row[:200], reason)
        pending.append([str(uuid.uuid4()), self.result.run_id, self.relation, self.opt.table, key_json, key_hash,
                        row, reason, "open", "", now, now])

    def _write(self, sql: str, params: dict) -> None:
        limiter = RateLimiter(self.opt.max_write_rate, sleep=self.sleep)
        pool = WriterPool(self.dynamodb, self.opt.table, self.key, self.opt.writers, limiter, sleep=self.sleep)
        keys_pending: list[list] = []
        quarantine_pending: list[list] = []
        chunk: list[Request] = []
        try:
            for names, values, key_hash in self._rows(sql, params):
                item = self._convert(names, values, key_hash, quarantine_pending)
                if item is not None:
                    chunk.append(Request(item_json(self.converter.key_of(item)), key_hash, item=item))
                if self.result.rows_read % 1000 == 0:
                    self._submit(pool, chunk)
                    self._collect(pool.drain(), keys_pending, quarantine_pending)
                    self._flush_state(keys_pending, quarantine_pending)
            self._submit(pool, chunk)
            self._collect(pool.finish(), keys_pending, quarantine_pending)
        except BaseException:
            pool.abort()
            self._collect(pool.drain(), keys_pending, quarantine_pending)
            self._flush_state(keys_pending, quarantine_pending, force=True)
            raise
        self._flush_state(keys_pending, quarantine_pending, force=True)
        log.info("%s: %d rows read, %d items written, %d set aside", self.opt.table, self.result.rows_read,
                 self.result.rows_written, self.result.rows_set_aside)

    def _submit(self, pool, chunk: list[Request]) -> None:
        """Hand a chunk of items to the writers, once their keys are recorded in push_keys as sent
        (deleted = 2): a run killed before it confirms them leaves no item that --sync-deletes does
        not know of.  (Deleting an item that was never written changes nothing.)"""
        if not chunk:
            return
        now = clock.now()
        self.state.insert_keys([[self.opt.table, r.key_json, r.key_hash, self.relation, self.result.run_id, SENT, now]
                                for r in chunk])
        for r in chunk:
            pool.submit(r)
            self.lease.renew()  # (a write only once RENEW_SECONDS have passed): a slow chunk keeps the lease
        chunk.clear()

    def _collect(self, outcomes: list[BatchOutcome], keys_pending: list, quarantine_pending: list) -> None:
        for outcome in outcomes:
            now = clock.now()
            for r in outcome.done:
                deleted = 1 if r.item is None else 0
                if deleted:
                    self.result.rows_deleted += 1
                else:
                    self.result.rows_written += 1
                keys_pending.append([self.opt.table, r.key_json, r.key_hash, self.relation, self.result.run_id,
                                     deleted, now])
            for r, reason in outcome.refused:
                self._set_aside(quarantine_pending, r.key_json, r.key_hash,
                                item_json(r.item if r.item is not None else r.key), reason)

    def _flush_state(self, keys_pending: list, quarantine_pending: list, *, force: bool = False) -> None:
        if keys_pending and (force or len(keys_pending) >= STATE_FLUSH_ROWS):
            self.state.insert_keys(keys_pending)
            keys_pending.clear()
        if quarantine_pending and (force or len(quarantine_pending) >= 1000):
            self.state.insert_quarantine(quarantine_pending)
            quarantine_pending.clear()
        if force or self.result.rows_read % 100_000 == 0:
            self._save_run()
        self.lease.renew()  # (a write only once RENEW_SECONDS have passed)

    def _sync_deletes(self) -> None:
        """Delete the items this relation pushed before whose keys are no longer in it."""
        import json

        q = self.state.q
        if not self.opt.allow_empty and not self.client.query(f"SELECT 1 FROM {self.rel_sql} LIMIT 1").result_rows:
            live = self.state.client.query(
                f"SELECT count() FROM {q}.push_keys FINAL WHERE target_table = {{t:String}} AND relation = {{r:String}} "
                f"AND deleted IN (0, {SENT})", parameters={"t": self.opt.table, "r": self.relation}).result_rows[0][0]
            if live:
                raise PushError(f"{self.relation} is empty: --sync-deletes would delete all {live:,} items it pushed to "
                                f"{self.opt.table}. Nothing was deleted; if the relation is meant to be empty, rerun "
                                "with --allow-empty")
        # (a row this run set aside is in the relation, but its key's hash in push_keys is from an earlier
        # run, which differs after a key type change: its key is kept by its key_json)
        sql = (f"SELECT key_json, key_hash FROM {q}.push_keys FINAL WHERE target_table = {{t:String}} "
               f"AND relation = {{r:String}} AND deleted IN (0, {SENT}) AND key_hash NOT IN "
               f"(SELECT {self.key_hash_sql} FROM {self.rel_sql} WHERE {self.key_hash_sql} IS NOT NULL) "
               f"AND key_json NOT IN (SELECT key_json FROM {q}.push_quarantine WHERE target_table = {{t:String}} "
               f"AND relation = {{r:String}} AND run_id = {{run:String}} AND key_json != '')")
        limiter = RateLimiter(self.opt.max_write_rate, sleep=self.sleep)
        pool = WriterPool(self.dynamodb, self.opt.table, self.key, self.opt.writers, limiter, sleep=self.sleep)
        keys_pending: list[list] = []
        quarantine_pending: list[list] = []
        before = self.result.rows_deleted
        try:
            params = {"t": self.opt.table, "r": self.relation, "run": self.result.run_id}
            with self.client.query_row_block_stream(sql, parameters=params) as s:
                for block in s:
                    for key_json, key_hash in block:
                        key = _key_from_json(json.loads(key_json))
                        pool.submit(Request(key_json, key_hash, key=key))
                        self.lease.renew()  # a block of keys can take longer than the lease under --max-write-rate
                    self._collect(pool.drain(), keys_pending, quarantine_pending)
                    self._flush_state(keys_pending, quarantine_pending)
            self._collect(pool.finish(), keys_pending, quarantine_pending)
        except BaseException:
            pool.abort()
            raise
        finally:
            self._flush_state(keys_pending, quarantine_pending, force=True)
        log.info("%s: %d items deleted (keys no longer in %s)", self.opt.table, self.result.rows_deleted - before,
                 self.relation)

    def _retire_gone(self) -> None:
        """--retry-failed: open entries whose key is no longer in the relation are closed as gone."""
        q = self.state.q
        self.state.client.command(
            f"INSERT INTO {q}.push_quarantine ({', '.join(QUARANTINE_COLUMNS)}) "
            f"SELECT entry_id, run_id, relation, target_table, key_json, key_hash, row_json, reason, 'gone', "
            f"{{run:String}}, quarantined_at, now64(6) FROM {q}.push_quarantine FINAL "
            f"WHERE target_table = {{t:String}} AND relation = {{r:String}} AND status = 'open' "
            f"AND run_id != {{run:String}} AND key_hash != '' AND key_hash NOT IN "
            f"(SELECT {self.key_hash_sql} FROM {self.rel_sql} WHERE {self.key_hash_sql} IS NOT NULL)",
            parameters={"t": self.opt.table, "r": self.relation, "run": self.result.run_id},
        )
        left = self.state.client.query(
            f"SELECT count() FROM {q}.push_quarantine FINAL WHERE target_table = {{t:String}} "
            f"AND relation = {{r:String}} AND status = 'open' AND key_hash = ''",
            parameters={"t": self.opt.table, "r": self.relation},
        ).result_rows[0][0]
        if left:
            log.warning("%d set-aside row(s) have no key to re-read them by (their key was NULL); fix them in the "
                        "model and push again", left)

    # -- ImportTable -----------------------------------------------------------------------
    def _import(self, sql: str, params: dict) -> None:
        bucket, prefix = _parse_s3(self.opt.via_import)
        prefix = f"{prefix.rstrip('/')}/{self.result.run_id}/" if prefix else f"{self.result.run_id}/"
        s3 = self.s3
        if s3 is None:
            import boto3

            s3 = boto3.client("s3")
        keys_pending: list[list] = []
        quarantine_pending: list[list] = []
        part, lines, files = 0, 0, 0
        tmp = None
        gz = None

        def close_file():
            nonlocal gz, tmp, files
            if gz is None:
                return
            gz.close()
            tmp.close()
            key = f"{prefix}data-{part:05d}.json.gz"
            s3.upload_file(tmp.name, bucket, key)
            os.unlink(tmp.name)
            files += 1
            gz = tmp = None

        try:
            for names, values, key_hash in self._rows(sql, params):
                item = self._convert(names, values, key_hash, quarantine_pending)
                if item is None:
                    continue
                if gz is None:
                    part += 1
                    tmp = tempfile.NamedTemporaryFile(prefix="dynamodb-cdc-import-", suffix=".json.gz", delete=False)
                    gz = gzip.GzipFile(fileobj=tmp, mode="wb", mtime=0)
                    lines = 0
                gz.write(('{"Item":' + item_json(item) + "}\n").encode())
                lines += 1
                self.result.rows_written += 1
                keys_pending.append([self.opt.table, item_json(self.converter.key_of(item)), key_hash,
                                     self.relation, self.result.run_id, 0, clock.now()])
                if lines >= self.opt.import_file_rows:
                    close_file()
                self._flush_state(keys_pending, quarantine_pending)
            close_file()
        finally:
            if tmp is not None:
                tmp.close()
                os.unlink(tmp.name)
            self._flush_state(keys_pending, quarantine_pending, force=True)
        if not files:
            raise PushError(f"{self.relation} has no row to import; ImportTable needs at least one item "
                            "(create the table and push without --via-import)")
        attrs = [{"AttributeName": k, "AttributeType": self.converter.key_types[k]} for k in self.key]
        schema = [{"AttributeName": k, "KeyType": kt} for k, kt in zip(self.key, ("HASH", "RANGE"))]
        response = self.dynamodb.import_table(
            ClientToken=self.result.run_id,
            S3BucketSource={"S3Bucket": bucket, "S3KeyPrefix": prefix},
            InputFormat="DYNAMODB_JSON",
            InputCompressionType="GZIP",
            TableCreationParameters={"TableName": self.opt.table, "AttributeDefinitions": attrs,
                                     "KeySchema": schema, "BillingMode": "PAY_PER_REQUEST"},
        )
        self.result.import_arn = response["ImportTableDescription"]["ImportArn"]
        self.result.status = IMPORTING
        self._save_run()
        log.info("ImportTable %s: %d items in %d file(s) under s3://%s/%s", self.result.import_arn,
                 self.result.rows_written, files, bucket, prefix)
        description = self._wait_import(self.result.import_arn)
        self._finish_import(description)

    def _wait_import(self, arn: str) -> dict:
        deadline = time.monotonic() + self.opt.import_timeout
        while True:
            d = self.dynamodb.describe_import(ImportArn=arn)["ImportTableDescription"]
            if d["ImportStatus"] not in ("IN_PROGRESS", "CANCELLING"):
                return d
            if time.monotonic() > deadline:
                raise ImportPending(f"ImportTable {arn} is still {d['ImportStatus']} after "
                                    f"{self.opt.import_timeout:.0f} s; the next push checks it again before writing")
            self.sleep(self.opt.poll_seconds)
            self.lease.renew()

    def _finish_import(self, d: dict) -> None:
        status, errors = d["ImportStatus"], int(d.get("ErrorCount") or 0)
        if status == "COMPLETED" and errors == 0:
            self.result.status = PARTIAL if self.result.rows_set_aside else SUCCEEDED
            log.info("ImportTable %s completed: %s items imported", d["ImportArn"], d.get("ImportedItemCount"))
            return
        raise PushError(f"ImportTable {d['ImportArn']} ended {status} with {errors} error(s): "
                        f"{d.get('FailureCode') or ''} {d.get('FailureMessage') or ''}".rstrip()
                        + "; the next push of this relation writes every row (no watermark was kept)")

    def _settle_imports(self) -> None:
        """An import left running by an earlier run: settle it before deciding what to read."""
        pending = self.state.last_run(self.relation, self.opt.table, (IMPORTING,))
        if not pending or not pending["import_arn"]:
            return
        d = self.dynamodb.describe_import(ImportArn=pending["import_arn"])["ImportTableDescription"]
        if d["ImportStatus"] in ("IN_PROGRESS", "CANCELLING"):
            raise PushError(f"ImportTable {pending['import_arn']} (run {pending['run_id']}) is still "
                            f"{d['ImportStatus']}; push again once it completes")
        ok = d["ImportStatus"] == "COMPLETED" and not int(d.get("ErrorCount") or 0)
        status = (PARTIAL if pending["rows_set_aside"] else SUCCEEDED) if ok else FAILED
        error = "" if ok else f"ImportTable ended {d['ImportStatus']}: {d.get('FailureMessage') or ''}"
        self.state.record_run({**pending, "status": status, "error": error, "finished_at": clock.now(),
                               "updated_at": clock.now()})
        log.info("ImportTable %s of run %s: %s", pending["import_arn"], pending["run_id"], d["ImportStatus"])


# -- the YAML declaration: a dbt exposure -----------------------------------------------------

DECLARATION_KEYS = {"table", "key", "version_column", "sync_deletes", "columns", "exclude", "sets", "binary",
                    "nulls", "max_write_rate", "writers", "model"}


def declaration_from_manifest(manifest: dict, exposure: str) -> dict:
    """The push declared on a dbt exposure (``meta.dynamodb_push``), with ``relation`` set to the
    ``schema.alias`` of the model it depends on.  Read from dbt's target/manifest.json."""
    found = [e for e in manifest.get("exposures", {}).values() if e.get("name") == exposure]
    if not found:
        disabled = [e for group in manifest.get("disabled", {}).values() for e in group
                    if e.get("resource_type") == "exposure" and e.get("name") == exposure]
        why = " (it is disabled)" if disabled else ""
        raise UsageError(f"no exposure named {exposure} in the dbt manifest{why}; run dbt parse (or build) first")
    node = found[0]
    meta = (node.get("config") or {}).get("meta") or node.get("meta") or {}
    declared = meta.get("dynamodb_push")
    if not isinstance(declared, dict):
        raise UsageError(f"exposure {exposure} has no meta.dynamodb_push block (see README: Push a model back to DynamoDB)")
    unknown = sorted(set(declared) - DECLARATION_KEYS)
    if unknown:
        raise UsageError(f"exposure {exposure}: unknown meta.dynamodb_push key(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(DECLARATION_KEYS))}")
    models = [n for n in node.get("depends_on", {}).get("nodes", []) if n.startswith(("model.", "snapshot.", "seed."))]
    if declared.get("model"):
        models = [n for n in models if n.split(".")[-1] == declared["model"]]
    if len(models) != 1:
        raise UsageError(f"exposure {exposure} depends on {len(models)} models ({', '.join(models) or 'none'}); "
                         "name the one to push with meta.dynamodb_push.model")
    model = manifest["nodes"][models[0]]
    out = {k: v for k, v in declared.items() if k != "model"}
    out["relation"] = f"{model['schema']}.{model.get('alias') or model['name']}"
    for name in ("key", "columns", "exclude", "sets", "binary"):
        if isinstance(out.get(name), str):
            out[name] = [x.strip() for x in out[name].split(",") if x.strip()]
    if "table" not in out:
        raise UsageError(f"exposure {exposure}: meta.dynamodb_push needs table (the DynamoDB table)")
    return out


def _key_from_json(doc: dict) -> dict:
    import base64

    out = {}
    for name, av in doc.items():
        (tag, v), = av.items()
        out[name] = {tag: base64.b64decode(v) if tag == "B" else v}
    return out


def _parse_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise UsageError(f"--via-import needs s3://bucket/prefix, not {uri}")
    bucket, _, prefix = uri[5:].partition("/")
    if not bucket:
        raise UsageError(f"--via-import needs s3://bucket/prefix, not {uri}")
    return bucket, prefix


def dynamodb_client():
    """A DynamoDB client whose throttling retries are left to write_batch (one budget, one backoff)."""
    import boto3
    from botocore.config import Config

    return boto3.client("dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 2},
                                                  max_pool_connections=32))


def push(client, state_client, dynamodb, raw_database: str, options: PushOptions, *, s3=None,
         sleep: Callable[[float], None] = time.sleep) -> PushResult:
    """Run one push; see the module docstring."""
    return Pusher(client, state_client, dynamodb, raw_database, options, s3=s3, sleep=sleep).run()


__all__ = ["PushOptions", "PushResult", "PushError", "push", "write_batch", "RateLimiter", "UnsupportedColumn",
           "dynamodb_client"]
