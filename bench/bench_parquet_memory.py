"""Peak memory of normalize-only runs on Parquet input, against raw polars in the same run.

    python bench/bench_parquet_memory.py [--rows 1000000,3000000,10000000]
                                         [--wide-mb 250,500] [--wide-layout groups,one]
                                         [--wide-outputs parquet,csv] [--before DIR]

Each measurement is a fresh subprocess: wall time with ``time.perf_counter`` around it,
peak RSS from ``os.wait4``'s rusage of that one child. For every case, in turn (the order
rotates from case to case, so drift in a shared machine hits all alike):

  ours:   ``python -m pipeline run CONFIG --input P --output OUT``, a config with no
          providers (normalize-only), fresh state;
  raw:    ``pl.scan_parquet(P).sink_parquet(OUT)`` (``sink_csv`` for CSV output): the
          baseline, reading and writing the file and nothing else;
  before: with ``--before DIR``, our run with the code in DIR (a checkout of another
          commit, e.g. ``git worktree add /tmp/main main``).

Inputs, cached under ``bench/.data/`` (``--regenerate`` remakes them):
  long: ``python -m pipeline sample --rows N --out sample-N.parquet`` (13 text columns,
        row groups of 250,000 rows), to Parquet;
  wide: ``wide-<MB>mb.parquet``, a phone column and 4,999 short columns (strings from
        500 values and integers, alternating), rows added until the file has about MB:
        layout ``groups`` in row groups of 1,000 rows (about 33 MB each before
        compression: a footer of 5,000 column chunks a group), layout ``one`` the same
        rows in one row group (what pyarrow and polars write by default for so few
        rows); each to Parquet and to CSV.

Targets (PASS/FAIL; the exit status is 1 if any fails), for our run:
  peak RSS < --max-rss-mb (600) in every case;
  flat: largest / smallest peak RSS <= --max-flatness (1.5) among the long files, and
  among the wide files of one layout and output.
"""

from __future__ import annotations

import argparse
import os
import shutil
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
WIDE_COLUMNS = 5_000
WIDE_GROUP_ROWS = 1_000


RAW_CODE = (
    "import sys, polars as pl; lf = pl.scan_parquet(sys.argv[1]); "
    "lf.sink_parquet(sys.argv[2]) if sys.argv[2].endswith('.parquet') else lf.sink_csv(sys.argv[2])"
)


@dataclass(frozen=True)
class Case:
    label: str
    kind: str  # "long" or "wide <layout> -> <output>": the group its flatness is checked in
    path: Path
    output: str  # "parquet" or "csv"


def _generated(path: Path, what: str, cmd: list[str], cwd: Path = ROOT) -> Path:
    DATA.mkdir(parents=True, exist_ok=True)
    print(f"generating {path.relative_to(ROOT)} ({what}) ...", flush=True)
    m = run_measured(cmd, DATA / "generate.log", cwd=cwd)
    print(f"  {m.seconds:.1f}s, {path.stat().st_size / 2**20:,.0f} MB", flush=True)
    return path


def long_file(rows: int, regenerate: bool) -> Path:
    """The cached sample file with ``rows`` rows, made by ``python -m pipeline sample``."""
    path = DATA / f"sample-{rows}.parquet"
    if path.exists() and not regenerate:
        return path
    cmd = [PYTHON, "-m", "pipeline", "sample", "--rows", str(rows), "--out", str(path)]
    return _generated(path, f"{rows:,} rows", cmd)


def wide_file(megabytes: int, layout: str, regenerate: bool) -> Path:
    """The cached 5,000-column file of about ``megabytes`` MB in ``layout``."""
    groups = DATA / f"wide-{megabytes}mb.parquet"
    if regenerate or not groups.exists():
        code = "import sys, bench_parquet_memory as b; b.make_wide(sys.argv[1], int(sys.argv[2]))"
        cmd = [PYTHON, "-c", code, str(groups), str(megabytes)]
        _generated(
            groups, f"~{megabytes} MB, groups of {WIDE_GROUP_ROWS:,} rows", cmd, ROOT / "bench"
        )
    if layout == "groups":
        return groups
    one = DATA / f"wide-{megabytes}mb-1group.parquet"
    if regenerate or not one.exists():
        code = "import sys, bench_parquet_memory as b; b.one_group(sys.argv[1], sys.argv[2])"
        cmd = [PYTHON, "-c", code, str(groups), str(one)]
        _generated(one, "the same rows in one row group", cmd, ROOT / "bench")
    return one


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


def one_group(source: str, out: str) -> None:
    """``source``'s rows in one row group (pyarrow's defaults otherwise)."""
    import pyarrow.parquet as pq

    table = pq.read_table(source)
    tmp = Path(out).with_suffix(".tmp")
    pq.write_table(table, tmp, row_group_size=table.num_rows)
    tmp.replace(out)


def write_config(work: Path, name: str, input_path: Path, output_path: Path) -> Path:
    config = work / f"{name}.toml"
    config.write_text(
        "[input]\n"
        f"path = {toml_str(input_path)}\n"
        'phone_column = "phone"\n'
        "[output]\n"
        f"path = {toml_str(output_path)}\n"
        "[run]\n"
        f"state_dir = {toml_str(work / f'{name}-state')}\n"
    )
    return config


def measure(program: str, code: Path | None, work: Path, case: Case) -> Measure:
    """One run of ``program`` (``raw`` or our run of the code in ``code``) on the case;
    checks that the output holds every input row."""
    tag = f"{program}-{case.path.stem}-{case.output}"
    output = work / f"{tag}.{case.output}"
    if code is None:
        cmd, cwd = [PYTHON, "-c", RAW_CODE, str(case.path), str(output)], ROOT
    else:
        config = write_config(work, tag, case.path, output)
        cmd = [PYTHON, "-m", "pipeline", "run", str(config), "--input", str(case.path)]
        cmd, cwd = [*cmd, "--output", str(output)], code
    m = run_measured(cmd, work / f"{tag}.log", cwd=cwd)
    if (got := count_rows(output)) != (want := count_rows(case.path)):
        raise BenchError(f"{tag}: output has {got:,} rows, input {want:,}")
    output.unlink(missing_ok=True)
    shutil.rmtree(work / f"{tag}-state", ignore_errors=True)
    return m


def _list(text: str, parser: argparse.ArgumentParser, flag: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _sizes(text: str, parser: argparse.ArgumentParser, flag: str) -> list[int]:
    try:
        sizes = sorted({int(n.replace("_", "")) for n in _list(text, parser, flag)})
    except ValueError:
        parser.error(f"{flag} {text!r}: expected comma-separated numbers")
    if any(n <= 0 for n in sizes):
        parser.error(f"{flag}: sizes must be positive")
    return sizes


def _choices(
    text: str, allowed: tuple[str, ...], parser: argparse.ArgumentParser, flag: str
) -> list[str]:
    items = _list(text, parser, flag)
    if unknown := [item for item in items if item not in allowed]:
        parser.error(f"{flag}: unknown {', '.join(unknown)} (choose from {', '.join(allowed)})")
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--rows", default="1000000,3000000,10000000", help="long files ('' to skip)"
    )
    parser.add_argument("--wide-mb", default="250,500", help="wide files ('' to skip)")
    parser.add_argument("--wide-layout", default="groups,one", help="groups and/or one")
    parser.add_argument("--wide-outputs", default="parquet,csv", help="parquet and/or csv")
    parser.add_argument("--before", type=Path, help="a checkout of the code to compare with")
    parser.add_argument("--max-rss-mb", type=float, default=600.0)
    parser.add_argument("--max-flatness", type=float, default=1.5)
    parser.add_argument("--regenerate", action="store_true", help="remake cached inputs")
    args = parser.parse_args(argv)
    rows = _sizes(args.rows, parser, "--rows") if args.rows.strip() else []
    wide = _sizes(args.wide_mb, parser, "--wide-mb") if args.wide_mb.strip() else []
    layouts = _choices(args.wide_layout, ("groups", "one"), parser, "--wide-layout")
    outputs = _choices(args.wide_outputs, ("parquet", "csv"), parser, "--wide-outputs")
    if args.before is not None and not (args.before / "pipeline" / "__init__.py").is_file():
        parser.error(f"--before {args.before}: no pipeline package there")
    try:
        cases = [
            Case(f"long {n:,} rows", "long", long_file(n, args.regenerate), "parquet") for n in rows
        ]
        for layout in layouts:
            for output in outputs:
                for mb in wide:
                    path = wide_file(mb, layout, args.regenerate)
                    kind = f"wide {layout} -> {output}"
                    cases.append(Case(f"wide {mb} MB {layout} -> {output}", kind, path, output))
        return _bench(cases, args)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2


def _bench(cases: list[Case], args: argparse.Namespace) -> int:
    programs: list[tuple[str, Path | None]] = [("ours", ROOT), ("raw", None)]
    if args.before is not None:
        programs.append(("before", args.before.resolve()))
    print(f"\npython: {PYTHON}", flush=True)
    results: dict[tuple[str, str], Measure] = {}
    with tempfile.TemporaryDirectory(prefix="bench-parquet-") as tmp:
        for turn, case in enumerate(cases):
            shift = turn % len(programs)
            for program, code in programs[shift:] + programs[:shift]:
                m = measure(program, code, Path(tmp), case)
                results[(case.label, program)] = m
                print(
                    f"  {case.label:<32} {program:<7} {m.seconds:7.1f}s (cpu {m.cpu_seconds:6.1f}s)"
                    f" {m.peak_rss_mb:7,.0f} MB   load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    _table(cases, results, [name for name, _ in programs])
    floor = _own_peak_mb()
    print(f"this process's own peak RSS: {floor:,.0f} MB (no child's figure can be lower)\n")
    return 0 if _verdicts(cases, results, args) else 1


def _table(cases: list[Case], results: dict[tuple[str, str], Measure], programs: list[str]) -> None:
    head = (
        "\n| case | ours: peak RSS | raw: peak RSS | ours / raw"
        " | ours: wall (cpu) | raw: wall (cpu) | ours / raw: cpu |"
    )
    rule = "|---|---|---|---|---|---|---|"
    if "before" in programs:
        head += " before: peak RSS | before: wall |"
        rule += "---|---|"
    print(head)
    print(rule)
    for case in cases:
        ours, raw = results[(case.label, "ours")], results[(case.label, "raw")]
        line = (
            f"| {case.label} | {ours.peak_rss_mb:,.0f} MB | {raw.peak_rss_mb:,.0f} MB"
            f" | {ours.peak_rss_mb / raw.peak_rss_mb:.2f}"
            f" | {ours.seconds:.1f} s ({ours.cpu_seconds:.1f} s)"
            f" | {raw.seconds:.1f} s ({raw.cpu_seconds:.1f} s)"
            f" | {ours.cpu_seconds / raw.cpu_seconds:.2f} |"
        )
        if (before := results.get((case.label, "before"))) is not None:
            line += f" {before.peak_rss_mb:,.0f} MB | {before.seconds:.1f} s |"
        print(line)
    print()


def _own_peak_mb() -> float:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (peak if sys.platform == "darwin" else peak * 1024) / 2**20


def _verdicts(
    cases: list[Case], results: dict[tuple[str, str], Measure], args: argparse.Namespace
) -> bool:
    ok = True
    for case in cases:
        peak = results[(case.label, "ours")].peak_rss_mb
        ok &= verdict(
            peak < args.max_rss_mb, f"{case.label}: peak RSS {peak:,.0f} MB < {args.max_rss_mb:g}"
        )
    for kind in dict.fromkeys(case.kind for case in cases):
        peaks = [results[(c.label, "ours")].peak_rss_mb for c in cases if c.kind == kind]
        if len(peaks) >= 2:
            flat = max(peaks) / min(peaks)
            ok &= verdict(
                flat <= args.max_flatness, f"{kind}: flatness {flat:.2f} <= {args.max_flatness:g}"
            )
    print(f"{'PASS' if ok else 'FAIL'}  overall")
    return ok


if __name__ == "__main__":
    raise SystemExit(main())
