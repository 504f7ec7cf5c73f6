"""Recording rules: names that say what they hold, and no series recorded twice."""

from __future__ import annotations

import re
from itertools import permutations

from provision.lint.artifacts import Artifacts, Rule
from provision.lint.registry import ALL_RULES, RECORDING, WARNING, ERROR, Hit, check

RECORDED_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_]+$")
MAX_LEVEL_LABELS = 6  # beyond this, trying every order of the labels costs more than it is worth


@check("recording-name", WARNING, RECORDING,
       "Recorded names follow level:metric:operations, like job:http_requests:rate5m.")
def recording_name(rule: Rule, ctx):
    if not RECORDED_NAME.match(rule.name):
        yield (f"recorded name {rule.name!r} does not follow level:metric:operations "
               "(the labels kept, the metric, the operations applied)")


@check("recording-duplicate", ERROR, ALL_RULES,
       "No two recording rules write the same series (same name and same static labels).")
def recording_duplicate(artifacts: Artifacts, ctx):
    first: dict[tuple, Rule] = {}
    for rule in artifacts.rules:
        if rule.kind != "record":
            continue
        key = (rule.name, tuple(sorted(rule.labels.items())))
        if key in first:
            other = first[key]
            where = f"{other.artifact}:{other.line}" if other.line else other.artifact
            yield Hit(f"{rule.name} with the same labels is also recorded at {where} (group {other.group}); "
                      "the two rules overwrite each other's samples", item=rule)
        else:
            first[key] = rule


@check("recording-level-labels", WARNING, RECORDING,
       "The level part of a recorded name lists exactly the labels the result keeps.", parsed=True)
def recording_level_labels(rule: Rule, ctx):
    if not RECORDED_NAME.match(rule.name):
        return
    labels = ctx.labels_of(rule.expr.ast).adding(*rule.labels)
    if labels.open or not labels.known or len(labels.known) > MAX_LEVEL_LABELS:
        return
    level = rule.name.split(":")[0]
    if not any("_".join(order) == level for order in permutations(sorted(labels.known))):
        yield (f"level {level!r} does not name the labels the result keeps ({', '.join(sorted(labels.known))}); "
               f"e.g. {'_'.join(sorted(labels.known))}:...")
