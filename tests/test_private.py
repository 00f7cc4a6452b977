"""Nothing private leaks: with every provider of the demo config enabled, run from the
command line off a terminal (JSON progress lines, as under cron), with faults that make
the run log errors and retries, no API key and no litigator name appears in what the
run prints, its log, its report, its failed rows, the ledger's request log, or anything
else it writes besides the output's own ``ctp_litigator_name`` column."""

from __future__ import annotations

import csv
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from pipeline.config import load_config
from pipeline.emulators import Emulator, ProviderKnobs
from pipeline.sample import write_sample

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "configs" / "demo.toml"
FAULTS = {"checkthatphone": [502, 429, 502], "phone_enrichment": [500, 429]}


def _config_text(emulator: Emulator, tmp_path: Path, sample: Path) -> str:
    """The demo config pointed at ``emulator``, reading ``sample``, writing in tmp_path."""
    lines, section = [], ""
    for line in DEMO.read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[] ").removeprefix("providers.")
        if line.startswith("base_url"):
            line = f'base_url = "{emulator.base_url(section)}"'
        elif line.startswith("path") and section == "input":
            line = f'path = "{sample}"'
        elif line.startswith("path") and section == "output":
            line = f'path = "{tmp_path / "out.csv"}"'
        elif line.startswith("state_dir"):
            line = f'state_dir = "{tmp_path / "state"}"'
        lines.append(line)
    return "\n".join(lines) + "\n"


def test_no_key_and_no_litigator_name_in_anything_but_the_output_column(
    tmp_path: Path,
) -> None:
    config = load_config(DEMO)
    names = list(config.providers.enabled())
    secrets = {
        settings.api_key_env: f"sekrit-{settings.api_key_env.lower()}-9d2f"
        for settings in config.providers.enabled().values()
    }
    sample = tmp_path / "leads.csv"
    write_sample(sample, 400, seed=3)
    knobs = {
        name: ProviderKnobs(latency_ms=0, rate_limit=None, keys={secret: None})
        for name in names
        for secret in [secrets[config.providers.enabled()[name].api_key_env]]
    }
    with Emulator(knobs) as emulator:
        for name, faults in FAULTS.items():
            emulator.queue_faults(name, list(faults))
        toml = tmp_path / "job.toml"
        toml.write_text(_config_text(emulator, tmp_path, sample))
        done = subprocess.run(
            [sys.executable, "-m", "pipeline", "run", str(toml)],
            env={**os.environ, **secrets},
            capture_output=True,
            text=True,
            timeout=180,
        )
        retried = {name: emulator.state(name)["totals"] for name in FAULTS}
    assert done.returncode == 0, done.stderr
    for name, faults in FAULTS.items():  # the faults happened, so errors were logged
        statuses = retried[name]["by_status"]
        assert sum(statuses.get(str(f), statuses.get(f, 0)) for f in set(faults)) >= len(faults), (
            name,
            statuses,
        )

    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as fh:
        litigators = {
            row["ctp_litigator_name"] for row in csv.DictReader(fh) if row["ctp_litigator_name"]
        }
    assert litigators, "the sample should hold some litigators with a name on record"
    words = {w for name in litigators for w in re.findall(r"[A-Za-z]{4,}", name)}
    private = [*secrets.values(), *litigators, *words]

    printed = done.stdout + done.stderr
    assert '{"event": "progress"' in done.stderr  # off a terminal: JSON lines
    written = [p for p in (tmp_path / "state").rglob("*") if p.is_file()]
    assert any(p.name == "log.jsonl" for p in written)
    assert any(p.name == "report.json" for p in written)
    for path in written:
        if path.name.startswith("ledger.sqlite"):
            continue  # holds the answers (the output is made from them): checked below
        text = path.read_bytes().decode("utf-8", "replace")
        for value in private:
            assert value not in text, (path.name, value)
    for value in private:
        assert value not in printed, value
    with sqlite3.connect(tmp_path / "state" / "ledger.sqlite") as db:
        logged = "\n".join(
            str(cell)
            for table in ("runs", "requests")
            for row in db.execute(f"SELECT * FROM {table}")
            for cell in row
        )
        errors = "\n".join(str(e) for (e,) in db.execute("SELECT error FROM lookups"))
    for value in private:
        assert value not in logged + errors, value
    for secret in secrets.values():  # a key is nowhere at all, answers included
        assert secret.encode() not in (tmp_path / "out.csv").read_bytes()
        for path in written:
            assert secret.encode() not in path.read_bytes(), path.name
