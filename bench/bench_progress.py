"""Benchmark the progress figures: how honest the ETA is on a steady run.

    python bench/bench_progress.py [--rows 3000] [--latency-ms 300] [--rpm 6000]

A whole ``run`` of distinct phones against the emulator (served in-process) with a
fixed latency and the lane at ``--rpm`` (CheckThatPhone: one number a request), progress
frames every 0.5 s. For every frame from 20% of the lookups on (and more than 2 s before
the end), the ETA's error against the time that was really left, as a ratio of that
time: the median and the worst (target: worst <= 0.25, the issue's "within 25%"). Also
the first frame with an ETA, in seconds from the start (target <= 60), and the last
frame's share (target 1.0).

Exit status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.config import parse_config  # noqa: E402
from pipeline.emulators.server import Emulator  # noqa: E402
from pipeline.emulators.state import ProviderKnobs  # noqa: E402
from pipeline.progress import Progress  # noqa: E402
from pipeline.run import run  # noqa: E402

KEY = "emulator-key"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--latency-ms", type=float, default=300.0)
    parser.add_argument("--rpm", type=int, default=6000)
    args = parser.parse_args()
    os.environ["BENCH_PROGRESS_KEY"] = KEY
    frames: list[tuple[float, Progress]] = []
    with tempfile.TemporaryDirectory() as tmp, Emulator(
        {"checkthatphone": ProviderKnobs(latency_ms=args.latency_ms, rate_limit=None)}
    ) as emulator:  # fmt: skip
        source = Path(tmp) / "in.csv"
        lines = [f"{i},212{480 + i // 10_000}{i % 10_000:04d}" for i in range(args.rows)]
        source.write_text("id,phone\n" + "\n".join(lines) + "\n")
        config = parse_config(
            {
                "input": {"path": str(source), "phone_column": "phone", "id_column": "id"},
                "output": {"path": str(Path(tmp) / "out.csv")},
                "run": {"state_dir": str(Path(tmp) / "state")},
                "providers": {
                    "checkthatphone": {
                        "base_url": emulator.base_url("checkthatphone"),
                        "api_key_env": "BENCH_PROGRESS_KEY",
                        "requests_per_minute": args.rpm,
                    }
                },
            },
            "bench config",
        )
        started = time.monotonic()
        summary = run(
            config,
            on_progress=lambda p: frames.append((time.monotonic(), p)),
            progress_every_s=0.5,
        )
        ended = time.monotonic()
    errors = []
    first_eta = None
    for at, frame in frames:
        if frame.eta_s is not None and first_eta is None:
            first_eta = at - started
        share = frame.share or 0.0
        left = ended - at
        if frame.eta_s is not None and share >= 0.2 and left > 2.0:
            errors.append(abs(frame.eta_s - left) / left)
    last_share = frames[-1][1].share if frames else None
    worst = max(errors) if errors else float("inf")
    median = statistics.median(errors) if errors else float("inf")
    print(
        f"run: {args.rows:,} lookups at {args.rpm:,}/min, {args.latency_ms:g} ms latency: "
        f"{ended - started:.1f} s, exit {summary.exit_code}, {len(frames)} frames"
    )
    checks = [
        ("ETA error from 20% on, worst (ratio of the time left)", worst, worst <= 0.25),
        ("ETA error from 20% on, median", median, True),
        ("first ETA, seconds after the start", first_eta or float("inf"), (first_eta or 1e9) <= 60),
        ("last frame's share", last_share or 0.0, last_share == 1.0),
    ]
    failed = False
    for name, value, ok in checks:
        print(f"  {name}: {value:.3f}  {'PASS' if ok else 'FAIL'}")
        failed |= not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
