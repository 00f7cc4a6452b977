"""The run configuration: TOML read with ``tomllib``, validated by pydantic.

Every field has a one-line docstring, its description (read by
:mod:`pipeline.field_docs`). A bad key or value becomes one :class:`ConfigError` line
that names the key, the value and what was expected. Secrets never live here: a
provider section names the environment variable that holds its key.
"""

from __future__ import annotations

import codecs
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.errors import ConfigError, UsageError
from pipeline.phone_metadata import NANP_REGIONS
from pipeline.provider_config import ProvidersConfig
from pipeline.verdict import Setting, check_settings

OUTPUT_SUFFIXES = (".csv", ".parquet")
INPUT_SUFFIXES = (".csv", ".parquet", ".txt", ".tsv")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)  # docstrings: field_docs


class InputConfig(_Section):
    path: str
    """Input file, CSV or Parquet; relative paths resolve against the current directory."""
    phone_column: str = "phone"
    """Column that holds the phone number."""
    id_column: str | None = None
    """Optional column used as record_id where a provider wants one."""
    consent_date_column: str | None = None
    """Optional column with each row's consent date (for reassigned-number checks)."""
    encoding: str = "auto"
    """CSV text encoding: auto (BOM, then UTF-8, then cp1252) or any Python codec name."""
    encoding_errors: Literal["strict", "replace"] = "strict"
    """Bytes the encoding cannot decode: strict refuses the file (naming the first one);
    replace reads each as U+FFFD and counts them in report.json (input.replaced_bytes)."""

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        if value == "auto":
            return value
        expected = "expected 'auto' or a known text encoding such as utf-8, cp1252, latin-1, utf-16"
        try:
            codec = codecs.lookup(value)
        except LookupError:
            raise ValueError(expected) from None
        # rot13, base64, hex, zlib... are codecs too, but of bytes to bytes or str to str:
        # they cannot decode a file into text, and only failed once the run had begun.
        if not codec._is_text_encoding:
            raise ValueError(f"{codec.name} is not a text encoding; {expected}")
        return codec.name


class OutputConfig(_Section):
    path: str | None = None
    """Output file; its extension (.csv or .parquet) chooses the format."""
    dir: str | None = None
    """Inbox mode (instead of path): a folder where each input matched by the glob in
    input.path gets its own output, named after it (leads.csv -> leads.enriched.parquet)."""
    format: Literal["csv", "parquet"] = "parquet"
    """The outputs' format in inbox mode."""

    @field_validator("path")
    @classmethod
    def _known_suffix(cls, value: str | None) -> str | None:
        if value is not None and Path(value).suffix.lower() not in OUTPUT_SUFFIXES:
            raise ValueError("expected a path ending in .csv or .parquet")
        return value

    @model_validator(mode="after")
    def _one_target(self) -> OutputConfig:
        if (self.path is None) == (self.dir is None):
            raise ValueError("set exactly one of output.path (a file) or output.dir (inbox mode)")
        return self


class RunSettings(_Section):
    state_dir: str = ".phone-enrich"
    """Folder for the ledger, the lock and runs/<run_id>/ reports."""
    max_credits: int | None = Field(default=None, ge=0)
    """Hard cap on credits spent by one run; unset means no cap."""
    batch_rows: int = Field(default=100_000, ge=1_000, le=2_000_000)
    """Rows read, normalized and written per batch (bounds memory)."""


class NormalizeConfig(_Section):
    regions: tuple[str, ...] = ("US", "CA")
    """NANP regions whose numbers count as valid (ISO codes, e.g. US, CA, PR)."""

    @field_validator("regions")
    @classmethod
    def _nanp_regions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        regions = tuple(r.upper() for r in value)
        unknown = [r for r in regions if r not in NANP_REGIONS]
        if unknown or not regions:
            raise ValueError(
                f"expected a non-empty list of NANP regions from {', '.join(NANP_REGIONS)}"
            )
        return regions


class Config(_Section):
    input: InputConfig
    """Where the rows come from."""
    output: OutputConfig
    """Where the enriched rows go."""
    run: RunSettings = RunSettings()
    """State folder, budget and batch size."""
    normalize: NormalizeConfig = NormalizeConfig()
    """Which regions count as valid."""

    @property
    def output_file(self) -> Path:
        """The output file of a single-file run (inbox mode names one per input)."""
        if self.output.path is None:
            raise UsageError("output.dir is inbox mode: run it with `phone-enrich run`")
        return Path(self.output.path)

    providers: ProvidersConfig = ProvidersConfig()
    """Which provider APIs to call, and how; none means normalize-only."""
    verdict: dict[str, Setting] = {}
    """Rule id -> off, review or do_not_contact: how contact_verdict treats the rule
    (the README's table of rules gives each one's default)."""

    @field_validator("verdict")
    @classmethod
    def _known_rules(cls, value: dict[str, Setting]) -> dict[str, Setting]:
        check_settings(value)
        return value


def _describe(error: dict[str, Any], source: str) -> str:
    key = ".".join(str(part) for part in error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{source}: unknown key '{key}' (value {error['input']!r}); check its spelling"
    if kind == "missing":
        return f"{source}: missing key '{key}'"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{source}: key '{key}' has value {error['input']!r}: {message}"


def parse_config(data: dict[str, Any], source: str) -> Config:
    """Validate a parsed TOML document; raise one ConfigError line on the first problem."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(_describe(dict(errors[0]), source) + more) from None


def load_config(
    path: str | Path,
    *,
    input_path: str | None = None,
    output_path: str | None = None,
    max_credits: int | None = None,
) -> Config:
    """Read and validate a TOML config; command-line overrides win over the file."""
    source = str(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{source}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{source}: is a folder, expected a TOML config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not valid TOML: the file is not UTF-8 text") from None
    for section, key, value in (
        ("input", "path", input_path),
        ("output", "path", output_path),
        ("run", "max_credits", max_credits),
    ):
        if value is not None:
            table = data.setdefault(section, {})
            if not isinstance(table, dict):
                raise ConfigError(f"{source}: key '{section}' must be a table, not {table!r}")
            table[key] = value
            if (section, key) == ("output", "path"):
                table.pop("dir", None)  # --output names one file: not inbox mode
    return parse_config(data, source)
