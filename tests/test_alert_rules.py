"""`promtool test rules` for every alert of the default build: a firing case and a quiet case each.

Traffic is written per minute in promtool's expanding notation. A healthy
gateway: four models, ~10 req/s each, a little 4xx/429/5xx noise well below the
thresholds, fast answers, steady tokens.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from promtool_helpers import AlertCheck, ExprCheck, Series, holysheep_histogram, run_promtool_test, write_test_file
from provision import build
from provision.config import from_mapping

MODELS = ("gpt-4.1", "claude-sonnet-4.5", "gemini-2.5-flash", "deepseek-v3.2")
STEPS = 120  # two hours of one-minute samples
FAST = {"0.1": 60, "0.25": 200, "0.5": 420, "1": 560, "2": 594, "5": 600, "10": 600, "+Inf": 600}
SLOW = {"0.1": 0, "0.25": 0, "0.5": 0, "1": 5, "2": 10, "5": 30, "10": 500, "+Inf": 600}  # P95 ~ 10 s
FOUR_SECONDS = {"0.1": 0, "0.25": 0, "0.5": 0, "1": 0, "2": 60, "5": 600, "10": 600, "+Inf": 600}  # P95 ~ 4.7 s


@pytest.fixture(scope="module")
def rule_files(tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("build")
    result = build.build(from_mapping({}, root=Path(__file__).resolve().parent.parent))
    build.write(result, out)
    return sorted((out / "rules").glob("*.yaml"))


def labels(model: str, instance: str = "gw-1:8000") -> str:
    return f'job="llm-gateway", instance="{instance}", model="{model}"'


def model_traffic(model: str, statuses: dict[str, float], buckets=FAST, steps: int = STEPS,
                  instance: str = "gw-1:8000") -> list[Series]:
    """Counters of one model: requests by status per minute, latency, tokens, in-flight."""
    lab = labels(model, instance)
    total = sum(statuses.values())
    series = [Series(f'holysheep_requests_total{{{lab}, status_code="{code}"}}', f"0+{n:g}x{steps}")
              for code, n in statuses.items()]
    scale = total / 600
    series += holysheep_histogram(lab, {le: v * scale for le, v in buckets.items()}, total, total * 0.6, steps)
    series += [
        Series(f'holysheep_tokens_total{{{lab}, token_type="prompt"}}', f"0+{total * 300:g}x{steps}"),
        Series(f'holysheep_tokens_total{{{lab}, token_type="completion"}}', f"0+{total * 120:g}x{steps}"),
        Series(f"holysheep_active_requests{{{lab}}}", f"3x{steps}"),
    ]
    return series


HEALTHY_MIX = {"200": 588, "400": 3, "429": 3, "500": 3, "timeout": 3}  # 1 % failures, 0.5 % 429


def healthy(steps: int = STEPS, instance: str = "gw-1:8000") -> list[Series]:
    series = [Series(f'up{{job="llm-gateway", instance="{instance}"}}', f"1x{steps}")]
    for model in MODELS:
        series += model_traffic(model, HEALTHY_MIX, steps=steps, instance=instance)
    return series


def others_healthy(except_model: str) -> list[Series]:
    series = [Series('up{job="llm-gateway", instance="gw-1:8000"}', f"1x{STEPS}")]
    for model in MODELS:
        if model != except_model:
            series += model_traffic(model, HEALTHY_MIX)
    return series


def alerts_firing(at: str, *expected: dict) -> ExprCheck:
    """Exactly these alerts are firing at `at` (ALERTS series, alertname and labels).

    SLO burn alerts are left to tests/test_slo_rules.py: a burst of failures here
    also burns the error budget, which is right but not what these cases test."""
    samples = []
    for alert in expected:
        pairs = ", ".join(f'{k}="{v}"' for k, v in sorted({**alert, "alertstate": "firing"}.items()))
        samples.append({"labels": f"ALERTS{{{pairs}}}", "value": 1})
    return ExprCheck(at, 'ALERTS{alertstate="firing", alertname!~".+BudgetBurn"}', samples)


def alert(name: str, severity: str, **labels: str) -> dict:
    return {"alertname": name, "severity": severity, **labels}


def run(tmp_path, promtool, rule_files, series, checks, alert_checks=()):
    test = write_test_file(tmp_path / "test.yaml", rule_files, series, alerts=list(alert_checks), exprs=checks)
    run_promtool_test(promtool, test)


GPT = {"job": "llm-gateway", "model": "gpt-4.1"}


def test_healthy_traffic_fires_nothing(tmp_path, promtool, rule_files):
    run(tmp_path, promtool, rule_files, healthy(),
        [alerts_firing(at) for at in ("15m", "30m", "60m", "119m")])


def test_error_burst_fires_warning_then_critical(tmp_path, promtool, rule_files):
    burst = {"200": 400, "500": 150, "timeout": 30, "error": 20}  # one third failed
    series = others_healthy("gpt-4.1") + model_traffic("gpt-4.1", burst)
    run(tmp_path, promtool, rule_files, series, [
        alerts_firing("3m"),  # pending, not firing yet
        alerts_firing("30m", alert("LLMGatewayErrorRatioHigh", "critical", **GPT),
                      alert("LLMGatewayErrorRatioHigh", "warning", **GPT)),
    ])


def test_moderate_errors_fire_warning_only(tmp_path, promtool, rule_files):
    mix = {"200": 540, "502": 60}  # 10 %
    series = others_healthy("gpt-4.1") + model_traffic("gpt-4.1", mix)
    run(tmp_path, promtool, rule_files, series,
        [alerts_firing("30m", alert("LLMGatewayErrorRatioHigh", "warning", **GPT))])


def test_errors_below_threshold_and_quiet_models_stay_quiet(tmp_path, promtool, rule_files):
    below = {"200": 582, "500": 18}  # 3 %
    trickle = {"200": 0.2, "500": 0.2}  # half failing, but 0.007 req/s: below min_request_rate
    series = others_healthy("gpt-4.1") + model_traffic("gpt-4.1", below)
    series += model_traffic("o3-mini", trickle)
    run(tmp_path, promtool, rule_files, series, [alerts_firing("60m")])


def test_error_alert_annotations_name_the_model_and_value(tmp_path, promtool, rule_files):
    mix = {"200": 450, "500": 150}  # 25 %
    series = others_healthy("gpt-4.1") + model_traffic("gpt-4.1", mix)
    runbook = "https://github.com/relaywatch/relaywatch/blob/main/docs/runbooks.md#llmgatewayerrorratiohigh"

    def expected(severity: str, threshold: str, summary: str) -> dict:
        description = (f"gpt-4.1 (job llm-gateway): 25% of requests failed (5xx, timeout or client-side error) "
                       f"over the last 5m; the threshold is {threshold}.")
        return {"exp_labels": {"severity": severity, **GPT},
                "exp_annotations": {"summary": summary, "description": description, "runbook_url": runbook}}

    check = AlertCheck("30m", "LLMGatewayErrorRatioHigh", [
        expected("critical", "20%", "Many LLM gateway requests are failing."),
        expected("warning", "5%", "LLM gateway requests are failing more than usual."),
    ])
    run(tmp_path, promtool, rule_files, series, [], [check])


def test_slow_model_fires_latency_alert(tmp_path, promtool, rule_files):
    series = others_healthy("claude-sonnet-4.5") + model_traffic("claude-sonnet-4.5", {"200": 600}, buckets=SLOW)
    claude = {"job": "llm-gateway", "model": "claude-sonnet-4.5"}
    run(tmp_path, promtool, rule_files, series, [
        alerts_firing("5m"),  # the rate window and for: 5m have not both elapsed
        alerts_firing("30m", alert("LLMGatewayLatencyP95High", "warning", **claude)),
    ])


def test_p95_just_under_five_seconds_is_quiet(tmp_path, promtool, rule_files):
    series = others_healthy("claude-sonnet-4.5")
    series += model_traffic("claude-sonnet-4.5", {"200": 600}, buckets=FOUR_SECONDS)
    run(tmp_path, promtool, rule_files, series, [alerts_firing("60m")])


def test_rate_limit_storm_fires(tmp_path, promtool, rule_files):
    series = others_healthy("gpt-4.1") + model_traffic("gpt-4.1", {"200": 450, "429": 150})
    run(tmp_path, promtool, rule_files, series,
        [alerts_firing("30m", alert("LLMGatewayRateLimited", "warning", **GPT))])


def test_auth_failures_fire(tmp_path, promtool, rule_files):
    series = others_healthy("gpt-4.1") + model_traffic("gpt-4.1", {"200": 300, "401": 300})
    run(tmp_path, promtool, rule_files, series, [
        alerts_firing("3m"),
        alerts_firing("20m", alert("LLMGatewayAuthFailures", "critical", **GPT)),
    ])


def test_metrics_absent_fires_when_no_gateway_series_exist(tmp_path, promtool, rule_files):
    series = [Series('up{job="llm-gateway", instance="gw-1:8000"}', f"1x{STEPS}")]
    run(tmp_path, promtool, rule_files, series, [
        alerts_firing("3m"),
        alerts_firing("20m", alert("LLMGatewayMetricsAbsent", "critical")),
    ])


def test_target_down_fires_for_a_gateway_target_only(tmp_path, promtool, rule_files):
    series = healthy(steps=20)  # the gateway answers for 20 minutes, then stops answering
    series[0] = Series('up{job="llm-gateway", instance="gw-1:8000"}', "1x20 0x100")
    series.append(Series('up{job="node", instance="db-1:9100"}', "0x120"))  # not a gateway: ignored
    run(tmp_path, promtool, rule_files, series, [
        alerts_firing("10m"),
        alerts_firing("40m", alert("LLMGatewayTargetDown", "critical", job="llm-gateway", instance="gw-1:8000"),
                      alert("LLMGatewayMetricsAbsent", "critical")),
    ])


def test_traffic_stop_fires_and_steady_traffic_does_not(tmp_path, promtool, rule_files):
    series = [Series('up{job="llm-gateway", instance="gw-1:8000"}', f"1x{STEPS}")]
    for model in MODELS:  # 30 minutes of traffic, then the counters stay flat
        for s in model_traffic(model, HEALTHY_MIX, steps=30):
            start, rest = s.values.split("+") if "+" in s.values else (None, None)
            if rest:
                step, _ = rest.split("x")
                s.values = f"0+{step}x30 {float(step) * 30:g}x90"
            series.append(s)
    run(tmp_path, promtool, rule_files, series, [
        alerts_firing("30m"),
        alerts_firing("60m", alert("LLMGatewayTrafficStopped", "critical", job="llm-gateway")),
    ])
