"""Benchmark whether a provider run slows down as its ledger grows.

    python bench/bench_ledger_growth.py [fifths|prefilled|all] [--rows 3000000]
        [--prefill-rows 1000000] [--answers 10000000] [--rounds 3] [--data DIR]
        [--before CHECKOUT] [--port 18795]

Every run is ``python -m pipeline run`` (a fresh process; with ``--before``, the code of
another checkout too, in the same rounds) of TCPA Authority alone on the sample file,
against ``phone-enrich emulate --latency-ms 0 --rate-limit 0`` (its own process, reset
before each run), ``requests_per_minute`` very high, ``batch_size = 1000``, defaults
otherwise. From the emulator's log of answered requests (arrival time, numbers) and the
run process's CPU time (``/proc``, sampled every 0.25 s on the same monotonic clock):

fifths
    Runs of ``--rows`` rows (3M) on an empty ledger, ``--rounds`` times (with
    ``--before``, alternating which code goes first). The rows are cut into fifths,
    timed on the output (its size sampled beside the CPU; where each fifth of its rows
    ends, read from the finished file): for each, rows per second (wall) and CPU
    microseconds per row of the whole run. The first fifth starts once the output has
    its first rows and the last ends at the last answer, so each holds the buying and
    the writing of about a fifth's rows. The numbers bought are cut into fifths too
    (numbers per second, CPU per number, and the emulator's CPU per number, whose
    process shares the machine's two cores), for comparison: in a run the buying runs
    up to about two batches ahead of the output (150,000 numbers of the sample file
    are bought before its first row is written), so the first fifth of the numbers
    bought is bought while little is written yet, and looks cheaper than the rest.
    Target (issue 15): the median of the last fifth's rate of rows / the first's >=
    0.9. One run is not enough here: this 2-core virtual machine's speed drifts by
    +-20-30% over tens of seconds, and the first and the last fifth are half a minute
    apart.

prefilled
    A ledger pre-filled with ``--answers`` answers (10M) of the same provider and
    parameters, their keys spread over the whole key space (so the run's own keys land
    among them) and never asked by the run (a consent date of 1999). It is made once per
    code and kept in ``--data``: a small seed run makes the file (that code's schema) and
    a first answer, which SQL then copies ``--answers`` times, with new keys, in key
    order (one such ledger per schema version). Then runs of ``--prefill-rows`` rows
    (1M) on a copy of it and on an empty ledger, alternating, ``--rounds`` times:
    whole-run numbers per second (from the first answer to the last) and CPU per
    number, medians. Target: full >= 0.9 x empty.

Also printed: peak RSS of the run (``wait4``), the ledger's size at the end, wall and CPU
of the whole process, and the machine's load average. Exit status 1 if a target is missed
(by the code under test; ``--before`` is for comparison only).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
KEY_ENV = "BENCH_LEDGER_KEY"
KEY = "emulator-key"
MB = 1 << 20
TARGET = 0.9
SEED_ROWS = 3_000
SYNTHETIC_DATE = "19990101"
"""No consent date of the sample (2015-2025): synthetic answers never answer a run's keys."""
OUTPUT = "out.csv"


@dataclass
class Run:
    """One ``run`` process, as measured."""

    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    ledger_mb: float
    answered: list[tuple[float, int]]
    """(arrival on the monotonic clock, numbers) of each answered request, in order."""
    cpu: list[tuple[float, float]]
    """(monotonic time, CPU seconds of the run process so far)."""
    emulator_cpu: list[tuple[float, float]]
    """(monotonic time, CPU seconds of the emulator's process since the run began): it
    shares the machine's two cores, so a fifth the emulator made dearer shows here."""
    written: list[tuple[float, int]]
    """(monotonic time, bytes of the output file so far)."""
    row_marks: list[int]
    """Bytes of the finished output up to the end of its header and of each fifth of its
    rows (six offsets)."""
    rows: int
    """Rows of the output."""

    @property
    def numbers(self) -> int:
        return sum(n for _, n in self.answered)

    def cpu_at(self, when: float) -> float:
        """The run's CPU seconds at ``when``, interpolated between samples."""
        return _between(self.cpu, when)

    def emulator_part(self, start: float, end: float) -> float:
        """The emulator's CPU microseconds per number over the same share as :meth:`part`."""
        t0, n0, t1, n1 = self._bounds(start, end)
        used = _between(self.emulator_cpu, t1) - _between(self.emulator_cpu, t0)
        return used / (n1 - n0) * 1e6

    def part(self, start: float, end: float) -> tuple[float, float]:
        """(numbers per second, CPU microseconds per number) over a share of the numbers
        bought: from the answer that crossed ``start`` x total to the one that crossed
        ``end`` x total (shares of 0..1)."""
        t0, n0, t1, n1 = self._bounds(start, end)
        numbers = n1 - n0
        cpu = self.cpu_at(t1) - self.cpu_at(t0)
        return numbers / (t1 - t0), cpu / numbers * 1e6

    def rows_part(self, fifth: int) -> tuple[float, float]:
        """(rows per second, CPU microseconds per row) of the whole run over a fifth of
        the rows (1-5), timed on the output: from the moment it held the rows before the
        fifth to the moment it held the fifth's last row. So the buying and the writing
        of about a fifth's rows fall inside each fifth: the first starts once the output
        has its first rows, after the buying ran ahead while nothing could be written
        yet. None goes past the last answer, after which the output writes the rows still
        trailing it (which need no buying): the last ends there, its rows those written
        by then."""
        rows_in_fifth = self.rows / 5
        low, high = self.row_marks[fifth - 1], self.row_marks[fifth]
        t0, t1 = self.written_at(low), self.written_at(high)
        last_answer = self.answered[-1][0]
        if t0 >= last_answer:
            raise SystemExit(
                f"fifth {fifth} of the rows was written after the last answer: the output "
                "trails the buying by more than a fifth, so its fifths are not the run's"
            )
        rows = rows_in_fifth
        if t1 > last_answer:
            t1 = last_answer
            rows = rows_in_fifth * (self.bytes_at(t1) - low) / (high - low)
        if not (rows > 0 and t1 > t0):
            raise SystemExit(f"fifth {fifth} of the rows could not be timed ({rows} rows)")
        return rows / (t1 - t0), (self.cpu_at(t1) - self.cpu_at(t0)) / rows * 1e6

    def written_at(self, size: int) -> float:
        """When the output first held ``size`` bytes, interpolated between samples."""
        return _between([(held, when) for when, held in self.written], size)

    def bytes_at(self, when: float) -> float:
        """The output's bytes at ``when``, interpolated between samples."""
        return _between(self.written, when)

    def lag(self) -> tuple[int, float]:
        """(numbers bought before the output held its first row, share of the rows the
        output wrote after the last answer): how far the buying runs ahead."""
        first_row = self.written_at(self.row_marks[0] + 1)
        ahead = sum(n for t, n in self.answered if t <= first_row)
        behind = self.row_marks[-1] - self.bytes_at(self.answered[-1][0])
        return ahead, behind / (self.row_marks[-1] - self.row_marks[0])

    def _bounds(self, start: float, end: float) -> tuple[float, int, float, int]:
        """(time, numbers so far) of the answers that crossed ``start`` and ``end``."""
        total = self.numbers
        bounds: list[tuple[float, int]] = []
        seen = 0
        for arrived, numbers in self.answered:
            seen += numbers
            bounds.append((arrived, seen))
        t0, n0 = next(((t, n) for t, n in bounds if n >= start * total), bounds[0])
        if start == 0:
            t0, n0 = bounds[0]
        t1, n1 = next((t, n) for t, n in bounds if n >= end * total)
        return t0, n0, t1, n1


def _between(samples: Sequence[tuple[float, float]], x: float) -> float:
    """y at ``x`` of samples (x, y) in order of x: linear between the two around it; the
    first y before the first x, the last after the last."""
    before = samples[0]
    for sample in samples:
        if sample[0] >= x:
            span = sample[0] - before[0]
            share = (x - before[0]) / span if span > 0 else 1.0
            return before[1] + (sample[1] - before[1]) * share
        before = sample
    return samples[-1][1]


# -- the emulator and the run ------------------------------------------------------


class EmulatorProcess:
    """``phone-enrich emulate`` at zero latency and no rate limit, in its own process."""

    def __init__(self, tree: Path, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "pipeline", "emulate", "--latency-ms", "0", "--rate-limit", "0",
             "--port", str(port)],
            cwd=tree, env=_env(tree), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(300):
            try:
                self._call("GET", "/_admin/state")
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        self.close()
        raise SystemExit("the emulator did not start")

    def _call(self, method: str, path: str) -> object:
        body = b"" if method == "POST" else None
        request = urllib.request.Request(self.url + path, method=method, data=body)
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read() or b"null")

    def reset(self) -> None:
        self._call("POST", "/_admin/reset")

    def answered(self) -> list[tuple[float, int]]:
        state = self._call("GET", "/_admin/state/tcpa_authority")
        assert isinstance(state, dict)
        return sorted(
            (float(e["arrived_mono"]), int(e["numbers"]))
            for e in state["requests"]
            if e["status"] == 200
        )

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def _env(tree: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(tree), **{KEY_ENV: KEY})


def config(work: Path, source: Path, state: Path, port: int) -> Path:
    path = work / f"{state.name}.toml"
    path.write_text(
        f'[input]\npath = "{source}"\nphone_column = "phone"\nid_column = "lead_id"\n'
        f'consent_date_column = "consent_date"\n\n[output]\npath = "{work / OUTPUT}"\n\n'
        f'[run]\nstate_dir = "{state}"\n\n[providers.tcpa_authority]\n'
        f'base_url = "http://127.0.0.1:{port}/tcpa_authority/v1.5"\napi_key_env = "{KEY_ENV}"\n'
        "requests_per_minute = 100000000\nbatch_size = 1000\n"
    )
    return path


def measure(tree: Path, emulator: EmulatorProcess, cfg: Path, state: Path) -> Run:
    """One ``run`` process of the code in ``tree``; its CPU and its output's size sampled
    while it runs."""
    output = cfg.parent / OUTPUT
    emulator.reset()
    started = time.monotonic()
    child = subprocess.Popen(
        [PYTHON, "-m", "pipeline", "run", str(cfg), "--quiet", "--force"],
        cwd=tree, env=_env(tree), stdout=subprocess.DEVNULL,
    )  # fmt: skip
    samples: list[tuple[float, float]] = [(started, 0.0)]
    written: list[tuple[float, int]] = [(started, 0)]
    done = threading.Event()
    emulator_base = _cpu_of(emulator.proc.pid) or 0.0
    emulator_samples: list[tuple[float, float]] = [(started, 0.0)]

    def sample() -> None:
        while not done.wait(0.25):
            now, used = time.monotonic(), _cpu_of(child.pid)
            if used is None:
                return
            samples.append((now, used))
            written.append((now, _output_bytes(output)))
            if (serving := _cpu_of(emulator.proc.pid)) is not None:
                emulator_samples.append((now, serving - emulator_base))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - started
    done.set()
    sampler.join()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"the run of {cfg} exited {code}")
    cpu = usage.ru_utime + usage.ru_stime
    samples.append((time.monotonic(), cpu))
    size = sum(p.stat().st_size for p in state.glob("ledger.sqlite*")) / MB
    answered = emulator.answered()
    written.append((time.monotonic(), output.stat().st_size))
    marks, rows = row_marks(output)
    return Run(
        wall, cpu, usage.ru_maxrss / 1024, size, answered, samples, emulator_samples,
        written, marks, rows,
    )  # fmt: skip


def _output_bytes(output: Path) -> int:
    """The output's bytes so far: a run writes it to a temporary file beside it, renamed
    at the end."""
    for _ in range(3):  # the temporary file may be renamed between the listing and stat
        try:
            partial = sum(p.stat().st_size for p in output.parent.glob(f".{output.name}.*.tmp"))
            return partial or (output.stat().st_size if output.exists() else 0)
        except FileNotFoundError:
            continue
    return 0


def row_marks(path: Path, parts: int = 5) -> tuple[list[int], int]:
    """(bytes up to the end of the header and of each ``parts``-th of the rows, rows) of
    a CSV file: two passes over its records."""
    rows = sum(1 for _ in _record_ends(path)) - 1
    if rows < parts:
        raise SystemExit(f"{path}: {rows} rows, fewer than {parts}")
    wanted = {round(rows * k / parts): k for k in range(parts + 1)}
    marks = [0] * (parts + 1)
    for index, at in enumerate(_record_ends(path)):  # index 0: the header
        if (k := wanted.get(index)) is not None:
            marks[k] = at
    return marks, rows


def _record_ends(path: Path, chunk: int = 1 << 23) -> Iterator[int]:
    """The byte offset after each record of a CSV file whose quoted fields may hold line
    breaks: a line break ends a record when the quotes before it are even (a quote
    inside a field is doubled). Written here: Python's csv module gives no offsets."""
    at, ended, odd = 0, 0, False
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            *lines, rest = block.split(b"\n")
            for line in lines:
                at += len(line) + 1
                if line.count(b'"') % 2:
                    odd = not odd
                if not odd:
                    ended = at
                    yield at
            at += len(rest)  # the start of a line the next block ends
            if rest.count(b'"') % 2:
                odd = not odd
    if at > ended:  # a last record without a line break
        yield at


def _cpu_of(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sample(tree: Path, data: Path, rows: int, seed: int = 7) -> Path:
    path = data / (f"sample_{rows}.csv" if seed == 7 else f"sample_{rows}_seed{seed}.csv")
    if not path.exists():
        partial = path.with_suffix(".partial.csv")
        subprocess.run(
            [PYTHON, "-m", "pipeline", "sample", "--rows", str(rows), "--out", str(partial),
             "--seed", str(seed)],
            cwd=tree, env=_env(tree), check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        partial.rename(path)
    return path


def copy_to_disk(source: Path, target: Path) -> None:
    """Copy a ledger and wait until the copy is on disk. A run's first checkpoint syncs
    its ledger file, and a file just copied still has its gigabytes in the page cache
    waiting to be written back: that sync would wait for all of them (the 3.7 GB
    pre-filled ledger: the run on it measured 0.69 x the empty one's rate at 1.09 x its
    CPU). A ledger a real run opens has long been written."""
    shutil.copyfile(source, target)
    fd = os.open(target, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


# -- the pre-filled ledger ----------------------------------------------------------


def prefilled(tree: Path, data: Path, emulator: EmulatorProcess, port: int, answers: int) -> Path:
    """The state folder of a ledger holding ``answers`` synthetic answers of the bench's
    provider and parameters, made by the code in ``tree`` (kept in ``data``)."""
    ask = "from pipeline.store.sqlite_schema import MIGRATIONS; print(len(MIGRATIONS))"
    version = subprocess.run(
        [PYTHON, "-c", ask], cwd=tree, env=_env(tree), capture_output=True, text=True, check=True
    ).stdout.strip()
    state = data / f"prefilled-{answers}-schema{version}-{port}"
    if (state / "done").exists():
        return state
    shutil.rmtree(state, ignore_errors=True)
    started = time.monotonic()
    seed_input = sample(tree, data, SEED_ROWS, seed=11)
    with tempfile.TemporaryDirectory(prefix="bench-growth-", dir=data) as tmp:
        measure(tree, emulator, config(Path(tmp), seed_input, state, port), state)
    shutil.rmtree(state / "runs", ignore_errors=True)
    fill(state / "ledger.sqlite", answers)
    (state / "done").write_text(f"{answers} answers\n")
    print(f"  prefilled ({tree}): {answers:,} answers in {time.monotonic() - started:.0f} s, "
          f"{(state / 'ledger.sqlite').stat().st_size / MB:,.0f} MB", flush=True)  # fmt: skip
    return state


def fill(ledger: Path, answers: int, chunk: int = 1_000_000) -> None:
    """Copy the seed run's first answer ``answers`` times with new keys, in key order,
    through whatever columns this schema has (a synthetic finished run owns them)."""
    conn = sqlite3.connect(ledger, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")  # appends need no journal of their own
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")
        conn.execute("BEGIN")
        run_cols = [row[1] for row in conn.execute("PRAGMA table_info(runs)")]
        exprs = ["'synthetic'" if c == "run_id" else c for c in run_cols]
        conn.execute(
            f"INSERT INTO runs ({', '.join(run_cols)}) SELECT {', '.join(exprs)} FROM runs LIMIT 1"
        )
        conn.execute("COMMIT")
        cols = [row[1] for row in conn.execute("PRAGMA table_info(lookups)")]
        step = 8_000_000_000 // answers
        made = {
            "key": f"printf('%010d:{SYNTHETIC_DATE}', 2000000000 + n.i * {step})",
            "run_id": "'synthetic'",
            "first_row": "n.i + 1",
            "request_id": "'synthetic-' || (n.i / 1000)",
        }
        exprs = [made.get(c, f"t.{c}") for c in cols]
        for start in range(0, answers, chunk):
            end = min(start + chunk, answers)
            conn.execute("BEGIN")
            conn.execute(
                f"WITH RECURSIVE n(i) AS (SELECT {start} UNION ALL SELECT i + 1 FROM n"
                f" WHERE i < {end - 1}) INSERT INTO lookups ({', '.join(cols)})"
                f" SELECT {', '.join(exprs)} FROM n,"
                " (SELECT * FROM lookups WHERE status = 'hit' AND run_id != 'synthetic'"
                "  LIMIT 1) AS t"
            )
            conn.execute("COMMIT")
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if "lookup_keys" in tables:  # schema 5: settled answers are found by its levels
            conn.execute(
                "INSERT INTO lookup_keys (scope, key, run_id, row) SELECT scope, key, run_id,"
                " rowid FROM lookups WHERE run_id = 'synthetic' ORDER BY scope, key, run_id"
            )
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


# -- the two measurements -----------------------------------------------------------


def bench_fifths(trees: dict[str, Path], data: Path, port: int, rows: int, rounds: int) -> bool:
    source = sample(ROOT, data, rows)
    print(f"fifths: {rows:,} rows, empty ledger, {rounds} rounds ({load()})", flush=True)
    ratios: dict[str, list[tuple[float, float]]] = {}
    for round_ in range(rounds):
        for name, tree in trees.items() if round_ % 2 == 0 else reversed(trees.items()):
            emulator = EmulatorProcess(tree, port)
            try:
                with tempfile.TemporaryDirectory(prefix="bench-growth-", dir=data) as tmp:
                    state = Path(tmp) / "state"
                    run = measure(tree, emulator, config(Path(tmp), source, state, port), state)
            finally:
                emulator.close()
            whole = [run.rows_part(fifth) for fifth in range(1, 6)]
            bought = [run.part(k / 5, (k + 1) / 5) for k in range(5)]
            ratio = (whole[-1][0] / whole[0][0], bought[-1][0] / bought[0][0])
            ratios.setdefault(name, []).append(ratio)
            ahead, behind = run.lag()
            print(f"  round {round_ + 1} {name}: {run.rows:,} rows, {run.numbers:,} numbers in "
                  f"{run.wall_s:.1f} s wall, {run.cpu_s:.1f} s CPU; RSS {run.peak_rss_mb:.0f} MB; "
                  f"ledger {run.ledger_mb:,.0f} MB ({load()}); bought before the first row "
                  f"out {ahead:,}, rows out after the last answer {behind:.1%}")  # fmt: skip
            for k, label in enumerate(("1st", "2nd", "3rd", "4th", "5th")):
                start, end = k / 5, (k + 1) / 5
                serving = run.emulator_part(start, end)
                print(f"    {label} fifth: whole run {whole[k][0]:>7,.0f} rows/s, "
                      f"{whole[k][1]:5.1f} us CPU a row | bought {bought[k][0]:>7,.0f} "
                      f"numbers/s, {bought[k][1]:5.1f} us CPU a number (emulator "
                      f"{serving:4.1f} us)")  # fmt: skip
            print(f"    last / first fifth: whole run (rows) {ratio[0]:.3f}, numbers bought "
                  f"{ratio[1]:.3f}", flush=True)  # fmt: skip
    ok = True
    for name, measured in ratios.items():
        median_whole = statistics.median(w for w, _ in measured)
        median_bought = statistics.median(b for _, b in measured)
        verdict = "PASS" if median_whole >= TARGET else "FAIL"
        print(f"  {name} medians of {len(measured)}: last / first fifth, whole run (rows) "
              f"{median_whole:.3f} (>= {TARGET}), numbers bought {median_bought:.3f}  "
              f"{verdict}")  # fmt: skip
        if name == "ours":
            ok &= median_whole >= TARGET
    return ok


def bench_prefilled(
    trees: dict[str, Path], data: Path, port: int, rows: int, answers: int, rounds: int
) -> bool:
    source = sample(ROOT, data, rows)
    fulls: dict[str, Path] = {}
    for name, tree in trees.items():
        emulator = EmulatorProcess(tree, port)
        try:
            fulls[name] = prefilled(tree, data, emulator, port, answers)
        finally:
            emulator.close()
    print(f"prefilled: {rows:,} rows, an empty ledger against one of {answers:,} answers, "
          f"{rounds} rounds ({load()})", flush=True)  # fmt: skip
    rates: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for round_ in range(rounds):
        for name, tree in trees.items():
            emulator = EmulatorProcess(tree, port)
            try:
                for kind in ("empty", "full") if round_ % 2 == 0 else ("full", "empty"):
                    with tempfile.TemporaryDirectory(prefix="bench-growth-", dir=data) as tmp:
                        state = Path(tmp) / "state"
                        if kind == "full":
                            state.mkdir()
                            copy_to_disk(fulls[name] / "ledger.sqlite", state / "ledger.sqlite")
                        run = measure(tree, emulator, config(Path(tmp), source, state, port), state)
                    rate, cpu = run.part(0.0, 1.0)
                    rates.setdefault((name, kind), []).append((rate, cpu))
                    print(f"  round {round_ + 1} {name:6} {kind:5}: {rate:>8,.0f} numbers/s, "
                          f"{cpu:6.1f} us CPU a number; {run.wall_s:.1f} s wall, {run.cpu_s:.1f} s "
                          f"CPU, peak RSS {run.peak_rss_mb:.0f} MB, ledger {run.ledger_mb:,.0f} MB "
                          f"({load()})", flush=True)  # fmt: skip
            finally:
                emulator.close()
    ok = True
    for name in trees:
        empty = [statistics.median(x) for x in zip(*rates[(name, "empty")], strict=True)]
        full = [statistics.median(x) for x in zip(*rates[(name, "full")], strict=True)]
        ratio = full[0] / empty[0]
        verdict = "PASS" if ratio >= TARGET else "FAIL"
        print(f"  {name} medians: empty {empty[0]:,.0f} numbers/s ({empty[1]:.1f} us CPU a "
              f"number), full {full[0]:,.0f} ({full[1]:.1f} us): rate full / empty {ratio:.3f} "
              f"(>= {TARGET}), CPU a number {full[1] / empty[1]:.3f}  {verdict}")  # fmt: skip
        if name == "ours":
            ok &= ratio >= TARGET
    return ok


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="?", default="all", choices=["fifths", "prefilled", "all"])
    parser.add_argument("--rows", type=int, default=3_000_000, help="rows of the fifths run")
    parser.add_argument("--prefill-rows", type=int, default=1_000_000, help="rows of each run")
    parser.add_argument("--answers", type=int, default=10_000_000, help="answers pre-filled")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / ".data" / "ledger-growth",
                        help="samples and pre-filled ledgers, kept between runs")  # fmt: skip
    parser.add_argument("--before", type=Path, help="another checkout, measured in the same rounds")
    parser.add_argument("--port", type=int, default=18795,
                        help="the emulator port (pre-filled ledgers are made for it)")  # fmt: skip
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    if not port_is_free(args.port):
        raise SystemExit(f"port {args.port} is taken: give another with --port")
    trees = {"ours": ROOT}
    if args.before is not None:
        trees["before"] = args.before.resolve()
    ok = True
    if args.which in ("fifths", "all"):
        ok &= bench_fifths(trees, args.data, args.port, args.rows, args.rounds)
    if args.which in ("prefilled", "all"):
        ok &= bench_prefilled(
            trees, args.data, args.port, args.prefill_rows, args.answers, args.rounds
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
