"""The shard-reading core shared by ``consume-kinesis`` and ``consume-streams``.

A source (``kinesis.KinesisSource``, ``dynamodb_streams.DynamoDBStreamsSource``)
knows one AWS API: it lists shards, opens iterators and returns pages of
records as received.  This module decides everything else, mostly in pure
functions that the unit tests exercise without AWS:

- which shards may be read (a child only once its parents are read to their
  end, so an item's changes land in order across a reshard), in what order,
  and where each one starts (``iterator_args``);
- when a shard is finished (closed and read to its end) or caught up;
- batching by rows, bytes and age, and backoff with full jitter for throttling
  and network errors; every other AWS error stops the run at once with a
  message naming the stream and shard.

Checkpoints follow the rows they cover: a batch is inserted into ClickHouse
first, then one checkpoint row per shard it touched.  A run that dies between
the two re-reads that batch on the next run (duplicates in the raw table, which
the dbt models collapse by key and version; never a gap).  Batches land in one
background thread, one at a time and in order, while the next pages are read:
at most one batch is landing and one filling.
"""

from __future__ import annotations

import contextlib
import logging
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Protocol

from . import clock
from .connection import retrying
from .errors import UsageError
from .lease import Lease, holding

log = logging.getLogger(__name__)

TRIM_HORIZON, LATEST, AT_TIMESTAMP = "TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"
AFTER_SEQUENCE_NUMBER, AT_SEQUENCE_NUMBER = "AFTER_SEQUENCE_NUMBER", "AT_SEQUENCE_NUMBER"
# Kinesis: a shard read to its tip when its GetRecords call was sent has every later record arriving
# after that time, less this (a record put just before may not be readable yet) ...
TIP_VISIBILITY = timedelta(minutes=1)
# ... and a checkpoint whose record is gone lost nothing only when that time is at least this much
# inside the retention period (trimming is not to the second; hosts' clocks differ)
TRIM_MARGIN = timedelta(minutes=10)
CAUGHT_UP_REFRESH = timedelta(minutes=5)  # --follow: a quiet shard's caught_up_at is written this often

MAX_ATTEMPTS = 10  # per AWS call, for throttling and network errors
MAX_EXPIRATIONS = 3  # expired iterators in a row on one shard before giving up
TRIMMED_CODE = "TrimmedDataAccessException"  # an iterator asked for records past the retention period
BACKOFF_BASE = 0.1  # seconds; attempt n waits up to min(cap, base * 2**n)
BACKOFF_CAP = 10.0


COMMANDS = {"kinesis": "consume-kinesis", "dynamodb_streams": "consume-streams"}  # for the lease


class StreamError(RuntimeError):
    """The stream cannot be read (missing, access denied, throttled for too long...); one line."""


class _Stopped(Exception):
    """A stop signal arrived while an AWS call was waiting to be retried: stop as on any stop."""


# -- what the sources return ----------------------------------------------------


@dataclass(frozen=True)
class Shard:
    shard_id: str
    parent_shard_id: str = ""
    adjacent_parent_shard_id: str = ""
    ending_sequence_number: str = ""  # set once the shard is closed (resharded)

    @property
    def closed(self) -> bool:
        return bool(self.ending_sequence_number)

    @property
    def parents(self) -> tuple[str, ...]:
        return tuple(p for p in (self.parent_shard_id, self.adjacent_parent_shard_id) if p)


@dataclass(frozen=True)
class Record:
    """One change record as received; ``data`` is never parsed by the loader."""

    shard_id: str
    sequence_number: str
    arrival_time: datetime
    partition_key: str
    table_name: str  # '' for Kinesis: ClickHouse takes tableName from the data
    data: bytes


@dataclass(frozen=True)
class Page:
    records: list[Record]
    next_iterator: str | None  # None: a closed shard read to its end
    at_tip: bool  # Kinesis: MillisBehindLatest == 0; DynamoDB Streams: an empty page
    millis_behind: int | None = None  # Kinesis: MillisBehindLatest of this page; DynamoDB Streams: unknown


@dataclass(frozen=True)
class Checkpoint:
    shard_id: str
    sequence_number: str = ""  # last sequence number whose record is in ClickHouse; '' for none yet
    finished: bool = False
    parent_shard_id: str = ""
    adjacent_parent_shard_id: str = ""
    records: int = 0
    millis_behind_latest: int | None = None  # Kinesis: how far the last page read was behind the shard's tip
    # Kinesis: every record after sequence_number arrived after this time (UTC, the server's clock, clock.py):
    # the shard was read to its tip then (less a minute).  None: never seen at its tip.
    caught_up_at: datetime | None = None


class Source(Protocol):
    name: str  # 'kinesis' or 'dynamodb_streams' (the `source` column)
    stream_arn: str
    label: str  # for messages: "Kinesis stream <arn>"
    sequence_field: str  # GetShardIterator's sequence-number argument
    retriable_codes: frozenset[str]
    expired_code: str
    max_page_records: int
    closed_empty_tip_ends: bool  # see shard_ended
    empty_pages_at_tip: int  # empty pages in a row that mean an open shard is caught up (0: Page.at_tip says)
    # Resume AT the checkpoint's record and check that it comes back first (Kinesis: see _verify),
    # rather than AFTER it; needs retention_hours().
    verifies_checkpoint: bool

    def list_shards(self) -> list[Shard]: ...

    def get_iterator(self, args: dict) -> str: ...

    def get_records(self, shard_id: str, iterator: str, limit: int) -> Page: ...


# -- pure decisions -------------------------------------------------------------


def seq(value: str) -> int:
    """A sequence number as an integer: they are decimal strings of up to ~56 digits, and
    '9' < '10' only as numbers."""
    if not value or not value.isdigit():
        raise StreamError(f"unexpected sequence number {value!r} (expected decimal digits)")
    return int(value)


@dataclass(frozen=True)
class StartPosition:
    kind: str = TRIM_HORIZON  # TRIM_HORIZON, LATEST or AT_TIMESTAMP
    timestamp: datetime | None = None

    @classmethod
    def parse(cls, name: str, timestamp: str | None = None) -> StartPosition:
        kind = name.upper()
        if kind not in (TRIM_HORIZON, LATEST, AT_TIMESTAMP):
            raise UsageError(f"unknown start position {name!r}: use trim_horizon, latest or at_timestamp")
        if kind == AT_TIMESTAMP:
            if not timestamp:
                raise UsageError("--start-position at_timestamp needs --start-timestamp (ISO 8601, e.g. 2026-01-02T03:04:05Z)")
            return cls(kind, parse_timestamp(timestamp))
        if timestamp:
            raise UsageError("--start-timestamp goes with --start-position at_timestamp")
        return cls(kind)

    def describe(self) -> str:
        return f"{self.kind} {self.timestamp.isoformat()}" if self.timestamp else self.kind


def parse_timestamp(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(f"--start-timestamp {text!r} is not an ISO 8601 time (e.g. 2026-01-02T03:04:05Z)") from None
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def start_position(checkpoint: Checkpoint | None, configured: StartPosition, *, first_contact: bool) -> StartPosition:
    """Where a shard with nothing landed yet starts.

    The configured position applies when the consumer first reads a stream (it
    then writes a checkpoint row for every shard it saw).  A shard with no row
    at all appeared later, from a reshard: all of it is newer than what was
    read, so it starts at TRIM_HORIZON.  A shard first read at ``latest`` in an
    earlier run that has landed nothing since also starts at TRIM_HORIZON, since
    a second LATEST would skip what arrived between the runs.
    """
    if first_contact:
        return configured
    if checkpoint is None or configured.kind == LATEST:
        return StartPosition(TRIM_HORIZON)
    return configured


def iterator_args(
    shard: Shard, checkpoint: Checkpoint | None, start: StartPosition, *, sequence_field: str = "StartingSequenceNumber"
) -> dict:
    """GetShardIterator arguments (without the stream): after the checkpoint when there is one,
    else ``start``.  ``sequence_field`` is StartingSequenceNumber (Kinesis) or SequenceNumber
    (DynamoDB Streams)."""
    args: dict = {"ShardId": shard.shard_id}
    if checkpoint is not None and checkpoint.sequence_number:
        args["ShardIteratorType"] = AFTER_SEQUENCE_NUMBER
        args[sequence_field] = checkpoint.sequence_number
        return args
    args["ShardIteratorType"] = start.kind
    if start.kind == AT_TIMESTAMP:
        args["Timestamp"] = start.timestamp
    return args


def shard_order(shards: Iterable[Shard]) -> list[Shard]:
    """Parents (and adjacent parents) before their children, otherwise by shard id."""
    by_id = {s.shard_id: s for s in shards}
    out: list[Shard] = []
    placed: set[str] = set()

    def place(shard: Shard, path: tuple[str, ...]) -> None:
        if shard.shard_id in placed:
            return
        for p in shard.parents:
            if p in by_id and p not in path:  # a cycle would be AWS's bug; do not loop on it
                place(by_id[p], path + (shard.shard_id,))
        placed.add(shard.shard_id)
        out.append(shard)

    for shard_id in sorted(by_id):
        place(by_id[shard_id], ())
    return out


def readable(shard: Shard, listed: set[str], done: set[str]) -> bool:
    """A shard may be read once each parent is read to its end.  A parent that is no longer
    listed has expired (past the retention period) and cannot hold it back."""
    return all(p in done or p not in listed for p in shard.parents)


def shard_ended(shard: Shard, page: Page, last_read: int | None, *, closed_empty_tip_ends: bool = False) -> bool:
    """A shard is read to its end when GetRecords returns no next iterator (AWS's signal), or
    when it is closed and the record at its ending sequence number has been read.

    ``closed_empty_tip_ends`` (Kinesis): a closed shard whose page is empty at the tip of the
    stream has nothing more to give.  moto never returns a null iterator for closed shards.
    """
    if page.next_iterator is None:
        return True
    if not shard.closed:
        return False
    if last_read is not None and last_read >= seq(shard.ending_sequence_number):
        return True
    return closed_empty_tip_ends and not page.records and page.at_tip


@dataclass(frozen=True)
class BatchLimits:
    rows: int = 100_000
    bytes: int = 20 << 20
    seconds: float = 5.0

    def __post_init__(self):
        if self.rows < 1 or self.bytes < 1 or self.seconds < 0:
            raise UsageError("--batch-rows and --batch-bytes must be at least 1 and --batch-seconds at least 0")


def should_flush(rows: int, size: int, age: float, limits: BatchLimits) -> bool:
    """Flush when any limit is reached (rows, bytes, or the age of the oldest pending item)."""
    return rows >= limits.rows or size >= limits.bytes or age >= limits.seconds


def backoff_delay(attempt: int, *, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP,
                  rand: Callable[[], float] = random.random) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt))."""
    return rand() * min(cap, base * (2 ** min(attempt, 30)))


def stream_clients(*services: str) -> tuple:
    """boto3 clients of ``services`` whose retries are left to the consumer (one policy, bounded,
    logged: ``_Consumer._call``) and whose timestamps are read straight into UTC (``utc_timestamp``)."""
    import boto3
    import botocore.session
    from botocore.config import Config

    session = botocore.session.get_session()
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=utc_timestamp)
    config = Config(retries={"mode": "standard", "max_attempts": 1})
    aws = boto3.session.Session(botocore_session=session)
    return tuple(aws.client(service, config=config) for service in services)


def utc_timestamp(value) -> datetime:
    """A timestamp of a response as an aware UTC datetime.  Kinesis sends epoch seconds; botocore's
    default parser turns each into local time through dateutil, which took half of the client's
    CPU time on a page of 10,000 records (the consumer then converted it back to UTC)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, timezone.utc)
    from botocore.utils import parse_timestamp

    return parse_timestamp(value).astimezone(timezone.utc)


def plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def error_code(ex: BaseException) -> str | None:
    response = getattr(ex, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


RETRY, EXPIRED, FATAL = "retry", "expired", "fatal"


def classify(ex: BaseException, retriable_codes: frozenset[str], expired_code: str) -> str:
    """RETRY for throttling and network errors, EXPIRED for an expired shard iterator, FATAL for
    everything else (a missing stream, access denied, bad arguments...): never retry blindly."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(ex, ClientError):
        code = error_code(ex)
        if code == expired_code:
            return EXPIRED
        return RETRY if code in retriable_codes else FATAL
    return RETRY if isinstance(ex, (ConnectionError, HTTPClientError)) else FATAL


def fatal_message(ex: BaseException, what: str) -> str:
    code = error_code(ex)
    message = getattr(ex, "response", {}).get("Error", {}).get("Message", "") if code else str(ex)
    hint = ""
    if code == "ResourceNotFoundException":
        hint = " (check the name, the region and AWS_ENDPOINT_URL)"
    elif code and ("AccessDenied" in code or code in ("UnrecognizedClientException", "ExpiredTokenException")):
        hint = " (check the credentials and the IAM policy)"
    return f"{what}: {code or type(ex).__name__}: {message}{hint}".rstrip(": ")


# -- the consumer ---------------------------------------------------------------


@dataclass
class ConsumeOptions:
    start: StartPosition = field(default_factory=StartPosition)
    follow: bool = False  # False: stop once every shard is caught up (--until-caught-up)
    limits: BatchLimits = field(default_factory=BatchLimits)
    poll_interval: float = 0.2  # between the starts of two GetRecords on one shard (Kinesis allows 5 per second)
    idle_interval: float = 1.0  # --follow: after an empty page from an open shard
    relist_interval: float = 60.0  # --follow: how often to look for new shards
    readers: int = 4  # shards whose GetRecords run at once (--readers); 1 reads them one after the other

    def __post_init__(self):
        if self.readers < 1:
            raise UsageError("--readers must be at least 1")
        if not self.poll_interval >= 0:
            raise UsageError("--poll-seconds must be 0 or more")


@dataclass
class ConsumeResult:
    records: int = 0
    quarantined: int = 0
    shards_read: int = 0
    shards_finished: int = 0
    waiting: list[str] = field(default_factory=list)  # shards left for a later run (parents not finished)
    losses: list[str] = field(default_factory=list)  # records the stream dropped before they were read


@dataclass
class _ShardState:
    shard: Shard
    checkpoint: Checkpoint | None
    start_args: dict
    iterator: str | None = None
    last_read: int | None = None  # sequence number of the last record read (in the batch or landed)
    last_read_text: str = ""
    ended: bool = False  # read to its end; recorded as finished at the next flush
    caught_up: bool = False
    due_at: float = 0.0
    asked_at: float = 0.0  # when its last GetRecords started
    landed: int = 0  # records landed from this shard in this run
    dirty: bool = False  # a checkpoint row is owed at the next flush
    expirations: int = 0  # expired iterators in a row
    empty_pages: int = 0  # empty pages in a row
    trimmed: str | None = None  # set by _open: the checkpoint its records after were trimmed
    millis_behind: int | None = None  # MillisBehindLatest of the last page read (Kinesis)
    # Kinesis: the checkpoint whose record the first page must start with (_verify); '' for a shard
    # with nothing landed yet that was read to its tip before; None: nothing to verify
    verify: str | None = None
    caught_up_at: datetime | None = None  # see Checkpoint.caught_up_at
    caught_up_saved: datetime | None = None  # the caught_up_at last written

    def __post_init__(self):
        if self.checkpoint is not None and self.checkpoint.sequence_number:
            self.last_read_text = self.checkpoint.sequence_number
            self.last_read = seq(self.last_read_text)
        if self.checkpoint is not None:
            self.caught_up_at = self.caught_up_saved = self.checkpoint.caught_up_at


def consume(source: Source, store, options: ConsumeOptions | None = None, *, stop: threading.Event | None = None,
            sleep: Callable[[float], None] | None = None) -> ConsumeResult:
    """Read every shard of ``source`` into ``store`` until caught up (or, with ``options.follow``,
    until ``stop`` is set), checkpointing after every insert."""
    return _Consumer(source, store, options or ConsumeOptions(), stop or threading.Event(), sleep).run()


class _Consumer:
    def __init__(self, source: Source, store, options: ConsumeOptions, stop: threading.Event, sleep):
        self.src = source
        self.store = store
        self.opt = options
        self.stop = stop
        self.sleep = sleep or stop.wait  # AWS backoff waits end early on a stop signal
        self.ch_sleep = sleep or time.sleep  # ClickHouse waits do not: the pending batch still lands
        self.gone: set[str] = set()  # shards found gone, their loss recorded
        self.result = ConsumeResult()
        self.states: dict[str, _ShardState] = {}
        self.shards: list[Shard] = []
        self.done: set[str] = set()  # finished in an earlier run, or ended in this one
        self.first_contact: set[str] = set()
        self.batch: list[Record] = []
        self.batch_bytes = 0
        self.batch_since: float | None = None  # when the oldest pending record or checkpoint arrived
        self.relist = False
        self.page_limit = max(1, min(source.max_page_records, options.limits.rows))
        self.pool = None  # reader threads, made when two shards are due at once
        self.lander = None  # the one thread that lands batches, in order, while reading goes on
        self.landing = None  # the Future of the batch being landed, if any
        self.retention: float | None = None  # Kinesis: the stream's retention in hours (_verify)

    # -- main loop ---------------------------------------------------------------
    def run(self) -> ConsumeResult:
        # One consumer per stream (lease.py): renewed as batches land, and while reading when no
        # batch is being landed (the landing thread is then the only one using ClickHouse).
        src = self.src
        self.lease = Lease(self.store, f"stream:{src.stream_arn}", COMMANDS.get(src.name, src.name),
                           what=src.label, doing="read")
        return holding(self.lease, self._run, StreamError, acquire=lambda: retrying(
            f"taking the lease on {src.label}", self.lease.acquire, sleep=self.ch_sleep))

    def _renew(self) -> None:
        retrying(f"renewing the lease on {self.src.label}", self.lease.renew, sleep=self.ch_sleep)

    def _run(self) -> ConsumeResult:
        src = self.src
        checkpoints = self.store.stream_checkpoints(src.name, src.stream_arn)
        self.done = {k for k, cp in checkpoints.items() if cp.finished}
        self._list_shards()
        if not checkpoints:
            # First contact: the start position applies to the shards seen now; a row per shard makes
            # that decision durable, so later runs read shards born after it from their beginning.
            self.first_contact = {s.shard_id for s in self.shards}
            checkpoints = {s.shard_id: Checkpoint(s.shard_id, parent_shard_id=s.parent_shard_id,
                                                  adjacent_parent_shard_id=s.adjacent_parent_shard_id)
                           for s in self.shards}
            self.store.record_checkpoints(src.name, src.stream_arn, list(checkpoints.values()))
        self.checkpoints = checkpoints
        self._record_gone()
        open_count = sum(not s.closed for s in self.shards)
        log.info("%s: %s (%d open, %d finished earlier); %s; new shards start at %s",
                 src.label, plural(len(self.shards), "shard"), open_count,
                 len(self.done & {s.shard_id for s in self.shards}),
                 "following until stopped" if self.opt.follow else "reading until caught up",
                 self.opt.start.describe() if self.first_contact else "their checkpoint or TRIM_HORIZON")
        next_relist = time.monotonic() + self.opt.relist_interval
        started = time.monotonic()
        try:
            while not self.stop.is_set():
                if self.landing is not None and self.landing.done():
                    self._landed()  # a batch that failed to land stops the run now, not at the next flush
                if self.landing is None:
                    self._renew()
                now = time.monotonic()
                if self.relist or (self.opt.follow and now >= next_relist):
                    self._list_shards()
                    self._record_gone()
                    self.relist = False
                    next_relist = now + self.opt.relist_interval
                active = self._active()
                if not active and not self.opt.follow:
                    break
                due = [s for s in active if s.due_at <= now]
                # GetRecords of up to `readers` shards run at once; their pages are applied here, in
                # shard order, one at a time (only this thread touches the batch and checkpoints).
                for group in (due[i:i + self.opt.readers] for i in range(0, len(due), self.opt.readers)):
                    for state, fetched in zip(group, self._fetch_all(group)):
                        self._apply(state, fetched)
                        if self.batch_since is not None and self._flush_due():
                            self._flush()
                        if self.stop.is_set():
                            break
                    if self.stop.is_set():
                        break
                if self.batch_since is not None and self._flush_due():
                    self._flush()
                if not due:
                    wake = min([s.due_at for s in active] + ([next_relist] if self.opt.follow else []))
                    if self.batch_since is not None:
                        wake = min(wake, self.batch_since + self.opt.limits.seconds)
                    self.stop.wait(max(0.0, wake - time.monotonic()))
        except _Stopped:
            pass  # a stop signal during an AWS retry's wait: land and checkpoint as on any stop
        except StreamError:
            self._flush(wait=True)  # what was read before the error is good: land it and checkpoint it
            raise
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)
            if self.lander is not None:
                self.lander.shutdown(wait=True)  # a batch being landed finishes (or fails) first
        self._flush(wait=True)
        if self.stop.is_set():
            log.info("%s: stopped on request; pending records landed and checkpointed", src.label)
        listed = {s.shard_id for s in self.shards}
        self.result.waiting = sorted(s.shard_id for s in self.shards
                                     if s.shard_id not in self.done and not readable(s, listed, self.done))
        # (result.records counts every record inserted, the ones the routing views set aside included)
        log.info("%s: %s landed from %s in %.1f s%s%s%s", src.label,
                 plural(self.result.records - self.result.quarantined, "record"),
                 plural(self.result.shards_read, "shard"), time.monotonic() - started,
                 f"; {plural(self.result.quarantined, 'record')} set aside in quarantine" if self.result.quarantined else "",
                 f"; {plural(self.result.shards_finished, 'closed shard')} finished" if self.result.shards_finished else "",
                 f"; {plural(len(self.result.waiting), 'shard')} wait for their parents" if self.result.waiting else "")
        return self.result

    def _active(self) -> list[_ShardState]:
        listed = {s.shard_id for s in self.shards}
        out = []
        for shard in shard_order(self.shards):
            if shard.shard_id in self.done or not readable(shard, listed, self.done):
                continue
            state = self._state(shard)
            if self.opt.follow or not state.caught_up:
                out.append(state)
        return out

    def _state(self, shard: Shard) -> _ShardState:
        state = self.states.get(shard.shard_id)
        if state is None:
            cp = self.checkpoints.get(shard.shard_id)
            start = start_position(cp, self.opt.start, first_contact=shard.shard_id in self.first_contact)
            args = iterator_args(shard, cp, start, sequence_field=self.src.sequence_field)
            state = self.states[shard.shard_id] = _ShardState(shard, cp, args)
            if self.src.verifies_checkpoint and state.last_read_text:
                state.verify = state.last_read_text
            elif self.src.verifies_checkpoint and cp is not None and cp.caught_up_at is not None:
                state.verify = ""  # nothing landed yet, but read to its tip before: see _verify
            self.result.shards_read += 1
        else:
            state.shard = shard  # a relisting may have closed it
        return state

    def _list_shards(self) -> None:
        self.shards = self._call(self.src.list_shards, f"{self.src.label}: listing shards")

    # -- reading -----------------------------------------------------------------
    def _fetch_all(self, states: list[_ShardState]) -> list[Page | None]:
        """The next page of each shard (None: its iterator expired), fetched in parallel threads
        when there are several.  A StreamError of any of them is raised here."""
        if len(states) == 1:
            return [self._fetch(states[0])]
        if self.pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(max_workers=self.opt.readers, thread_name_prefix="dynamodb-cdc-shard")
        futures = [self.pool.submit(self._fetch, state) for state in states]
        return [f.result() for f in futures]

    def _fetch(self, state: _ShardState) -> Page | None:
        """GetRecords on one shard (opening its iterator first if needed); touches only that shard's
        iterator, so shards can be fetched in parallel."""
        from botocore.exceptions import ClientError

        shard = state.shard
        where = f"{self.src.label}: shard {shard.shard_id}"
        if state.iterator is None:
            state.iterator = self._open(state, where)

        def get_records() -> Page:
            state.asked_at = time.monotonic()  # each attempt: a throttled call is retried after a wait
            return self.src.get_records(shard.shard_id, state.iterator, self.page_limit)

        try:
            return self._call(get_records, f"{where}: GetRecords")
        except ClientError:  # only an expired iterator, or one into trimmed data, gets here (see _call): reopen
            return None

    def _apply(self, state: _ShardState, page: Page | None) -> None:
        """Take a fetched page into the batch and the shard's state (this thread only)."""
        shard = state.shard
        where = f"{self.src.label}: shard {shard.shard_id}"
        if state.trimmed is not None:  # _open found the checkpoint trimmed: record the loss, go on from the oldest
            self._record_loss(shard.shard_id, state.trimmed,
                              f"records after sequence number {state.trimmed} were trimmed (past the stream's "
                              "retention) before they were read; reading went on from the oldest record kept")
            state.trimmed = None
        if page is None:  # the iterator expired
            state.expirations += 1
            if state.expirations > MAX_EXPIRATIONS:
                raise StreamError(f"{where}: the shard iterator expired {state.expirations} times in a row, even "
                                  "freshly opened; check the clock of this machine") from None
            after = f"after sequence number {state.last_read_text}" if state.last_read_text else "from its start position"
            if not state.last_read_text and state.start_args.get("ShardIteratorType") == LATEST:
                # a second LATEST would skip what arrived since the first (as start_position says of runs)
                state.start_args = {"ShardId": shard.shard_id, "ShardIteratorType": TRIM_HORIZON}
                after = "from TRIM_HORIZON (nothing was read since it was opened at LATEST)"
            log.info("%s: shard iterator expired; reopening %s", where, after)
            state.iterator = None
            return
        state.expirations = 0
        state.millis_behind = page.millis_behind
        if state.verify is not None and (page.records or page.at_tip):
            self._verify(state, page)
        fresh = []
        for record in page.records:
            number = seq(record.sequence_number)
            if state.last_read is not None and number <= state.last_read:
                continue  # already read (a reopened iterator never goes back, but never land a record twice)
            fresh.append(record)
            state.last_read, state.last_read_text = number, record.sequence_number
        if fresh:
            if self.batch_since is None:
                self.batch_since = time.monotonic()
            self.batch.extend(fresh)
            self.batch_bytes += sum(len(r.data) for r in fresh)
            state.landed += len(fresh)
            state.dirty = True
        state.iterator = page.next_iterator
        now = time.monotonic()
        if self.src.verifies_checkpoint and page.at_tip:
            # nothing after the last record read existed when this call was sent (see Checkpoint)
            state.caught_up_at = clock.now() - timedelta(seconds=now - state.asked_at) - TIP_VISIBILITY
            if state.caught_up_saved is None or state.caught_up_at - state.caught_up_saved >= CAUGHT_UP_REFRESH:
                state.dirty = True  # written at the next flush, records or not
                if self.batch_since is None:
                    self.batch_since = now
        if shard_ended(shard, page, state.last_read, closed_empty_tip_ends=self.src.closed_empty_tip_ends):
            state.ended = state.dirty = True
            self.done.add(shard.shard_id)
            self.relist = True  # its children may be new
            if self.batch_since is None:
                self.batch_since = now
            log.info("%s: closed shard read to its end (%d records this run)", where, state.landed)
            return
        # A closed shard is read to its end (a DynamoDB stream may give empty pages before records); an
        # open one is caught up at its tip: Kinesis says so, a DynamoDB stream's empty pages in a row do.
        state.empty_pages = 0 if page.records else state.empty_pages + 1
        state.caught_up = page.at_tip and not shard.closed and state.empty_pages >= self.src.empty_pages_at_tip
        if self.opt.follow and not page.records:
            state.due_at = now + self.opt.idle_interval
        else:
            # 5 calls a second per shard count from the start of each call: after a page that took
            # longer than poll_interval to arrive, the next call goes out at once.
            state.due_at = state.asked_at + self.opt.poll_interval

    def _open(self, state: _ShardState, where: str) -> str:
        """A new iterator: the start arguments, or after the last record read once there is one.
        When the records after it are trimmed (DynamoDB Streams says so), the shard goes on from
        TRIM_HORIZON and ``state.trimmed`` tells _apply to record the loss."""
        from botocore.exceptions import ClientError

        args = state.start_args
        if state.verify:  # Kinesis, resuming: at the checkpoint's own record (_verify)
            args = {"ShardId": state.shard.shard_id, "ShardIteratorType": AT_SEQUENCE_NUMBER,
                    self.src.sequence_field: state.verify}
        elif state.last_read_text:
            args = {"ShardId": state.shard.shard_id, "ShardIteratorType": AFTER_SEQUENCE_NUMBER,
                    self.src.sequence_field: state.last_read_text}
        try:
            return self._call(lambda: self.src.get_iterator(args), f"{where}: GetShardIterator")
        except ClientError as ex:
            if error_code(ex) != TRIMMED_CODE or not state.last_read_text:
                raise StreamError(fatal_message(ex, f"{where}: GetShardIterator")) from None
        state.trimmed = state.last_read_text  # (kept as the last read: nothing at or before it lands again)
        state.start_args = {"ShardId": state.shard.shard_id, "ShardIteratorType": TRIM_HORIZON}
        return self._call(lambda: self.src.get_iterator(state.start_args), f"{where}: GetShardIterator")

    def _verify(self, state: _ShardState, page: Page) -> None:
        """Kinesis, the first page with records (or at the tip) after resuming AT the checkpoint's
        record.  Kinesis does not say when records past a checkpoint were trimmed: it reads on from the
        oldest record kept.  The checkpoint's record coming back first shows nothing after it was
        trimmed.  When it is gone, records after it were lost unless every one of them arrived after
        the retention's horizon, which the shard's caught_up_at shows; else the loss is recorded."""
        checkpoint, state.verify = state.verify, None
        first = page.records[0].sequence_number if page.records else ""
        if first and checkpoint and seq(first) <= seq(checkpoint):
            return  # the checkpoint's record is still there (and is skipped: landed already)
        if self.retention is None:  # once a run: every shard with nothing landed yet comes here
            self.retention = self._call(self.src.retention_hours, f"{self.src.label}: DescribeStreamSummary")
        hours = self.retention
        horizon = clock.now() - timedelta(hours=hours)
        since = state.caught_up_at
        kept = f"the oldest record kept, {first}" if first else "the shard's tip (no record is kept)"
        if since is not None and since - TRIM_MARGIN > horizon:
            if not checkpoint:
                return  # nothing landed yet, and read to its tip since the horizon: nothing was missed
            log.info("%s: shard %s: the record at the checkpoint (%s) was trimmed, but every record after it "
                     "arrived after %s, inside the %g h retention: nothing was missed; reading goes on from %s",
                     self.src.label, state.shard.shard_id, checkpoint, since.isoformat(timespec="seconds"), hours,
                     kept)
            return
        when = (f"was last read to its tip at {since.isoformat(timespec='seconds')}" if since is not None
                else "was not read to its tip since")
        if not checkpoint:  # nothing landed yet: no record of its own to come back, only caught_up_at to go by
            self._record_loss(state.shard.shard_id, checkpoint, (
                f"nothing was landed from the shard yet and it {when}, past the stream's {hours:g} h retention: "
                f"records it received before they were read may have been trimmed; reading went on from {kept}"))
            return
        self._record_loss(state.shard.shard_id, checkpoint, (
            f"the record at the checkpoint, sequence number {checkpoint}, is gone (past the stream's {hours:g} h "
            f"retention) and the shard {when}: records after it trimmed before they were read are lost; "
            f"reading went on from {kept}"))

    def _record_gone(self) -> None:
        """A shard with a checkpoint, not read to its end, that the listing no longer has is gone past
        the stream's retention: what it held after its checkpoint was never read.  Record the loss
        and finish its checkpoint, so that it is reported once and its children go on."""
        listed = {s.shard_id for s in self.shards}
        known = {k: cp.sequence_number for k, cp in self.checkpoints.items() if not cp.finished}
        known.update({k: s.last_read_text for k, s in self.states.items()})
        gone = sorted(k for k in known if k not in listed and k not in self.done and k not in self.gone)
        if any(self.states[k].dirty for k in gone if k in self.states):
            # what was read from them waits in the batch: land it (and checkpoint it) before they are finished
            self._flush(wait=True)
        for shard_id in gone:
            after = known[shard_id]
            self._record_loss(shard_id, after, (
                f"the shard is gone (past the stream's retention) before it was read to its end: "
                f"{'its records after sequence number ' + after if after else 'any records it held'} were never read"))
            cp = self.checkpoints.get(shard_id) or Checkpoint(shard_id)
            self._landed()  # (the landing thread is the only other user of ClickHouse)
            retrying(f"finishing the checkpoint of gone shard {shard_id}", lambda: self.store.record_checkpoints(
                self.src.name, self.src.stream_arn, [Checkpoint(shard_id, after, True, cp.parent_shard_id,
                                                                cp.adjacent_parent_shard_id, cp.records)]),
                     sleep=self.ch_sleep)
            self.gone.add(shard_id)
            self.done.add(shard_id)
            self.states.pop(shard_id, None)

    def _record_loss(self, shard_id: str, after: str, reason: str) -> None:
        """An ERROR line, a row in quarantine (no payload: the records are gone), and a failed run."""
        src = self.src
        message = f"{src.label}: shard {shard_id}: {reason}"
        log.error("%s", message)
        self.result.losses.append(message)
        self._landed()
        retrying(f"recording a loss of {src.label} in quarantine", lambda: self.store.record_stream_loss(
            src.name, src.stream_arn, getattr(src, "table_name", ""), shard_id, after, reason), sleep=self.ch_sleep)

    def _call(self, fn, what: str):
        """``fn()``, retrying throttling and network errors with full-jitter backoff.  An expired
        iterator is re-raised (ClientError) for the caller; any other AWS error is a StreamError."""
        from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

        waited = 0.0
        for attempt in range(MAX_ATTEMPTS):
            try:
                return fn()
            except (ClientError, ConnectionError, HTTPClientError) as ex:
                kind = classify(ex, self.src.retriable_codes, self.src.expired_code)
                if kind == EXPIRED or error_code(ex) == TRIMMED_CODE:
                    raise  # the caller reopens the iterator
                if kind == FATAL:
                    raise StreamError(fatal_message(ex, what)) from None
                reason = error_code(ex) or type(ex).__name__
            if attempt + 1 == MAX_ATTEMPTS:
                break
            delay = backoff_delay(attempt)
            waited += delay
            log.warning("%s: %s; retrying in %.2f s (attempt %d of %d)", what, reason, delay, attempt + 2, MAX_ATTEMPTS)
            self.sleep(delay)
            if self.stop.is_set():
                raise _Stopped()
        raise StreamError(f"{what}: still {reason} after {MAX_ATTEMPTS} attempts over {waited:.1f} s; "
                          "the stream is throttled or unreachable: rerun later (checkpoints are intact)")

    # -- landing -----------------------------------------------------------------
    def _flush_due(self) -> bool:
        age = time.monotonic() - self.batch_since if self.batch_since is not None else 0.0
        return should_flush(len(self.batch), self.batch_bytes, age, self.opt.limits)

    def _flush(self, *, wait: bool = False) -> None:
        """Hand the batch and the checkpoints it owes to the landing thread, once the batch before
        it has landed (its error, if any, is raised here); with ``wait``, until this one has landed."""
        self._landed()
        owed = [s for s in self.states.values() if s.dirty]
        if not owed:
            return
        records = self.batch
        checkpoints = [
            Checkpoint(s.shard.shard_id, s.last_read_text, s.ended, s.shard.parent_shard_id,
                       s.shard.adjacent_parent_shard_id, s.landed, s.millis_behind, s.caught_up_at)
            for s in owed]
        finished = sum(s.ended for s in owed)
        for s in owed:
            s.dirty = False
            s.caught_up_saved = s.caught_up_at
        self.batch, self.batch_bytes, self.batch_since = [], 0, None
        if wait:
            self._land(records, checkpoints, finished)
            return
        if self.lander is None:
            from concurrent.futures import ThreadPoolExecutor

            self.lander = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dynamodb-cdc-land")
        self.landing = self.lander.submit(self._land, records, checkpoints, finished)

    def _landed(self) -> None:
        """Wait for the batch being landed; raise its error."""
        landing, self.landing = self.landing, None
        if landing is not None:
            landing.result()

    def _land(self, records: list[Record], checkpoints: list[Checkpoint], finished: int) -> None:
        """Insert the records, then checkpoint every shard they cover (never the other way round)."""
        src = self.src

        # While ClickHouse is unavailable each step is tried again after a wait.  An insert whose
        # answer was lost is inserted again, as after a crash between insert and checkpoint: a
        # record may land twice in stream_records, never be lost, and the changes model keeps
        # one row per change.  The checkpoints are written only once the insert has succeeded.
        if records:
            retrying(f"landing {plural(len(records), 'record')} of {src.label}",
                     lambda: self.store.insert_stream_records(src.name, src.stream_arn, records), sleep=self.ch_sleep)
        retrying(f"checkpointing {plural(len(checkpoints), 'shard')} of {src.label}",
                 lambda: self.store.record_checkpoints(src.name, src.stream_arn, checkpoints), sleep=self.ch_sleep)
        self._renew()
        self.result.shards_finished += finished
        self.result.records += len(records)
        if not records:
            return
        spans: dict[str, tuple[str, str]] = {}
        for r in records:
            lo, _ = spans.get(r.shard_id, (r.sequence_number, ""))
            spans[r.shard_id] = (lo, r.sequence_number)
        quarantined, examples = retrying(f"counting the quarantined records of {src.label}",
                                         lambda: self.store.stream_quarantine(src.name, src.stream_arn, spans),
                                         sleep=self.ch_sleep)
        log.info("%s: landed %s from %s (a batch of %s bytes)%s; checkpoints written", src.label,
                 plural(len(records) - quarantined, "record"), plural(len({r.shard_id for r in records}), "shard"),
                 f"{sum(len(r.data) for r in records):,}",
                 f"; {plural(quarantined, 'record')} set aside in quarantine" if quarantined else "")
        if quarantined:
            self.result.quarantined += quarantined
            reasons = "; ".join(f"{shard} #{number}: {error}" for shard, number, error in examples)
            log.warning("%s: %s set aside in quarantine (%s%s)", src.label, plural(quarantined, "record"), reasons,
                        "; ..." if quarantined > len(examples) else "")


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event):
    """SIGTERM and SIGINT set ``stop``: the consumer lands what it has read, checkpoints, returns."""

    def handler(signum, _frame):
        log.info("%s received: landing the pending batch and stopping", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
