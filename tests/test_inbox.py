"""Inbox mode: a glob of inputs and an output folder; each file once, named after it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from pipeline.config import Config, parse_config
from pipeline.errors import InputError
from pipeline.inbox import run_inbox

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


def _runs(state: Path) -> list[str]:
    return sorted(p.name for p in (state / "runs").iterdir())


def test_a_bad_file_is_refused_until_it_changes_and_blocks_nothing(
    cli: Callable[..., CliResult], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    inbox, done, state = tmp_path / "inbox", tmp_path / "done", tmp_path / "state"
    inbox.mkdir()
    _drop(inbox, "a.csv", ["2125550123", "nope"])
    bad = inbox / "b.csv"
    bad.write_text("id,phone\n0,2125550123\n1,4155550100,extra\n")  # a ragged row
    _drop(inbox, "c.csv", ["6175550100"])
    config = write_config(
        input={"path": str(inbox / "*.csv"), "phone_column": "phone"},
        output={"dir": str(done), "format": "csv"},
    )

    first = cli("run", config, "--quiet")
    assert first.code == 2  # was: 2 on b.csv, and c.csv never processed, run after run
    assert sorted(p.name for p in done.iterdir()) == ["a.enriched.csv", "c.enriched.csv"]
    assert pl.read_csv(done / "c.enriched.csv", infer_schema=False)["phone_valid"].to_list() == [
        "true"
    ]
    assert "Traceback" not in first.err
    lines = first.err.strip().splitlines()
    assert lines[0] == (
        f"phone-enrich: error: {bad}: refused: ragged CSV: row 2 has 3 fields, the header has 2"
    )
    assert lines[-1] == (
        f"phone-enrich: error: inbox {inbox / '*.csv'}: 1 of 3 files refused: {bad}"
    )
    log = [json.loads(line) for line in (state / "inbox" / "log.jsonl").read_text().splitlines()]
    assert [(e["event"], e["path"]) for e in log] == [("refused", str(bad))]
    runs = _runs(state)
    assert len(runs) == 3  # a, c, and b's failed attempt (its report names the error)

    second = cli("run", config)
    assert second.code == 2
    assert second.out.count("nothing to do") == 2  # a and c: already done
    assert f"{bad}: refused since " in second.err and "unchanged, not read again" in second.err
    assert "ragged CSV: row 2" in second.err and f"1 of 3 files refused: {bad}" in second.err
    assert _runs(state) == runs  # b.csv was not read again: no new attempt

    bad.write_text("id,phone\n0,2125550123\n1,4155550100\n")  # fixed
    third = cli("run", config, "--quiet")
    assert third.code == 0 and third.err == ""
    out = pl.read_csv(done / "b.enriched.csv", infer_schema=False)
    assert out["phone_normalized"].to_list() == ["2125550123", "4155550100"]
    fourth = cli("run", config)
    assert fourth.code == 0 and fourth.out.count("nothing to do") == 3


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_outputs_written_into_the_inbox_are_not_inputs(
    cli: Callable[..., CliResult], write_config: Callable[..., Path], tmp_path: Path, fmt: str
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _drop(inbox, "leads.csv", ["2125550123", "nope"])
    config = write_config(
        input={"path": str(inbox / "*"), "phone_column": "phone"},
        output={"dir": str(inbox), "format": fmt},
    )
    first = cli("run", config, "--quiet")
    assert first.code == 0, first.err
    assert sorted(p.name for p in inbox.iterdir()) == ["leads.csv", f"leads.enriched.{fmt}"]
    again = cli("run", config)
    assert again.code == 0, again.err  # was: 2, its own output read as an input
    assert again.out.count("nothing to do") == 1
    assert sorted(p.name for p in inbox.iterdir()) == ["leads.csv", f"leads.enriched.{fmt}"]


def test_outputs_that_would_land_on_an_input_or_on_each_other(
    cli: Callable[..., CliResult], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    """a.csv and a.txt would both write a.enriched.csv: the second replaced the first,
    which the next run took as a.csv's and said "nothing to do". b's output is a link
    to an input; c's output is a folder. Each is refused, d is processed."""
    inbox, done = tmp_path / "inbox", tmp_path / "done"
    inbox.mkdir()
    done.mkdir()
    _drop(inbox, "a.csv", ["2125550123"])
    _drop(inbox, "a.txt", ["4155550100"])
    _drop(inbox, "b.csv", ["6175550100"])
    _drop(inbox, "c.csv", ["3125550100"])
    _drop(inbox, "d.csv", ["7185550100"])
    (done / "b.enriched.csv").symlink_to(inbox / "d.csv")
    (done / "c.enriched.csv").mkdir()
    before = {p.name: p.read_bytes() for p in inbox.iterdir()}
    config = write_config(
        input={"path": str(inbox / "*"), "phone_column": "phone"},
        output={"dir": str(done), "format": "csv"},
    )
    result = cli("run", config, "--quiet")
    assert result.code == 2
    assert "Traceback" not in result.err
    assert f"{inbox / 'a.csv'}: refused: its output {done / 'a.enriched.csv'} is also" in result.err
    assert f"{inbox / 'a.txt'}: refused: its output" in result.err
    assert f"{inbox / 'b.csv'}: refused: its output {done / 'b.enriched.csv'}" in result.err
    assert f"{inbox / 'c.csv'}: refused: output.path {done / 'c.enriched.csv'}: is a folder" in (
        result.err
    )
    assert "4 of 5 files refused" in result.err
    assert {p.name: p.read_bytes() for p in inbox.iterdir()} == before
    assert not (done / "a.enriched.csv").exists()
    out = pl.read_csv(done / "d.enriched.csv", infer_schema=False)
    assert out["phone_normalized"].to_list() == ["7185550100"]


def test_a_stop_ends_the_inbox_loop(tmp_path: Path) -> None:
    """Exit 3 (budget, key, signal) leaves the later files for the next run; a file
    refused before the stop is still named, and the stop's exit code wins."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("a.csv", "b.csv", "c.csv"):
        _drop(inbox, name, ["2125550123"])
    config = parse_config(
        {
            "input": {"path": str(inbox / "*.csv")},
            "output": {"dir": str(tmp_path / "done")},
            "run": {"state_dir": str(tmp_path / "state")},
        },
        "test",
    )
    tried: list[str] = []

    def run_one(one: Config) -> int:
        name = Path(one.input.path).name
        tried.append(name)
        if name == "a.csv":
            raise InputError(f"{one.input.path}: no column 'phone'")
        return 3

    warned: list[str] = []
    result = run_inbox(config, run_one, warned.append)
    assert tried == ["a.csv", "b.csv"]
    assert result.exit_code == 3
    assert [r.path.name for r in result.refused] == ["a.csv"]
    assert warned == [f"{inbox / 'a.csv'}: refused: no column 'phone'"]
