"""The provider APIs, one module each, and how a config turns them on.

Each module ``pipeline.providers.<name>`` (named after its config section) has a
``build(settings, api_key, config) -> Provider``; adding a provider is adding its
module and its settings class in :mod:`pipeline.provider_config`.
"""

from __future__ import annotations

import importlib

from pipeline.config import Config
from pipeline.provider_config import api_key, has_api_key
from pipeline.providers.base import Provider, answer_scope

__all__ = ["Provider", "build_providers"]


def build_providers(config: Config, *, require_keys: bool = True) -> list[Provider]:
    """The enabled providers, in lane order, each with its key from the environment.

    Without ``require_keys`` (``estimate``: it makes no call) a provider whose key is not
    set gets an empty one instead of an error. Its answer scope (:func:`answer_scope`)
    then matches no answer bought with a key: the caller must not count its cache."""
    providers: list[Provider] = []
    for name, settings in config.providers.enabled().items():
        module = importlib.import_module(f"pipeline.providers.{name}")
        key = api_key(name, settings) if require_keys or has_api_key(settings) else ""
        provider: Provider = module.build(settings, key, config)
        provider.scope = answer_scope(settings.base_url, key)
        providers.append(provider)
    return providers
