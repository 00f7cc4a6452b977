"""The stable hashes emulated answers are drawn from: the same number gets the same
answer in every process and on every machine (never Python's ``hash``, which is salted
per process).
"""

from __future__ import annotations

import hashlib
from zlib import crc32

_MIX, _MASK = 0x9E3779B97F4A7C15, (1 << 64) - 1


def blake64(text: str) -> int:
    """64 bits of BLAKE2b: for answers that are a function of several fields."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def crc_mix(text: str, seed: int = 0) -> int:
    """CRC-32 of ``text`` spread over 64 bits by a multiply: a tenth of BLAKE2b's cost,
    for the emulators that answer a thousand numbers per request."""
    return crc32(text.encode(), seed) * _MIX & _MASK
