"""What can be checked before the first paid request is checked before it.

Each bad path or codec is one line, exit 2, no traceback, and the provider (the
in-process emulator) got no request at all. Tests run as root, which no chmod stops:
"read-only" is a read-only tmpfs mount.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from enrich_helpers import EMULATOR_KEY, KEY_ENV, write_leads

from pipeline.emulators.server import Emulator
from pipeline.emulators.state import ProviderKnobs

from conftest import CliResult

ROWS = [("2125550123", "2021-02-09"), ("4155550100", "2021-02-09"), ("6175550199", "2021-02-09")]


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator({"tcpa_authority": ProviderKnobs(latency_ms=0, rate_limit=None)}) as em:
        monkeypatch.setenv(KEY_ENV, EMULATOR_KEY)
        yield em


@contextmanager
def read_only(folder: Path, *, keep: bool = False) -> Iterator[Path]:
    """``folder`` as a read-only mount (empty, or with what it held if ``keep``)."""
    folder.mkdir(parents=True, exist_ok=True)
    if keep:  # copy what it holds onto a tmpfs, then make that read-only
        saved = folder.with_name(folder.name + ".saved")
        folder.rename(saved)
        folder.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(folder)], check=True)
        subprocess.run(["cp", "-a", f"{saved}/.", str(folder)], check=True)
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
    else:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def requests(emulator: Emulator) -> int:
    return len(emulator.state("tcpa_authority")["requests"])


def assert_refused(result: CliResult, *needles: str) -> None:
    """Exit 2, one line on stderr that says it all, no traceback."""
    assert result.code == 2, (result.code, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("phone-enrich: error: ")
    assert "Traceback" not in result.err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture
def job(
    tmp_path: Path, emulator: Emulator, write_config: Callable[..., Path]
) -> Callable[..., Path]:
    """A TCPA job on three rows against the emulator; keyword sections override."""
    source = write_leads(tmp_path / "in.csv", ROWS)

    def make(**override: dict[str, Any]) -> Path:
        sections: dict[str, dict[str, Any]] = {
            "input": {
                "path": str(source),
                "phone_column": "phone",
                "consent_date_column": "consent_date",
            },
            "output": {"path": str(tmp_path / "out" / "out.csv")},
            "run": {"state_dir": str(tmp_path / "state")},
            "providers.tcpa_authority": {
                "base_url": emulator.base_url("tcpa_authority"),
                "requests_per_minute": 60_000,
                "timeout_s": 5,
            },
        }
        for section, values in override.items():
            sections[section] = {**sections[section], **values}
        return write_config(**sections)

    return make


def test_a_good_job_reaches_the_emulator(
    cli: Callable[..., CliResult], job: Callable[..., Path], emulator: Emulator, tmp_path: Path
) -> None:
    """The control: the same job with good paths buys its lookups, and leaves no probe."""
    result = cli("run", job(), "--quiet")
    assert result.code == 0, result.err
    assert requests(emulator) > 0
    assert (tmp_path / "out" / "out.csv").is_file()
    left = [p.name for folder in (tmp_path / "out", tmp_path / "state") for p in folder.iterdir()]
    assert not [name for name in left if name.startswith(".phone-enrich-probe-")]


def test_output_path_that_is_a_folder(
    cli: Callable[..., CliResult], job: Callable[..., Path], emulator: Emulator, tmp_path: Path
) -> None:
    (tmp_path / "out" / "out.csv").mkdir(parents=True)
    result = cli("run", job(), "--quiet")
    assert requests(emulator) == 0  # was: the whole job bought, then refused at the rename
    assert_refused(result, "output.path", str(tmp_path / "out" / "out.csv"), "is a folder")


def test_output_folder_that_is_read_only(
    cli: Callable[..., CliResult], job: Callable[..., Path], emulator: Emulator, tmp_path: Path
) -> None:
    with read_only(tmp_path / "out"):
        result = cli("run", job(), "--quiet")
    assert requests(emulator) == 0
    assert_refused(result, "output.path", str(tmp_path / "out"), "Read-only file system")


def test_output_folder_under_a_file(
    cli: Callable[..., CliResult], job: Callable[..., Path], emulator: Emulator, tmp_path: Path
) -> None:
    (tmp_path / "blocker").write_text("a file, not a folder\n")
    config = job(output={"path": str(tmp_path / "blocker" / "sub" / "out.csv")})
    result = cli("run", config, "--quiet")
    assert requests(emulator) == 0
    assert_refused(result, "output.path", f"under {tmp_path / 'blocker'}, a file")


@pytest.mark.parametrize("command", ["run", "retry"])
def test_state_dir_that_is_a_file(
    cli: Callable[..., CliResult],
    job: Callable[..., Path],
    emulator: Emulator,
    tmp_path: Path,
    command: str,
) -> None:
    (tmp_path / "state").write_text("not a folder\n")
    result = cli(command, job(), "--quiet")
    assert requests(emulator) == 0
    assert_refused(result, "run.state_dir", str(tmp_path / "state"), "is a file")
    assert (tmp_path / "state").read_text() == "not a folder\n"


def test_state_dir_under_a_file(
    cli: Callable[..., CliResult], job: Callable[..., Path], emulator: Emulator, tmp_path: Path
) -> None:
    (tmp_path / "blocker").write_text("x\n")
    result = cli("run", job(run={"state_dir": str(tmp_path / "blocker" / "state")}), "--quiet")
    assert requests(emulator) == 0
    assert_refused(result, "run.state_dir", f"under {tmp_path / 'blocker'}, a file")


def test_state_dir_that_is_read_only(
    cli: Callable[..., CliResult], job: Callable[..., Path], emulator: Emulator, tmp_path: Path
) -> None:
    """Empty, and holding the ledger of an earlier run: neither can take an answer."""
    with read_only(tmp_path / "state"):
        result = cli("run", job(), "--quiet")
    assert requests(emulator) == 0
    assert_refused(result, "run.state_dir", str(tmp_path / "state"), "Read-only file system")

    normalize_only = job()
    text = normalize_only.read_text()
    normalize_only.write_text(text.split("[providers.tcpa_authority]")[0])
    assert cli("run", normalize_only, "--quiet").code == 0
    assert (tmp_path / "state" / "ledger.sqlite").exists()
    with read_only(tmp_path / "state", keep=True):
        result = cli("run", job(output={"path": str(tmp_path / "other.csv")}), "--quiet")
    assert requests(emulator) == 0
    assert_refused(result, "run.state_dir", "Read-only file system")


@pytest.mark.parametrize("codec", ["rot13", "base64", "hex", "zlib"])
def test_an_encoding_that_is_not_a_text_codec(
    cli: Callable[..., CliResult], job: Callable[..., Path], emulator: Emulator, codec: str
) -> None:
    result = cli("run", job(input={"encoding": codec}), "--quiet")
    assert requests(emulator) == 0
    assert_refused(result, "input.encoding", repr(codec), "not a text encoding")


@pytest.mark.parametrize("codec", ["utf-8", "cp1252", "latin-1", "utf_8_sig", "ascii"])
def test_text_codecs_are_still_accepted(
    cli: Callable[..., CliResult], job: Callable[..., Path], emulator: Emulator, codec: str
) -> None:
    """The control of the codec check: a text codec loads and reads the (ASCII) file."""
    result = cli("estimate", job(input={"encoding": codec}))
    assert result.code == 0, result.err
    assert "rows: 3" in result.out


def test_output_over_the_input_through_a_folder_that_does_not_exist(
    cli: Callable[..., CliResult], job: Callable[..., Path], emulator: Emulator, tmp_path: Path
) -> None:
    """``sub/../in.csv`` with no ``sub``: the writer's mkdir -p made ``sub``, and the
    output replaced the input. Now refused before any folder is made or request sent."""
    source = tmp_path / "in.csv"
    before = source.read_bytes()
    through = f"{tmp_path}/sub/../in.csv"
    result = cli("run", job(output={"path": through}), "--quiet")
    assert_refused(result, "output.path", through, f"is the input file {source}")
    assert source.read_bytes() == before
    assert not (tmp_path / "sub").exists()
    assert requests(emulator) == 0

    again = cli("run", job(), "--output", through, "--quiet")  # the same from the command line
    assert_refused(again, "is the input file")
    assert source.read_bytes() == before and not (tmp_path / "sub").exists()


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_output_that_is_a_link_to_the_input(
    cli: Callable[..., CliResult],
    job: Callable[..., Path],
    emulator: Emulator,
    tmp_path: Path,
    link: str,
) -> None:
    source = tmp_path / "in.csv"
    before = source.read_bytes()
    alias = tmp_path / "alias.csv"
    if link == "symlink":
        alias.symlink_to(source)
    else:
        os.link(source, alias)
    result = cli("run", job(output={"path": str(alias)}), "--quiet")
    assert_refused(result, str(alias), "is the input file")
    assert source.read_bytes() == before
    assert requests(emulator) == 0
