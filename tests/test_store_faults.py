"""What the state folder tells a user after faults: a killed run is ``interrupted``, a
damaged ledger is refused untouched (exit 2, one line), and a closed pipe is no
traceback."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from enrich_helpers import EMULATOR_KEY, KEY_ENV, write_leads

from pipeline.cli import EXIT_BROKEN_PIPE
from pipeline.emulators.server import Emulator
from pipeline.emulators.state import ProviderKnobs
from pipeline.errors import EXIT_OK, EXIT_STOPPED, EXIT_USAGE
from pipeline.store.sqlite import LEDGER_FILE

from conftest import CliResult

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator({"tcpa_authority": ProviderKnobs(latency_ms=0, rate_limit=None)}) as em:
        monkeypatch.setenv(KEY_ENV, EMULATOR_KEY)
        yield em


def _phones(count: int) -> list[tuple[str, str]]:
    return [(f"{212 + i % 5}{480 + i % 7}{i:04d}"[:10], "2019-06-01") for i in range(count)]


def _config(
    write_config: Callable[..., Path], tmp_path: Path, emulator: Emulator, rows: int = 40,
    **tcpa: object,
) -> Path:  # fmt: skip
    source = write_leads(tmp_path / "in.csv", _phones(rows))
    settings = {"base_url": emulator.base_url("tcpa_authority"), "batch_size": 10,
                "max_concurrency": 2, "requests_per_minute": 60_000, **tcpa}  # fmt: skip
    return write_config(
        input={"path": str(source), "phone_column": "phone", "id_column": "id",
               "consent_date_column": "consent_date"},
        output={"path": str(tmp_path / "out.csv")},
        **{"providers.tcpa_authority": settings},
    )  # fmt: skip


def _cli_process(
    *args: str | Path, env_extra: dict[str, str] | None = None, **popen: object
) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    process: subprocess.Popen[str] = subprocess.Popen(
        [sys.executable, "-m", "pipeline", *map(str, args)], env=env, text=True,
        **popen,  # type: ignore[call-overload]
    )  # fmt: skip
    return process


# -- status: a run killed with -9 is interrupted, not running ---------------------------


def test_status_shows_a_run_killed_with_kill_9_as_interrupted(
    cli: Callable[..., CliResult],
    write_config: Callable[..., Path],
    tmp_path: Path,
    emulator: Emulator,
) -> None:
    emulator.set_knobs("tcpa_authority", latency_ms=300)  # 40 requests: ~6 s of run
    config = _config(write_config, tmp_path, emulator, rows=400, max_concurrency=1)
    proc = _cli_process("run", config, "--quiet", stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:  # until its run is on record and has bought something
            status = cli("status", config)
            charged = re.search(r"charged ([\d,]+) credits", status.out)
            if charged and int(charged.group(1).replace(",", "")) > 0:
                break
            assert proc.poll() is None and time.monotonic() < deadline, status.out
            time.sleep(0.05)
        first = status.out.splitlines()[0]
        assert " running (session 1)" in first
        assert "interrupted" not in status.out
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    after = cli("status", config)
    assert after.code == 0
    lines = after.out.splitlines()
    run_id = first.split()[0]
    assert lines[0].startswith(f"{run_id}  interrupted (session 1)")
    assert "  interrupted: its process ended without finishing it (killed or crashed); " \
        "the same command resumes it" in lines  # fmt: skip
    assert "running" not in after.out
    assert cli("status", config, "--run", run_id).out.splitlines()[0] == lines[0]

    emulator.set_knobs("tcpa_authority", latency_ms=0)
    assert cli("run", config, "--quiet").code == EXIT_OK  # the same command resumes it
    resumed = cli("status", config).out.splitlines()[0]
    assert resumed.startswith(f"{run_id}  finished (session 2, exit 0)")


# -- a reader that leaves early: no traceback ---------------------------------------------


def _closed_pipe() -> int:
    """The write end of a pipe whose reader has already gone (`| head` that exited)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    return write_end


@pytest.mark.parametrize(
    ("command", "code"),
    [("run", EXIT_STOPPED), ("status", EXIT_BROKEN_PIPE), ("estimate", EXIT_BROKEN_PIPE)],
)
def test_output_into_a_closed_pipe_is_quiet(
    cli: Callable[..., CliResult],
    write_config: Callable[..., Path],
    tmp_path: Path,
    emulator: Emulator,
    command: str,
    code: int,
) -> None:
    config = _config(write_config, tmp_path, emulator)
    assert cli("run", config, "--max-credits", "10").code == EXIT_STOPPED
    extra = ["--max-credits", "20"] if command == "run" else []
    write_end = _closed_pipe()
    try:
        # Unbuffered (as in many containers): the first line already meets the closed pipe.
        proc = _cli_process(command, config, *extra, stdout=write_end, stderr=subprocess.PIPE,
                            env_extra={"PYTHONUNBUFFERED": "1"})  # fmt: skip
        _, err = proc.communicate(timeout=120)
    finally:
        os.close(write_end)
    assert err == ""  # was: a BrokenPipeError traceback
    # A run's own exit code (cron acts on it); a listing cut short: what a shell reports
    # for any command whose reader went away (128 + SIGPIPE).
    assert proc.returncode == code
    if command == "run":
        assert emulator.state("tcpa_authority")["totals"]["credits"] == 20


def test_status_piped_into_head_prints_its_lines_and_no_traceback(
    cli: Callable[..., CliResult],
    write_config: Callable[..., Path],
    tmp_path: Path,
    emulator: Emulator,
) -> None:
    config = _config(write_config, tmp_path, emulator)
    assert cli("run", config, "--quiet").code == EXIT_OK
    for _ in range(40):  # enough lines that head leaves before status is done writing
        assert cli("run", config, "--quiet", "--force").code == EXIT_OK
    shell = subprocess.run(
        f"{sys.executable} -m pipeline status {config} | head -3; exit ${{PIPESTATUS[0]}}",
        shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert shell.stderr == ""
    assert len(shell.stdout.splitlines()) == 3
    assert shell.returncode in (EXIT_OK, 141)


# -- a damaged ledger: one line, exit 2, every byte left as it was -----------------------


def _files(state: Path) -> dict[str, str]:
    """The ledger's files and a digest of their bytes."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(state.glob(LEDGER_FILE + "*"))
    }


def _wal_left_behind(state: Path) -> None:
    """A process that committed to the ledger and died before checkpointing: the WAL
    (and its index) stay beside the file, as after a kill -9."""
    code = (
        "import os, sys; from pathlib import Path; from pipeline.store.sqlite import SqliteStore\n"
        "ledger = SqliteStore(Path(sys.argv[1]))\n"
        'ledger.conn.execute("UPDATE runs SET updated_at = updated_at + 1")\n'
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(state)], check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert (state / (LEDGER_FILE + "-wal")).stat().st_size > 0


def _refused(result: CliResult, ledger: Path, what: str) -> None:
    assert result.code == EXIT_USAGE, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err  # one line, no traceback
    assert lines[0].startswith(f"phone-enrich: error: {ledger}: {what}. Nothing was changed: ")
    assert "restore it" in lines[0] and f"move {LEDGER_FILE}* out of" in lines[0]


@pytest.mark.parametrize("damage", ["zero_bytes", "junk"])
def test_a_zero_byte_or_junk_ledger_is_refused_and_left_as_it_is(
    cli: Callable[..., CliResult],
    write_config: Callable[..., Path],
    tmp_path: Path,
    emulator: Emulator,
    damage: str,
) -> None:
    config = _config(write_config, tmp_path, emulator)
    assert cli("run", config, "--quiet").code == EXIT_OK
    charged = emulator.state("tcpa_authority")["totals"]["credits"]
    state = tmp_path / "state"
    _wal_left_behind(state)
    ledger = state / LEDGER_FILE
    if damage == "zero_bytes":  # a failed copy, a full disk, `> ledger.sqlite`
        ledger.write_bytes(b"")
        what = "the ledger is empty (0 bytes): the answers it held are gone"
    else:
        ledger.write_bytes(b"lead_id,phone\n1,2125550123\n" * 300)
        what = "not a ledger: the file is not an SQLite database"
    before = _files(state)
    assert set(before) == {LEDGER_FILE, LEDGER_FILE + "-wal", LEDGER_FILE + "-shm"}
    output = (tmp_path / "out.csv").read_bytes()

    for args in (("run", config, "--force"), ("retry", config), ("status", config)):
        _refused(cli(*args), ledger, what)  # was: silently a new, empty ledger (exit 0)
        assert _files(state) == before
    assert emulator.state("tcpa_authority")["totals"]["credits"] == charged  # nothing bought
    assert (tmp_path / "out.csv").read_bytes() == output


def test_a_wal_without_its_ledger_is_refused(
    cli: Callable[..., CliResult],
    write_config: Callable[..., Path],
    tmp_path: Path,
    emulator: Emulator,
) -> None:
    config = _config(write_config, tmp_path, emulator)
    assert cli("run", config, "--quiet").code == EXIT_OK
    state = tmp_path / "state"
    _wal_left_behind(state)
    (state / LEDGER_FILE).unlink()
    before = _files(state)
    _refused(
        cli("run", config, "--force"), state / LEDGER_FILE,
        f"the ledger file is missing but {LEDGER_FILE}-wal is there",
    )  # fmt: skip
    assert _files(state) == before


def test_damage_inside_a_ledger_is_one_line_and_exit_2(
    cli: Callable[..., CliResult],
    write_config: Callable[..., Path],
    tmp_path: Path,
    emulator: Emulator,
) -> None:
    config = _config(write_config, tmp_path, emulator)
    assert cli("run", config, "--quiet").code == EXIT_OK
    ledger = tmp_path / "state" / LEDGER_FILE
    page = 4096
    size = ledger.stat().st_size
    with open(ledger, "r+b") as fh:  # the header page stays; every table page is garbage
        fh.seek(page)
        fh.write(b"\xab" * (size - page))
    for args in (("run", config, "--force"), ("status", config)):
        result = cli(*args)  # was: a traceback and exit 70
        assert result.code == EXIT_USAGE, result.err
        [line] = result.err.strip().splitlines()
        assert line.startswith(f"phone-enrich: error: {ledger}: the ledger is damaged (")
        assert "Nothing was changed: restore it" in line
