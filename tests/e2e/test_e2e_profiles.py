"""Other profile shapes end to end: the simulator writes them, the generated rules read them,
and the dashboards and alerts show the same numbers as for the default profile.

The built-in OpenTelemetry GenAI, LiteLLM and vLLM profiles, and two made by hand
(requests counted by a histogram's _count with an error label successes lack; failures on
a counter of their own and an in-flight gauge without a model label)."""

from __future__ import annotations

import pytest
from e2e_expected import expected_alerts
from e2e_harness import active_alerts, panel_problems, settle, start  # noqa: F401 - start is a fixture
from handmade_profiles import OTEL_LIKE, SPLIT_COUNTERS

from provision.profiles import BUILTIN

pytestmark = pytest.mark.e2e
PROFILES = [BUILTIN["otel_genai"], BUILTIN["litellm"], BUILTIN["vllm"], OTEL_LIKE, SPLIT_COUNTERS]


@pytest.fixture(scope="module", params=PROFILES, ids=lambda p: p.name)
def running(request, start):
    running = start("error_burst", profile=request.param)
    yield running
    running.stop()


def test_dashboards_show_the_scenarios_numbers(running):
    problems, checked = panel_problems(running, window=300)
    assert not problems, "\n".join(problems)
    assert checked > 50


def test_the_error_burst_alerts_and_nothing_else(running):
    settle(running, evaluations=2)
    must, may = expected_alerts(running.expectation, running.config, running.buckets)
    active = active_alerts(running)
    assert must and must <= active, f"missing: {must - active}"
    assert active <= must | may, f"unexpected: {active - must - may}"
