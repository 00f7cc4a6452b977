"""Shared helpers: write a config, run the CLI in-process, read what it wrote."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import main


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``phone-enrich`` in-process with the given arguments."""

    def run(*args: str | Path) -> CliResult:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def toml_value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return str(value)


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a TOML config into tmp_path; sections are dicts of key -> value."""

    def write(name: str = "config.toml", **sections: dict[str, Any]) -> Path:
        sections.setdefault("run", {"state_dir": str(tmp_path / "state")})
        lines = []
        for section, values in sections.items():
            lines.append(f"[{section}]")
            lines.extend(f"{key} = {toml_value(value)}" for key, value in values.items())
        path = tmp_path / name
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return write


def reports(state_dir: Path) -> list[dict[str, Any]]:
    """Every report.json under state_dir, oldest run first."""
    paths = sorted((state_dir / "runs").glob("*/report.json"))
    return [json.loads(p.read_text(encoding="utf-8")) for p in paths]
