"""Progress on long work: a one-line bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import logging
import sys
import threading
import time

log = logging.getLogger("dynamodb_cdc")


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class Progress:
    """Counts files, rows and bytes; draws a bar when stderr is a TTY."""

    def __init__(self, total_files: int, *, enabled: bool | None = None, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if enabled is None else enabled
        self.total_files = total_files
        self.files = self.rows = self.bytes = 0
        self.started = time.monotonic()
        self._drawn = 0.0
        self._lock = threading.Lock()  # counted from the download thread and the loading workers

    def add_bytes(self, n: int) -> None:
        with self._lock:
            self.bytes += n
            self._draw()

    def add_rows(self, n: int) -> None:
        with self._lock:
            self.rows += n
            self._draw()

    def file_done(self, message: str) -> None:
        with self._lock:
            self.files += 1
            if self.tty:
                self._clear()
            log.info("[%d/%d] %s", self.files, self.total_files, message)
            self._draw(force=True)

    def _draw(self, force: bool = False) -> None:
        if not self.tty:
            return
        now = time.monotonic()
        if not force and now - self._drawn < 0.2:
            return
        self._drawn = now
        elapsed = max(now - self.started, 1e-6)
        width = 24
        done = int(width * self.files / self.total_files) if self.total_files else width
        bar = "#" * done + "-" * (width - done)
        self.stream.write(
            f"\r[{bar}] files {self.files}/{self.total_files}  rows {self.rows:,}  "
            f"{_human(self.bytes)} read  {self.rows / elapsed:,.0f} rows/s "
        )
        self.stream.flush()

    def _clear(self) -> None:
        self.stream.write("\r\033[K")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self._clear()
