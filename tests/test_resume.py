"""kill -9 a real ``phone-enrich run`` mid-flight, run it again, and compare with a run
that was never interrupted: same output (request ids aside), nothing paid twice
except what was in flight at the kill."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from enrich_helpers import EMULATOR_KEY, KEY_ENV, read_output, tcpa_config, write_leads

from pipeline.emulators.server import Emulator
from pipeline.emulators.state import ProviderKnobs
from pipeline.errors import EXIT_OK
from pipeline.run import run

BATCH = 40
CONCURRENCY = 2


def _leads(count: int) -> list[tuple[str, str]]:
    rows = []
    for i in range(count):
        phone = f"{212 + i % 7}{480 + i % 11}{i:04d}"[:10]
        rows.append((phone, f"2019-{1 + i % 12:02d}-{1 + i % 28:02d}"))
    rows.extend(rows[::9])  # duplicates further down the file
    return rows


def _write_toml(path: Path, config_dict: dict[str, dict[str, object]]) -> Path:
    lines = []
    for section, values in config_dict.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            shown = f'"{value}"' if isinstance(value, str) else str(value)
            lines.append(f"{key} = {shown}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("how", "kill_after"),
    [(signal.SIGKILL, 3), (signal.SIGKILL, 20), (signal.SIGTERM, 10)],
    ids=["kill -9 early", "kill -9 later", "SIGTERM"],
)
def test_interrupted_then_resumed_equals_an_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: signal.Signals, kill_after: int
) -> None:
    knobs = ProviderKnobs(latency_ms=40, rate_limit=None)
    with Emulator({"tcpa_authority": knobs}) as emulator:
        monkeypatch.setenv(KEY_ENV, EMULATOR_KEY)
        source = write_leads(tmp_path / "in.csv", _leads(2_400))
        settings = {
            "base_url": emulator.base_url("tcpa_authority"),
            "requests_per_minute": 60_000,
            "max_concurrency": CONCURRENCY,
            "batch_size": BATCH,
        }
        toml = _write_toml(
            tmp_path / "config.toml",
            {
                "input": {"path": str(source), "phone_column": "phone", "id_column": "id",
                          "consent_date_column": "consent_date"},
                "output": {"path": str(tmp_path / "out.csv")},
                "run": {"state_dir": str(tmp_path / "state"), "batch_rows": 1000},
                "providers.tcpa_authority": settings,
            },
        )  # fmt: skip
        child = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "run", str(toml), "--quiet"],
            env={**os.environ, KEY_ENV: EMULATOR_KEY},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while emulator.state("tcpa_authority")["totals"]["requests"] < kill_after:
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.005)
        child.send_signal(how)
        code = child.wait(timeout=60)
        stderr = child.stderr.read().decode() if child.stderr else ""
        if child.stderr:
            child.stderr.close()
        assert not (tmp_path / "out.csv").exists()
        if how == signal.SIGTERM:  # stopped cleanly: exit 3, report written, resumable
            assert code == 3, stderr
            last = stderr.strip().splitlines()[-1]
            assert last.startswith("phone-enrich: stopped by SIGTERM: ") and "resumes run" in last
            (report,) = (tmp_path / "state" / "runs").glob("*/report.json")
            assert json.loads(report.read_text())["exit_code"] == 3
        charged_before = emulator.state("tcpa_authority")["totals"]["credits"]
        assert charged_before > 0

        config = tcpa_config(tmp_path, emulator, source, max_concurrency=CONCURRENCY,
                             batch_size=BATCH)  # fmt: skip
        config = config.model_copy(
            update={"run": config.run.model_copy(update={"batch_rows": 1000})}
        )
        resumed = run(config)
        assert resumed.exit_code == EXIT_OK and resumed.session == 2
        charged = emulator.state("tcpa_authority")["totals"]["credits"]

        reference = run(tcpa_config(tmp_path, emulator, source, output="ref.csv", state="ref"))
        assert reference.exit_code == EXIT_OK

    left_over = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert left_over == []
    out, ref = read_output(tmp_path / "out.csv"), read_output(tmp_path / "ref.csv")
    # Which request bought an answer, and when, differ between two runs that buy it.
    ignore = [c for c in out.columns if c.endswith(("_request_id", "_checked_at"))]
    assert out.drop(ignore).equals(ref.drop(ignore))
    assert out["tcpa_request_id"].null_count() == ref["tcpa_request_id"].null_count()

    with sqlite3.connect(tmp_path / "state" / "ledger.sqlite") as conn:
        (bought,) = conn.execute(
            "SELECT count(*) FROM lookups WHERE run_id = ? AND status != 'failed'",
            (resumed.run_id,),
        ).fetchone()
    paid_twice = charged - bought
    assert 0 <= paid_twice <= CONCURRENCY * BATCH  # at most what was in flight at the kill
    # Row credits are what the job paid for, once per key.
    assert int(out["credits_total"].cast(pl.Int64).sum()) == bought
