"""The shared contract suite's data: one module per provider, each with a ``CONTRACT``.

``tests/test_contract.py`` finds every module here and runs each of its cases the
same way: a one-row (or few-row) input, a config with only that provider pointed at
its emulator, faults queued or knobs set on the emulator, one ``run``; then it
checks the row's ``{prefix}_status``, error, credits and chosen columns, the exit
code, and that the credits reconcile: sum of ``credits_total`` == the report's
total == what the emulator charged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Case:
    name: str
    """Shown in the test id, e.g. ``"404 is no_match"``."""
    rows: list[dict[str, str]]
    """Input rows (the contract's ``columns``; missing ones are blank)."""
    status: list[str]
    """Expected ``{prefix}_status`` per row."""
    error: list[str | None] | None = None
    """Substring expected in ``{prefix}_error`` per row (None: must be blank)."""
    credits: list[int] | None = None
    """Expected ``{prefix}_credits`` per row."""
    expect: list[dict[str, str | None]] | None = None
    """Exact values of output columns per row (CSV text; None means blank)."""
    faults: list[int | str] = field(default_factory=list)
    """Queued on the provider's emulator before the run."""
    knobs: dict[str, Any] = field(default_factory=dict)
    """Emulator knobs for this case (latency 0 and no limit unless set)."""
    api_key: str | None = None
    """The key the run uses (default: the emulator's ``emulator-key``)."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Provider settings for this case, over the contract's."""
    exit_code: int = 0
    requests: int | None = None
    """Requests the emulator saw, if the case is about retries."""
    min_gap_s: float | None = None
    """Least seconds between two requests' arrivals at the emulator (a wait honoured)."""
    same: list[tuple[str, str]] = field(default_factory=list)
    """Pairs of output columns that must hold the same value on every row."""


@dataclass(frozen=True)
class Contract:
    provider: str
    prefix: str
    key_env: str
    columns: list[str]
    """Input columns besides ``id`` (must include ``phone``)."""
    cases: list[Case]
    settings: dict[str, Any] = field(default_factory=dict)
    """Provider settings every case starts from (base_url and the key are added)."""
    consent_date_column: str | None = None
