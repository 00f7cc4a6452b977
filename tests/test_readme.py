"""The README's config example is a config this version accepts, and shows every provider."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from pipeline.config import parse_config
from pipeline.provider_config import ProvidersConfig

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_config_example_is_valid_and_names_every_provider() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Config") : text.index("## Input")]
    (block,) = re.findall(r"```toml\n(.*?)```", section, flags=re.S)
    config = parse_config(tomllib.loads(block), "README.md")
    assert set(config.providers.enabled()) == set(ProvidersConfig.model_fields)
    tdgid = config.providers.tdg_id_verify
    assert tdgid is not None and tdgid.columns["Address1"] == "address"
