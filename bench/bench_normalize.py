"""Benchmark the normalize-only pipeline against a bare polars CSV -> Parquet copy.

    python bench/bench_normalize.py [--rows 3000000] [--repeat 3] [--rss-rows 1000000,10000000]
                                    [--output-format parquet|csv]

Each measurement is a fresh subprocess: wall time with ``time.perf_counter`` around it, peak
RSS from ``os.wait4``'s rusage of that one child. Inputs are made by ``python -m pipeline
sample`` and cached under ``bench/.data/sample-<rows>.csv`` (``--regenerate`` remakes them).

Measured:
  (a) baseline: ``pl.scan_csv(P, infer_schema=False).sink_parquet(OUT)`` (``sink_csv`` with
      ``--output-format csv``), i.e. just reading and writing the same file;
  (b) ours: ``python -m pipeline run CONFIG --input P --output OUT`` with a config that has no
      providers (normalize-only), a fresh state dir for every run.

Targets (each printed as PASS/FAIL; the exit status is 1 if any fails):
  ours / baseline median wall time <= --max-ratio (3.0);
  peak RSS of ours < --max-rss-mb (600) at --rows and at every --rss-rows size;
  peak RSS flat in the input size: largest / smallest over --rss-rows <= --max-flatness (1.5).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / ".data"
PYTHON = sys.executable

BASELINE_CODE = (
    "import sys, polars as pl; "
    "lf = pl.scan_csv(sys.argv[1], infer_schema=False); "
    "lf.sink_parquet(sys.argv[2]) if sys.argv[2].endswith('.parquet') else lf.sink_csv(sys.argv[2])"
)


@dataclass(frozen=True)
class Measure:
    seconds: float
    peak_rss_mb: float


class BenchError(Exception):
    pass


def run_measured(cmd: list[str], log: Path) -> Measure:
    """Run ``cmd`` as a child; its wall time and peak RSS. Raises if it exits non-zero."""
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, tell Popen
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise BenchError(f"exit {proc.returncode}: {' '.join(cmd)}\n{tail}")
    # Linux reports ru_maxrss in KiB (macOS in bytes).
    rss_bytes = usage.ru_maxrss if sys.platform == "darwin" else usage.ru_maxrss * 1024
    return Measure(seconds, rss_bytes / 2**20)


def sample_file(rows: int, regenerate: bool) -> Path:
    """The cached messy CSV with ``rows`` rows, generated with ``python -m pipeline sample``."""
    path = DATA / f"sample-{rows}.csv"
    if path.exists() and not regenerate:
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    print(f"generating {path.relative_to(ROOT)} ({rows:,} rows) ...", flush=True)
    cmd = [PYTHON, "-m", "pipeline", "sample", "--rows", str(rows), "--out", str(path)]
    m = run_measured(cmd, DATA / "sample.log")
    size_mb = path.stat().st_size / 2**20
    print(
        f"  {m.seconds:.1f}s, {rows / m.seconds:,.0f} rows/s, {size_mb:,.0f} MB, "
        f"peak RSS {m.peak_rss_mb:,.0f} MB",
        flush=True,
    )
    return path


def write_config(work: Path, name: str, input_path: Path, output_path: Path) -> Path:
    config = work / f"{name}.toml"
    config.write_text(
        "[input]\n"
        f"path = {_toml_str(input_path)}\n"
        'phone_column = "phone"\n'
        'consent_date_column = "consent_date"\n'
        "[output]\n"
        f"path = {_toml_str(output_path)}\n"
        "[run]\n"
        f"state_dir = {_toml_str(work / f'{name}-state')}\n"
    )
    return config


def _toml_str(path: Path) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def output_rows(path: Path) -> int:
    import polars as pl

    if path.suffix == ".parquet":
        return int(pl.scan_parquet(path).select(pl.len()).collect().item())
    return int(pl.scan_csv(path, infer_schema=False).select(pl.len()).collect().item())


def measure_ours(
    work: Path, input_path: Path, ext: str, tag: str, check_rows: int | None
) -> Measure:
    output = work / f"{tag}.{ext}"
    config = write_config(work, tag, input_path, output)
    cmd = [PYTHON, "-m", "pipeline", "run", str(config), "--input", str(input_path)]
    m = run_measured([*cmd, "--output", str(output)], work / f"{tag}.log")
    if check_rows is not None and (got := output_rows(output)) != check_rows:
        raise BenchError(f"{tag}: output has {got:,} rows, input {check_rows:,}")
    output.unlink(missing_ok=True)
    shutil.rmtree(work / f"{tag}-state", ignore_errors=True)
    return m


def measure_baseline(work: Path, input_path: Path, ext: str, tag: str) -> Measure:
    output = work / f"{tag}.{ext}"
    m = run_measured(
        [PYTHON, "-c", BASELINE_CODE, str(input_path), str(output)], work / f"{tag}.log"
    )
    output.unlink(missing_ok=True)
    return m


def verdict(ok: bool, what: str) -> bool:
    print(f"{'PASS' if ok else 'FAIL'}  {what}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--rss-rows",
        default="1000000,10000000",
        help="comma-separated input sizes for the memory-flatness runs ('' to skip)",
    )
    parser.add_argument("--output-format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--max-ratio", type=float, default=3.0)
    parser.add_argument("--max-rss-mb", type=float, default=600.0)
    parser.add_argument("--max-flatness", type=float, default=1.5)
    parser.add_argument("--regenerate", action="store_true", help="remake cached inputs")
    args = parser.parse_args(argv)
    if args.rows <= 0 or args.repeat <= 0:
        parser.error("--rows and --repeat must be positive")
    try:
        rss_rows = sorted({int(n) for n in args.rss_rows.replace("_", "").split(",") if n.strip()})
    except ValueError:
        parser.error(f"--rss-rows {args.rss_rows!r}: expected comma-separated row counts")
    if any(n <= 0 for n in rss_rows):
        parser.error("--rss-rows sizes must be positive")
    ext = args.output_format

    try:
        return _bench(args.rows, args.repeat, rss_rows, ext, args)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2


def _bench(rows: int, repeat: int, rss_rows: list[int], ext: str, args: argparse.Namespace) -> int:
    input_path = sample_file(rows, args.regenerate)
    inputs = {n: sample_file(n, args.regenerate) for n in rss_rows}
    size_mb = input_path.stat().st_size / 2**20
    print(
        f"\ninput: {input_path.relative_to(ROOT)} ({rows:,} rows, {size_mb:,.0f} MB), "
        f"output: {ext}, repeat: {repeat}, python: {PYTHON}",
        flush=True,
    )

    with tempfile.TemporaryDirectory(prefix="bench-normalize-") as tmp:
        work = Path(tmp)
        base: list[Measure] = []
        ours: list[Measure] = []
        for k in range(repeat):  # interleaved, so drift in the machine hits both alike
            base.append(measure_baseline(work, input_path, ext, f"baseline-{k}"))
            ours.append(measure_ours(work, input_path, ext, f"ours-{k}", rows if k == 0 else None))
            print(
                f"  run {k + 1}/{repeat}: baseline {base[-1].seconds:.2f}s "
                f"({base[-1].peak_rss_mb:,.0f} MB), ours {ours[-1].seconds:.2f}s "
                f"({ours[-1].peak_rss_mb:,.0f} MB)",
                flush=True,
            )
        flat: dict[int, Measure] = {}
        for n, path in inputs.items():
            flat[n] = measure_ours(work, path, ext, f"rss-{n}", n)
            print(
                f"  rss run {n:,} rows: {flat[n].seconds:.2f}s, {flat[n].peak_rss_mb:,.0f} MB",
                flush=True,
            )

    base_s = statistics.median(m.seconds for m in base)
    ours_s = statistics.median(m.seconds for m in ours)
    ratio = ours_s / base_s
    peak = max(m.peak_rss_mb for m in ours)
    print()
    print(f"rows                  {rows:>14,}")
    base_rss = max(m.peak_rss_mb for m in base)
    print(f"baseline (median)     {base_s:>13.2f}s   peak RSS {base_rss:,.0f} MB")
    print(f"ours (median)         {ours_s:>13.2f}s")
    print(f"ratio ours/baseline   {ratio:>14.2f}   (target <= {args.max_ratio:g})")
    print(f"throughput            {rows / ours_s:>14,.0f} rows/s")
    print(f"peak RSS (ours)       {peak:>11,.0f} MB   (target < {args.max_rss_mb:g} MB)")
    for n, m in flat.items():
        print(f"peak RSS @ {n:>11,} {m.peak_rss_mb:>11,.0f} MB   ({n / m.seconds:,.0f} rows/s)")
    flatness = None
    if len(flat) >= 2:
        flatness = flat[max(flat)].peak_rss_mb / flat[min(flat)].peak_rss_mb
        print(
            f"RSS flatness          {flatness:>14.2f}   "
            f"({max(flat):,} vs {min(flat):,} rows; target <= {args.max_flatness:g})"
        )
    print()
    ok = verdict(ratio <= args.max_ratio, f"time: ours/baseline {ratio:.2f} <= {args.max_ratio:g}")
    ok &= verdict(
        peak < args.max_rss_mb,
        f"memory: peak RSS {peak:,.0f} MB < {args.max_rss_mb:g} MB at {rows:,} rows",
    )
    for n, m in flat.items():
        ok &= verdict(
            m.peak_rss_mb < args.max_rss_mb,
            f"memory: peak RSS {m.peak_rss_mb:,.0f} MB < {args.max_rss_mb:g} MB at {n:,} rows",
        )
    if flatness is not None:
        ok &= verdict(
            flatness <= args.max_flatness,
            f"memory flatness: {flatness:.2f} <= {args.max_flatness:g}",
        )
    print(f"{'PASS' if ok else 'FAIL'}  overall")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
