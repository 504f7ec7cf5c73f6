"""Rules as data: recording rules, structured alert rules, rule groups.

Alerts are kept structured (query, comparison, threshold, guards, `for`,
labels, annotations) rather than as opaque PromQL strings, so they can be
rendered for Prometheus rule files here and for other engines (Grafana-managed
alerting, rulers) elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from provision import promql
from provision.contract import PRICING

SEVERITIES = ("critical", "warning", "info")


@dataclass(frozen=True)
class Query:
    """A PromQL expression plus the contract roles it needs.

    A query whose roles the active profile lacks has `expr` None and lists them
    in `missing`; whatever holds it is dropped from the build with a notice.
    """

    expr: str | None
    legend: str = ""
    requires: frozenset[str] = frozenset()
    missing: tuple[str, ...] = ()

    @property
    def available(self) -> bool:
        return self.expr is not None

    @classmethod
    def unavailable(cls, missing) -> "Query":
        return cls(expr=None, missing=tuple(sorted(missing)))


def unavailable_reason(missing) -> str:
    """Why a query with these missing roles cannot be built, for notices."""
    roles = [m for m in missing if m != PRICING]
    reasons = [f"the profile has no {', '.join(roles)}"] if roles else []
    if PRICING in missing:
        reasons.append("the price table (pricing) is empty")
    return " and ".join(reasons)


@dataclass(frozen=True)
class Condition:
    """`query op threshold`; as a guard, joined with `and on (match_on)`."""

    query: Query
    op: str
    threshold: float
    match_on: tuple[str, ...] | None = None

    def render(self) -> str:
        return promql.compare(self.query.expr, self.op, self.threshold)


@dataclass(frozen=True)
class Branch:
    """One way for an alert to fire: its condition and every guard, joined with `and`."""

    condition: Condition
    guards: tuple[Condition, ...] = ()

    def render(self) -> str:
        expr = self.condition.render()
        for guard in self.guards:
            on = f" on ({', '.join(guard.match_on)})" if guard.match_on is not None else ""
            expr = f"{expr} and{on} {promql.paren(guard.render())}"
        return expr

    def queries(self) -> tuple[Query, ...]:
        return (self.condition.query, *(g.query for g in self.guards))


@dataclass(frozen=True)
class RecordingRule:
    record: str
    query: Query
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertRule:
    name: str
    condition: Condition
    severity: str
    summary: str
    description: str
    for_: str = "0s"
    guards: tuple[Condition, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    keep_firing_for: str | None = None
    runbook: str | None = None  # anchor in docs/runbooks.md; defaults to the lower-cased name
    alternatives: tuple[Branch, ...] = ()  # further ways to fire, joined with `or` (each its own threshold)
    # A template sentence that queries Prometheus when the alert fires (`query`), appended to the
    # description where templates can query; Grafana-managed rules, whose templates cannot, leave it out.
    queried_detail: str = ""

    def branches(self) -> tuple[Branch, ...]:
        return (Branch(self.condition, self.guards), *self.alternatives)

    def queries(self) -> tuple[Query, ...]:
        return tuple(q for branch in self.branches() for q in branch.queries())

    def expr(self) -> str:
        if not self.alternatives:
            return self.branches()[0].render()
        return " or ".join(promql.paren(branch.render()) for branch in self.branches())

    def runbook_anchor(self) -> str:
        return self.runbook or self.name.lower()


Rule = RecordingRule | AlertRule


@dataclass(frozen=True)
class RuleGroup:
    """A Prometheus rule group; `file` names the build/rules/<file>.yaml it lands in."""

    name: str
    file: str
    rules: tuple[Rule, ...]
    interval: str | None = None

    def missing(self) -> dict[str, tuple[str, ...]]:
        """Rule name -> roles it needs that the profile lacks."""
        found = {}
        for rule in self.rules:
            queries = (rule.query,) if isinstance(rule, RecordingRule) else rule.queries()
            missing = sorted({role for q in queries for role in q.missing})
            if missing:
                found[rule_name(rule)] = tuple(missing)
        return found

    def without_unavailable(self) -> "RuleGroup":
        missing = self.missing()
        kept = tuple(r for r in self.rules if rule_name(r) not in missing)
        return RuleGroup(self.name, self.file, kept, self.interval)

    def without_alerts(self) -> "RuleGroup":
        recording = tuple(r for r in self.rules if isinstance(r, RecordingRule))
        return RuleGroup(self.name, self.file, recording, self.interval)

    def alerts(self) -> tuple["AlertRule", ...]:
        return tuple(r for r in self.rules if isinstance(r, AlertRule))


def rule_name(rule: Rule) -> str:
    return rule.record if isinstance(rule, RecordingRule) else rule.name


def render_rule(rule: Rule, *, runbook_base_url: str, extra_labels: Mapping[str, str]) -> dict:
    """One rule as the Prometheus rule-file mapping, keys in the conventional order."""
    if isinstance(rule, RecordingRule):
        out = {"record": rule.record, "expr": rule.query.expr}
        if rule.labels:
            out["labels"] = dict(sorted(rule.labels.items()))
        return out
    out = {"alert": rule.name, "expr": rule.expr()}
    if rule.for_ and rule.for_ != "0s":
        out["for"] = rule.for_
    if rule.keep_firing_for:
        out["keep_firing_for"] = rule.keep_firing_for
    out["labels"] = dict(sorted({**extra_labels, **rule.labels, "severity": rule.severity}.items()))
    annotations = {
        "summary": rule.summary,
        "description": f"{rule.description} {rule.queried_detail}" if rule.queried_detail else rule.description,
        "runbook_url": f"{runbook_base_url}#{rule.runbook_anchor()}",
        **rule.annotations,
    }
    out["annotations"] = dict(sorted(annotations.items()))
    return out


def render_group(group: RuleGroup, **kwargs) -> dict:
    out: dict = {"name": group.name}
    if group.interval:
        out["interval"] = group.interval
    out["rules"] = [render_rule(rule, **kwargs) for rule in group.rules]
    return out
