"""CheckThatPhone: POST /v1/lookup, Bearer key, one number per request, X-Credits-Used."""

from __future__ import annotations

from contract_cases import Case, Contract

EXAMPLE = {"phone": "(818) 292-5409"}  # the documented example: mobile, DIP carrier AT&T
MOBILE = {"phone": "212-422-5838"}  # mobile, "send"
LANDLINE = {"phone": "212-421-0000"}  # landline, not SMS-enabled
SMS_LANDLINE = {"phone": "212-435-2542"}  # landline, SMS-enabled
LITIGATOR = {"phone": "212-423-3757"}  # a litigator with a name on record
FICTIONAL = {"phone": "212-555-0150"}  # valid to libphonenumber; the API answers action=error
WITH_IP = {"phone": "212-422-5838", "ip": " 203.0.113.7 "}

BOTH = {"litigator_filter": True, "landline_sms_lookup": True}

CONTRACT = Contract(
    provider="checkthatphone",
    prefix="ctp",
    key_env="CHECKTHATPHONE_API_KEY",
    columns=["phone", "ip"],
    settings={"ip_column": "ip"},
    cases=[
        Case(
            "200 answers line type, DIP carrier and deliverability",
            [EXAMPLE, LANDLINE],
            ["hit", "hit"],
            credits=[1, 1],
            requests=2,
            expect=[
                {
                    "ctp_subscriber": "8182925409",
                    "ctp_action": "send",
                    "ctp_deliverable": "true",
                    "ctp_nanp_type": "mobile",
                    "ctp_nanp_carrier": "verizon",
                    "ctp_dip": "success",
                    "ctp_dip_lrn": "8182925409",
                    "ctp_dip_ported": "false",
                    "ctp_dip_ocn": "6010",
                    "ctp_dip_carrier": "AT&T",
                    "ctp_dip_carrier_type": "mobile",
                    "ctp_dip_carrier_sub_type": "WIRELESS",
                    "ctp_geo_source": "area-code",
                    "ctp_litigator": None,  # not asked for: not in the answer
                    "ctp_dip_messaging_lookup": None,
                },
                {
                    "ctp_nanp_type": "landline",
                    "ctp_action": "unsubscribe",
                    "ctp_reason": "Not a valid mobile number",
                    "ctp_deliverable": "false",
                },
            ],
        ),
        Case(
            "200 with the litigator filter: litigator fields, +1 credit",
            [LITIGATOR, MOBILE],
            ["hit", "hit"],
            credits=[2, 2],
            settings={"litigator_filter": True},
            expect=[
                {
                    "ctp_litigator": "true",
                    "ctp_litigator_type": "plaintiff",
                    "ctp_litigator_name": "Priya Samplewood",
                    "ctp_action": "unsubscribe",
                    "ctp_reason": "Associated with TCPA Litigator DO NOT CONTACT",
                    "ctp_black_list": "true",
                },
                {"ctp_litigator": "false", "ctp_litigator_name": None, "ctp_action": "send"},
            ],
        ),
        Case(
            "landline SMS lookup: +1 credit on landlines only",
            [MOBILE, LANDLINE, SMS_LANDLINE],
            ["hit", "hit", "hit"],
            credits=[1, 2, 2],
            settings={"landline_sms_lookup": True},
            expect=[
                {"ctp_dip_messaging_lookup": "false", "ctp_dip_messaging_enabled": "false"},
                {"ctp_dip_messaging_lookup": "true", "ctp_dip_messaging_enabled": "false"},
                {
                    "ctp_dip_messaging_lookup": "true",
                    "ctp_dip_messaging_enabled": "true",
                    "ctp_action": "send",
                },
            ],
        ),
        Case(
            "both options: 2 credits per mobile, 3 per landline",
            [MOBILE, LANDLINE],
            ["hit", "hit"],
            credits=[2, 3],
            settings=BOTH,
        ),
        Case(
            "the ip is sent and changes the geo answer",
            [WITH_IP],
            ["hit"],
            credits=[1],
            expect=[{"ctp_ip_result": "valid-v4", "ctp_geo_source": "ip"}],
        ),
        Case(
            "duplicates are looked up once, credits on the first row",
            [MOBILE, {"phone": "+1 212 422 5838"}, LANDLINE],
            ["hit", "hit", "hit"],
            credits=[2, 0, 3],
            settings=BOTH,
            requests=2,
        ),
        Case(
            "200 action=error is invalid_input, free and never retried",
            [FICTIONAL, MOBILE],
            ["invalid_input", "hit"],
            error=["action=error: Invalid phone number", None],
            credits=[0, 2],
            settings=BOTH,
            requests=2,
        ),
        Case(
            "401 stops the run",
            [MOBILE],
            ["failed"],
            error=["HTTP 401"],
            api_key="nope",
            exit_code=3,
            credits=[0],
            requests=1,
        ),
        Case(
            "429 quota used up stops the run",
            [MOBILE, LANDLINE],
            ["failed", "failed"],
            error=["quota", "quota"],
            knobs={"keys": {"emulator-key": 0}},
            settings={"max_concurrency": 1},
            exit_code=3,
            credits=[0, 0],
            requests=1,
        ),
        Case("429 is retried", [MOBILE], ["hit"], faults=[429], requests=2, credits=[1]),
        Case(
            "429 until max_attempts fails the row, retryable",
            [MOBILE],
            ["failed"],
            error=["gave up after 3 attempts"],
            faults=[429, 429, 429],
            exit_code=1,
            credits=[0],
            requests=3,
        ),
        Case(
            "502 is retried and not charged",
            [LANDLINE],
            ["hit"],
            faults=[502],
            settings=BOTH,
            requests=2,
            credits=[3],
        ),
        Case(
            "5xx until max_attempts fails the row",
            [MOBILE],
            ["failed"],
            error=["gave up after 3 attempts"],
            faults=[502, 500, 503],
            exit_code=1,
            credits=[0],
            requests=3,
        ),
        Case(
            "a garbled 200 is retried",
            [LITIGATOR],
            ["hit"],
            faults=["malformed"],
            settings={"litigator_filter": True},
            requests=2,
            credits=[2],
        ),
        Case(
            "a timeout is retried",
            [MOBILE],
            ["hit"],
            faults=["timeout"],
            knobs={"hang_s": 1.0},
            settings={"timeout_s": 0.3},
            requests=2,
            credits=[1],
        ),
    ],
)
