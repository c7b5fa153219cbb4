"""The time the loader stamps its ledger rows with."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

_last = datetime.min.replace(tzinfo=timezone.utc)
_lock = threading.Lock()


def now() -> datetime:
    """Strictly increasing UTC wall-clock time, shared by every thread: ReplacingMergeTree keeps
    the row with the highest updated_at, so the latest ledger row always wins."""
    global _last
    with _lock:
        t = datetime.now(timezone.utc)
        if t <= _last:
            t = _last + timedelta(microseconds=1)
        _last = t
        return t
