"""Inbox mode: a glob of inputs and an output folder; each file once, named after it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from conftest import CliResult


def _drop(inbox: Path, name: str, phones: list[str]) -> None:
    (inbox / name).write_text("id,phone\n" + "".join(f"{i},{p}\n" for i, p in enumerate(phones)))


def test_inbox_processes_each_new_file_once(
    cli: Callable[..., CliResult], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    inbox, done = tmp_path / "inbox", tmp_path / "done"
    inbox.mkdir()
    for n in range(3):
        _drop(inbox, f"leads-{n}.csv", ["2125550123", f"415555{n:04d}", "nope"])
    config = write_config(
        input={"path": str(inbox / "*.csv"), "phone_column": "phone"},
        output={"dir": str(done), "format": "csv"},
    )
    first = cli("run", config, "--quiet")
    assert first.code == 0
    outputs = sorted(p.name for p in done.iterdir())
    assert outputs == [f"leads-{n}.enriched.csv" for n in range(3)]
    for n in range(3):
        out = pl.read_csv(done / f"leads-{n}.enriched.csv", infer_schema=False)
        assert out["phone"].to_list() == ["2125550123", f"415555{n:04d}", "nope"]

    again = cli("run", config)
    assert again.code == 0 and again.out.count("nothing to do") == 3
    _drop(inbox, "leads-3.csv", ["6175550100"])
    third = cli("run", config)
    assert third.code == 0 and third.out.count("nothing to do") == 3
    assert (done / "leads-3.enriched.csv").exists()
    runs = list((tmp_path / "state" / "runs").iterdir())
    assert len(runs) == 4  # one run per file, each recorded once


def test_a_glob_needs_an_output_folder(
    cli: Callable[..., CliResult], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config(
        input={"path": str(tmp_path / "*.csv")}, output={"path": str(tmp_path / "o.csv")}
    )
    result = cli("run", config)
    assert result.code == 2 and "set output.dir" in result.err
    both = write_config(
        "both.toml",
        input={"path": str(tmp_path / "a.csv")},
        output={"path": str(tmp_path / "o.csv"), "dir": str(tmp_path)},
    )
    result = cli("run", both)
    assert result.code == 2 and "exactly one of output.path" in result.err
