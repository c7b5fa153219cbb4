"""load_export.iter_blocks cuts a decompressed data file into runs of whole lines, numbered
exactly as s3export.iter_lines numbers them."""

from __future__ import annotations

import io
import random

import pytest

from dynamodb_cdc.load_export import iter_blocks
from dynamodb_cdc.s3export import iter_lines


def lines_of_blocks(data: bytes, **kw):
    out = []
    for first, count, block in iter_blocks(io.BytesIO(data), **kw):
        parts = block.split(b"\n")
        if block.endswith(b"\n"):
            parts.pop()
        assert len(parts) == count, (first, count, block)
        assert count <= kw["max_rows"]
        out.extend((first + i, p.rstrip(b"\r")) for i, p in enumerate(parts))
    return out


CASES = [b"", b"\n", b"x", b"a\nb\n", b"a\nb", b"a\n\n\n", b"\r\n\r\n", b"a\r\nb\rc\n", b"\n\nz"]


@pytest.mark.parametrize("data", CASES)
@pytest.mark.parametrize("max_rows,max_bytes", [(1, 1), (2, 3), (100, 1 << 20)])
def test_same_lines_as_iter_lines(data, max_rows, max_bytes):
    assert lines_of_blocks(data, max_rows=max_rows, max_bytes=max_bytes) == list(iter_lines(io.BytesIO(data)))


def test_random_files_any_limits_and_resume_point():
    rng = random.Random(5)
    for _ in range(300):
        lines = [bytes(rng.choice(b"ab\r{}") for _ in range(rng.choice([0, 1, 5, 40]))) for _ in range(rng.randint(0, 30))]
        data = b"\n".join(lines) + (b"\n" if rng.random() < 0.7 else b"")
        start = rng.randint(0, len(lines) + 1)
        kw = {"max_rows": rng.randint(1, 8), "max_bytes": rng.randint(1, 64)}
        got = lines_of_blocks(data, start_after=start, **kw)
        assert got == list(iter_lines(io.BytesIO(data), start_after=start)), (data, start, kw)


def test_a_line_longer_than_max_bytes_is_never_cut():
    data = b"short\n" + b"L" * 5000 + b"\nend\n"
    blocks = list(iter_blocks(io.BytesIO(data), max_rows=10, max_bytes=100))
    assert [(first, count) for first, count, _ in blocks] == [(1, 1), (2, 2)]
    assert blocks[1][2] == b"L" * 5000 + b"\nend\n"
