"""``estimate`` makes no call, and when no call fails its requests and credits are
exactly the real run's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from enrich_helpers import EMULATOR_KEY, KEY_ENV, read_report, tcpa_config

from pipeline.emulators.server import Emulator
from pipeline.emulators.state import ProviderKnobs
from pipeline.errors import EXIT_OK
from pipeline.estimate import estimate
from pipeline.run import run
from pipeline.sample import write_sample


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator({"tcpa_authority": ProviderKnobs(latency_ms=0, rate_limit=None)}) as em:
        monkeypatch.setenv(KEY_ENV, EMULATOR_KEY)
        yield em


def test_the_estimate_equals_the_run(tmp_path: Path, emulator: Emulator) -> None:
    source = tmp_path / "leads.csv"
    write_sample(source, 3_000, seed=11)
    config = tcpa_config(
        tmp_path, emulator, source, batch_size=100, default_consent_date="2020-01-01"
    )
    config = config.model_copy(
        update={"input": config.input.model_copy(update={"id_column": "lead_id"})}
    )
    guess = estimate(config)
    assert emulator.state("tcpa_authority")["totals"]["requests"] == 0  # no call made
    tcpa = guess.providers["tcpa_authority"]
    assert guess.rows == 3_000 and 0 < guess.valid_phones < 3_000
    assert tcpa.cached == 0 and tcpa.to_buy == tcpa.unique_keys > 0

    summary = run(config)
    assert summary.exit_code == EXIT_OK
    report = read_report(summary.report)
    assert report["rows"] == guess.rows
    assert report["phones"]["valid"] == guess.valid_phones
    actual = report["providers"]["tcpa_authority"]
    assert actual["requests"] == tcpa.requests
    assert actual["numbers"] == tcpa.to_buy
    assert report["credits_total"] == tcpa.credits == guess.credits
    assert tcpa.minutes == pytest.approx(tcpa.requests / 60_000)

    again = estimate(config).providers["tcpa_authority"]
    assert again.cached == again.unique_keys and (again.requests, again.credits) == (0, 0)
