"""``phone-enrich status``: runs, their state, credits and failures by reason."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from enrich_helpers import EMULATOR_KEY, KEY_ENV, write_leads

from pipeline.emulators.server import Emulator
from pipeline.emulators.state import ProviderKnobs

from conftest import CliResult


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator({"tcpa_authority": ProviderKnobs(latency_ms=0, rate_limit=None)}) as em:
        monkeypatch.setenv(KEY_ENV, EMULATOR_KEY)
        yield em


def test_status_shows_runs_credits_and_failures_by_reason(
    cli: Callable[..., CliResult],
    write_config: Callable[..., Path],
    tmp_path: Path,
    emulator: Emulator,
) -> None:
    phones = ["2027771043", "3125557788", "4158830123"]
    source = write_leads(tmp_path / "in.csv", [(p, "2020-06-01") for p in phones])
    config = write_config(
        input={"path": str(source), "phone_column": "phone", "consent_date_column": "consent_date"},
        output={"path": str(tmp_path / "out.csv")},
        **{"providers.tcpa_authority": {
            "base_url": emulator.base_url("tcpa_authority"), "batch_size": 2,
            "max_attempts": 2, "max_concurrency": 1, "requests_per_minute": 60000}},
    )  # fmt: skip
    assert cli("status", config).out.strip().endswith("no runs yet")
    emulator.queue_faults("tcpa_authority", [500] * 4)  # both batches give up
    assert cli("run", config, "--quiet").code == 1
    result = cli("status", config)
    assert result.code == 0
    lines = result.out.splitlines()
    run_id = lines[0].split()[0]
    assert "finished (session 1, exit 1)" in lines[0]
    assert "charged 0 credits" in result.out
    assert "tcpa_authority: lookups failed 3; 4 requests, 2 retries" in result.out
    assert "failed 3 x tcpa_authority: gave up after 2 attempts" in result.out
    detail = cli("status", config, "--run", run_id)
    assert detail.out.splitlines()[0] == lines[0]
    missing = cli("status", config, "--run", "nope")
    assert missing.code == 2 and "no such run" in missing.err


def test_status_shows_the_progress_figures_during_a_run_and_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``status`` gives the progress line's figures (lookups done/total per provider, rate,
    ETA) from the run's own log, while it runs and after it ended."""
    import threading
    import time

    from enrich_helpers import tcpa_config

    from pipeline.run import run
    from pipeline.status import status_lines

    phones = [(f"212{480 + i // 1000}{i % 1000:04d}", "2019-06-01") for i in range(100)]
    source = write_leads(tmp_path / "in.csv", phones)
    knobs = ProviderKnobs(latency_ms=150, rate_limit=None)
    with Emulator({"tcpa_authority": knobs}) as emulator:
        monkeypatch.setenv(KEY_ENV, EMULATOR_KEY)
        config = tcpa_config(tmp_path, emulator, source, batch_size=5, max_concurrency=1)
        worker = threading.Thread(target=lambda: run(config, progress_every_s=0.2))
        worker.start()
        during: list[str] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any("tcpa " in x for x in during):
            time.sleep(0.3)
            during = status_lines(config)
        worker.join(timeout=60)
    assert "running (session 1)" in during[0]
    line = next(x for x in during if "tcpa " in x)
    done, total = line.split("tcpa ")[1].split()[0].split("/")
    assert 0 < int(done.replace(",", "")) < 100 and total == "100"
    after = status_lines(config)
    assert "finished (session 1, exit 0)" in after[0]
    assert any("100% ETA 0:00" in x and "tcpa 100/100" in x for x in after)
