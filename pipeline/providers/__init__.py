"""The provider APIs, one module each, and how a config turns them on."""

from __future__ import annotations

from pipeline.config import Config
from pipeline.provider_config import api_key
from pipeline.providers.base import Provider
from pipeline.providers.tcpa_authority import TcpaAuthority

__all__ = ["Provider", "build_providers"]


def build_providers(config: Config) -> list[Provider]:
    """The enabled providers, in lane order, each with its key from the environment."""
    providers: list[Provider] = []
    settings = config.providers.tcpa_authority
    if settings is not None:
        providers.append(
            TcpaAuthority(
                settings,
                api_key("tcpa_authority", settings),
                has_consent_dates=config.input.consent_date_column is not None,
            )
        )
    return providers
