"""The check registry: every check's stable id, severity, scope and one-line summary.

A check is a function decorated with `@check(...)`. It receives one item of its
scope (a dashboard, a panel, a target, a rule, ...) and the LintContext, and
yields a message per problem: a plain string about that item, or a Hit that
names a finer location or another item.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

ERROR, WARNING = "error", "warning"

# What a check is handed, one at a time.
DASHBOARD = "dashboard"  # a whole dashboard
PANEL = "panel"  # every panel, rows and collapsed rows' children included
TARGET = "target"  # every Prometheus query of a panel
EXPRESSION = "expression"  # every PromQL expression: dashboard targets and rules alike
RULE_FILE = "rule file"
ALERT = "alert"
RECORDING = "recording"
ALL_RULES = "all rules"  # the rules of every file at once, for cross-file checks
SCOPES = (DASHBOARD, PANEL, TARGET, EXPRESSION, RULE_FILE, ALERT, RECORDING, ALL_RULES)


@dataclass(frozen=True)
class Hit:
    """A finding about `item` (default: the item the check was given), optionally at a sub-location."""

    message: str
    where: str | None = None
    item: Any = None
    line: int | None = None


@dataclass(frozen=True)
class Check:
    id: str
    severity: str
    scope: str
    summary: str
    run: Callable[[Any, Any], Iterable[str | Hit]]
    parsed: bool = False  # run only on items whose expression parses (promql-parse reports the others)


CHECKS: dict[str, Check] = {}


def check(check_id: str, severity: str, scope: str, summary: str, *, parsed: bool = False):
    """Register a check function under a stable id; `parsed` checks read `item.expr.ast`."""
    if severity not in (ERROR, WARNING) or scope not in SCOPES:
        raise ValueError(f"check {check_id}: bad severity {severity!r} or scope {scope!r}")

    def register(function):
        if check_id in CHECKS:
            raise ValueError(f"check id {check_id!r} is registered twice")
        CHECKS[check_id] = Check(check_id, severity, scope, summary, function, parsed)
        return function

    return register
