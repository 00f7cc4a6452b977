"""What a ``run`` or ``retry`` command asks for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipeline.config import Config
from pipeline.progress import Progress
from pipeline.run_opening import RunOpened
from pipeline.stopping import StopRequest

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True)
class RunRequest:
    """Everything a ``run`` or ``retry`` command asks for."""

    config: Config
    config_path: str | None = None
    on_progress: Callable[[Progress], None] | None = None
    progress_every_s: float = 2.0
    no_cache: bool = False
    force: bool = False
    """Run even if the same job already finished (``--force``; always for ``retry``)."""
    transport: httpx.AsyncBaseTransport | None = None
    stop: StopRequest = field(default_factory=StopRequest)
    max_credits: int | None = None
    """``--max-credits``: kept with the run (:meth:`AnswerStore.budget`)."""
    retry: bool = False
    retry_run: str | None = None
    """With ``retry``: the run to take up again (None: the job's latest)."""
    on_event: Callable[[RunOpened], None] | None = None
    """Told which run the session works on, and why (new, resumed, what changed)."""
    on_notice: Callable[[str], None] | None = None
    """Told a line worth seeing before a long pause (a ledger being upgraded)."""
