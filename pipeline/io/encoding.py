"""Find a CSV file's text encoding and fingerprint it, in one streamed pass.

polars reads UTF-8 only, so any other encoding (and UTF-8 whose bad bytes are to be
replaced) is transcoded to a temporary UTF-8 file first (streamed, bounded memory).
``auto`` decides, in this order:

1. a byte-order mark names the encoding (UTF-8, UTF-16, UTF-32);
2. a NUL byte (without a UTF-16/32 mark) is binary data: refused;
3. valid UTF-8 throughout: UTF-8;
4. valid UTF-8 multi-byte sequences (``é`` = C3 A9, or a UTF-8 mark) *and* invalid bytes:
   UTF-8 with damage. cp1252 text almost never forms valid multi-byte UTF-8, so reading
   such a file as cp1252 would turn every accented letter into mojibake (``José`` ->
   ``JosÃ©``) for one stray byte: refused, naming the first bad byte's offset and row,
   unless ``input.encoding_errors = "replace"`` (or ``input.encoding`` says otherwise);
5. otherwise cp1252 (which also reads latin-1 text except its C1 controls).

Anything else needs ``input.encoding``. With ``encoding_errors = "replace"`` each byte the
codec cannot decode becomes U+FFFD, and the count of such bytes goes to the report.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import threading
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pipeline.errors import InputError
from pipeline.io.line_ends import CHUNK, CrToLf, LineEnds, row_at, whole_chunks

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
POLARS_READS = ("utf-8", "utf-8-sig")
"""Encodings polars reads as they are (it skips a UTF-8 byte-order mark)."""

Errors = Literal["strict", "replace"]

# One valid UTF-8 sequence of two to four bytes (no overlongs, no surrogates).
_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]"
    rb"|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]"
    rb"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)

_REPLACED: ContextVar[list[int] | None] = ContextVar("phone_enrich_replaced", default=None)
_REPLACE = "phone_enrich.replace_counted"


def _replace_counted(exc: UnicodeError) -> tuple[str, int]:
    """``errors="replace"`` that also counts the replaced bytes (in this thread's counter)."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    counter = _REPLACED.get()
    if counter is not None:
        counter[0] += exc.end - exc.start
    return "\ufffd", exc.end


codecs.register_error(_REPLACE, _replace_counted)


@dataclass(frozen=True)
class Sniffed:
    """What one pass over the file found."""

    encoding: str
    fingerprint: str
    line_ends: LineEnds = field(default_factory=LineEnds)
    """Line-end bytes of the raw file (meaningful when it is read without a copy)."""
    needs_copy: bool = False
    """polars cannot read the file as it is: another encoding, or bad bytes to replace."""


@dataclass
class _Scan:
    """Everything the sniff pass learns, chunk by chunk."""

    size: int = 0
    head: bytes = b""
    nul_at: int | None = None
    utf8_error: int | None = None
    multibyte: bool = False
    line_ends: LineEnds = field(default_factory=LineEnds)
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)
    _pending: bytes = b""  # an incomplete UTF-8 sequence at the end of the last chunk
    _tail: bytes = b""

    def feed(self, chunk: bytes) -> None:
        if not self.size:
            self.head = chunk[:4]
        self.digest.update(chunk)
        self.line_ends.feed(chunk)
        if self.nul_at is None and (at := chunk.find(b"\x00")) >= 0:
            self.nul_at = self.size + at
        if self.utf8_error is None:
            self._decode(chunk)
        elif not self.multibyte and not chunk.isascii():
            # Past the first bad byte only the question "any valid UTF-8 at all?" is left.
            self.multibyte = _MULTIBYTE.search(self._tail + chunk) is not None
        self._tail = (self._tail + chunk[-3:])[-3:]  # a sequence may span chunks
        self.size += len(chunk)

    def _decode(self, chunk: bytes) -> None:
        if not self._pending and chunk.isascii():  # ASCII is UTF-8, with no multi-byte
            return  # (10x cheaper than decoding it)
        data = self._pending + chunk
        try:
            text, used = codecs.utf_8_decode(data, "strict", False)
        except UnicodeDecodeError as exc:
            self.utf8_error = self.size - len(self._pending) + exc.start
            self.multibyte = self.multibyte or _MULTIBYTE.search(data) is not None
            return
        # Fewer characters than bytes: some were multi-byte sequences (or the mark).
        self.multibyte = self.multibyte or used != len(text)
        self._pending = data[used:]

    def finish(self) -> None:
        if self.utf8_error is None and self._pending:  # the file ends mid-sequence
            self.utf8_error = self.size - len(self._pending)


def fingerprint(path: Path) -> str:
    """sha256 of the file's bytes: the identity of an input across runs."""
    digest = hashlib.sha256()
    for chunk in whole_chunks(path):
        digest.update(chunk)
    return digest.hexdigest()


def _first_bad_byte(path: Path, encoding: str) -> int | None:
    """Offset of the first byte ``encoding`` cannot decode, or None if it all decodes."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    for chunk in whole_chunks(path):
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


def _where(path: Path, scan: _Scan) -> str:
    """``byte N (0xXX, row R)`` of the first bad UTF-8 byte (error path only)."""
    assert scan.utf8_error is not None
    with open(path, "rb") as fh:
        fh.seek(scan.utf8_error)
        byte = fh.read(1)
    newline = b"\r" if scan.line_ends.cr and not scan.line_ends.lf else b"\n"
    row = row_at(path, scan.utf8_error, newline)
    shown = f"0x{byte[0]:02X}, " if byte else ""
    return f"byte {scan.utf8_error} ({shown}{f'row {row}' if row else 'the header'})"


_HOW_TO_FORCE = (
    'set input.encoding_errors = "replace" to read it as UTF-8 with each bad byte replaced '
    "by U+FFFD (counted in report.json)"
)


def _settle(path: Path, scan: _Scan, errors: Errors) -> str:
    """The encoding ``auto`` chooses, or InputError."""
    bom = next((name for mark, name in _BOMS if scan.head.startswith(mark)), None)
    if bom is not None and bom != "utf-8-sig":
        return bom
    if scan.nul_at is not None:
        raise InputError(
            f"{path}: unreadable encoding: binary data (a NUL byte at offset {scan.nul_at}); "
            "expected CSV text, or set input.encoding"
        )
    utf8 = "utf-8-sig" if bom else "utf-8"
    if scan.utf8_error is None:
        return utf8
    if scan.multibyte:  # the mark counts: U+FEFF is itself a multi-byte sequence
        if errors == "replace":
            return utf8
        raise InputError(
            f"{path}: damaged UTF-8: {_where(path, scan)} is not UTF-8, yet the file holds "
            "valid UTF-8 text (such as accented letters), so it is not cp1252 either; fix "
            f'the byte, or {_HOW_TO_FORCE}, or set input.encoding = "cp1252" if it is cp1252'
        )
    if errors == "replace" or (bad := _first_bad_byte(path, "cp1252")) is None:
        return "cp1252"
    raise InputError(
        f"{path}: unreadable encoding: not UTF-8 (byte {scan.utf8_error}) nor cp1252 "
        f"(byte {bad}); set input.encoding to the file's encoding"
    )


_Identity = tuple[int, int, int, int]
_EARLY: dict[tuple[str, str, str], tuple[threading.Thread, list[tuple[_Identity, Sniffed]]]] = {}
"""Sniffs started ahead (:func:`sniff_soon`), by (real path, encoding, errors)."""


def _identity(path: Path) -> _Identity | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev


def sniff_soon(path: Path, encoding: str = "auto", errors: Errors = "strict") -> None:
    """Start sniffing ``path`` on a thread of its own, for :func:`sniff` to take up.

    The CLI calls this before it imports the rest of the program (polars, pydantic:
    0.2 s on one core), so the pass over the file (0.09 s for 100 MB, mostly the hash,
    which lets go of the GIL) runs beside the imports instead of after them. Its result
    is used only if the file looks the same (size, mtime, inode) as before the pass;
    a failure is left for the sniff that takes it up to meet again and report.
    """
    key = (os.path.realpath(path), encoding, errors)
    if key in _EARLY:
        return
    _EARLY.clear()  # one ahead at most: one not taken up is dropped with its thread
    found: list[tuple[_Identity, Sniffed]] = []

    def work() -> None:
        before = _identity(path)
        try:
            sniffed = _sniff(path, encoding, errors, CHUNK)
        except Exception:  # read again, and reported, by sniff()
            return
        if before is not None and _identity(path) == before:
            found.append((before, sniffed))

    thread = threading.Thread(target=work, name="phone-enrich-sniff", daemon=True)
    _EARLY[key] = (thread, found)
    thread.start()


def sniff(
    path: Path, encoding: str = "auto", errors: Errors = "strict", chunk_bytes: int = CHUNK
) -> Sniffed:
    """Fingerprint the file and settle its encoding; raise InputError if unreadable.

    What :func:`sniff_soon` found for the same file is taken if the file has not
    changed since that pass began."""
    early = _EARLY.pop((os.path.realpath(path), encoding, errors), None)
    if early is not None and chunk_bytes == CHUNK:
        thread, found = early
        thread.join()
        if found and _identity(path) == found[0][0]:
            return found[0][1]
    return _sniff(path, encoding, errors, chunk_bytes)


def _sniff(path: Path, encoding: str, errors: Errors, chunk_bytes: int) -> Sniffed:
    scan = _Scan()
    for chunk in whole_chunks(path, chunk_bytes):
        scan.feed(chunk)
    scan.finish()
    if encoding == "auto":
        encoding = _settle(path, scan, errors)
    elif encoding in POLARS_READS and scan.utf8_error is not None and errors == "strict":
        raise InputError(
            f"{path}: not valid {encoding}: bad {_where(path, scan)}; {_HOW_TO_FORCE}, "
            "or set input.encoding to the file's encoding"
        )
    damaged = encoding in POLARS_READS and scan.utf8_error is not None
    return Sniffed(
        encoding=encoding,
        fingerprint=scan.digest.hexdigest(),
        line_ends=scan.line_ends,
        needs_copy=encoding not in POLARS_READS or damaged,
    )


@dataclass(frozen=True)
class Transcoded:
    """What writing the UTF-8 copy found."""

    replaced_bytes: int
    line_ends: LineEnds


def transcode(
    source: Path,
    encoding: str,
    target: Path,
    *,
    errors: Errors = "strict",
    cr_line_ends: bool = False,
) -> Transcoded:
    """Stream ``source`` from ``encoding`` into ``target`` as UTF-8; with ``cr_line_ends``
    its line ends (CRs outside quotes) become LFs."""
    counter = [0]
    token = _REPLACED.set(counter)
    ends = LineEnds()
    to_lf = CrToLf() if cr_line_ends else None
    handler = _REPLACE if errors == "replace" else "strict"
    try:
        with (
            open(source, encoding=encoding, errors=handler, newline="") as src,
            open(target, "wb") as dst,
        ):
            while text := src.read(CHUNK):
                while text.endswith("\r") and (more := src.read(1)):
                    text += more  # keep a CRLF whole for the counts
                if to_lf is not None:
                    text = to_lf(text)
                data = text.encode("utf-8")
                ends.feed(data)
                dst.write(data)
    except UnicodeDecodeError as exc:
        target.unlink(missing_ok=True)
        at = _first_bad_byte(source, encoding)  # exc.start counts from the codec's buffer
        raise InputError(
            f"{source}: not valid {encoding}: {exc.reason} at byte {at}; set input.encoding "
            f'to the file\'s encoding, or input.encoding_errors = "replace"'
        ) from None
    finally:
        _REPLACED.reset(token)
    return Transcoded(counter[0], ends)
