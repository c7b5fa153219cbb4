"""Everything the loader writes to or reads from ClickHouse: raw rows, the ledger, export state."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from . import schema
from .manifest import FULL_EXPORT, DataFile, ExportSummary, ExportWindow
from .sql import ident, literal

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

LOADING, LOADED, FAILED = "loading", "loaded", "failed"


@dataclass(frozen=True)
class FileState:
    status: str
    lines_committed: int
    lines_landed: int
    lines_quarantined: int
    error: str


class Store:
    def __init__(self, client, database: str):
        self.client = client
        self.db = database
        self.q = ident(database)

    def ensure_schema(self) -> None:
        schema.ensure(self.client, self.db)

    # -- exports ---------------------------------------------------------------
    def record_export(self, summary: ExportSummary, *, s3_uri: str, data_files: int, status: str, error: str = "") -> None:
        self.client.insert(
            f"{self.db}.exports",
            [[
                summary.export_arn, summary.table_name, summary.table_arn, summary.export_type,
                summary.point_in_time, summary.export_from_time, summary.export_to_time,
                summary.output_view or "", s3_uri, summary.item_count, data_files, status, error, _now(),
            ]],
            column_names=[
                "export_arn", "table_name", "table_arn", "export_type", "export_time", "export_from_time",
                "export_to_time", "output_view", "s3_uri", "manifest_item_count", "data_files", "status",
                "error", "updated_at",
            ],
        )

    def loaded_windows(self, table_name: str) -> list[ExportWindow]:
        """Every completely loaded export of a table, for window coverage checks."""
        rows = self.client.query(
            f"SELECT export_arn, export_type, export_time, export_from_time, export_to_time "
            f"FROM {self.q}.exports FINAL WHERE table_name = {{t:String}} AND status = 'loaded'",
            parameters={"t": table_name},
        ).result_rows
        return [
            ExportWindow(
                arn, kind, _utc(at) if kind == FULL_EXPORT else None, _utc(start), _utc(end)
            )
            for arn, kind, at, start, end in rows
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
        self.client.insert(
            f"{self.db}.export_files",
            [[
                summary.export_arn, summary.table_name, data_file.key, data_file.md5, data_file.item_count,
                lines_committed, lines_landed, lines_quarantined, compressed_bytes, status, error, _now(),
            ]],
            column_names=[
                "export_arn", "table_name", "data_file_key", "md5", "manifest_item_count", "lines_committed",
                "lines_landed", "lines_quarantined", "compressed_bytes", "status", "error", "updated_at",
            ],
        )

    # -- raw lines ---------------------------------------------------------------
    def insert_lines(self, summary: ExportSummary, data_file_key: str, batch: list[tuple[int, bytes]]) -> None:
        """Insert one batch of lines; ClickHouse routes refused lines to quarantine."""
        n = len(batch)
        columns = [
            [summary.table_name] * n,
            [summary.table_arn] * n,
            [summary.export_arn] * n,
            [summary.export_type] * n,
            [summary.point_in_time] * n,
            [summary.export_from_time] * n,
            [data_file_key] * n,
            [number for number, _ in batch],
            [line for _, line in batch],
        ]
        self.client.insert(
            f"{self.db}._export_lines_in", columns, column_names=LINE_COLUMNS, column_oriented=True
        )

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
        landed = self._count(
            "export_lines", f"export_arn = {literal(export_arn)} AND data_file_key = {literal(data_file_key)}"
        )
        cond = f"source = 'export' AND origin = {literal(export_arn)} AND location = {literal(data_file_key)}"
        quarantined = self._count("quarantine", cond)
        examples = []
        if quarantined:
            examples = [
                (int(r[0]), r[1])
                for r in self.client.query(
                    f"SELECT line_number, error FROM {self.q}.quarantine WHERE {cond} ORDER BY line_number LIMIT 3"
                ).result_rows
            ]
        return landed, quarantined, examples

    def _count(self, table: str, cond: str) -> int:
        return int(self.client.command(f"SELECT count() FROM {self.q}.{table} WHERE {cond}"))


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


_last_now = datetime.min.replace(tzinfo=timezone.utc)


def _now() -> datetime:
    """Strictly increasing wall-clock time, so the latest ledger row always wins."""
    global _last_now
    now = datetime.now(timezone.utc)
    if now <= _last_now:
        now = _last_now + timedelta(microseconds=1)
    _last_now = now
    return now
