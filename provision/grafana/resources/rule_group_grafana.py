"""Grafana-managed rule groups (rules.target grafana), written whole with
`PUT /api/v1/provisioning/folder/{folderUid}/rule-groups/{group}` into the managed folder.

Reads: one list of the organisation's alert rules (`GET /api/v1/provisioning/alert-rules`:
where each rule lives and its provenance, which a group read leaves out), then a GET of
each built group that exists (its interval and rule order) and, with --prune, of each
group prune would empty.

Ownership and drift without local state. Every rule relaywatch writes has a uid starting
with `rw-` and the annotation `relaywatch_digest`: hashes of the rule as relaywatch sent it,
with its group's interval and the provenance it was written with. A stored rule that still
hashes to its annotation is as relaywatch left it, so a difference from the build is
relaywatch's to write. One that does not was changed in Grafana since (in the UI, which
rules.grafana.editable_in_ui allows, or by another API client): the group has drifted, is
reported and left alone unless --force. A rule without the marker is not relaywatch's: a
push that would replace it (a same-named group, a rule added by hand to relaywatch's group)
is drift too, and prune never deletes it.

There are two hashes: one of everything, one without `keep_firing_for` and
`missingSeriesEvalsToResolve`, which Grafana before 12 drops on save (and 12 then shows as
unset). A stored rule that sets neither is checked against the second.

Provenance: rules.grafana.editable_in_ui decides X-Disable-Provenance, on every write
alike. Grafana skips a group PUT that changes no rule, provenance included, so the
provenance is part of the hash: switching the setting rewrites every rule once. Rules
provisioned from files (provenance `file`) cannot be changed through the API at all:
planned as failed, nothing sent.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from provision.build import BuildResult
from provision.config import Config
from provision.grafana.client import GrafanaClient, GrafanaError
from provision.grafana.resources.base import (
    CREATE, DELETE, DONE, DRIFTED, FAILED, UNCHANGED, UPDATE, Action, Desired, Kind, Map, Outcome, ReadFailure,
    RunOptions, guarded,
)
from provision.grafana.resources.rule_text import canonical_duration, names, segment, unified, whole_numbers
from provision.render.grafana_rules import UID_PREFIX

KIND = "grafana_rule_group"
TARGET = "grafana"
ALL_RULES = "/api/v1/provisioning/alert-rules"
MARKER = "relaywatch_digest"
PROVENANCE_HEADER = "X-Disable-Provenance"
FILE_PROVENANCE = "file"
# The rule as relaywatch writes it; the rest of Grafana's answer (id, orgID, updated,
# provenance, folderUID, ruleGroup, fields of later versions) says nothing about content.
RULE_KEYS = ("uid", "title", "condition", "data", "noDataState", "execErrState", "for", "keep_firing_for", "labels",
             "annotations", "isPaused", "notification_settings", "record", "missingSeriesEvalsToResolve")
GRAFANA_12_KEYS = ("keep_firing_for", "missingSeriesEvalsToResolve")  # dropped on save before Grafana 12
# Grafana fills these into every query model on save (AlertQuery.PreSave).
MODEL_DEFAULTS = {"intervalMs": 1000, "maxDataPoints": 43200}


# -- the normal form, hashes and ownership ---------------------------------------------


def normal_rule(rule: dict, drop: Iterable[str] = ()) -> dict:
    """A rule as relaywatch compares it: its own keys, durations in one spelling, Grafana's
    defaults filled in, empty values and the marker left out."""
    out = {}
    for key in RULE_KEYS:
        if key in drop or key not in rule:
            continue
        value = rule[key]
        if key in ("for", "keep_firing_for"):
            value = canonical_duration(value)
            if key == "keep_firing_for" and value == "0s":
                continue
        elif key in ("labels", "annotations"):
            value = {k: v for k, v in (value or {}).items() if k != MARKER}
        elif key == "data":
            value = [_normal_query(q) for q in value or [] if isinstance(q, dict)]
        if value is None or value is False or value == {}:
            continue
        out[key] = value
    return whole_numbers(out)


def _normal_query(query: dict) -> dict:
    model = dict(query.get("model") or {})
    for key, default in MODEL_DEFAULTS.items():
        value = model.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value:
            model[key] = default
    window = query.get("relativeTimeRange") or {}
    out = {"refId": query.get("refId"), "datasourceUid": query.get("datasourceUid"), "model": model,
           "relativeTimeRange": {"from": window.get("from", 0), "to": window.get("to", 0)}}
    query_type = query.get("queryType") or model.get("queryType")
    if query_type:
        out["queryType"] = query_type
    return out


def _hash(interval: int | None, provenance: str, rule: dict) -> str:
    canonical = json.dumps({"interval": interval, "provenance": provenance, "rule": rule}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def marker(rule: dict, interval: int, provenance: str) -> str:
    """`<hash of everything>:<hash without the Grafana 12 keys>`."""
    return (f"{_hash(interval, provenance, normal_rule(rule))}:"
            f"{_hash(interval, provenance, normal_rule(rule, GRAFANA_12_KEYS))}")


def ours(rule: dict) -> bool:
    return str(rule.get("uid", "")).startswith(UID_PREFIX) and MARKER in (rule.get("annotations") or {})


def untouched(rule: dict, interval: int | None, provenance: str) -> bool:
    """Whether a stored rule is exactly as relaywatch wrote it."""
    full, _, core = (rule.get("annotations") or {}).get(MARKER, "").partition(":")
    if full and full == _hash(interval, provenance, normal_rule(rule)):
        return True
    # Grafana before 12 drops those keys; after an upgrade to 12 they read as their defaults
    unset = not any(key in normal_rule(rule) for key in GRAFANA_12_KEYS)
    return bool(core) and unset and core == _hash(interval, provenance, normal_rule(rule, GRAFANA_12_KEYS))


def provenance_of(editable_in_ui: bool) -> str:
    return "" if editable_in_ui else "api"


def _title(rule: dict) -> str:
    return repr(rule.get("title") or rule.get("uid"))


# -- desired ---------------------------------------------------------------------------


def desired(build: BuildResult, config: Config) -> list[Desired]:
    groups = build.deliveries.grafana_rule_groups if build.deliveries else []
    return [Desired(KIND, g.key, g.name, _marked(g.body, provenance_of(g.editable_in_ui)), g.folder_uid, source=g)
            for g in groups]


def _marked(body: dict, provenance: str) -> dict:
    """The PUT body with each rule's marker annotation."""
    body = copy.deepcopy(body)
    for rule in body["rules"]:
        rule.setdefault("annotations", {})[MARKER] = marker(rule, body["interval"], provenance)
    return body


def _editable(d: Desired | None, options: RunOptions) -> bool:
    """The provenance choice the group was rendered with; for prune (nothing rendered), the config's."""
    return d.source.editable_in_ui if d is not None and d.source is not None else options.editable_in_ui


# -- reads -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """A rule group as Grafana holds it."""

    folder_uid: str
    name: str
    interval: int | None
    rules: tuple[dict, ...]


@dataclass(frozen=True)
class PruneTarget:
    """relaywatch's rules of a group no longer built; the whole group when nothing else is in it."""

    folder_uid: str
    name: str
    rule_uids: tuple[str, ...]
    whole_group: bool


@dataclass
class State:
    listed: list[dict] | ReadFailure
    groups: dict[str, Stored | ReadFailure | None] = field(default_factory=dict)  # by name, managed folder


def fetch(client: GrafanaClient, wanted: list[Desired], options: RunOptions, pmap: Map) -> State | None:
    targeted = TARGET in options.rule_targets
    if not targeted and not options.prune:
        return None
    try:
        listed = client.get(ALL_RULES)
    except GrafanaError as exc:
        if exc.status in (None, 401):
            raise
        if not targeted:  # only looking for groups to prune: what we may not read is not ours
            return None
        return State(ReadFailure(str(exc)))
    rules = [r for r in listed or [] if isinstance(r, dict) and r.get("uid")]
    in_folder = _groups_in(rules, options.folder_uid)
    to_read = [d.name for d in wanted if d.name in in_folder]
    if options.prune:
        to_read += sorted(name for name, group in in_folder.items()
                          if name not in {d.name for d in wanted} and any(ours(r) for r in group))
    groups = dict(pmap(lambda name: (name, guarded(lambda: read_group(client, options.folder_uid, name))), to_read))
    return State(rules, groups)


def _groups_in(rules: list[dict], folder_uid: str) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for rule in rules:
        if rule.get("folderUID") == folder_uid:
            groups[str(rule.get("ruleGroup"))].append(rule)
    return groups


def group_path(folder_uid: str, name: str) -> str:
    return f"/api/v1/provisioning/folder/{segment(folder_uid)}/rule-groups/{segment(name)}"


def read_group(client: GrafanaClient, folder_uid: str, name: str) -> Stored | None:
    body = client.get_or_none(group_path(folder_uid, name))
    if not isinstance(body, dict) or not body.get("rules"):
        return None
    return Stored(folder_uid, name, body.get("interval"), tuple(r for r in body["rules"] if isinstance(r, dict)))


# -- plan ------------------------------------------------------------------------------


def plan(wanted: list[Desired], state: State | None, options: RunOptions) -> list[Action]:
    if state is None:
        return []
    if isinstance(state.listed, ReadFailure):
        return [_action(d, FAILED, f"cannot read Grafana's alert rules: {state.listed.reason}") for d in wanted]
    provenance = {r["uid"]: r.get("provenance") or "" for r in state.listed}
    located = {r["uid"]: (r.get("folderUID"), r.get("ruleGroup")) for r in state.listed}
    built = {rule["uid"]: d.name for d in wanted for rule in d.body["rules"]}
    actions = [_plan_built(d, state.groups.get(d.name), provenance, located, options) for d in wanted]
    for name, rules in sorted(_groups_in(state.listed, options.folder_uid).items()):
        if name in {d.name for d in wanted}:
            continue
        leftover = [r for r in rules if ours(r) and r["uid"] not in built]
        if not leftover:
            continue
        uid = f"{options.folder_uid}/{name}"
        if not options.prune:
            actions.append(Action(KIND, uid, name, UNCHANGED, "no longer built; push --prune deletes it"))
            continue
        action = _plan_prune(uid, name, state.groups.get(name), provenance, built, options)
        if action:
            actions.append(action)
    return actions


def _action(d: Desired, op: str, reason: str = "", current: Stored | None = None) -> Action:
    return Action(KIND, d.uid, d.name, op, reason, desired=d, current=current, needs=(f"folder:{d.folder_uid}",))


def _plan_built(d: Desired, stored: Stored | ReadFailure | None, provenance: dict[str, str],
                located: dict[str, tuple], options: RunOptions) -> Action:
    if isinstance(stored, ReadFailure):
        return _action(d, FAILED, f"cannot read it: {stored.reason}")
    mine = provenance_of(_editable(d, options))
    stored_rules = stored.rules if stored else ()
    locked = [uid for uid in [r["uid"] for r in d.body["rules"]] + [r.get("uid") for r in stored_rules]
              if provenance.get(uid) == FILE_PROVENANCE]
    if locked:
        return _action(d, FAILED, f"rules {names(sorted(set(locked)))} are provisioned from files by Grafana itself "
                                  "(provenance file), which refuses API changes; remove them from Grafana's "
                                  "provisioning files first", stored)
    moved = sorted({located[r["uid"]][1] for r in d.body["rules"]
                    if r["uid"] in located and located[r["uid"]] != (d.folder_uid, d.name)})
    moving = f"moves rules from group {names(moved)}" if moved else ""
    if stored is None:
        return _action(d, CREATE, moving)
    if _same(d.body, stored, provenance, mine):
        return _action(d, UNCHANGED, current=stored)
    problems = [f"rule {_title(r)} was not created by relaywatch" if not ours(r) else
                f"rule {_title(r)} was changed in Grafana since relaywatch pushed it"
                for r in stored.rules if not ours(r) or not untouched(r, stored.interval, provenance.get(r["uid"], ""))]
    change = "; ".join(part for part in (_what_changed(d.body, stored, provenance, mine), moving) if part)
    if problems and not options.force:
        return _action(d, DRIFTED, f"{names(problems, 2)}; `provision diff` shows how, `provision push --force` "
                                   "replaces the group", stored)
    if problems:
        return _action(d, UPDATE, f"forced over changes made in Grafana ({names(problems, 2)}); {change}", stored)
    return _action(d, UPDATE, change, stored)


def _without_grafana_12_keys(stored: Stored) -> tuple[str, ...]:
    """The keys to leave out of a comparison: those the server dropped from every rule."""
    known = any(key in rule for rule in stored.rules for key in GRAFANA_12_KEYS)
    return () if known else GRAFANA_12_KEYS


def _same(body: dict, stored: Stored, provenance: dict[str, str], mine: str) -> bool:
    drop = _without_grafana_12_keys(stored)
    return (body["interval"] == stored.interval
            and [normal_rule(r, drop) for r in body["rules"]] == [normal_rule(r, drop) for r in stored.rules]
            and [_marker_of(r) for r in body["rules"]] == [_marker_of(r) for r in stored.rules]
            and all(provenance.get(r["uid"], "") == mine for r in stored.rules))


def _marker_of(rule: dict) -> str:
    return (rule.get("annotations") or {}).get(MARKER, "")


def _what_changed(body: dict, stored: Stored, provenance: dict[str, str], mine: str) -> str:
    drop = _without_grafana_12_keys(stored)
    have = {r.get("uid"): r for r in stored.rules}
    want = {r["uid"]: r for r in body["rules"]}
    parts = []
    if body["interval"] != stored.interval:
        parts.append(f"interval {stored.interval}s -> {body['interval']}s")
    added = [_title(r) for uid, r in want.items() if uid not in have]
    removed = [_title(r) for uid, r in have.items() if uid not in want]
    changed = [_title(r) for uid, r in want.items()
               if uid in have and normal_rule(r, drop) != normal_rule(have[uid], drop)]
    for verb, titles in (("adds", added), ("removes", removed), ("changes", changed)):
        if titles:
            parts.append(f"{verb} {names(titles)}")
    before = sorted({provenance.get(uid, "") for uid in have} - {mine})
    if before:
        parts.append(f"provenance {' '.join(p or 'none' for p in before)} -> {mine or 'none'} "
                     "(rules.grafana.editable_in_ui)")
    if not parts and list(want) != list(have):
        parts.append("reorders the rules")
    return "; ".join(parts)


def _plan_prune(uid: str, name: str, stored: Stored | ReadFailure | None, provenance: dict[str, str],
                built: dict[str, str], options: RunOptions) -> Action | None:
    if isinstance(stored, ReadFailure):
        return Action(KIND, uid, name, FAILED, f"cannot read it: {stored.reason}")
    if stored is None:
        return None  # gone meanwhile
    leftover = [r for r in stored.rules if ours(r) and r["uid"] not in built]
    if not leftover:
        return None
    locked = [r["uid"] for r in leftover if provenance.get(r["uid"]) == FILE_PROVENANCE]
    if locked:
        return Action(KIND, uid, name, FAILED, f"no longer built, but rules {names(locked)} are provisioned from "
                                               "files by Grafana itself (provenance file)")
    edited = [_title(r) for r in leftover if not untouched(r, stored.interval, provenance.get(r["uid"], ""))]
    if edited and not options.force:
        return Action(KIND, uid, name, DRIFTED, f"no longer built, but rule {names(edited)} was changed in Grafana "
                                                "since relaywatch pushed it; push --prune --force deletes it anyway",
                      current=stored)
    others = [r for r in stored.rules if not ours(r)]
    target = PruneTarget(stored.folder_uid, name, tuple(r["uid"] for r in leftover),
                         whole_group=len(leftover) == len(stored.rules))
    reason = "no longer built" + (f"; keeps {len(others)} rules relaywatch did not create" if others else "")
    return Action(KIND, uid, name, DELETE, reason, current=target)


# -- diff ------------------------------------------------------------------------------


def diff(action: Action) -> str:
    """Grafana's copy -> the build, as readable YAML of the compared form."""
    if action.op not in (UPDATE, DRIFTED) or not isinstance(action.current, Stored) or not action.desired:
        return ""
    stored, body = action.current, action.desired.body
    drop = _without_grafana_12_keys(stored)

    def shown(interval, rules) -> dict:
        return {"interval": interval, "rules": [normal_rule(r, drop) for r in rules]}

    return unified(shown(stored.interval, stored.rules), shown(body["interval"], body["rules"]),
                   f"grafana/{stored.folder_uid}/{stored.name}", f"build/{action.desired.name}")


# -- apply -----------------------------------------------------------------------------


def apply(client: GrafanaClient, action: Action, options: RunOptions) -> Outcome:
    editable = _editable(action.desired, options)
    headers = {PROVENANCE_HEADER: "true"} if editable else None
    try:
        if action.op == DELETE:
            _delete(client, action.current, headers)
        else:
            client.put(group_path(action.desired.folder_uid, action.desired.name), action.desired.body,
                       headers=headers)
        return Outcome(action, DONE[action.op], action.reason)
    except GrafanaError as exc:
        return Outcome(action, DONE[FAILED], failure(exc, editable, options.folder_uid))


def _delete(client: GrafanaClient, target: PruneTarget, headers: dict | None) -> None:
    if target.whole_group:
        try:
            client.delete(group_path(target.folder_uid, target.name), headers=headers)
            return
        except GrafanaError as exc:
            # Grafana before 11 has no group DELETE; a 404 may also mean the group is gone.
            # Deleting the rules one by one is idempotent either way.
            if exc.status not in (404, 405):
                raise
    for uid in target.rule_uids:
        client.delete(f"{ALL_RULES}/{segment(uid)}", headers=headers)


_STORED_PROVENANCE = re.compile(r"needs '([^']*)'|from '([^']*)' to")


def failure(exc: GrafanaError, editable: bool, folder_uid: str) -> str:
    """Grafana's refusal in one line, with what to do about it."""
    if exc.status == 403:
        return (f"{exc}: the service account needs alert.rules:read/write on folder {folder_uid} plus "
                "alert.provisioning.provenance:write, or alert.rules.provisioning:write (Editor in Grafana 11+, "
                "Admin in Grafana 10)")
    if "provenance" in exc.message.lower() and exc.status in (409, 500):
        found = _STORED_PROVENANCE.search(exc.message)
        held = next((g for g in found.groups() if g is not None), None) if found else None
        held_text = f"provenance {held or 'none'!r}" if held is not None else "another provenance"
        if held == FILE_PROVENANCE:
            hint = "they come from Grafana's provisioning files; remove them there first"
        else:
            hint = (f"they were pushed with rules.grafana.editable_in_ui: {str(not editable).lower()}; set it back "
                    "for this push, or delete the rules in Grafana first")
        return (f"{exc}: provenance conflict: Grafana holds these rules with {held_text} and refuses a write "
                f"{'with X-Disable-Provenance' if editable else 'with provenance api'}; {hint}")
    if exc.status == 400 and "folder" in exc.message.lower():
        return f"{exc}: folder {folder_uid!r} (grafana.folder.uid) does not exist in Grafana"
    return str(exc)


GRAFANA_RULE_GROUP = Kind(KIND, desired, fetch, plan, apply, diff)
