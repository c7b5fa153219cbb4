"""make bench's memory figures: the wrapper that runs a measured command reports its peak RSS
(from the kernel) and its peak private memory (RssAnon, sampled), which the README's memory
figures and the private-memory target come from."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[2] / "bench" / "run.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_run", RUN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_peak_private_memory_follows_what_the_command_allocates(bench):
    # 200 MB of its own memory, touched and held for half a second, then freed
    grow = ("import time; b = bytearray(200 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); "
            "time.sleep(0.5); del b; time.sleep(0.2)")
    small = bench.run([sys.executable, "-c", "import time; time.sleep(0.3)"], rss=True)
    big = bench.run([sys.executable, "-c", grow], rss=True)
    assert big.private >= 200 * 1024 * 1024 > small.private > 0
    assert big.rss >= big.private  # the kernel's peak RSS holds the private peak
    assert small.mapped > 0  # the interpreter's own code is mapped from disk


def test_a_failing_command_is_reported_with_its_exit_code(bench):
    with pytest.raises(SystemExit, match=re.escape("exited 3")):
        bench.run([sys.executable, "-c", "import sys; sys.exit(3)"], rss=True)
