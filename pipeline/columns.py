"""The one wording of "the input lacks a column that a setting names".

The run's own settings (``input.phone_column``, ...) and a provider's column mappings
(``providers.tdg_id_verify.columns``, ...) are checked against the same input, so a
user sees one kind of message for one kind of mistake, naming the setting to fix and
the columns there are.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.errors import InputError

SHOWN_COLUMNS = 12
"""How many of the input's columns a message lists (a wide file would flood it)."""


def missing_column(
    column: str, setting: str, available: Sequence[str], where: str = "the input"
) -> InputError:
    """The error for ``setting`` naming ``column``, which ``where`` does not have."""
    shown = ", ".join(available[:SHOWN_COLUMNS])
    if len(available) > SHOWN_COLUMNS:
        shown += ", ..."
    return InputError(
        f"{setting} = {column!r}, but {where} has no column {column!r}; it has: {shown}"
    )


def require_column(column: str, setting: str, available: Sequence[str]) -> None:
    """Raise :func:`missing_column`'s error unless ``available`` has ``column``."""
    if column not in available:
        raise missing_column(column, setting, available)
