"""One contract suite over every provider and its emulator (cases in contract_cases/)."""

from __future__ import annotations

import csv
import importlib
import json
import pkgutil
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import contract_cases
import polars as pl
import pytest
from contract_cases import Case, Contract

from pipeline.config import parse_config
from pipeline.emulators.server import Emulator
from pipeline.emulators.state import ProviderKnobs
from pipeline.run import run

EMULATOR_KEY = "emulator-key"


def _contracts() -> list[Contract]:
    found = []
    for module in pkgutil.iter_modules(contract_cases.__path__):
        loaded = importlib.import_module(f"contract_cases.{module.name}")
        found.append(loaded.CONTRACT)
    return sorted(found, key=lambda c: c.provider)


CASES = [
    pytest.param(contract, case, id=f"{contract.provider}: {case.name}")
    for contract in _contracts()
    for case in contract.cases
]


def _write_input(path: Path, contract: Contract, rows: list[dict[str, str]]) -> Path:
    columns = ["id", *contract.columns]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for number, row in enumerate(rows, 1):
            values = {"id": f"R{number:04d}", **row}
            writer.writerow([values.get(c, "") for c in columns])
    return path


@pytest.mark.parametrize(("contract", "case"), CASES)
def test_contract(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, contract: Contract, case: Case
) -> None:
    knobs = ProviderKnobs(**{"latency_ms": 0, "rate_limit": None, **case.knobs})
    with Emulator({contract.provider: knobs}) as emulator:
        monkeypatch.setenv(contract.key_env, case.api_key or EMULATOR_KEY)
        if case.faults:
            emulator.queue_faults(contract.provider, list(case.faults))
        source = _write_input(tmp_path / "in.csv", contract, case.rows)
        settings: dict[str, Any] = {
            "base_url": emulator.base_url(contract.provider),
            "api_key_env": contract.key_env,
            "requests_per_minute": 60_000,
            "timeout_s": 2,
            "max_attempts": 3,
            **contract.settings,
            **case.settings,
        }
        inputs: dict[str, Any] = {"path": str(source), "phone_column": "phone", "id_column": "id"}
        if contract.consent_date_column:
            inputs["consent_date_column"] = contract.consent_date_column
        config = parse_config(
            {
                "input": inputs,
                "output": {"path": str(tmp_path / "out.csv")},
                "run": {"state_dir": str(tmp_path / "state")},
                "providers": {contract.provider: settings},
            },
            "contract",
        )
        summary = run(config)
        state = emulator.state(contract.provider)
        deadline = time.monotonic() + 5  # a hung request is logged when its hang ends
        while case.requests and state["totals"]["requests"] < case.requests:
            assert time.monotonic() < deadline
            time.sleep(0.05)
            state = emulator.state(contract.provider)

    assert summary.exit_code == case.exit_code
    out = pl.read_csv(tmp_path / "out.csv", infer_schema=False)
    p = contract.prefix
    assert out[f"{p}_status"].to_list() == case.status
    errors = out[f"{p}_error"].to_list()
    for got, want in zip(errors, case.error or [None] * len(errors), strict=True):
        if want is None:
            assert got is None
        else:
            assert got is not None and want in got, (got, want)
    if case.credits is not None:
        assert out[f"{p}_credits"].cast(pl.Int64).to_list() == case.credits
    for index, expected in enumerate(case.expect or []):
        row = out.row(index, named=True)
        assert {k: row[k] for k in expected} == expected
    if case.requests is not None:
        assert state["totals"]["requests"] == case.requests
    if case.min_gap_s is not None:
        arrivals = [entry["arrived_mono"] for entry in state["requests"]]
        gaps = [later - earlier for earlier, later in pairwise(arrivals)]
        assert gaps and min(gaps) >= case.min_gap_s, gaps
    for left, right in case.same:
        assert out[left].to_list() == out[right].to_list(), (left, right)
    assert summary.report is not None
    report = json.loads(summary.report.read_text())
    charged = int(state["totals"]["credits"])
    assert int(out["credits_total"].cast(pl.Int64).sum()) == report["credits_total"] == charged
