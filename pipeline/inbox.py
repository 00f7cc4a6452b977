"""Inbox mode: ``input.path`` is a glob and ``output.dir`` a folder.

Each matching file is its own job, with its output named after it
(``leads-0412.csv`` -> ``leads-0412.enriched.parquet``). A file whose job already
finished cleanly is skipped (the ledger's runs table remembers it), so a cron line
over an inbox folder processes each new file once.
"""

from __future__ import annotations

import glob
from pathlib import Path

from pipeline.config import Config, OutputConfig
from pipeline.errors import UsageError

GLOB_CHARACTERS = "*?["


def is_inbox(config: Config) -> bool:
    return config.output.dir is not None or any(c in config.input.path for c in GLOB_CHARACTERS)


def inbox_configs(config: Config) -> list[Config]:
    """One config per input file the glob matches, oldest name first."""
    if config.output.dir is None:
        raise UsageError(
            f"input.path {config.input.path!r} is a glob (inbox mode): set output.dir to a "
            "folder instead of output.path"
        )
    out_dir = Path(config.output.dir)
    suffix = config.output.format
    configs = []
    for name in sorted(glob.glob(config.input.path)):
        path = Path(name)
        if not path.is_file():
            continue
        target = out_dir / f"{path.stem}.enriched.{suffix}"
        if path.resolve() == target.resolve():
            continue  # an output of an earlier pass that the glob also matches
        configs.append(
            config.model_copy(
                update={
                    "input": config.input.model_copy(update={"path": str(path)}),
                    "output": OutputConfig(path=str(target)),
                }
            )
        )
    return configs
