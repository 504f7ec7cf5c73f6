"""What the two rule-group kinds share: durations compared by value, path segments,
and the readable text their diffs are made of."""

from __future__ import annotations

import difflib
from typing import Any
from urllib.parse import quote

import yaml

from provision.promql import duration, duration_seconds


def canonical_duration(value: Any) -> Any:
    """A duration string in one spelling (`60m`, `1h` and `3600s` all become `1h`), so a
    server that rewrites durations compares equal; anything unparseable is left as it is."""
    if not isinstance(value, str):
        return value
    if value.strip() in ("0", ""):
        return "0s"
    try:
        return duration(duration_seconds(value))
    except ValueError:
        return value


def whole_numbers(value: Any) -> Any:
    """Floats that are whole numbers as ints, all the way down: Go's JSON hands back
    600 for 600 but Python reads some servers' 600.0, and a hash must not see the difference."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    return value


def segment(text: str) -> str:
    """One URL path segment: a group or namespace name may hold spaces or slashes."""
    return quote(text, safe="")


def names(items: list[str], limit: int = 3) -> str:
    """`a, b, c and 2 more`."""
    shown = ", ".join(items[:limit])
    return f"{shown} and {len(items) - limit} more" if len(items) > limit else shown


class _Dumper(yaml.SafeDumper):
    pass


def _string(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    # Multi-line PromQL as a literal block: a changed threshold is one changed line in a diff.
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _string)


def readable(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True,
                     width=10_000)


def unified(old: Any, new: Any, old_name: str, new_name: str) -> str:
    """A unified diff of two structures as readable YAML."""
    lines = difflib.unified_diff(readable(old).splitlines(keepends=True), readable(new).splitlines(keepends=True),
                                 old_name, new_name)
    return "".join(lines)
