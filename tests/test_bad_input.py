"""Bad config and bad input: one clear line naming the file, row or key; exit 2;
no traceback; and never a half-written output."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from conftest import CliResult, reports


@pytest.fixture
def config_for(write_config: Callable[..., Path], tmp_path: Path) -> Callable[..., Path]:
    def make(source: Path, output: str = "out.csv") -> Path:
        return write_config(
            input={"path": str(source), "phone_column": "phone"},
            output={"path": str(tmp_path / output)},
        )

    return make


def assert_one_clear_line(result: CliResult, *needles: str) -> None:
    assert result.code == 2, result
    lines = [line for line in result.err.splitlines() if line.startswith("phone-enrich: error")]
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        (b"", ["empty file"]),
        (b"\n\n", ["empty file"]),
        (b"id,phone\n1,2123456789\n2,2123456789,extra\n", ["ragged CSV", "row 2", "3 fields"]),
        (b'id,phone\n"1,2123456789\n', ["malformed CSV"]),
        (b"id,phone,id\n1,2,3\n", ["'id' twice"]),
        (b"id,number\n1,2123456789\n", ["no column 'phone'", "input.phone_column", "id, number"]),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ["unreadable encoding", "NUL"]),
        (b"id,phone,phone_valid\n1,2,3\n", ["'phone_valid'", "output adds"]),
    ],
    ids=[
        "zero-bytes",
        "blank-lines",
        "ragged-long",
        "unbalanced-quote",
        "duplicate-header",
        "missing-column",
        "binary",
        "column-clash",
    ],
)
def test_bad_input_file(
    cli: Callable[..., CliResult],
    config_for: Callable[..., Path],
    tmp_path: Path,
    content: bytes,
    needles: list[str],
) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(content)
    result = cli("run", config_for(source))
    assert_one_clear_line(result, str(source), *needles)
    assert not (tmp_path / "out.csv").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    (report,) = reports(tmp_path / "state")
    assert report["exit_code"] == 2 and needles[0] in report["error"]


def test_short_row_reads_missing_fields_as_null(
    cli: Callable[..., CliResult], config_for: Callable[..., Path], tmp_path: Path
) -> None:
    """A missing trailing field is null, like an unquoted empty one (as polars and pandas
    read it), and comes out as an empty field in CSV."""
    source = tmp_path / "in.csv"
    source.write_bytes(b"id,phone,x\n1,2123456789,a\n2,2123456789\n")
    assert cli("run", config_for(source)).code == 0
    with open(tmp_path / "out.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert [row[:3] for row in rows] == [
        ["id", "phone", "x"],
        ["1", "2123456789", "a"],
        ["2", "2123456789", ""],
    ]
    assert cli("run", config_for(source, "out.parquet")).code == 0
    assert pl.read_parquet(tmp_path / "out.parquet")["x"].to_list() == ["a", None]


def test_missing_input_file(
    cli: Callable[..., CliResult], config_for: Callable[..., Path], tmp_path: Path
) -> None:
    assert_one_clear_line(cli("run", config_for(tmp_path / "nope.csv")), "nope.csv", "not found")


def test_damaged_parquet(
    cli: Callable[..., CliResult], config_for: Callable[..., Path], tmp_path: Path
) -> None:
    source = tmp_path / "in.parquet"
    source.write_bytes(b"PAR1 not really parquet")
    assert_one_clear_line(cli("run", config_for(source)), "in.parquet", "not a readable Parquet")


def test_failure_late_in_the_file_leaves_the_old_output_alone(
    cli: Callable[..., CliResult], config_for: Callable[..., Path], tmp_path: Path
) -> None:
    good = "\n".join(f"{i},212345{i:04d}" for i in range(1, 30_000))
    source = tmp_path / "in.csv"
    source.write_text(f"id,phone\n{good}\n30000,2123450000,oops\n")
    output = tmp_path / "out.csv"
    output.write_text("previous output\n")
    result = cli("run", config_for(source))
    assert_one_clear_line(result, "ragged CSV", "row 30000")
    assert output.read_text() == "previous output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "config.toml",
        "in.csv",
        "out.csv",
        "state",
    ]


def test_output_is_the_input(
    cli: Callable[..., CliResult], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    source = tmp_path / "same.csv"
    source.write_text("phone\n2123456789\n")
    config = write_config(input={"path": str(source)}, output={"path": str(source)})
    assert_one_clear_line(cli("run", config), "is the input file")
    assert source.read_text() == "phone\n2123456789\n"


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        (
            '[input]\npath = "a.csv"\nphone_colum = "x"\n[output]\npath = "o.csv"\n',
            ["unknown key 'input.phone_colum'", "'x'"],
        ),
        (
            '[input]\npath = "a.csv"\n[output]\npath = "o.xlsx"\n',
            ["'output.path'", "'o.xlsx'", ".csv or .parquet"],
        ),
        (
            '[input]\npath = "a.csv"\n[output]\npath = "o.csv"\n[run]\nbatch_rows = "many"\n',
            ["'run.batch_rows'", "'many'", "integer"],
        ),
        (
            '[input]\npath = "a.csv"\n[output]\npath = "o.csv"\n'
            '[normalize]\nregions = ["US", "XX"]\n',
            ["'normalize.regions'", "XX", "NANP regions"],
        ),
        (
            '[input]\npath = "a.csv"\nencoding = "klingon"\n[output]\npath = "o.csv"\n',
            ["'input.encoding'", "'klingon'", "known text encoding"],
        ),
        ('[input]\npath = "a.csv"\n', ["missing key 'output'"]),
        ('[input\npath = "a.csv"\n', ["not valid TOML", "line 1"]),
    ],
    ids=[
        "unknown-key",
        "bad-output-suffix",
        "wrong-type",
        "bad-region",
        "bad-encoding",
        "missing",
        "toml",
    ],
)
def test_bad_config(
    cli: Callable[..., CliResult], tmp_path: Path, text: str, needles: list[str]
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    assert_one_clear_line(cli("run", config), "bad.toml", *needles)


def test_missing_config_and_bad_usage(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    assert_one_clear_line(cli("run", tmp_path / "none.toml"), "none.toml", "not found")
    assert_one_clear_line(cli("frobnicate"), "invalid choice")
    assert_one_clear_line(cli("sample", "--rows", "10", "--out", tmp_path / "x.xlsx"), "x.xlsx")


def test_real_process_prints_no_traceback(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("id,phone\n1,2,3\n")
    config = tmp_path / "c.toml"
    config.write_text(
        f'[input]\npath = "{source}"\n[output]\npath = "{tmp_path / "o.csv"}"\n'
        f'[run]\nstate_dir = "{tmp_path / "state"}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", str(config)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"phone-enrich: error: {source}: ragged CSV: row 1 has 3 fields, the header has 2"
    ]
    assert not (tmp_path / "o.csv").exists()
