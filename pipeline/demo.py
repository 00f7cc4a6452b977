"""``phone-enrich demo``: the bundled sample through every configured provider, against
the emulators started in-process (real HTTP on 127.0.0.1, demo keys, no money)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import Config, load_config
from pipeline.emulators import Emulator, ProviderKnobs
from pipeline.errors import UsageError
from pipeline.progress import Progress
from pipeline.run import RunSummary, run
from pipeline.stopping import StopRequest

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


DEMO_LATENCY_MS = 100.0
"""Single-number providers answer this fast in the demo (TCPA keeps its documented 569)."""


def demo_knobs(config: Config) -> dict[str, ProviderKnobs]:
    """Emulators that allow exactly what the demo config asks for, and answer quickly."""
    knobs = {}
    for name, settings in config.providers.enabled().items():
        rate = int(settings.requests_per_minute)
        if name == "tcpa_authority":
            knobs[name] = ProviderKnobs(rate_limit=rate, rate_window_s=60.0)
        else:
            knobs[name] = ProviderKnobs(
                latency_ms=DEMO_LATENCY_MS, rate_limit=rate, rate_window_s=60.0
            )
    return knobs


@dataclass(frozen=True)
class DemoResult:
    summary: RunSummary
    sample: Path
    charged: dict[str, int]
    """Credits each provider's emulator charged in this run (the provider's own word)."""


def run_demo(
    on_progress: Callable[[Progress], None] | None = None, stop: StopRequest | None = None
) -> DemoResult:
    """Write the sample if it is missing, start the emulators, run the demo config."""
    from pipeline.sample import write_sample

    if not DEMO_CONFIG.exists():
        raise UsageError(f"{DEMO_CONFIG} not found: run the demo from the repository root")
    config = load_config(DEMO_CONFIG)
    sample = Path(config.input.path)
    if not sample.exists():
        write_sample(sample, DEMO_SAMPLE_ROWS)
    with Emulator(demo_knobs(config)) as emulator:
        # force: a second demo runs again (and shows the cache at work) rather than
        # saying the job is already done.
        summary = run(
            against(emulator, config),
            config_path=str(DEMO_CONFIG),
            on_progress=on_progress,
            force=True,
            stop=stop,
        )
        charged = {
            name: sum(emulator.state(name)["charged"].values())
            for name in config.providers.enabled()
        }
    return DemoResult(summary, sample, charged)
