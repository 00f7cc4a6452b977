"""Phone enrichment: POST /v1/enrich/phone, Bearer key, one record per request; a phone
found for a row without a valid one becomes its phone (``phone_source = appended``)."""

from __future__ import annotations

from contract_cases import Case, Contract

# What the emulator finds is a function of the contact fields (see its lookup()).
BY_NAME = {"first_name": "Ada", "last_name": "Lovelace", "company": "Analytical Engines"}
BY_NAME_PHONE = "+16042464989"  # a Vancouver number: phone_region CA
BY_DOMAIN = {"first_name": "Linus", "last_name": "T", "domain": "kernel.org"}  # finds more
BY_EMAIL = {"email": "alan@turing.org"}
BY_LINKEDIN = {"linkedin": "jane-roe-002"}
NOT_FOUND = {"first_name": "Ada", "last_name": "Lovelace", "company": "Babbage"}
FICTIONAL = {"email": "someone@example.com"}  # reserved domain: never found

STOP = "the lane stops, the run exits 3 and resumes later"

CONTRACT = Contract(
    provider="phone_enrichment",
    prefix="append",
    key_env="PHONE_ENRICHMENT_API_KEY",
    columns=["phone", "first_name", "last_name", "company", "email", "linkedin", "domain"],
    settings={"columns": {"linkedin_id": "linkedin"}},
    cases=[
        Case(
            "200 with a phone is a hit; the phone found becomes the row's phone",
            [BY_NAME, {**BY_DOMAIN, "phone": "555-01"}],
            ["hit", "hit"],
            credits=[1, 1],
            requests=2,
            expect=[
                {
                    "phone": None,  # untouched: an empty unquoted field reads as null
                    "append_phone": BY_NAME_PHONE,
                    "append_email": None,
                    "append_linkedin_id": None,
                    "append_record_id": "R0001",
                    "phone_source": "appended",
                    "phone_normalized": "6042464989",
                    "phone_e164": BY_NAME_PHONE,
                    "phone_valid": "true",
                    "phone_reject_reason": None,
                    "phone_region": "CA",
                    "credits_total": "1",
                },
                {
                    "phone": "555-01",
                    "append_phone": "+16046972183",
                    "append_email": "linus.t@kernel.org",  # a real address, dot kept
                    "append_linkedin_id": "linus-t-114936",
                    "phone_source": "appended",
                    "phone_e164": "+16046972183",
                    "phone_valid": "true",
                    "phone_reject_reason": None,
                },
            ],
        ),
        Case(
            "LinkedIn id alone and email alone are enough",
            [BY_LINKEDIN, BY_EMAIL],
            ["hit", "hit"],
            credits=[1, 1],
            requests=2,
            expect=[
                {"append_phone": "+12067278912", "append_linkedin_id": "jane-roe-002"},
                {
                    "append_phone": "+16503902455",
                    "append_email": "alan@turing.org",
                    "append_linkedin_id": "alan-039281",
                    "phone_source": "appended",
                },
            ],
        ),
        Case(
            "200 with a null phone is no_match, free; the row keeps no phone",
            [NOT_FOUND, FICTIONAL],
            ["no_match", "no_match"],
            credits=[0, 0],
            requests=2,
            expect=[
                {
                    "append_phone": None,
                    "phone_e164": None,
                    "phone_valid": "false",
                    "phone_source": None,
                    "credits_total": "0",
                },
                {"append_phone": None, "append_email": "someone@example.com"},
            ],
        ),
        Case(
            "rows that need no lookup are not_requested and nothing is sent",
            [
                {**BY_NAME, "phone": "212-422-5838"},  # a valid phone: nothing to find
                {"first_name": "Ada", "last_name": "Lovelace"},  # no company or domain
                {"first_name": "Ada", "company": "Analytical Engines"},  # no last name
                {"company": "Analytical Engines", "domain": "ae.example"},  # no name
                {"first_name": " ", "last_name": " ", "company": " ", "email": "  "},
            ],
            ["not_requested"] * 5,
            credits=[0] * 5,
            requests=0,
            expect=[
                {"phone_source": "input", "phone_e164": "+12124225838", "append_phone": None},
                {"phone_source": None, "append_record_id": None},
            ],
        ),
        Case(
            "record_id is the id column value, trimmed",
            [{**BY_NAME, "id": "  lead-42 "}, {**BY_EMAIL, "id": "lead-43"}],
            ["hit", "hit"],
            requests=2,
            expect=[{"append_record_id": "lead-42"}, {"append_record_id": "lead-43"}],
        ),
        Case(
            "a blank id: record_id is the row_trace_id",
            [{**BY_NAME, "id": ""}, {**NOT_FOUND, "id": "   "}],
            ["hit", "no_match"],
            requests=2,
            same=[("append_record_id", "row_trace_id")],
        ),
        Case(
            "the same contact is looked up once, under the first row's record_id, "
            "whatever the other rows' ids",
            [{**BY_NAME, "id": "X"}, {**BY_NAME, "id": "X"}, {**BY_NAME, "id": "Y"}],
            ["hit", "hit", "hit"],
            credits=[1, 0, 0],
            requests=1,
            expect=[{"append_record_id": "X", "append_phone": BY_NAME_PHONE}] * 3,
        ),
        Case(
            "422 is invalid_input, free and never retried",
            [BY_NAME],
            ["invalid_input"],
            error=["HTTP 422"],
            faults=[422],
            credits=[0],
            requests=1,
        ),
        Case(
            "400 is invalid_input, free and never retried",
            [BY_NAME, BY_EMAIL],
            ["invalid_input", "hit"],
            error=["HTTP 400: emulated fault 400", None],
            faults=[400],
            settings={"max_concurrency": 1},
            credits=[0, 1],
            requests=2,
        ),
        Case(
            f"401 stops the lane: {STOP}",
            [BY_NAME, BY_EMAIL],
            ["failed", "failed"],
            error=["HTTP 401", "HTTP 401"],
            api_key="nope",
            settings={"max_concurrency": 1},
            exit_code=3,
            credits=[0, 0],
            requests=1,
        ),
        Case(
            f"403 stops the lane: {STOP}",
            [BY_NAME, BY_EMAIL],
            ["failed", "failed"],
            error=["HTTP 403", "HTTP 403"],
            knobs={"unauthorised_keys": {"emulator-key"}},
            settings={"max_concurrency": 1},
            exit_code=3,
            credits=[0, 0],
            requests=1,
        ),
        Case(
            f"402 insufficient credits stops the lane: {STOP}",
            [BY_NAME, BY_EMAIL],
            ["failed", "failed"],
            error=["out of credits: 1 required, 0 remaining"] * 2,
            knobs={"keys": {"emulator-key": 0}},
            settings={"max_concurrency": 1},
            exit_code=3,
            credits=[0, 0],
            requests=1,
        ),
        Case(
            f"a bare 402 stops the lane too: {STOP}",
            [BY_NAME],
            ["failed"],
            error=["HTTP 402"],
            faults=[402],
            exit_code=3,
            credits=[0],
            requests=1,
        ),
        Case(
            "429 is retried after the body's retry_after (2 s), not the header's 1 s",
            [BY_NAME],
            ["hit"],
            faults=[429],
            credits=[1],
            requests=2,
            min_gap_s=2.0,
        ),
        Case(
            "429 until max_attempts fails the row, retryable; every wait honoured",
            [BY_NAME],
            ["failed"],
            error=["gave up after 3 attempts: Phone enrichment: HTTP 429"],
            faults=[429, 429, 429],
            exit_code=1,
            credits=[0],
            requests=3,
            min_gap_s=2.0,
        ),
        Case("500 is retried", [BY_NAME], ["hit"], faults=[500], credits=[1], requests=2),
        Case(
            "5xx until max_attempts fails the row, retryable",
            [BY_NAME],
            ["failed"],
            error=["gave up after 3 attempts: Phone enrichment: HTTP 503"],
            faults=[500, 502, 503],
            exit_code=1,
            credits=[0],
            requests=3,
        ),
        Case(
            "a garbled 200 is retried",
            [BY_DOMAIN],
            ["hit"],
            faults=["malformed"],
            credits=[1],
            requests=2,
            expect=[{"append_email": "linus.t@kernel.org"}],
        ),
        Case(
            "a timeout is retried",
            [BY_NAME],
            ["hit"],
            faults=["timeout"],
            knobs={"hang_s": 1.0},
            settings={"timeout_s": 0.3},
            credits=[1],
            requests=2,
        ),
    ],
)
