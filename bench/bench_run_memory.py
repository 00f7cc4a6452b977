"""Benchmark a whole run's peak memory: is a TCPA run flat in the file's size?

    python bench/bench_run_memory.py [--rows 1000000,3000000] [--data /tmp/phone-enrich-rss]

For each N: ``phone-enrich sample --rows N`` (generated once into ``--data`` and
reused), then two ``phone-enrich run`` processes on it, each with a fresh state
folder: the baseline (normalize only, no providers) and TCPA Authority alone against
``phone-enrich emulate --latency-ms 0 --rate-limit 0`` (its own process),
``requests_per_minute`` very high, ``batch_size = 1000``. Peak RSS is the run
process's own ``ru_maxrss`` (``os.wait4``), so neither this script nor the emulator
counts. Targets (issue 15): the TCPA run peaks under 600 MB at 3M rows, and is flat:
the largest N within 10% of the smallest.

Exit status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXE = Path(sys.executable).parent / "phone-enrich"
LIMIT_MB = 600.0
FLAT = 1.10
KEY_ENV = "BENCH_RSS_KEY"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sample(data: Path, rows: int) -> Path:
    path = data / f"sample_{rows}.csv"
    if not path.exists():
        partial = path.with_suffix(".partial.csv")
        subprocess.run(
            [str(EXE), "sample", "--rows", str(rows), "--out", str(partial)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        partial.rename(path)
    return path


def config_text(source: Path, work: Path, port: int | None) -> str:
    text = (
        f'[input]\npath = "{source}"\nphone_column = "phone"\nid_column = "lead_id"\n'
        f'consent_date_column = "consent_date"\n\n[output]\npath = "{work / "out.csv"}"\n\n'
        f'[run]\nstate_dir = "{work / "state"}"\n'
    )
    if port is not None:
        text += (
            f'\n[providers.tcpa_authority]\nbase_url = "http://127.0.0.1:{port}/tcpa_authority/v1.5"\n'
            f'api_key_env = "{KEY_ENV}"\nrequests_per_minute = 10000000\nbatch_size = 1000\n'
        )
    return text


def measure(source: Path, port: int | None) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of one ``run`` process, with a fresh state folder."""
    with tempfile.TemporaryDirectory(prefix="bench-rss-") as tmp:
        work = Path(tmp)
        config = work / "run.toml"
        config.write_text(config_text(source, work, port))
        env = dict(os.environ, **{KEY_ENV: "emulator-key"})
        started = time.monotonic()
        child = subprocess.Popen(
            [str(EXE), "run", str(config), "--quiet"], env=env, stdout=subprocess.DEVNULL
        )
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.monotonic() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"run on {source} exited {os.waitstatus_to_exitcode(status)}")
        return usage.ru_maxrss / 1024, wall  # ru_maxrss is in KiB on Linux


def start_emulator(port: int) -> subprocess.Popen[bytes]:
    emulator = subprocess.Popen(
        [str(EXE), "emulate", "--latency-ms", "0", "--rate-limit", "0", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            return emulator
        except OSError as exc:
            if getattr(exc, "code", None) is not None:  # an HTTP error: it answers
                return emulator
            time.sleep(0.1)
    emulator.terminate()
    raise SystemExit("the emulator did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,3000000", help="comma-separated row counts")
    parser.add_argument("--data", default=str(Path(tempfile.gettempdir()) / "phone-enrich-rss"))
    args = parser.parse_args()
    sizes = [int(n) for n in args.rows.split(",")]
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    emulator = start_emulator(port)
    results: list[tuple[int, float, float, float, float]] = []
    try:
        print(f"{'rows':>11} {'base MB':>8} {'run MB':>8} {'ratio':>6} {'base s':>7} {'run s':>7}")
        for rows in sizes:
            source = sample(data, rows)
            base_mb, base_s = measure(source, None)
            run_mb, run_s = measure(source, port)
            results.append((rows, base_mb, run_mb, base_s, run_s))
            print(
                f"{rows:>11,} {base_mb:>8.0f} {run_mb:>8.0f} {run_mb / base_mb:>6.2f} "
                f"{base_s:>7.1f} {run_s:>7.1f}",
                flush=True,
            )
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)
    failed = False
    for rows, _, run_mb, _, _ in results:
        if rows >= 3_000_000:
            ok = run_mb < LIMIT_MB
            failed |= not ok
            verdict = "PASS" if ok else "FAIL"
            print(f"  TCPA run at {rows:,} rows: {run_mb:.0f} MB < {LIMIT_MB:.0f}  {verdict}")
    if len(results) > 1:
        growth = results[-1][2] / results[0][2]
        ok = growth <= FLAT
        failed |= not ok
        print(
            f"  flat: {results[-1][0]:,} rows / {results[0][0]:,} rows = {growth:.2f} "
            f"(<= {FLAT:.2f})  {'PASS' if ok else 'FAIL'}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
