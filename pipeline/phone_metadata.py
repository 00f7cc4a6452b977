"""NANP validity rules derived at run time from libphonenumber's metadata.

No hand-kept lists: every pattern here is read from the ``phonenumbers`` package, so
a newer release of it updates our idea of "valid". The rules mirror
``phonenumbers.is_valid_number`` for ten-digit numbers with country code 1:

* the region of a number is the first region of ``COUNTRY_CODE_TO_REGION_CODE[1]``
  (US first) that claims it: a region with ``leading_digits`` claims every number
  that starts with them; one without claims a number only if it matches one of the
  region's number types;
* the number is valid when it matches its region's general pattern and one of its
  type patterns.

:mod:`pipeline.validity_table` turns these into a lookup table the vectorized
normalizer reads; the tests check the result against ``phonenumbers`` itself.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneMetadata

NATIONAL_LENGTH = 10
"""A NANP national number: 3-digit area code, 3-digit exchange, 4-digit line."""

PREFIX_LENGTH = 4
"""Leading-digit rules are resolved on this many digits (checked when built)."""

NANP_REGIONS: tuple[str, ...] = tuple(phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1])

_TYPE_FIELDS = (
    "fixed_line",
    "mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "personal_number",
    "voip",
    "pager",
    "uan",
    "voicemail",
)


@dataclass(frozen=True)
class RegionRule:
    """What libphonenumber says about one NANP region, for ten-digit numbers."""

    region: str
    leading_digits: str | None
    general_pattern: str
    type_pattern: str | None

    @property
    def general_regex(self) -> str:
        return f"^(?:{self.general_pattern})$"

    @property
    def type_regex(self) -> str | None:
        return None if self.type_pattern is None else f"^(?:{self.type_pattern})$"


def _lengths_allow(lengths: tuple[int, ...] | None, general: tuple[int, ...]) -> bool:
    allowed = tuple(lengths or ()) or general
    return NATIONAL_LENGTH in allowed


def _rule(region: str) -> RegionRule:
    meta = PhoneMetadata.metadata_for_region(region)
    if meta is None:  # pragma: no cover - metadata ships with the package
        raise RuntimeError(f"phonenumbers has no metadata for NANP region {region}")
    general = meta.general_desc
    if general is None or not general.national_number_pattern:  # pragma: no cover
        raise RuntimeError(f"phonenumbers has no general pattern for NANP region {region}")
    general_lengths = tuple(general.possible_length or ())
    types = []
    for field in _TYPE_FIELDS:
        desc = getattr(meta, field)
        if desc is None or desc.national_number_pattern is None:
            continue
        if _lengths_allow(desc.possible_length, general_lengths):
            types.append(desc.national_number_pattern)
    if not _lengths_allow(general_lengths, ()):
        types = []
    return RegionRule(
        region=region,
        leading_digits=meta.leading_digits,
        general_pattern=general.national_number_pattern,
        type_pattern="|".join(f"(?:{t})" for t in types) or None,
    )


@functools.cache
def region_rules() -> tuple[RegionRule, ...]:
    """The NANP regions in libphonenumber's claim order, with their patterns."""
    return tuple(_rule(region) for region in NANP_REGIONS)


@functools.cache
def leading_digit_claims() -> dict[str, str]:
    """Map each 4-digit prefix to the first leading-digits region that claims it.

    Raises RuntimeError if some region's leading digits need more than
    ``PREFIX_LENGTH`` digits (a metadata change we would have to follow).
    """
    claims: dict[str, str] = {}
    candidates = [f"{value:0{PREFIX_LENGTH}d}" for value in range(10**PREFIX_LENGTH)]
    for rule in region_rules():
        if rule.leading_digits is None:
            continue
        # A pattern that can never consume more than PREFIX_LENGTH characters decides
        # its match on the prefix alone, so matching the bare prefixes is exact.
        widest = re._parser.parse(rule.leading_digits).getwidth()[1]  # type: ignore[attr-defined]
        if widest > PREFIX_LENGTH:
            raise RuntimeError(
                f"leading digits {rule.leading_digits!r} of {rule.region} need more than "
                f"{PREFIX_LENGTH} digits; update pipeline.phone_metadata"
            )
        pattern = re.compile(rule.leading_digits)
        for prefix in candidates:
            if pattern.match(prefix):
                claims.setdefault(prefix, rule.region)
    return claims


def claim_order() -> list[tuple[str, ...]]:
    """Consecutive runs of the claim order: a lone type-checked region, or a run of
    leading-digits regions (which are resolved together by prefix)."""
    runs: list[tuple[str, ...]] = []
    for rule in region_rules():
        if rule.leading_digits is None:
            runs.append((rule.region,))
        elif runs and region_rule(runs[-1][0]).leading_digits is not None:
            runs[-1] = (*runs[-1], rule.region)
        else:
            runs.append((rule.region,))
    return runs


def region_rule(region: str) -> RegionRule:
    """The rule of one NANP region."""
    for rule in region_rules():
        if rule.region == region:
            return rule
    raise KeyError(region)
