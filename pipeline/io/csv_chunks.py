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
from io import BufferedReader
from pathlib import Path

BLOCK_BYTES = 4 << 20


def _last_record_end(buf: bytes | bytearray, start: int = 0, stop: int | None = None) -> int:
    """Index just past the last newline of ``buf[start:stop]`` that ends a record (``buf``
    holds whole records before ``start``), or 0 if none does."""
    stop = len(buf) if stop is None else stop
    total = buf.count(b'"', start, stop)
    pos = buf.rfind(b"\n", start, stop)
    while pos >= 0:
        if (total - buf.count(b'"', pos + 1, stop)) % 2 == 0:
            return pos + 1
        pos = buf.rfind(b"\n", start, pos)
    return 0


def record_blocks(path: Path, block_bytes: int = BLOCK_BYTES) -> Iterator[bytes]:
    """Yield blocks of whole records, each with the header record first.

    The header (without a UTF-8 byte-order mark) comes with every block so each parses
    on its own. A file without data rows yields nothing. Each block is read into one
    reused buffer, after the header and the records the last block left over, and
    copied out once (reading into fresh bytes, joining them to what was left and then
    prefixing the header copied every block three more times, into freshly mapped
    memory).
    """
    with open(path, "rb") as fh:
        header, buf = _header(fh, block_bytes)
        work = bytearray()
        while True:
            start = len(header) + len(buf)
            if len(work) < start + block_bytes:
                work = bytearray(start + block_bytes)
            with memoryview(work) as view:
                view[: len(header)] = header
                view[len(header) : start] = buf
                stop = start + _read_into(fh, view[start : start + block_bytes])
                if stop == start:
                    break
                end = _last_record_end(work, len(header), stop)
                if end:
                    yield bytes(view[:end])
                    buf = bytes(view[end:stop])
                else:
                    buf = bytes(view[len(header) : stop])
        if buf.strip(b"\r\n"):
            yield header + buf


def _read_into(fh: BufferedReader, view: memoryview) -> int:
    """Fill ``view`` from ``fh`` (less at the end of the file); the bytes read."""
    done = 0
    while done < len(view):
        n = fh.readinto(view[done:])
        if not n:
            break
        done += n
    return done


def _header(fh: BufferedReader, block_bytes: int) -> tuple[bytes, bytes]:
    """The header record (no byte-order mark, ending in a newline) and the bytes read
    past it."""
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
    return header, buf


def _first_record_end(buf: bytes) -> int:
    """Index just past the first newline that ends a record, or 0 if none does."""
    pos = buf.find(b"\n")
    while pos >= 0:
        if buf.count(b'"', 0, pos) % 2 == 0:
            return pos + 1
        pos = buf.find(b"\n", pos + 1)
    return 0
