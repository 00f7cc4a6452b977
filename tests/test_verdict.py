"""One verdict per row: every rule against the emulators' answers (real runs over HTTP),
the ``[verdict]`` section, and the verdict counts in report.json."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from enrich_helpers import read_report
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import Config, parse_config
from pipeline.demo import DEMO_KEY
from pipeline.emulators import Emulator, ProviderKnobs
from pipeline.emulators.checkthatphone import answer as ctp_answer
from pipeline.emulators.tcpa_authority import profile
from pipeline.errors import EXIT_LOOKUPS_FAILED, EXIT_OK, EXIT_STOPPED, ConfigError
from pipeline.provider_config import ProvidersConfig
from pipeline.providers.base import Provider
from pipeline.providers.checkthatphone import CheckThatPhone
from pipeline.providers.phone_enrichment import PhoneEnrichment
from pipeline.providers.tcpa_authority import TcpaAuthority
from pipeline.providers.tdg_id_verify import TdgIdVerify
from pipeline.providers.tdg_reverse_phone import TdgReversePhone
from pipeline.run import run
from pipeline.verdict import (
    PREFIXES,
    RULE_IDS,
    RULES,
    VERDICT_TYPE,
    VERDICTS,
    judged,
    with_verdict,
)

from conftest import CliResult

CONSENT = "2020-06-01"
NOT_A_PHONE = "(212) 1"


def _tcpa(number: str) -> tuple[bool, bool | None]:
    """(IsValid, IsReassigned) the TCPA emulator answers for ``number`` at CONSENT."""
    fragment, moved, _ = profile(number)
    reassigned = (
        None
        if moved == -1
        else moved is not None and moved > date.fromisoformat(CONSENT).toordinal()
    )
    return '"IsValid":true' in fragment, reassigned


def _ctp(number: str) -> tuple[bool, bool]:
    """(litigator, deactivated) as the CheckThatPhone emulator answers ``number``."""
    data = ctp_answer(number, None, True, False)
    return data.get("litigator") == "true", bool(data["deactivationDate"])


def _number(wanted: Callable[[tuple[bool, bool | None], tuple[bool, bool]], bool]) -> str:
    """The first number whose emulated answers are ``wanted``, asked of the emulators'
    own answer functions rather than hard-coded."""
    for i in range(100_000):
        number = f"2124{i:06d}"
        if wanted(_tcpa(number), _ctp(number)):
            return number
    raise AssertionError("no such number among 100,000")


CLEAN_TCPA, CLEAN_CTP = (True, False), (False, False)
# label -> (phone, consent date, the verdict, its reasons)
CASES: dict[str, tuple[str, str, str, str]] = {
    "ok": (_number(lambda t, c: t == CLEAN_TCPA and c == CLEAN_CTP), CONSENT, "ok", ""),
    "reassigned": (
        _number(lambda t, c: t == (True, True) and c == CLEAN_CTP),
        CONSENT, "do_not_contact", "tcpa_reassigned",
    ),
    "invalid": (  # an invalid number is also one TCPA cannot say was reassigned
        _number(lambda t, c: not t[0] and c == CLEAN_CTP),
        CONSENT, "do_not_contact", "tcpa_invalid;tcpa_reassigned_unknown",
    ),
    "unknown": (
        _number(lambda t, c: t == (True, None) and c == CLEAN_CTP),
        CONSENT, "review", "tcpa_reassigned_unknown",
    ),
    "litigator": (  # no consent date: TCPA is not asked, CheckThatPhone alone decides
        _number(lambda t, c: c == (True, False)), "", "do_not_contact", "ctp_litigator",
    ),
    "deactivated": (
        _number(lambda t, c: t == CLEAN_TCPA and c == (False, True)),
        CONSENT, "do_not_contact", "ctp_deactivated",
    ),
    "no_phone": (NOT_A_PHONE, CONSENT, "do_not_contact", "no_valid_phone"),
}  # fmt: skip


def _fast(*names: str, **knobs: Any) -> dict[str, ProviderKnobs]:
    return {name: ProviderKnobs(latency_ms=0, rate_limit=None, **knobs) for name in names}


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([header, *rows])
    return path


def _config(
    tmp_path: Path,
    emulator: Emulator,
    source: Path,
    providers: dict[str, dict[str, Any]],
    **sections: Any,
) -> Config:
    settings = {
        name: {"base_url": emulator.base_url(name), "max_attempts": 1, **extra}
        for name, extra in providers.items()
    }
    return parse_config(
        {
            "input": {
                "path": str(source),
                "phone_column": "phone",
                "id_column": "id",
                "consent_date_column": "consent",
            },
            "output": {"path": str(tmp_path / "out.csv")},
            "run": {"state_dir": str(tmp_path / "state")},
            "providers": settings,
            **sections,
        },
        "test config",
    )


def _read(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return {row["id"]: row for row in csv.DictReader(fh)}


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in (
        "DNCSCRUB_LOGIN_ID", "CHECKTHATPHONE_API_KEY", "TDG_API_KEY", "PHONE_ENRICHMENT_API_KEY",
    ):  # fmt: skip
        monkeypatch.setenv(variable, DEMO_KEY)


def _cases_input(tmp_path: Path) -> Path:
    rows = [[label, phone, consent] for label, (phone, consent, _, _) in CASES.items()]
    return _write(tmp_path / "in.csv", ["id", "phone", "consent"], rows)


CHECKERS: dict[str, dict[str, Any]] = {
    "tcpa_authority": {"batch_size": 100},
    "checkthatphone": {"litigator_filter": True},
}


def test_every_rule_of_tcpa_and_checkthatphone_against_the_emulators(
    tmp_path: Path, keys: None
) -> None:
    source = _cases_input(tmp_path)
    with Emulator(_fast(*CHECKERS)) as emulator:
        summary = run(_config(tmp_path, emulator, source, CHECKERS))
    assert summary.exit_code == EXIT_OK
    out = _read(tmp_path / "out.csv")
    for label, (_, _, verdict, reasons) in CASES.items():
        row = out[label]
        assert (row["contact_verdict"], row["contact_verdict_reasons"]) == (verdict, reasons), label
    # The evidence is in the providers' own columns, untouched beside the verdict.
    assert out["reassigned"]["tcpa_is_reassigned"] == "true"
    assert out["invalid"]["tcpa_is_valid"] == "false"
    assert out["unknown"]["tcpa_status"] == "no_match"
    assert out["unknown"]["tcpa_is_reassigned"] == ""
    assert out["litigator"]["ctp_litigator"] == "true"
    assert out["litigator"]["tcpa_status"] == "invalid_input"
    assert out["deactivated"]["ctp_deactivation_date"] != ""
    assert out["deactivated"]["ctp_reason"].startswith("Number deactivated by carrier")
    assert out["no_phone"]["phone_valid"] == "false"
    assert (out["ok"]["tcpa_is_reassigned"], out["ok"]["ctp_litigator"]) == ("false", "false")
    report = read_report(summary.report)
    assert report["verdicts"] == {"ok": 1, "do_not_contact": 5, "review": 1, "unchecked": 0}


def test_the_verdict_section_turns_rules_off_and_moves_them(tmp_path: Path, keys: None) -> None:
    source = _cases_input(tmp_path)
    moved = {
        "tcpa_reassigned": "review",
        "tcpa_invalid": "off",
        "tcpa_reassigned_unknown": "do_not_contact",
        "ctp_litigator": "off",
        "no_valid_phone": "review",
    }
    with Emulator(_fast(*CHECKERS)) as emulator:
        summary = run(_config(tmp_path, emulator, source, CHECKERS, verdict=moved))
    assert summary.exit_code == EXIT_OK
    out = _read(tmp_path / "out.csv")
    got = {label: (r["contact_verdict"], r["contact_verdict_reasons"]) for label, r in out.items()}
    assert got == {
        "ok": ("ok", ""),
        "reassigned": ("review", "tcpa_reassigned"),
        "invalid": ("do_not_contact", "tcpa_reassigned_unknown"),  # tcpa_invalid is off
        "unknown": ("do_not_contact", "tcpa_reassigned_unknown"),
        "litigator": ("ok", ""),  # off: answered, and nothing else fired
        "deactivated": ("do_not_contact", "ctp_deactivated"),
        "no_phone": ("review", "no_valid_phone"),
    }
    assert out["litigator"]["ctp_litigator"] == "true"  # the provider's column stays


def test_a_provider_that_failed_for_the_row_makes_it_review(tmp_path: Path, keys: None) -> None:
    ok = CASES["ok"][0]
    source = _write(
        tmp_path / "in.csv",
        ["id", "phone", "consent", "first_name", "last_name", "company"],
        [
            ["has_phone", ok, CONSENT, "Ada", "Lovelace", "Engines"],
            ["no_phone", "", CONSENT, "Ada", "Lovelace", "Engines"],
        ],
    )
    names = [*PREFIXES]
    providers: dict[str, dict[str, Any]] = {name: {} for name in names}
    providers["tdg_id_verify"] = {"columns": {"FName": "first_name", "LName": "last_name"}}
    with Emulator(_fast(*names, fail_5xx=1.0)) as emulator:
        summary = run(_config(tmp_path, emulator, source, providers))
    assert summary.exit_code == EXIT_LOOKUPS_FAILED
    out = _read(tmp_path / "out.csv")
    for name, p in PREFIXES.items():  # every provider was asked for one row at least
        assert "failed" in {row[f"{p}_status"] for row in out.values()}, name
    assert out["has_phone"]["contact_verdict"] == "review"
    assert out["has_phone"]["contact_verdict_reasons"] == (
        "ctp_failed;tcpa_failed;tdg_failed;tdgid_failed"
    )
    assert out["no_phone"]["contact_verdict"] == "do_not_contact"  # no phone outranks review
    assert out["no_phone"]["contact_verdict_reasons"] == "no_valid_phone;append_failed;tdgid_failed"


def test_lookups_skipped_for_the_budget_make_it_review(tmp_path: Path, keys: None) -> None:
    source = _cases_input(tmp_path)
    with Emulator(_fast(*CHECKERS)) as emulator:
        config = _config(tmp_path, emulator, source, CHECKERS, run={
            "state_dir": str(tmp_path / "state"), "max_credits": 0,
        })  # fmt: skip
        summary = run(config)
    assert summary.exit_code == EXIT_STOPPED
    out = _read(tmp_path / "out.csv")
    assert out["ok"]["ctp_status"] == out["ok"]["tcpa_status"] == "skipped_budget"
    assert (out["ok"]["contact_verdict"], out["ok"]["contact_verdict_reasons"]) == (
        "review",
        "ctp_skipped;tcpa_skipped",
    )
    assert out["litigator"]["contact_verdict_reasons"] == "ctp_skipped"  # TCPA: no date


def test_a_row_nothing_checked_is_unchecked(tmp_path: Path, keys: None) -> None:
    """No consent date: TCPA Authority is not asked (invalid_input); nothing else checks
    the number, so nothing vouches for it."""
    source = _write(
        tmp_path / "in.csv",
        ["id", "phone", "consent"],
        [["no_date", CASES["ok"][0], ""], ["dated", CASES["ok"][0], CONSENT]],
    )
    tdg: dict[str, dict[str, Any]] = {"tcpa_authority": {}, "tdg_reverse_phone": {}}
    with Emulator(_fast(*tdg)) as emulator:
        summary = run(_config(tmp_path, emulator, source, tdg))
    assert summary.exit_code == EXIT_OK
    out = _read(tmp_path / "out.csv")
    assert out["no_date"]["tcpa_status"] == "invalid_input"
    assert out["no_date"]["tdg_status"] in ("hit", "no_match")  # an answer, not a check
    assert (out["no_date"]["contact_verdict"], out["no_date"]["contact_verdict_reasons"]) == (
        "unchecked",
        "",
    )
    assert out["dated"]["contact_verdict"] == "ok"
    report = read_report(summary.report)
    assert report["verdicts"] == {"ok": 1, "do_not_contact": 0, "review": 0, "unchecked": 1}


def test_an_unknown_rule_is_a_config_error_of_one_line(
    cli: Callable[..., CliResult], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    source = _write(tmp_path / "in.csv", ["phone"], [["2125550123"]])
    config = write_config(
        input={"path": str(source)},
        output={"path": str(tmp_path / "out.csv")},
        verdict={"tcpa_reasigned": "off"},
    )
    result = cli("run", config)
    assert result.code == 2
    (line,) = result.err.strip().splitlines()
    assert "unknown rule 'tcpa_reasigned'" in line and "tcpa_reassigned" in line
    assert not (tmp_path / "out.csv").exists()
    with pytest.raises(ConfigError, match=r"verdict\.ctp_litigator"):
        parse_config(
            {"input": {"path": "a.csv"}, "output": {"path": "b.csv"},
             "verdict": {"ctp_litigator": "maybe"}},
            "test",
        )  # fmt: skip


def test_the_rules_read_columns_the_providers_write() -> None:
    """The rules table names providers and columns as strings (it is base, below the
    providers): each must be a real provider's real column."""
    classes: list[type[Provider]] = [
        PhoneEnrichment, CheckThatPhone, TcpaAuthority, TdgReversePhone, TdgIdVerify,
    ]  # fmt: skip
    assert {cls.name: cls.prefix for cls in classes} == PREFIXES
    assert set(PREFIXES) == set(ProvidersConfig.model_fields)
    columns = {"phone_valid"}
    for cls in classes:
        columns |= {f"{cls.prefix}_status", *(f"{cls.prefix}_{f}" for f in cls.fields)}
    for rule in RULES:
        assert set(rule.needs) <= columns, rule.id
        assert rule.provider is None or rule.provider in PREFIXES, rule.id
    assert len(set(RULE_IDS)) == len(RULE_IDS)


def test_reasons_follow_the_table_and_an_empty_batch_has_typed_columns() -> None:
    batch = pl.DataFrame(
        {
            "phone_valid": [False, True, True],
            "ctp_status": ["failed", "hit", "skipped_budget"],
            "tcpa_status": ["failed", "hit", "skipped_budget"],
        }
    )
    out = with_verdict(batch, {})
    assert out["contact_verdict"].to_list() == ["do_not_contact", "ok", "review"]
    assert out["contact_verdict_reasons"].to_list() == [
        "no_valid_phone;ctp_failed;tcpa_failed",
        "",
        "ctp_skipped;tcpa_skipped",
    ]
    empty = with_verdict(batch.head(0), {})
    assert empty.schema["contact_verdict"] == out.schema["contact_verdict"] == VERDICT_TYPE
    assert VERDICT_TYPE.categories.to_list() == list(VERDICTS)
    assert empty.schema["contact_verdict_reasons"] == pl.String


STATUSES = st.sampled_from([None, "hit", "no_match", "failed", "skipped_budget", "invalid_input"])
FLAGS = st.sampled_from([None, True, False])
SETTINGS = st.dictionaries(st.sampled_from(RULE_IDS), st.sampled_from(["off", "review"]))


@st.composite
def _batches(draw: st.DrawFn) -> pl.DataFrame:
    """Rows with any mix of the columns the rules read (some of them absent)."""
    rows = draw(st.integers(min_value=0, max_value=30))
    columns: dict[str, pl.Series] = {
        "phone_valid": pl.Series(draw(st.lists(FLAGS, min_size=rows, max_size=rows))),
    }
    for p in draw(st.sets(st.sampled_from(list(PREFIXES.values())))):
        columns[f"{p}_status"] = pl.Series(
            draw(st.lists(STATUSES, min_size=rows, max_size=rows)), dtype=pl.String
        )
    texts = st.sampled_from([None, "", " ", "2020-01-01", "Number deactivated by carrier x"])
    for name, values in (
        ("tcpa_is_reassigned", FLAGS), ("tcpa_is_valid", FLAGS), ("ctp_litigator", FLAGS),
        ("ctp_deactivation_date", texts), ("ctp_reason", texts),
    ):  # fmt: skip
        if name.split("_")[0] + "_status" in columns:
            dtype = pl.Boolean if values is FLAGS else pl.String
            columns[name] = pl.Series(
                draw(st.lists(values, min_size=rows, max_size=rows)), dtype=dtype
            )
    return pl.DataFrame(columns)


@settings(max_examples=200, deadline=None)
@given(batch=_batches(), chosen=SETTINGS)
def test_the_verdict_of_every_row_is_the_table_read_row_by_row(
    batch: pl.DataFrame, chosen: dict[str, str]
) -> None:
    """Against the rules read one row at a time: each rule that fires (null: does not),
    in table order, is a reason; do_not_contact over review over ok (a provider that
    checks the number answered) over unchecked."""
    rules = [
        (rule, chosen.get(rule.id, rule.verdict))
        for rule in RULES
        if chosen.get(rule.id) != "off" and all(c in batch.columns for c in rule.needs)
    ]
    fired = batch.select(
        [rule.when.fill_null(False).alias(rule.id) for rule, _ in rules] or [pl.lit(0)]
    )
    out, counts = judged(batch, chosen)  # type: ignore[arg-type]
    for i, row in enumerate(batch.iter_rows(named=True)):
        hits = [(rule.id, verdict) for rule, verdict in rules if fired[rule.id][i]]
        checked = any(row.get(f"{p}_status") in ("hit", "no_match") for p in ("tcpa", "ctp"))
        want = next(
            (v for v in ("do_not_contact", "review") if any(v == w for _, w in hits)),
            "ok" if checked else "unchecked",
        )
        assert out["contact_verdict"][i] == want, (row, hits)
        assert out["contact_verdict_reasons"][i] == ";".join(name for name, _ in hits)
    assert counts == {v: n for v, n in out["contact_verdict"].value_counts().iter_rows() if n}
    assert out.drop("contact_verdict", "contact_verdict_reasons").equals(batch)
