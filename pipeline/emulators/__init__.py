"""Local HTTP emulators of the paid providers: one port, a path prefix per provider.

``Emulator`` runs them in a background thread (tests, ``demo``, benchmarks);
``phone-enrich emulate`` serves them until stopped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.emulators.state import ProviderApp, ProviderKnobs, key_label

if TYPE_CHECKING:
    from pipeline.emulators.server import APPS, Emulator

__all__ = ["APPS", "Emulator", "ProviderApp", "ProviderKnobs", "key_label"]


def __getattr__(name: str) -> object:
    # The server and its apps are imported when used: the CLI builds the emulate
    # command's options on every command, a run never needs them.
    if name in ("APPS", "Emulator"):
        from pipeline.emulators import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
