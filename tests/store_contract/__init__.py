"""The answer store's contract: every backend runs these same tests.

A backend's test module subclasses :class:`StoreContract` and provides one fixture,
``store``: a new, empty store on the ``clock`` it is given (``tests/test_store_sqlite.py``
does it for :class:`~pipeline.store.sqlite.SqliteStore`). The rules tested are those of
:mod:`pipeline.store.base`; what only one backend has (files, migrations, connections)
is tested in that backend's module.
"""

from __future__ import annotations

from store_contract.answers import AnswersContract
from store_contract.helpers import FakeClock
from store_contract.runs import RunsContract
from store_contract.sessions import SessionsContract
from store_contract.totals import TotalsContract
from store_contract.writes import WritesContract

__all__ = ["FakeClock", "StoreContract"]


class StoreContract(
    RunsContract, SessionsContract, WritesContract, AnswersContract, TotalsContract
):
    """Runs and their sessions, writes, answers and a run's figures, on the subclass's
    ``store``."""
