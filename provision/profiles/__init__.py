"""Built-in metric profiles, one module each, the `custom` one from config, and the lookup by name.

Each built-in module exposes `NAME`, `OPTIONS` (its defaults under
`profile_options.<name>` in relaywatch.yaml) and `profile(options)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provision.contract import Profile
from provision.profiles import custom, holysheep, litellm, otel_genai, vllm
from provision.profiles.custom import ProfileError

MODULES = {module.NAME: module for module in (holysheep, otel_genai, litellm, vllm)}
BUILTIN: dict[str, Profile] = {name: module.profile() for name, module in MODULES.items()}
DEFAULT = holysheep.NAME
CUSTOM = custom.NAME

__all__ = ["BUILTIN", "CUSTOM", "DEFAULT", "ProfileError", "UnknownProfile", "get_profile", "profile_names"]


class UnknownProfile(ValueError):
    pass


def profile_names() -> list[str]:
    return [*sorted(BUILTIN), CUSTOM]


def get_profile(name: str, settings: Mapping[str, Any] | None = None) -> Profile:
    """The profile called `name`, built with the config's `profile_options.<name>`.

    `settings` is the whole configuration mapping; the `custom` profile is read
    from its `custom_profile` section. Raises UnknownProfile or ProfileError.
    """
    settings = settings or {}
    if name == CUSTOM:
        return custom.from_config(settings.get("custom_profile"))
    if name not in MODULES:
        raise UnknownProfile(f"unknown profile {name!r}; known profiles: {', '.join(profile_names())}")
    options = (settings.get("profile_options") or {}).get(name)
    return MODULES[name].profile(options) if options else BUILTIN[name]
