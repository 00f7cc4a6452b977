"""One verdict per row, for calling the number: the rules, in one table.

A row's ``contact_verdict`` is about the phone the row ends with (an appended one
where the input's was invalid), made from the providers' own documented advice:

* TCPA Authority: ``IsReassigned = true`` "do not call", ``IsValid = false`` not
  callable, ``IsReassigned = null`` "proceed with caution";
* CheckThatPhone: a TCPA litigator match "do not contact", and a carrier
  deactivation (in the last 45 days: the number may be someone else's now);
* no valid phone at all: nothing to call;
* an enabled provider that was asked and gave no answer (failed, or skipped for the
  budget): its advice is missing, so a person looks.

Precedence: ``do_not_contact`` > ``review`` > ``ok``. ``ok`` needs an answer from a
provider that checks the number (TCPA Authority, CheckThatPhone) and no rule fired;
a row nothing checked is ``unchecked``. ``contact_verdict_reasons`` lists (``;``)
every rule that fired, in table order, whatever verdict it carries.

Rules are named by ids that do not change; the ``[verdict]`` config section turns a
rule ``off`` or moves it to ``review`` (or ``do_not_contact``). They read only the
output's own columns (a provider's columns are never hidden or renamed), as polars
expressions over a whole batch. This module is base: the column prefixes of the
providers are written here and checked against the providers by a test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import polars as pl

VERDICT_COLUMN = "contact_verdict"
REASONS_COLUMN = "contact_verdict_reasons"
OK, DO_NOT_CONTACT, REVIEW, UNCHECKED = "ok", "do_not_contact", "review", "unchecked"
VERDICTS = (OK, DO_NOT_CONTACT, REVIEW, UNCHECKED)
"""Every value of ``contact_verdict``."""
VERDICT_TYPE = pl.Enum(list(VERDICTS))
"""``contact_verdict``'s type (see :data:`pipeline.normalize.REJECT_REASON_TYPE`)."""

Setting = Literal["off", "review", "do_not_contact"]
"""What the ``[verdict]`` section may make of a rule."""

PREFIXES = {
    "phone_enrichment": "append",
    "checkthatphone": "ctp",
    "tcpa_authority": "tcpa",
    "tdg_reverse_phone": "tdg",
    "tdg_id_verify": "tdgid",
}
"""Provider (config section) -> its output column prefix."""
CHECKS = ("tcpa", "ctp")
"""The providers whose answer about the number counts as having checked it (``ok``)."""
ANSWERED = ("hit", "no_match")


@dataclass(frozen=True)
class Rule:
    """One rule: when it fires, and the verdict it carries unless configured."""

    id: str
    provider: str | None
    """The provider whose answer it reads (None: the row's own phone)."""
    reads: str
    """What it reads, as the README's table says it."""
    verdict: str
    when: pl.Expr
    """True where the rule fires (null counts as not)."""
    needs: tuple[str, ...]
    """The columns it reads: a rule whose columns the output lacks never fires."""


def _flag(column: str, value: bool) -> pl.Expr:
    return pl.col(column) == pl.lit(value)


def _rules() -> tuple[Rule, ...]:
    status, reassigned = pl.col("tcpa_status"), pl.col("tcpa_is_reassigned")
    deactivated_on = pl.col("ctp_deactivation_date").str.strip_chars().str.len_chars() > 0
    deactivated_said = pl.col("ctp_reason").str.starts_with("Number deactivated by carrier")
    rules = [
        Rule("no_valid_phone", None, "`phone_valid` is not true", DO_NOT_CONTACT,
             ~pl.col("phone_valid").fill_null(False), ("phone_valid",)),
        Rule("tcpa_reassigned", "tcpa_authority", "`tcpa_is_reassigned` = true",
             DO_NOT_CONTACT, _flag("tcpa_is_reassigned", True), ("tcpa_is_reassigned",)),
        Rule("tcpa_invalid", "tcpa_authority", "`tcpa_is_valid` = false", DO_NOT_CONTACT,
             _flag("tcpa_is_valid", False), ("tcpa_is_valid",)),
        Rule("tcpa_reassigned_unknown", "tcpa_authority",
             "`tcpa_is_reassigned` null in an answer (`tcpa_status` = no_match)", REVIEW,
             status.is_in(ANSWERED) & reassigned.is_null(),
             ("tcpa_status", "tcpa_is_reassigned")),
        Rule("ctp_litigator", "checkthatphone", "`ctp_litigator` = true (`litigator_filter`)",
             DO_NOT_CONTACT, _flag("ctp_litigator", True), ("ctp_litigator",)),
        Rule("ctp_deactivated", "checkthatphone",
             "`ctp_deactivation_date` set, or `ctp_reason` \"Number deactivated by carrier ...\"",
             DO_NOT_CONTACT, deactivated_on | deactivated_said,
             ("ctp_deactivation_date", "ctp_reason")),
    ]  # fmt: skip
    for provider, p in PREFIXES.items():
        column = f"{p}_status"
        rules.append(Rule(f"{p}_failed", provider, f"`{column}` = failed", REVIEW,
                          pl.col(column) == "failed", (column,)))  # fmt: skip
        rules.append(Rule(f"{p}_skipped", provider, f"`{column}` = skipped_budget", REVIEW,
                          pl.col(column) == "skipped_budget", (column,)))  # fmt: skip
    return tuple(rules)


RULES = _rules()
"""Every rule, in the order reasons are listed."""
RULE_IDS = tuple(rule.id for rule in RULES)


def check_settings(settings: Mapping[str, str]) -> None:
    """Raise ValueError naming the first rule id in ``settings`` that is not a rule."""
    unknown = [name for name in settings if name not in RULE_IDS]
    if unknown:
        raise ValueError(f"unknown rule {unknown[0]!r}; the rules are {', '.join(RULE_IDS)}")


_MASK = "__pe_rules"


def _verdict(mask: int, refuse: int, review: int, checked: bool) -> str:
    if mask & refuse:
        return DO_NOT_CONTACT
    if mask & review:
        return REVIEW
    return OK if checked else UNCHECKED


def with_verdict(batch: pl.DataFrame, settings: Mapping[str, Setting]) -> pl.DataFrame:
    """``batch`` with ``contact_verdict`` and ``contact_verdict_reasons``, the rules as
    ``settings`` (the ``[verdict]`` section) has them (see :func:`judged`)."""
    return judged(batch, settings)[0]


def judged(
    batch: pl.DataFrame, settings: Mapping[str, Setting]
) -> tuple[pl.DataFrame, dict[str, int]]:
    """:func:`with_verdict`, and how many rows got each verdict.

    Which rules fired is one bit each in one integer per row. A batch holds a handful
    of distinct combinations: each is spelled and judged once, in Python, and each row
    reads its combination's by its place among them (a gather by the combination, then
    a gather of the text): joining up to 16 strings per row cost 3x the rest of the
    verdict, a hash map from combination to text (``replace_strict``) 8x the gather, and
    a binary search for the place 4x the gather. The verdicts are counted by their
    place, before they are text.
    """
    active: list[tuple[str, str, pl.Expr]] = []
    for rule in RULES:
        verdict = settings.get(rule.id, rule.verdict)
        if verdict != "off" and all(column in batch.columns for column in rule.needs):
            active.append((rule.id, verdict, rule.when.fill_null(False)))
    bits = [fired.cast(pl.UInt32) * (1 << i) for i, (_, _, fired) in enumerate(active)]
    mask = pl.sum_horizontal(bits) if bits else pl.lit(0)
    frame = batch.with_columns(mask.cast(pl.UInt32).alias(_MASK))
    masks = frame[_MASK].unique().sort()
    refuse = sum(1 << i for i, (_, verdict, _) in enumerate(active) if verdict == DO_NOT_CONTACT)
    review = sum(1 << i for i, (_, verdict, _) in enumerate(active) if verdict == REVIEW)
    spelled = [";".join(name for i, (name, _, _) in enumerate(active) if m >> i & 1) for m in masks]
    # Two verdicts per combination: a row no provider checked, one that was checked.
    judged = [_verdict(m, refuse, review, checked) for m in masks for checked in (False, True)]
    checks = [pl.col(f"{p}_status").is_in(ANSWERED) for p in CHECKS if f"{p}_status" in batch]
    checked = pl.any_horizontal(checks).fill_null(False) if checks else pl.lit(False)
    # A combination's place among them, by the combination (below 2^16: 16 rules).
    top = masks.max()
    places = pl.zeros(int(top) + 1 if isinstance(top, int) else 1, pl.UInt32, eager=True)
    places.scatter(masks, pl.int_range(masks.len(), dtype=pl.UInt32, eager=True))
    place = pl.lit(places).gather(pl.col(_MASK))
    frame = frame.with_columns((place * 2 + checked.cast(pl.UInt32)).alias(_MASK))
    index = pl.col(_MASK)
    verdicts = pl.lit(pl.Series(judged, dtype=VERDICT_TYPE)).gather(index)
    reasons = pl.lit(pl.Series(spelled, dtype=pl.String)).gather(index // 2)
    out = frame.with_columns(verdicts.alias(VERDICT_COLUMN), reasons.alias(REASONS_COLUMN))
    counts: dict[str, int] = {}
    for at, n in out[_MASK].value_counts().iter_rows():
        counts[judged[at]] = counts.get(judged[at], 0) + n
    return out.drop(_MASK), counts
