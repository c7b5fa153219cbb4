"""ClickHouse's HTTP interface in front of the embedded engine (chDB), on loopback.

For tests and the benchmark on machines where no ClickHouse server can be installed: the loader,
dbt-clickhouse's own HTTP driver and clickhouse-connect's HTTP client talk to it as to a server
(``http://127.0.0.1:<port>``), while the engine, its data directory and its memory live in this
separate process, which can be stopped (or killed) under them like a server.

It answers the part of the interface those clients use, not all of it:

- ``GET /ping``; a query in the ``query`` URL parameter, in the POST body, or both (the body
  then follows the parameter, as the server does); ``database``; ``param_<name>`` bind
  parameters; every other URL parameter that is not a transport one is a setting for that
  query only (applied with ``SET`` and reset after it);
- ``INSERT ... FORMAT <fmt>`` followed by data (in the body after the statement, or the
  statement in ``query`` and the data as the body), chunked or not, compressed with the
  ``Content-Encoding`` clickhouse-connect uses (lz4, zstd, gzip, deflate, br); also
  ``INSERT ... SELECT ... FROM input('<structure>') FORMAT <fmt>``, the data read as a file;
- answers in the query's ``FORMAT`` (else ``default_format``, else TabSeparated), never
  compressed, with ``X-ClickHouse-Format`` (when the statement returns a result set),
  ``X-ClickHouse-Summary``, ``X-ClickHouse-Query-Id`` and ``X-ClickHouse-Timezone``;
- a failed query: status 500 (404 for an unknown table or database, 400 for a syntax error),
  ``X-ClickHouse-Exception-Code`` and ClickHouse's message as the body.

Any user and password are accepted. One query runs at a time (the engine is shared); sessions
are not kept apart. It is a test peer, not a server to deploy: it binds to 127.0.0.1 only.

    python -m dynamodb_cdc.testing.chdb_http --path DIR [--port N]

prints ``listening on http://127.0.0.1:<port>`` once it answers;

    python -m dynamodb_cdc.testing.chdb_http [--path DIR] -- COMMAND ...

serves (on a temporary directory unless given one) while COMMAND runs with ``CLICKHOUSE_URL`` set
to it (the tests), and the variables the loader (``DYNAMODB_CDC_CLICKHOUSE_URL``) and the ``server``
target of profiles.example.yml (``CLICKHOUSE_HOST``, ``CLICKHOUSE_PORT``, ``CLICKHOUSE_SECURE``) read,
and exits with COMMAND's exit code (``make test-http``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

HOST = "127.0.0.1"

# URL parameters that the HTTP layer consumes (or that clickhouse-connect sends for a server's
# HTTP handler); none is passed to the engine as a setting.
TRANSPORT = frozenset({
    "query", "database", "default_format", "user", "password", "quota_key", "query_id", "session_id",
    "session_timeout", "session_check", "compress", "decompress", "buffer_size", "wait_end_of_query",
    "client_protocol_version", "role", "send_progress_in_http_headers", "http_headers_progress_interval_ms",
    "enable_http_compression", "cancel_http_readonly_queries_on_client_close",
})
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
# An INSERT whose data follows its FORMAT clause on the next line of the body.
_INSERT_WITH_DATA = re.compile(rb"^\s*INSERT\s+INTO\b[^\n]*?\bFORMAT\s+(\w+)[ \t]*\r?\n", re.IGNORECASE | re.DOTALL)
_INSERT_HEAD = re.compile(r"^\s*INSERT\s+INTO\b", re.IGNORECASE)
# What a readonly request may run (a server's rule, by the statement's first word): readonly is applied
# here, per request, since SET readonly would stay on the one chDB session (it cannot be set back)
# (after any comments and opening parentheses, as dbt's /* {...} */ query comment or (SELECT ...) UNION ALL)
_READ_QUERY = re.compile(r"^(?:\s|--[^\n]*(?:\n|$)|/\*.*?\*/|\()*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXISTS|EXPLAIN)\b",
                         re.IGNORECASE | re.DOTALL)
_INPUT = re.compile(r"\binput\(\s*('(?:[^'\\]|\\.)*')\s*\)")  # the input('<structure>') table function
_CODE = re.compile(r"Code: (\d+)")
_STATUS = {60: 404, 81: 404, 62: 400}  # UNKNOWN_TABLE, UNKNOWN_DATABASE, SYNTAX_ERROR


def _quote(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _decompress(data: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return data
    if encoding == "gzip":
        import gzip
        return gzip.decompress(data)
    if encoding == "deflate":
        import zlib
        return zlib.decompress(data)
    if encoding in ("lz4", "zstd"):  # a streamed body is one frame per block, back to back
        if encoding == "lz4":
            import lz4.frame
            decompressor = lz4.frame.LZ4FrameDecompressor
        else:
            import zstandard
            decompressor = zstandard.ZstdDecompressor().decompressobj
        out = []
        while data:
            frame = decompressor()
            out.append(frame.decompress(data))
            data = frame.unused_data
        return b"".join(out)
    if encoding == "br":
        import brotli
        return brotli.decompress(data)
    raise ValueError(f"unsupported Content-Encoding {encoding!r}")


class QueryFailed(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        code = _CODE.search(message)
        self.code = int(code.group(1)) if code else 1002  # UNKNOWN_EXCEPTION


class Engine:
    """The chDB engine on one data directory; one query at a time."""

    def __init__(self, path: str):
        import chdb

        self._conn = chdb.connect(path)
        self._lock = threading.Lock()
        self._database = "default"
        self.timezone = self._conn.query("SELECT timezone()", "TabSeparated").bytes().decode().strip()

    def _call(self, sql: str, fmt: str, params: dict | None = None):
        try:
            return self._conn.query(sql, fmt, params=params or {})
        except Exception as ex:  # chDB raises its own error types, with ClickHouse's message
            message = str(ex)
            start = message.find("Code: ")
            raise QueryFailed(message[start:].strip() if start >= 0 else message.strip()) from None

    def run(self, sql: str, fmt: str, *, database: str | None, settings: dict[str, str], params: dict[str, str]):
        with self._lock:
            database = database or "default"
            if database != self._database:
                self._call(f"USE {_quote_identifier(database)}", "TabSeparated")
                self._database = database
            settings = dict(settings)
            if settings.pop("readonly", "0") not in ("", "0") and not _READ_QUERY.match(sql):
                raise QueryFailed("Code: 164. DB::Exception: default: Cannot execute query in readonly mode. (READONLY)")
            applied = []
            try:
                for name, value in settings.items():
                    if not _SETTING_NAME.match(name):
                        raise QueryFailed(f"Code: 115. DB::Exception: Unknown setting '{name}'. (UNKNOWN_SETTING)")
                    self._call(f"SET {name} = {_quote(value)}", "TabSeparated")
                    applied.append(name)
                return self._call(sql, fmt, params)
            finally:
                for name in applied:
                    with contextlib.suppress(QueryFailed):
                        self._call(f"SET {name} = DEFAULT", "TabSeparated")

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "chdb-http"
    engine: Engine  # set on the subclass made by serve()

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass

    def do_GET(self):
        path = urlsplit(self.path).path
        if path in ("/ping", "/") and "query" not in dict(parse_qsl(urlsplit(self.path).query)):
            return self._reply(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
        return self._query(b"")

    def do_POST(self):
        try:
            body = self._body()
        except Exception as ex:  # a body it cannot read or decompress: an error answer, as below
            return self._failed(ex, str(uuid.uuid4()))
        return self._query(body)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after the chunk
            body = b"".join(parts)
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        return _decompress(body, self.headers.get("Content-Encoding", ""))

    def _query(self, body: bytes):
        args = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        query_id = args.get("query_id") or str(uuid.uuid4())
        settings = {k: v for k, v in args.items() if k not in TRANSPORT and not k.startswith("param_")}
        params = {k[len("param_"):]: v for k, v in args.items() if k.startswith("param_")}
        database = args.get("database") or self.headers.get("X-ClickHouse-Database")
        default_format = args.get("default_format") or "TabSeparated"
        tmp = None
        try:
            sql, data, fmt = self._statement(args.get("query"), body)
            if data is not None:  # INSERT ... FORMAT fmt + data: the engine reads the data from a file
                with tempfile.NamedTemporaryFile(suffix=".data", delete=False) as f:
                    f.write(data)
                    tmp = f.name
                head = _TRAILING_FORMAT.sub("", sql).rstrip()
                if _INPUT.search(head):  # INSERT ... SELECT ... FROM input('<structure>'): the data as a file
                    sql = _INPUT.sub(lambda m: f"file({_quote(tmp)}, {_quote(fmt)}, {m.group(1)})", head, count=1)
                else:
                    sql = f"{head} FROM INFILE {_quote(tmp)} FORMAT {fmt}"
                result = self.engine.run(sql, "TabSeparated", database=database, settings=settings, params=params)
                return self._reply(200, b"", self._headers(query_id, _summary(result, written=True), None))
            explicit = _TRAILING_FORMAT.search(sql)
            if explicit:
                fmt = explicit.group(1)
                result = self.engine.run(sql, default_format, database=database, settings=settings, params=params)
                out = result.bytes() or b""
            elif default_format == "TabSeparated":
                # A statement that returns a result set prints at least its names line; one that
                # does not (DDL, INSERT ... SELECT) prints nothing: only the first gets a format.
                result = self.engine.run(sql, "TabSeparatedWithNames", database=database, settings=settings,
                                         params=params)
                out = result.bytes() or b""
                fmt = "TabSeparated" if out else None
                out = out[out.find(b"\n") + 1:] if out else b""
            else:
                fmt = default_format
                result = self.engine.run(sql, fmt, database=database, settings=settings, params=params)
                out = result.bytes() or b""
            return self._reply(200, out, self._headers(query_id, _summary(result, written=False), fmt))
        except QueryFailed as ex:
            message = str(ex)
            if "(version " not in message:
                message += " (version chdb-http)"
            return self._reply(_STATUS.get(ex.code, 500), (message + "\n").encode(),
                               {"Content-Type": "text/plain; charset=UTF-8", "X-ClickHouse-Exception-Code": str(ex.code),
                                "X-ClickHouse-Query-Id": query_id})
        except Exception as ex:  # (a body it cannot decode, say): an error answer, never a dropped connection
            return self._failed(ex, query_id)
        finally:
            if tmp:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def _failed(self, ex: Exception, query_id: str):
        """Anything but a query's own error: 400 for what the client sent, else 500; ClickHouse's headers."""
        return self._reply(400 if isinstance(ex, ValueError) else 500,
                           f"Code: 1002. DB::Exception: {type(ex).__name__}: {ex}. (UNKNOWN_EXCEPTION)\n".encode(),
                           {"X-ClickHouse-Exception-Code": "1002", "X-ClickHouse-Query-Id": query_id})

    @staticmethod
    def _statement(query: str | None, body: bytes) -> tuple[str, bytes | None, str | None]:
        """(SQL, the data of an INSERT or None, that data's format)."""
        if query is not None and body and _INSERT_HEAD.match(query) and _TRAILING_FORMAT.search(query):
            return query, body, _TRAILING_FORMAT.search(query).group(1)
        if query is None:
            m = _INSERT_WITH_DATA.match(body[:65536])
            if m:
                return body[:m.end()].decode().strip(), body[m.end():], m.group(1).decode()
            return body.decode(), None, None
        return (query + ("\n" + body.decode() if body else "")), None, None

    def _headers(self, query_id: str, summary: dict, fmt: str | None) -> dict[str, str]:
        headers = {"X-ClickHouse-Query-Id": query_id, "X-ClickHouse-Timezone": self.engine.timezone,
                   "X-ClickHouse-Summary": json.dumps(summary), "X-ClickHouse-Server-Display-Name": "chdb-http"}
        if fmt:
            headers["X-ClickHouse-Format"] = fmt
            headers["Content-Type"] = ("application/octet-stream" if fmt in ("Native", "RowBinary")
                                       else "text/plain; charset=UTF-8")
        return headers

    def _reply(self, status: int, body: bytes, headers: dict[str, str]):
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _summary(result, *, written: bool) -> dict[str, str]:
    """X-ClickHouse-Summary of a chDB result; an INSERT from data writes exactly the rows it reads."""
    read = {"read_rows": str(result.rows_read()), "read_bytes": str(result.bytes_read())}
    return {**read, "written_rows": read["read_rows"] if written else "0",
            "written_bytes": read["read_bytes"] if written else "0"}


def serve(path: str, port: int = 0) -> ThreadingHTTPServer:
    engine = Engine(path)
    handler = type("BoundHandler", (Handler,), {"engine": engine})
    server = ThreadingHTTPServer((HOST, port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = argv[argv.index("--") + 1:] if "--" in argv else []
    parser = argparse.ArgumentParser(prog="python -m dynamodb_cdc.testing.chdb_http", description=__doc__.split("\n\n")[0],
                                     usage="%(prog)s [--path DIR] [--port N] [-- COMMAND ...]")
    parser.add_argument("--path", help="the chDB data directory (with a command: a temporary one by default)")
    parser.add_argument("--port", type=int, default=0, help="loopback port (0: a free one)")
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    if command:  # serve while COMMAND runs, with CLICKHOUSE_URL set to this server; exit with its code
        with tempfile.TemporaryDirectory(prefix="chdb-http-") as scratch, \
                chdb_http(args.path or scratch, args.port) as running:
            print(f"chdb_http on {running.url}: CLICKHOUSE_URL={running.url}/ {' '.join(command)}", flush=True)
            return subprocess.call(command, env={**os.environ, **command_env(running.url)})
    if not args.path:
        parser.error("--path is required")
    server = serve(args.path, args.port)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    print(f"listening on http://{HOST}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        server.RequestHandlerClass.engine.close()
    return 0


def command_env(url: str) -> dict[str, str]:
    """The variables that point a command at the chdb_http on ``url`` (``http://127.0.0.1:<port>``):
    the tests' CLICKHOUSE_URL, the loader's DYNAMODB_CDC_CLICKHOUSE_URL and what the ``server`` target
    of profiles.example.yml reads."""
    return {"CLICKHOUSE_URL": url + "/", "DYNAMODB_CDC_CLICKHOUSE_URL": url + "/", "CLICKHOUSE_HOST": HOST,
            "CLICKHOUSE_PORT": url.rsplit(":", 1)[1], "CLICKHOUSE_SECURE": "false"}


class Running:
    """A chdb_http process: its URL (``http://127.0.0.1:<port>``) and pid."""

    def __init__(self, proc: subprocess.Popen, url: str):
        self.proc, self.url, self.pid = proc, url, proc.pid

    def kill(self) -> None:
        """SIGKILL, as a server machine that loses power."""
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def start(path: str, port: int = 0, timeout: float = 60) -> Running:
    """Start a chdb_http process on ``path`` and return once it answers /ping."""
    proc = subprocess.Popen([sys.executable, "-m", "dynamodb_cdc.testing.chdb_http", "--path", str(path),
                             "--port", str(port)], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    line = proc.stdout.readline()  # blocks until it listens, or ends with the process
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"chdb_http did not start on {path} (exit code {proc.wait()})")
    url = line.split()[-1]
    proc.stdout.close()
    while True:
        try:
            urllib.request.urlopen(url + "/ping", timeout=1).read()
            return Running(proc, url)
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"chdb_http on {url} did not answer") from None
            time.sleep(0.05)


@contextlib.contextmanager
def chdb_http(path: str, port: int = 0):
    """Yield a running chdb_http on ``path`` (see Running); stop it afterwards."""
    running = start(path, port)
    try:
        yield running
    finally:
        running.stop()


if __name__ == "__main__":
    sys.exit(main())
