"""What ``--help`` shows below each command's options: an example and its exit codes.

One table of exit codes (:mod:`pipeline.errors` defines them), one example per command,
so every command's help says the same thing about the same code.
"""

from __future__ import annotations

import argparse
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pipeline.errors import (
    EXIT_INTERNAL,
    EXIT_LOCKED,
    EXIT_LOOKUPS_FAILED,
    EXIT_OK,
    EXIT_STOPPED,
    EXIT_USAGE,
)

_MEANING = {
    EXIT_OK: "done",
    EXIT_LOOKUPS_FAILED: "every row written, some lookups failed: `phone-enrich retry CONFIG`",
    EXIT_USAGE: "bad usage, config or input: one line says what, no traceback",
    EXIT_STOPPED: "stopped (budget, refused key, signal, store not writable): the same "
    "command resumes",
    EXIT_INTERNAL: "internal error (a bug): the traceback is printed",
    EXIT_LOCKED: "another run holds the state folder's lock: nothing was done",
}
_RUNS = (EXIT_OK, EXIT_LOOKUPS_FAILED, EXIT_USAGE, EXIT_STOPPED, EXIT_INTERNAL, EXIT_LOCKED)
_READS = (EXIT_OK, EXIT_USAGE, EXIT_INTERNAL)

# command -> (examples, its exit codes, what 0 means for it)
_COMMANDS: dict[str, tuple[tuple[str, ...], tuple[int, ...], str]] = {
    "run": (
        ("phone-enrich run config.toml",
         "phone-enrich run config.toml --input /data/leads.csv --max-credits 50000"),
        _RUNS, "every row written, every lookup answered",
    ),
    "retry": (
        ("phone-enrich retry config.toml",),
        _RUNS, "every row written, every lookup answered; or nothing failed (nothing changed)",
    ),
    "estimate": (
        ("phone-enrich estimate config.toml --input /data/leads.csv",),
        _READS, "the estimate is printed (no API key needed, no call made)",
    ),
    "status": (("phone-enrich status config.toml",
                "phone-enrich status config.toml --run 20261202T031000Z-ab12cd"),
               _READS, "the runs are printed"),
    "sample": (("phone-enrich sample --rows 10000 --out leads.csv",), _READS,
               "the file is written"),
    "emulate": (("phone-enrich emulate --port 8790",), _READS, "stopped by Ctrl-C or SIGTERM"),
    "demo": (("phone-enrich demo",), _RUNS, "the demo run enriched every row"),
    "init": (
        ("phone-enrich init config.toml",
         "phone-enrich init --providers tcpa_authority,checkthatphone config.toml"),
        (EXIT_OK, EXIT_USAGE, EXIT_INTERNAL), "the config is written",
    ),
}  # fmt: skip


def epilog(command: str) -> str:
    examples, codes, done = _COMMANDS[command]
    lines = ["example:" if len(examples) == 1 else "examples:"]
    lines += [f"  {example}" for example in examples]
    lines += ["", "exit codes:"]
    lines += [f"  {code:<3} {done if code == EXIT_OK else _MEANING[code]}" for code in codes]
    return "\n".join(lines)


def help_of(command: str) -> dict[str, Any]:
    """Keyword arguments of ``add_parser`` for ``command``: its epilog, kept as written."""
    return {"epilog": epilog(command), "formatter_class": argparse.RawDescriptionHelpFormatter}


def main_epilog() -> str:
    lines = ["start here:", "  phone-enrich init --providers tcpa_authority config.toml",
             "  phone-enrich estimate config.toml", "  phone-enrich run config.toml", "",
             "exit codes:"]  # fmt: skip
    lines += [f"  {code:<3} {_MEANING[code]}" for code in _RUNS]
    return "\n".join(lines)


def package_version() -> str:
    """The installed package's version (its metadata, from pyproject.toml)."""
    try:
        return version("phone-enrich")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"
