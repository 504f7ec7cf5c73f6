"""Healthy traffic through a real Prometheus: recorded values, every dashboard query, quiet alerts."""

from __future__ import annotations

import json
import re
import time

import pytest
from click.testing import CliRunner
from e2e_expected import FAILED, SUCCESS, PanelExpectations, expected_alerts
from e2e_harness import (  # noqa: F401 - start is a fixture
    JOB,
    UNPRICED_MODEL,
    panel_problems,
    panel_targets,
    settle,
    start,
    substitute,
)

from provision.cli import main
from provision.profiles.holysheep import BUCKETS

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def healthy(start):
    return start("healthy")


def test_recording_rules_give_the_scenarios_values(healthy):
    e, n = healthy.expectation, healthy.built.context.names
    panels = PanelExpectations(e, healthy.config.pricing, BUCKETS)
    window = 300
    checks = [
        ("rate", healthy.value(f'{n.job_requests}{{job="{JOB}"}}'), e.request_rate(), None, None),
        ("ratio", healthy.value(n.outcome_ratio("failed", per_model=False)), e.ratio(FAILED), None, FAILED),
        ("ratio", healthy.value(n.outcome_ratio("succeeded", per_model=False)), e.ratio(SUCCESS), None, SUCCESS),
        ("spend", healthy.value(f"sum({n.spend}) * 3600"), e.spend_per_hour(healthy.config.pricing), None, None),
    ]
    per_model = healthy.by(n.requests, "model")
    assert set(per_model) == {m.name for m in e.traffic.models}
    checks += [("rate", rate, e.request_rate([model]), [model], None) for model, rate in per_model.items()]
    tokens = healthy.by(f"sum by (token_type) ({n.tokens})", "token_type")
    checks += [("tokens", tokens[t], e.token_rate(t), None, None) for t in ("prompt", "completion")]
    problems = [f"{kind} {actual} vs {expected}: {problem}" for kind, actual, expected, models, statuses in checks
                if (problem := panels.mismatch(kind, actual, expected, window=window, models=models,
                                               statuses=statuses))]
    assert not problems
    assert healthy.by(n.unpriced_tokens, "model").keys() == {UNPRICED_MODEL}


def test_p95_per_model_is_within_bucket_resolution(healthy):
    e, n = healthy.expectation, healthy.built.context.names
    panels = PanelExpectations(e, healthy.config.pricing, BUCKETS)
    estimates = healthy.by(f"histogram_quantile(0.95, sum by (model, le) ({n.latency_buckets}))", "model")
    for model, estimate in estimates.items():
        true = e.latency_quantile(0.95, [model])
        assert panels.bucket(estimate) in panels.acceptable_buckets(true), (model, estimate, true)


def test_in_flight_averages_to_littles_law(healthy):
    e = healthy.expectation
    window = f"{int(healthy.stack.history_seconds)}s"
    averages = healthy.by(f"avg_over_time(holysheep_active_requests[{window}])", "model")
    for model, average in averages.items():
        assert average == pytest.approx(e.in_flight(model), rel=0.2), model


def test_every_panel_query_returns_the_expected_values(healthy):
    """Each target of each generated dashboard runs, returns data, and shows the scenario's numbers."""
    problems, checked = panel_problems(healthy, window=300)
    assert not problems, "\n".join(problems)
    assert checked > 60


def test_panel_range_queries_return_data(healthy):
    """Grafana asks for ranges: every target answers a range query over the last minute."""
    now = time.time()
    empty = [f"{uid} / {panel['title']}" for uid, panel, target in panel_targets(healthy)
             if not healthy.prometheus.query_range(substitute(target["expr"]), now - 60, now, 15)]
    assert not empty


def test_template_variables_list_the_job_and_the_models(healthy):
    for dashboard in healthy.built.dashboards.values():
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        for name, expected in (("job", {JOB}), ("model", {m.name for m in healthy.expectation.traffic.models})):
            match = re.fullmatch(r"label_values\((.*), (\w+)\)", variables[name]["query"])
            selector, label = substitute(match.group(1)), match.group(2)
            values = healthy.prometheus.api(f"label/{label}/values", **{"match[]": selector})
            assert set(values) == expected, (dashboard["uid"], name)


def test_healthy_traffic_leaves_every_alert_inactive(healthy):
    settle(healthy, evaluations=3)
    must, may = expected_alerts(healthy.expectation, healthy.config, BUCKETS)
    assert must == set() and may == set()
    assert healthy.prometheus.alerts() == []
    states = {rule["name"]: rule["state"] for group in healthy.prometheus.rule_groups()
              for rule in group["rules"] if rule["type"] == "alerting"}
    assert states and set(states.values()) == {"inactive"}, states


def test_check_metrics_passes_on_the_live_simulator(healthy):
    result = CliRunner().invoke(main, ["check-metrics", f"http://{healthy.stack.target}/metrics",
                                       "--output", "json"])
    report = json.loads(result.output)
    assert result.exit_code == 0, result.output
    assert UNPRICED_MODEL in report["unpriced_models"]
