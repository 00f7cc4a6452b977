"""Line ends of a CSV file: LF or CRLF (what polars reads), or the classic-Mac bare CR.

polars ends a record only at an LF (a CR just before it goes with it); a bare CR is text
to it. So a classic-Mac file, every line ended by a bare CR, would read as one long header
line and no rows, and a stray bare CR in an LF file would glue two lines into one record
(a row merged into another, silently when the field counts happen to fit). A CR inside a
quoted field is part of that value and is kept as it is.

The common case costs one byte search per chunk (an LF file: is there a CR at all?) or
one regex search (a CRLF file: a CR without its LF?), taken during the sniff pass
(:class:`LineEnds`). Only a file that holds a bare CR gets the quote-aware pass
(:func:`line_style`), which tells three cases apart:

* no bare CR outside quotes: read as it is;
* bare CRs outside quotes and no LF outside quotes: a classic-Mac file, read with each
  such CR as the line end (:class:`CrToLf` makes the UTF-8 copy that polars reads);
* both: refused, naming the row that holds the first bare CR (rows counted by their LF
  ends, as polars counts them), because whether it splits that row in two or is a stray
  byte inside it cannot be known.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipeline.errors import InputError

CHUNK = 1 << 20
LineStyle = Literal["lf", "cr"]
_BARE_CR = re.compile(rb"\r(?!\n)")


def whole_chunks(path: Path, size: int = CHUNK) -> Iterator[bytes]:
    """The file's bytes in chunks, none ending in a CR unless the file does, so that a
    CRLF is never cut in two (the counts below would take its CR for a bare one)."""
    with open(path, "rb") as fh:
        while chunk := fh.read(size):
            while chunk.endswith(b"\r") and (more := fh.read(1)):
                chunk += more
            yield chunk


@dataclass
class LineEnds:
    """Which line-end bytes the file holds, quotes ignored (C-speed searches only)."""

    cr: bool = False
    lf: bool = False
    bare_cr: bool = False
    """A CR that no LF follows: the file needs :func:`line_style`."""

    def feed(self, chunk: bytes) -> None:
        """Look at one chunk from :func:`whole_chunks` (or one that never ends in a CR)."""
        self.lf = self.lf or b"\n" in chunk
        if not self.bare_cr and b"\r" in chunk:
            self.cr = True
            self.bare_cr = _BARE_CR.search(chunk) is not None


def outside_quotes(path: Path, stop: int | None = None) -> Iterator[tuple[int, bytes]]:
    """``(offset, bytes)`` of each stretch of the file outside quoted fields, up to byte
    ``stop``. RFC 4180 doubles a quote inside a quoted field, so quote parity is exact."""
    inside = False
    offset = 0
    for chunk in whole_chunks(path):
        if stop is not None and offset + len(chunk) > stop:
            chunk = chunk[: max(stop - offset, 0)]
        pos = 0
        for part in chunk.split(b'"'):
            if not inside and part:
                yield offset + pos, part
            pos += len(part) + 1
            inside = not inside
        inside = not inside  # the chunk's last part is not followed by a quote
        offset += len(chunk)
        if stop is not None and offset >= stop:
            return


def _first_bare_cr(text: bytes) -> int:
    """Index of the first CR in ``text`` that no LF follows, or -1."""
    found = _BARE_CR.search(text)
    return -1 if found is None else found.start()


def line_style(read_path: Path, shown: Path) -> LineStyle:
    """How ``read_path`` (UTF-8 or ASCII-compatible bytes) ends its lines; raise InputError
    naming ``shown`` and the row when a bare CR stands among LF line ends (and the byte
    offset too when ``read_path`` is ``shown``, not a transcoded copy)."""
    lf_ends = 0
    first: tuple[int, int] | None = None  # (offset, LF ends before it) of the first bare CR
    for offset, text in outside_quotes(read_path):
        if first is None and (at := _first_bare_cr(text)) >= 0:
            first = (offset + at, lf_ends + text.count(b"\n", 0, at))
        lf_ends += text.count(b"\n")
    if first is None:
        return "lf"
    if lf_ends == 0:
        return "cr"
    at, row = first
    where = f"row {row}" if row else "the header"
    byte = f", byte {at}" if read_path == shown else ""
    raise InputError(
        f"{shown}: mixed line ends: {where} holds a lone carriage return (CR{byte}) "
        "outside quotes while the file's lines end in LF or CRLF, so it may split that row "
        "in two; remove the CR or quote the field, or convert the file's line ends"
    )


def row_at(path: Path, offset: int, newline: bytes = b"\n") -> int:
    """The data row (1-based; 0 is the header) that holds byte ``offset`` of ``path``:
    the line ends outside quotes before it. Used on error paths only."""
    return sum(text.count(newline) for _, text in outside_quotes(path, stop=offset))


class CrToLf:
    """Turn a classic-Mac text stream's line ends (CRs outside quotes) into LFs, chunk by
    chunk; a CR inside a quoted field is part of the value and stays."""

    def __init__(self) -> None:
        self._inside = False

    def __call__(self, text: str) -> str:
        parts = text.split('"')
        start = 1 if self._inside else 0
        parts[start::2] = [part.replace("\r", "\n") for part in parts[start::2]]
        if len(parts) % 2 == 0:  # an odd number of quotes flips the state
            self._inside = not self._inside
        return '"'.join(parts)
