"""One run at a time per export, and one consumer per stream: a lease in the raw database.

Against a ClickHouse server nothing stops two ``load-export`` runs from loading the same export at
once (a cron run overlapping the last one): both would insert its lines, and their file counts
would then disagree.  So a run holds a lease on each export it loads, a row of ``leases`` (read
with FINAL), and a run that finds another holder's live lease leaves that export alone, with a
message naming the holder.  A stream consumer holds its stream's lease the same way, renewed
while it reads (``--follow`` included).  On the embedded engine one process owns the data directory anyway;
the lease is taken there too, and costs a few milliseconds.

A lease is live while its holder renews it (at least every ``RENEW_SECONDS`` while files land,
at each file) and for ``LEASE_SECONDS`` after the last renewal; it is released when the run ends,
however it ends, short of being killed.  A holder on this host whose process is gone (its pid
no longer runs, or runs a process started at another time) holds nothing, so a run killed with
-9 and started again on the same host, or in a container restarted under the same host name,
goes on at once; from another host its lease lapses after ``LEASE_SECONDS``.  All times are the server's (now64), so
the hosts' clocks do not matter.  Two runs that take the same lease in the same instant both
write their row, read the holders again, and the later one (by acquired_at, then holder) yields.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Callable, TypeVar

log = logging.getLogger("dynamodb_cdc")
T = TypeVar("T")

LEASE_SECONDS = 600
RENEW_SECONDS = 60


def _started(pid: int) -> str | None:
    """When a process of this host started (clock ticks since boot, /proc/<pid>/stat field 22), or
    None where that cannot be read: with its pid, what tells a process from a later one given the
    same pid (a container restarted in the same pod, its loader pid 1 again)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


HOST = socket.gethostname()
PID = os.getpid()
STARTED = _started(PID) or "?"
HOLDER = f"{HOST}:{PID}:{STARTED}:{uuid.uuid4().hex[:8]}"  # this process


class LeaseHeldError(RuntimeError):
    """Another run holds the lease."""


def holding(lease: "Lease", work: Callable[[], T], error: type[Exception], *,
            acquire: Callable[[], None] | None = None) -> T:
    """``work()`` under ``lease``, released however it ends; a lease another run holds, or one this
    run finds lapsed while working (``renew``), ends it as ``error`` with the message naming the
    holder.  ``acquire`` takes the lease (default ``lease.acquire``; a caller wraps it in retries)."""
    try:
        (acquire or lease.acquire)()
        try:
            return work()
        finally:
            lease.release()
    except LeaseHeldError as ex:
        raise error(str(ex)) from None


@dataclass(frozen=True)
class Holder:
    holder: str
    host: str
    pid: int
    command: str
    acquired_at: str
    renewed_seconds_ago: float

    def live(self) -> bool:
        if self.renewed_seconds_ago >= LEASE_SECONDS:
            return False
        parts = self.holder.split(":")
        started = parts[2] if len(parts) == 4 and parts[2] != "?" else None
        return not (self.host == HOST and not _alive(self.pid, started))

    def describe(self) -> str:
        return (f"{self.command} (process {self.pid} on {self.host}) since {self.acquired_at} UTC, last renewed "
                f"{self.renewed_seconds_ago:.0f} s ago")

    @classmethod
    def of_row(cls, row) -> Holder:
        """The Holder of a row read as HOLDER_COLUMNS."""
        holder, host, pid, command, acquired_at, age = row
        return cls(holder, host, int(pid), command, acquired_at, float(age))


# What a Holder is read from: the columns of a leases row, its age by the server's clock.
HOLDER_COLUMNS = "holder, host, pid, command, toString(acquired_at), dateDiff('microsecond', renewed_at, now64(6)) / 1e6"


def _alive(pid: int, started: str | None) -> bool:
    """Whether the process that took a lease on this host still runs: its pid, and where the
    holder recorded it, the same start time (else the pid was given to a later process)."""
    if started is not None and os.path.isdir("/proc/self"):
        return _started(pid) == started
    return running(pid)


def running(pid: int) -> bool:
    """Whether a process of this host has the pid (also for the link directories, store.py)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, as another user's
        return True
    return True


class Lease:
    """``acquire()`` holds ``scope`` for this process or raises LeaseHeldError; ``renew()`` often while
    working; ``release()`` when done, however the work ended."""

    def __init__(self, store, scope: str, command: str, *, what: str | None = None, doing: str = "loaded"):
        self.store, self.scope, self.command = store, scope, command
        self.what = what or scope
        self.doing = doing  # "<what> is being <doing> by <holder>"
        self.renewed = 0.0
        self.held = False

    def _others(self) -> list[Holder]:
        return [h for h in self.store.lease_holders(self.scope) if h.holder != HOLDER and h.live()]

    def acquire(self) -> None:
        others = self._others()
        if others:
            raise LeaseHeldError(f"{self.what} is being {self.doing} by {others[0].describe()}; this run leaves it "
                                 f"to that one (a lease not renewed for {LEASE_SECONDS} s lapses)")
        self.store.take_lease(self.scope, HOLDER, HOST, PID, self.command)
        self.held = True
        self.renewed = time.monotonic()
        # Someone may have written theirs in the same instant: the first to have acquired keeps it.
        contenders = [h for h in self.store.lease_holders(self.scope) if h.holder == HOLDER or h.live()]
        first = min(contenders, key=lambda h: (h.acquired_at, h.holder))
        if first.holder != HOLDER:
            self.release()
            raise LeaseHeldError(f"{self.what} is being {self.doing} by {first.describe()}, which took it at the same "
                                 "time; this run leaves it to that one")

    def renew(self) -> None:
        """Renew if RENEW_SECONDS have passed since the last time (call it often).  A run that was
        paused past LEASE_SECONDS (its lease lapsed: another run may have taken it since) raises
        LeaseHeldError instead of renewing: renewing would make two holders, both writing."""
        if self.held and time.monotonic() - self.renewed >= RENEW_SECONDS:
            holders = self.store.lease_holders(self.scope)
            if not any(h.holder == HOLDER and h.renewed_seconds_ago < LEASE_SECONDS for h in holders):
                # (still released as the run ends: that marks this run's own row, not the new holder's)
                others = [h for h in holders if h.holder != HOLDER and h.live()]
                by = f", and is now held by {others[0].describe()}" if others else ""
                raise LeaseHeldError(f"{self.what}: this run's lease lapsed (not renewed for {LEASE_SECONDS} s){by}; "
                                     "this run stops and leaves it to the next")
            self.store.renew_lease(self.scope, HOLDER)
            self.renewed = time.monotonic()

    def release(self) -> None:
        if self.held:
            self.held = False
            try:
                self.store.release_lease(self.scope, HOLDER)
            except Exception as ex:  # the run's own outcome matters more; the lease lapses anyway
                log.warning("could not release the lease on %s (%s); it lapses %d s after its last renewal",
                            self.what, str(ex).splitlines()[0][:200], LEASE_SECONDS)
