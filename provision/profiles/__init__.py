"""Built-in metric profiles, one module each, and the lookup by name."""

from __future__ import annotations

from provision.contract import Profile
from provision.profiles import holysheep

BUILTIN: dict[str, Profile] = {
    holysheep.PROFILE.name: holysheep.PROFILE,
}
DEFAULT = holysheep.PROFILE.name


class UnknownProfile(ValueError):
    pass


def get_profile(name: str, custom: dict | None = None) -> Profile:
    """The profile called `name`; `custom` describes it when name is 'custom'."""
    if name in BUILTIN:
        return BUILTIN[name]
    known = ", ".join(sorted(BUILTIN))
    raise UnknownProfile(f"unknown profile {name!r}; known profiles: {known}")
