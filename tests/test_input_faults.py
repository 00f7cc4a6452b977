"""Input faults that lost or bent data silently (issue 12, items 5, 8, 9 and 10):
classic-Mac line ends, a stray CR, float phone columns that cannot hold the number,
one bad byte in a UTF-8 file, and empty CSV cells read as "" where readers see null."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from enrich_helpers import EMULATOR_KEY, KEY_ENV, read_output, tcpa_config
from hypothesis import given, settings
from hypothesis import strategies as st
from polars._typing import PolarsDataType

from pipeline.emulators.server import Emulator
from pipeline.emulators.state import ProviderKnobs
from pipeline.errors import EXIT_OK, InputError
from pipeline.io.encoding import sniff
from pipeline.io.reader import ROW_NUMBER, iter_batches, open_input
from pipeline.run import run

from conftest import CliResult, reports


@pytest.fixture
def config_for(write_config: Callable[..., Path], tmp_path: Path) -> Callable[..., Path]:
    def make(source: Path, output: str = "out.csv", **extra: Any) -> Path:
        return write_config(
            input={"path": str(source), "phone_column": "phone", **extra},
            output={"path": str(tmp_path / output)},
        )

    return make


def one_error_line(result: CliResult) -> str:
    """The run's single error line (exit 2, no traceback)."""
    assert result.code == 2, result
    assert "Traceback" not in result.err
    (line,) = [ln for ln in result.err.splitlines() if ln.startswith("phone-enrich: error")]
    return line


def last_report(tmp_path: Path) -> dict[str, Any]:
    return reports(tmp_path / "state")[-1]


# --------------------------------------------------------------- 5. line ends

# Ten rows; row 4's note is a quoted value with its own line breaks (CR and LF), which
# stay in the value; row 7 has an empty unquoted note (null) and row 8 a quoted "" note.
MAC_ROWS = [
    ["id", "phone", "note"],
    *[[str(i), f"21255501{i:02d}", f"n{i}"] for i in range(1, 4)],
    ["4", "2125550104", "two\rlines\nand more"],
    *[[str(i), f"21255501{i:02d}", f"n{i}"] for i in range(5, 7)],
    ["7", "2125550107", ""],
    ["8", "2125550108", '""'],
    *[[str(i), f"21255501{i:02d}", f"n{i}"] for i in range(9, 11)],
]


def mac_file(path: Path, encoding: str = "utf-8") -> Path:
    def field(value: str) -> str:
        if value == '""':
            return value
        return f'"{value}"' if any(c in value for c in ',"\r\n') else value

    text = "".join(",".join(field(v) for v in row) + "\r" for row in MAC_ROWS)
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252", "utf-16"])
def test_classic_mac_line_ends_are_read(
    cli: Callable[..., CliResult],
    config_for: Callable[..., Path],
    tmp_path: Path,
    encoding: str,
) -> None:
    """Used to give 0 rows and exit 0: polars saw one long header line."""
    source = mac_file(tmp_path / "mac.csv", encoding)
    result = cli("run", config_for(source, output="out.parquet"))
    assert result.code == 0, result.err
    out = pl.read_parquet(tmp_path / "out.parquet")
    assert out.height == 10
    assert out["id"].to_list() == [str(i) for i in range(1, 11)]
    assert out["phone_normalized"].to_list() == [f"21255501{i:02d}" for i in range(1, 11)]
    notes = out["note"].to_list()
    assert notes[3] == "two\rlines\nand more"  # a quoted value keeps its own line breaks
    assert notes[6] is None and notes[7] == ""
    assert last_report(tmp_path)["input"]["line_ends"] == "cr"
    assert not list((tmp_path / "state" / "tmp").glob("*"))  # the LF copy is removed


def test_lone_cr_between_lf_lines_names_the_row(
    cli: Callable[..., CliResult], config_for: Callable[..., Path], tmp_path: Path
) -> None:
    """Used to exit 0 with rows 2 and 3 merged into one (phone '3135550123\\r4155550123',
    rejected too_long): a row lost without a word."""
    source = tmp_path / "in.csv"
    source.write_bytes(b"id,phone,name\n1,2125550123,Ann\n2,3135550123\r4155550123,Bob\n")
    line = one_error_line(cli("run", config_for(source)))
    assert str(source) in line
    assert "row 2" in line and "carriage return" in line and "byte 43" in line
    assert not (tmp_path / "out.csv").exists()


def test_lone_cr_in_a_crlf_file_and_in_the_header(
    cli: Callable[..., CliResult], config_for: Callable[..., Path], tmp_path: Path
) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b'id,phone\r\n"1\r\n",2125550123\r\n2,313\r5550123\r\n')
    assert "row 2" in one_error_line(cli("run", config_for(source)))
    source.write_bytes(b"id,phone\r\r\n1,2125550123\r\n")
    assert "the header" in one_error_line(cli("run", config_for(source)))


def test_cr_inside_quotes_in_an_lf_file_is_a_value(
    cli: Callable[..., CliResult], config_for: Callable[..., Path], tmp_path: Path
) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b'id,phone,name\n1,2125550123,"A\rB"\n2,3135550123,C\n')
    assert cli("run", config_for(source, output="out.parquet")).code == 0
    out = pl.read_parquet(tmp_path / "out.parquet")
    assert out["name"].to_list() == ["A\rB", "C"]
    assert last_report(tmp_path)["input"]["line_ends"] == "lf"


FIELD = st.one_of(st.none(), st.text(alphabet=st.sampled_from(list('ab ,"\r\n1é')), max_size=8))


def to_csv(rows: list[list[str | None]], newline: str) -> str:
    """None as an unquoted empty field, "" as a quoted one, quotes where needed."""

    def field(value: str | None) -> str:
        if value is None:
            return ""
        if value == "" or any(c in value for c in ',"\r\n'):
            return '"' + value.replace('"', '""') + '"'
        return value

    return "".join(",".join(field(v) for v in row) + newline for row in rows)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.lists(FIELD, min_size=3, max_size=3), min_size=1, max_size=30),
    newline=st.sampled_from(["\r", "\n", "\r\n"]),
)
def test_any_line_end_reads_every_row_back(
    tmp_path_factory: pytest.TempPathFactory, rows: list[list[str | None]], newline: str
) -> None:
    """Whatever the line ends, every row comes back, null where the field was an unquoted
    empty one and "" where it was a quoted "", CRs and LFs inside quotes kept."""
    folder = tmp_path_factory.mktemp("ends")
    path = folder / "f.csv"
    path.write_bytes(to_csv([["h1", "h2", "h3"], *rows], newline).encode("utf-8"))
    source = open_input(path, "auto", folder / "tmp")
    try:
        got = pl.concat(list(iter_batches(source, lambda frame: frame, batch_rows=1_000)))
    finally:
        source.close()
    assert got.drop(ROW_NUMBER).rows() == [tuple(row) for row in rows]
    assert source.line_ends == ("cr" if newline == "\r" else "lf")


# ------------------------------------------------------ 8. inexact numeric phones


def float_leads(path: Path, phones: Sequence[float | None], dtype: PolarsDataType) -> Path:
    pl.DataFrame(
        {
            "id": [f"L{i:05d}" for i in range(1, len(phones) + 1)],
            "phone": pl.Series(phones, dtype=dtype),
            "consent_date": ["2021-02-09"] * len(phones),
        }
    ).write_parquet(path)
    return path


def test_float32_phone_column_is_inexact_not_a_neighbours_number(
    cli: Callable[..., CliResult], config_for: Callable[..., Path], tmp_path: Path
) -> None:
    """2125550123 stored as float32 reads 2125550080: it used to come out valid."""
    source = float_leads(tmp_path / "in.parquet", [2125550123.0, 3125557788.0, None], pl.Float32)
    assert pl.read_parquet(source)["phone"].cast(pl.Int64).to_list()[0] == 2125550080
    result = cli("run", config_for(source, output="out.parquet"))
    assert result.code == 0, result.err
    out = pl.read_parquet(tmp_path / "out.parquet")
    assert out["phone_reject_reason"].to_list() == ["inexact_number", "inexact_number", "blank"]
    assert out["phone_normalized"].to_list() == [None, None, None]
    assert out["phone_valid"].to_list() == [False, False, False]
    assert last_report(tmp_path)["phones"]["reasons"] == {"inexact_number": 2, "blank": 1}


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator({"tcpa_authority": ProviderKnobs(latency_ms=0, rate_limit=None)}) as em:
        monkeypatch.setenv(KEY_ENV, EMULATOR_KEY)
        yield em


def test_inexact_numbers_are_never_sent(tmp_path: Path, emulator: Emulator) -> None:
    """float32 phones (all inexact) and a float64 past 2^53 reach no provider; the exact
    float64 phones do."""
    narrow = float_leads(tmp_path / "f32.parquet", [2027771043.0, 3125557788.0], pl.Float32)
    summary = run(tcpa_config(tmp_path, emulator, narrow, output="f32.csv", state="s1"))
    assert summary.exit_code == EXIT_OK
    state = emulator.state("tcpa_authority")
    assert state["totals"]["requests"] == 0 and state["requests"] == []
    out = read_output(tmp_path / "f32.csv")
    assert out["phone_reject_reason"].to_list() == ["inexact_number"] * 2
    assert out["tcpa_status"].to_list() == ["not_requested"] * 2

    phones = [2027771043.0, 2.0**53 + 2, 3125557788.0]
    wide = float_leads(tmp_path / "f64.parquet", phones, pl.Float64)
    summary = run(tcpa_config(tmp_path, emulator, wide, output="f64.csv", state="s2"))
    assert summary.exit_code == EXIT_OK
    state = emulator.state("tcpa_authority")
    assert sum(entry["numbers"] for entry in state["requests"]) == 2  # the exact two
    out = read_output(tmp_path / "f64.csv")
    assert out["phone_reject_reason"].to_list() == [None, "inexact_number", None]
    assert out["tcpa_status"].to_list()[1] == "not_requested"
    assert out["tcpa_status"].to_list()[0] in ("hit", "no_match")


# ----------------------------------------------------- 9. a damaged UTF-8 file

NAMES = ["José", "Zoë", "Müller", "Ñandú", "Renée"]


def utf8_leads(path: Path, rows: int, bad_row: int | None, bad: bytes = b"\xff") -> int:
    """A UTF-8 file of accented names with ``bad`` in ``bad_row``'s name; returns the
    offset of the bad byte (or -1)."""
    data = bytearray(b"id,phone,name\n")
    at = -1
    for i in range(1, rows + 1):
        data += f"{i},212555{i % 10_000:04d},{NAMES[i % len(NAMES)]}".encode()
        if i == bad_row:
            at = len(data)
            data += bad
        data += b"\n"
    path.write_bytes(bytes(data))
    return at


BIG = 140_000  # about 3.3 MiB: the bad byte lands after 3 MiB, as in the issue


def test_one_bad_byte_after_3_mib_refuses_and_says_how_to_force(
    cli: Callable[..., CliResult], config_for: Callable[..., Path], tmp_path: Path
) -> None:
    """Used to exit 0 with every accented name read as cp1252 (José -> JosÃ©)."""
    source = tmp_path / "in.csv"
    at = utf8_leads(source, BIG, bad_row=BIG - 5)
    assert at > 3 << 20
    line = one_error_line(cli("run", config_for(source)))
    assert "damaged UTF-8" in line
    assert f"byte {at} (0xFF, row {BIG - 5})" in line
    assert 'input.encoding_errors = "replace"' in line
    assert 'input.encoding = "cp1252"' in line
    assert not (tmp_path / "out.csv").exists()


def test_replace_reads_utf8_and_counts_the_bad_bytes_in_the_report(
    cli: Callable[..., CliResult], config_for: Callable[..., Path], tmp_path: Path
) -> None:
    source = tmp_path / "in.csv"
    utf8_leads(source, BIG, bad_row=BIG - 5, bad=b"\xff\xe2\x82")  # a stray byte, a cut é
    result = cli("run", config_for(source, output="out.parquet", encoding_errors="replace"))
    assert result.code == 0, result.err
    names = pl.read_parquet(tmp_path / "out.parquet")["name"]
    assert names[0] == NAMES[1] and names[BIG - 2] == NAMES[(BIG - 1) % len(NAMES)]
    assert names[BIG - 6] == NAMES[(BIG - 5) % len(NAMES)] + "\ufffd\ufffd"
    assert not names.str.contains("Ã").any()
    report = last_report(tmp_path)
    assert report["input"]["encoding"] == "utf-8"
    assert report["input"]["replaced_bytes"] == 3


def test_forced_cp1252_reads_the_damaged_file_as_asked(
    cli: Callable[..., CliResult], config_for: Callable[..., Path], tmp_path: Path
) -> None:
    source = tmp_path / "in.csv"
    utf8_leads(source, 20, bad_row=7)
    assert cli("run", config_for(source, encoding="cp1252")).code == 0
    names = read_output(tmp_path / "out.csv")["name"].to_list()
    assert names[:4] == ["ZoÃ«", "MÃ¼ller", "Ã\u2018andÃº", "RenÃ©e"]  # what was asked for


def test_explicit_utf8_names_the_row_and_the_way_out(
    cli: Callable[..., CliResult], config_for: Callable[..., Path], tmp_path: Path
) -> None:
    source = tmp_path / "in.csv"
    # A quoted name with a line break before the bad row: rows are records, not lines.
    source.write_bytes('id,phone,name\n1,2125550101,"José\nJr"\n'.encode() + b"2,2,Bad\xff\n")
    line = one_error_line(cli("run", config_for(source, encoding="utf-8")))
    assert "not valid utf-8" in line and "(0xFF, row 2)" in line
    assert 'input.encoding_errors = "replace"' in line


def test_pure_cp1252_past_3_mib_is_still_cp1252(
    cli: Callable[..., CliResult], config_for: Callable[..., Path], tmp_path: Path
) -> None:
    source = tmp_path / "in.csv"
    lines = [f"{i},212555{i % 10_000:04d},{NAMES[i % len(NAMES)]}" for i in range(1, BIG)]
    source.write_bytes(("id,phone,name\n" + "\n".join(lines) + "\n").encode("cp1252"))
    result = cli("run", config_for(source, output="out.parquet"))
    assert result.code == 0, result.err
    assert pl.read_parquet(tmp_path / "out.parquet")["name"][:5].to_list() == [
        NAMES[i % len(NAMES)] for i in range(1, 6)
    ]
    report = last_report(tmp_path)
    assert report["input"]["encoding"] == "cp1252" and report["input"]["replaced_bytes"] == 0


def test_utf8_found_only_after_the_bad_byte_still_means_damaged_utf8(tmp_path: Path) -> None:
    """The first bad byte comes before any UTF-8 letter, in another chunk: the sniff goes
    on looking past it (it used to stop there and settle on cp1252)."""
    path = tmp_path / "in.csv"
    path.write_bytes(b"id,name\n1,Caf\xe9\n" + b"2,plain\n" * 50 + "3,José\n".encode())
    with pytest.raises(InputError, match=r"damaged UTF-8: byte 13 \(0xE9, row 1\)"):
        sniff(path, chunk_bytes=16)
    assert sniff(path, chunk_bytes=16, errors="replace").encoding == "utf-8"
    path.write_bytes(b"id,name\n1,Caf\xe9\n" + b"2,plain\n" * 50 + b"3,Na\xefve\n")
    assert sniff(path, chunk_bytes=16).encoding == "cp1252"


VALID = [b"\xc3\xa9", b"\xe2\x82\xac", b"\xf0\x9f\x93\x9e"]  # é, €, a 4-byte emoji
PIECES = st.sampled_from([b"a", b",", b"\n", *VALID, b"\xe9", b"\xff", b"\x80"])


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(PIECES, max_size=40), chunk=st.integers(min_value=1, max_value=9))
def test_sniff_decides_like_the_rule_whatever_the_chunking(
    tmp_path_factory: pytest.TempPathFactory, pieces: list[bytes], chunk: int
) -> None:
    """UTF-8 if it all decodes; else refused as damaged UTF-8 if any valid multi-byte
    sequence is there (naming the first bad byte); else cp1252."""
    data = b"h\n" + b"".join(pieces)
    path = tmp_path_factory.mktemp("sniff") / "f.csv"
    path.write_bytes(data)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    else:
        assert sniff(path, chunk_bytes=chunk).encoding == "utf-8"
        return
    # Python's decoder resumes right after each bad stretch, so it finds every valid one.
    has_multibyte = any(c > "\x7f" and c != "\ufffd" for c in data.decode("utf-8", "replace"))
    if has_multibyte:
        with pytest.raises(InputError, match=f"damaged UTF-8: byte {first_bad} "):
            sniff(path, chunk_bytes=chunk)
    else:
        assert sniff(path, chunk_bytes=chunk).encoding == "cp1252"


# --------------------------------------------------- 10. empty vs null cells


def test_empty_cells_keep_what_a_reader_sees(
    cli: Callable[..., CliResult], config_for: Callable[..., Path], tmp_path: Path
) -> None:
    """An unquoted empty field (and a short row's missing one) is null, a quoted "" is "",
    in Parquet output as polars reads the input; CSV output writes them back the same
    way. It used to turn every empty cell into "" (and write it quoted)."""
    source = tmp_path / "in.csv"
    source.write_bytes(b'id,phone,name,note\n1,,"",\n2,2125550123,Ann,""\n3,3135550123\n')
    assert cli("run", config_for(source, output="out.parquet")).code == 0
    out = pl.read_parquet(tmp_path / "out.parquet")
    seen = pl.read_csv(source, infer_schema=False)
    assert out.select(seen.columns).equals(seen)
    assert out["name"].to_list() == ["", "Ann", None]
    assert out["note"].to_list() == [None, "", None]
    assert out["phone_reject_reason"].to_list() == ["blank", None, None]

    assert cli("run", config_for(source, output="out.csv")).code == 0
    written = (tmp_path / "out.csv").read_bytes().splitlines()
    assert [line.split(b",")[:4] for line in written[1:]] == [
        [b"1", b"", b'""', b""],
        [b"2", b"2125550123", b"Ann", b'""'],
        [b"3", b"3135550123", b"", b""],
    ]
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as fh:
        assert [row[:4] for row in csv.reader(fh)][1:] == [
            ["1", "", "", ""],
            ["2", "2125550123", "Ann", ""],
            ["3", "3135550123", "", ""],
        ]


def test_report_json_names_the_read(
    cli: Callable[..., CliResult], config_for: Callable[..., Path], tmp_path: Path
) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b"id,phone\n1,2125550123\n")
    assert cli("run", config_for(source)).code == 0
    report_path = next((tmp_path / "state" / "runs").glob("*/report.json"))
    read = json.loads(report_path.read_text(encoding="utf-8"))["input"]
    assert read["encoding"] == "utf-8"
    assert read["replaced_bytes"] == 0 and read["line_ends"] == "lf"
