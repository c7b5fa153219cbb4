"""Everything the loader writes to or reads from ClickHouse: raw rows, the ledger, export state."""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import struct
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import IO, TYPE_CHECKING

from . import clock, schema
from .connection import is_transient
from .manifest import FULL_EXPORT, DataFile, ExportSummary, ExportWindow, export_order
from .lease import HOLDER_COLUMNS, Holder, running
from .sql import ident, literal, value, values_insert
from .streams import Checkpoint, Record

if TYPE_CHECKING:
    from .s3export import Segment

log = logging.getLogger(__name__)

LINE_COLUMNS = [
    "table_name",
    "table_arn",
    "export_arn",
    "export_type",
    "export_time",
    "export_from_time",
    "data_file_key",
    "line_number",
    "line",
]

STREAM_COLUMNS = [
    "source",
    "stream_arn",
    "shard_id",
    "sequence_number",
    "arrival_time",
    "partition_key",
    "table_name",
    "data",
]

STREAM_STRUCTURE = (  # _stream_records_in, for reading a RowBinary batch
    "source String, stream_arn String, shard_id String, sequence_number String, "
    "arrival_time DateTime64(3, 'UTC'), partition_key String, table_name String, data String"
)

LOADING, LOADED, FAILED = "loading", "loaded", "failed"

# One reading stream, in file order: rowNumberInAllBlocks() is then the line's position.
SEQUENTIAL_READ = {"max_threads": 1, "max_insert_threads": 1, "input_format_parallel_parsing": 0}
# Several files in one statement (insert_files_from_s3, _read_linked): the views run side by
# side, and blocks are written at 64 MiB rather than 256.  --server-side, 1,000,000 lines of 10 files
# in one statement on 2 cores: about 2.0 s (1.9 s at 256 MiB, 2.2 s at 32) at a peak of about
# 1.1 GB (1.3 GB at 256 MiB, 0.95 GB at 32).
GROUP_READ = {"parallel_view_processing": 1, "min_insert_block_size_bytes": 64 << 20}


class ServerReadError(Exception):
    """ClickHouse could not read a data file: from S3 (the object, its bytes or S3 itself; the
    message has the source's credentials scrubbed), or a local copy (its bytes)."""


@dataclass(frozen=True)
class S3Source:
    """Where ClickHouse reads one object from, for server-side loading (--server-side)."""

    url: str
    access_key_id: str = ""
    secret_access_key: str = ""
    session_token: str = ""

    def scrub(self, text: str) -> str:
        """``text`` without the credentials (for messages and logs)."""
        for secret in (self.secret_access_key, self.session_token, self.access_key_id):
            if secret:
                text = text.replace(secret, "***")
        return text


@dataclass(frozen=True)
class FileState:
    status: str
    lines_committed: int
    lines_landed: int
    lines_quarantined: int
    error: str


@dataclass(frozen=True)
class LoadedExport:
    """An export the ledger records loaded, as a rerun reports it without reading its manifests."""
    export_arn: str
    table_name: str
    data_files: int
    lines_landed: int
    lines_quarantined: int
    sort_key: tuple  # manifest.export_order, as ExportSummary.sort_key()


class Store:
    def __init__(self, client, database: str):
        self.client = client
        self.db = database
        self.q = ident(database)
        # chDB runs in this process: it reads a batch of lines from a local file itself.
        self.embedded = type(client).__name__ == "ChdbClient"

    def ensure_schema(self) -> None:
        """The raw tables (schema.ensure), and the server's clock for the ledger's stamps (clock.align)."""
        schema.ensure(self.client, self.db)
        clock.align(self.client)

    # -- leases (lease.py) -------------------------------------------------------
    def lease_holders(self, scope: str) -> list[Holder]:
        """The unreleased holders of a lease, first acquired first, with their age by the server's clock."""
        rows = self.client.query(
            f"SELECT {HOLDER_COLUMNS} "
            f"FROM {self.q}.leases FINAL WHERE scope = {{s:String}} AND released = 0 ORDER BY acquired_at, holder",
            parameters={"s": scope},
        ).result_rows
        return [Holder.of_row(row) for row in rows]

    def take_lease(self, scope: str, holder: str, host: str, pid: int, command: str) -> None:
        self.client.command(
            f"INSERT INTO {self.q}.leases (scope, holder, host, pid, command, acquired_at, renewed_at, released) "
            f"SELECT {literal(scope)}, {literal(holder)}, {literal(host)}, {int(pid)}, {literal(command)}, "
            "now64(6), now64(6), 0"
        )

    def _lease_row(self, scope: str, holder: str, released: int) -> None:
        """A newer version of a holder's row: renewed now, released or not, acquired_at kept."""
        self.client.command(
            f"INSERT INTO {self.q}.leases (scope, holder, host, pid, command, acquired_at, renewed_at, released) "
            f"SELECT scope, holder, host, pid, command, acquired_at, greatest(now64(6), renewed_at + toIntervalMicrosecond(1)), "
            f"{int(released)} FROM {self.q}.leases FINAL WHERE scope = {literal(scope)} AND holder = {literal(holder)}"
        )

    def renew_lease(self, scope: str, holder: str) -> None:
        self._lease_row(scope, holder, 0)

    def release_lease(self, scope: str, holder: str) -> None:
        self._lease_row(scope, holder, 1)

    # -- exports ---------------------------------------------------------------
    def record_export(self, summary: ExportSummary, *, s3_uri: str, data_files: int, status: str, error: str = "") -> None:
        """An export's row, stamped with the server's time (after its previous row's): the changes model
        compares updated_at with the raw rows' _ingested_at (now64 of the server), and gives a snapshot's
        delete rows that time as theirs, so a loader clock ahead or behind the server's would make it
        skip rows or miss a snapshot."""
        columns = ["export_arn", "table_name", "table_arn", "export_type", "export_time", "export_from_time",
                   "export_to_time", "output_view", "s3_uri", "manifest_item_count", "data_files", "status", "error"]
        values = [summary.export_arn, summary.table_name, summary.table_arn, summary.export_type,
                  summary.point_in_time, summary.export_from_time, summary.export_to_time,
                  summary.output_view or "", s3_uri, summary.item_count, data_files, status, error]
        self.client.command(
            f"INSERT INTO {self.q}.exports ({', '.join(ident(c) for c in columns)}, updated_at) "
            f"SELECT {', '.join(value(v) for v in values)}, greatest(now64(6), (SELECT max(updated_at) FROM "
            f"{self.q}.exports WHERE export_arn = {literal(summary.export_arn)}) + toIntervalMicrosecond(1))"
        )

    def loaded_exports(self) -> dict[str, LoadedExport]:
        """{s3 URI of manifest-summary.json: its export} of every export recorded loaded: a rerun need
        not read their manifests again."""
        rows = self.client.query(
            f"SELECT e.s3_uri, e.export_arn, e.table_name, e.data_files, f.landed, f.quarantined, e.export_time, "
            f"e.export_from_time "
            f"FROM (SELECT s3_uri, export_arn, table_name, data_files, export_time, export_from_time "
            f"FROM {self.q}.exports FINAL "
            f"WHERE status = 'loaded') AS e "
            f"LEFT JOIN (SELECT export_arn, sum(lines_landed) AS landed, sum(lines_quarantined) AS quarantined "
            f"FROM {self.q}.export_files FINAL WHERE status = 'loaded' GROUP BY export_arn) AS f "
            f"ON e.export_arn = f.export_arn").result_rows
        return {uri: LoadedExport(arn, table, int(files), int(landed or 0), int(quarantined or 0),
                                  export_order(arn, _utc(at), _utc(start)))
                for uri, arn, table, files, landed, quarantined, at, start in rows}

    def export_status(self, export_arn: str) -> str | None:
        """The export's status in the ledger (loading, loaded, failed), or None if it has no row."""
        rows = self.client.query(
            f"SELECT status FROM {self.q}.exports FINAL WHERE export_arn = {{a:String}}", parameters={"a": export_arn}
        ).result_rows
        return rows[0][0] if rows else None

    def loaded_windows(self, table_name: str) -> list[ExportWindow]:
        """Every completely loaded export of a table, for window coverage checks."""
        return [w for w, _ in self._windows(table_name, "status = 'loaded'")]

    def unloaded_windows(self, table_name: str) -> list[tuple[ExportWindow, str]]:
        """(window, status) of a table's exports seen but not loaded (failed, or loading)."""
        return self._windows(table_name, "status != 'loaded'")

    def _windows(self, table_name: str, cond: str) -> list[tuple[ExportWindow, str]]:
        rows = self.client.query(
            f"SELECT export_arn, export_type, export_time, export_from_time, export_to_time, status "
            f"FROM {self.q}.exports FINAL WHERE table_name = {{t:String}} AND {cond}",
            parameters={"t": table_name},
        ).result_rows
        return [
            (ExportWindow(arn, kind, _utc(at) if kind == FULL_EXPORT else None, _utc(start), _utc(end)), status)
            for arn, kind, at, start, end, status in rows
        ]

    # -- the ledger --------------------------------------------------------------
    def file_states(self, export_arn: str) -> dict[str, FileState]:
        rows = self.client.query(
            f"SELECT data_file_key, status, lines_committed, lines_landed, lines_quarantined, error "
            f"FROM {self.q}.export_files FINAL WHERE export_arn = {{arn:String}}",
            parameters={"arn": export_arn},
        ).result_rows
        return {r[0]: FileState(r[1], int(r[2]), int(r[3]), int(r[4]), r[5]) for r in rows}

    def record_file(
        self,
        summary: ExportSummary,
        data_file: DataFile,
        *,
        status: str,
        lines_committed: int = 0,
        lines_landed: int = 0,
        lines_quarantined: int = 0,
        compressed_bytes: int = 0,
        error: str = "",
    ) -> None:
        self.record_files(summary, [(data_file, {
            "status": status, "lines_committed": lines_committed, "lines_landed": lines_landed,
            "lines_quarantined": lines_quarantined, "compressed_bytes": compressed_bytes, "error": error})])

    def record_files(self, summary: ExportSummary, files: list[tuple[DataFile, dict]]) -> None:
        """Ledger rows of several data files in one insert: (data file, record_file's keywords)."""
        now = clock.now()
        self._insert_values(
            "export_files",
            [[
                summary.export_arn, summary.table_name, f.key, f.md5, f.item_count, v.get("lines_committed", 0),
                v.get("lines_landed", 0), v.get("lines_quarantined", 0), v.get("compressed_bytes", 0), v["status"],
                v.get("error", ""), now,
            ] for f, v in files],
            [
                "export_arn", "table_name", "data_file_key", "md5", "manifest_item_count", "lines_committed",
                "lines_landed", "lines_quarantined", "compressed_bytes", "status", "error", "updated_at",
            ],
        )

    # -- raw lines ---------------------------------------------------------------
    def insert_lines(self, summary: ExportSummary, data_file_key: str, batch: list[tuple[int, bytes]]) -> None:
        """Insert one batch of lines; ClickHouse routes refused lines to quarantine."""
        n = len(batch)
        from_time = _millis(summary.export_from_time) if summary.export_from_time is not None else None
        columns = [
            [summary.table_name] * n,
            [summary.table_arn] * n,
            [summary.export_arn] * n,
            [summary.export_type] * n,
            [_millis(summary.point_in_time)] * n,  # DateTime64(3) ticks: no per-row conversion
            [from_time] * n,
            [data_file_key] * n,
            [number for number, _ in batch],
            [line for _, line in batch],
        ]
        self.client.insert(
            f"{self.db}._export_lines_in", columns, column_names=LINE_COLUMNS, column_oriented=True
        )

    def insert_segment(self, summary: ExportSummary, data_file_key: str, segment: "Segment", skip: int = 0) -> None:
        """Insert the lines of one segment of a verified data file but its first ``skip``; routed
        like insert_lines.

        The lines are read as LineAsString in one stream, so line numbers are exact, with no
        per-line work in Python: chDB reads the segment's temporary file itself through
        /proc/self/fd; a server gets the segment's bytes as the data of an INSERT ... SELECT
        FROM input() (lz4-compressed when lz4 is installed, as clickhouse-connect's inserts are).
        chDB where /proc is missing gets the lines through insert_lines.
        """
        path = f"/proc/self/fd/{segment.file.fileno()}"
        if self.embedded and os.path.exists(path):
            source = f"file({literal(path)}, 'LineAsString', 'line String')"
            self.client.command(self._lines_select(summary, data_file_key, segment.first_line, source, skip),
                                settings=SEQUENTIAL_READ)
            return
        segment.file.seek(0)
        data = segment.file.read()
        start = 0
        for _ in range(skip):  # past the lines already landed
            start = data.find(b"\n", start) + 1
            if start == 0:
                return
        if start == len(data):
            return
        if start:
            data = data[start:]
        if not self.embedded:
            sql = self._lines_select(summary, data_file_key, segment.first_line + skip, "input('line String')")
            body, headers = _compressed(data)
            self.client.command(f"{sql} FORMAT LineAsString", data=body, settings=SEQUENTIAL_READ,
                                transport_settings=headers)
            return
        lines = data.split(b"\n")
        if lines[-1] == b"":  # the segment ends with a newline
            lines.pop()
        self.insert_lines(summary, data_file_key, [
            (segment.first_line + skip + i, line.rstrip(b"\r")) for i, line in enumerate(lines)
        ])

    def _lines_select(
        self, summary: ExportSummary, data_file_key: str, first_line: int, source: str, skip: int = 0
    ) -> str:
        """INSERT ... SELECT of the routing table from a LineAsString ``source`` read in order,
        its first line being line ``first_line``; with ``skip``, from its line skip + 1 on."""
        if skip:
            return self._routed_select(summary, literal(data_file_key), f"{int(first_line)} + _row_number",
                                       f"{source} WHERE _row_number >= {int(skip)}")
        return self._routed_select(summary, literal(data_file_key), f"{int(first_line)} + rowNumberInAllBlocks()",
                                   source)

    def _routed_select(self, summary: ExportSummary, key_sql: str, line_number_sql: str, source: str) -> str:
        from_time = (
            f"toDateTime64({literal(summary.export_from_time.strftime('%Y-%m-%d %H:%M:%S.%f'))}, 3, 'UTC')"
            if summary.export_from_time else "NULL"
        )
        return (
            f"INSERT INTO {self.q}._export_lines_in ({', '.join(LINE_COLUMNS)}) "
            f"SELECT {literal(summary.table_name)}, {literal(summary.table_arn)}, {literal(summary.export_arn)}, "
            f"{literal(summary.export_type)}, "
            f"toDateTime64({literal(summary.point_in_time.strftime('%Y-%m-%d %H:%M:%S.%f'))}, 3, 'UTC'), "
            f"{from_time}, {key_sql}, {line_number_sql}, trimRight(line, '\\r') FROM {source}"
        )

    def insert_lines_from_s3(self, summary: ExportSummary, data_file_key: str, source: "S3Source") -> None:
        """Server-side: ClickHouse reads one gzip data file itself and routes its lines like insert_lines.

        One reading stream (max_threads 1) keeps the lines in file order, so line numbers are
        exact.  The credentials go in the s3() arguments, which ClickHouse masks in its logs and
        query_log; they never appear in an error raised from here.
        """
        self._read(self._lines_select(summary, data_file_key, 1, self._s3(source)), SEQUENTIAL_READ, source.scrub)

    def insert_files_from_s3(self, summary: ExportSummary, directory: str, source: "S3Source", streams: int) -> None:
        """Server-side: ClickHouse reads several gzip data files of one ``directory`` (the key prefix
        ending in "/"; ``source`` names them as a {a,b,...} pattern) in one statement, up to
        ``streams`` files at a time, and routes their lines like insert_lines.

        Each file is one reading stream, so every line's file (_file) and position in it
        (_row_number) are exact whatever the order the files are read in.
        """
        sql = self._routed_select(summary, f"concat({literal(directory)}, _file)", "1 + _row_number", self._s3(source))
        self._read(sql, {**GROUP_READ, "max_threads": streams, "max_insert_threads": streams}, source.scrub)

    def reads_local_files(self, tmp_dir: str | None = None) -> bool:
        """Whether the engine can read files this process holds open (chDB, through /proc/<pid>/fd),
        by links made in ``tmp_dir`` (a path the engine's file() takes as it is, where links can be
        made: tried once)."""
        return self.embedded and bool(PLAIN_PATH.match(os.path.abspath(tmp_dir or tempfile.gettempdir()))) \
            and _links_work(tmp_dir)

    def insert_local_files(self, summary: ExportSummary, files: list[tuple[str, IO[bytes]]], streams: int,
                           tmp_dir: str | None = None) -> None:
        """The embedded engine reads several gzip data files this process holds open (data file key,
        file), decompressing them itself, in one statement, ``streams`` files at a time (each stream
        takes the next file when it is done with one), and routes their lines like insert_lines.
        Each file is one reading stream, so every line's number (_row_number) is exact.  A file it
        cannot read fails the statement (ServerReadError).
        """
        self._read_linked(summary, [(key, 1, f) for key, f in files], streams, tmp_dir, compressed=True)

    def insert_segments(self, summary: ExportSummary, data_file_key: str, segments: list["Segment"], streams: int,
                        tmp_dir: str | None = None) -> None:
        """The embedded engine reads several whole segments of one verified data file in one
        statement, ``streams`` at a time, routed like insert_lines; each line's number is its
        segment's first line plus its place in the segment."""
        self._read_linked(summary, [(data_file_key, s.first_line, s.file) for s in segments], streams, tmp_dir,
                          compressed=False)

    def _read_linked(self, summary: ExportSummary, files: list[tuple[str, int, IO[bytes]]], streams: int,
                     tmp_dir: str | None, *, compressed: bool) -> None:
        """One statement reading local files (data file key, number of the first line, file) through
        a directory of links (_links) by one pattern, ``streams`` files at a time: a statement of
        one file() per file (UNION ALL) kept the two cores only half busy."""
        names = ", ".join(literal(str(i)) for i in range(len(files)))
        key_sql = f"transform(_file, [{names}], [{', '.join(literal(key) for key, _, _ in files)}], '')"
        line_sql = f"transform(_file, [{names}], [{', '.join(str(int(first)) for _, first, _ in files)}], 0) + _row_number"
        compression = ", 'gzip'" if compressed else ""
        with _links([f for _, _, f in files], tmp_dir) as directory:
            source = f"file({literal(directory + '/*')}, 'LineAsString', 'line String'{compression})"
            sql = self._routed_select(summary, key_sql, line_sql, source)
            self._read(sql, {**GROUP_READ, "max_threads": streams, "max_insert_threads": streams})

    @staticmethod
    def _s3(source: "S3Source") -> str:
        args = [literal(source.url)]
        if source.access_key_id:
            args += [literal(source.access_key_id), literal(source.secret_access_key)]
            if source.session_token:
                args.append(literal(source.session_token))
        else:
            args.append("NOSIGN")
        args += ["'LineAsString'", "'line String'", "'gzip'"]
        return f"s3({', '.join(args)})"

    def _read(self, sql: str, settings: dict, scrub=str) -> None:
        """Run a statement that reads data files; ``scrub`` removes credentials from its messages."""
        try:
            self.client.command(sql, settings=settings)
        except Exception as ex:
            if is_transient(ex):  # ClickHouse itself unavailable: the caller waits and reads again
                raise type(ex)(scrub(str(ex))) from None
            raise ServerReadError(scrub(str(ex))) from None

    def discard_after(self, export_arn: str, data_file_key: str, line_number: int) -> None:
        """Remove rows of a file beyond its last committed line (left by an interrupted run)."""
        where = (
            f"export_arn = {literal(export_arn)} AND data_file_key = {literal(data_file_key)} "
            f"AND line_number > {int(line_number)}"
        )
        q_where = (
            f"source = 'export' AND origin = {literal(export_arn)} AND location = {literal(data_file_key)} "
            f"AND line_number > {int(line_number)}"
        )
        for table, cond in (("export_lines", where), ("quarantine", q_where)):
            if self._count(table, cond):
                log.info("removing rows of %s past line %d left by an interrupted run", data_file_key, line_number)
                self.client.command(
                    f"ALTER TABLE {self.q}.{table} DELETE WHERE {cond}", settings={"mutations_sync": 2}
                )

    def file_counts(self, export_arn: str, data_file_key: str) -> tuple[int, int, list[tuple[int, str]]]:
        """(lines landed, lines quarantined, first quarantine reasons) for one data file."""
        landed, quarantined = self.files_counts(export_arn, [data_file_key])[data_file_key]
        return landed, quarantined, self.quarantine_examples(export_arn, data_file_key) if quarantined else []

    def files_counts(self, export_arn: str, data_file_keys: list[str]) -> dict[str, tuple[int, int]]:
        """{data file key: (lines landed, lines quarantined)} for several files of one export."""
        out = {k: [0, 0] for k in data_file_keys}
        for i, k, n in self.client.query(self.files_counts_sql(export_arn, data_file_keys)).result_rows:
            out[k][int(i)] = int(n)
        return {k: (v[0], v[1]) for k, v in out.items()}

    def files_counts_sql(self, export_arn: str, data_file_keys: list[str]) -> str:
        """files_counts' query: export_lines is read through its skip index on data_file_key (schema), quarantine
        through its sort key, so the cost does not grow with the raw tables' history."""
        keys = ", ".join(literal(k) for k in data_file_keys)
        return (f"SELECT 0, data_file_key, count() FROM {self.q}.export_lines "
                f"WHERE export_arn = {literal(export_arn)} AND data_file_key IN ({keys}) GROUP BY 2 "
                f"UNION ALL SELECT 1, location, count() FROM {self.q}.quarantine "
                f"WHERE source = 'export' AND origin = {literal(export_arn)} AND location IN ({keys}) GROUP BY 2")

    def quarantine_examples(self, export_arn: str, data_file_key: str) -> list[tuple[int, str]]:
        """(line number, reason) of a data file's first 3 quarantined lines."""
        return [
            (int(r[0]), r[1])
            for r in self.client.query(
                f"SELECT line_number, error FROM {self.q}.quarantine WHERE source = 'export' "
                f"AND origin = {literal(export_arn)} AND location = {literal(data_file_key)} "
                "ORDER BY line_number LIMIT 3"
            ).result_rows
        ]

    # -- stream consumers ----------------------------------------------------------
    def stream_checkpoints(self, source: str, stream_arn: str) -> dict[str, Checkpoint]:
        rows = self.client.query(
            f"SELECT shard_id, sequence_number, finished, parent_shard_id, adjacent_parent_shard_id, records, "
            f"caught_up_at FROM {self.q}.stream_checkpoints FINAL "
            f"WHERE source = {{s:String}} AND stream_arn = {{arn:String}}",
            parameters={"s": source, "arn": stream_arn},
        ).result_rows
        return {r[0]: Checkpoint(r[0], r[1], bool(r[2]), r[3], r[4], int(r[5]), caught_up_at=_utc(r[6]))
                for r in rows}

    def insert_stream_records(self, source: str, stream_arn: str, records: list[Record]) -> None:
        """Insert one batch of change records; ClickHouse routes refused ones to quarantine.

        chDB reads the batch as RowBinary from a local file (the bytes of ``data`` exactly as
        received); a server gets it through clickhouse-connect's insert.
        """
        if self.embedded:
            with _local_file(_row_binary(source, stream_arn, records)) as path:
                self.client.command(
                    f"INSERT INTO {self.q}._stream_records_in ({', '.join(STREAM_COLUMNS)}) "
                    f"SELECT * FROM file({literal(path)}, 'RowBinary', {literal(STREAM_STRUCTURE)})"
                )
            return
        n = len(records)
        columns = [
            [source] * n,
            [stream_arn] * n,
            [r.shard_id for r in records],
            [r.sequence_number for r in records],
            [r.arrival_time for r in records],
            [r.partition_key for r in records],
            [r.table_name for r in records],
            [r.data for r in records],
        ]
        self.client.insert(
            f"{self.db}._stream_records_in", columns, column_names=STREAM_COLUMNS, column_oriented=True
        )

    def record_checkpoints(self, source: str, stream_arn: str, checkpoints: list[Checkpoint]) -> None:
        """One row per shard; call only after the records it covers are inserted."""
        now = clock.now()
        self._insert_values(
            "stream_checkpoints",
            [[
                source, stream_arn, c.shard_id, c.parent_shard_id, c.adjacent_parent_shard_id, c.sequence_number,
                int(c.finished), c.records, now, c.millis_behind_latest, c.caught_up_at,
            ] for c in checkpoints],
            [
                "source", "stream_arn", "shard_id", "parent_shard_id", "adjacent_parent_shard_id", "sequence_number",
                "finished", "records", "updated_at", "millis_behind_latest", "caught_up_at",
            ],
        )

    def record_stream_loss(self, source: str, stream_arn: str, table_name: str, shard_id: str, after: str,
                           reason: str) -> None:
        """A quarantine row for stream records lost before they were read (no payload: they are gone)."""
        self._insert_values("quarantine", [[source, table_name, stream_arn, shard_id, 0, after, "", reason]],
                            ["source", "table_name", "origin", "location", "line_number", "sequence_number",
                             "payload", "error"])

    def stream_quarantine(
        self, source: str, stream_arn: str, spans: dict[str, tuple[str, str]]
    ) -> tuple[int, list[tuple[str, str, str]]]:
        """(records quarantined, first (shard, sequence number, reason)) among the given
        per-shard sequence-number ranges (inclusive)."""
        if not spans:
            return 0, []
        ranges = " OR ".join(
            f"(location = {literal(shard)} AND toUInt256OrZero(sequence_number) "
            f"BETWEEN {int(lo)} AND {int(hi)})"
            for shard, (lo, hi) in sorted(spans.items())
        )
        cond = f"source = {literal(source)} AND origin = {literal(stream_arn)} AND ({ranges})"
        count, examples = self.client.query(
            f"SELECT uniqExact(location, sequence_number), groupArray(3)((location, sequence_number, error)) "
            f"FROM {self.q}.quarantine WHERE {cond}"
        ).result_rows[0]
        return int(count), [tuple(e) for e in examples]

    def _insert_values(self, table: str, rows: list[list], columns: list[str]) -> None:
        """A few ledger rows as one INSERT ... VALUES: one query, where a client-side insert
        would first describe the table (and load pandas on its first use)."""
        self.client.command(values_insert(f"{self.q}.{ident(table)}", columns, rows))

    def _count(self, table: str, cond: str) -> int:
        return int(self.client.command(f"SELECT count() FROM {self.q}.{table} WHERE {cond}"))


LINKS_PREFIX = "dynamodb-cdc-links-"
PLAIN_PATH = re.compile(r"[A-Za-z0-9._/-]+\Z")  # no quote, backslash or pattern character


@contextmanager
def _links(files: list[IO[bytes]], tmp_dir: str | None):
    """A private directory (in ``tmp_dir``) of links named 0, 1, ..., one per file, each to the
    file through /proc/<pid>/fd, for the engine (this process) to read them all by one pattern:
    chDB 4.4's file() matches no pattern under /proc/self/fd, and a {a,b} pattern no link.  The
    files are unlinked temporary files, freed however the process ends; a killed process leaves
    only this directory of dangling links, which a later load removes (remove_stale_links)."""
    pid = os.getpid()
    directory = tempfile.mkdtemp(prefix=f"{LINKS_PREFIX}{pid}-", dir=tmp_dir)
    try:
        for i, f in enumerate(files):
            os.symlink(f"/proc/{pid}/fd/{f.fileno()}", os.path.join(directory, str(i)))
        yield os.path.abspath(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@functools.lru_cache(maxsize=None)
def _links_work(tmp_dir: str | None) -> bool:
    """Whether a link to an open file made in ``tmp_dir`` leads to it (/proc mounted, links allowed)."""
    try:
        with tempfile.TemporaryFile(dir=tmp_dir) as f, _links([f], tmp_dir) as directory:
            if os.path.exists(os.path.join(directory, "0")):
                return True
            why = "the link leads nowhere"
    except OSError as ex:
        why = str(ex)
    log.info("the engine reads data files one at a time: no link to an open file can be made in %s (%s)",
             tmp_dir or tempfile.gettempdir(), why)
    return False


def remove_stale_links(tmp_dir: str | None, min_age: float = 600.0) -> None:
    """Remove link directories (_links) that killed loaders left in ``tmp_dir``: those of a
    process that no longer runs, untouched for ``min_age`` seconds."""
    root = tmp_dir or tempfile.gettempdir()
    try:
        names = [n for n in os.listdir(root) if n.startswith(LINKS_PREFIX)]
    except OSError:
        return
    for name in names:
        pid, path = name[len(LINKS_PREFIX):].split("-", 1)[0], os.path.join(root, name)
        try:
            if not pid.isdigit() or running(int(pid)) or time.time() - os.lstat(path).st_mtime < min_age:
                continue
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def _local_file(data: bytes):
    """A path holding ``data`` for the embedded engine to read.  On Linux, an already-unlinked
    temporary file reached through /proc/self/fd (the engine is this process), so nothing is
    left behind even if the process is killed; elsewhere, a named temporary file."""
    with tempfile.TemporaryFile(prefix="dynamodb-cdc-batch-") as f:
        f.write(data)
        f.flush()
        path = f"/proc/self/fd/{f.fileno()}"
        if os.path.exists(path):
            yield path
            return
    with tempfile.NamedTemporaryFile(prefix="dynamodb-cdc-batch-") as f:
        f.write(data)
        f.flush()
        yield os.path.abspath(f.name)


def _row_binary(source: str, stream_arn: str, records: list[Record]) -> bytes:
    """Records as RowBinary in STREAM_STRUCTURE's column order."""
    prefix = _rb_string(source.encode()) + _rb_string(stream_arn.encode())
    out = []
    for r in records:
        out += (
            prefix, _rb_string(r.shard_id.encode()), _rb_string(r.sequence_number.encode()),
            _INT64.pack(_millis(r.arrival_time)), _rb_string(r.partition_key.encode()),
            _rb_string(r.table_name.encode()), _rb_string(r.data),
        )
    return b"".join(out)


_INT64 = struct.Struct("<q")


def _rb_string(data: bytes) -> bytes:
    """A RowBinary String: its length as an unsigned LEB128 varint, then the bytes."""
    n = len(data)
    if n < 0x80:
        return bytes((n,)) + data
    head = bytearray()
    while n >= 0x80:
        head.append((n & 0x7F) | 0x80)
        n >>= 7
    head.append(n)
    return bytes(head) + data


def _compressed(data: bytes) -> tuple[bytes, dict[str, str]]:
    """The body of an HTTP request and its headers: lz4-compressed when lz4 is installed."""
    try:
        import lz4.frame
    except ImportError:
        return data, {}
    return lz4.frame.compress(data), {"Content-Encoding": "lz4"}


def _millis(value: datetime) -> int:
    """A DateTime64(3) value as clickhouse-connect writes it: milliseconds since the epoch."""
    return (_utc(value) - _EPOCH) // timedelta(milliseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value
