"""pyarrow is imported where Parquet is read or written, not by every run: a run on
CSV never needs it (40 ms of start-up)."""

from __future__ import annotations

import sys


def is_arrow_error(exc: BaseException) -> bool:
    """Whether ``exc`` is pyarrow's (never, if pyarrow was not imported)."""
    arrow = sys.modules.get("pyarrow")
    return arrow is not None and isinstance(exc, arrow.ArrowException)
