"""Several providers in one run: the append cascade end to end, and credits reconciled per
provider against each emulator's own ledger, with the demo's own config."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from pipeline.config import Config, load_config, parse_config
from pipeline.demo import DEMO_CONFIG, DEMO_KEY, against
from pipeline.emulators import Emulator, ProviderKnobs
from pipeline.emulators.phone_enrichment import lookup
from pipeline.normalize import PHONE_SOURCE_TYPE
from pipeline.provider_config import ProvidersConfig
from pipeline.run import run
from pipeline.sample import write_sample

REPO = Path(__file__).resolve().parent.parent
PREFIX = {
    "phone_enrichment": "append",
    "tcpa_authority": "tcpa",
    "tdg_reverse_phone": "tdg",
    "tdg_id_verify": "tdgid",
    "checkthatphone": "ctp",
}


class Recorder(httpx.AsyncBaseTransport):
    """Real HTTP to the emulators, with every request body kept for the test to read."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.sent: list[tuple[str, bytes]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        self.sent.append((request.url.path, body))
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()

    def bodies(self, path_part: str) -> list[Any]:
        return [json.loads(body) for path, body in self.sent if path_part in path]


def _fast(*names: str) -> dict[str, ProviderKnobs]:
    return {name: ProviderKnobs(latency_ms=0, rate_limit=None) for name in names}


def _charged(emulator: Emulator, name: str) -> int:
    return sum(emulator.state(name)["charged"].values())


def _contacts(found: bool, count: int) -> Iterator[tuple[str, str, str]]:
    """(first, last, company) the emulated API finds a phone for (or not), by asking the
    emulator's own lookup rather than hard-coding its answers."""
    given = 0
    for n in range(1000):
        fields = {"first_name": "Ada", "last_name": f"Lovelace{n}", "company": f"Engines {n}"}
        if (lookup(dict(fields))["phone"] is not None) == found:
            yield fields["first_name"], fields["last_name"], fields["company"]
            given += 1
            if given == count:
                return
    raise AssertionError("the emulator found no suitable contact in 1000 tries")


def _read(path: Path) -> list[dict[str, str]]:
    """The output's rows as text (a Parquet output as polars writes it to CSV)."""
    if path.suffix == ".parquet":
        return list(csv.DictReader(io.StringIO(pl.read_parquet(path).write_csv())))
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# ------------------------------------------------------------------------ the cascade


@pytest.mark.parametrize("output", ["out.csv", "out.parquet"])
def test_a_row_without_a_phone_gets_one_and_it_is_then_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str
) -> None:
    (hit_a, hit_b), (miss,) = list(_contacts(True, 2)), list(_contacts(False, 1))
    source = tmp_path / "leads.csv"
    rows = [
        # id, first, last, company, phone, consent date
        ("A1", *hit_a, "", "2021-02-09"),  # no phone: appended, then checked
        ("A2", *miss, "", "2021-02-09"),  # no phone, none found: nothing else asked
        ("A3", *hit_b, "(212) 1", "2021-02-09"),  # an invalid phone counts as missing
        ("A4", "Grace", "Hopper", "Navy", "(707) 527-6405", "2021-02-09"),  # has one
    ]
    with open(source, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["lead_id", "first_name", "last_name", "company", "phone", "consent"])
        writer.writerows(rows)
    names = ("phone_enrichment", "checkthatphone", "tcpa_authority")
    recorder = Recorder()
    with Emulator(_fast(*names)) as emulator:
        providers: dict[str, Any] = {}
        for name in names:
            providers[name] = {"base_url": emulator.base_url(name), "max_concurrency": 4}
        config = parse_config(
            {
                "input": {
                    "path": str(source),
                    "phone_column": "phone",
                    "id_column": "lead_id",
                    "consent_date_column": "consent",
                },
                "output": {"path": str(tmp_path / output)},
                "run": {"state_dir": str(tmp_path / "state")},
                "providers": providers,
            },
            "test config",
        )
        for settings in config.providers.enabled().values():
            monkeypatch.setenv(settings.api_key_env, DEMO_KEY)
        summary = run(config, transport=recorder)
        charged = {name: _charged(emulator, name) for name in names}

    assert summary.exit_code == 0
    if output.endswith(".parquet"):  # an appended phone's source is of the same Enum
        schema = pl.read_parquet_schema(tmp_path / output)
        assert schema["phone_source"] == PHONE_SOURCE_TYPE
        assert schema["consent_date_normalized"] == pl.Date
    out = {row["lead_id"]: row for row in _read(tmp_path / output)}
    appended = {}
    for lead in ("A1", "A3"):
        row = out[lead]
        assert row["append_status"] == "hit"
        assert row["append_record_id"] == lead  # the id column is the record_id
        assert row["phone_source"] == "appended"
        assert row["phone_valid"] == "true"
        assert row["phone_e164"] == row["append_phone"]
        assert row["phone_normalized"] == row["append_phone"].removeprefix("+1")
        assert row["ctp_status"] == "hit"
        assert row["tcpa_status"] in ("hit", "no_match")
        assert row["phone"] == next(r[4] for r in rows if r[0] == lead)  # input untouched
        appended[lead] = row["phone_normalized"]
    assert out["A2"]["append_status"] == "no_match"
    assert out["A2"]["phone_source"] == ""
    assert out["A2"]["ctp_status"] == out["A2"]["tcpa_status"] == "not_requested"
    assert out["A4"]["append_status"] == "not_requested"
    assert out["A4"]["phone_source"] == "input"
    assert out["A4"]["ctp_status"] == "hit"

    # What went over the wire: the enrichment API got the three phoneless rows, and the
    # phones it found went on to CheckThatPhone and TCPA Authority (with the row's date).
    asked = {body["record_id"] for body in recorder.bodies("/v1/enrich/phone")}
    assert asked == {"A1", "A2", "A3"}
    ctp_phones = sorted(body["phone"] for body in recorder.bodies("/v1/lookup"))
    assert ctp_phones == sorted([*appended.values(), "7075276405"])
    tcpa_sent = [
        (item["PhoneNumber"], item["Date"])
        for body in recorder.bodies("/Data/TCPAAuthority")
        for item in body["Data"]
    ]
    assert sorted(tcpa_sent) == sorted(
        [(phone, "20210209") for phone in [*appended.values(), "7075276405"]]
    )

    # Credits: each row's, per provider, add up to the report and to what was charged.
    report = json.loads(Path(summary.report or "").read_text())
    for name in names:
        prefix = PREFIX[name]
        in_rows = sum(int(row[f"{prefix}_credits"] or 0) for row in out.values())
        assert in_rows == report["providers"][name]["credits"] == charged[name] > 0
    assert sum(int(row["credits_total"]) for row in out.values()) == sum(charged.values())


# ------------------------------------------------------------- every provider at once


def _demo_config(tmp_path: Path, rows: int) -> Config:
    """The demo's own config on a smaller sample, writing into ``tmp_path``."""
    config = load_config(REPO / DEMO_CONFIG)
    sample = tmp_path / "leads.csv"
    write_sample(sample, rows, seed=11)
    return config.model_copy(
        update={
            "input": config.input.model_copy(update={"path": str(sample)}),
            "output": config.output.model_copy(update={"path": str(tmp_path / "out.csv")}),
            "run": config.run.model_copy(update={"state_dir": tmp_path / "state"}),
        }
    )


def test_a_contact_is_bought_once_across_rows_files_and_runs_without_an_id_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an id column the record_id is the row_trace_id, which changes with the
    file; the answer is a function of the contact, so neither a duplicate row nor a
    re-run on an edited file may buy it again."""
    hits, (miss,) = list(_contacts(True, 2)), list(_contacts(False, 1))
    header = ["first_name", "last_name", "company", "phone"]
    first = [(*hits[0], ""), (*miss, ""), (*hits[1], ""), (*hits[0], "")]  # last: a dupe
    edited = [("Grace", "Hopper", "Navy", "(707) 527-6405"), *first]  # one row more on top
    recorder = Recorder()
    outputs = []
    monkeypatch.setenv("PHONE_ENRICHMENT_API_KEY", DEMO_KEY)
    with Emulator(_fast("phone_enrichment")) as emulator:
        for n, rows in enumerate((first, edited)):
            source = tmp_path / f"leads{n}.csv"
            with open(source, "w", newline="", encoding="utf-8") as fh:
                csv.writer(fh).writerows([header, *rows])
            config = parse_config(
                {
                    "input": {"path": str(source), "phone_column": "phone"},
                    "output": {"path": str(tmp_path / f"out{n}.csv")},
                    "run": {"state_dir": str(tmp_path / "state")},
                    "providers": {
                        "phone_enrichment": {"base_url": emulator.base_url("phone_enrichment")}
                    },
                },
                "test config",
            )
            assert run(config, transport=recorder).exit_code == 0
            outputs.append(_read(tmp_path / f"out{n}.csv"))
        charged = _charged(emulator, "phone_enrichment")

    sent = recorder.bodies("/v1/enrich/phone")
    assert len(sent) == 3  # three contacts, each asked once, all in the first run
    once, again = outputs
    assert [r["append_status"] for r in once] == ["hit", "no_match", "hit", "hit"]
    assert [r["append_credits"] for r in once] == ["1", "0", "1", "0"]
    assert charged == 2
    # The request carried the first row's row_trace_id; the duplicate shares its answer.
    assert [body["record_id"] for body in sent] == [r["row_trace_id"] for r in once[:3]]
    assert once[3]["append_record_id"] == once[0]["row_trace_id"] != once[3]["row_trace_id"]
    assert once[3]["phone_e164"] == once[0]["phone_e164"] == once[0]["append_phone"] != ""
    # The edited file: new row_trace_ids, the same answers from the cache, nothing paid.
    assert {r["row_trace_id"] for r in again}.isdisjoint(r["row_trace_id"] for r in once)
    assert [r["append_status"] for r in again] == [
        "not_requested",
        *(r["append_status"] for r in once),
    ]
    assert [r["phone_e164"] for r in again[1:]] == [r["phone_e164"] for r in once]
    assert [r["append_credits"] for r in again[1:]] == ["0"] * 4
    assert [r["append_record_id"] for r in again[1:]] == [r["append_record_id"] for r in once]


def test_the_demo_config_enables_every_provider() -> None:
    config = load_config(REPO / DEMO_CONFIG)
    assert set(config.providers.enabled()) == set(ProvidersConfig.model_fields)
    assert set(PREFIX) == set(ProvidersConfig.model_fields)


def test_every_provider_in_one_pass_reconciles_credits_with_each_emulator(
    tmp_path: Path,
) -> None:
    config = _demo_config(tmp_path, 600)
    names = list(config.providers.enabled())
    with Emulator(_fast(*names)) as emulator:
        first = run(against(emulator, config))
        out = pl.read_csv(tmp_path / "out.csv", infer_schema_length=0)
        charged = {name: _charged(emulator, name) for name in names}
        again = run(against(emulator, config), force=True)
        out_again = pl.read_csv(tmp_path / "out.csv", infer_schema_length=0)
        charged_again = {name: _charged(emulator, name) for name in names}

    assert first.exit_code == again.exit_code == 0
    assert out["lead_id"].to_list() == pl.read_csv(tmp_path / "leads.csv")["lead_id"].to_list()
    for name in names:
        figures, column = first.providers[name], f"{PREFIX[name]}_credits"
        assert figures["rows"]["hit"] > 0, name
        assert figures["rows"]["failed"] == 0, name
        # The rows' credits == the report's == what the provider's emulator charged.
        assert out[column].cast(pl.Int64).sum() == figures["credits"] == charged[name] > 0
        # A second pass answers from the ledger: nothing charged, 0 on every row.
        assert again.providers[name]["credits"] == 0, name
        assert again.providers[name]["cache_hits"] > 0, name
        assert out_again[column].cast(pl.Int64).sum() == 0, name
        assert charged_again[name] == charged[name], name
    total = out["credits_total"].cast(pl.Int64).sum()
    assert total == first.credits == sum(charged.values())
    appended = (out["phone_source"] == "appended").sum()
    assert appended == first.providers["phone_enrichment"]["rows"]["hit"] > 0
    assert out_again.drop(_request_ids(out_again)).equals(
        out.drop(_request_ids(out)).with_columns(
            pl.col("^.*_credits$").str.replace(r"^\d+$", "0"), credits_total=pl.lit("0")
        )
    )


def _request_ids(frame: pl.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.endswith("_request_id")]


# ------------------------------------------------------------------- a wrong base_url


@pytest.mark.parametrize("name", list(PREFIX))
def test_a_wrong_base_url_stops_the_lane_at_once(tmp_path: Path, name: str) -> None:
    """Every request would be a 404: the lane stops (exit 3) naming base_url, rather
    than failing the rows one by one."""
    config = _demo_config(tmp_path, 300)
    only = {name: getattr(config.providers, name)}
    with Emulator(_fast(name)) as emulator:
        pointed = against(emulator, config.model_copy(update={
            "providers": type(config.providers)(**only)}))  # fmt: skip
        settings = getattr(pointed.providers, name)
        wrong = settings.model_copy(update={"base_url": settings.base_url + "/nowhere"})
        summary = run(pointed.model_copy(update={
            "providers": pointed.providers.model_copy(update={name: wrong})}))  # fmt: skip
        requests = emulator.state(name)["totals"]["requests"]
    assert summary.exit_code == 3
    figures = summary.providers[name]
    assert "HTTP 404" in figures["stopped"] and "base_url" in figures["stopped"]
    assert figures["rows"]["hit"] == 0 and figures["rows"]["failed"] > 0
    assert 1 <= requests <= settings.max_concurrency  # no more once the first came back


# ------------------------------------------------------------------------- make demo


def test_demo_command_prints_each_provider_beside_what_its_emulator_charged(
    tmp_path: Path,
) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "demo.toml").write_text((REPO / DEMO_CONFIG).read_text())
    config = load_config(tmp_path / "configs" / "demo.toml")
    write_sample(tmp_path / config.input.path, 200, seed=5)
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "demo", "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    table = lines[lines.index(next(line for line in lines if line.startswith("provider "))) :]
    shown = {line.split()[0]: line.split() for line in table[1:-1]}
    assert list(shown) == list(config.providers.enabled())
    for cells in shown.values():
        assert cells[-1] == cells[-2]  # our credits == the emulator's charge
        assert int(cells[-1].replace(",", "")) > 0
    assert table[-1].endswith("they match")
    assert config.output.path is not None and (tmp_path / config.output.path).exists()
