"""Config sections for the providers: the settings every lane takes, and each provider's own.

A section's presence turns its provider on; a config with no ``[providers.*]``
runs normalize-only. Keys never live here: ``api_key_env`` names the environment
variable that holds one, read when the run starts (:func:`api_key`).
"""

from __future__ import annotations

import os
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipeline.errors import ConfigError

CONSENT_DATE_FORMATS = ("%m/%d/%Y", "%Y-%m-%d", "%m/%d/%y", "%Y%m%d")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)  # docstrings: field_docs


class ProviderSettings(_Section):
    base_url: str
    """Where the API lives; point it at `phone-enrich emulate` or a sandbox to try things."""
    api_key_env: str
    """Environment variable that holds the API key (the key itself never goes in a file)."""
    requests_per_minute: float = Field(gt=0)
    """Requests are spaced evenly at this rate (no bursts), whatever window the provider uses."""
    max_concurrency: int = Field(default=64, ge=1, le=256)
    """The most requests in flight at once on this lane: a ceiling. The lane keeps what its
    rate needs at the latency it measures (rate x latency, with margin), at most this."""
    timeout_s: float = Field(default=30.0, gt=0)
    """Seconds to wait for one response before counting the attempt as timed out."""
    max_attempts: int = Field(default=5, ge=1, le=50)
    """Attempts per request (first try included) on 429, 5xx, timeouts; then the rows fail."""
    cache_ttl_days: float = Field(default=30.0, ge=0)
    """Answers from earlier runs younger than this are reused at 0 credits (0 turns it off)."""

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.lower().startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not value or not value.replace("_", "").isalnum():
            raise ValueError("expected the NAME of an environment variable, e.g. DNCSCRUB_LOGIN_ID")
        return value


class TcpaAuthoritySettings(ProviderSettings):
    base_url: str = "https://dataapi.dncscrub.com/v1.5"
    """Where the API lives; point it at `phone-enrich emulate` or a sandbox to try things."""
    api_key_env: str = "DNCSCRUB_LOGIN_ID"
    """Environment variable that holds the DNCScrub loginId."""
    requests_per_minute: float = Field(default=100.0, gt=0)
    """Requests are spaced evenly at this rate (DNCScrub allows 100 a minute)."""
    batch_size: int = Field(default=1000, ge=1, le=1000)
    """Numbers per POST (DNCScrub takes at most 1,000)."""
    sandbox: bool = False
    """Send UseSandbox: DNCScrub answers at random and charges nothing (for trials)."""
    default_consent_date: date | None = None
    """Consent date for rows without a readable one; unset means such rows are invalid_input."""
    credits_per_number: int = Field(default=1, ge=0)
    """What DNCScrub charges per number checked (it does not report charges itself)."""

    @field_validator("default_consent_date", mode="before")
    @classmethod
    def _consent_date(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        for fmt in CONSENT_DATE_FORMATS:
            try:
                return datetime.strptime(value.strip(), fmt).date()
            except ValueError:
                continue
        raise ValueError("expected a date as MM/DD/YYYY, YYYY-MM-DD, MM/DD/YY or YYYYMMDD")


class TdgReversePhoneSettings(ProviderSettings):
    base_url: str = "https://api.tdg1.io"
    """The Data Group's API root (the lane posts to /v3/lookup/phone)."""
    api_key_env: str = "TDG_API_KEY"
    """Environment variable that holds the x-api-key."""
    requests_per_minute: float = Field(default=60.0, gt=0)
    """The ceiling; TDG does not publish its limit, so the lane adapts below it on 429s."""
    credits_per_hit: int = Field(default=1, ge=0)
    """What TDG charges for a found record (it does not report charges itself)."""
    credits_per_no_match: int = Field(default=0, ge=0)
    """What TDG charges for 204 (no record) or 440 (too many results)."""
    regions: tuple[Literal["US", "CA"], ...] = Field(default=("US",), min_length=1)
    """Phone regions looked up: TDG documents U.S. numbers, so a Canadian one would only
    spend the lane's (hidden, scarce) rate on a 204; other rows are not_requested."""


class TdgIdVerifySettings(ProviderSettings):
    base_url: str = "https://api.tdg1.io"
    """The Data Group's API root (the lane posts to /v2/verify/id)."""
    api_key_env: str = "TDG_API_KEY"
    """Environment variable that holds the x-api-key."""
    requests_per_minute: float = Field(default=60.0, gt=0)
    """The ceiling; the lane adapts below it on 429s."""
    columns: dict[str, str] = {}
    """Input column for each of FName, LName, Address1, Zip, Email (Phone is always the
    normalized phone); a row needs at least two of these six present."""
    credits_per_call: int = Field(default=1, ge=0)
    """What TDG charges per verification answered with scores (it reports no charges)."""
    credits_per_no_match: int = Field(default=0, ge=0)
    """What TDG charges for 204 (no record) or 440 (too many results)."""

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        allowed = ("FName", "LName", "Address1", "Zip", "Email")
        for field, column in value.items():
            if field == "Phone":
                raise ValueError(
                    "Phone cannot be mapped: it is always the row's normalized phone "
                    "(input.phone_column)"
                )
            if field not in allowed:
                raise ValueError(f"unknown field {field!r}; expected some of {', '.join(allowed)}")
            if not column.strip():
                raise ValueError(f"{field} = {column!r}: expected the name of an input column")
        return value


class CheckThatPhoneSettings(ProviderSettings):
    base_url: str = "https://api.checkthatphone.com"
    """CheckThatPhone's API root (the lane posts to /v1/lookup)."""
    api_key_env: str = "CHECKTHATPHONE_API_KEY"
    """Environment variable that holds the Bearer token."""
    requests_per_minute: float = Field(default=60.0, gt=0)
    """Requests are spaced evenly at this rate."""
    litigator_filter: bool = False
    """Check the TCPA litigator database too (+1 credit per lookup)."""
    landline_sms_lookup: bool = False
    """SMS eligibility for landlines (+1 credit per landline)."""
    ip_column: str | None = None
    """Input column with the lead's IP address, sent as ``ip`` when present."""


class PhoneEnrichmentSettings(ProviderSettings):
    base_url: str
    """The phone-enrichment API root (the lane posts to /v1/enrich/phone)."""
    api_key_env: str = "PHONE_ENRICHMENT_API_KEY"
    """Environment variable that holds the Bearer token."""
    requests_per_minute: float = Field(default=60.0, gt=0)
    """Requests are spaced evenly at this rate; a retry_after in an answer is honoured."""
    columns: dict[str, str] = {}
    """Input column for each of first_name, last_name, company, email, linkedin_id, domain."""
    credits_per_hit: int = Field(default=1, ge=0)
    """What the API charges when it finds a phone."""
    credits_per_no_match: int = Field(default=0, ge=0)
    """What the API charges when it finds none."""

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        allowed = ("first_name", "last_name", "company", "email", "linkedin_id", "domain")
        unknown = [k for k in value if k not in allowed]
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r}; expected some of {', '.join(allowed)}")
        return value


class ProvidersConfig(_Section):
    phone_enrichment: PhoneEnrichmentSettings | None = None
    """Phone append from name + company/domain, LinkedIn id or email; runs first."""
    tcpa_authority: TcpaAuthoritySettings | None = None
    """DNCScrub TCPA Authority: reassigned-number check against each row's consent date."""
    tdg_reverse_phone: TdgReversePhoneSettings | None = None
    """The Data Group reverse phone append: name and address of the number's owner."""
    tdg_id_verify: TdgIdVerifySettings | None = None
    """The Data Group ID verify: scores of how well the row's identity fits the phone."""
    checkthatphone: CheckThatPhoneSettings | None = None
    """CheckThatPhone: line type, litigator and deliverability."""

    def enabled(self) -> dict[str, ProviderSettings]:
        """The configured providers by name, in the order their lanes run."""
        return {
            name: settings
            for name in type(self).model_fields
            if (settings := getattr(self, name)) is not None
        }


def has_api_key(settings: ProviderSettings) -> bool:
    """Whether the provider's key is in the environment (``estimate`` runs without it)."""
    return bool((os.environ.get(settings.api_key_env) or "").strip())


def api_key(name: str, settings: ProviderSettings) -> str:
    """The provider's key from the environment; a clear error (never the value) if unset
    or blank. Unset and empty are told apart: an empty one is usually a secret that
    did not resolve (``KEY=$UNSET_VAR``, an empty CI secret), not a missing export."""
    raw = os.environ.get(settings.api_key_env)
    value = (raw or "").strip()
    if not value:
        what = "is not set" if raw is None else "is empty" if raw == "" else "holds only whitespace"
        raise ConfigError(
            f"providers.{name}: environment variable {settings.api_key_env} {what} "
            f"(it must hold the API key; see providers.{name}.api_key_env)"
        )
    return value
