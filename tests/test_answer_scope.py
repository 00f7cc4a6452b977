"""Answers are reused only for the endpoint and the account that bought them: an
emulator's made-up answers never serve a run against another endpoint or key."""

from __future__ import annotations

from pathlib import Path

import pytest
from enrich_helpers import EMULATOR_KEY, KEY_ENV, read_output, tcpa_config, write_leads

from pipeline.emulators.server import Emulator
from pipeline.emulators.state import ProviderKnobs
from pipeline.errors import EXIT_OK
from pipeline.providers.base import answer_scope
from pipeline.run import run

LEADS = [(f"212555{1000 + i:04d}", "2020-01-15") for i in range(30)]


def _charged(emulator: Emulator) -> tuple[int, int]:
    totals = emulator.state("tcpa_authority")["totals"]
    return int(totals["requests"]), int(totals["credits"])


def test_another_endpoint_and_key_buys_every_lookup_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_leads(tmp_path / "in.csv", LEADS)
    knobs_b = ProviderKnobs(keys={"production-key": None})
    with Emulator() as a, Emulator({"tcpa_authority": knobs_b}) as b:
        monkeypatch.setenv(KEY_ENV, EMULATOR_KEY)
        first = run(tcpa_config(tmp_path, a, source, output="a.csv"))
        assert first.exit_code == EXIT_OK
        assert _charged(a)[1] == len(LEADS)

        # The same job in the same state_dir, now against B with B's key.
        monkeypatch.setenv(KEY_ENV, "production-key")
        second = run(tcpa_config(tmp_path, b, source, output="b.csv"))
        assert second.exit_code == EXIT_OK
        assert _charged(b)[1] == len(LEADS)  # every lookup bought again, none from A's cache
        out = read_output(tmp_path / "b.csv")
        assert set(out["tcpa_status"]) <= {"hit", "no_match"}
        assert out["credits_total"].cast(int).sum() == len(LEADS)

        # And back at A with A's key: A's answers are still its own cache.
        monkeypatch.setenv(KEY_ENV, EMULATOR_KEY)
        third = run(tcpa_config(tmp_path, a, source, output="a2.csv"))
        assert third.exit_code == EXIT_OK
        assert _charged(a)[1] == len(LEADS)  # nothing more bought from A
        assert read_output(tmp_path / "a2.csv")["credits_total"].cast(int).sum() == 0


def test_same_endpoint_other_key_is_another_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_leads(tmp_path / "in.csv", LEADS[:5])
    knobs = ProviderKnobs(keys={EMULATOR_KEY: None, "second-account": None})
    with Emulator({"tcpa_authority": knobs}) as emulator:
        monkeypatch.setenv(KEY_ENV, EMULATOR_KEY)
        assert run(tcpa_config(tmp_path, emulator, source, output="1.csv")).exit_code == 0
        monkeypatch.setenv(KEY_ENV, "second-account")
        assert run(tcpa_config(tmp_path, emulator, source, output="2.csv")).exit_code == 0
        assert _charged(emulator)[1] == 10


def test_the_scope_normalizes_the_url_and_never_holds_the_key() -> None:
    key = "s3cret-login-id"
    scope = answer_scope("HTTPS://API.Example.com:443//v1.5/", key)
    assert scope == answer_scope("https://api.example.com/v1.5", key)
    assert scope == answer_scope("https://api.example.com/x/../v1.5/./", key)
    assert scope.startswith("https://api.example.com/v1.5 account=")
    assert key not in scope
    assert answer_scope("http://127.0.0.1:8787/x", key) != answer_scope(
        "http://127.0.0.1:8788/x", key
    )
    assert answer_scope("https://api.example.com/v1.5", "other") != scope
