"""The answer store: the one place that knows what a lookup's answer is worth to a run.

It keeps every provider answer the moment it is bought, keyed by (provider,
parameters, lookup key, run), the runs and their sessions, and the log of requests.
The output of a run is a function of its input and this store: resume, dedupe, the
cross-run cache, the budget and ``retry`` all ask it, through the rules below and
nowhere else.

The rules, for a :class:`Scope` (provider + parameters, run, session, cache window):

- **Candidates** of a key: this run's own rows whatever their status, and earlier
  runs' *settled* rows (hit, no_match, invalid_input) fetched at or after
  ``cache_from``. Failed rows of earlier runs never count.
- **Best answer** of a key: among its candidates, a settled row before a failed one,
  this run's before an earlier run's, the newest first.
- **Answered** (not to be bought again): its best answer is settled, or it failed in
  this very session (a failure is retried by the next session or by ``retry``, never
  in a loop).
- **Failed, to retry**: this run's failed rows (see :meth:`failure_reasons`); the next
  session's scope no longer counts them as answered.

A backend implements storage and the candidate query (:meth:`best`; it may leave
the pick to :func:`pick_best`); the rules that follow from it are written once, here.
Every backend runs the same contract tests (``tests/store_contract/``).

No backend's own error leaves a store: a store that cannot be used at all (damaged,
not ours) raises :class:`UnusableStoreError`, any other failure of any method (a full
disk, a vanished file or server, a row refused) :class:`StoreWriteError`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence

from pipeline.errors import EXIT_USAGE, PipelineError, StoreError
from pipeline.store.records import (
    BestAnswer,
    FailureCount,
    NewRun,
    RequestTotals,
    Response,
    RunRecord,
    Scope,
    Session,
    SessionRecord,
)


class AnswerStore(ABC):
    """One state folder's store. Safe to use from several threads at once (the engine
    writes on one while the stages read on others)."""

    location: str
    """Where the store lives, for messages (a path, a database name)."""

    # -- lifecycle -------------------------------------------------------------------

    @abstractmethod
    def close(self) -> None:
        """Release every connection."""

    def __enter__(self) -> AnswerStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- runs ------------------------------------------------------------------------

    @abstractmethod
    def get_run(self, run_id: str) -> RunRecord | None:
        """The run with this id, if any."""

    @abstractmethod
    def runs(self, limit: int = 20) -> list[RunRecord]:
        """The newest runs, newest first."""

    @abstractmethod
    def latest_run(self, job: str) -> RunRecord | None:
        """The newest run of this job, whatever its state."""

    @abstractmethod
    def resumable_run(self, job: str) -> RunRecord | None:
        """The newest run of this job that did not finish (crashed, stopped or failed)."""

    @abstractmethod
    def newest_running(self) -> str | None:
        """The run in state ``running`` started or resumed last, if any."""

    @abstractmethod
    def latest_run_between(self, input_path: str, output_path: str) -> RunRecord | None:
        """The newest run that read ``input_path`` into ``output_path`` (as the run
        recorded them), whatever its job: the run a new one tells what changed since."""

    @abstractmethod
    def start(self, run: NewRun) -> RunRecord:
        """A new run: state ``running``, session 1 (started now)."""

    @abstractmethod
    def resume(self, run_id: str) -> RunRecord:
        """Pick an unfinished run up again: state ``running``, next session (started now)."""

    @abstractmethod
    def finish(self, run_id: str, exit_code: int) -> None:
        """Every row written (exit 0, or 1 when some lookups failed). Like :meth:`stop`
        and :meth:`fail`, it ends the run's current session now, with ``exit_code``."""

    @abstractmethod
    def stop(self, run_id: str, exit_code: int, reason: str) -> None:
        """Stopped early on purpose (budget, refused key, signal): resumable."""

    @abstractmethod
    def fail(self, run_id: str, exit_code: int, reason: str) -> None:
        """Ended by an error; the next run of the same job resumes it."""

    @abstractmethod
    def sessions(self, run_id: str) -> list[SessionRecord]:
        """Every session of the run, from 1 to its current one, in order, each with the
        credits its requests were charged; what is not known (a run recorded before
        sessions were kept) is None. Empty for a run that does not exist."""

    @abstractmethod
    def budget(
        self, run_id: str, flag: int | None, configured: int | None
    ) -> tuple[int | None, str]:
        """The run's credit cap for this session, and where it comes from.

        A ``--max-credits`` (``flag``) is kept with the run and holds for its later
        sessions until another replaces it; a run never given one has ``configured``
        (the config's ``run.max_credits``; None: no cap)."""

    # -- writes (the engine's) -------------------------------------------------------

    @abstractmethod
    def log_sent(
        self, session: Session, request_id: str, provider: str, attempt: int, numbers: int
    ) -> None:
        """A request about to go out (a crash then leaves a trace of what was in
        flight). Recording it again, or after its response, changes nothing."""

    @abstractmethod
    def commit(self, session: Session, responses: Sequence[Response]) -> None:
        """Record responses (each its request line and every answer it carried) in one
        transaction: all of them or none. Raises :class:`StoreWriteError` when the store
        cannot be written."""

    # -- answers ---------------------------------------------------------------------

    @abstractmethod
    def best(self, scope: Scope, keys: Sequence[str]) -> list[BestAnswer]:
        """The best answer of each of ``keys`` that has a candidate (module docstring),
        in no particular order; keys without one are left out."""

    def candidates_known(self, scope: Scope, keys: Sequence[str]) -> list[BestAnswer]:
        """:meth:`best` as ``answered`` asks it, before buying (a backend may find keys
        it has just filed another way for the output)."""
        return self.best(scope, keys)

    def answered(self, scope: Scope, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` must not be bought again in this scope."""
        if not keys:
            return set()
        return {
            found.key
            for found in self.candidates_known(scope, keys)
            if found.status != "failed"
            or (found.run_id == scope.run_id and found.session == scope.session)
        }

    # -- what a run did --------------------------------------------------------------

    @abstractmethod
    def lookup_counts(self, run_id: str, provider: str) -> dict[str, int]:
        """This run's own lookups of ``provider`` by status."""

    @abstractmethod
    def failure_reasons(self, run_id: str) -> list[FailureCount]:
        """This run's failed lookups by provider and error, most frequent first."""

    @abstractmethod
    def request_totals(self, run_id: str, provider: str) -> RequestTotals:
        """This run's requests of ``provider``, every session."""

    @abstractmethod
    def providers_of_run(self, run_id: str) -> list[str]:
        """The providers this run has lookups of, by name."""

    @abstractmethod
    def charged(self, run_id: str) -> int:
        """Credits this run's requests were charged, every session and provider."""

    @abstractmethod
    def credits_of_run(self, run_id: str) -> int:
        """Credits this run's own lookups carry, every provider."""


def pick_best(candidates: Iterable[BestAnswer], run_id: str) -> list[BestAnswer]:
    """The best answer of each key among its candidates (as a backend fetched them),
    asked by run ``run_id``: a settled row before a failed one, this run's before an
    earlier run's, the newest first."""
    rows = candidates if isinstance(candidates, list) else list(candidates)
    best = {row.key: row for row in rows}
    if len(best) < len(rows):  # some key has more than one candidate: pick

        def rank(row: BestAnswer) -> tuple[bool, bool, float]:
            return row.status == "failed", row.run_id != run_id, -row.fetched_at

        for row in rows:
            # Equal ranks (one clock reading): the greater run id, as an index on
            # (key, run) would list them; within a run, the last listed.
            kept = best[row.key]
            if rank(row) < rank(kept) or (rank(row) == rank(kept) and row.run_id >= kept.run_id):
                best[row.key] = row
    return list(best.values())


class StoreWriteError(StoreError):
    """The store cannot be written (a full disk, a vanished file or server, a row it
    refuses), or read for a reason other than damage: the message names the store and
    the cause in one line. The engine turns it into a stop (exit 3: what was recorded
    is kept, and the same command resumes once the cause is fixed)."""


class UnusableStoreError(PipelineError):
    """The store cannot be used at all: damaged, not ours, newer than this code, or not
    to be opened. One line naming it and what to do; exit 2, and nothing was changed."""

    exit_code = EXIT_USAGE
