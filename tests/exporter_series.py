"""Input series for `promtool test rules` taken from a real exporter's /metrics body.

The fixtures in tests/fixtures/exporters/ are scrapes of each gateway's
exporter. Here every sample of such a body becomes one input series with the
exporter's exact name and labels (`le` strings included), read as one minute of
traffic: counters and histogram series grow by the sample's value every
minute, gauges stay at it. `scale` multiplies chosen series to make faults.

The expected numbers of a test come from the same samples through the small
reference functions below (sums, ratios, Prometheus's histogram_quantile), not
from the rules under test.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from promtool_helpers import ExprCheck, Series

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "exporters"
STEP_SECONDS = 60


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict
    value: float
    kind: str  # counter | histogram | gauge | ...: the family's type

    def get(self, label: str) -> str:
        return self.labels.get(label, "")


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def parse(text: str, target: dict[str, str] | None = None) -> list[Sample]:
    """Samples of an exposition body, without the `_created` series Prometheus ignores.

    `target` adds the labels the scrape would add (job, instance) where the
    exporter does not set them itself.
    """
    out = []
    for family in text_string_to_metric_families(text):
        if family.name.endswith("_created"):
            continue
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            labels = {**(target or {}), **sample.labels}
            out.append(Sample(sample.name, labels, float(sample.value), family.type))
    return out


def selector(name: str, labels: dict[str, str]) -> str:
    def quote(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    pairs = ", ".join(f"{k}={quote(v)}" for k, v in sorted(labels.items()))
    return f"{name}{{{pairs}}}"


def as_series(samples: Iterable[Sample], steps: int, scale: Callable[[Sample], float] = lambda s: 1.0) -> list[Series]:
    """One input series per sample: one fixture body of traffic per minute."""
    series = []
    for sample in samples:
        value = sample.value * scale(sample)
        if sample.kind == "gauge":
            values = f"{value!r}x{steps}"
        else:
            values = f"0+{value!r}x{steps}"
        series.append(Series(selector(sample.name, sample.labels), values))
    return series


def per_second(samples: Iterable[Sample], scale: Callable[[Sample], float] = lambda s: 1.0) -> float:
    """The rate the rules should see for these counter samples, per second."""
    return sum(s.value * scale(s) for s in samples) / STEP_SECONDS


def histogram_quantile(q: float, buckets: dict[str, float]) -> float:
    """Prometheus's histogram_quantile over cumulative bucket counts keyed by `le` string."""
    points = sorted((float(le), count) for le, count in buckets.items())
    if len(points) < 2 or not math.isinf(points[-1][0]):
        return math.nan
    rank = q * points[-1][1]
    index = next(i for i, (_, count) in enumerate(points) if count >= rank)
    if index == len(points) - 1:
        return points[-2][0]
    upper, count = points[index]
    lower, below = (0.0, 0.0) if index == 0 else points[index - 1]
    return lower + (upper - lower) * (rank - below) / (count - below)


def buckets_by(samples: Iterable[Sample], bucket_series: str, label: str,
               scale: Callable[[Sample], float] = lambda s: 1.0) -> dict[str, dict[str, float]]:
    """Cumulative bucket counts summed per value of `label` (e.g. per model), keyed by `le`."""
    out: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for s in samples:
        if s.name == bucket_series:
            out[s.get(label)][s.labels["le"]] += s.value * scale(s)
    return out


def close_to(at: str, expr: str, labels: str, value: float, rel: float = 1e-9) -> ExprCheck:
    """`expr` (one series with `labels`) equals `value` within a relative tolerance.

    promtool compares sample values exactly; the comparison is done in PromQL instead.
    """
    tolerance = max(abs(value) * rel, 1e-12)
    return ExprCheck(at, f"abs(({expr}) - {value!r}) <= bool {tolerance!r}", [{"labels": labels, "value": 1}])


def only(expr: str, **labels: str) -> str:
    """The series of `expr`'s result that carry these label values."""
    one = "vector(1)"
    for label, value in labels.items():
        one = f'label_replace({one}, "{label}", "{value}", "", "")'
    return f"({expr}) and on ({', '.join(labels)}) {one}"


def absent(at: str, expr: str) -> ExprCheck:
    """`expr` returns nothing at `at`."""
    return ExprCheck(at, expr, [])


def firing(at: str, alerts: Iterable[dict[str, str]], only: str | None = None) -> ExprCheck:
    """Exactly these alerts (label sets with alertname) are firing at `at`; of alert `only` if given.

    SLO burn alerts are left to tests/test_slo_rules.py unless named in `only`: a burst of
    failures also burns the error budget, which is right but not what these cases test."""
    samples = [{"labels": selector("ALERTS", {**alert, "alertstate": "firing"}), "value": 1} for alert in alerts]
    which = {"alertstate": "firing", **({"alertname": only} if only else {})}
    expr = selector("ALERTS", which) if only else selector("ALERTS", which)[:-1] + ', alertname!~".+BudgetBurn"}'
    return ExprCheck(at, expr, sorted(samples, key=lambda s: s["labels"]))
