"""The validity table's cache: what it reads back is the table this process builds."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pipeline.validity_cache import CACHE_ENV, _built, cache_dir, table_key, table_series


def _same(a: tuple[pl.Series, ...], b: tuple[pl.Series, ...]) -> bool:
    return len(a) == len(b) and all(
        x.dtype == y.dtype and x.equals(y) for x, y in zip(a, b, strict=True)
    )


def test_the_cached_table_is_the_built_table(tmp_path: Path) -> None:
    built = _built()
    first = table_series(tmp_path)  # builds and stores it
    (stored,) = tmp_path.iterdir()
    assert stored.name == f"validity-{table_key()}.arrow"
    assert stored.stat().st_size < 100_000
    assert _same(first, built)
    assert _same(table_series(tmp_path), built)  # read back
    assert stored.stat().st_mtime_ns == next(tmp_path.iterdir()).stat().st_mtime_ns


def test_a_damaged_cache_file_is_built_again_and_replaced(tmp_path: Path) -> None:
    path = tmp_path / f"validity-{table_key()}.arrow"
    for damage in (b"", b"ARROW1 and then nothing", b"x" * 5000):
        path.write_bytes(damage)
        assert _same(table_series(tmp_path), _built())
        assert _same(table_series(tmp_path), _built())
        assert path.read_bytes() != damage


def test_a_table_of_other_rules_is_never_read(tmp_path: Path) -> None:
    """Another key (another phonenumbers, other patterns, other code) is another file:
    a file under an old key is left alone and not read."""
    other = tmp_path / "validity-00000000000000000000000000000000.arrow"
    pl.DataFrame({"level": pl.Series("level", [pl.Series([0] * 10**6, dtype=pl.UInt8)])}).write_ipc(
        other
    )
    assert _same(table_series(tmp_path), _built())
    assert len(list(tmp_path.iterdir())) == 2


def test_a_cache_folder_that_is_a_file_costs_only_the_build(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert _same(table_series(blocker / "cache"), _built())


def test_the_cache_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "phone-enrich"
