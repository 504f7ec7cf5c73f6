"""`promtool test rules` for the SLO burn-rate alerts: which fire, and when.

Rules come from a real build (the default config unless a case sets `slo`). Traffic is
one job and one model at 1000 requests per minute unless said otherwise; each scenario is
a list of phases (minutes, share of failed requests) written in expanding notation, so a
month stays a few lines. Default objective: 98.5% over 30 days, i.e. a 1.5% error budget,
so the pairs fire above these error ratios: page 21.6% (1h and 5m) or 9% (6h and 30m),
ticket 4.5% (1d and 2h) or 1.5% (3d and 6h).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from conftest import REPO, require_binary
from promtool_helpers import AlertCheck, ExprCheck, Series, run_promtool_test, write_test_file
from provision import build
from provision.config import from_mapping

JOB = 'job="llm-gateway", instance="gw-1:8000"'
BURN = 'ALERTS{alertstate="firing", alertname=~".+BudgetBurn"}'
SEVERITY = {"1h": "critical", "6h": "critical", "1d": "warning", "3d": "warning"}
AVAILABILITY, LATENCY = "LLMGatewayErrorBudgetBurn", "LLMGatewayLatencyBudgetBurn"
HOUR, DAY = 60, 1440


@dataclass(frozen=True)
class Phase:
    minutes: int
    bad: float  # share of requests that fail (or are slow, for latency)
    per_minute: float = 1000


def counter(increments: list[tuple[int, float]]) -> str:
    """A counter that grows by `per_minute` for `minutes` samples per phase, in expanding notation.

    Increments must be whole: promtool adds them up in floating point, and a fractional sum
    that ends a hair above the next segment's start reads as a counter reset."""
    parts, value = [], 0
    for minutes, per_minute in increments:
        step = round(per_minute)
        assert abs(step - per_minute) < 1e-9, f"increment {per_minute} is not a whole number"
        start = value if not parts else value + step
        count = minutes if not parts else minutes - 1
        parts.append(f"{start}+{step}x{count}")
        value = start + count * step
    return " ".join(parts)


def requests(phases: list[Phase], model: str = "gpt-4.1") -> list[Series]:
    labels = f'{JOB}, model="{model}"'
    good = counter([(p.minutes, p.per_minute * (1 - p.bad)) for p in phases])
    bad = counter([(p.minutes, p.per_minute * p.bad) for p in phases])
    return [Series(f'holysheep_requests_total{{{labels}, status_code="200"}}', good),
            Series(f'holysheep_requests_total{{{labels}, status_code="500"}}', bad)]


def latency(phases: list[Phase], le: str, model: str = "gpt-4.1") -> list[Series]:
    """Latency histogram where a `bad` share of requests is slower than the `le` bucket."""
    labels = f'{JOB}, model="{model}"'
    fast = counter([(p.minutes, p.per_minute * (1 - p.bad)) for p in phases])
    total = counter([(p.minutes, p.per_minute) for p in phases])
    return [Series(f'holysheep_request_latency_seconds_bucket{{{labels}, le="{le}"}}', fast),
            Series(f'holysheep_request_latency_seconds_bucket{{{labels}, le="+Inf"}}', total),
            Series(f"holysheep_request_latency_seconds_count{{{labels}}}", total)]


def burning(minute: int, *long_windows: str, alert: str = AVAILABILITY, model: str | None = None,
            among: str = ".+") -> ExprCheck:
    """Exactly these burn alerts (by the long window that fired, of those matching `among`) are
    firing `minute` minutes in: the page's 1h and 6h pairs, the ticket's 1d and 3d pairs."""
    samples = []
    for window in long_windows:
        labels = {"alertname": alert, "window": window, "severity": SEVERITY[window]}
        if model:
            labels["model"] = model
        samples.append({"labels": "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}",
                        "value": 1})
    selector = BURN[:-1] + f', window=~"{among}"}}'
    return ExprCheck(f"{minute}m", f"count by (alertname, window, severity, model) ({selector})", samples)


def never(minute: int, severity: str | None = None) -> ExprCheck:
    """No burn alert (of `severity`) fired at any moment of the first `minute` minutes."""
    selector = BURN[:-1] + f', severity="{severity}"}}' if severity else BURN
    return ExprCheck(f"{minute}m", f"count_over_time({selector}[{minute}m])", [])


def within(minute: int, expr: str, low: float, high: float) -> ExprCheck:
    """`expr` is between `low` and `high` at `minute`."""
    return ExprCheck(f"{minute}m", f"count(({expr}) > {low!r} < {high!r})", [{"labels": "{}", "value": 1}])


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_binary("promtool")


def built_rules(tmp_path: Path, slo: dict | None = None) -> list[Path]:
    config = from_mapping({"slo": slo} if slo else {}, root=REPO)
    build.write(build.build(config), tmp_path / "build")
    rules = tmp_path / "build" / "rules"
    return [rules / "llm-gateway-recording.yaml", rules / "llm-gateway-slo.yaml"]


def run(promtool: str, tmp_path: Path, rules: list[Path], series: list[Series], checks: list[ExprCheck],
        *, every: str = "1m", alerts: list[AlertCheck] = ()) -> None:
    # Evaluate in dependency order, as Prometheus would within one interval.
    order = [g["name"] for path in rules for g in yaml.safe_load(path.read_text())["groups"]]
    test = write_test_file(tmp_path / "test.yaml", rules, series, alerts=alerts, exprs=checks,
                           evaluation_interval=every, group_eval_order=order)
    run_promtool_test(promtool, test)


def test_a_total_outage_pages_as_soon_as_the_last_hour_spent_2_percent_of_the_budget(promtool, tmp_path):
    outage = 6 * HOUR  # after six healthy hours at 0.1% failures
    series = requests([Phase(outage, 0.001), Phase(2 * HOUR, 1.0)])
    run(promtool, tmp_path, built_rules(tmp_path), series, [
        burning(outage),
        # 1h ratio: 12 of 60 minutes failed = 20% < 21.6%; 13 minutes = 21.7%: exact, no lag.
        burning(outage + 12, "3d"),
        burning(outage + 13, "1h", "3d"),
        burning(outage + 60, "1h", "6h", "1d", "3d"),
        never(outage, "critical"),
    ])


def test_a_partial_outage_pages_through_the_six_hour_window(promtool, tmp_path):
    # 15% of requests fail: above the 6h page's 9% but never above the 1h page's 21.6%.
    outage = 6 * HOUR
    series = requests([Phase(outage, 0.001), Phase(4 * HOUR, 0.15)])
    run(promtool, tmp_path, built_rules(tmp_path), series, [
        burning(outage + 3 * HOUR, "1d", "3d"),
        burning(outage + 4 * HOUR, "6h", "1d", "3d"),  # 6h ratio passes 9% after 3.6h
        ExprCheck(f"{outage + 4 * HOUR}m", 'count_over_time(ALERTS{window="1h"}[4h])', []),
    ])


def test_a_stricter_objective_pages_within_a_minute_of_a_total_outage(promtool, tmp_path):
    outage = 6 * HOUR
    series = requests([Phase(outage, 0.0002, 5000), Phase(30, 1.0, 5000)])
    run(promtool, tmp_path, built_rules(tmp_path, {"availability": {"target": 0.999}}), series, [
        burning(outage),
        burning(outage + 1, "1h", among="1h"),  # 1h ratio: 1 failed minute of 60 = 1.7% > 1.44%
        burning(outage + 10, "1h", "6h", "1d", "3d"),
    ])


def test_the_page_resolves_minutes_after_the_burn_stops(promtool, tmp_path):
    outage = 6 * HOUR
    series = requests([Phase(outage, 0.001), Phase(20, 1.0), Phase(2 * HOUR, 0.001)])
    run(promtool, tmp_path, built_rules(tmp_path), series, [
        burning(outage + 20, "1h", among="1h"),
        # The 1h window still holds the outage (a third failed), the 5m window no longer does.
        within(outage + 30, "job:llm_slo_availability_errors:ratio_rate1h", 0.33, 0.34),
        burning(outage + 30, among="1h"),
    ])


def test_a_slow_burn_opens_a_ticket_and_never_pages(promtool, tmp_path):
    # 5% failures (3.3x the budget) after three healthy days at 0.1%.
    start = 3 * DAY
    series = requests([Phase(start, 0.001), Phase(DAY, 0.05)])
    run(promtool, tmp_path, built_rules(tmp_path), series, [
        burning(start + 20 * HOUR),
        burning(start + 21 * HOUR, "3d"),        # 3d ratio passes 1.5% after 20.6h
        burning(start + 22 * HOUR, "1d", "3d"),  # 1d ratio passes 4.5% after 21.6h
        never(start + DAY, "critical"),
    ], every="5m")


def test_a_short_blip_triggers_nothing(promtool, tmp_path):
    # Five minutes of total outage in healthy traffic: the 5m, 30m and 2h windows are hot,
    # but no long window is, so neither a page nor a ticket.
    blip = 12 * HOUR
    series = requests([Phase(blip, 0.001), Phase(5, 1.0), Phase(6 * HOUR, 0.001)])
    run(promtool, tmp_path, built_rules(tmp_path), series, [
        within(blip + 5, "job:llm_slo_availability_errors:ratio_rate5m", 0.5, 1.01),
        never(blip + 6 * HOUR),
    ])


def test_a_healthy_month_with_a_rough_day_stays_quiet(promtool, tmp_path):
    # 1% failures, the project's healthy level; a 10-minute outage on day 10 and three
    # hours at 3% on day 20. Nothing fires; the budget left is what the month spent.
    phases = [Phase(10 * DAY, 0.01), Phase(10, 1.0), Phase(10 * DAY - 10, 0.01), Phase(3 * HOUR, 0.03),
              Phase(10 * DAY - 3 * HOUR, 0.01)]
    month = sum(p.minutes for p in phases)
    spent = sum(p.minutes * p.bad for p in phases) / month / 0.015
    run(promtool, tmp_path, built_rules(tmp_path), requests(phases), [
        never(month),
        within(month, "job:llm_slo_availability_error_budget:remaining30d", 1 - spent - 0.01, 1 - spent + 0.01),
    ], every="5m")


def test_per_model_objectives_page_for_the_failing_model_only(promtool, tmp_path):
    # A small model fails completely while a big one is healthy: 5% of the job's requests
    # fail, below every page threshold of the job; per model, the small one pages.
    outage = 6 * HOUR
    series = (requests([Phase(outage, 0.001), Phase(HOUR, 1.0)], model="gpt-4.1")
              + requests([Phase(outage + HOUR, 0.001, 20000)], model="claude-sonnet-4.5"))
    run(promtool, tmp_path, built_rules(tmp_path, {"per_model": True}), series, [
        burning(outage + 14, "1h", "3d", model="gpt-4.1"),
    ])
    run(promtool, tmp_path, built_rules(tmp_path), series, [never(outage + HOUR, "critical")])


@pytest.mark.parametrize("le", ["1.0", "1"])  # prometheus_client and Go clients spell buckets differently
def test_a_latency_burn_pages_on_the_share_of_requests_slower_than_the_threshold(promtool, tmp_path, le):
    # Objective: 95% within 1s. After six hours with 2% slow, every request is slow: the 1h
    # slow share passes 72% (14.4 x 5%) after 42.9 minutes.
    slow = 6 * HOUR
    phases = [Phase(slow, 0.02), Phase(2 * HOUR, 1.0)]
    series = latency(phases, le) + requests([Phase(slow + 2 * HOUR, 0.0)])
    rules = built_rules(tmp_path, {"latency": {"target": 0.95, "threshold_seconds": 1}})
    run(promtool, tmp_path, rules, series, [
        burning(slow + 42, "3d", alert=LATENCY),
        burning(slow + 43, "1h", "3d", alert=LATENCY),
        burning(slow + 2 * HOUR, "1h", "6h", "1d", "3d", alert=LATENCY),
    ])


def test_alert_annotations_state_the_burn_rate_and_the_budget_left(promtool, tmp_path):
    # Every request fails from the start: the ratio is exactly 1 in every window, the burn
    # rate 1/0.015, so both pairs of the page and of the ticket fire, one instance each.
    series = requests([Phase(30, 1.0)])
    rules = built_rules(tmp_path)
    alert_rules = [r for g in yaml.safe_load(rules[1].read_text())["groups"] for r in g["rules"] if "alert" in r]
    thresholds = {"critical": ("page", "14.4x over 1h and 5m, or 6x over 6h and 30m"),
                  "warning": ("ticket", "3x over 1d and 2h, or 1x over 3d and 6h")}
    expected = []
    for window in ("1h", "6h", "1d", "3d"):
        severity = SEVERITY[window]
        rule = next(r for r in alert_rules if r["labels"]["severity"] == severity)
        kind, fires_at = thresholds[severity]
        expected.append({
            "exp_labels": {"severity": severity, "slo": "availability", "window": window, "job": "llm-gateway"},
            "exp_annotations": {
                "summary": rule["annotations"]["summary"],
                "runbook_url": rule["annotations"]["runbook_url"],
                "description": "Job llm-gateway: failed requests are using the error budget of the 30d objective "
                               "(98.5% of requests succeed) 66.7x faster than sustainable over the last "
                               f"{window}. This {kind} fires at {fires_at}. The 30d budget is spent.",
            },
        })
    assert len(alert_rules) == 2
    run(promtool, tmp_path, rules, series, [], alerts=[AlertCheck("10m", AVAILABILITY, expected)])
