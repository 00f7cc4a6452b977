"""The input's sniff started ahead of the imports (pipeline.io.encoding.sniff_soon): the
run takes up what it found only for the same file, unchanged; otherwise it reads the
file again, and fails as it would have."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.errors import InputError
from pipeline.io import encoding
from pipeline.io.encoding import fingerprint, sniff, sniff_soon


@pytest.fixture(autouse=True)
def _nothing_ahead() -> None:
    encoding._EARLY.clear()  # what other tests' runs started and did not take up


def test_taken_up_when_the_file_is_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes("phone,name\n2125550123,Jos\u00e9\n".encode())
    sniff_soon(path)
    assert encoding._EARLY  # started
    early = sniff(path)
    assert not encoding._EARLY  # taken up
    assert early == sniff(path)  # what reading it now gives
    assert early.fingerprint == fingerprint(path) and early.encoding == "utf-8"


def test_read_again_when_the_file_changed_since(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b"phone\n2125550123\n")
    sniff_soon(path)
    _, found = encoding._EARLY[(os.path.realpath(path), "auto", "strict")]
    encoding._EARLY[(os.path.realpath(path), "auto", "strict")][0].join()
    assert found  # the pass itself saw no change
    path.write_bytes(b"phone\n2125550124\n")  # same size: the mtime (or inode) tells
    os.utime(path, ns=(1, 1))
    assert sniff(path).fingerprint == fingerprint(path)
    assert fingerprint(path) != found[0][1].fingerprint


def test_a_failure_is_met_again(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b"phone\n212\x00555\n")
    sniff_soon(path)
    with pytest.raises(InputError, match="binary data"):
        sniff(path)


def test_run_starts_the_sniff_and_takes_it_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[Path] = []
    real = encoding.sniff_soon
    monkeypatch.setattr(encoding, "sniff_soon", lambda p, *a: started.append(p) or real(p, *a))
    path = tmp_path / "in.csv"
    path.write_bytes(b"phone\n2125550123\n")
    config = tmp_path / "c.toml"
    config.write_text(
        f'[input]\npath = "{path}"\n[output]\npath = "{tmp_path / "out.csv"}"\n'
        f'[run]\nstate_dir = "{tmp_path / "state"}"\n'
    )
    assert main(["run", str(config), "--quiet"]) == 0
    assert started == [path] and not encoding._EARLY
    assert (tmp_path / "out.csv").read_text().startswith("phone,row_trace_id,")


def test_not_started_for_a_named_encoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[Path] = []
    monkeypatch.setattr(encoding, "sniff_soon", lambda p, *a: started.append(p))
    path = tmp_path / "in.csv"
    path.write_bytes("phone,name\n2125550123,Jos\u00e9\n".encode("latin-1"))
    config = tmp_path / "c.toml"
    config.write_text(
        f'[input]\npath = "{path}"\nencoding = "latin-1"\n'
        f'[output]\npath = "{tmp_path / "out.csv"}"\n[run]\nstate_dir = "{tmp_path / "s"}"\n'
    )
    assert main(["run", str(config), "--quiet"]) == 0
    assert started == []  # the config spells it iso8859-1: the run would not take it up
