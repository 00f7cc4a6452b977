"""Find a CSV file's text encoding and fingerprint it, in one streamed pass.

polars reads UTF-8 only, so any other encoding is transcoded to a temporary UTF-8
file first (streamed, bounded memory). ``auto`` looks for a byte-order mark, then
checks the whole file is UTF-8, then falls back to cp1252 (which also reads
latin-1 text except its C1 controls). Anything else needs ``input.encoding``.
"""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import InputError

CHUNK = 1 << 20
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
POLARS_READS = ("utf-8", "utf-8-sig")
"""Encodings polars reads as they are (it skips a UTF-8 byte-order mark)."""


@dataclass(frozen=True)
class Sniffed:
    """What one pass over the file found."""

    encoding: str
    fingerprint: str
    size: int


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def fingerprint(path: Path) -> str:
    """sha256 of the file's bytes: the identity of an input across runs."""
    digest = hashlib.sha256()
    for chunk in _chunks(path):
        digest.update(chunk)
    return digest.hexdigest()


def _first_bad_byte(path: Path, encoding: str) -> int | None:
    """Offset of the first byte ``encoding`` cannot decode, or None if it all decodes."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    for chunk in _chunks(path):
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            return offset + max(exc.start, 0)
        offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return offset
    return None


def sniff(path: Path, encoding: str = "auto") -> Sniffed:
    """Fingerprint the file and settle its encoding; raise InputError if unreadable."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8_error: int | None = None
    nul_at: int | None = None
    offset = 0
    head = b""
    for chunk in _chunks(path):
        if not head:
            head = chunk[:4]
        digest.update(chunk)
        if nul_at is None and (at := chunk.find(b"\x00")) >= 0:
            nul_at = offset + at
        if utf8_error is None:
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                utf8_error = offset + max(exc.start, 0)
        offset += len(chunk)
    if utf8_error is None:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8_error = offset
    size = offset
    if encoding == "auto":
        bom = next((name for mark, name in _BOMS if head.startswith(mark)), None)
        if bom is not None and bom != "utf-8-sig":
            encoding = bom
        elif nul_at is not None:
            raise InputError(
                f"{path}: unreadable encoding: binary data (a NUL byte at offset {nul_at}); "
                "expected CSV text, or set input.encoding"
            )
        elif utf8_error is None:
            encoding = "utf-8-sig" if bom else "utf-8"
        elif (bad := _first_bad_byte(path, "cp1252")) is None:
            encoding = "cp1252"
        else:
            raise InputError(
                f"{path}: unreadable encoding: not UTF-8 (byte {utf8_error}) nor cp1252 "
                f"(byte {bad}); set input.encoding to the file's encoding"
            )
    elif encoding in POLARS_READS and utf8_error is not None:
        raise InputError(f"{path}: not valid {encoding}: bad byte at offset {utf8_error}")
    return Sniffed(encoding=encoding, fingerprint=digest.hexdigest(), size=size)


def transcode(source: Path, encoding: str, target: Path) -> None:
    """Stream ``source`` from ``encoding`` into ``target`` as UTF-8."""
    try:
        with (
            open(source, encoding=encoding, newline="") as src,
            open(target, "w", encoding="utf-8", newline="") as dst,
        ):
            while text := src.read(CHUNK):
                dst.write(text)
    except UnicodeDecodeError as exc:
        target.unlink(missing_ok=True)
        raise InputError(
            f"{source}: not valid {encoding}: {exc.reason} near byte {exc.start}; "
            "set input.encoding to the file's encoding"
        ) from None
