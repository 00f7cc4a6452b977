"""Inbox mode: ``input.path`` is a glob and ``output.dir`` a folder.

Each matching file is its own job, with its output named after it
(``leads-0412.csv`` -> ``leads-0412.enriched.parquet``). A file whose job already
finished cleanly is skipped (the ledger's runs table remembers it), so a cron line
over an inbox folder processes each new file once.

A bad file must not block the files after it: a file refused for its content (an
InputError: ragged, no phone column, undecodable...) is named, remembered in
``state_dir/inbox/refused.json`` with its size, mtime, ctime and inode, and not read
again until one of those changes; the other files are processed, and the inbox run
exits 2 naming every refused file, so cron keeps failing loudly until someone looks.
"""

from __future__ import annotations

import glob
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import Config, OutputConfig
from pipeline.errors import EXIT_USAGE, InputError, OutputError, UsageError
from pipeline.preflight import PROBE_PREFIX, check_paths

GLOB_CHARACTERS = "*?["
OUTPUT_MARK = ".enriched."
STATE_FOLDER = "inbox"

Stamp = list[int]


def is_inbox(config: Config) -> bool:
    return config.output.dir is not None or any(c in config.input.path for c in GLOB_CHARACTERS)


@dataclass(frozen=True)
class Refusal:
    """A file of the inbox that was not processed, and why."""

    path: Path
    reason: str
    since: str = ""
    """When it was first refused, for a file remembered from an earlier run."""

    def line(self) -> str:
        if self.since:
            return (
                f"{self.path}: refused since {self.since} and unchanged, not read again "
                f"(fix or replace it and the next run reads it): {self.reason}"
            )
        return f"{self.path}: refused: {self.reason}"


@dataclass
class InboxResult:
    files: int = 0
    exit_code: int = 0
    refused: list[Refusal] = field(default_factory=list)


def _target(config: Config, path: Path) -> Path:
    assert config.output.dir is not None
    return Path(config.output.dir) / f"{path.stem}{OUTPUT_MARK}{config.output.format}"


def _ours(path: Path, out_dir: str, state_dir: str) -> bool:
    """An output (or temp output, or probe) of ours in the output folder, or anything
    in the state folder: never an input, whatever the glob matches."""
    real = Path(os.path.realpath(path))
    if real.is_relative_to(os.path.realpath(state_dir)):
        return True
    if real.parent != Path(os.path.realpath(out_dir)):
        return False
    name = real.name
    written = any(name.endswith(f"{OUTPUT_MARK}{suffix}") for suffix in ("csv", "parquet"))
    temporary = name.startswith(".") and (name.endswith(".tmp") or PROBE_PREFIX in name)
    return written or temporary


def inbox_configs(config: Config) -> tuple[list[Config], list[Refusal]]:
    """One config per input file the glob matches, oldest name first; and the files
    refused because their output would land on an input or on another file's output."""
    if config.output.dir is None:
        raise UsageError(
            f"input.path {config.input.path!r} is a glob (inbox mode): set output.dir to a "
            "folder instead of output.path"
        )
    paths = [
        path
        for path in map(Path, sorted(glob.glob(config.input.path)))
        if path.is_file() and not _ours(path, config.output.dir, config.run.state_dir)
    ]
    inputs = {os.path.realpath(p): p for p in paths}
    writers: dict[str, list[Path]] = defaultdict(list)
    for path in paths:
        writers[os.path.realpath(_target(config, path))].append(path)
    configs, refused = [], []
    for path in paths:
        target = _target(config, path)
        real = os.path.realpath(target)
        if real in inputs:
            reason = f"its output {target} would replace the input {inputs[real]}"
            refused.append(Refusal(path, f"{reason}; move one of them"))
            continue
        others = [str(p) for p in writers[real] if p != path]
        if others:
            reason = f"its output {target} is also the output of {', '.join(others)}"
            refused.append(Refusal(path, f"{reason}; rename one of them"))
            continue
        configs.append(
            config.model_copy(
                update={
                    "input": config.input.model_copy(update={"path": str(path)}),
                    "output": OutputConfig(path=str(target)),
                }
            )
        )
    return configs, refused


def _stamp(path: Path) -> Stamp | None:
    """What changes when the file is rewritten, replaced or touched; None if gone."""
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


class RefusedFiles:
    """``state_dir/inbox/refused.json``: the files refused for their content, by real
    path, with the stamp they had when they were read; and ``log.jsonl`` beside it."""

    def __init__(self, state_dir: Path) -> None:
        self.folder = state_dir / STATE_FOLDER
        self.path = self.folder / "refused.json"
        self.entries: dict[str, dict[str, Any]] = {}
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            loaded = {}  # none yet, or damaged: at worst a refused file is read once more
        if isinstance(loaded, dict):
            self.entries = {k: v for k, v in loaded.items() if isinstance(v, dict)}

    def unchanged(self, path: Path, stamp: Stamp | None) -> Refusal | None:
        entry = self.entries.get(os.path.realpath(path))
        if entry is None or stamp is None or entry.get("stamp") != stamp:
            return None
        return Refusal(path, str(entry.get("reason", "")), str(entry.get("since", "?")))

    def refuse(self, path: Path, stamp: Stamp | None, reason: str) -> None:
        if stamp is None:
            return  # gone: nothing to remember it by
        since = time.strftime("%Y-%m-%d %H:%M:%S")
        self.entries[os.path.realpath(path)] = {"stamp": stamp, "reason": reason, "since": since}
        self._save()

    def clear(self, path: Path) -> None:
        if self.entries.pop(os.path.realpath(path), None) is not None:
            self._save()

    def log(self, event: str, path: Path, **fields: Any) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        line = {"time": round(time.time(), 3), "event": event, "path": str(path), **fields}
        with open(self.folder / "log.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")

    def _save(self) -> None:
        self.entries = {k: v for k, v in self.entries.items() if os.path.exists(k)}
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.entries, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)  # a crash leaves the old list or the new one, whole


def run_inbox(
    config: Config, run_one: Callable[[Config], int], warn: Callable[[str], None]
) -> InboxResult:
    """Run each file of the inbox; ``warn`` gets one line per refused file as it is
    refused. A stop (exit 3: budget, key, signal) ends the loop: the rest waits."""
    check_paths(config)  # state_dir and output.dir: once, before any file is read
    configs, clashes = inbox_configs(config)
    memory = RefusedFiles(Path(config.run.state_dir))
    result = InboxResult(files=len(configs) + len(clashes))

    def refused(refusal: Refusal) -> None:
        result.refused.append(refusal)
        memory.log("refused", refusal.path, reason=refusal.reason, since=refusal.since or None)
        warn(refusal.line())

    for refusal in clashes:
        refused(refusal)
    worst = 0
    for one in configs:
        path = Path(one.input.path)
        stamp = _stamp(path)  # before reading: a change during the attempt is a change
        earlier = memory.unchanged(path, stamp)
        if earlier is not None:
            refused(earlier)
            continue
        try:
            check_paths(one)  # this file's output: a folder, the input under another name
        except OutputError as exc:
            refused(Refusal(path, str(exc)))  # not remembered: checked again, it costs nothing
            continue
        try:
            code = run_one(one)
        except InputError as exc:  # the file's own content: refused until it changes
            reason = str(exc).removeprefix(f"{path}: ")
            memory.refuse(path, stamp, reason)
            refused(Refusal(path, reason))
            continue
        memory.clear(path)
        worst = max(worst, code)
        if code not in (0, 1):
            break  # stopped (budget, key, signal): the rest waits for the next run
    stopped = worst not in (0, 1)
    result.exit_code = worst if stopped or not result.refused else EXIT_USAGE
    return result
