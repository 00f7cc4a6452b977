"""``phone-enrich init``: a commented config to start from, written from the config models
themselves (:mod:`pipeline.config`, :mod:`pipeline.provider_config`), so it cannot
drift from them: every key of every section asked for, its one-line description, and
its default; a key with no default is written commented out with an example value.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from pipeline.config import Config
from pipeline.errors import UsageError
from pipeline.field_docs import field_description
from pipeline.provider_config import ProvidersConfig
from pipeline.verdict import RULES

PROVIDERS = tuple(ProvidersConfig.model_fields)
"""Every provider ``init`` knows, in lane order."""

# Required keys, and keys that must hold one of two: a value to start from (active).
_STARTERS: dict[tuple[str, str], Any] = {
    ("input", "path"): "leads.csv",
    ("output", "path"): "leads.enriched.parquet",
    ("providers.phone_enrichment", "base_url"): "https://phone-enrichment.example.com",
}
# Keys unset by default: an example value, written commented out.
_EXAMPLES: dict[str, Any] = {
    "id_column": "lead_id",
    "consent_date_column": "consent_date",
    "dir": "enriched/",
    "max_credits": 10_000,
    "default_consent_date": date(2020, 1, 1),
    "ip_column": "ip",
}


def parse_providers(text: str | None) -> list[str]:
    """``--providers a,b``: known names, in lane order; none given: none."""
    names = [name.strip() for name in (text or "").split(",") if name.strip()]
    unknown = [name for name in names if name not in PROVIDERS]
    if unknown:
        raise UsageError(
            f"--providers: unknown provider {unknown[0]!r}; expected some of {', '.join(PROVIDERS)}"
        )
    return [name for name in PROVIDERS if name in names]


def write_config_file(path: Path, providers: Sequence[str]) -> None:
    """Write the config; never over an existing file (exit 2)."""
    text = config_text(providers)
    try:
        with open(path, "x", encoding="utf-8") as fh:
            fh.write(text)
    except FileExistsError:
        raise UsageError(f"{path}: already exists; init never overwrites a file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot write it: {exc.strerror or exc}") from None


def config_text(providers: Sequence[str]) -> str:
    """The config as TOML text: the header, then each section with every key."""
    others = [name for name in PROVIDERS if name not in providers]
    lines = [
        "# phone-enrich config, written by `phone-enrich init`.",
        "# Every key is shown with its default; a line `# key = value` is unset (the",
        "# value is an example). API keys never go in this file: each provider reads",
        "# its key from the environment variable its api_key_env names.",
    ]
    if others:
        lines.append(
            f"# Other providers: {', '.join(others)} "
            "(`phone-enrich init --providers a,b PATH` writes their sections)."
        )
    tables = {"providers", "verdict"}
    sections = {name: info for name, info in Config.model_fields.items() if name not in tables}
    for name, info in sections.items():
        lines += _section(name, field_description(Config, name), _model(info))
    settings = ProvidersConfig.model_fields
    for name in providers:
        described = field_description(ProvidersConfig, name)
        lines += _section(f"providers.{name}", described, _model(settings[name]))
    lines += _verdict_section(field_description(Config, "verdict"), providers)
    return "\n".join(lines) + "\n"


def _verdict_section(description: str | None, providers: Sequence[str]) -> list[str]:
    """``[verdict]``: every rule that can fire with these providers, at its default (the
    section is empty by default: each line is commented out)."""
    lines = ["", *_comment(description), *_comment(
        "Each rule below is shown with its default verdict; uncomment a line and set it to "
        '"off", "review" or "do_not_contact" to change it.'), "[verdict]"]  # fmt: skip
    for rule in RULES:
        if rule.provider is None or rule.provider in providers:
            lines += _comment(
                f"fires when {rule.reads.replace('`', '')} ({rule.provider or 'the row'})"
            )
            lines.append(f"# {rule.id} = {toml_value(rule.verdict)}")
    return lines


def _model(info: FieldInfo) -> type[BaseModel]:
    """The section model of a field (``X`` or ``X | None``)."""
    annotation = info.annotation
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    raise TypeError(f"not a section: {annotation!r}")


def _section(name: str, description: str | None, model: type[BaseModel]) -> list[str]:
    lines = ["", *_comment(description), f"[{name}]"]
    for key, field in model.model_fields.items():
        lines += _comment(field_description(model, key))
        if (name, key) in _STARTERS:
            lines.append(f"{key} = {toml_value(_STARTERS[name, key])}")
        elif field.is_required():
            raise TypeError(f"{name}.{key} is required and has no starting value")
        elif field.default is None:
            lines.append(f"# {key} = {toml_value(_EXAMPLES.get(key, ''))}")
        else:
            lines.append(f"{key} = {toml_value(field.default)}")
    return lines


def _comment(text: str | None) -> list[str]:
    if not text:
        return []
    flat = " ".join(text.split())
    return [f"# {line}" for line in textwrap.wrap(flat, 86)]


def toml_value(value: Any) -> str:
    """A TOML literal of a default (strings, numbers, booleans, dates, lists, tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return f"{value:_}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items())
        return "{" + (f" {inner} " if inner else "") + "}"
    raise TypeError(f"no TOML literal for {value!r}")
