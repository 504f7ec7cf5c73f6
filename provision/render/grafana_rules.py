"""Grafana-managed alert rules: each definition group as the body of
`PUT /api/v1/provisioning/folder/{folderUid}/rule-groups/{group}`.

Every alert becomes three data items, the shape Grafana's own editor makes:

    A  the Prometheus query, instant, on the configured datasource: the
       alert's condition query with every recording rule inlined
       (provision.promql_expand) and its guards joined with PromQL `and`;
    B  reduce(last, A): one number per series;
    C  the condition: a threshold on B (`>` and `<`) or a math expression
       (`>=`, `<=`, `==`, `!=`), which is what decides firing.

Why the guards stay in PromQL instead of becoming queries joined by a math
expression: Grafana's math joins two results by label sets, matching a series
to any series whose labels are a subset of its own, and when each side holds
one series it joins them whatever their labels. PromQL `and` (with `on (...)`)
keeps exactly the series whose match labels agree; inside the query it keeps
that meaning.

Why A drops NaN samples (`>= -Inf`) unless the comparison is `!=`: in PromQL
`NaN > t` is false, so a 0/0 ratio never fires. Grafana 11.1 and later compare
the same way, but earlier versions run thresholds as math, where NaN stays NaN
and a NaN condition counts as firing. Without the sample the series is simply
absent, which is what it is in Prometheus too. For `!=` PromQL fires on NaN
and so does every Grafana version, so nothing is dropped.

Thresholds whose value `%f` does not print exactly (1e-7) go through math:
Grafana before 11.1 formats threshold parameters with `%f` (six decimals).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import promql_parser as pp

from provision import promql
from provision.config import Config, duration_seconds
from provision.build import rule_render_options
from provision.definitions import DefinitionError
from provision.promql_ast import PromQLError
from provision.promql_expand import ExpansionError, Expander
from provision.render import short_hash
from provision.rules import AlertRule, RuleGroup, render_rule

if TYPE_CHECKING:
    from provision.build import BuildResult

QUERY, REDUCE, CONDITION = "A", "B", "C"
EXPRESSIONS = "__expr__"
THRESHOLD_TYPES = {">": "gt", "<": "lt"}
QUERY_RANGE_SECONDS = 600  # an instant query reads only `to`; 10m is what Grafana's editor sets
SCHEDULER_STEP_SECONDS = 10  # Grafana's base evaluation interval: group intervals are multiples of it
UID_PREFIX = "rw-"


@dataclass(frozen=True)
class GrafanaRuleGroup:
    """The desired state of one Grafana rule group: folder, name, PUT body, provenance choice."""

    folder_uid: str
    name: str
    body: dict
    editable_in_ui: bool  # True: push with X-Disable-Provenance (provenance none, editable in the UI)

    @property
    def key(self) -> str:
        return f"{self.folder_uid}/{self.name}"


def render_grafana_rule_groups(result: BuildResult) -> list[GrafanaRuleGroup]:
    config = result.context.config
    settings = config.rules["grafana"]
    folder_uid = config.grafana["folder"]["uid"]
    expander = Expander.from_groups(result.groups, config.rules["interval"])
    alerts = [(group, alert) for group in result.groups for alert in group.alerts()]
    titles = _titles(alerts)
    _check_overrides(settings["overrides"], alerts, result.notices)
    renderer = _RuleRenderer(config, expander, folder_uid)
    out = []
    for group in result.groups:
        if not group.alerts():
            continue
        body = {
            "title": group.name,
            "folderUid": folder_uid,
            "interval": _interval_seconds(group, settings["interval"]),
            "rules": [renderer.rule(group, alert, titles[(group.name, alert.name, alert.severity)])
                      for alert in group.alerts()],
        }
        out.append(GrafanaRuleGroup(folder_uid, group.name, body, settings["editable_in_ui"]))
    result.notices.extend(f"grafana rules: {note}" for note in expander.notes)
    keep = sorted({alert.name for _, alert in alerts if alert.keep_firing_for})
    if keep:
        result.notices.append(f"grafana rules: keep_firing_for ({', '.join(keep)}) needs Grafana 12; "
                              "earlier versions ignore it")
    return out


class _RuleRenderer:
    def __init__(self, config: Config, expander: Expander, folder_uid: str):
        self.settings = config.rules["grafana"]
        self.datasource = config.grafana["datasource"]["uid"]
        self.org_id = config.grafana.get("org_id") or 1
        self.folder_uid = folder_uid
        self.expander = expander
        self.options = rule_render_options(config)

    def rule(self, group: RuleGroup, alert: AlertRule, title: str) -> dict:
        where = f"rule group {group.name}: alert {alert.name} ({alert.severity})"
        prometheus_form = render_rule(alert, **self.options)
        prometheus_form["annotations"]["description"] = alert.description  # without queried_detail: no query()
        override = self.settings["overrides"].get(alert.name, {})
        body: dict[str, Any] = {
            "uid": rule_uid(self.folder_uid, alert.name, alert.severity),
            "orgID": self.org_id,
            "folderUID": self.folder_uid,
            "ruleGroup": group.name,
            "title": title,
            "condition": CONDITION,
            "data": [self._query(alert, where), _reduce(), _condition(alert, where)],
            "noDataState": override.get("no_data_state", self.settings["no_data_state"]),
            "execErrState": override.get("exec_err_state", self.settings["exec_err_state"]),
            "for": _duration(alert.for_ or "0s"),
            "labels": {k: grafana_template(v, f"{where}: label {k}") for k, v in prometheus_form["labels"].items()},
            "annotations": {k: grafana_template(v, f"{where}: annotation {k}")
                            for k, v in prometheus_form["annotations"].items()},
            "isPaused": False,
        }
        if alert.keep_firing_for:
            body["keep_firing_for"] = _duration(alert.keep_firing_for)
        if self.settings["missing_series_evals_to_resolve"] is not None:
            body["missingSeriesEvalsToResolve"] = self.settings["missing_series_evals_to_resolve"]
        return body

    def _query(self, alert: AlertRule, where: str) -> dict:
        try:
            expr = self.expander.expand(data_query(alert))
        except (ExpansionError, PromQLError) as exc:
            raise DefinitionError(f"{where}: cannot build the Grafana query: {exc}") from None
        model = {
            "refId": QUERY,
            "datasource": {"type": "prometheus", "uid": self.datasource},
            "editorMode": "code",
            "expr": expr,
            "instant": True,
            "range": False,
            "intervalMs": 1000,
            "maxDataPoints": 43200,
            "legendFormat": "__auto",
        }
        return {"refId": QUERY, "relativeTimeRange": {"from": QUERY_RANGE_SECONDS, "to": 0},
                "datasourceUid": self.datasource, "model": model}


def data_query(alert: AlertRule) -> str:
    """The PromQL of data item A before inlining: the condition's query, NaN dropped, guards joined.

    An alert with alternatives is its whole Prometheus expression: each branch applies its own
    threshold there (comparisons drop NaN too), and C checks the loosest of them."""
    if alert.alternatives:
        return alert.expr()
    expr = alert.condition.query.expr
    if alert.condition.op != "!=":
        expr = f"{promql.paren(expr)} >= -Inf"
    for guard in alert.guards:
        on = f" on ({', '.join(guard.match_on)})" if guard.match_on is not None else ""
        expr = f"{expr} and{on} {promql.paren(guard.render())}"
    return expr


def _reduce() -> dict:
    # Strict mode (no settings): a NaN stays NaN, an Inf stays Inf, as in PromQL.
    model = {"refId": REDUCE, "datasource": {"type": EXPRESSIONS, "uid": EXPRESSIONS}, "type": "reduce",
             "expression": QUERY, "reducer": "last"}
    return _expression(REDUCE, model)


def _condition(alert: AlertRule, where: str) -> dict:
    op, threshold = _threshold(alert, where)
    if not math.isfinite(threshold):
        raise DefinitionError(f"{where}: threshold {threshold} is not a finite number")
    model: dict[str, Any] = {"refId": CONDITION, "datasource": {"type": EXPRESSIONS, "uid": EXPRESSIONS}}
    if op in THRESHOLD_TYPES and float(f"{threshold:f}") == threshold:
        model.update(type="threshold", expression=REDUCE,
                     conditions=[{"evaluator": {"type": THRESHOLD_TYPES[op], "params": [_number(threshold)]}}])
    else:
        model.update(type="math", expression=f"${REDUCE} {op} {_decimal(threshold)}")
    return _expression(CONDITION, model)


def _threshold(alert: AlertRule, where: str) -> tuple[str, float]:
    """The comparison C applies: the condition's own, or for alternatives the loosest branch
    threshold, which every sample that passed its own branch's filter in A also passes."""
    if not alert.alternatives:
        return alert.condition.op, alert.condition.threshold
    conditions = [branch.condition for branch in alert.branches()]
    ops = {c.op for c in conditions}
    if len(ops) > 1 or not ops <= set(THRESHOLD_TYPES):
        raise DefinitionError(f"{where}: alternatives must all compare with > or all with <")
    op = ops.pop()
    return op, (min if op == ">" else max)(c.threshold for c in conditions)


def _expression(ref_id: str, model: dict) -> dict:
    return {"refId": ref_id, "relativeTimeRange": {"from": 0, "to": 0}, "datasourceUid": EXPRESSIONS, "model": model}


# -- identity ----------------------------------------------------------------------


def rule_uid(folder_uid: str, name: str, severity: str) -> str:
    """A stable uid (at most 40 of [a-zA-Z0-9_-]): a readable slug of the name plus a hash of
    folder, name and severity. The group is left out so moving an alert between groups keeps
    its uid, its state and its history; the folder is in so two folders of one organisation
    (staging, production) never share a uid."""
    digest = short_hash(folder_uid, name, severity)
    room = 40 - len(UID_PREFIX) - len(digest) - 1
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:room].rstrip("-")
    return f"{UID_PREFIX}{slug}-{digest}" if slug else f"{UID_PREFIX}{digest}"


def _titles(alerts: list[tuple[RuleGroup, AlertRule]]) -> dict[tuple[str, str, str], str]:
    """Titles unique in the folder (Grafana requires it; the title is also the alertname label):
    the alert name, with the severity added where two alerts share a name."""
    shared = Counter(alert.name for _, alert in alerts)
    titles: dict[tuple[str, str, str], str] = {}
    seen: dict[str, str] = {}
    for group, alert in alerts:
        title = alert.name if shared[alert.name] == 1 else f"{alert.name} ({alert.severity})"
        if title in seen:
            raise DefinitionError(
                f"rule group {group.name}: alert {alert.name} with severity {alert.severity} is also defined in "
                f"rule group {seen[title]}; Grafana needs a distinct title for each alert of a folder")
        seen[title] = group.name
        titles[(group.name, alert.name, alert.severity)] = title
    return titles


def _check_overrides(overrides: dict, alerts: list[tuple[RuleGroup, AlertRule]], notices: list[str]) -> None:
    names = {alert.name for _, alert in alerts}
    for name in sorted(set(overrides) - names):
        notices.append(f"rules.grafana.overrides: no alert is named {name!r}; the override is not used")


def _interval_seconds(group: RuleGroup, configured: str | None) -> int:
    interval = configured or group.interval
    seconds = duration_seconds(interval)
    if seconds < SCHEDULER_STEP_SECONDS or seconds % SCHEDULER_STEP_SECONDS:
        raise DefinitionError(f"rule group {group.name}: interval {interval} is not a multiple of 10s, the step of "
                              "Grafana's alert scheduler; set rules.grafana.interval")
    return int(seconds)


# -- values --------------------------------------------------------------------------


def _duration(text: str) -> str:
    """A duration as Grafana writes it back (`60m` is returned as `1h`), so a re-read compares equal."""
    seconds = duration_seconds(text)
    return pp.display_duration(pp.parse_duration(text)) if seconds else "0s"


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() and abs(value) < 1e15 else value


def _decimal(value: float) -> str:
    """A plain decimal (no exponent) with the shortest digits that read back as `value`."""
    text = format(Decimal(repr(float(value))), "f")
    return text[:-2] if text.endswith(".0") else text


# -- templates -----------------------------------------------------------------------

_ACTION = re.compile(r"\{\{(.*?)\}\}", re.S)
_VALUE = re.compile(r"\$value(?!\w)")
_DOT_VALUE = re.compile(r"(?<![\w.$)\]])\.Value\b")
_QUERY_CALL = re.compile(r"(?<![\w.$])query\b")
_PROMETHEUS_ONLY = ("$externalLabels", "$externalURL")


def grafana_template(text: str, where: str) -> str:
    """A Prometheus annotation or label template as Grafana alerting expands it.

    Grafana runs Prometheus's template engine with its own data: `$labels` is the
    same, but `$value` is a string describing every expression's result; the
    number is `$values.B.Value` (the reduce step). `$externalLabels` and
    `$externalURL` are not defined and `query` returns nothing there.
    """

    def convert(match: re.Match) -> str:
        action = match.group(1)
        for name in _PROMETHEUS_ONLY:
            if name in action:
                raise DefinitionError(f"{where}: {name} is not available in Grafana-managed alert templates")
        if _QUERY_CALL.search(action):
            raise DefinitionError(f"{where}: query() does not run in Grafana-managed alert templates")
        action = _VALUE.sub(f"$values.{REDUCE}.Value", action)
        action = _DOT_VALUE.sub(f"$values.{REDUCE}.Value", action)
        return "{{" + action + "}}"

    return _ACTION.sub(convert, text)
