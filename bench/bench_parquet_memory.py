"""Peak memory of a normalize-only run on Parquet input: long files and a 5,000-column file.

    python bench/bench_parquet_memory.py [--rows 3000000,10000000] [--wide-mb 250,500]
                                         [--wide-csv] [--before DIR]
                                         [--output-format parquet|csv]

Each measurement is a fresh subprocess, ``python -m pipeline run CONFIG --input P --output
OUT`` with a config that has no providers: wall time with ``time.perf_counter`` around it,
peak RSS from ``os.wait4``'s rusage of that one child. ``--before DIR`` runs the same
command with the code in DIR (a checkout or ``git archive`` of another commit) in turn
with this one, so before and after are measured in the same run.

Inputs, cached under ``bench/.data/`` (``--regenerate`` remakes them):
  long: ``python -m pipeline sample --rows N --out sample-N.parquet`` (13 columns, row
        groups of 250,000 rows);
  wide: ``wide-<MB>mb.parquet``, made with pyarrow: a phone column and 4,999 short columns
        (strings from 500 values and integers, alternating), row groups of 1,000 rows
        (about 33 MB each before compression), rows added until the file has about MB;
        with ``--wide-csv`` also the same rows as CSV (``wide-<MB>mb.csv``), to see the
        Parquet writer alone (CSV input is read in 4 MB blocks by its own reader).

Targets (each printed as PASS/FAIL; the exit status is 1 if any fails), for this code:
  peak RSS < --max-rss-mb (600) at every size;
  flat: largest / smallest peak RSS <= --max-flatness (1.5) among the long files, and among
  the wide ones.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / ".data"
PYTHON = sys.executable
WIDE_COLUMNS = 5_000
WIDE_GROUP_ROWS = 1_000


@dataclass(frozen=True)
class Measure:
    seconds: float
    peak_rss_mb: float


class BenchError(Exception):
    pass


def run_measured(cmd: list[str], log: Path, cwd: Path = ROOT) -> Measure:
    """Run ``cmd`` as a child; its wall time and peak RSS. Raises if it exits non-zero."""
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, tell Popen
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise BenchError(f"exit {proc.returncode}: {' '.join(cmd)}\n{tail}")
    # Linux reports ru_maxrss in KiB (macOS in bytes).
    rss_bytes = usage.ru_maxrss if sys.platform == "darwin" else usage.ru_maxrss * 1024
    return Measure(seconds, rss_bytes / 2**20)


def long_file(rows: int, regenerate: bool) -> Path:
    """The cached sample file with ``rows`` rows, made by ``python -m pipeline sample``."""
    path = DATA / f"sample-{rows}.parquet"
    if path.exists() and not regenerate:
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    print(f"generating {path.relative_to(ROOT)} ({rows:,} rows) ...", flush=True)
    cmd = [PYTHON, "-m", "pipeline", "sample", "--rows", str(rows), "--out", str(path)]
    m = run_measured(cmd, DATA / "sample.log")
    print(f"  {m.seconds:.1f}s, {path.stat().st_size / 2**20:,.0f} MB", flush=True)
    return path


def wide_file(megabytes: int, regenerate: bool) -> Path:
    """The cached 5,000-column file of about ``megabytes`` MB (made in a child process)."""
    path = DATA / f"wide-{megabytes}mb.parquet"
    if path.exists() and not regenerate:
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    print(f"generating {path.relative_to(ROOT)} (~{megabytes} MB) ...", flush=True)
    code = "import sys, bench_parquet_memory as b; b.make_wide(sys.argv[1], int(sys.argv[2]))"
    cmd = [PYTHON, "-c", code, str(path), str(megabytes)]
    m = run_measured(cmd, DATA / "wide.log", cwd=ROOT / "bench")
    print(f"  {m.seconds:.1f}s, {path.stat().st_size / 2**20:,.0f} MB", flush=True)
    return path


def wide_csv(parquet: Path, regenerate: bool) -> Path:
    """The wide file's rows as CSV, cached beside it."""
    path = parquet.with_suffix(".csv")
    if path.exists() and not regenerate:
        return path
    print(f"generating {path.relative_to(ROOT)} ...", flush=True)
    code = "import sys, polars as pl; pl.scan_parquet(sys.argv[1]).sink_csv(sys.argv[2])"
    m = run_measured([PYTHON, "-c", code, str(parquet), str(path)], DATA / "wide.log")
    print(f"  {m.seconds:.1f}s, {path.stat().st_size / 2**20:,.0f} MB", flush=True)
    return path


def make_wide(out: str, megabytes: int) -> None:
    """Write the wide file: row groups of WIDE_GROUP_ROWS rows until it reaches the size."""
    import polars as pl
    import pyarrow.parquet as pq

    target = megabytes * 2**20
    tmp = Path(out).with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        writer = None
        start = 0
        while writer is None or fh.tell() < target:
            index = pl.int_range(start, start + WIDE_GROUP_ROWS, dtype=pl.UInt64)
            number = (index % 10_000).cast(pl.String).str.zfill(4)
            columns = [pl.format("(212) 555-{}", number).alias("phone")]
            for i in range(1, WIDE_COLUMNS):
                value = index.hash(seed=i)
                if i % 2:
                    text = pl.format("v{}", (value % 500).cast(pl.String))
                    columns.append(text.alias(f"c{i:04d}"))
                else:
                    columns.append((value % 1_000_000).cast(pl.Int64).alias(f"c{i:04d}"))
            table = pl.select(columns).to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(fh, table.schema)
            writer.write_table(table)
            start += WIDE_GROUP_ROWS
        writer.close()
    tmp.replace(out)


def write_config(work: Path, name: str, input_path: Path, output_path: Path) -> Path:
    config = work / f"{name}.toml"
    config.write_text(
        "[input]\n"
        f"path = {_toml_str(input_path)}\n"
        'phone_column = "phone"\n'
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


def input_rows(path: Path) -> int:
    import polars as pl
    import pyarrow.parquet as pq

    if path.suffix == ".csv":
        return int(pl.scan_csv(path, infer_schema=False).select(pl.len()).collect().item())
    return int(pq.read_metadata(path).num_rows)


def measure(code: Path, work: Path, input_path: Path, ext: str, tag: str) -> Measure:
    """One normalize-only run of the code in ``code`` on ``input_path``; checks the rows."""
    output = work / f"{tag}.{ext}"
    config = write_config(work, tag, input_path, output)
    cmd = [PYTHON, "-m", "pipeline", "run", str(config), "--input", str(input_path)]
    m = run_measured([*cmd, "--output", str(output)], work / f"{tag}.log", cwd=code)
    if (got := output_rows(output)) != (want := input_rows(input_path)):
        raise BenchError(f"{tag}: output has {got:,} rows, input {want:,}")
    output.unlink(missing_ok=True)
    shutil.rmtree(work / f"{tag}-state", ignore_errors=True)
    return m


def verdict(ok: bool, what: str) -> bool:
    print(f"{'PASS' if ok else 'FAIL'}  {what}")
    return ok


def _sizes(text: str, parser: argparse.ArgumentParser, flag: str) -> list[int]:
    try:
        sizes = sorted({int(n) for n in text.replace("_", "").split(",") if n.strip()})
    except ValueError:
        parser.error(f"{flag} {text!r}: expected comma-separated numbers")
    if any(n <= 0 for n in sizes):
        parser.error(f"{flag}: sizes must be positive")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="3000000,10000000", help="long files ('' to skip)")
    parser.add_argument("--wide-mb", default="250,500", help="wide files ('' to skip)")
    parser.add_argument("--wide-csv", action="store_true", help="also the wide rows as CSV")
    parser.add_argument("--before", type=Path, help="a checkout of the code to compare with")
    parser.add_argument("--output-format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--max-rss-mb", type=float, default=600.0)
    parser.add_argument("--max-flatness", type=float, default=1.5)
    parser.add_argument("--regenerate", action="store_true", help="remake cached inputs")
    args = parser.parse_args(argv)
    rows = _sizes(args.rows, parser, "--rows")
    wide = _sizes(args.wide_mb, parser, "--wide-mb")
    if args.before is not None and not (args.before / "pipeline" / "__init__.py").is_file():
        parser.error(f"--before {args.before}: no pipeline package there")
    try:
        return _bench(rows, wide, args)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2


def _bench(rows: list[int], wide: list[int], args: argparse.Namespace) -> int:
    inputs = [(f"long {n:,} rows", long_file(n, args.regenerate)) for n in rows]
    inputs += [(f"wide {mb} MB", wide_file(mb, args.regenerate)) for mb in wide]
    if args.wide_csv:
        csvs = [
            (f"wide-csv {mb} MB", wide_csv(wide_file(mb, False), args.regenerate)) for mb in wide
        ]
        inputs += csvs
    ext = args.output_format
    codes = [("after", ROOT)] + ([("before", args.before.resolve())] if args.before else [])
    print(f"\noutput: {ext}, python: {PYTHON}", flush=True)
    results: dict[tuple[str, str], Measure] = {}
    with tempfile.TemporaryDirectory(prefix="bench-parquet-") as tmp:
        for label, path in inputs:
            for version, code in codes:  # in turn, so drift in the machine hits both alike
                m = measure(code, Path(tmp), path, ext, f"{version}-{path.stem}")
                results[(label, version)] = m
                print(
                    f"  {label:<22} {version:<6} {m.seconds:7.1f}s  {m.peak_rss_mb:7,.0f} MB",
                    flush=True,
                )
    print()
    print(f"{'input':<24}{'after':>18}{'before':>20}{'time after/before':>20}")
    for label, _ in inputs:
        after = results[(label, "after")]
        line = f"{label:<24}{after.seconds:>8.1f}s {after.peak_rss_mb:>6,.0f} MB"
        if (before := results.get((label, "before"))) is not None:
            ratio = after.seconds / before.seconds
            line += f"{before.seconds:>10.1f}s {before.peak_rss_mb:>6,.0f} MB{ratio:>15.2f}"
        print(line)
    print()
    ok = True
    for label, _ in inputs:
        peak = results[(label, "after")].peak_rss_mb
        ok &= verdict(
            peak < args.max_rss_mb, f"{label}: peak RSS {peak:,.0f} MB < {args.max_rss_mb:g}"
        )
    for kind in ("long", "wide"):
        peaks = [
            results[(label, "after")].peak_rss_mb for label, _ in inputs if label.startswith(kind)
        ]
        if len(peaks) >= 2:
            flat = max(peaks) / min(peaks)
            ok &= verdict(
                flat <= args.max_flatness, f"{kind}: flatness {flat:.2f} <= {args.max_flatness:g}"
            )
    print(f"{'PASS' if ok else 'FAIL'}  overall")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
