"""The error tree.

Every error the pipeline raises on purpose derives from :class:`PipelineError` and
carries the exit code the CLI turns it into. Errors from libraries are translated
at the boundary (``raise InputError(...) from exc``) so the CLI catches in one place.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_LOOKUPS_FAILED = 1
EXIT_USAGE = 2
EXIT_STOPPED = 3
EXIT_LOCKED = 75
EXIT_INTERNAL = 70


class PipelineError(Exception):
    """Base of every error the pipeline raises deliberately."""

    exit_code = EXIT_INTERNAL


class UsageError(PipelineError):
    """Bad command line, config or input: one clear message, exit 2."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """The config file is missing, unparsable or has a bad key or value."""


class InputError(UsageError):
    """The input file is missing, unreadable, ragged, empty or lacks a column."""


class OutputError(UsageError):
    """The output path cannot be written (bad extension, missing folder, ...)."""


class LockedError(PipelineError):
    """Another run holds the state folder's lock: exit 75 at once, touch nothing."""

    exit_code = EXIT_LOCKED


class ProviderError(PipelineError):
    """A provider call went wrong; the subclass says what the engine does about it.

    ``credits`` is what the provider says it charged for the answer we could not use
    (an answer about another number, say): it is counted against the budget and on the
    lookup's row, so the run's credits still equal the provider's.
    """

    def __init__(self, message: str, *, status: int | None = None, credits: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.credits = credits


class TransientError(ProviderError):
    """Worth another attempt: 429, 5xx, timeouts, dropped connections, garbled bodies."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        credits: int = 0,
    ) -> None:
        super().__init__(message, status=status, credits=credits)
        self.retry_after = retry_after


class BadRequestError(ProviderError):
    """The provider refused the input (400/422): split a batch, else the row is invalid_input."""


class TerminalError(ProviderError):
    """The lookups in this request cannot succeed by retrying: mark them failed."""


class LaneStoppedError(ProviderError):
    """The provider refuses our key (401/403, out of credits): stop its lane, exit 3."""

    exit_code = EXIT_STOPPED


class Interrupted(PipelineError):
    """SIGINT or SIGTERM: nothing new is sent, what was in flight is recorded, exit 3."""

    exit_code = EXIT_STOPPED


class StoreError(PipelineError):
    """An answer could not be recorded (disk full, store gone): stop sending at once.

    Exit 3: the answers recorded so far are kept, and the same command resumes the run
    once the cause is fixed."""

    exit_code = EXIT_STOPPED
