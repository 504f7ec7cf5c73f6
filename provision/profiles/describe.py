"""Text descriptions of profiles for `provision profiles`: a support table and one profile's mapping."""

from __future__ import annotations

from provision import promql
from provision.contract import ALL_ROLES, STATUS_BREAKDOWN, Profile

SHORT = {
    "requests": "requests", "succeeded": "ok", "failed": "failed", "rate_limited": "429", "unauthorized": "401",
    "status": "status", "latency": "latency", "prompt_tokens": "prompt", "completion_tokens": "completion",
    "inflight": "inflight",
}


def support_table(profiles: dict[str, Profile], active: str) -> list[str]:
    """One line per profile: which roles it provides (x) and which it lacks (-)."""
    name_width = max(len(name) for name in profiles) + 2
    header = " " * (name_width + 2) + " ".join(SHORT[r] for r in ALL_ROLES)
    lines = [header]
    for name, profile in profiles.items():
        marks = " ".join(("x" if profile.has(r) else "-").center(len(SHORT[r])) for r in ALL_ROLES)
        lines.append(f"{'*' if name == active else ' '} {name:<{name_width}}{marks}  {profile.title}")
    return lines


def details(profile: Profile) -> list[str]:
    """What one profile reads for each role, and why it lacks the others."""
    absent = f" (absent = {profile.status_when_absent})" if profile.status_when_absent else ""
    lines = [
        f"{profile.name}: {profile.title}",
        f"  source: {profile.source or '-'}",
        f"  model label: {profile.model_label}",
        f"  status label: {profile.status_label or '-'}{absent}",
        f"  latency buckets: {', '.join(promql.number(b) for b in profile.latency_buckets) or '-'}",
        "  roles:",
    ]
    width = max(len(r) for r in ALL_ROLES)
    for role in ALL_ROLES:
        if role == STATUS_BREAKDOWN:
            continue
        if profile.has(role):
            read = promql.select(profile.role(role))
        else:
            read = f"- not exported: {profile.why_missing(role)}"
        lines.append(f"    {role:<{width}}  {read}")
    if profile.notes:
        lines.append("  notes:")
        lines += [f"    - {note}" for note in profile.notes]
    return lines
