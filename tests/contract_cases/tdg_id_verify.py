"""TDG ID verify: POST /v2/verify/id, x-api-key, one identity per request; at least two
of FName, LName, Address1, Zip, Phone, Email or nothing is sent; IDScores as columns;
every status TDG documents (200, 204, 400, 401, 429, 440, 500)."""

from __future__ import annotations

from contract_cases import Case, Contract

# What the emulator answers is a function of the fields (see its found() and scores()).
ADA = {
    "phone": "(212) 423-3757",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "address": " 12 Analytical Way ",
    "zip": "10001",
    "email": "ada@engines.org",
}
GRACE = {"phone": "212-422-5838", "first_name": "Grace", "last_name": "Hopper"}
NO_PHONE = {"phone": "", "last_name": "Turing", "zip": "10001-2345"}  # ZIP+4 sent as 10001
NO_RECORD = {"phone": "212-423-3757", "first_name": "N15", "last_name": "Doe"}  # 204
FICTIONAL = {"phone": "312-555-0199", "last_name": "Roe"}  # TDG answers 400

CONTRACT = Contract(
    provider="tdg_id_verify",
    prefix="tdgid",
    key_env="TDG_API_KEY",
    columns=["phone", "first_name", "last_name", "address", "zip", "email"],
    settings={
        "columns": {
            "FName": "first_name",
            "LName": "last_name",
            "Address1": "address",
            "Zip": "zip",
            "Email": "email",
        }
    },
    cases=[
        Case(
            "200 puts each IDScore in its column, typed",
            [ADA, GRACE],
            ["hit", "hit"],
            credits=[1, 1],
            requests=2,
            expect=[
                {
                    "tdgid_valid_address": "100",
                    "tdgid_valid_phone": "100",
                    "tdgid_valid_zip": "0",
                    "tdgid_deceased": "100",
                    "tdgid_name_to_email": "0",
                    "tdgid_address_to_phone": "100",
                    "tdgid_us_location": "Y",
                    "tdgid_valid_phone2": None,  # "" from TDG: not verified
                    "tdgid_phone_confidence_score": "40",
                    "tdgid_address_confidence_score": "62",
                    "tdgid_valid_count": "4.0",
                    "tdgid_linkage_count": "4.0",
                    "tdgid_risk_flag_count": "0.0",
                    "tdgid_validation_summary": "PASS",
                    "tdgid_linkage_summary": "PASS",
                    "tdgid_risk_flag_summary": "PASS",
                    "tdgid_id_verify_score": "100",
                    "credits_total": "1",
                },
                {
                    "tdgid_valid_name": "100",
                    "tdgid_valid_address": None,  # not sent: not scored
                    "tdgid_name_to_phone": "0",
                    "tdgid_linkage_summary": "FAIL",
                    "tdgid_id_verify_score": "40",
                },
            ],
        ),
        Case(
            "without a valid phone, two other fields are enough; a ZIP+4 is sent as its 5",
            [NO_PHONE],
            ["hit"],
            credits=[1],
            requests=1,
            expect=[{"tdgid_valid_zip": "100", "tdgid_valid_phone": None}],
        ),
        Case(
            "fewer than two fields is invalid_input, nothing sent",
            [
                {"phone": "212-423-3757"},
                {"phone": "", "email": "ada@engines.org"},
                {"phone": "not a phone", "first_name": "  "},
            ],
            ["invalid_input"] * 3,
            error=[
                "needs at least two of FName, LName, Address1, Zip, Phone, Email; "
                "this row has only Phone",
                "this row has only Email",
                "this row has none",
            ],
            credits=[0, 0, 0],
            requests=0,
        ),
        Case(
            "TDG's field limits are checked before sending",
            [
                {**GRACE, "last_name": "Wolfeschlegelsteinhausen"},
                {**GRACE, "zip": "1234"},
                {**GRACE, "email": "grace.navy.mil"},
                GRACE,
            ],
            ["invalid_input", "invalid_input", "invalid_input", "hit"],
            error=[
                "LName is longer than TDG's 20 characters",
                "Zip 1234 is not a 5-digit ZIP",
                "Email is not an email address",
                None,
            ],
            credits=[0, 0, 0, 1],
            requests=1,
        ),
        Case(
            "duplicates are verified once, credits on the first row",
            [GRACE, {**GRACE, "phone": "+1 212 422 5838", "last_name": " Hopper"}, ADA],
            ["hit", "hit", "hit"],
            credits=[1, 0, 1],
            requests=2,
        ),
        Case(
            "204 is no_match, free",
            [NO_RECORD],
            ["no_match"],
            credits=[0],
            requests=1,
            expect=[{"tdgid_id_verify_score": None}],
        ),
        Case(
            "440 is no_match with the reason, free, never retried",
            [ADA],
            ["no_match"],
            error=["too many results"],
            faults=[440],
            credits=[0],
            requests=1,
        ),
        Case(
            "400 is invalid_input, free and never retried",
            [FICTIONAL, GRACE],
            ["invalid_input", "hit"],
            error=["HTTP 400: Missing required parameter(s)", None],
            credits=[0, 1],
            requests=2,
        ),
        Case(
            "401 stops the run",
            [ADA],
            ["failed"],
            error=["HTTP 401"],
            api_key="nope",
            exit_code=3,
            credits=[0],
            requests=1,
        ),
        Case("429 is retried", [ADA], ["hit"], faults=[429], requests=2, credits=[1]),
        Case(
            "429 until max_attempts fails the row, retryable",
            [ADA],
            ["failed"],
            error=["gave up after 3 attempts"],
            faults=[429, 429, 429],
            exit_code=1,
            credits=[0],
            requests=3,
        ),
        Case("500 is retried", [GRACE], ["hit"], faults=[500], requests=2, credits=[1]),
        Case(
            "500 until max_attempts fails the row",
            [GRACE],
            ["failed"],
            error=["gave up after 3 attempts"],
            faults=[500, 502, 500],
            exit_code=1,
            credits=[0],
            requests=3,
        ),
        Case(
            "a garbled 200 is retried",
            [ADA],
            ["hit"],
            faults=["malformed"],
            requests=2,
            credits=[1],
        ),
    ],
)
