"""The contract, PromQL builders, recorded and raw panel queries, dropped roles."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from provision import promql
from provision.build import build
from provision.config import from_mapping
from provision.contract import FAILED, INFLIGHT, LATENCY, MODEL, TOKEN_TYPE, Matcher, Selection
from provision.definitions import make_context
from provision.profiles import get_profile
from provision.queries import PanelQueries
from provision.recording import RecordedNames, Recordings, per_token

REPO = Path(__file__).resolve().parent.parent
HOLYSHEEP = get_profile("holysheep")
NAMES = RecordedNames("5m")


def test_default_profile_is_the_source_documents_contract():
    metrics = {m.name: m for m in HOLYSHEEP.metrics}
    assert metrics["holysheep_requests_total"].type == "counter"
    assert metrics["holysheep_requests_total"].labels == ("model", "status_code")
    assert metrics["holysheep_request_latency_seconds"].buckets == (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
    assert metrics["holysheep_tokens_total"].labels == ("model", "token_type")
    assert metrics["holysheep_active_requests"].type == "gauge"
    assert HOLYSHEEP.metric("holysheep_request_latency_seconds_bucket").name == "holysheep_request_latency_seconds"


@pytest.mark.parametrize("value, text", [(5, "5"), (5.0, "5"), (0.05, "0.05"), (8e-06, "8e-06"), (0.95, "0.95")])
def test_numbers_are_rendered_exactly_and_briefly(value, text):
    assert promql.number(value) == text


def test_prices_per_token_have_no_binary_noise():
    assert [per_token(p) for p in (32.0, 0.42, 1.68, 75.0)] == [3.2e-05, 4.2e-07, 1.68e-06, 7.5e-05]


def test_matchers_quote_and_escape_values():
    assert Matcher("path", "=~", 'a"b\\c').render() == 'path=~"a\\"b\\\\c"'


def test_paren_leaves_single_terms_alone():
    assert promql.paren('x{a="b c"}') == 'x{a="b c"}'
    assert promql.paren("sum by (a) (x)") == "(sum by (a) (x))"


def test_recorded_failure_ratio_divides_sums_not_averages_ratios():
    q = PanelQueries(HOLYSHEEP, NAMES, selector={}).failure_ratio(by=(MODEL,))
    assert q.expr == ('(sum by (model) (job_model:llm_requests_failed:rate5m{job=~"$job", model=~"$model"})) / '
                      '(sum by (model) (job_model:llm_requests:rate5m{job=~"$job", model=~"$model"}))')
    assert q.legend == "{{model}}"


def test_raw_quantile_sums_buckets_by_le_with_rate_interval():
    q = PanelQueries(HOLYSHEEP, NAMES, selector={"env": "prod"}, raw=True).latency_quantile(0.95, by=(MODEL,))
    assert q.expr == ('histogram_quantile(0.95, sum by (model, le) (rate(holysheep_request_latency_seconds_bucket'
                      '{env="prod", job=~"$job", model=~"$model"}[$__rate_interval])))')


def test_raw_token_rate_keeps_token_type_from_either_selection():
    q = PanelQueries(HOLYSHEEP, NAMES, selector={}, raw=True).token_rate(by=(TOKEN_TYPE,))
    assert 'label_replace(sum(rate(holysheep_tokens_total{token_type="prompt"' in q.expr
    assert '"token_type", "completion", "", "")' in q.expr and " or " in q.expr


def test_a_profile_renaming_labels_is_translated_by_the_recording_rules():
    renamed = dataclasses.replace(HOLYSHEEP, model_label="model_name", status_label="code")
    rules = Recordings(renamed, selector={}, window="5m", pricing={}).traffic_group().rules
    by_status = rules[0].query.expr
    assert by_status == ('sum by (job, model, status) (label_replace(label_replace(sum by (job, model_name, code) '
                         '(rate(holysheep_requests_total[5m])), "model", "$1", "model_name", "(.*)"), '
                         '"status", "$1", "code", "(.*)"))')
    raw = PanelQueries(renamed, NAMES, selector={}, raw=True)
    assert raw.request_rate(by=(MODEL,)).legend == "{{model_name}}"
    assert 'model_name=~"$model"' in raw.request_rate(by=(MODEL,)).expr


def test_outcomes_of_another_series_are_read_from_that_series():
    profile = dataclasses.replace(HOLYSHEEP, roles={**HOLYSHEEP.roles, FAILED: Selection("gateway_failures_total")})
    rules = {r.record: r for r in Recordings(profile, selector={}, window="5m", pricing={}).traffic_group().rules}
    assert "rate(gateway_failures_total[5m])" in rules[NAMES.outcome(FAILED)].query.expr


def test_a_profile_lacking_roles_drops_panels_and_rules_with_notices(monkeypatch):
    lean = dataclasses.replace(HOLYSHEEP, name="lean",
                               roles={k: v for k, v in HOLYSHEEP.roles.items() if k not in (INFLIGHT, LATENCY)})
    monkeypatch.setattr("provision.definitions.get_profile", lambda name, custom=None: lean)
    result = build(from_mapping({}, root=REPO))
    titles = [p["title"] for d in result.dashboards.values() for p in d["panels"]]
    assert "In-flight requests by model" not in titles and "P95 latency by model" not in titles
    assert "Request rate by model" in titles
    rendered = [r.get("alert") or r.get("record") for f in result.rule_files.values() for g in f["groups"]
                for r in g["rules"]]
    assert "LLMGatewayLatencyP95High" not in rendered and NAMES.inflight not in rendered
    assert any("'P95 latency by model' left out: the profile has no latency" in n for n in result.notices)
    assert any("LLMGatewayLatencyP95High left out" in n for n in result.notices)


def test_context_exposes_settings_by_dotted_path():
    ctx = make_context(from_mapping({"alerts": {"latency_p95": {"threshold_seconds": 3}}}, root=REPO))
    assert ctx.setting("alerts.latency_p95.threshold_seconds") == 3
