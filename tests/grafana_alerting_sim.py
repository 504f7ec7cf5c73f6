"""Grafana's evaluation of a Grafana-managed alert rule, in Python, for the equivalence test.

It takes the rule body relaywatch renders (data items A = Prometheus instant
query, B = reduce, C = threshold or math) and the result of query A at each
evaluation time, and says which alert instances are firing. Each step follows
Grafana's source (grafana/grafana, 11.x-12.x):

- reduce (pkg/expr/mathexp/reduce.go): strict mode (no `settings.mode`)
  returns the last point as is, NaN and Inf included; an empty series gives
  NaN. An instant query's value is already a number: reduce passes it through
  (pkg/expr/commands.go, ReduceCommand.Execute, case mathexp.Number).
- threshold (pkg/expr/threshold.go, 11.1+): a Go comparison per value,
  1 or 0; NaN compares false. A nil value stays nil. Before 11.1 (grafana
  PR #86062) a threshold ran as the math expression `${B} > %f`: the
  parameter printed with six decimals, and NaN gave NaN. `legacy_threshold`
  selects that behaviour.
- math (pkg/expr/mathexp/exp.go, binaryOp): NaN in either operand gives NaN;
  otherwise 1 or 0. Joins of two results by labels (`union`) are implemented
  too, only to show why relaywatch does not use them.
- the condition (pkg/services/ngalert/eval/eval.go, buildResult): nil is
  NoData, 0 is Normal, anything else (NaN too) is Alerting. A query with no
  series at all is one NoData result with no labels.
- state (pkg/services/ngalert/state/state.go): Alerting from Normal goes
  Pending when `for` > 0 and becomes Alerting once `now - StartsAt >= for`;
  Normal after Alerting goes Recovering while `keep_firing_for` lasts;
  NoData maps through noDataState (OK -> Normal, Alerting -> Alerting).
- missing series (pkg/services/ngalert/state/manager.go,
  processMissingSeriesStates / stateIsStale): a state whose series is absent
  is left as it is until `now - LastEvaluationTime >= N * interval`
  (N = missingSeriesEvalsToResolve, default 2), then resolved and dropped.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

Labels = frozenset  # of (name, value) pairs

NORMAL, PENDING, ALERTING, RECOVERING, NODATA = "Normal", "Pending", "Alerting", "Recovering", "NoData"
_PREDICATES = {
    "gt": lambda v, p: v > p[0], "lt": lambda v, p: v < p[0],
    "eq": lambda v, p: v == p[0], "ne": lambda v, p: v != p[0],
    "gte": lambda v, p: v >= p[0], "lte": lambda v, p: v <= p[0],
    "within_range": lambda v, p: p[0] < v < p[1], "outside_range": lambda v, p: v < p[0] or v > p[1],
}
_COMPARE = {">": lambda a, b: a > b, "<": lambda a, b: a < b, ">=": lambda a, b: a >= b,
            "<=": lambda a, b: a <= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}
_MATH_COMPARISON = re.compile(r"^\$\{?(\w+)\}?\s*(>=|<=|==|!=|>|<)\s*(-?[0-9.]+)$")


def parse_duration_seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text))


# -- expressions ---------------------------------------------------------------


def reduce_last_strict(value: float | None) -> float | None:
    return value


def threshold(kind: str, params: list[float], value: float | None, legacy: bool = False) -> float | None:
    if value is None:
        return None
    if legacy:
        return math_binary({"gt": ">", "lt": "<"}[kind], value, float(f"{params[0]:f}"))
    return 1.0 if _PREDICATES[kind](value, params) else 0.0


def math_binary(op: str, a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b):
        return math.nan
    return 1.0 if _COMPARE[op](a, b) else 0.0


def math_union(a: dict[Labels, float], b: dict[Labels, float]) -> list[tuple[Labels, float, float]]:
    """How Grafana's math pairs two multi-series operands (mathexp union)."""
    unions = []
    for la, va in a.items():
        for lb, vb in b.items():
            if la == lb or not la or not lb:
                unions.append((la or lb, va, vb))
            elif len(la) == len(lb):
                continue
            elif lb <= la:
                unions.append((la, va, vb))
            elif la <= lb:
                unions.append((lb, va, vb))
    if not unions and len(a) == 1 and len(b) == 1:
        # "In the case of only 1 thing on each side of the operator, we combine them and strip the tags."
        (va,), (vb,) = a.values(), b.values()
        unions.append((frozenset(), va, vb))
    return unions


def condition_state(value: float | None) -> str:
    if value is None:
        return NODATA
    return NORMAL if value == 0 else ALERTING


# -- one rule ----------------------------------------------------------------------


@dataclass
class _State:
    state: str
    starts_at: float
    last_eval: float


class GrafanaRule:
    """A rendered rule body, evaluated step by step from query A's results."""

    def __init__(self, body: dict, interval_seconds: float, legacy_threshold: bool = False):
        self.body = body
        self.legacy_threshold = legacy_threshold
        self.interval = interval_seconds
        self.for_ = parse_duration_seconds(body["for"])
        self.keep_firing_for = parse_duration_seconds(body.get("keep_firing_for", "0s"))
        self.missing_evals = body.get("missingSeriesEvalsToResolve", 2)
        items = {item["refId"]: item for item in body["data"]}
        self.query_ref = next(r for r, i in items.items() if i["datasourceUid"] != "__expr__")
        self.items = items
        self.states: dict[Labels, _State] = {}

    def query(self) -> str:
        return self.items[self.query_ref]["model"]["expr"]

    def condition_values(self, series: dict[Labels, float]) -> dict[Labels, float | None]:
        """The condition's value per series, running the expression chain."""
        values: dict[str, dict[Labels, float | None]] = {self.query_ref: dict(series)}
        pending = [r for r in self.items if r != self.query_ref]
        while pending:
            ref = pending.pop(0)
            model = self.items[ref]["model"]
            source = model["expression"].lstrip("$").strip("{}") if model["type"] != "math" else None
            if model["type"] == "reduce":
                values[ref] = {k: reduce_last_strict(v) for k, v in values[source].items()}
            elif model["type"] == "threshold":
                evaluator = model["conditions"][0]["evaluator"]
                values[ref] = {k: threshold(evaluator["type"], evaluator["params"], v, self.legacy_threshold)
                               for k, v in values[source].items()}
            elif model["type"] == "math":
                match = _MATH_COMPARISON.match(model["expression"].strip())
                if not match:
                    raise NotImplementedError(f"math expression {model['expression']!r}")
                var, op, number = match.groups()
                values[ref] = {k: (None if v is None else math_binary(op, v, float(number)))
                               for k, v in values[var].items()}
            else:
                raise NotImplementedError(model["type"])
        return values[self.body["condition"]]

    def evaluate(self, now: float, series: dict[Labels, float]) -> None:
        """One evaluation at `now`: `series` is query A's instant result (labels -> value)."""
        if series:
            results = {labels: condition_state(v) for labels, v in self.condition_values(series).items()}
        else:
            results = {frozenset(): NODATA}
        for labels, result in results.items():
            if result == NODATA:
                result = {"OK": NORMAL, "Alerting": ALERTING}.get(self.body["noDataState"], NODATA)
            self._transition(labels, result, now)
        for labels in [k for k, s in self.states.items() if k not in results]:
            state = self.states[labels]
            evals = 1 if state.state == NODATA else self.missing_evals  # NoData and Error states resolve at once
            if now - state.last_eval >= evals * self.interval:
                del self.states[labels]  # resolved: MissingSeries

    def _transition(self, labels: Labels, result: str, now: float) -> None:
        state = self.states.get(labels)
        if state is None:
            state = self.states[labels] = _State(NORMAL, now, now)
        state.last_eval = now
        if result == ALERTING:
            if state.state == ALERTING:
                return
            if state.state == PENDING:
                if now - state.starts_at >= self.for_:
                    state.state, state.starts_at = ALERTING, now
                return
            if state.state != RECOVERING and self.for_ > 0:
                state.state, state.starts_at = PENDING, now
            else:
                state.state, state.starts_at = ALERTING, now
        elif result == NORMAL:
            if state.state == RECOVERING:
                if now - state.starts_at >= self.keep_firing_for:
                    state.state, state.starts_at = NORMAL, now
            elif state.state == ALERTING and self.keep_firing_for > 0:
                state.state, state.starts_at = RECOVERING, now
            else:
                state.state, state.starts_at = NORMAL, now
        else:
            state.state = NODATA

    def firing(self) -> list[Labels]:
        """Instances Grafana sends to the Alertmanager as firing (Recovering still fires)."""
        return sorted((k for k, s in self.states.items() if s.state in (ALERTING, RECOVERING)), key=sorted)
