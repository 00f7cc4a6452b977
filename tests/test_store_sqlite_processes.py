"""The SQLite store across processes: a commit outlives a kill -9 (it is in the WAL), and
processes that create a new store file at the same moment all open it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from store_contract.helpers import scope

from pipeline.store.records import BestAnswer, RequestTotals
from pipeline.store.sqlite import LEDGER_FILE, SqliteStore

REPO = Path(__file__).resolve().parents[1]


def test_a_commit_survives_the_process_being_killed(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import os, sys, time
        from pathlib import Path
        from pipeline.store.records import Answer, Columns, NewRun, RequestLog, Response, Session
        from pipeline.store.sqlite import SqliteStore

        store = SqliteStore(Path(sys.argv[1]))
        store.start(NewRun("r1", "job", None, "in.csv", "out.csv", None))
        session = Session("r1", 1, {"p": "v1"})
        store.log_sent(session, "req-1", "p", 1, 2)
        store.log_sent(session, "req-2", "p", 1, 1)
        store.commit(session, [Response(
            RequestLog("req-1", "p", 1, 2, time.time(), 200, "answered", 3, 1.0, None),
            Columns.of([Answer("2125550001", "hit", {"a": 1}, None, 3, 0),
                        Answer("2125550002", "no_match", None, None, 0, 5)]),
        )])
        os.kill(os.getpid(), 9)
        """
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=REPO,
                          capture_output=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == -9, done.stderr.decode()
    # never checkpointed: the answers live only in the WAL
    assert (tmp_path / (LEDGER_FILE + "-wal")).stat().st_size > 0

    with SqliteStore(tmp_path) as ledger:
        run = ledger.resumable_run("job")
        assert run is not None and (run.run_id, run.state) == ("r1", "running")
        rows = sorted(ledger.best(scope("r1", provider="p"), ["2125550001", "2125550002"]))
        assert [row[:9] for row in rows] == [
            BestAnswer("2125550001", "r1", 1, "hit", '{"a":1}', None, 3, "req-1", 0, 0.0)[:9],
            BestAnswer("2125550002", "r1", 1, "no_match", None, None, 0, "req-1", 5, 0.0)[:9],
        ]
        assert ledger.request_totals("r1", "p") == RequestTotals(
            requests=2, retries=0, http_429=0, numbers=2, credits=3, unanswered=1,
            unanswered_numbers=1,
        )  # fmt: skip


def test_processes_creating_a_new_ledger_at_once_all_open_it(tmp_path: Path) -> None:
    # A new ledger is built under a temporary name and linked into place whole, so no
    # opener meets the zero-byte file SQLite starts from (one is refused as damage).
    code = (
        "import sys, time; from pathlib import Path; from pipeline.store import open_store\n"
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
        "store = open_store(Path(sys.argv[1]))\n"
        "print(len(store.runs()))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for attempt in range(3):
        state = tmp_path / str(attempt)
        start_at = str(time.time() + 1.5)
        command = [sys.executable, "-c", code, str(state), start_at]
        procs = [
            subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
            )
            for _ in range(8)
        ]
        outputs = [proc.communicate(timeout=60) for proc in procs]
        results = [(p.returncode, *out) for p, out in zip(procs, outputs, strict=True)]
        assert results == [(0, "0\n", "")] * 8
        names = {p.name for p in state.iterdir()}  # (-wal/-shm: if the last two closed at once)
        assert LEDGER_FILE in names and not [n for n in names if n.endswith(".tmp")]
