"""``phone-enrich demo``: the bundled sample through every configured provider, against
the emulators started in-process (real HTTP on 127.0.0.1, demo keys, no money)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pipeline.config import Config, load_config
from pipeline.emulators import Emulator
from pipeline.errors import UsageError
from pipeline.run import Progress, RunSummary, run

DEMO_CONFIG = Path("configs/demo.toml")
DEMO_SAMPLE_ROWS = 2_000
DEMO_KEY = "emulator-key"


def against(emulator: Emulator, config: Config) -> Config:
    """``config`` with every provider pointed at ``emulator`` and its demo key set."""
    updated = {}
    for name, settings in config.providers.enabled().items():
        updated[name] = settings.model_copy(update={"base_url": emulator.base_url(name)})
        os.environ[settings.api_key_env] = DEMO_KEY  # this process only; never a real key
    providers = config.providers.model_copy(update=updated)
    return config.model_copy(update={"providers": providers})


def run_demo(on_progress: Callable[[Progress], None] | None = None) -> tuple[RunSummary, Path]:
    """Write the sample if it is missing, start the emulators, run the demo config."""
    from pipeline.sample import write_sample

    if not DEMO_CONFIG.exists():
        raise UsageError(f"{DEMO_CONFIG} not found: run the demo from the repository root")
    config = load_config(DEMO_CONFIG)
    sample = Path(config.input.path)
    if not sample.exists():
        write_sample(sample, DEMO_SAMPLE_ROWS)
    with Emulator() as emulator:
        summary = run(
            against(emulator, config), config_path=str(DEMO_CONFIG), on_progress=on_progress
        )
    return summary, sample
