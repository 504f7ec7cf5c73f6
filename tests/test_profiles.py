"""The built-in profiles against their gateways' real exposition, and through the CLI.

Each fixture in tests/fixtures/exporters/ is parsed with prometheus_client's
parser; every family and role a profile names must be there with the type,
labels and buckets the profile declares.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from exporter_series import fixture_text
from provision import build
from provision.cli import main
from provision.config import from_mapping
from provision.contract import ALL_ROLES, HISTOGRAM, INFLIGHT, RATE_LIMITED, UNAUTHORIZED, Profile
from provision.profiles import BUILTIN, get_profile

REPO = Path(__file__).resolve().parent.parent
FIXTURES = {"otel_genai": "otel_genai.prom", "litellm": "litellm.prom", "vllm": "vllm.prom"}
MATCH = {"=": lambda v, want: v == want, "!=": lambda v, want: v != want,
         "=~": lambda v, want: re.fullmatch(want, v) is not None, "!~": lambda v, want: re.fullmatch(want, v) is None}


def exposition(name: str) -> tuple[dict[str, str], list]:
    """Family type by every sample name it exposes, and all samples."""
    types, samples = {}, []
    for family in text_string_to_metric_families(fixture_text(FIXTURES[name])):
        for sample in family.samples:
            types[sample.name] = family.type
            samples.append(sample)
    return types, samples


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_every_family_the_profile_declares_is_exported_with_its_type_labels_and_buckets(name):
    profile = BUILTIN[name]
    types, samples = exposition(name)
    for metric in profile.metrics:
        for series in metric.series_names():
            assert types.get(series) == metric.type, (series, types.get(series))
        own = [s for s in samples if s.name in metric.series_names()]
        exported_labels = {label for s in own for label in s.labels} - {"le"}
        assert set(metric.labels) <= exported_labels, (metric.name, set(metric.labels) - exported_labels)
        if metric.type == HISTOGRAM:
            les = {float(s.labels["le"]) for s in own if s.name == metric.name + "_bucket"}
            assert les == {*metric.buckets, float("inf")}, metric.name


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_every_role_reads_series_that_exist_and_match_its_matchers(name):
    profile = BUILTIN[name]
    types, samples = exposition(name)
    for role, selection in profile.roles.items():
        for series in selection.names():
            read = series + "_count" if types.get(series + "_count") == HISTOGRAM else series
            own = [s for s in samples if s.name == read]
            assert own, (role, read)
            assert all(profile.model_label in s.labels for s in own), (role, "model label missing")
            matching = [s for s in own if all(MATCH[m.op](s.labels.get(m.label, ""), m.value)
                                              for m in selection.matchers)]
            assert matching, (role, selection)
    if profile.status_label:
        requests = profile.role("requests").series
        assert any(profile.status_label in s.labels for s in samples if s.name == requests)


def test_the_profiles_map_the_gateways_outcomes_as_documented():
    otel, litellm, vllm = BUILTIN["otel_genai"], BUILTIN["litellm"], BUILTIN["vllm"]
    assert otel.model_label == "gen_ai_request_model" and otel.role("requests").series.endswith("_count")
    assert otel.role("prompt_tokens").series == "gen_ai_client_token_usage_sum"
    assert litellm.model_label == "requested_model" and not litellm.has(UNAUTHORIZED)
    assert vllm.model_label == "model_name" and not vllm.has(RATE_LIMITED) and not vllm.has(UNAUTHORIZED)
    assert not otel.has(INFLIGHT) and vllm.role(INFLIGHT).names() == ("vllm:num_requests_running",
                                                                     "vllm:num_requests_waiting")
    for profile in BUILTIN.values():
        for role in ALL_ROLES:
            if not profile.has(role):
                assert profile.lacks.get(role) or role == "status", (profile.name, role)


def write_config(tmp_path: Path, **settings) -> Path:
    settings.setdefault("paths", {"dashboards": str(REPO / "dashboards"), "alerts": str(REPO / "alerts")})
    path = tmp_path / "relaywatch.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


def cli(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.mark.parametrize("name", [*sorted(BUILTIN)])
def test_every_profile_builds_and_validates_with_promtool(name, tmp_path, promtool):
    config = write_config(tmp_path, profile=name)
    out = tmp_path / "build"
    result = cli("build", "--config", str(config), "--out", str(out), "--promtool", promtool)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "promtool passed" in result.stdout
    assert f"with profile {name}" in result.stdout
    assert sorted(p.name for p in (out / "dashboards").iterdir()) == [
        "llm-gateway-cost.json", "llm-gateway-model.json", "llm-gateway-overview.json", "llm-gateway-slo.json"]
    again = cli("validate", "--config", str(config), "--out", str(out), "--promtool", promtool)
    assert again.exit_code == 0 and "0 problems; promtool passed" in again.stdout, again.stdout + again.stderr


def built_titles(out: Path) -> set[str]:
    return {p["title"] for f in (out / "dashboards").glob("*.json") for p in json.loads(f.read_text())["panels"]}


def built_rules(out: Path) -> set[str]:
    return {r.get("alert") or r.get("record") for f in (out / "rules").glob("*.yaml")
            for g in yaml.safe_load(f.read_text())["groups"] for r in g["rules"]}


@pytest.mark.parametrize("name, lacking, panels, rules", [
    ("litellm", "unauthorized", ["Unauthorized (401) by model", "Unauthorized ratio by model"],
     ["LLMGatewayAuthFailures", "job_model:llm_requests_unauthorized:ratio_rate5m"]),
    ("litellm", "inflight", ["In flight", "In-flight requests by model"], ["job_model:llm_requests_in_flight:sum"]),
    ("otel_genai", "inflight", ["In flight", "In-flight requests by model"], ["job_model:llm_requests_in_flight:sum"]),
    ("vllm", "rate_limited", ["Rate limited", "Rate limited (429) by model", "Rate-limited ratio by model"],
     ["LLMGatewayRateLimited", "job_model:llm_requests_rate_limited:rate5m"]),
    ("vllm", "unauthorized", ["Unauthorized (401)", "Unauthorized ratio by model"], ["LLMGatewayAuthFailures"]),
])
def test_what_a_profile_lacks_is_left_out_with_a_notice_saying_why(name, lacking, panels, rules, tmp_path):
    out = tmp_path / "build"
    result = cli("build", "--config", str(write_config(tmp_path, profile=name)), "--out", str(out), "--no-validate")
    assert result.exit_code == 0, result.stderr
    reason = BUILTIN[name].lacks[lacking]
    assert f"notice: profile {name} has no {lacking}: {reason}; what needs it is left out" in result.stderr
    for title in panels:
        assert title not in built_titles(out)
        assert f"panel {title!r} left out: the profile has no {lacking}" in result.stderr
    for rule in rules:
        assert rule not in built_rules(out)
    assert "Request rate by model" in built_titles(out)  # what the gateway does export stays


def test_a_profile_with_everything_builds_without_notices(tmp_path):
    result = cli("build", "--config", str(write_config(tmp_path, profile="holysheep")), "--out",
                 str(tmp_path / "b"), "--no-validate")
    assert result.exit_code == 0 and "notice:" not in result.stderr


def test_otel_error_values_come_from_config(tmp_path):
    config = write_config(tmp_path, profile="otel_genai", profile_options={"otel_genai": {
        "rate_limited_errors": ["429", "rate_limit_exceeded"], "unauthorized_errors": []}})
    out = tmp_path / "build"
    result = cli("build", "--config", str(config), "--out", str(out), "--no-validate")
    assert result.exit_code == 0, result.stderr
    recording = (out / "rules" / "llm-gateway-recording.yaml").read_text()
    assert 'status=~"429|rate_limit_exceeded"' in recording
    assert 'status!~"429|rate_limit_exceeded|BadRequestError' in recording  # 429s are not failures
    assert "LLMGatewayAuthFailures" not in built_rules(out)
    assert ("profile otel_genai has no unauthorized: profile_options.otel_genai.unauthorized_errors is empty"
            in result.stderr)


def test_error_values_are_matched_literally():
    profile = get_profile("otel_genai", {"profile_options": {"otel_genai": {
        "rate_limited_errors": ["java.net.RateLimit(429)"]}}})
    assert profile.role(RATE_LIMITED).matchers[0].value == r"java\.net\.RateLimit\(429\)"


def test_vllm_failed_reasons_come_from_config():
    profile = get_profile("vllm", {"profile_options": {"vllm": {"failed_reasons": ["error", "abort"]}}})
    assert profile.role("failed").matchers[0].value == "error|abort"
    assert get_profile("vllm").role("failed").matchers[0].value == "error"


def test_vllm_metric_names_follow_the_configured_prefix(tmp_path):
    assert get_profile("vllm").role("requests").series == "vllm:request_success_total"
    underscored = get_profile("vllm", {"profile_options": {"vllm": {"metric_prefix": "vllm_"}}})
    assert underscored.role("requests").series == "vllm_request_success_total"
    assert underscored.role("latency").series == "vllm_e2e_request_latency_seconds"
    assert {m.name for m in underscored.metrics} >= {"vllm_num_requests_running", "vllm_generation_tokens_total"}
    config = write_config(tmp_path, profile="vllm", profile_options={"vllm": {"metric_prefix": "vllm_"}})
    result = cli("build", "--config", str(config), "--out", str(tmp_path / "b"))
    assert result.exit_code == 0, result.stderr
    recording = (tmp_path / "b" / "rules" / "llm-gateway-recording.yaml").read_text()
    assert "vllm_request_success_total" in recording and "vllm:request_success_total" not in recording
    bad = write_config(tmp_path, profile="vllm", profile_options={"vllm": {"metric_prefix": "vllm."}})
    assert cli("build", "--config", str(bad), "--out", str(tmp_path / "c")).exit_code == 2


def test_unknown_profile_options_are_config_errors(tmp_path):
    config = write_config(tmp_path, profile="otel_genai", profile_options={"otel_genai": {"rate_limit": ["x"]}})
    result = cli("build", "--config", str(config), "--out", str(tmp_path / "b"))
    assert result.exit_code == 2
    assert "profile_options.otel_genai: unknown key 'rate_limit'" in result.stderr
    assert not (tmp_path / "b").exists()


def test_profiles_command_lists_what_each_profile_supports(tmp_path):
    result = cli("profiles", "--config", str(write_config(tmp_path, profile="vllm")))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    header = lines[0].split()
    vllm = next(line for line in lines if line.startswith("* vllm"))
    marks = dict(zip(header, vllm[1:].split()[1:len(header) + 1]))
    assert marks["429"] == "-" and marks["401"] == "-" and marks["inflight"] == "x" and marks["latency"] == "x"
    litellm = next(line for line in lines if line.startswith("  litellm"))
    assert dict(zip(header, litellm.split()[1:len(header) + 1]))["401"] == "-"
    assert "custom" in result.stdout


def test_profiles_command_shows_the_series_behind_each_role(tmp_path):
    result = cli("profiles", "litellm", "--config", str(write_config(tmp_path)))
    assert result.exit_code == 0
    assert 'failed             litellm_proxy_total_requests_metric_total{status_code=~"5..|408|None"}' in result.stdout
    assert "unauthorized       - not exported: LiteLLM leaves requests answered 401 out" in result.stdout
    unknown = cli("profiles", "nope", "--config", str(write_config(tmp_path)))
    assert unknown.exit_code == 2 and "unknown profile 'nope'" in unknown.stderr


def test_every_builtin_profile_is_a_profile():
    assert set(BUILTIN) == {"holysheep", "otel_genai", "litellm", "vllm"}
    assert all(isinstance(p, Profile) and p.source for p in BUILTIN.values())


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_a_rebuild_gives_byte_identical_files(name):
    def rendered():
        return build.rendered_files(build.build(from_mapping({"profile": name}, root=REPO)))

    first = rendered()
    assert first == rendered()
    assert any(path.endswith("llm-gateway-cost.json") for path in first)
