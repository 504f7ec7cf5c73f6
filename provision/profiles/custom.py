"""The `custom` profile: a gateway described entirely in relaywatch.yaml.

The JSON Schema (`custom_profile` in config.schema.json) checks the shape;
this module checks what a schema cannot: that every role reads a series of a
declared metric family of the right type, that matchers and the model and
status labels name labels the family has, and it builds the Profile. Each
problem is one line naming its key path under `custom_profile`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import promql_parser

from provision.contract import (
    COMPLETION_TOKENS,
    COUNTER,
    GAUGE,
    HISTOGRAM,
    INFLIGHT,
    LATENCY,
    OUTCOME_ROLES,
    PROMPT_TOKENS,
    REQUESTS,
    STATUS_BREAKDOWN,
    Matcher,
    Metric,
    Profile,
    Selection,
)

NAME = "custom"
KEY = "custom_profile"
OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}

# Which series of which family kind a role may read: (family type, suffix).
READABLE: dict[str, tuple[tuple[str, str], ...]] = {
    REQUESTS: ((COUNTER, ""), (HISTOGRAM, "_count")),
    **{role: ((COUNTER, ""), (HISTOGRAM, "_count")) for role in OUTCOME_ROLES},
    LATENCY: ((HISTOGRAM, ""),),
    PROMPT_TOKENS: ((COUNTER, ""), (HISTOGRAM, "_sum")),
    COMPLETION_TOKENS: ((COUNTER, ""), (HISTOGRAM, "_sum")),
    INFLIGHT: ((GAUGE, ""),),
}


class ProfileError(ValueError):
    """An unusable profile description; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def from_config(spec: Mapping[str, Any] | None) -> Profile:
    """The Profile described by the `custom_profile` mapping (already schema-checked)."""
    if not spec:
        raise ProfileError([f"{KEY}: profile is 'custom' but {KEY} is not set (see docs/profiles.md)"])
    problems: list[str] = []
    metrics = tuple(_metric(name, body) for name, body in sorted(spec["metrics"].items()))
    by_name = {m.name: m for m in metrics}
    for metric in metrics:
        if list(metric.buckets) != sorted(set(metric.buckets)):
            problems.append(f"{KEY}.metrics.{metric.name}.buckets: must be strictly increasing")
    roles: dict[str, Selection] = {}
    families: dict[str, Metric] = {}
    for role, body in spec["roles"].items():
        found = _selection(role, body, by_name, problems)
        if found:
            roles[role], families[role] = found
    problems += _label_problems(spec, families)
    for role in spec.get("lacks", {}):
        if role in roles:
            problems.append(f"{KEY}.lacks.{role}: the role is mapped under {KEY}.roles; a reason is only for roles "
                            "the gateway lacks")
    if problems:
        raise ProfileError(problems)
    latency = families.get(LATENCY)
    return Profile(
        name=NAME,
        title=spec.get("title") or "Custom profile (custom_profile in relaywatch.yaml)",
        model_label=spec["model_label"],
        status_label=spec.get("status_label"),
        status_when_absent=spec.get("status_when_absent"),
        latency_buckets=latency.buckets if latency else (),
        metrics=metrics,
        roles=roles,
        source=spec.get("source", "relaywatch.yaml"),
        notes=tuple(spec.get("notes", ())),
        lacks=dict(spec.get("lacks", {})),
    )


def _metric(name: str, body: Mapping[str, Any]) -> Metric:
    return Metric(name, body["type"], tuple(body.get("labels", ())), tuple(float(b) for b in body.get("buckets", ())),
                  body.get("help", ""))


def _selection(role: str, body: Mapping[str, Any], metrics: dict[str, Metric],
               problems: list[str]) -> tuple[Selection, Metric] | None:
    where = f"{KEY}.roles.{role}"
    family = _family(body["series"], role, metrics, f"{where}.series", problems)
    for i, extra in enumerate(body.get("plus", ())):
        other = _family(extra, role, metrics, f"{where}.plus[{i}]", problems)
        if family and other and other.type != family.type:
            problems.append(f"{where}.plus[{i}]: {extra} is a {other.type}, {body['series']} a {family.type}; "
                            "only series of the same type can be summed")
    matchers = []
    for i, text in enumerate(body.get("matchers", ())):
        matcher = _matcher(text, f"{where}.matchers[{i}]", problems)
        if matcher and family and matcher.label not in family.labels:
            problems.append(f"{where}.matchers[{i}]: label {matcher.label!r} is not a label of {family.name} "
                            f"(labels: {', '.join(family.labels) or 'none'})")
        if matcher:
            matchers.append(matcher)
    if family is None:
        return None
    return Selection(body["series"], tuple(matchers), tuple(body.get("plus", ()))), family


def _family(series: str, role: str, metrics: dict[str, Metric], where: str, problems: list[str]) -> Metric | None:
    """The declared family whose series `series` is, if the role may read it."""
    allowed = READABLE[role]
    for metric in metrics.values():
        for kind, suffix in allowed:
            if metric.type == kind and series == metric.name + suffix:
                return metric
    expected = " or ".join(f"a {kind}" + (f"'s {suffix} series" if suffix else "") for kind, suffix in allowed)
    declared = ", ".join(sorted(metrics)) or "none"
    problems.append(f"{where}: {series!r} is not {expected} declared under {KEY}.metrics (declared: {declared})")
    return None


def _matcher(text: str, where: str, problems: list[str]) -> Matcher | None:
    try:
        node = promql_parser.parse("{" + text + "}")
        (parsed,) = node.matchers.matchers
    except ValueError as exc:
        problems.append(f"{where}: {text!r} is not a label matcher such as status=~\"5..\": "
                        f"{str(exc).splitlines()[0]}")
        return None
    return Matcher(parsed.name, OPS[str(parsed.op).rsplit(".", 1)[-1]], parsed.value)


def _label_problems(spec: Mapping[str, Any], families: dict[str, Metric]) -> list[str]:
    problems = []
    model = spec["model_label"]
    for role, family in sorted(families.items()):
        if model not in family.labels:
            problems.append(f"{KEY}.model_label: {model!r} is not a label of {family.name} (read by roles.{role}); "
                            "every role must be per model")
    status = spec.get("status_label")
    if status and REQUESTS in families and status not in families[REQUESTS].labels:
        problems.append(f"{KEY}.status_label: {status!r} is not a label of {families[REQUESTS].name} "
                        f"(read by roles.requests), so the {STATUS_BREAKDOWN} breakdown cannot use it")
    return problems

