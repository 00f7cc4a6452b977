"""Getting started: ``init`` writes a config with every default, ``--version``, each
command's ``--help`` gives an example and its exit codes, and ``estimate`` runs without
API keys (it makes no call)."""

from __future__ import annotations

import inspect
import re
import tomllib
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from enrich_helpers import EMULATOR_KEY, KEY_ENV, write_leads
from pydantic import BaseModel

from pipeline.config import Config, load_config
from pipeline.emulators.server import Emulator
from pipeline.emulators.state import ProviderKnobs
from pipeline.errors import EXIT_USAGE
from pipeline.field_docs import field_description
from pipeline.init_config import PROVIDERS
from pipeline.provider_config import ProvidersConfig
from pipeline.verdict import RULES

from conftest import CliResult

COMMANDS = ("init", "run", "retry", "estimate", "status", "sample", "emulate", "demo")
PHONES = ["2027771043", "3125557788", "4158830123", "6479165010", "7075276405"]


def _sections(config: Config) -> dict[str, BaseModel]:
    """Each section of a loaded config by its TOML name."""
    found: dict[str, BaseModel] = {
        name: getattr(config, name) for name in ("input", "output", "run", "normalize")
    }
    for name, settings in config.providers.enabled().items():
        found[f"providers.{name}"] = settings
    return found


def _table(parsed: dict[str, Any], dotted: str) -> dict[str, Any]:
    table = parsed
    for part in dotted.split("."):
        table = table[part]
    return table


@pytest.mark.parametrize(
    "asked", [(), ("tcpa_authority", "checkthatphone"), PROVIDERS], ids=["none", "two", "all"]
)
def test_init_writes_every_default_of_the_sections_asked_for(
    cli: Callable[..., CliResult], tmp_path: Path, asked: tuple[str, ...]
) -> None:
    path = tmp_path / "new.toml"
    args = ("--providers", ",".join(reversed(asked))) if asked else ()
    result = cli("init", *args, path)
    assert result.code == 0, result.err
    assert f"wrote {path}" in result.out
    text = path.read_text(encoding="utf-8")
    parsed = tomllib.loads(text)
    config = load_config(path)
    assert list(config.providers.enabled()) == list(asked)  # lane order, not the flag's
    assert set(parsed.get("providers", {})) == set(asked)
    for name, section in _sections(config).items():
        written = _table(parsed, name)
        for key, field in type(section).model_fields.items():
            # every key is there with its description, set or (unset by default) commented
            assert re.search(rf"^(# )?{key} = ", text, re.M), f"{name}.{key} missing"
            description = field_description(type(section), key)
            assert description, f"{name}.{key} has no docstring"
            assert " ".join(description.split())[:40] in " ".join(text.split())
            if field.is_required() or (name, key) == ("output", "path"):
                assert key in written  # a value to start from
            elif field.default is None:
                assert key not in written and getattr(section, key) is None
            else:
                assert key in written, f"{name}.{key} not written"
                assert getattr(section, key) == field.default, f"{name}.{key}"
    assert config.input.path == "leads.csv" and config.output.path == "leads.enriched.parquet"
    # [verdict]: every rule that can fire with these providers, at its default, commented
    assert parsed["verdict"] == {} and config.verdict == Config.model_fields["verdict"].default
    shown = dict(re.findall(r'^# (\w+) = "(\w+)"$', text.split("\n[verdict]\n")[1], re.M))
    assert shown == {rule.id: rule.verdict for rule in RULES if rule.provider in (None, *asked)}


def test_init_refuses_to_overwrite_and_unknown_providers(
    cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    path = tmp_path / "mine.toml"
    path.write_text("# my config\n", encoding="utf-8")
    result = cli("init", path)
    assert result.code == EXIT_USAGE
    assert result.err.strip() == f"phone-enrich: error: {path}: already exists; init never " \
        "overwrites a file"  # fmt: skip
    assert path.read_text(encoding="utf-8") == "# my config\n"

    result = cli("init", "--providers", "tcpa_authority,nope", tmp_path / "other.toml")
    assert result.code == EXIT_USAGE
    assert "unknown provider 'nope'; expected some of " + ", ".join(PROVIDERS) in result.err
    assert not (tmp_path / "other.toml").exists()
    assert list(ProvidersConfig.model_fields) == list(PROVIDERS)


def test_init_writes_phone_enrich_toml_here_by_default(
    cli: Callable[..., CliResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli("init").code == 0
    assert load_config(tmp_path / "phone-enrich.toml").providers.enabled() == {}


def test_version_is_the_package_metadata(cli: Callable[..., CliResult]) -> None:
    result = cli("--version")
    assert result.code == 0
    assert result.out == f"phone-enrich {version('phone-enrich')}\n"


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_each_command_has_an_example_and_exit_codes(
    cli: Callable[..., CliResult], command: str
) -> None:
    result = cli(command, "--help")
    assert result.code == 0
    example = result.out.split("example", 1)[1]
    assert re.search(rf"^  phone-enrich {command}\b", example, re.M)
    codes = re.findall(r"^  (\d+) +\S", result.out.split("exit codes:", 1)[1], re.M)
    runs = command in ("run", "retry", "demo")
    assert codes == (["0", "1", "2", "3", "70", "75"] if runs else ["0", "2", "70"])


def test_main_help_lists_the_exit_codes(cli: Callable[..., CliResult]) -> None:
    result = cli("--help")
    assert result.code == 0
    codes = re.findall(r"^  (\d+) +\S", result.out.split("exit codes:", 1)[1], re.M)
    assert codes == ["0", "1", "2", "3", "70", "75"]
    assert "phone-enrich init" in result.out


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator({"tcpa_authority": ProviderKnobs(latency_ms=0, rate_limit=None)}) as em:
        monkeypatch.setenv(KEY_ENV, EMULATOR_KEY)
        yield em


def test_estimate_runs_without_api_keys(
    cli: Callable[..., CliResult], write_config: Callable[..., Path], tmp_path: Path,
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    source = write_leads(tmp_path / "leads.csv", [(p, "2020-06-01") for p in PHONES])
    config = write_config(
        input={"path": str(source), "consent_date_column": "consent_date"},
        output={"path": str(tmp_path / "out.csv")},
        **{"providers.tcpa_authority": {"base_url": emulator.base_url("tcpa_authority"),
                                        "requests_per_minute": 60_000, "batch_size": 2}},
    )  # fmt: skip
    assert cli("run", config).code == 0  # the store now has every answer, bought with the key
    bought = emulator.state("tcpa_authority")["totals"]["requests"]

    keyed = cli("estimate", config)
    assert keyed.code == 0
    assert "5 unique keys, 5 already answered, 0 to buy in 0 requests" in keyed.out
    assert "is not set" not in keyed.out

    monkeypatch.delenv(KEY_ENV)
    assert cli("run", config, "--force").code == EXIT_USAGE  # a run still needs its key
    keyless = cli("estimate", config)
    assert keyless.code == 0, keyless.err
    assert "5 unique keys, 0 already answered, 5 to buy in 3 requests, 5 credits" in keyless.out
    assert (
        f"({KEY_ENV} is not set: answers already bought with the key are not counted, every "
        "key is priced as to buy)" in keyless.out
    )
    assert emulator.state("tcpa_authority")["totals"]["requests"] == bought  # no call made


def test_field_descriptions_are_the_docstrings_pydantic_reads() -> None:
    """field_docs reads each field's docstring as pydantic's use_attribute_docstrings
    would (the models no longer ask pydantic to: it parsed their source at every start)."""
    from pydantic import BaseModel
    from pydantic._internal._docs_extraction import extract_docstrings_from_cls

    import pipeline.config
    import pipeline.provider_config

    models = [
        model
        for module in (pipeline.config, pipeline.provider_config)
        for model in vars(module).values()
        if isinstance(model, type) and issubclass(model, BaseModel) and model.model_fields
    ]
    assert len(models) >= 10
    for model in models:
        for key in model.model_fields:
            owner = next(c for c in model.__mro__ if key in inspect.get_annotations(c))
            described = field_description(model, key)
            assert described, f"{model.__name__}.{key} has no docstring"
            assert described == extract_docstrings_from_cls(owner, use_inspect=True).get(key)
