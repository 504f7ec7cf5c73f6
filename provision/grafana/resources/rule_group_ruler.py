"""Data-source-managed rule groups (rules.target ruler), sent through Grafana's ruler proxy
to the Mimir or Cortex ruler behind a datasource:
`POST /api/ruler/{datasourceUid}/api/v1/rules/{namespace}?subtype=...` (JSON; Grafana
converts it to YAML for the ruler, which answers 202).

Reads: one GET of the namespace, which Grafana answers with the ruler's groups as JSON
(404 from the ruler: an empty namespace).

The namespace (rules.ruler.namespace, default `relaywatch`) is relaywatch's own, like a
generated file: a group in it that differs from the build is rewritten, and with --prune a
group no longer built is deleted; no other namespace is read or written. There is no drift
detection here: rulers keep no version history, and there is no place for a marker —
recording rules may carry neither annotations nor extra labels (a label would change the
series they record), and with the grafana target a ruler group holds only recording
rules. `provision diff` shows what a push would overwrite.
"""

from __future__ import annotations

from dataclasses import dataclass

from provision.build import BuildResult
from provision.config import Config
from provision.grafana.client import GrafanaClient, GrafanaError
from provision.grafana.resources.base import (
    CREATE, DELETE, DONE, FAILED, UNCHANGED, UPDATE, Action, Desired, Kind, Map, Outcome, ReadFailure, RunOptions,
)
from provision.grafana.resources.rule_text import canonical_duration, names, segment, unified
from provision.render.ruler import RulerNamespace

KIND = "ruler_rule_group"
TARGET = "ruler"
RULE_KEYS = ("record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations")
DATASOURCE_MISSING = "data source not found"


def desired(build: BuildResult, config: Config) -> list[Desired]:
    groups = build.deliveries.ruler_rule_groups if build.deliveries else []
    return [Desired(KIND, g.key, g.name, g.body, source=g) for g in groups]


# -- the normal form -------------------------------------------------------------------


def normal_group(group: dict) -> dict:
    """A group as relaywatch compares it: durations in one spelling, empty values left out."""
    out = {key: value for key, value in group.items() if key not in ("rules", "interval") and value}
    interval = canonical_duration(group.get("interval"))
    if interval and interval != "0s":
        out["interval"] = interval
    out["rules"] = [_normal_rule(rule) for rule in group.get("rules") or [] if isinstance(rule, dict)]
    return out


def _normal_rule(rule: dict) -> dict:
    out = {}
    for key in RULE_KEYS:
        value = rule.get(key)
        if key in ("for", "keep_firing_for"):
            value = canonical_duration(value)
            value = None if value == "0s" else value
        elif key == "expr" and isinstance(value, str):
            value = value.strip()  # a YAML round trip may add a final newline
        if value:
            out[key] = value
    return out


def _rule_name(rule: dict) -> str:
    return str(rule.get("record") or rule.get("alert"))


# -- reads -----------------------------------------------------------------------------


@dataclass
class State:
    where: RulerNamespace
    groups: dict[str, dict] | ReadFailure  # stored groups by name


def namespace_path(where: RulerNamespace) -> str:
    return f"/api/ruler/{segment(where.datasource_uid)}/api/v1/rules/{segment(where.namespace)}"


def _params(where: RulerNamespace) -> dict[str, str]:
    return {"subtype": where.subtype}


def fetch(client: GrafanaClient, wanted: list[Desired], options: RunOptions, pmap: Map) -> State | None:
    targeted = TARGET in options.rule_targets
    where = options.ruler or next((d.source.where for d in wanted), None)
    if where is None or (not targeted and not options.prune):
        return None
    try:
        body = client.get(namespace_path(where), _params(where))
    except GrafanaError as exc:
        if exc.status in (None, 401):
            raise
        if exc.status == 404 and DATASOURCE_MISSING not in exc.message.lower():
            body = {}  # the ruler has no group in this namespace
        elif not targeted:  # only looking for groups to prune: none we can reach
            return None
        else:
            return State(where, ReadFailure(failure(exc, where)))
    groups = body.get(where.namespace) if isinstance(body, dict) else None
    return State(where, {g["name"]: g for g in groups or [] if isinstance(g, dict) and g.get("name")})


# -- plan ------------------------------------------------------------------------------


def plan(wanted: list[Desired], state: State | None, options: RunOptions) -> list[Action]:
    if state is None:
        return []
    if isinstance(state.groups, ReadFailure):
        return [Action(KIND, d.uid, d.name, FAILED, f"cannot read the namespace: {state.groups.reason}", desired=d)
                for d in wanted]
    actions = [_plan_built(d, state.groups.get(d.name)) for d in wanted]
    built = {d.name for d in wanted}
    for name, group in sorted(state.groups.items()):
        if name in built:
            continue
        uid = f"{state.where.datasource_uid}/{state.where.namespace}/{name}"
        if options.prune:
            actions.append(Action(KIND, uid, name, DELETE, "no longer built", current=group))
        else:
            actions.append(Action(KIND, uid, name, UNCHANGED, "no longer built; push --prune deletes it"))
    return actions


def _plan_built(d: Desired, stored: dict | None) -> Action:
    if stored is None:
        return Action(KIND, d.uid, d.name, CREATE, desired=d)
    have, want = normal_group(stored), normal_group(d.body)
    if have == want:
        return Action(KIND, d.uid, d.name, UNCHANGED, desired=d, current=stored)
    return Action(KIND, d.uid, d.name, UPDATE, _what_changed(have, want), desired=d, current=stored)


def _what_changed(have: dict, want: dict) -> str:
    before, after = _by_name(have["rules"]), _by_name(want["rules"])
    parts = [f"{key} {have.get(key, '(default)')} -> {want.get(key, '(default)')}"
             for key in sorted((set(have) | set(want)) - {"rules"}) if have.get(key) != want.get(key)]
    added = [key[0] for key in after if key not in before]
    removed = [key[0] for key in before if key not in after]
    changed = [key[0] for key in after if key in before and after[key] != before[key]]
    for verb, rules in (("adds", added), ("removes", removed), ("changes", changed)):
        if rules:
            parts.append(f"{verb} {names(list(dict.fromkeys(rules)))}")
    if not parts:
        parts.append("reorders the rules")
    return "; ".join(parts)


def _by_name(rules: list[dict]) -> dict[tuple[str, int], dict]:
    """Rules keyed by name and occurrence: one alert name often has a warning and a critical rule."""
    seen: dict[str, int] = {}
    keyed = {}
    for rule in rules:
        name = _rule_name(rule)
        seen[name] = seen.get(name, 0) + 1
        keyed[(name, seen[name])] = rule
    return keyed


def diff(action: Action) -> str:
    if action.op != UPDATE or not action.current or not action.desired:
        return ""
    return unified(normal_group(action.current), normal_group(action.desired.body), f"ruler/{action.uid}",
                   f"build/{action.name}")


# -- apply -----------------------------------------------------------------------------


def apply(client: GrafanaClient, action: Action, options: RunOptions) -> Outcome:
    where = action.desired.source.where if action.desired else options.ruler
    try:
        if action.op == DELETE:
            _delete(client, where, action.name)
        else:
            client.post(namespace_path(where), action.desired.body, params=_params(where))
        return Outcome(action, DONE[action.op], action.reason)
    except GrafanaError as exc:
        return Outcome(action, DONE[FAILED], failure(exc, where))


def _delete(client: GrafanaClient, where: RulerNamespace, name: str) -> None:
    try:
        client.delete(f"{namespace_path(where)}/{segment(name)}", params=_params(where))
    except GrafanaError as exc:
        if exc.status != 404 or DATASOURCE_MISSING in exc.message.lower():
            raise  # a 404 from the ruler: the group is already gone


def failure(exc: GrafanaError, where: RulerNamespace) -> str:
    datasource = f"datasource {where.datasource_uid!r} (rules.ruler.datasource_uid)"
    message = exc.message.lower()
    if exc.status == 404 and DATASOURCE_MISSING in message:
        return f"{exc}: {datasource} does not exist in Grafana"
    if exc.status == 404:
        return (f"{exc}: the ruler behind {datasource} has no rules API at the path for subtype "
                f"{where.subtype!r}: check rules.ruler.subtype (mimir: /config/v1/rules, cortex: /rules) and that "
                "its ruler API is enabled")
    if exc.status == 400 and "datasource type" in message:
        return f"{exc}: {datasource} must be a Prometheus-type datasource pointing at a Mimir or Cortex ruler"
    if exc.status == 403:
        return f"{exc}: the service account needs alert.rules.external:write on {datasource} (Editor has it)"
    return str(exc)


RULER_RULE_GROUP = Kind(KIND, desired, fetch, plan, apply, diff)
