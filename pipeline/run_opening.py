"""Which run a session works on, said in one line: "resuming run X (session N)", or
"new run Y: <what> changed since run X" when the same input and output had a run of
another job.

Every run keeps what made its job (:func:`pipeline.jobs.job_identity`), so the
difference can be named: the input file's content, a setting, a provider turned on or
off. The line goes to the terminal (the run's ``on_event``), the summary and the run
log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.store.records import RunRecord

_NAMES = {
    "input": "the input path",
    "fingerprint": "the input file's content",
    "output": "the output path",
}
_SECTIONS = {"columns": "input", "normalize": "normalize"}


@dataclass(frozen=True)
class RunOpened:
    """How the session's run was picked: a new run, an unfinished one resumed, or one
    taken up again by ``retry``."""

    kind: Literal["new", "resumed", "retry"]
    run_id: str
    session: int
    previous_run: str | None = None
    """For a new run: the newest earlier run of the same input and output, if any."""
    changes: tuple[str, ...] = ()
    """For a new run: what changed since ``previous_run`` (empty: the same job)."""
    compared: bool = True
    """False when ``previous_run`` kept no job settings to compare (an older version's)."""

    @property
    def message(self) -> str:
        if self.kind == "resumed":
            return f"resuming run {self.run_id} (session {self.session})"
        if self.kind == "retry":
            return (
                f"resuming run {self.run_id} (session {self.session}) to retry its failed lookups"
            )
        if self.previous_run is None:
            return f"new run {self.run_id}"
        if not self.compared:
            return (
                f"new run {self.run_id}: the job differs from run {self.previous_run}'s, "
                "which kept no settings to compare"
            )
        if not self.changes:
            return f"new run {self.run_id}: run {self.previous_run} of this job had finished"
        return f"new run {self.run_id}: {'; '.join(self.changes)} since run {self.previous_run}"

    def details(self) -> dict[str, Any]:
        """What the run log adds to its start event (which names the run and session)."""
        return {
            "kind": self.kind,
            "previous_run": self.previous_run,
            "changes": list(self.changes),
            "message": self.message,
        }


def opening_of(
    record: RunRecord, previous: RunRecord | None, identity: dict[str, Any]
) -> RunOpened:
    """How ``record`` (just started or resumed) was picked; ``previous`` is the newest run
    of the same input and output before it, ``identity`` this job's."""
    if record.session > 1:
        return RunOpened("resumed", record.run_id, record.session)
    if previous is None or previous.run_id == record.run_id:
        return RunOpened("new", record.run_id, 1)
    if previous.job == record.job:
        return RunOpened("new", record.run_id, 1, previous.run_id)
    if previous.identity is None:
        return RunOpened("new", record.run_id, 1, previous.run_id, compared=False)
    changes = job_changes(json.loads(previous.identity), identity)
    return RunOpened("new", record.run_id, 1, previous.run_id, tuple(changes))


def job_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What differs between two job identities, each as a phrase ("the input file's
    content changed", "providers.tcpa_authority.base_url changed", "provider
    checkthatphone enabled")."""
    changes: list[str] = []
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if key == "providers":
            changes.extend(_provider_changes(old or {}, new or {}))
        elif key in _SECTIONS and isinstance(old, dict) and isinstance(new, dict):
            changes.extend(f"{_SECTIONS[key]}.{name} changed" for name in _differing(old, new))
        else:
            changes.append(f"{_NAMES.get(key, key)} changed")
    return changes


def _provider_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    changes = [f"provider {name} enabled" for name in sorted(after.keys() - before.keys())]
    changes += [f"provider {name} disabled" for name in sorted(before.keys() - after.keys())]
    for name in sorted(before.keys() & after.keys()):
        (old_options, old_settings), (new_options, new_settings) = before[name], after[name]
        keys = _differing(old_settings, new_settings)
        changes += [f"providers.{name}.{key} changed" for key in keys]
        if not keys and old_options != new_options:
            changes.append(f"providers.{name} options changed")
    return changes


def _differing(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
