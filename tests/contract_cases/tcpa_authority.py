"""TCPA Authority: POST /Data/TCPAAuthority, header loginId, batches of numbers."""

from __future__ import annotations

from contract_cases import Case, Contract

A = {"phone": "707-527-6405", "consent_date": "02/09/2021"}  # the documented example
B = {"phone": "312-555-7788", "consent_date": "2019-05-01"}
FICTIONAL = {"phone": "212-555-0150", "consent_date": "2019-05-01"}

CONTRACT = Contract(
    provider="tcpa_authority",
    prefix="tcpa",
    key_env="DNCSCRUB_LOGIN_ID",
    columns=["phone", "consent_date"],
    consent_date_column="consent_date",
    cases=[
        Case(
            "200 answers every number",
            [A, B],
            ["hit", "hit"],
            credits=[1, 1],
            expect=[{"tcpa_is_reassigned": "false", "tcpa_carrier": "AT&T California"}, {}],
        ),
        Case(
            "400 is split to the bad number",
            [A, FICTIONAL, B],
            ["hit", "invalid_input", "hit"],
            error=[None, "HTTP 400", None],
            credits=[1, 0, 1],
        ),
        Case("401 stops the run", [A], ["failed"], error=["HTTP 401"], api_key="nope", exit_code=3),
        Case(
            "403 stops the run",
            [A],
            ["failed"],
            error=["HTTP 403"],
            knobs={"unauthorised_keys": {"emulator-key"}},
            exit_code=3,
        ),
        Case("429 is retried", [A], ["hit"], faults=[429], requests=2, credits=[1]),
        Case("500 is retried", [A], ["hit"], faults=[500], requests=2, credits=[1]),
        Case(
            "5xx until max_attempts fails the row",
            [A],
            ["failed"],
            error=["gave up after 3 attempts"],
            faults=[500, 502, 503],
            exit_code=1,
            credits=[0],
        ),
        Case("a garbled 200 is retried", [A], ["hit"], faults=["malformed"], requests=2),
        Case(
            "a timeout is retried",
            [A],
            ["hit"],
            faults=["timeout"],
            knobs={"hang_s": 1.0},
            settings={"timeout_s": 0.3},
            requests=2,
        ),
    ],
)
