"""s3export.Segmenter cuts a decompressed data file into batches of whole lines, each in a file of
its own, numbered exactly as s3export.iter_lines numbers them, however the bytes arrive."""

from __future__ import annotations

import io
import random

import pytest

from dynamodb_cdc.s3export import Segmenter, iter_lines


def cut(data: bytes, max_rows: int, max_bytes: int, piece_sizes=None) -> list[tuple[int, int, bytes]]:
    s = Segmenter(max_rows, max_bytes)
    pos = 0
    sizes = iter(piece_sizes or [])
    while pos < len(data):
        n = next(sizes, len(data))
        s.write(data[pos:pos + n])
        pos += n
    out = []
    for seg in s.finish():
        content = seg.file.read()
        assert len(content) == seg.size
        out.append((seg.first_line, seg.lines, content))
        seg.file.close()
    return out


def lines_of(segments) -> list[tuple[int, bytes]]:
    """The lines as insert_segment numbers them (its Python path)."""
    out = []
    for first, count, content in segments:
        parts = content.split(b"\n")
        if parts[-1] == b"":
            parts.pop()
        assert len(parts) == count, (first, count, content)
        out.extend((first + i, p.rstrip(b"\r")) for i, p in enumerate(parts))
    return out


def check(data: bytes, max_rows: int, max_bytes: int, piece_sizes=None):
    segments = cut(data, max_rows, max_bytes, piece_sizes)
    assert b"".join(c for _, _, c in segments) == data  # nothing lost, nothing added, in order
    assert lines_of(segments) == list(iter_lines(io.BytesIO(data)))  # same lines, same numbers
    for i, (first, count, content) in enumerate(segments):
        assert 1 <= count <= max_rows
        if i + 1 < len(segments):
            assert content.endswith(b"\n")  # a line is never split between segments
        body = content[:-1] if content.endswith(b"\n") else content
        last_line_start = body.rfind(b"\n") + 1
        # over max_bytes only to keep its last line whole
        assert len(content) <= max_bytes or last_line_start < max_bytes, (content, max_bytes)
        if i + 1 < len(segments):  # no segment ends early: the next line would not have fitted
            nxt = segments[i + 1][2]
            next_line = nxt[:nxt.find(b"\n") + 1] if b"\n" in nxt else nxt
            assert count == max_rows or len(content) + len(next_line) > max_bytes
    return segments


CASES = [b"", b"\n", b"x", b"a\nb\n", b"a\nb", b"a\n\n\n", b"\r\n\r\n", b"a\r\nb\rc\n", b"\n\nz"]


@pytest.mark.parametrize("data", CASES)
@pytest.mark.parametrize("max_rows,max_bytes", [(1, 1), (2, 3), (100, 1 << 20)])
def test_same_lines_as_iter_lines(data, max_rows, max_bytes):
    check(data, max_rows, max_bytes)


def test_random_files_limits_and_piece_boundaries():
    rng = random.Random(5)
    for _ in range(500):
        lines = [bytes(rng.choice(b"ab\r{}") for _ in range(rng.choice([0, 1, 5, 40]))) for _ in range(rng.randint(0, 30))]
        data = b"\n".join(lines) + (b"\n" if rng.random() < 0.7 else b"")
        pieces = [rng.randint(1, 50) for _ in range(len(data))]
        check(data, rng.randint(1, 8), rng.randint(1, 64), pieces)


def test_a_line_longer_than_max_bytes_is_never_cut():
    data = b"short\n" + b"L" * 5000 + b"\nend\n"
    segments = check(data, 10, 100)  # seen at once: the long line gets a segment of its own
    assert [(first, count) for first, count, _ in segments] == [(1, 1), (2, 1), (3, 1)]
    assert segments[1][2] == b"L" * 5000 + b"\n"
    # arriving in small pieces, the long line was begun in the first segment: that one grows to hold it
    segments = check(data, 10, 100, [7] * 1000)
    assert [(first, count) for first, count, _ in segments] == [(1, 2), (3, 1)]
    assert segments[0][2] == b"short\n" + b"L" * 5000 + b"\n"


def test_rows_limit_cuts_exactly():
    data = b"".join(b"%d\n" % i for i in range(1, 26))
    segments = check(data, 10, 1 << 20)
    assert [(first, count) for first, count, _ in segments] == [(1, 10), (11, 10), (21, 5)]
