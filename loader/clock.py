"""The time the loader stamps its ledger rows with: the ClickHouse server's.

Each command reads the server's clock once when it opens its tables (``align``) and from then on
stamps with this host's clock moved by the difference.  Runs of one export, consumers of one
stream or pushes of one table that alternate between hosts whose clocks differ then still stamp
in the order they ran: ReplacingMergeTree keeps the row with the highest ``updated_at``, and a
host running ahead must not outrank the rows of the runs after it.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone

log = logging.getLogger(__name__)

_last = datetime.min.replace(tzinfo=timezone.utc)
_offset = timedelta(0)  # the server's clock minus this host's, as ``align`` last measured it
_lock = threading.Lock()
WARN_OFFSET = timedelta(minutes=1)  # align() warns of a host clock this far or further off the server's


def now() -> datetime:
    """Strictly increasing UTC time by the server's clock (see ``align``), shared by every thread:
    the latest ledger row always wins."""
    global _last
    with _lock:
        t = datetime.now(timezone.utc) + _offset
        if t <= _last:
            t = _last + timedelta(microseconds=1)
        _last = t
        return t


def align(client) -> timedelta:
    """Measure how far the ClickHouse server's clock is from this host's, from one query (the
    server's time set against the middle of the round trip), and stamp by the server's from now on.
    Returns the offset (server minus host)."""
    global _offset
    before = datetime.now(timezone.utc)
    micros = int(client.query("SELECT toUnixTimestamp64Micro(now64(6))").result_rows[0][0])
    after = datetime.now(timezone.utc)
    server = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=micros)
    offset = server - (before + (after - before) / 2)
    with _lock:
        _offset = offset
    if abs(offset) >= WARN_OFFSET:
        log.warning("this host's clock is %.1f s %s the ClickHouse server's: the loader stamps its ledgers by the "
                    "server's clock, but check this host's time synchronisation (NTP)", abs(offset.total_seconds()),
                    "behind" if offset > timedelta(0) else "ahead of")
    return offset
