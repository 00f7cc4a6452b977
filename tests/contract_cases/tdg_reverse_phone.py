"""TDG reverse phone: POST /v3/lookup/phone, x-api-key, one number per request; every
status TDG documents (200, 204, 400, 401, 429, 440, 500)."""

from __future__ import annotations

from contract_cases import Case, Contract

# What the emulator answers is a function of the number (see its outcome() and record()).
FOUND = {"phone": "(212) 423-3757"}  # 200: Maria A Brown, 2640 Main Rd Apt, New York
FOUND_TOO = {"phone": "212-422-5838"}  # 200: Emma J Garcia, not deliverable
NO_RECORD = {"phone": "212-421-0000"}  # 204
CANADIAN = {"phone": "416-234-5678"}  # 204: TDG's data is US only
TOO_MANY = {"phone": "212-422-0023"}  # 440
FICTIONAL = {"phone": "312-555-0199"}  # valid to libphonenumber; TDG answers 400

CONTRACT = Contract(
    provider="tdg_reverse_phone",
    prefix="tdg",
    key_env="TDG_API_KEY",
    columns=["phone"],
    cases=[
        Case(
            "200 maps Name and Address into columns",
            [FOUND, FOUND_TOO],
            ["hit", "hit"],
            credits=[1, 1],
            requests=2,
            expect=[
                {
                    "tdg_first_name": "Maria",
                    "tdg_middle_name": "A",
                    "tdg_last_name": "Brown",
                    "tdg_house": "2640",
                    "tdg_pre_dir": None,  # "" from TDG is blank
                    "tdg_street": "Main",
                    "tdg_street_type": "Rd",
                    "tdg_post_dir": None,
                    "tdg_apt_type": "Apt",
                    "tdg_city": "New York",
                    "tdg_state": "NY",
                    "tdg_zip": "10017",
                    "tdg_zip4": "0948",
                    "tdg_county": "New York",
                    "tdg_deliverable": "true",
                    "tdg_validation_date": "4/24/2024",
                    "credits_total": "1",
                },
                {
                    "tdg_first_name": "Emma",
                    "tdg_last_name": "Garcia",
                    "tdg_apt_type": None,
                    "tdg_deliverable": "false",
                },
            ],
        ),
        Case(
            "204 is no_match, free",
            [NO_RECORD, CANADIAN],
            ["no_match", "no_match"],
            credits=[0, 0],
            requests=2,
            settings={"regions": ["US", "CA"]},
            expect=[{"tdg_last_name": None, "tdg_trace": None}] * 2,
        ),
        Case(
            "a Canadian number is not sent by default (TDG documents U.S. numbers)",
            [CANADIAN, NO_RECORD],
            ["not_requested", "no_match"],
            credits=[0, 0],
            requests=1,
            expect=[{"phone_region": "CA", "tdg_error": None}, {"phone_region": "US"}],
        ),
        Case(
            "440 is no_match with the reason, free, never retried",
            [TOO_MANY],
            ["no_match"],
            error=["too many results"],
            credits=[0],
            requests=1,
        ),
        Case(
            "prices are the config's (TDG reports none); 204 and 440 cost nothing",
            [NO_RECORD, TOO_MANY, FOUND],
            ["no_match", "no_match", "hit"],
            error=[None, "HTTP 440", None],
            credits=[0, 0, 2],
            settings={"credits_per_hit": 2},
            knobs={"credits_per_number": 2},
        ),
        Case(
            "duplicates are looked up once, credits on the first row",
            [FOUND, {"phone": "+1 212 423 3757"}, NO_RECORD],
            ["hit", "hit", "no_match"],
            credits=[1, 0, 0],
            requests=2,
        ),
        Case(
            "400 is invalid_input, free and never retried",
            [FICTIONAL, FOUND],
            ["invalid_input", "hit"],
            error=["HTTP 400: Missing required parameter(s)", None],
            credits=[0, 1],
            requests=2,
        ),
        Case(
            "401 stops the run",
            [FOUND],
            ["failed"],
            error=["HTTP 401"],
            api_key="nope",
            exit_code=3,
            credits=[0],
            requests=1,
        ),
        Case(
            "a key out of credits is refused (401): the run stops",
            [FOUND, FOUND_TOO],
            ["failed", "failed"],
            error=["HTTP 401", "HTTP 401"],
            knobs={"keys": {"emulator-key": 0}},
            settings={"max_concurrency": 1},
            exit_code=3,
            credits=[0, 0],
            requests=1,
        ),
        Case("429 is retried", [FOUND], ["hit"], faults=[429], requests=2, credits=[1]),
        Case(
            "429 until max_attempts fails the row, retryable",
            [FOUND],
            ["failed"],
            error=["gave up after 3 attempts"],
            faults=[429, 429, 429],
            exit_code=1,
            credits=[0],
            requests=3,
        ),
        Case("500 is retried", [FOUND], ["hit"], faults=[500], requests=2, credits=[1]),
        Case(
            "500 until max_attempts fails the row",
            [NO_RECORD],
            ["failed"],
            error=["gave up after 3 attempts"],
            faults=[500, 500, 503],
            exit_code=1,
            credits=[0],
            requests=3,
        ),
        Case(
            "a garbled 200 is retried",
            [FOUND],
            ["hit"],
            faults=["malformed"],
            requests=2,
            credits=[1],
        ),
        Case(
            "a timeout is retried",
            [FOUND],
            ["hit"],
            faults=["timeout"],
            knobs={"hang_s": 1.0},
            settings={"timeout_s": 0.3},
            requests=2,
            credits=[1],
        ),
    ],
)
