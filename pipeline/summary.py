"""What a run did, as the CLI prints it: the run's report and where its files are."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.report import RunReport
from pipeline.run_opening import RunOpened


@dataclass
class RunSummary:
    """What a run did; the CLI prints it and turns ``exit_code`` into the exit status."""

    run_id: str
    exit_code: int
    session: int = 1
    output: Path | None = None
    report: Path | None = None
    html: Path | None = None
    """report.html, the report's charts; None if it could not be written."""
    failed_rows: Path | None = None
    figures: RunReport | None = None
    already_done: bool = False
    """Nothing was run: the same job already finished with every row settled."""
    opening: RunOpened | None = None
    """Which run the session worked on, and why (new, resumed, what changed)."""
    retry_with: str | None = None
    """The command that takes this run's failed lookups up again (the CLI's; default
    ``phone-enrich retry CONFIG``)."""
    nothing_failed: bool = False
    """``retry`` of a finished run with no failed lookup: nothing was run or changed."""

    @property
    def rows(self) -> int:
        return self.figures.phones.rows if self.figures and self.figures.phones else 0

    @property
    def valid(self) -> int:
        return self.figures.phones.valid if self.figures and self.figures.phones else 0

    @property
    def reasons(self) -> dict[str, int]:
        phones = self.figures.phones if self.figures else None
        return dict(sorted(phones.reasons.items())) if phones else {}

    @property
    def consent_dates(self) -> dict[str, int]:
        phones = self.figures.phones if self.figures else None
        return dict(phones.consent_dates) if phones else {}

    @property
    def duration_s(self) -> float:
        return self.figures.duration_s if self.figures else 0.0

    @property
    def credits(self) -> int:
        return self.figures.credits if self.figures else 0

    @property
    def providers(self) -> dict[str, dict[str, Any]]:
        shown = self.figures.providers if self.figures else {}
        return {name: figures.as_dict() for name, figures in shown.items()}

    @property
    def budget(self) -> dict[str, Any]:
        budget = self.figures.budget if self.figures else None
        return budget.as_dict() if budget else {}
