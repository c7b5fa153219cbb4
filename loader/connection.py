"""One way to reach ClickHouse, embedded (chDB) or a server, from a single URL.

``chdb:///abs/dir`` or ``chdb://relative/dir`` opens the in-process engine on a
data directory; ``http(s)://user:password@host:port/database`` reaches a
server.  Everything above this module uses the clickhouse-connect client it
returns and does not know which of the two it talks to.

The embedded engine allows one process per data directory.  ``open_client``
checks the directory's lock first, so a second process gets
``EngineLockedError`` with a one-line message instead of chDB's stack trace.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .errors import UsageError

log = logging.getLogger(__name__)

DEFAULT_URL = "chdb://.chdb"
URL_ENV = "DYNAMODB_CDC_CLICKHOUSE_URL"


# Seconds to wait for another process to release a chDB data directory (--wait-for-lock).
LOCK_WAIT_SECONDS = 0.0
# --low-memory: the jemalloc option chDB's library reads from JE_MALLOC_CONF (its prefixed
# MALLOC_CONF) so that freed memory goes back to the system at once instead of after 5 s.
LOW_MEMORY_CONF = "dirty_decay_ms:0"


def low_memory() -> None:
    """Make the embedded engine give freed memory back at once (README "Peak memory"): less peak
    memory, more time.  It must run before chDB is loaded into the process; a server is unaffected."""
    current = os.environ.get("JE_MALLOC_CONF", "")
    if LOW_MEMORY_CONF not in current.split(","):
        os.environ["JE_MALLOC_CONF"] = f"{current},{LOW_MEMORY_CONF}" if current else LOW_MEMORY_CONF
    if "chdb" in sys.modules:
        log.warning("--low-memory: chDB is already loaded in this process; it keeps its allocator settings")


# A ClickHouse server that does not answer is retried this many times, with backoff, before giving up.
CONNECT_ATTEMPTS = 5
CONNECT_BACKOFF = 0.5  # seconds, doubling: 0.5 + 1 + 2 + 4 = 7.5 s of waiting at most


# A server that stops answering mid-run: a unit of work (a batch with its checkpoint) is redone
# this many times, waiting with doubling backoff in between, before the command stops.
WRITE_ATTEMPTS = 6
WRITE_BACKOFF = 1.0  # seconds: 1 + 2 + 4 + 8 + 16 = 31 s of waiting at most
# Server error codes a later attempt may not meet: TIMEOUT_EXCEEDED, TOO_MANY_SIMULTANEOUS_QUERIES,
# SOCKET_TIMEOUT, NETWORK_ERROR, MEMORY_LIMIT_EXCEEDED, TABLE_IS_READ_ONLY, TOO_MANY_PARTS,
# UNKNOWN_STATUS_OF_INSERT, KEEPER_EXCEPTION.
TRANSIENT_CODES = frozenset({159, 202, 209, 210, 241, 242, 252, 319, 999})


class ClickHouseUnavailableError(RuntimeError):
    """A ClickHouse server could not be reached after bounded retries; one line, no credentials."""


class ConnectionConfigError(UsageError):
    """The ClickHouse URL cannot be used."""


class EngineLockedError(RuntimeError):
    """Another process owns the chDB data directory."""

    def __init__(self, path: str, holder: str | None, *, waited: float = 0.0):
        who = f"process {holder}" if holder else "another process"
        after = f" (still, after waiting {waited:.0f} s)" if waited else ""
        super().__init__(
            f"The embedded ClickHouse data directory {path} is in use by {who}{after}. "
            "chDB allows one process per directory: wait for that command to finish "
            "(run the loader and dbt one after the other), or use a ClickHouse server instead "
            "of the embedded engine."
        )
        self.path = path
        self.holder = holder


@dataclass(frozen=True)
class Target:
    """A parsed ClickHouse URL."""

    kind: str  # "chdb" or "http" / "https"
    path: str | None = None  # chdb data directory (absolute)
    host: str | None = None
    port: int | None = None
    username: str | None = None
    password: str | None = None
    database: str | None = None

    @property
    def embedded(self) -> bool:
        return self.kind == "chdb"

    def describe(self) -> str:
        """The target without its password, for logs and messages."""
        if self.embedded:
            return f"chdb://{self.path}"
        user = f"{self.username}@" if self.username else ""
        return f"{self.kind}://{user}{self.host}:{self.port}/{self.database or ''}"


def parse_url(url: str | None = None, *, cwd: str | None = None) -> Target:
    """Parse a ClickHouse URL; ``None`` falls back to the environment, then ``.chdb/``."""
    url = url or os.environ.get(URL_ENV) or DEFAULT_URL
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "chdb":
        # chdb:///abs/path has an empty netloc; chdb://rel/path puts the first
        # segment in the netloc.  Both name a directory.
        if parts.query or parts.fragment or url.rstrip().endswith(("?", "#")):
            raise ConnectionConfigError(
                f"{url!r}: a chdb:// URL is a directory path, with no ?query or #fragment; write ? and # in "
                "a directory name as %3F and %23")
        raw = os.path.expanduser(unquote((parts.netloc or "") + (parts.path or "")))
        if not raw or raw in ("memory", ":memory:"):
            raise ConnectionConfigError(
                "chdb:// needs a data directory, e.g. chdb:///var/lib/dynamodb-cdc or chdb://.chdb"
            )
        path = Path(raw)
        if not path.is_absolute():
            path = Path(cwd or os.getcwd()) / path
        return Target(kind="chdb", path=os.path.realpath(path))
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise ConnectionConfigError(f"No host in ClickHouse URL {_redact(url)}")
        database = unquote(parts.path.strip("/")) or None
        try:
            port = parts.port
        except ValueError:
            port = None
        if port is None and parts.netloc.rsplit("@", 1)[-1].rpartition(":")[1]:
            # (the URL is not shown: a password holding / or # ends the host part early, and would be)
            raise ConnectionConfigError(
                "Cannot read the port of the ClickHouse URL (not shown, as it may hold a password): a user name "
                "or password holding / ? # @ or : must be percent-encoded (/ as %2F, # as %23, @ as %40)")
        return Target(
            kind=scheme,
            host=parts.hostname,
            port=port or (8443 if scheme == "https" else 8123),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            database=database,
        )
    raise ConnectionConfigError(
        f"Unsupported ClickHouse URL {_redact(url)}: use chdb:///path/to/dir or "
        "http(s)://user:password@host:port/database"
    )


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def chdb_lock_holder(path: str) -> str | None:
    """Return a description of the process holding ``path``, or None if it is free.

    chDB, like clickhouse-server, keeps an exclusive ``flock`` on ``<dir>/status``
    (which holds the owner's PID) for as long as the engine is open.
    """
    status = Path(path) / "status"
    if not status.exists():
        return None
    try:
        fd = os.open(status, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as ex:
            if ex.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            return _describe_holder(status)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _describe_holder(status: Path) -> str:
    try:
        first = status.read_text(errors="replace").splitlines()[0]
    except (OSError, IndexError):
        return "unknown"
    pid = first.split(":", 1)[-1].strip()
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        cmd = " ".join(cmd.split())  # one line, whatever the command line holds
    except OSError:
        cmd = ""
    return f"{pid} ({cmd[:120]})" if cmd else pid


def open_client(target: Target | str | None = None, *, database: str | None = None, settings=None):
    """Open a clickhouse-connect client for ``target`` (a Target, a URL, or None for the default)."""
    import clickhouse_connect

    if not isinstance(target, Target):
        target = parse_url(target)
    settings = dict(settings or {})
    if target.embedded:
        return _waiting_for_lock(lambda: open_chdb_client(target.path, database=database, settings=settings))
    from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

    waited = 0.0
    for attempt in range(CONNECT_ATTEMPTS):
        try:
            return clickhouse_connect.get_client(
                interface=target.kind,
                host=target.host,
                port=target.port,
                username=target.username or "default",
                password=target.password or "",
                database=database or target.database or "__default__",
                settings=settings,
                client_name="dynamodb-cdc",
            )
        except (OperationalError, DatabaseError) as ex:  # refused, unreachable, timed out: the server may be restarting
            if not is_transient(ex):
                raise
            reason = _reason(ex)
            if _wrong_url(ex):  # the same URL meets the same answer after any wait
                raise ClickHouseUnavailableError(
                    f"Cannot use ClickHouse at {target.describe()}: {reason}. Check the URL's scheme, host and "
                    "port; nothing was written.") from None
            if attempt + 1 == CONNECT_ATTEMPTS:
                break
            delay = CONNECT_BACKOFF * 2 ** attempt
            log.warning("ClickHouse at %s: %s; retrying in %.1f s (attempt %d of %d)",
                        target.describe(), reason, delay, attempt + 2, CONNECT_ATTEMPTS)
            time.sleep(delay)
            waited += delay
    raise ClickHouseUnavailableError(
        f"Cannot reach ClickHouse at {target.describe()}: {reason} ({CONNECT_ATTEMPTS} attempts over "
        f"{waited:.1f} s). Check that the server is running and the URL's host and port; nothing was written."
    )


def _wrong_url(ex: Exception) -> bool:
    """A connection failure no wait can cure: the TLS handshake failed (https:// to a plain-HTTP port,
    a certificate that does not verify), or the port answered, but not as ClickHouse does."""
    text = str(ex)
    return bool(re.search(r"SSL: (WRONG_VERSION_NUMBER|CERTIFICATE_VERIFY_FAILED)", text)) \
        or "Unexpected response to server version query" in text


def is_transient(ex: BaseException) -> bool:
    """A ClickHouse failure that waiting may cure: the server unreachable or the connection lost
    (clickhouse-connect's OperationalError), one of TRANSIENT_CODES, or a proxy in front of ClickHouse
    answering 502, 503 or 504 with no ClickHouse error (the server behind it restarting)."""
    from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

    if isinstance(ex, OperationalError):
        return True
    if not isinstance(ex, DatabaseError):
        return False
    if re.match(r"HTTP driver received HTTP status 50[234]\b", str(ex)):
        return True
    code = re.search(r"\bCode: (\d+)", str(ex))
    return bool(code) and int(code.group(1)) in TRANSIENT_CODES


def retrying(what: str, unit, *, redo=None, attempts: int | None = None, sleep=None):
    """``unit()``, run again while ClickHouse is unavailable (is_transient), with doubling backoff.

    Before each new attempt ``redo()`` runs first, if given: it removes what an attempt cut off
    in the middle may have written (the failure may have come after the server took the rows),
    so that the unit can run again without doubling anything.  When the attempts are spent, a
    one-line ClickHouseUnavailableError says what was being done; the caller has checkpointed
    nothing past the rows written, so a rerun continues from there.
    """
    attempts = attempts or WRITE_ATTEMPTS
    sleep = sleep or time.sleep
    waited = 0.0
    for attempt in range(1, attempts + 1):
        try:
            if attempt > 1 and redo is not None:
                redo()
            return unit()
        except Exception as ex:
            if not is_transient(ex):
                raise
            reason = _reason(ex)
            if attempt == attempts:
                raise ClickHouseUnavailableError(
                    f"ClickHouse stopped answering while {what}: {reason} ({attempts} attempts over "
                    f"{waited:.0f} s). Nothing is checkpointed past the rows written: rerun to continue."
                ) from None
            delay = WRITE_BACKOFF * 2 ** (attempt - 1)
            log.warning("ClickHouse failed while %s: %s; retrying in %.0f s (attempt %d of %d)",
                        what, reason, delay, attempt + 1, attempts)
            sleep(delay)
            waited += delay


def _reason(ex: Exception) -> str:
    """The cause of a connection failure in a few words (never the URL's credentials)."""
    m = re.search(r"\[Errno -?\d+\] [^'\")]+", str(ex))
    if m:
        return m.group(0).strip()
    for word in ("timed out", "Connection refused", "Name or service not known"):
        if word.lower() in str(ex).lower():
            return word
    # the two usual wrong URLs: https:// to a plain-HTTP port, and a port that is not ClickHouse's HTTP
    # interface (the native protocol's 9000, another service); clickhouse-connect says only OperationalError
    ssl = re.search(r"SSL: ([A-Z_]+)", str(ex))
    if ssl:
        return (f"TLS handshake failed ({ssl.group(1)}; "
                + ("is the port plain HTTP? use http://" if ssl.group(1) == "WRONG_VERSION_NUMBER"
                   else "check the port and the server's certificate") + ")")
    if "Unexpected response to server version query" in str(ex):
        return "the server's answer is not ClickHouse's (is the port ClickHouse's HTTP interface, 8123 or 8443?)"
    status = re.match(r"HTTP driver received HTTP status (\d+)", str(ex))
    if status:  # no ClickHouse error code: a proxy or load balancer answered
        return f"HTTP status {status.group(1)}, with no ClickHouse error (a proxy in front of the server?)"
    code = re.search(r"\bCode: (\d+)", str(ex))  # the code only: the message may quote the query
    return f"ClickHouse error code {code.group(1)}" if code else type(ex).__name__


def _waiting_for_lock(open_):
    """``open_()``, retried with backoff while another process holds the chDB directory, for up to
    LOCK_WAIT_SECONDS (0: fail at once)."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    delay = 0.1
    said = None  # when the wait was last logged: once, then every 30 s
    while True:
        try:
            return open_()
        except EngineLockedError as ex:
            now = time.monotonic()
            left = deadline - now
            if left <= 0:
                if LOCK_WAIT_SECONDS:
                    raise EngineLockedError(ex.path, ex.holder, waited=LOCK_WAIT_SECONDS) from None
                raise
            if said is None or now - said >= 30:
                log.info("%s is in use by process %s; waiting (up to %.0f s more)", ex.path, ex.holder, left)
                said = now
            time.sleep(min(delay, left))
            delay = min(delay * 2, 5.0)


def open_chdb_client(path: str, *, database: str | None = None, settings=None):
    """Open the embedded engine on ``path``; raise EngineLockedError if another process has it."""
    import clickhouse_connect
    from clickhouse_connect.driver.exceptions import ProgrammingError

    path = os.path.realpath(path)
    holder = chdb_lock_holder(path)
    if holder is not None and not _held_by_this_process(holder):
        raise EngineLockedError(path, holder)
    os.makedirs(path, exist_ok=True)
    try:
        return clickhouse_connect.get_client(
            interface="chdb", path=path, database=database, settings=dict(settings or {})
        )
    except ProgrammingError:
        holder = chdb_lock_holder(path)
        if holder is not None:
            raise EngineLockedError(path, holder) from None
        raise


def _held_by_this_process(holder: str) -> bool:
    # Several clients in one process share the engine (dbt opens one per thread).
    return holder.split(" ", 1)[0] == str(os.getpid())
