"""End-to-end normalize-only runs through the CLI: what lands in the output and report."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from pipeline.normalize import PHONE_COLUMNS, PHONE_SOURCE_TYPE, REGION_TYPE, REJECT_REASON_TYPE
from pipeline.verdict import VERDICT_TYPE

from conftest import CliResult, reports

ROWS = [
    {"lead_id": "007", "name": "Ann, Jr.", "phone": "(212) 345-6789", "consent_date": "01/02/2021"},
    {
        "lead_id": "008",
        "name": 'Bob "B"',
        "phone": "+1 416 234 5678 x12",
        "consent_date": "2021-3-4",
    },
    {"lead_id": "009", "name": "line\nbreak", "phone": "n/a", "consent_date": ""},
    {"lead_id": "010", "name": "  spaced  ", "phone": "", "consent_date": "5/6/21"},
    {"lead_id": "011", "name": "=SUM(A1)", "phone": "2123456789.0", "consent_date": "20210708"},
    {"lead_id": "012", "name": "", "phone": "(212) 345-6789", "consent_date": "garbage"},
]


def write_csv(path: Path, rows: list[dict[str, str]], encoding: str = "utf-8") -> Path:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_bytes(text.getvalue().encode(encoding))
    return path


def read_output(path: Path) -> pl.DataFrame:
    if path.suffix == ".csv":
        return pl.read_csv(path, infer_schema=False)
    return pl.read_parquet(path)


@pytest.fixture
def leads(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "leads.csv", ROWS)


@pytest.fixture
def config_for(write_config: Callable[..., Path], tmp_path: Path) -> Callable[..., Path]:
    def make(source: Path, output: str = "out.csv", **input_keys: object) -> Path:
        keys = {"path": str(source), "phone_column": "phone", **input_keys}
        return write_config(
            input=keys,
            output={"path": str(tmp_path / output)},
            run={"state_dir": str(tmp_path / "state")},
        )

    return make


@pytest.mark.parametrize("output", ["out.csv", "out.parquet"])
def test_every_row_once_in_order_with_original_values(
    cli: Callable[..., CliResult],
    config_for: Callable[..., Path],
    leads: Path,
    tmp_path: Path,
    output: str,
) -> None:
    result = cli("run", config_for(leads, output, consent_date_column="consent_date"))
    assert result.code == 0, result.err
    out = read_output(tmp_path / output)
    if output.endswith(".parquet"):
        # Closed sets are Enums, the consent date a Date; in CSV the same text.
        typed = {
            "phone_reject_reason": REJECT_REASON_TYPE,
            "phone_region": REGION_TYPE,
            "phone_source": PHONE_SOURCE_TYPE,
            "consent_date_normalized": pl.Date,
            "contact_verdict": VERDICT_TYPE,
        }
        assert {name: out.schema[name] for name in typed} == typed
        out = out.with_columns(
            pl.col(pl.Enum).cast(pl.String), pl.col(pl.Date).dt.to_string("%Y-%m-%d")
        )
    assert out["phone_source"].to_list() == ["input", "input", None, None, "input", "input"]
    assert out["contact_verdict"].to_list()[2:4] == ["do_not_contact"] * 2
    assert out.height == len(ROWS)
    for column in ROWS[0]:
        # Original strings survive exactly: leading zeros, quotes, commas, newlines, spaces.
        assert out[column].fill_null("").to_list() == [r[column] for r in ROWS]
    assert out["phone_normalized"].to_list() == [
        "2123456789",
        "4162345678",
        None,
        None,
        "2123456789",
        "2123456789",
    ]
    assert out["phone_reject_reason"].to_list() == [None, None, "not_a_phone", "blank", None, None]
    assert out["phone_extension"].to_list()[1] == "12"
    assert out["phone_region"].to_list()[:2] == ["US", "CA"]
    assert out["consent_date_normalized"].to_list() == [
        "2021-01-02",
        "2021-03-04",
        None,
        "2021-05-06",
        "2021-07-08",
        None,
    ]
    assert out.columns == [
        *ROWS[0],
        "row_trace_id",
        *PHONE_COLUMNS,
        "consent_date_normalized",
        "credits_total",
        "contact_verdict",
        "contact_verdict_reasons",
    ]
    assert out["credits_total"].cast(pl.Int64).to_list() == [0] * len(ROWS)


def test_trace_ids_are_uuids_stable_across_runs_and_formats(
    cli: Callable[..., CliResult], config_for: Callable[..., Path], leads: Path, tmp_path: Path
) -> None:
    assert cli("run", config_for(leads, "a.csv")).code == 0
    assert cli("run", config_for(leads, "b.parquet")).code == 0
    first = read_output(tmp_path / "a.csv")["row_trace_id"].to_list()
    second = read_output(tmp_path / "b.parquet")["row_trace_id"].to_list()
    assert first == second
    assert len(set(first)) == len(ROWS)
    for number, value in enumerate(first, start=1):
        parsed = uuid.UUID(value)
        assert str(parsed) == value and parsed.version == 8
        assert value.endswith(f"{number:012d}")  # the row number is readable in the id
    # Another input (one byte changed) gets other ids.
    other = write_csv(tmp_path / "other.csv", [{**ROWS[0], "lead_id": "X07"}, *ROWS[1:]])
    assert cli("run", config_for(other, "c.csv")).code == 0
    third = read_output(tmp_path / "c.csv")["row_trace_id"].to_list()
    assert not set(third) & set(first)


def test_report_and_summary(
    cli: Callable[..., CliResult], config_for: Callable[..., Path], leads: Path, tmp_path: Path
) -> None:
    result = cli("run", config_for(leads, consent_date_column="consent_date"))
    assert result.code == 0
    (report,) = reports(tmp_path / "state")
    assert report["exit_code"] == 0
    assert report["rows"] == len(ROWS)
    assert report["phones"] == {
        "valid": 4,
        "rejected": 2,
        "reasons": {"blank": 1, "not_a_phone": 1},
    }
    assert report["consent_dates"] == {"read": 4, "blank": 1, "unreadable": 1}
    assert report["input"]["encoding"] == "utf-8"
    assert report["credits_total"] == 0
    run_dir = tmp_path / "state" / "runs" / report["run_id"]
    assert (run_dir / "failed_rows.csv").read_text().splitlines() == [
        "row_trace_id,row_number,id,phone,provider,status,error"
    ]
    assert report["run_id"] in result.out and "valid phones: 4" in result.out
    # No provider: the two rows without a valid phone may not be called, the rest unchecked.
    assert report["verdicts"] == {"ok": 0, "do_not_contact": 2, "review": 0, "unchecked": 4}
    assert "  contact verdicts: do_not_contact 2, unchecked 4" in result.out.splitlines()


def test_small_batches_keep_order(
    cli: Callable[..., CliResult], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    rows = [{"id": str(i), "phone": f"212345{i:04d}"} for i in range(5_000)]
    source = write_csv(tmp_path / "many.csv", rows)
    config = write_config(
        input={"path": str(source)},
        output={"path": str(tmp_path / "many.parquet")},
        run={"state_dir": str(tmp_path / "state"), "batch_rows": 1_000},
    )
    assert cli("run", config).code == 0
    out = pl.read_parquet(tmp_path / "many.parquet")
    assert out["id"].to_list() == [str(i) for i in range(5_000)]
    assert out["phone_normalized"].to_list() == [f"212345{i:04d}" for i in range(5_000)]
    assert out["row_trace_id"].str.slice(-12).cast(pl.Int64).to_list() == list(range(1, 5_001))


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-8", b""),
        ("utf-8", b"\xef\xbb\xbf"),
        ("cp1252", b""),
        ("latin-1", b""),
        ("utf-16-le", b"\xff\xfe"),
        ("utf-16-be", b"\xfe\xff"),
    ],
)
def test_encodings(
    cli: Callable[..., CliResult],
    config_for: Callable[..., Path],
    tmp_path: Path,
    encoding: str,
    bom: bytes,
) -> None:
    rows = [
        {"name": "José Müller", "phone": "212-345-6789"},
        {"name": "Zoë « Œuvre »" if encoding != "latin-1" else "Zoë « Ñ »", "phone": "n/a"},
    ]
    source = tmp_path / "enc.csv"
    write_csv(source, rows, encoding)
    source.write_bytes(bom + source.read_bytes())
    result = cli("run", config_for(source))
    assert result.code == 0, result.err
    out = read_output(tmp_path / "out.csv")
    assert out["name"].to_list() == [r["name"] for r in rows]
    assert out.columns[0] == "name"  # the BOM is not glued to the first header
    assert out["phone_normalized"].to_list() == ["2123456789", None]
    assert (tmp_path / "out.csv").read_bytes().decode("utf-8")  # output is UTF-8
    assert not list((tmp_path / "state" / "tmp").glob("*"))  # transcoded copy removed


def test_forced_encoding(
    cli: Callable[..., CliResult], config_for: Callable[..., Path], tmp_path: Path
) -> None:
    source = tmp_path / "latin.csv"
    source.write_bytes("name,phone\nCafé\x81,2123456789\n".encode("latin-1"))
    # cp1252 has no 0x81, UTF-8 rejects 0xE9: auto gives up, latin-1 reads it.
    refused = cli("run", config_for(source))
    assert refused.code == 2
    assert "unreadable encoding" in refused.err and "input.encoding" in refused.err
    assert cli("run", config_for(source, encoding="latin-1")).code == 0
    assert read_output(tmp_path / "out.csv")["name"].to_list() == ["Café\x81"]


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        (["2123456789", None, "n/a"], pl.String),
        ([2123456789, None, 12], pl.Int64),
        ([2123456789.0, None, float("nan")], pl.Float64),
    ],
)
def test_parquet_input_phone_types(
    cli: Callable[..., CliResult],
    config_for: Callable[..., Path],
    tmp_path: Path,
    values: list[object],
    dtype: pl.DataType,
) -> None:
    source = tmp_path / "in.parquet"
    frame = pl.DataFrame({"id": [1, 2, 3], "phone": pl.Series(values, dtype=dtype)})
    frame.write_parquet(source)
    assert cli("run", config_for(source, "out.parquet")).code == 0
    out = pl.read_parquet(tmp_path / "out.parquet")
    assert out["id"].to_list() == [1, 2, 3]
    assert out["phone"].dtype == dtype  # original column untouched
    assert out["phone_normalized"].to_list() == ["2123456789", None, None]
    assert out["phone_reject_reason"].to_list()[1] == "blank"


def test_header_only_input_gives_header_only_output(
    cli: Callable[..., CliResult], config_for: Callable[..., Path], tmp_path: Path
) -> None:
    source = tmp_path / "header.csv"
    source.write_text("id,phone\n")
    assert cli("run", config_for(source)).code == 0
    header = (tmp_path / "out.csv").read_text().splitlines()
    assert header[0].startswith("id,phone,row_trace_id,phone_normalized")
    assert len(header) == 1


def test_formula_safe_added_text_and_untouched_originals(
    cli: Callable[..., CliResult], config_for: Callable[..., Path], tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "f.csv", [{"note": "=1+1", "phone": "+1 212 345 6789"}])
    assert cli("run", config_for(source)).code == 0
    text = (tmp_path / "out.csv").read_text()
    assert "=1+1," in text  # the user's own cell is theirs
    assert re.search(r",\+12123456789,", text)  # a plain E.164 number is not a formula


def test_config_overrides_on_the_command_line(
    cli: Callable[..., CliResult], config_for: Callable[..., Path], leads: Path, tmp_path: Path
) -> None:
    config = config_for(tmp_path / "missing.csv")
    result = cli("run", config, "--input", leads, "--output", tmp_path / "o.parquet")
    assert result.code == 0, result.err
    assert pl.read_parquet(tmp_path / "o.parquet").height == len(ROWS)


def test_a_csv_run_without_lookups_imports_no_pyarrow_httpx_or_emulators(
    config_for: Callable[..., Path], leads: Path
) -> None:
    """Start-up is a share of every normalize-only run: what a CSV run does not use is
    not imported (pyarrow: only Parquet; httpx and the engine: only lookups; the
    emulators: only emulate, demo, tests)."""
    config = config_for(leads, "out.parquet", consent_date_column="consent_date")
    unused = ("pyarrow", "httpx", "pipeline.engine.engine", "pipeline.emulators.server")
    code = (
        "import sys; from pipeline.cli import main; code = main(['run', sys.argv[1]]); "
        f"print(sorted(m for m in {unused!r} if m in sys.modules)); raise SystemExit(code)"
    )
    root = str(Path(__file__).resolve().parent.parent)
    done = subprocess.run(
        [sys.executable, "-c", code, str(config)],
        capture_output=True, text=True, timeout=60, cwd=root,
        env={**os.environ, "PYTHONPATH": root},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
