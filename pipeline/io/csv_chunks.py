"""Cut a UTF-8 CSV file into blocks of whole records, read with plain buffered I/O.

polars' own CSV scan memory-maps the file, so the mapped pages count in the
process's RSS and it grows with the file (about 700 MB at 10M rows). Reading blocks
ourselves keeps memory flat whatever the file size. A block must end on a record
boundary: a newline outside quotes. RFC 4180 doubles quotes inside quoted fields,
so a newline is outside quotes exactly when the number of quote characters before
it is even.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path

BLOCK_BYTES = 4 << 20


def _last_record_end(buf: bytes) -> int:
    """Index just past the last newline that ends a record, or 0 if none does."""
    total = buf.count(b'"')
    pos = buf.rfind(b"\n")
    while pos >= 0:
        if (total - buf.count(b'"', pos + 1)) % 2 == 0:
            return pos + 1
        pos = buf.rfind(b"\n", 0, pos)
    return 0


def record_blocks(path: Path, block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[bytes, bytes]]:
    """Yield ``(header, block)``: the header record and a block of whole records.

    The header (without a UTF-8 byte-order mark) comes with every block so each
    parses on its own. A file without data rows yields nothing.
    """
    with open(path, "rb") as fh:
        buf = fh.read(block_bytes)
        header_end = 0
        while not header_end:
            header_end = _first_record_end(buf)
            if header_end:
                break
            more = fh.read(block_bytes)
            if not more:
                header_end = len(buf)
                break
            buf += more
        header, buf = buf[:header_end], buf[header_end:]
        header = header.removeprefix(codecs.BOM_UTF8)
        if not header.endswith(b"\n"):
            header += b"\n"
        while True:
            more = fh.read(block_bytes)
            if not more:
                break
            buf += more
            end = _last_record_end(buf)
            if end:
                yield header, buf[:end]
                buf = buf[end:]
        if buf.strip(b"\r\n"):
            yield header, buf


def _first_record_end(buf: bytes) -> int:
    """Index just past the first newline that ends a record, or 0 if none does."""
    pos = buf.find(b"\n")
    while pos >= 0:
        if buf.count(b'"', 0, pos) % 2 == 0:
            return pos + 1
        pos = buf.find(b"\n", pos + 1)
    return 0
