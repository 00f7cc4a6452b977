"""Record-aligned blocks and the ordered thread map that the reader is built on."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.io.csv_chunks import record_blocks
from pipeline.io.prefetch import ordered_map

FIELD = st.text(alphabet=st.sampled_from(list('ab ,"\n1é')), max_size=12)


def to_csv(rows: list[list[str]], newline: str = "\n") -> bytes:
    text = io.StringIO()
    csv.writer(text, lineterminator=newline).writerows(rows)
    return text.getvalue().encode("utf-8")


def parse(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.lists(FIELD, min_size=3, max_size=3), max_size=40),
    block=st.integers(min_value=1, max_value=64),
    bom=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_blocks_hold_whole_records_and_lose_nothing(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[list[str]],
    block: int,
    bom: bool,
    newline: str,
) -> None:
    path = tmp_path_factory.mktemp("csv") / "f.csv"
    header = [["h1", "h 2", 'h"3']]
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + to_csv(header + rows, newline))
    blocks = list(record_blocks(path, block_bytes=block))
    seen: list[list[str]] = []
    for unit in blocks:
        parsed = parse(unit)
        assert parsed[0] == header[0]  # the block parses on its own, header first
        assert unit.startswith(to_csv(header, newline)) and unit.endswith(b"\n")
        seen.extend(parsed[1:])
    assert seen == rows


def test_header_only_and_no_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"a,b\n")
    assert list(record_blocks(path)) == []
    path.write_bytes(b"a,b\n1,2")
    assert list(record_blocks(path)) == [b"a,b\n1,2"]


def test_ordered_map_keeps_order_and_bounds_work_ahead() -> None:
    produced = 0
    lock = threading.Lock()

    def items() -> Iterator[int]:
        nonlocal produced
        for i in range(100):
            with lock:
                produced += 1
            yield i

    results = []
    for value in ordered_map(lambda i: i * i, items(), workers=2, depth=3):
        with lock:
            assert produced - len(results) <= 3  # never more than depth ahead
        results.append(value)
    assert results == [i * i for i in range(100)]


def test_ordered_map_reraises_the_workers_error_in_turn() -> None:
    def work(i: int) -> int:
        if i == 5:
            raise ValueError("bad item 5")
        return i

    got = []
    with pytest.raises(ValueError, match="bad item 5"):
        for value in ordered_map(work, iter(range(10))):
            got.append(value)
    assert got == [0, 1, 2, 3, 4]
