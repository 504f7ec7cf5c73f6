"""Each gateway profile's rules and dashboards against series shaped exactly like that gateway's output.

Input: every sample of tests/fixtures/exporters/<gateway>.prom (exact names,
labels and `le` strings, extra labels such as hashed_api_key or engine
included), one fixture body of traffic per minute. Expected values are
computed here from the same samples with each gateway's own semantics written
out explicitly (which error_type, status_code or finished_reason means what),
so a profile that maps a role wrongly fails. Quantiles are checked against
Prometheus's interpolation on the profile's own buckets (OTel's doubling
buckets, LiteLLM's and vLLM's lists).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from exporter_series import (
    Sample,
    absent,
    as_series,
    buckets_by,
    close_to,
    firing,
    fixture_text,
    histogram_quantile,
    only,
    parse,
    per_second,
)
from promtool_helpers import Series, run_promtool_test, write_test_file
from provision import build
from provision.config import DEFAULT_PRICING, from_mapping

REPO = Path(__file__).resolve().parent.parent
STEPS = 60  # one hour of one-minute samples
AT = "30m"


@dataclass(frozen=True)
class Gateway:
    """A gateway's series and what its values mean, written independently of the profiles."""

    profile: str
    fixture: str
    job: str
    requests: str
    model_label: str
    failed: Callable[[Sample], bool]
    latency_buckets: str
    prompt_tokens: Callable[[Sample], bool]
    completion_tokens: Callable[[Sample], bool]
    target: dict = field(default_factory=dict)
    rate_limited: Callable[[Sample], bool] | None = None
    unauthorized: Callable[[Sample], bool] | None = None
    inflight: Callable[[Sample], bool] | None = None

    def samples(self) -> list[Sample]:
        return parse(fixture_text(self.fixture), self.target)


OTEL = Gateway(
    profile="otel_genai", fixture="otel_genai.prom", job="llm/relay-client",
    requests="gen_ai_client_operation_duration_seconds_count", model_label="gen_ai_request_model",
    failed=lambda s: s.get("error_type") in ("InternalServerError", "APITimeoutError"),
    rate_limited=lambda s: s.get("error_type") == "RateLimitError",
    unauthorized=lambda s: s.get("error_type") == "AuthenticationError",
    latency_buckets="gen_ai_client_operation_duration_seconds_bucket",
    prompt_tokens=lambda s: s.name == "gen_ai_client_token_usage_sum" and s.get("gen_ai_token_type") == "input",
    completion_tokens=lambda s: s.name == "gen_ai_client_token_usage_sum" and s.get("gen_ai_token_type") == "output",
)
LITELLM = Gateway(
    profile="litellm", fixture="litellm.prom", job="litellm", target={"job": "litellm", "instance": "litellm:4000"},
    requests="litellm_proxy_total_requests_metric_total", model_label="requested_model",
    failed=lambda s: s.get("status_code") in ("500", "503", "408", "None"),
    rate_limited=lambda s: s.get("status_code") == "429",
    latency_buckets="litellm_request_total_latency_metric_bucket",
    prompt_tokens=lambda s: s.name == "litellm_input_tokens_metric_total",
    completion_tokens=lambda s: s.name == "litellm_output_tokens_metric_total",
)
VLLM = Gateway(
    profile="vllm", fixture="vllm.prom", job="vllm", target={"job": "vllm", "instance": "qwen3-32b:8000"},
    requests="vllm:request_success_total", model_label="model_name",
    failed=lambda s: s.get("finished_reason") == "error",
    latency_buckets="vllm:e2e_request_latency_seconds_bucket",
    prompt_tokens=lambda s: s.name == "vllm:prompt_tokens_total",
    completion_tokens=lambda s: s.name == "vllm:generation_tokens_total",
    inflight=lambda s: s.name in ("vllm:num_requests_running", "vllm:num_requests_waiting"),
)
GATEWAYS = {g.profile: g for g in (OTEL, LITELLM, VLLM)}


def unscaled(sample: Sample) -> float:
    return 1.0


@dataclass
class Expected:
    """What the rules should compute per model, from the fixture samples and a scale."""

    gateway: Gateway
    scale: Callable[[Sample], float] = unscaled

    def _requests(self, model: str, where: Callable[[Sample], bool] = lambda s: True) -> float:
        g = self.gateway
        return per_second((s for s in g.samples() if s.name == g.requests and s.get(g.model_label) == model
                           and where(s)), self.scale)

    def models(self) -> list[str]:
        g = self.gateway
        return sorted({s.get(g.model_label) for s in g.samples() if s.name == g.requests})

    def request_rate(self, model: str) -> float:
        return self._requests(model)

    def ratio(self, model: str, outcome: Callable[[Sample], bool]) -> float:
        return self._requests(model, outcome) / self._requests(model)

    def tokens(self, model: str, which: Callable[[Sample], bool]) -> float:
        g = self.gateway
        return per_second((s for s in g.samples() if which(s) and s.get(g.model_label) == model), self.scale)

    def quantile(self, q: float, model: str) -> float:
        g = self.gateway
        return histogram_quantile(q, buckets_by(g.samples(), g.latency_buckets, g.model_label, self.scale)[model])

    def has_latency(self, model: str) -> bool:
        g = self.gateway
        return model in buckets_by(g.samples(), g.latency_buckets, g.model_label)

    def firing_alerts(self) -> list[dict[str, str]]:
        """The alerts of alerts/gateway.py that should fire, with the default thresholds."""
        g, out = self.gateway, []
        for model in self.models():
            if self.request_rate(model) <= 0.01:
                continue
            labels = {"job": g.job, "model": model}
            failed = self.ratio(model, g.failed)
            if failed > 0.20:
                out.append({"alertname": "LLMGatewayErrorRatioHigh", "severity": "critical", **labels})
            if failed > 0.05:
                out.append({"alertname": "LLMGatewayErrorRatioHigh", "severity": "warning", **labels})
            if self.has_latency(model) and self.quantile(0.95, model) > 5:
                out.append({"alertname": "LLMGatewayLatencyP95High", "severity": "warning", **labels})
            if g.rate_limited and self.ratio(model, g.rate_limited) > 0.05:
                out.append({"alertname": "LLMGatewayRateLimited", "severity": "warning", **labels})
            if g.unauthorized and self.ratio(model, g.unauthorized) > 0.01:
                out.append({"alertname": "LLMGatewayAuthFailures", "severity": "critical", **labels})
        return out


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """Build output directory per profile (rules and dashboards)."""
    out = {}
    for name in GATEWAYS:
        directory = tmp_path_factory.mktemp(name)
        build.write(build.build(from_mapping({"profile": name}, root=REPO)), directory)
        out[name] = directory
    return out


def rule_files(directory: Path) -> list[Path]:
    return sorted((directory / "rules").glob("*.yaml"))


def panel_expr(directory: Path, uid: str, title: str, ref: str = "A", model: str = ".*") -> str:
    """A panel's query as Grafana would send it with all jobs selected and `model` (a regex)."""
    dashboard = json.loads((directory / "dashboards" / f"{uid}.json").read_text())
    panel = next(p for p in dashboard["panels"] if p["title"] == title)
    expr = next(t["expr"] for t in panel["targets"] if t["refId"] == ref)
    return expr.replace("$__rate_interval", "5m").replace("$job", ".*").replace("$model", model)


def run(promtool: str, tmp_path: Path, directory: Path, gateway: Gateway, checks, scale=unscaled, name="test"):
    series = as_series(gateway.samples(), STEPS, scale)
    test_file = write_test_file(tmp_path / f"{name}.yaml", rule_files(directory), series, exprs=checks, name=name)
    run_promtool_test(promtool, test_file)


def model_labels(gateway: Gateway, model: str) -> str:
    return f'{{job="{gateway.job}", model="{model}"}}'


@pytest.mark.parametrize("name", sorted(GATEWAYS))
def test_recorded_rates_ratios_and_tokens_match_the_gateways_own_counts(name, built, promtool, tmp_path):
    g, want = GATEWAYS[name], Expected(GATEWAYS[name])
    checks = []
    for model in want.models():
        labels = model_labels(g, model)
        checks.append(close_to(AT, f'job_model:llm_requests:rate5m{labels}', labels, want.request_rate(model)))
        checks.append(close_to(AT, f'job_model:llm_requests_failed:ratio_rate5m{labels}', labels,
                               want.ratio(model, g.failed)))
        for role, outcome in (("rate_limited", g.rate_limited), ("unauthorized", g.unauthorized)):
            if outcome:
                checks.append(close_to(AT, f"job_model:llm_requests_{role}:ratio_rate5m{labels}", labels,
                                       want.ratio(model, outcome)))
            else:  # nothing recorded for a signal the gateway does not export, not a flat zero
                checks.append(absent(AT, f"job_model:llm_requests_{role}:ratio_rate5m"))
        for token_type, which in (("prompt", g.prompt_tokens), ("completion", g.completion_tokens)):
            expected = want.tokens(model, which)
            if expected:
                typed = f'{{job="{g.job}", model="{model}", token_type="{token_type}"}}'
                checks.append(close_to(AT, f"job_model_token_type:llm_tokens:rate5m{typed}", typed, expected))
    run(promtool, tmp_path, built[name], g, checks)


@pytest.mark.parametrize("name", sorted(GATEWAYS))
def test_latency_quantiles_on_the_profiles_own_buckets(name, built, promtool, tmp_path):
    g, want = GATEWAYS[name], Expected(GATEWAYS[name])
    checks = []
    for model in want.models():
        if not want.has_latency(model):  # LiteLLM records latency for successes only
            checks.append(absent(AT, f'job_model_le:llm_request_latency_seconds_bucket:rate5m{{model="{model}"}}'))
            continue
        for q in (0.5, 0.95, 0.99):
            expected = want.quantile(q, model)
            assert not math.isnan(expected)
            expr = (f'histogram_quantile({q}, sum by (job, model, le) '
                    f'(job_model_le:llm_request_latency_seconds_bucket:rate5m{{model="{model}"}}))')
            checks.append(close_to(AT, expr, model_labels(g, model), expected, rel=1e-6))
        # The overview's panel and the model dashboard's raw-series panel give the same P95.
        overview = panel_expr(built[name], "llm-gateway-overview", "P95 latency by model", model=model)
        checks.append(close_to(AT, overview, f'{{model="{model}"}}', want.quantile(0.95, model), rel=1e-6))
        raw = panel_expr(built[name], "llm-gateway-model", "Latency P50 / P95 / P99", ref="B", model=model)
        checks.append(close_to(AT, raw, "{}", want.quantile(0.95, model), rel=1e-6))
    run(promtool, tmp_path, built[name], g, checks)


@pytest.mark.parametrize("name", sorted(GATEWAYS))
def test_overview_panels_show_the_gateways_numbers(name, built, promtool, tmp_path):
    g, want = GATEWAYS[name], Expected(GATEWAYS[name])
    directory, checks = built[name], []
    for model in want.models():
        one = f'{{model="{model}"}}'
        checks.append(close_to(AT, panel_expr(directory, "llm-gateway-overview", "Request rate by model", model=model),
                               one, want.request_rate(model)))
        checks.append(close_to(AT, panel_expr(directory, "llm-gateway-overview", "Error ratio by model", model=model),
                               one, want.ratio(model, g.failed)))
        prompt = want.tokens(model, g.prompt_tokens)
        if prompt:
            expr = panel_expr(directory, "llm-gateway-overview", "Token throughput by model", model=model)
            checks.append(close_to(AT, only(expr, token_type="prompt"), f'{{model="{model}", token_type="prompt"}}',
                                   prompt))
    if g.inflight:
        running = sum(s.value for s in g.samples() if g.inflight(s))
        checks.append(close_to(AT, panel_expr(directory, "llm-gateway-overview", "In flight"), "{}", running))
    run(promtool, tmp_path, directory, g, checks)


def drop_errors(sample: Sample) -> float:
    """A healthy gateway: every failure series of the fixture stays at zero."""
    failure = sample.get("error_type") or sample.get("status_code") not in ("", "200") \
        or sample.get("finished_reason") in ("abort", "error")
    return 0.0 if failure else 1.0


SCENARIOS = {
    "as exported": unscaled,
    "healthy": drop_errors,
    # gpt-4.1 gets five times its 429s (OTel: RateLimitError, LiteLLM: status_code 429).
    "429 storm": lambda s: 5.0 if s.get("error_type") == "RateLimitError" or s.get("status_code") == "429" else 1.0,
    # vLLM: internal errors on one request in eight.
    "error burst": lambda s: 600.0 if s.get("finished_reason") == "error" else 1.0,
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("name", sorted(GATEWAYS))
def test_alerts_fire_exactly_where_the_gateways_numbers_cross_the_thresholds(name, scenario, built, promtool,
                                                                             tmp_path):
    g = GATEWAYS[name]
    want = Expected(g, SCENARIOS[scenario])
    expected = want.firing_alerts()
    if scenario == "healthy":
        assert not [a for a in expected if a["alertname"] != "LLMGatewayLatencyP95High"]
    run(promtool, tmp_path, built[name], g, [firing(AT, expected)], scale=SCENARIOS[scenario])


def test_the_scenarios_cover_each_supported_alert_firing_and_quiet():
    """Guards the test above: every alert a profile supports fires in some scenario and not in another."""
    for g in GATEWAYS.values():
        seen: dict[str, set[bool]] = defaultdict(set)
        names = {"LLMGatewayErrorRatioHigh"}
        if g.rate_limited:
            names.add("LLMGatewayRateLimited")
        if g.unauthorized:
            names.add("LLMGatewayAuthFailures")
        for scale in SCENARIOS.values():
            fired = {a["alertname"] for a in Expected(g, scale).firing_alerts()}
            for alert in names:
                seen[alert].add(alert in fired)
        assert all(seen[a] == {True, False} for a in names), (g.profile, dict(seen))


@pytest.mark.parametrize("name", sorted(GATEWAYS))
def test_spend_is_recorded_for_priced_models_and_unpriced_models_are_not_priced_at_zero(name, built, promtool,
                                                                                       tmp_path):
    g, want = GATEWAYS[name], Expected(GATEWAYS[name])
    checks = []
    for model in want.models():
        prompt, completion = want.tokens(model, g.prompt_tokens), want.tokens(model, g.completion_tokens)
        if not prompt and not completion:
            continue
        labels = model_labels(g, model)
        if model in DEFAULT_PRICING:
            price = DEFAULT_PRICING[model]
            per_hour = (prompt * price["input"] + completion * price["output"]) / 1e6 * 3600
            expr = f"sum by (job, model) (job_model_token_type:llm_spend_usd:rate5m{labels}) * 3600"
            checks.append(close_to(AT, expr, labels, per_hour))
            checks.append(absent(AT, f"job_model:llm_tokens_unpriced:rate5m{labels}"))
        else:
            checks.append(absent(AT, f"job_model_token_type:llm_spend_usd:rate5m{labels}"))
            checks.append(close_to(AT, f"job_model:llm_tokens_unpriced:rate5m{labels}", labels, prompt + completion))
    assert checks
    run(promtool, tmp_path, built[name], g, checks)


STATUS_CLASSES = {
    "otel_genai": {"ok": lambda s: not s.get("error_type"),
                   "RateLimitError": lambda s: s.get("error_type") == "RateLimitError",
                   "APITimeoutError": lambda s: s.get("error_type") == "APITimeoutError"},
    "litellm": {"2xx": lambda s: s.get("status_code") == "200",
                "4xx": lambda s: s.get("status_code") in ("400", "408", "429"),
                "5xx": lambda s: s.get("status_code") == "500"},
    "vllm": {reason: (lambda s, r=reason: s.get("finished_reason") == r) for reason in ("stop", "length", "abort")},
}


@pytest.mark.parametrize("name", sorted(GATEWAYS))
def test_status_class_panel_names_each_outcome_of_the_gateway(name, built, promtool, tmp_path):
    g = GATEWAYS[name]
    expr = panel_expr(built[name], "llm-gateway-overview", "Request rate by status class")
    checks = []
    for status_class, which in STATUS_CLASSES[name].items():
        expected = per_second(s for s in g.samples() if s.name == g.requests and which(s))
        checks.append(close_to(AT, only(expr, status_class=status_class), f'{{status_class="{status_class}"}}',
                               expected))
    run(promtool, tmp_path, built[name], g, checks)


def test_two_deployments_of_one_litellm_model_group_are_summed_not_a_duplicate_labelset(built, promtool, tmp_path):
    """Copying requested_model over `model` would make these two series identical; the rules sum first."""
    base = 'job="litellm", instance="litellm:4000", requested_model="gpt-4.1", hashed_api_key="abc", team="t"'
    series = [Series(f'litellm_input_tokens_metric_total{{{base}, model="{m}"}}', "0+600x60")
              for m in ("gpt-4.1-2025-04-14", "azure/gpt-4.1")]
    series += [Series(f'litellm_proxy_total_requests_metric_total{{{base}, status_code="200"}}', "0+60x60")]
    labels = '{job="litellm", model="gpt-4.1", token_type="prompt"}'
    checks = [close_to(AT, f"job_model_token_type:llm_tokens:rate5m{labels}", labels, 20.0)]
    test_file = write_test_file(tmp_path / "t.yaml", rule_files(built["litellm"]), series, exprs=checks)
    run_promtool_test(promtool, test_file)
