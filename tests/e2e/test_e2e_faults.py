"""Fault scenarios through a real Prometheus: the alerts they imply are pending or firing, no
others are, and the dashboards show the fault's numbers.

Each scenario's history is backfilled (10 minutes), so the rules see five minutes of the
fault at their first evaluation; `for` durations keep their defaults, so alerts are
pending (or firing where `for` is short), which is what the alerts API is asked for.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e_expected import FAILED, expected_alerts
from e2e_harness import active_alerts, e2e_settings, panel_problems, settle, start  # noqa: F401 - start is a fixture

from provision.config import from_mapping
from provision.simulate import SCENARIOS, Expectation, traffic_from_config

pytestmark = pytest.mark.e2e
# traffic_stop needs recorded history of the traffic before the stop: see test_e2e_live.py.
FAULTS = [name for name in SCENARIOS if name not in ("healthy", "traffic_stop")]


def monthly_budget() -> float:
    """Twice the healthy pace of spend: only a token spike breaks it."""
    config = from_mapping(e2e_settings(Path("unused")), root=Path("."))
    healthy = Expectation(traffic_from_config(config), "healthy")
    return round(2 * healthy.spend_per_hour(config.pricing) * 24 * 31)


@pytest.fixture(scope="module", params=FAULTS)
def fault(request, start):
    # the budget's pace is averaged over alerts.spend_over_budget.window of recorded spend, which
    # here exists only since Prometheus started
    running = start(request.param, cost={"monthly_budget_usd": monthly_budget()},
                    alerts={"spend_over_budget": {"for": "30m", "window": "5s"}})
    yield running
    running.stop()


def test_the_faults_alerts_and_no_others_are_pending_or_firing(fault):
    settle(fault, evaluations=1)
    must, may = expected_alerts(fault.expectation, fault.config, fault.buckets)
    assert must, f"{fault.expectation.scenario} implies no alert: the scenario or the thresholds are off"
    active = active_alerts(fault)
    assert must <= active, f"missing: {must - active}"
    assert active <= must | may, f"unexpected: {active - must - may}"


def test_the_dashboards_show_the_faults_numbers(fault):
    problems, checked = panel_problems(fault, window=300)
    assert not problems, "\n".join(problems)
    assert checked > 60


def test_the_fault_models_failure_ratio_is_recorded(fault):
    model = fault.expectation.traffic.faults.model
    n = fault.built.context.names
    recorded = fault.by(n.outcome_ratio("failed"), "model")[model]
    problem = fault.panels().mismatch("ratio", recorded, fault.expectation.ratio(FAILED, [model]), window=300,
                                      models=[model], statuses=FAILED)
    assert problem is None, problem
