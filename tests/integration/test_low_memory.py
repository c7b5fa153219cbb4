"""--low-memory: the embedded engine's allocator gives freed memory back at once.

Each case runs the real CLI entry point in a fresh Python process (the allocator reads its
settings when chDB is loaded, once per process), then asks that same engine for the setting
in effect (system.jemalloc_stats)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

PROBE = """
import sys
from dynamodb_cdc import cli
from dynamodb_cdc.connection import open_client
code = cli.main(sys.argv[2:])
client = open_client("chdb://" + sys.argv[1])
stats = "\\n".join(str(r[0]) for r in client.query("SELECT * FROM system.jemalloc_stats").result_rows)
client.close()
print("EXIT", code)
print(stats)
"""


def _decay_after(tmp_path, args, env_extra=None):
    path = str(tmp_path / "chdb")
    os.mkdir(path)  # status reads an engine that exists
    env = {k: v for k, v in os.environ.items() if k not in ("JE_MALLOC_CONF", "DYNAMODB_CDC_LOW_MEMORY")}
    env.update(env_extra or {})
    p = subprocess.run([sys.executable, "-c", PROBE, path, "status", "--json", "--clickhouse-url", f"chdb://{path}",
                        *args], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0 and "EXIT 0" in p.stdout, p.stdout[-2000:] + p.stderr[-2000:]
    return int(re.search(r"opt\.dirty_decay_ms: (-?\d+)", p.stdout).group(1)), p.stdout


@pytest.mark.parametrize("args,env,expected", [
    ([], {}, 5000),  # chDB's own default: freed memory is kept 5 s
    (["--low-memory"], {}, 0),
    ([], {"DYNAMODB_CDC_LOW_MEMORY": "1"}, 0),
    (["--low-memory"], {"JE_MALLOC_CONF": "muzzy_decay_ms:0"}, 0),  # a user's own setting is kept, and added to
], ids=["default", "flag", "env", "flag-with-user-conf"])
def test_low_memory_sets_the_engine_allocator(tmp_path, args, env, expected):
    decay, stats = _decay_after(tmp_path, args, env)
    assert decay == expected
    if env.get("JE_MALLOC_CONF"):
        assert '"muzzy_decay_ms:0,dirty_decay_ms:0"' in stats
