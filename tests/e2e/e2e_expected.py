"""What each dashboard panel and alert should show for a simulated scenario.

Values come from the simulator's Expectation (the scenario's long-run rates,
shares and distributions), never from Prometheus. Tolerances follow from what
a window can resolve. With steady arrivals each (model, status) count in a
window is within two requests of its long-run value, so a rate or ratio summed
over k such series may be off by 2k requests in the window (a handful of 401s
in five minutes cannot show their share more exactly). A quantile is only
known within its histogram bucket.
"""

from __future__ import annotations

import bisect
import calendar
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from provision.simulate import Expectation

SUCCESS = {"200"}
FAILED = {"500", "502", "503", "timeout", "error"}
RELATIVE = {"rate": 0.02, "ratio": 0.03, "tokens": 0.05, "spend": 0.05, "latency": 0.06, "integral": 0.05,
            "exact": 1e-9}


@dataclass(frozen=True)
class Spec:
    """One panel target: the labels its series carry and the value each should have."""

    by: tuple[str, ...]
    # rate | ratio | tokens | spend | latency | quantile | inflight | exact | any (data only) |
    # integral (value() is per second; the panel sums recorded samples over the covered seconds)
    kind: str
    value: Callable[[dict], float]
    models: Callable[[dict], list[str] | None]  # the models behind a series (None: all)
    keys: list[dict] | None = None  # the series expected; None: one series without labels
    statuses: frozenset[str] | None = None  # the statuses counted (rates and ratios)
    scale: float = 1.0  # a ratio divided by an error budget (burn rates) is that much less certain
    optional: list[dict] = field(default_factory=list)  # series that may be missing (too rare to be seen yet)


def status_class(value: str) -> str:
    """What the dashboards' status_class label shows for a status label value: 2xx/4xx/5xx, else itself."""
    return f"{value[0]}xx" if len(value) == 3 and value.isdigit() else value


class PanelExpectations:
    def __init__(self, expectation: Expectation, pricing: dict, buckets: tuple[float, ...], *,
                 status_value: Callable[[str], str] = str, in_flight_by_model: bool = True,
                 budget: float | None = None, slo_target: float | None = None):
        """`status_value`: the profile's status label value for a contract status (the recorder's choice);
        `in_flight_by_model`: whether the profile's in-flight gauge carries the model label."""
        self.e = expectation
        self.pricing = pricing
        self.buckets = tuple(sorted(buckets))
        self.models = [m.name for m in expectation.traffic.models if expectation.shape(m.name).rate > 0]
        self.priced = [m for m in self.models if m in pricing]
        self.unpriced = [m for m in self.models if m not in pricing]
        self.in_flight_by_model = in_flight_by_model
        self.budget = budget
        self.slo_target = slo_target
        self.covered_seconds = 0.0  # recorded history an integral over $__range sees; set by the harness
        self.classes: dict[str, set[str]] = {}
        for model in self.models:
            for status, share in expectation.shape(model).shares().items():
                if share > 0:
                    self.classes.setdefault(status_class(status_value(status)), set()).add(status)

    # -- building blocks -----------------------------------------------------

    @staticmethod
    def _models_of(by_model: bool):
        return (lambda k: [k["model"]]) if by_model else (lambda k: None)

    def _rate(self, statuses=None, by_model=False) -> Spec:
        models = self._models_of(by_model)
        return Spec(("model",) if by_model else (), "rate", lambda k: self.e.request_rate(models(k), statuses),
                    models, self._model_keys(by_model), frozenset(statuses) if statuses else None)

    def _ratio(self, statuses, by_model=False) -> Spec:
        models = self._models_of(by_model)
        return Spec(("model",) if by_model else (), "ratio", lambda k: self.e.ratio(statuses, models(k)),
                    models, self._model_keys(by_model), frozenset(statuses))

    def _quantile(self, q, by_model=False) -> Spec:
        models = self._models_of(by_model)
        return Spec(("model",) if by_model else (), "quantile", lambda k: self.e.latency_quantile(q, models(k)),
                    models, self._model_keys(by_model))

    def _mean_latency(self, models) -> float:
        rates = {m: self.e.request_rate([m]) for m in models}
        return sum(rates[m] * self.e.mean_latency(m) for m in models) / sum(rates.values())

    def _tokens(self, key: dict, models=None) -> float:
        types = [key["token_type"]] if "token_type" in key else ["prompt", "completion"]
        models = models or ([key["model"]] if "model" in key else None)
        return sum(self.e.token_rate(t, models) for t in types)

    def _spend(self, key: dict) -> float:
        models = [key["model"]] if "model" in key else self.priced
        if "token_type" not in key:
            return self.e.spend_per_hour(self.pricing, models)
        price = "input" if key["token_type"] == "prompt" else "output"
        return sum(self.e.token_rate(key["token_type"], [m]) * self.pricing[m][price] for m in models) * 3600 / 1e6

    def _spend_per_second(self, key: dict) -> float:
        return self._spend(key) / 3600

    def _same_traffic_on(self, key: dict) -> float:
        """USD/s the tokens of every model would cost at one model's prices."""
        price = self.pricing[key["model"]]
        return (self.e.token_rate("prompt") * price["input"] + self.e.token_rate("completion") * price["output"]) / 1e6

    def _cost_per_1k_requests(self, key: dict) -> float:
        return self._spend_per_second(key) / self.e.request_rate([key["model"]]) * 1000

    def _cost_specs(self) -> dict[str, list[Spec]]:
        """The cost dashboard: rates, integrals over $__range, and the price table itself."""
        everything, per_model = self._models_of(False), self._models_of(True)
        priced_keys = self._model_keys(True, self.priced)
        month_to_date = [Spec((), "integral", self._spend_per_second, everything)]
        by_model = [Spec(("model",), "integral", self._spend_per_second, per_model, priced_keys)]
        price_keys = [{"model": m, "token_type": t} for m in self.pricing for t in ("prompt", "completion")]
        return {
            "Spend rate": [Spec((), "spend", self._spend, everything)],
            "Today": month_to_date,
            "Month to date": month_to_date,
            # month to date plus the last day's rate times the rest of the month: needs a day of history
            "Projected month": [Spec((), "any", self._spend, everything)],
            "Models without a price": [Spec((), "exact", lambda k: len(self.unpriced), everything)],
            "Spend rate by model": [Spec(("model",), "spend", self._spend, per_model, priced_keys)],
            "Share of spend by model": by_model,
            "Month to date by model": by_model,
            "Cost per 1k requests by model": [Spec(("model",), "spend", self._cost_per_1k_requests, per_model,
                                                   priced_keys)],
            "Spend rate by token type": [Spec(("token_type",), "spend", self._spend, everything,
                                              self._token_type_keys())],
            "The same traffic on each model": [
                Spec(("model",), "integral", self._same_traffic_on, per_model, self._model_keys(True, list(self.pricing))),
                Spec((), "integral", self._spend_per_second, everything)],
            "Price table": [Spec(("model", "token_type"), "exact",
                                 lambda k: self.pricing[k["model"]]["input" if k["token_type"] == "prompt" else "output"],
                                 everything, price_keys)],
            "Tokens of unpriced models": [Spec(("model",), "integral", lambda k: self._tokens(k), per_model,
                                               self._model_keys(True, self.unpriced))],
            "Budget used": [Spec((), "integral", lambda k: self._spend_per_second(k) / self.budget, everything)],
        }

    def _slo_specs(self) -> dict[str, list[Spec]]:
        """The availability SLO dashboard. Every window's error ratio is the scenario's: rules over
        windows longer than the history average the history there is."""
        if self.slo_target is None:
            return {}
        everything, target = self._models_of(False), self.slo_target
        failed = frozenset(FAILED)
        budget = 1 - target
        sli = Spec((), "ratio", lambda k: 1 - self.e.ratio(FAILED), everything, statuses=failed)
        burn = Spec((), "ratio", lambda k: self.e.ratio(FAILED) / budget, everything, statuses=failed, scale=1 / budget)
        left = Spec((), "ratio", lambda k: 1 - self.e.ratio(FAILED) / budget, everything, statuses=failed,
                    scale=1 / budget)
        objective = Spec((), "exact", lambda k: target, everything)
        return {
            "Objective": [objective],
            "SLI over 30d": [sli],
            "Error budget left": [left],
            "Burn rate (1h)": [burn],
            "Error budget left over time": [left],
            "Burn rate": [burn] * 4,
            "Burn rate by window": [burn] * 8,
            "SLI": [sli, sli, objective],
        }

    def _model_keys(self, by_model: bool, models=None) -> list[dict] | None:
        return [{"model": m} for m in (models or self.models)] if by_model else None

    def _token_type_keys(self, models=None) -> list[dict]:
        return [{**k, "token_type": t} for k in ([{}] if models is None else [{"model": m} for m in models])
                for t in ("prompt", "completion")]

    def _status_classes(self, seen: bool) -> list[dict]:
        """Status classes with (seen=True) or without enough requests in five minutes to be sure to exist."""
        return [{"status_class": c} for c, statuses in self.classes.items()
                if (self.e.request_rate(None, statuses) * 300 >= 3) == seen]

    # -- the table -----------------------------------------------------------

    def specs(self) -> dict[str, list[Spec]]:
        """Panel title -> one Spec per target (refId order)."""
        e, everything, per_model = self.e, self._models_of(False), self._models_of(True)
        by_class = Spec(("status_class",), "rate", lambda k: e.request_rate(None, self.classes[k["status_class"]]),
                        everything, self._status_classes(True), optional=self._status_classes(False))
        if self.in_flight_by_model:
            in_flight_by_model = Spec(("model",), "inflight", lambda k: e.in_flight(k["model"]), per_model,
                                      self._model_keys(True))
        else:  # a gauge without a model label sums to one series without a model
            in_flight_by_model = Spec(("model",), "inflight", lambda k: sum(e.in_flight(m) for m in self.models),
                                      everything, [{"model": ""}])
        tokens_by_type = Spec(("token_type",), "tokens", self._tokens, everything, self._token_type_keys())
        spend_by_type = Spec(("token_type",), "spend", self._spend, everything, self._token_type_keys())
        in_flight = Spec((), "inflight", lambda k: sum(e.in_flight(m) for m in self.models), everything)
        mean_all = Spec((), "latency", lambda k: self._mean_latency(self.models), everything)
        return {
            # overview: At a glance
            "Requests/s": [self._rate()],
            "Success ratio": [self._ratio(SUCCESS)],
            "Error ratio": [self._ratio(FAILED)],
            "P95 latency": [self._quantile(0.95)],
            "Tokens/s": [Spec((), "tokens", self._tokens, everything)],
            "Spend": [Spec((), "spend", self._spend, everything)],
            "In flight": [in_flight],
            "Rate limited": [self._ratio({"429"})],
            # overview: Traffic
            "Request rate by model": [self._rate(by_model=True)],
            "Request rate by status class": [by_class],
            "Rate limited (429) and unauthorized (401)": [self._rate({"429"}, True), self._rate({"401"}, True)],
            "In-flight requests by model": [in_flight_by_model],
            # overview: Failures
            "Error ratio by model": [self._ratio(FAILED, True)],
            "Success ratio by model": [self._ratio(SUCCESS, True)],
            "Rate-limit and auth failure ratio": [self._ratio({"429"}, True), self._ratio({"401"}, True)],
            "Failures by model": [self._rate(FAILED, True)],
            # overview: Latency
            "Latency P50 / P95 / P99": [self._quantile(0.5), self._quantile(0.95), self._quantile(0.99)],
            "P95 latency by model": [self._quantile(0.95, True)],
            "P99 latency by model": [self._quantile(0.99, True)],
            "Mean latency by model": [Spec(("model",), "latency", lambda k: e.mean_latency(k["model"]), per_model,
                                           self._model_keys(True))],
            # overview: Tokens and spend
            "Token throughput by model": [Spec(("model", "token_type"), "tokens", self._tokens, per_model,
                                               self._token_type_keys(self.models))],
            "Prompt vs completion": [tokens_by_type],
            "Spend by model": [Spec(("model",), "spend", self._spend, per_model, self._model_keys(True, self.priced))],
            "Tokens of models missing from the price table": [
                Spec(("model",), "tokens", self._tokens, per_model, self._model_keys(True, self.unpriced))],
            # model detail (all models selected)
            "Requests by status class": [by_class],
            "Error and success ratio": [self._ratio(FAILED), self._ratio(SUCCESS)],
            "429 and 401": [self._rate({"429"}), self._rate({"401"})],
            "Mean latency": [mean_all],
            "Tokens by type": [tokens_by_type],
            "Spend by token type": [spend_by_type],
            **self._cost_specs(),
            **self._slo_specs(),
        }

    # -- comparing -------------------------------------------------------------

    def problem(self, spec: Spec, key: dict, actual: float, window: float) -> str | None:
        """Why `actual` is not what the spec expects for this series, or None."""
        statuses = spec.statuses or (self.classes[key["status_class"]] if "status_class" in key else None)
        return self.mismatch(spec.kind, actual, spec.value(key), window=window, models=spec.models(key),
                             statuses=statuses, scale=spec.scale)

    def mismatch(self, kind: str, actual: float, expected: float, *, window: float, models=None,
                 statuses=None, scale: float = 1.0) -> str | None:
        """Why `actual` is too far from `expected` for a value of this kind over `window` seconds, or None."""
        if kind == "quantile":
            allowed = self.acceptable_buckets(expected)
            if self.bucket(actual) not in allowed:
                return f"{actual:.4g} is outside the bucket(s) {allowed} of the true quantile {expected:.4g}"
            return None
        if kind == "inflight":
            return None if 0 <= actual <= 3 * expected + 3 else f"{actual:g} in flight, expected about {expected:.3g}"
        if kind == "any":
            return None
        if kind == "integral":  # the rate integrated over the seconds of recorded history the range covers
            expected *= self.covered_seconds
            if abs(actual - expected) <= RELATIVE[kind] * expected:
                return None
            return f"{actual:.6g}, expected {expected:.6g} over {self.covered_seconds:g}s of recorded history"
        models = models or self.models
        support = max(self.e.request_rate(models), 1e-9)
        counts = 2 * self.series_counted(models, statuses)
        timeout = self.e.traffic.timeout_seconds
        slack = {"rate": counts / window, "ratio": scale * counts / (support * window),
                 "latency": 1.5 * timeout / (support * window)}.get(kind, 0.0)
        if abs(actual - expected) <= RELATIVE[kind] * abs(expected) + slack:
            return None
        return f"{actual:.6g}, expected {expected:.6g} (±{RELATIVE[kind]:.0%} +{slack:.3g})"

    def series_counted(self, models: list[str], statuses) -> int:
        """How many (model, status) counts add up to a value; one per model when all statuses count."""
        if statuses is None:
            return len(models)
        return sum(1 for m in models for status, share in self.e.shape(m).shares().items()
                   if status in statuses and share > 0)

    def bucket(self, value: float) -> int:
        """Index of the histogram bucket holding `value` (len(buckets) for +Inf)."""
        if math.isinf(value) or math.isnan(value):
            return len(self.buckets)
        return bisect.bisect_left(self.buckets, value - 1e-12)

    def acceptable_buckets(self, true_value: float) -> list[int]:
        """The true value's bucket, and its neighbour when it sits within 5% of the shared bound.

        histogram_quantile never returns more than the highest finite bound, so the
        +Inf bucket reads as that bound's bucket.
        """
        found = {self.bucket(true_value), self.bucket(true_value * 1.05), self.bucket(true_value * 0.95)}
        top = len(self.buckets) - 1
        return sorted({min(b, top) for b in found})


def expected_alerts(e: Expectation, config, buckets: tuple[float, ...]) -> tuple[set, set]:
    """(alerts that must be pending or firing, alerts that may be): (alertname, model, severity) keys."""
    alerts = config.alerts
    must, may = set(), set()

    def compare(key, value, threshold):
        if value > threshold * 1.1:
            must.add(key)
        elif value > threshold * 0.9:
            may.add(key)

    for model in (m.name for m in e.traffic.models):
        if e.request_rate([model]) <= alerts["min_request_rate"]:
            continue
        failed = e.ratio(FAILED, [model])
        for severity in ("warning", "critical"):
            compare(("LLMGatewayErrorRatioHigh", model, severity), failed, alerts["error_ratio"][severity])
        compare(("LLMGatewayRateLimited", model, "warning"), e.ratio({"429"}, [model]),
                alerts["rate_limited_ratio"]["threshold"])
        compare(("LLMGatewayAuthFailures", model, "critical"), e.ratio({"401"}, [model]),
                alerts["auth_failure_ratio"]["threshold"])
        threshold = alerts["latency_p95"]["threshold_seconds"]
        p95 = e.latency_quantile(0.95, [model])
        ordered = sorted(buckets)
        lower = max([b for b in ordered if b < p95], default=0.0)
        upper = min([b for b in ordered if b >= p95], default=math.inf)
        if lower >= threshold:
            must.add(("LLMGatewayLatencyP95High", model, "warning"))
        elif upper > threshold:
            may.add(("LLMGatewayLatencyP95High", model, "warning"))
    target = config.data["slo"]["availability"]["target"]
    if target is not None:  # one page (14.4x or 6x) and one ticket (3x or 1x), every window burning alike
        burn = e.ratio(FAILED) / (1 - target)
        compare(("LLMGatewayErrorBudgetBurn", None, "critical"), burn, 6)
        compare(("LLMGatewayErrorBudgetBurn", None, "warning"), burn, 1)
    budget = config.data["cost"]["monthly_budget_usd"]
    if budget:
        today = datetime.now(timezone.utc)
        days = calendar.monthrange(today.year, today.month)[1]
        compare(("LLMGatewaySpendOverBudget", None, "warning"),
                e.spend_per_hour(config.pricing) / 3600 * days * 86400, budget)
    return must, may
