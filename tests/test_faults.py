"""Faults of real overnight runs, through the real CLI in a subprocess against the emulator.

Each test breaks a run the way cron meets it (SIGTERM, Ctrl-C once and twice, kill -9,
a full disk under state_dir, an input overwritten mid-run), resumes it, and checks:
- what the emulator charged after each fault is at most what was in flight;
- a graceful stop loses no paid answer (the ledger holds every credit charged);
- the resumed output equals a clean run's, and the credits charged minus the unique
  keys is at most the numbers in the requests in flight at each hard fault.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from enrich_helpers import EMULATOR_KEY, KEY_ENV, read_output, write_leads

from pipeline.emulators.server import Emulator
from pipeline.emulators.state import ProviderKnobs

BATCH = 50
CONCURRENCY = 2
IN_FLIGHT = BATCH * CONCURRENCY
"""The most numbers a lane can have sent but not recorded at any moment."""
LATENCY_MS = 120
DATE = "2020-01-15"


def _phones(count: int, area: int = 212) -> list[str]:
    """``count`` distinct valid numbers (exchanges 200-999, never 555)."""
    phones = []
    for i in range(count):
        exchange = 200 + (i // 10_000) % 800
        exchange = 556 if exchange == 555 else exchange
        phones.append(f"{area}{exchange}{i % 10_000:04d}")
    return phones


def _leads(phones: list[str]) -> list[tuple[str, str]]:
    rows = [(phone, DATE) for phone in phones]
    rows.extend(rows[::7])  # duplicates further down: bought once
    rows.extend([("not a phone", DATE), ("", DATE)])
    return rows


def _config(tmp_path: Path, emulator: Emulator, source: Path, state: Path, out: Path) -> Path:
    path = tmp_path / f"{out.stem}.toml"
    path.write_text(
        f"""
[input]
path = "{source}"
phone_column = "phone"
id_column = "id"
consent_date_column = "consent_date"
[output]
path = "{out}"
[run]
state_dir = "{state}"
[providers.tcpa_authority]
base_url = "{emulator.base_url("tcpa_authority")}"
requests_per_minute = 60000
batch_size = {BATCH}
max_concurrency = {CONCURRENCY}
timeout_s = 10
"""
    )
    return path


@dataclass
class Ended:
    code: int
    stderr: str
    seconds_after_signal: float
    charged_at_signal: int
    charged_after: int


def _charged(emulator: Emulator) -> int:
    return int(emulator.state("tcpa_authority")["totals"]["credits"])


def _requests(emulator: Emulator) -> int:
    return int(emulator.state("tcpa_authority")["totals"]["requests"])


def _start(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", str(config), "--quiet"],
        env={**os.environ, KEY_ENV: EMULATOR_KEY},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _finish(child: subprocess.Popen[bytes], timeout: float = 60) -> tuple[int, str]:
    try:
        code = child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:  # a hung run fails the test, and does not outlive it
        child.kill()
        child.wait()
        raise
    assert child.stderr is not None
    stderr = child.stderr.read().decode()
    child.stderr.close()
    return code, stderr


def _interrupt(
    emulator: Emulator,
    config: Path,
    after: int,
    signals: list[signal.Signals],
    pause_s: float = 0.0,
    apart_s: float = 1.0,
    latency_s: float = LATENCY_MS / 1000,
) -> Ended:
    """Start a run, wait until ``after`` more requests were answered (and ``pause_s``
    more, for the next ones to be on the wire), send ``signals`` (``apart_s`` apart)
    and wait for the process to end."""
    target = _requests(emulator) + after
    child = _start(config)
    deadline = time.monotonic() + 60
    while _requests(emulator) < target:
        assert child.poll() is None, "the run ended before the fault"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    time.sleep(pause_s)
    charged = _charged(emulator)
    sent = time.monotonic()
    for number, sig in enumerate(signals):
        if number:
            time.sleep(apart_s)
        child.send_signal(sig)
    code, stderr = _finish(child)
    ended = time.monotonic() - sent
    time.sleep(latency_s + 0.5)  # anything still on the wire lands in the emulator
    return Ended(code, stderr, ended, charged, _charged(emulator))


def _ledger_credits(state: Path) -> int:
    with sqlite3.connect(state / "ledger.sqlite") as conn:
        (credits,) = conn.execute("SELECT coalesce(sum(credits), 0) FROM lookups").fetchone()
    return int(credits)


def _run_states(state: Path) -> list[tuple[str, int | None]]:
    with sqlite3.connect(state / "ledger.sqlite") as conn:
        rows = conn.execute("SELECT state, exit_code FROM runs ORDER BY started_at").fetchall()
    return [(str(s), c) for s, c in rows]


def _same_output(out: Path, ref: Path, *, cached: bool = False) -> None:
    """The same rows and answers; the same credits too, unless answers bought by another
    run are ``cached`` here (they cost this run nothing)."""
    got, want = read_output(out), read_output(ref)
    ignore = [c for c in got.columns if c.endswith("_request_id")]
    if cached:
        ignore += ["tcpa_credits", "credits_total"]
    assert got.drop(ignore).equals(want.drop(ignore))


def _clean_reference(tmp_path: Path, source: Path) -> Path:
    """The same job, never interrupted, against its own emulator and state."""
    ref = tmp_path / "ref.csv"
    with Emulator() as emulator:
        config = _config(tmp_path, emulator, source, tmp_path / "ref-state", ref)
        code, stderr = _finish(_start(config))
    assert code == 0, stderr
    return ref


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_signals_at_several_points_of_one_run_then_the_resume_equals_a_clean_run(
    tmp_path: Path,
) -> None:
    phones = _phones(3_000)
    source = write_leads(tmp_path / "in.csv", _leads(phones))
    state, out = tmp_path / "state", tmp_path / "out.csv"
    knobs = ProviderKnobs(latency_ms=LATENCY_MS, rate_limit=None)
    hard_faults = 0
    with Emulator({"tcpa_authority": knobs}) as emulator:
        config = _config(tmp_path, emulator, source, state, out)
        for signals in (
            [signal.SIGTERM],
            [signal.SIGINT],
            [signal.SIGINT, signal.SIGINT],
            [signal.SIGTERM, signal.SIGTERM],
            [signal.SIGKILL],
        ):
            twice = signals == [signal.SIGINT, signal.SIGINT]
            # For the second signal to land while the first still waits on answers in
            # flight, those answers must be slow.
            slow = len(signals) == 2
            emulator.set_knobs("tcpa_authority", latency_ms=3_000 if slow else LATENCY_MS)
            # (the answers a hard stop left on the wire are charged within latency_s)
            # A SIGTERM twice 20 ms apart (coreutils `timeout` signals the child, then its
            # group) is one stop: graceful, nothing lost.
            apart = 1.0 if twice else 0.02
            latency_s = 3.0 if slow else LATENCY_MS / 1000
            # Paid for and never recorded so far (by the hard stops before this one).
            lost = _charged(emulator) - (_ledger_credits(state) if state.exists() else 0)
            ended = _interrupt(emulator, config, 2 if slow else 6, signals, 1.0 if slow else 0,
                               apart, latency_s)  # fmt: skip
            assert not out.exists()  # a stopped run leaves no output
            # Nothing new is sent after the signal: at most what was in flight is charged.
            assert ended.charged_after - ended.charged_at_signal <= IN_FLIGHT
            if signals == [signal.SIGKILL]:
                assert ended.code == -signal.SIGKILL
                hard_faults += 1
                continue
            assert ended.code == 3, ended.stderr
            assert ended.seconds_after_signal < 10
            line = _one_line(ended.stderr)
            if twice:  # the second Ctrl-C ends at once, without waiting for the answers
                assert "SIGINT again: stopped at once" in line
                assert ended.seconds_after_signal < 1.5
                hard_faults += 1
            else:
                name = signals[0].name
                assert line.startswith(f"phone-enrich: stopped by {name}: "), line
                assert "resumes run" in line
                # Every answer paid for is in the ledger: the resume pays for none again.
                assert ended.charged_after - _ledger_credits(state) == lost
        assert _run_states(state)[-1][0] == "running"  # kill -9 left it so; the next resumes

        code, stderr = _finish(_start(config))
        assert code == 0, stderr
        charged = _charged(emulator)
    assert charged - len(phones) <= IN_FLIGHT * hard_faults
    assert _ledger_credits(state) == len(phones)
    _same_output(out, _clean_reference(tmp_path, source))
    assert int(read_output(out)["credits_total"].cast(pl.Int64).sum()) == len(phones)


@contextmanager
def _small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` at ``path`` (the tests run as root), unmounted afterwards."""
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the disk-full test (root needed): {mounted.stderr}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_disk_under_state_dir_stops_buying_releases_the_lock_and_resumes(
    tmp_path: Path,
) -> None:
    phones = _phones(4_000)
    source = write_leads(tmp_path / "in.csv", _leads(phones))
    out = tmp_path / "out.csv"
    knobs = ProviderKnobs(latency_ms=20, rate_limit=None)
    with (
        _small_disk(tmp_path / "disk", "400k") as disk,
        Emulator({"tcpa_authority": knobs}) as emulator,
    ):
        state = disk / "state"
        config = _config(tmp_path, emulator, source, state, out)
        started = time.monotonic()
        code, stderr = _finish(_start(config))
        assert code == 3, stderr
        assert time.monotonic() - started < 30  # it ended; it did not hang on the lock
        line = _one_line(stderr)
        assert f"{state / 'ledger.sqlite'}: no space left on device" in line
        assert not out.exists()
        charged_at_fault = _charged(emulator)
        assert 0 < charged_at_fault < len(phones)  # stopped buying part way
        assert charged_at_fault - _ledger_credits(state) <= IN_FLIGHT

        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        code, stderr = _finish(_start(config))  # not 75: the lock was released
        assert code == 0, stderr
        charged = _charged(emulator)
    assert charged - len(phones) <= IN_FLIGHT
    _same_output(out, _clean_reference(tmp_path, source))


def test_an_input_overwritten_during_the_run_gives_no_output_and_no_finished_run(
    tmp_path: Path,
) -> None:
    old_phones = _phones(3_000)
    source = write_leads(tmp_path / "in.csv", _leads(old_phones))
    new_phones = old_phones[:1_000] + _phones(1_000, area=646)
    state, out = tmp_path / "state", tmp_path / "out.csv"
    knobs = ProviderKnobs(latency_ms=LATENCY_MS, rate_limit=None)
    with Emulator({"tcpa_authority": knobs}) as emulator:
        config = _config(tmp_path, emulator, source, state, out)
        target = _requests(emulator) + 5
        child = _start(config)
        while _requests(emulator) < target:
            assert child.poll() is None
            time.sleep(0.002)
        write_leads(source, _leads(new_phones))  # in place: same inode, new content
        code, stderr = _finish(child)
        assert code == 2, stderr
        assert _charged(emulator) < len(old_phones) // 2  # it stopped buying for the old file
        line = _one_line(stderr)
        assert f"{source}: the input file changed size" in line
        assert not out.exists()
        assert [s for s, _ in _run_states(state)] == ["failed"]
        assert _ledger_credits(state) == _charged(emulator)  # nothing paid was dropped

        code, stderr = _finish(_start(config))
        assert code == 0, stderr
        charged = _charged(emulator)
    assert charged <= len(set(old_phones) | set(new_phones))
    assert _ledger_credits(state) == charged
    _same_output(out, _clean_reference(tmp_path, source), cached=True)


@pytest.mark.parametrize("size", ["16k", "48k", "80k", "120k"])
def test_a_disk_full_from_the_start_gives_one_line_and_leaves_a_usable_state_dir(
    tmp_path: Path, size: str
) -> None:
    """Full while the ledger is created, or the run's row written, or the first answers:
    one line, never a traceback, never a ledger that is refused as damaged afterwards."""
    phones = _phones(1_000)
    source = write_leads(tmp_path / "in.csv", _leads(phones))
    out = tmp_path / "out.csv"
    with _small_disk(tmp_path / "disk", size) as disk, Emulator() as emulator:
        state = disk / "state"
        config = _config(tmp_path, emulator, source, state, out)
        code, stderr = _finish(_start(config))
        assert code in (2, 3), stderr
        line = _one_line(stderr)
        assert str(state / "ledger.sqlite") in line
        assert "no space left on device" in line or "disk is full" in line
        assert _charged(emulator) <= IN_FLIGHT

        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        code, stderr = _finish(_start(config))
        assert code == 0, stderr
        assert _charged(emulator) - len(phones) <= IN_FLIGHT


def test_a_disk_already_full_gives_one_line_not_a_traceback(tmp_path: Path) -> None:
    """Full before the run starts, even the lock file's holder line cannot be written."""
    source = write_leads(tmp_path / "in.csv", _leads(_phones(100)))
    with _small_disk(tmp_path / "disk", "1m") as disk, Emulator() as emulator:
        state = disk / "state"
        state.mkdir()
        # Fill it to the last byte.
        with open(disk / "junk", "wb") as junk, contextlib.suppress(OSError):
            while True:
                junk.write(b"\0" * 65536)
                junk.flush()
        config = _config(tmp_path, emulator, source, state, tmp_path / "out.csv")
        code, stderr = _finish(_start(config))
        assert code in (2, 3), stderr
        line = _one_line(stderr)
        assert "no space left on device" in line.lower(), line
        assert _charged(emulator) == 0


def test_a_report_that_cannot_be_written_is_an_error_and_the_next_run_writes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run ended well but its report.json could not be written (a full disk, injected
    here): not exit 0 with no report and a run marked finished for ever after."""
    from pipeline import run as run_module
    from pipeline.config import load_config
    from pipeline.errors import StoreError

    source = write_leads(tmp_path / "in.csv", _leads(_phones(200)))
    with Emulator() as emulator:
        config = load_config(
            _config(tmp_path, emulator, source, tmp_path / "state", tmp_path / "out.csv")
        )
        monkeypatch.setenv(KEY_ENV, EMULATOR_KEY)

        def full(run_dir: Path, report: object) -> Path:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(run_module, "write_report", full)
        with pytest.raises(StoreError) as failed:
            run_module.run(config)
        assert "No space left on device" in str(failed.value)
        assert "report.json" in str(failed.value)
        assert [s for s, _ in _run_states(tmp_path / "state")] == ["failed"]
        bought = _charged(emulator)

        monkeypatch.undo()
        monkeypatch.setenv(KEY_ENV, EMULATOR_KEY)
        again = run_module.run(config)
        assert again.exit_code == 0 and again.report is not None and again.report.exists()
        assert _charged(emulator) == bought  # nothing bought again
