"""Local HTTP emulators of the paid providers: one port, a path prefix per provider.

``Emulator`` runs them in a background thread (tests, ``demo``, benchmarks);
``phone-enrich emulate`` serves them until stopped.
"""

from pipeline.emulators.server import APPS, Emulator
from pipeline.emulators.state import ProviderApp, ProviderKnobs, key_label

__all__ = ["APPS", "Emulator", "ProviderApp", "ProviderKnobs", "key_label"]
