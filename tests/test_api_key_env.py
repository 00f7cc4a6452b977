"""An API key variable that is missing, empty or blank: one line that says which, exit 2,
before any request."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from enrich_helpers import EMULATOR_KEY, KEY_ENV, write_leads

from pipeline.emulators.server import Emulator
from pipeline.emulators.state import ProviderKnobs
from pipeline.errors import EXIT_USAGE

from conftest import CliResult


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator({"tcpa_authority": ProviderKnobs(latency_ms=0, rate_limit=None)}) as em:
        monkeypatch.setenv(KEY_ENV, EMULATOR_KEY)
        yield em


def _config(write_config: Callable[..., Path], tmp_path: Path, emulator: Emulator) -> Path:
    source = write_leads(tmp_path / "in.csv", [("2125550123", "2019-06-01")])
    return write_config(
        input={"path": str(source), "phone_column": "phone", "consent_date_column": "consent_date"},
        output={"path": str(tmp_path / "out.csv")},
        **{"providers.tcpa_authority": {"base_url": emulator.base_url("tcpa_authority")}},
    )


@pytest.mark.parametrize(
    ("value", "what"),
    [(None, "is not set"), ("", "is empty"), ("  \t", "holds only whitespace")],
)
def test_a_key_variable_that_is_empty_is_called_empty(
    cli: Callable[..., CliResult],
    write_config: Callable[..., Path],
    tmp_path: Path,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    value: str | None,
    what: str,
) -> None:
    config = _config(write_config, tmp_path, emulator)
    if value is None:
        monkeypatch.delenv(KEY_ENV)
    else:
        monkeypatch.setenv(KEY_ENV, value)
    result = cli("run", config)
    assert result.code == EXIT_USAGE
    assert result.err.strip().splitlines() == [
        f"phone-enrich: error: providers.tcpa_authority: environment variable {KEY_ENV} "
        f"{what} (it must hold the API key; see providers.tcpa_authority.api_key_env)"
    ]
    assert emulator.state("tcpa_authority")["totals"]["requests"] == 0
