"""What can be checked before the first paid request: the paths a run will write.

A run buys its answers before it writes its output, so a path that cannot be written
must be refused up front, not after the whole job was paid for: an output that is a
folder or lands on the input, an output folder or a ``state_dir`` that is read-only or
sits under a file. Each refusal is one line naming the key, the path and what to do.

Writability is checked by trying (a temp file created and removed), not with
``os.access``: root passes every permission check, and a read-only mount or a full
quota only shows when a write is attempted.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pipeline.config import Config
from pipeline.errors import OutputError, UsageError

PROBE_PREFIX = ".phone-enrich-probe-"


def check_paths(config: Config) -> None:
    """Refuse now what would only fail after the lookups were bought.

    Creates nothing (a folder made here could be what puts the output on the input:
    ``sub/../in.csv``); the writer and the lock create the folders later.
    """
    check_state_dir(Path(config.run.state_dir))
    if config.output.dir is not None:
        _check_folder(Path(config.output.dir), "output.dir")
        return
    output = config.output_file
    check_not_input(Path(config.input.path), output)
    if output.is_dir():
        raise OutputError(
            f"output.path {output}: is a folder; name a file ending in .csv or .parquet"
        )
    _check_folder(output.parent, "output.path", shown=output)


def check_state_dir(state_dir: Path) -> None:
    """``run.state_dir`` is a folder we can write, or one we can create."""
    if state_dir.exists() and not state_dir.is_dir():
        raise UsageError(
            f"run.state_dir {state_dir}: is a file, not a folder; "
            "set run.state_dir to a folder (it is created if missing)"
        )
    _check_folder(state_dir, "run.state_dir", error=UsageError)


def prepare_state_dir(state_dir: Path) -> None:
    """Check ``run.state_dir`` (see :func:`check_state_dir`) and create it."""
    check_state_dir(state_dir)
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a race with another process, or a mount that changed
        raise UsageError(
            f"run.state_dir {state_dir}: cannot create the folder ({exc.strerror}); "
            "set run.state_dir to a folder this user can write"
        ) from None


def check_not_input(input_path: Path, output: Path) -> None:
    """The output must not be the input under another name: ``sub/../in.csv`` (the
    writer creates ``sub``, then replaces the input), a symlink to it, a hard link.

    ``realpath`` resolves the links of the parts that exist and ``..`` lexically past
    the parts that do not, which is where the writer's ``mkdir -p`` puts them.
    """
    same = os.path.realpath(input_path) == os.path.realpath(output)
    if not same and input_path.exists() and output.exists():
        same = os.path.samefile(input_path, output)  # hard links
    if same:
        raise OutputError(
            f"output.path {output}: is the input file {input_path} (once ../ and links are "
            "resolved), which the output would replace; choose another output path"
        )


def _nearest_existing(path: Path) -> Path:
    """The path or its closest ancestor that exists: where ``mkdir -p`` starts."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path.cwd()  # a relative path whose every part is missing starts here


def _check_folder(
    folder: Path,
    key: str,
    *,
    shown: Path | None = None,
    error: type[UsageError] = OutputError,
) -> None:
    """``folder`` exists and takes a new file, or can be created and would."""
    shown = shown or folder
    base = _nearest_existing(folder)
    if not base.is_dir():
        where = "is a file" if base == folder else f"is under {base}, a file"
        raise error(
            f"{key} {shown}: {where}, so the folder cannot be created there; "
            f"set {key} to a path in a folder"
        )
    try:
        fd, probe = tempfile.mkstemp(prefix=PROBE_PREFIX, dir=base)
    except OSError as exc:
        raise error(
            f"{key} {shown}: cannot write in {base} ({exc.strerror}); "
            f"set {key} to a folder this user can write"
        ) from None
    os.close(fd)
    os.unlink(probe)
