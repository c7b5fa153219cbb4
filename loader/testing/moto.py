"""Run moto in server mode on a free loopback port, and stop it again."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import sys

HOST = "127.0.0.1"  # never anything outside 127.0.0.0/8


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# The server binds port 0 itself and reports the port the system gave it, so no other process (another
# test worker, say) can take the port between choosing it and binding it.  It serves until its stdin
# closes or it is terminated.
_SERVE = """
import os, sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address=sys.argv[1], port=0, verbose=False)
server.start()
port = server.get_host_and_port()[1]
os.environ["MOTO_PORT"] = str(port)
print(port, flush=True)
sys.stdin.read()
"""


@contextlib.contextmanager
def moto_server(*, set_env: bool = True):
    """Yield the endpoint URL of a fresh moto server; with set_env, point boto3 at it."""
    proc = subprocess.Popen([sys.executable, "-c", _SERVE, HOST], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    saved = {k: os.environ.get(k) for k in ENV}
    try:
        url = f"http://{HOST}:{_reported_port(proc, 60)}"
        if set_env:
            os.environ.update(env_for(url))
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        proc.stdin.close()
        proc.stdout.close()
        if set_env:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _reported_port(proc: subprocess.Popen, timeout: float) -> int:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    if not line.strip().isdigit():
        raise RuntimeError(f"moto server did not report its port within {timeout:.0f} s"
                           + (f" (it exited {proc.poll()})" if proc.poll() is not None else ""))
    return int(line)


ENV = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")


def env_for(url: str) -> dict[str, str]:
    """Environment that sends boto3 (and the loader) to the moto server at ``url``."""
    return {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
