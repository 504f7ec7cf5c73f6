"""The `custom` profile: a gateway described in relaywatch.yaml, built, validated, tested with promtool."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from exporter_series import close_to, firing, histogram_quantile
from promtool_helpers import Series, run_promtool_test, write_test_file
from provision.cli import main
from provision.profiles import ProfileError, get_profile

REPO = Path(__file__).resolve().parent.parent

# An in-house relay: its own names, `llm` as the model label, `outcome` as status,
# tokens in one counter split by `direction`, latency with its own buckets.
RELAY = {
    "title": "In-house relay",
    "source": "relay/metrics.go",
    "model_label": "llm",
    "status_label": "outcome",
    "metrics": {
        "relay_calls_total": {"type": "counter", "labels": ["llm", "outcome"]},
        "relay_call_seconds": {"type": "histogram", "labels": ["llm"], "buckets": [0.5, 1, 3, 10, 30]},
        "relay_tokens_total": {"type": "counter", "labels": ["llm", "direction"]},
        "relay_busy_workers": {"type": "gauge", "labels": ["llm"]},
    },
    "roles": {
        "requests": {"series": "relay_calls_total"},
        "succeeded": {"series": "relay_calls_total", "matchers": ['outcome="ok"']},
        "failed": {"series": "relay_calls_total", "matchers": ['outcome=~"upstream_5xx|deadline"']},
        "rate_limited": {"series": "relay_calls_total", "matchers": ['outcome="throttled"']},
        "latency": {"series": "relay_call_seconds"},
        "prompt_tokens": {"series": "relay_tokens_total", "matchers": ['direction="in"']},
        "completion_tokens": {"series": "relay_tokens_total", "matchers": ['direction = "out"']},
        "inflight": {"series": "relay_busy_workers"},
    },
    "lacks": {"unauthorized": "the relay authenticates upstream once at start-up"},
}


def config_file(tmp_path: Path, custom: dict | None, **settings) -> Path:
    data = {"profile": "custom", "paths": {"dashboards": str(REPO / "dashboards"), "alerts": str(REPO / "alerts")},
            **settings}
    if custom is not None:
        data["custom_profile"] = custom
    path = tmp_path / "relaywatch.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def cli(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_the_custom_profile_is_built_from_config():
    profile = get_profile("custom", {"custom_profile": RELAY})
    assert profile.name == "custom" and profile.title == "In-house relay"
    assert profile.model_label == "llm" and profile.status_label == "outcome"
    assert profile.latency_buckets == (0.5, 1.0, 3.0, 10.0, 30.0)
    failed = profile.role("failed").matchers[0]
    assert (failed.label, failed.op, failed.value) == ("outcome", "=~", "upstream_5xx|deadline")
    completion = profile.role("completion_tokens").matchers[0]
    assert (completion.label, completion.op, completion.value) == ("direction", "=", "out")
    assert not profile.has("unauthorized")
    assert profile.why_missing("unauthorized") == "the relay authenticates upstream once at start-up"


def test_a_custom_profile_builds_validates_and_its_rules_compute_the_right_numbers(tmp_path, promtool):
    out = tmp_path / "build"
    result = cli("build", "--config", str(config_file(tmp_path, RELAY)), "--out", str(out), "--promtool", promtool)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "promtool passed" in result.stdout and "with profile custom" in result.stdout
    assert ("notice: profile custom has no unauthorized: the relay authenticates upstream once at start-up"
            in result.stderr)

    lab = 'job="relay", instance="relay-0:9100", llm="gpt-4.1"'
    per_minute = {"ok": 540, "upstream_5xx": 30, "deadline": 6, "throttled": 24}  # 600 calls a minute
    buckets = {"0.5": 60, "1": 300, "3": 580, "10": 597, "30": 600, "+Inf": 600}  # P95 2.9 s
    series = [Series(f'relay_calls_total{{{lab}, outcome="{o}"}}', f"0+{n}x60") for o, n in per_minute.items()]
    series += [Series(f'relay_call_seconds_bucket{{{lab}, le="{le}"}}', f"0+{n}x60") for le, n in buckets.items()]
    series += [Series(f'relay_tokens_total{{{lab}, direction="in"}}', "0+60000x60"),
               Series(f'relay_tokens_total{{{lab}, direction="out"}}', "0+30000x60"),
               Series(f"relay_busy_workers{{{lab}}}", "7x60")]
    labels = '{job="relay", model="gpt-4.1"}'
    checks = [
        close_to("30m", f"job_model:llm_requests:rate5m{labels}", labels, 10.0),
        close_to("30m", f"job_model:llm_requests_failed:ratio_rate5m{labels}", labels, 36 / 600),
        close_to("30m", f"job_model:llm_requests_rate_limited:ratio_rate5m{labels}", labels, 24 / 600),
        close_to("30m", "histogram_quantile(0.95, job_model_le:llm_request_latency_seconds_bucket:rate5m)", labels,
                 histogram_quantile(0.95, buckets), rel=1e-6),
        close_to("30m", "sum by (job, model) (job_model_token_type:llm_spend_usd:rate5m) * 3600", labels,
                 (1000 * 8.0 + 500 * 32.0) / 1e6 * 3600),
        close_to("30m", f"job_model:llm_requests_in_flight:sum{labels}", labels, 7),
        # 6 % failures: the warning fires, not the critical; 4 % throttled stays under 5 %.
        firing("30m", [{"alertname": "LLMGatewayErrorRatioHigh", "severity": "warning", "job": "relay",
                        "model": "gpt-4.1"}]),
    ]
    rules = sorted((out / "rules").glob("*.yaml"))
    run_promtool_test(promtool, write_test_file(tmp_path / "test.yaml", rules, series, exprs=checks))


def broken(**changes) -> dict:
    spec = copy.deepcopy(RELAY)
    for dotted, value in changes.items():
        node = spec
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[part]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return spec


@pytest.mark.parametrize("changes, line", [
    (dict(roles__latency={"series": "relay_calls_total"}),
     "custom_profile.roles.latency.series: 'relay_calls_total' is not a histogram declared under "
     "custom_profile.metrics"),
    (dict(roles__failed={"series": "relay_failures_total"}),
     "custom_profile.roles.failed.series: 'relay_failures_total' is not a counter or a histogram's _count series"),
    (dict(roles__failed={"series": "relay_calls_total", "matchers": ['code=~"5.."']}),
     "custom_profile.roles.failed.matchers[0]: label 'code' is not a label of relay_calls_total "
     "(labels: llm, outcome)"),
    (dict(metrics__relay_busy_workers={"type": "gauge", "labels": ["model"]}),
     "custom_profile.model_label: 'llm' is not a label of relay_busy_workers (read by roles.inflight)"),
    (dict(status_label="code"),
     "custom_profile.status_label: 'code' is not a label of relay_calls_total (read by roles.requests)"),
    (dict(metrics__relay_call_seconds={"type": "histogram", "labels": ["llm"], "buckets": [1, 0.5]}),
     "custom_profile.metrics.relay_call_seconds.buckets: must be strictly increasing"),
    (dict(lacks__latency="we have none"),
     "custom_profile.lacks.latency: the role is mapped under custom_profile.roles"),
    (dict(roles__inflight={"series": "relay_busy_workers", "plus": ["relay_calls_total"]}),
     "custom_profile.roles.inflight.plus[0]: 'relay_calls_total' is not a gauge declared"),
])
def test_each_problem_of_a_custom_profile_is_one_line_naming_its_key(changes, line, tmp_path):
    result = cli("build", "--config", str(config_file(tmp_path, broken(**changes))), "--out", str(tmp_path / "b"))
    assert result.exit_code == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and line in lines[0], lines
    assert lines[0].startswith(str(tmp_path / "relaywatch.yaml") + ": ")
    assert "Traceback" not in result.stderr and not (tmp_path / "b").exists()


@pytest.mark.parametrize("changes, line", [
    (dict(roles__timeouts={"series": "relay_calls_total"}), "custom_profile.roles: unknown key 'timeouts'"),
    (dict(roles__failed={"series": "relay_calls_total", "matchers": ["outcome=5xx"]}),
     "custom_profile.roles.failed.matchers[0]: 'outcome=5xx' is not valid (one PromQL label matcher"),
    (dict(metrics__relay_calls_total={"type": "summary"}), "custom_profile.metrics.relay_calls_total.type: "),
    (dict(roles__requests=None), "custom_profile.roles: 'requests' is required"),
    (dict(model_label=None), "custom_profile: 'model_label' is required"),
])
def test_schema_problems_of_a_custom_profile_name_their_key(changes, line, tmp_path):
    result = cli("build", "--config", str(config_file(tmp_path, broken(**changes))), "--out", str(tmp_path / "b"))
    assert result.exit_code == 2
    assert line in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_several_problems_are_reported_together(tmp_path):
    spec = broken(status_label="code", roles__latency={"series": "relay_calls_total"})
    result = cli("build", "--config", str(config_file(tmp_path, spec)), "--out", str(tmp_path / "b"))
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 2


def test_profile_custom_without_a_description_is_a_config_error(tmp_path):
    result = cli("build", "--config", str(config_file(tmp_path, None)), "--out", str(tmp_path / "b"))
    assert result.exit_code == 2
    assert "custom_profile: profile is 'custom' but custom_profile is not set" in result.stderr


def test_unknown_profile_name_is_a_usage_error(tmp_path):
    path = config_file(tmp_path, None, profile="kong")
    result = cli("build", "--config", str(path), "--out", str(tmp_path / "b"))
    assert result.exit_code == 2
    assert result.stderr == (f"{path}: profile: unknown profile 'kong'; known profiles: "
                             "holysheep, litellm, otel_genai, vllm, custom\n")


def test_profile_errors_are_raised_for_direct_callers_too():
    with pytest.raises(ProfileError) as raised:
        get_profile("custom", {"custom_profile": broken(status_label="code")})
    assert raised.value.problems == [
        "custom_profile.status_label: 'code' is not a label of relay_calls_total (read by roles.requests), "
        "so the status breakdown cannot use it"]


def test_profiles_command_shows_the_configured_custom_profile(tmp_path):
    path = config_file(tmp_path, RELAY)
    listing = cli("profiles", "--config", str(path))
    assert listing.exit_code == 0 and "* custom" in listing.stdout and "In-house relay" in listing.stdout
    details = cli("profiles", "custom", "--config", str(path))
    assert 'failed             relay_calls_total{outcome=~"upstream_5xx|deadline"}' in details.stdout
    assert "latency buckets: 0.5, 1, 3, 10, 30" in details.stdout
