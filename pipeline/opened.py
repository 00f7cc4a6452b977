"""What a session works with, opened before it starts: its providers, its input and
the answer store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pipeline.errors import PipelineError
from pipeline.io.changes import FileIdentity
from pipeline.io.reader import InputFile
from pipeline.providers.base import Provider
from pipeline.store.base import AnswerStore, StoreWriteError

T = TypeVar("T")


@dataclass
class Opened:
    providers: list[Provider]
    source: InputFile
    seen: FileIdentity | None
    """The input's identity, read before its fingerprint was taken."""
    store: AnswerStore
    job: str
    identity: dict[str, Any] = field(default_factory=dict)
    """What makes the job (:func:`pipeline.jobs.job_identity`); ``job`` is its hash."""


def quietly(action: Callable[..., T], *args: Any) -> T | None:
    """Bookkeeping on the way out of a failed run (a full disk, a vanished store): not
    worth hiding the error that ended the run behind a second one."""
    try:
        return action(*args)
    except (OSError, StoreWriteError, PipelineError):
        return None
