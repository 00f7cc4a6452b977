"""Benchmark the normalize-only pipeline against bare polars on a narrow and a wide file.

    python bench/bench_normalize.py [--rows 3000000] [--repeat 5] [--rss-rows 1000000,10000000]
                                    [--output-format parquet|csv] [--only narrow|wide]
                                    [--before CHECKOUT]

Each measurement is a fresh subprocess: wall time with ``time.perf_counter`` around it, CPU
time (user + system) and peak RSS from ``os.wait4``'s rusage of that one child. Inputs are
cached under ``bench/.data`` (``--regenerate`` remakes them):

  wide:   ``python -m pipeline sample --rows N`` (13 columns, ~115 bytes a row);
  narrow: 4 columns cut from it: ``id`` (lead_id), ``phone`` (the sample's messy phones),
          ``date`` (its consent dates), ``notes`` (its notes, mostly empty), ~35 bytes a row.

The package's bytecode is written first (``compileall``), as an install would have it.
Three programs per file, in alternating rounds (the order rotates every round, so drift
in a noisy machine hits all alike); medians of the rounds:
  raw:   ``pl.scan_csv(P, infer_schema=False).sink_parquet(OUT)`` (``sink_csv`` for csv);
  floor: the same scan and sink, plus the columns our run adds, each from a trivial
         expression: one regex (the phone's digits), a trace-id-like string from the row
         index, constants for the rest. What writing those columns costs, with no thinking;
  ours:  ``python -m pipeline run CONFIG`` with no providers (normalize-only), fresh state;
  before (with ``--before DIR``): the same run with the code of another checkout, e.g.
         ``git worktree add /tmp/main main``: before/after figures from the same rounds.

Targets (PASS/FAIL; exit status 1 if any fails):
  narrow ours/raw <= --max-ratio (3.0); narrow ours/floor <= --max-floor-ratio (1.4);
  wide ours/raw <= --max-wide-ratio (2.5);
  peak RSS of ours < --max-rss-mb (600) at --rows and at every --rss-rows size (wide file);
  peak RSS flat in the input size: largest / smallest over --rss-rows <= --max-flatness (1.5).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from children import (
    PYTHON,
    ROOT,
    BenchError,
    Measure,
    count_rows,
    run_measured,
    toml_str,
    verdict,
)

DATA = ROOT / "bench" / ".data"

_SINK = (
    "lf.sink_parquet(sys.argv[2]) if sys.argv[2].endswith('.parquet') else lf.sink_csv(sys.argv[2])"
)
RAW_CODE = f"import sys, polars as pl; lf = pl.scan_csv(sys.argv[1], infer_schema=False); {_SINK}"
# The columns a normalize-only run adds (pipeline.run.added_columns), from trivial expressions.
FLOOR_CODE = f"""
import sys, polars as pl
phone, date = pl.col(sys.argv[3]), pl.col(sys.argv[4])
digits = phone.str.replace_all("[^0-9]+", "")
row = pl.col("__row") + 10**12  # zero-padded to 12 digits once its leading 1 is sliced off
lf = (
    pl.scan_csv(sys.argv[1], infer_schema=False)
    .with_row_index("__row", offset=1)
    .with_columns(
        pl.format("0123abcd-4567-8901-a234-{{}}", row.cast(pl.String).str.slice(1))
        .alias("row_trace_id"),
        digits.alias("phone_normalized"),
        (pl.lit("+1") + digits).alias("phone_e164"),
        pl.lit(True).alias("phone_valid"),
        pl.lit(None, dtype=pl.String).alias("phone_reject_reason"),
        pl.lit(None, dtype=pl.String).alias("phone_extension"),
        pl.lit("US").alias("phone_region"),
        pl.lit("input").alias("phone_source"),
        date.alias("consent_date_normalized"),
        pl.lit(0, dtype=pl.Int64).alias("credits_total"),
        pl.lit("unchecked").alias("contact_verdict"),
        pl.lit("").alias("contact_verdict_reasons"),
    )
    .drop("__row")
)
{_SINK}
"""


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    date_column: str
    rows: int


def compile_tree(tree: Path) -> None:
    """Write the bytecode of ``tree``'s package, as installing it does: with
    PYTHONDONTWRITEBYTECODE set (as on some machines) a source checkout would otherwise
    compile its ~80 modules again in every run (~0.25 s of CPU), which polars, an
    installed package, never does."""
    cmd = [PYTHON, "-m", "compileall", "-q", str(tree / "pipeline")]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


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


def narrow_file(rows: int, regenerate: bool) -> Path:
    """The 4-column file (id, phone, date, notes) cut from the cached sample of ``rows``."""
    path = DATA / f"narrow-{rows}.csv"
    if path.exists() and not regenerate:
        return path
    import polars as pl

    wide = sample_file(rows, regenerate)
    pl.scan_csv(wide, infer_schema=False).select(
        pl.col("lead_id").alias("id"),
        "phone",
        pl.col("consent_date").alias("date"),
        "notes",
    ).sink_csv(path)
    return path


def write_config(work: Path, name: str, case: Case, output_path: Path) -> Path:
    config = work / f"{name}.toml"
    config.write_text(
        "[input]\n"
        f"path = {toml_str(case.path)}\n"
        'phone_column = "phone"\n'
        f'consent_date_column = "{case.date_column}"\n'
        "[output]\n"
        f"path = {toml_str(output_path)}\n"
        "[run]\n"
        f"state_dir = {toml_str(work / f'{name}-state')}\n"
    )
    return config


def measure_ours(
    work: Path, case: Case, ext: str, tag: str, check: bool, tree: Path = ROOT
) -> Measure:
    output = work / f"{tag}.{ext}"
    config = write_config(work, tag, case, output)
    cmd = [PYTHON, "-m", "pipeline", "run", str(config), "--input", str(case.path)]
    m = run_measured([*cmd, "--output", str(output)], work / f"{tag}.log", cwd=tree)
    if check and (got := count_rows(output)) != case.rows:
        raise BenchError(f"{tag}: output has {got:,} rows, input {case.rows:,}")
    output.unlink(missing_ok=True)
    shutil.rmtree(work / f"{tag}-state", ignore_errors=True)
    return m


def measure_polars(work: Path, case: Case, ext: str, tag: str, code: str) -> Measure:
    output = work / f"{tag}.{ext}"
    cmd = [PYTHON, "-c", code, str(case.path), str(output), "phone", case.date_column]
    m = run_measured(cmd, work / f"{tag}.log")
    output.unlink(missing_ok=True)
    return m


def measure(
    work: Path, case: Case, ext: str, program: str, round_: int, before: Path | None
) -> Measure:
    tag = f"{case.name}-{program}-{round_}"
    if program == "ours":
        return measure_ours(work, case, ext, tag, check=round_ == 0)
    if program == "before":
        assert before is not None
        return measure_ours(work, case, ext, tag, check=round_ == 0, tree=before)
    return measure_polars(work, case, ext, tag, RAW_CODE if program == "raw" else FLOOR_CODE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--rss-rows",
        default="1000000,10000000",
        help="comma-separated input sizes for the memory-flatness runs ('' to skip)",
    )
    parser.add_argument("--output-format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--only", choices=("narrow", "wide"), help="time one file only")
    parser.add_argument(
        "--before",
        type=Path,
        help="another checkout of this repository (e.g. git worktree of main): its "
        "normalize-only run is timed in the same rounds, as 'before'",
    )
    parser.add_argument("--max-ratio", type=float, default=3.0, help="narrow ours/raw")
    parser.add_argument("--max-floor-ratio", type=float, default=1.4, help="narrow ours/floor")
    parser.add_argument("--max-wide-ratio", type=float, default=2.5, help="wide ours/raw")
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
    if args.before is not None:
        args.before = args.before.resolve()
        if not (args.before / "pipeline" / "__main__.py").is_file():
            parser.error(f"--before {args.before}: not a checkout of this repository")
    try:
        return _bench(args.rows, args.repeat, rss_rows, args.output_format, args)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2


def _bench(rows: int, repeat: int, rss_rows: list[int], ext: str, args: argparse.Namespace) -> int:
    cases: list[Case] = []
    if args.only != "wide":
        cases.append(Case("narrow", narrow_file(rows, args.regenerate), "date", rows))
    if args.only != "narrow":
        cases.append(Case("wide", sample_file(rows, args.regenerate), "consent_date", rows))
    inputs = {n: sample_file(n, args.regenerate) for n in rss_rows}
    print(f"\noutput: {ext}, repeat: {repeat}, python: {PYTHON}")
    for case in cases:
        size_mb = case.path.stat().st_size / 2**20
        print(f"{case.name}: {case.path.relative_to(ROOT)} ({rows:,} rows, {size_mb:,.0f} MB)")

    programs = ["raw", "floor", "ours"] + (["before"] if args.before else [])
    for tree in [ROOT] + ([args.before] if args.before else []):
        compile_tree(tree)
    times: dict[tuple[str, str], list[Measure]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-normalize-") as tmp:
        work = Path(tmp)
        for k in range(repeat):
            # Rotate the order every round: no program always runs first or after another.
            order = [(c, p) for c in cases for p in programs]
            order = order[k % len(order) :] + order[: k % len(order)]
            line = []
            for case, program in order:
                m = measure(work, case, ext, program, k, args.before)
                times.setdefault((case.name, program), []).append(m)
                line.append(f"{case.name} {program} {m.seconds:.2f}s/{m.cpu_seconds:.1f}cpu")
            print(f"  round {k + 1}/{repeat}: " + ", ".join(line), flush=True)
        flat: dict[int, Measure] = {}
        for n, path in inputs.items():
            flat[n] = measure_ours(
                work, Case(f"rss-{n}", path, "consent_date", n), ext, f"rss-{n}", True
            )
            print(
                f"  rss run {n:,} rows: {flat[n].seconds:.2f}s, {flat[n].peak_rss_mb:,.0f} MB",
                flush=True,
            )

    def median(case: str, program: str, cpu: bool = False) -> float:
        runs = times[(case, program)]
        return statistics.median(m.cpu_seconds if cpu else m.seconds for m in runs)

    print()
    print(f"{'':24}{'wall (median)':>14}{'cpu (median)':>14}{'peak RSS':>12}")
    for case in cases:
        for program in programs:
            peak = max(m.peak_rss_mb for m in times[(case.name, program)])
            print(
                f"{case.name + ' ' + program:24}{median(case.name, program):>13.2f}s"
                f"{median(case.name, program, cpu=True):>13.2f}s{peak:>9,.0f} MB"
            )
    print()
    ratios: dict[tuple[str, str], float] = {}
    for case in cases:
        pairs = [("ours", "raw"), ("ours", "floor"), ("floor", "raw")]
        if args.before:
            pairs += [("before", "raw"), ("before", "floor"), ("ours", "before")]
        for num, den in pairs:
            r = median(case.name, num) / median(case.name, den)
            rc = median(case.name, num, cpu=True) / median(case.name, den, cpu=True)
            ratios[(case.name, f"{num}/{den}")] = r
            print(f"{case.name + ' ' + num + '/' + den:24}{r:>14.2f}{rc:>14.2f}   (wall, cpu)")
    ours = [m for case in cases for m in times[(case.name, "ours")]]
    peak = max(m.peak_rss_mb for m in ours)
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
    ok = True
    targets = (
        ("narrow", "ours/raw", args.max_ratio),
        ("narrow", "ours/floor", args.max_floor_ratio),
        ("wide", "ours/raw", args.max_wide_ratio),
    )
    for case_name, ratio, limit in targets:
        if (case_name, ratio) in ratios:
            value = ratios[(case_name, ratio)]
            ok &= verdict(value <= limit, f"time: {case_name} {ratio} {value:.2f} <= {limit:g}")
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
