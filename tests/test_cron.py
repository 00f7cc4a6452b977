"""Cron safety: one run per state folder (exit 75 for the second), no stale lock after
kill -9, and re-running a job that finished cleanly is a no-op (--force redoes it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pipeline.errors import EXIT_LOCKED
from pipeline.lock import state_lock

from conftest import CliResult

ROWS = "id,phone\n1,2125550123\n2,not a phone\n"


def _config(write_config: Callable[..., Path], tmp_path: Path) -> Path:
    source = tmp_path / "in.csv"
    source.write_text(ROWS)
    return write_config(
        input={"path": str(source), "phone_column": "phone"},
        output={"path": str(tmp_path / "out.csv")},
    )


def test_a_second_run_exits_75_at_once_while_the_lock_is_held(
    cli: Callable[..., CliResult], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = _config(write_config, tmp_path)
    with state_lock(tmp_path / "state"):
        result = cli("run", config)
    assert result.code == EXIT_LOCKED
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "another run holds the lock" in lines[0]
    assert f"pid {os.getpid()}" in lines[0]
    assert not (tmp_path / "out.csv").exists()
    assert cli("run", config).code == 0  # released with the block


def test_a_killed_run_leaves_no_stale_lock(
    cli: Callable[..., CliResult], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = _config(write_config, tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from pipeline.lock import state_lock\n"
         "with state_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(60)",
         str(tmp_path / "state")],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    assert cli("run", config).code == EXIT_LOCKED
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    holder.stdout.close()
    assert (tmp_path / "state" / "lock").exists()  # the file stays; the lock does not
    assert cli("run", config).code == 0


def test_rerunning_a_finished_job_is_a_no_op_unless_forced(
    cli: Callable[..., CliResult], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = _config(write_config, tmp_path)
    first = cli("run", config)
    assert first.code == 0
    output = tmp_path / "out.csv"
    written = output.stat().st_mtime_ns
    runs = sorted((tmp_path / "state" / "runs").iterdir())
    time.sleep(0.01)
    again = cli("run", config)
    assert again.code == 0 and "nothing to do" in again.out
    assert runs[0].name in again.out
    assert output.stat().st_mtime_ns == written
    assert sorted((tmp_path / "state" / "runs").iterdir()) == runs
    forced = cli("run", config, "--force")
    assert forced.code == 0 and "nothing to do" not in forced.out
    assert output.stat().st_mtime_ns != written
    assert len(list((tmp_path / "state" / "runs").iterdir())) == 2
    output.unlink()
    assert cli("run", config).code == 0 and output.exists()  # output gone: run again
