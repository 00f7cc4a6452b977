"""The North American numbering rules every emulated provider applies to a phone, and
the Canadian area codes that decide a number's country.

Apart from the pipeline's own rules (:mod:`pipeline.phone_metadata`, derived from
libphonenumber) on purpose: an emulator stands in for someone else's API, so it applies
what those APIs document (10 digits; area code and exchange start 2-9; the 555-0100 to
555-0199 range reserved for fiction), not what the pipeline believes. A mistake in the
normalizer then shows as a disagreement with the emulator instead of being copied into
it, and a newer libphonenumber cannot change what an emulator answers (tests and
benchmarks pin its answers).
"""

from __future__ import annotations

_CANADA = "204 226 236 249 250 289 306 343 365 403 416 418 431 437 438 450 506 514 519 548 579 581 587 604 613 639 647 672 705 709 778 780 782 807 819 825 867 873 902 905"  # noqa: E501
CANADIAN_AREA_CODES = frozenset(_CANADA.split(" "))


def ten_digits(text: str) -> bool:
    """Exactly 10 ASCII digits (no leading 1 or +, no punctuation)."""
    return len(text) == 10 and text.isascii() and text.isdigit()


def nanp_shaped(number: str) -> bool:
    """Area code and exchange of a 10-digit number both start 2-9."""
    return number[0] not in "01" and number[3] not in "01"


def fictional(number: str) -> bool:
    """In the range reserved for fiction: exchange 555, line 0100-0199."""
    return number[3:6] == "555" and number[6:8] == "01"


def country(number: str) -> str:
    """``CA`` for a Canadian area code, else ``US`` (the emulators know no other)."""
    return "CA" if number[:3] in CANADIAN_AREA_CODES else "US"
