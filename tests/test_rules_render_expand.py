"""Inlining recording rules (provision.promql_expand): the inlined expression returns the
same series and values as the original reading the recorded series.

promtool evaluates the recording rules on synthetic traffic and then, at several
times, the queries `original unless inlined`, `inlined unless original` and
`abs(original - inlined) > 1e-9`: all three must be empty.
"""

from __future__ import annotations


import pytest
import yaml

from conftest import REPO
from promtool_helpers import run_promtool_test
from provision import build
from provision.config import from_mapping
from provision.promql_ast import metric_names
from provision.promql_expand import MARK, ExpansionError, Expander
from provision.rules import Query, RecordingRule, RuleGroup


@pytest.fixture(scope="module")
def result():
    return build.build(from_mapping({"rules": {"interval": "1m"}}, root=REPO))


@pytest.fixture(scope="module")
def expander(result) -> Expander:
    return Expander.from_groups(result.groups, "1m")


def recorded_names(result) -> set[str]:
    return {r.record for g in result.groups for r in g.rules if isinstance(r, RecordingRule)}


EXPRESSIONS = [  # (expression, series it returns with two models of one job)
    ("job_model:llm_requests_failed:ratio_rate5m", 2),
    ('job_model_status:llm_requests:rate5m{status=~"5..|timeout"}', 4),
    ('job_model_status:llm_requests:rate5m{status!~"2..", model!="claude-sonnet-4.5"}', 3),
    ('job_model_status:llm_requests:rate5m{status="429"}', 2),
    ('job_model_token_type:llm_tokens:rate5m{token_type="prompt"}', 2),
    ('job_model_token_type:llm_tokens:rate5m{token_type=~"comp.*", model="gpt-4.1"}', 1),
    ("job_model_token_type:llm_spend_usd:rate5m", 4),
    ('model_token_type:llm_price_usd_per_token:config{model="gpt-4.1"}', 2),
    ("job:llm_requests:rate5m offset 10m", 1),
    ("max_over_time(job:llm_requests:rate5m[30m])", 1),
    ("sum_over_time(job_model:llm_requests:rate5m[10m] offset 5m)", 2),
    ("histogram_quantile(0.95, sum by (job, model, le) (job_model_le:llm_request_latency_seconds_bucket:rate5m))", 2),
]


def traffic() -> list[dict]:
    """Counters whose rate doubles at minute 30, so an offset or a range changes the value."""
    out = []
    for model, scale in (("gpt-4.1", 1), ("claude-sonnet-4.5", 3)):
        lab = f'job="llm-gateway", instance="gw-1:8000", model="{model}"'
        for code, n in (("200", 500), ("500", 40), ("429", 20), ("timeout", 5)):
            out.append({"series": f'holysheep_requests_total{{{lab}, status_code="{code}"}}',
                        "values": _doubling(n * scale)})
        for token_type, n in (("prompt", 9000), ("completion", 3000)):
            out.append({"series": f'holysheep_tokens_total{{{lab}, token_type="{token_type}"}}',
                        "values": _doubling(n * scale)})
        for le, n in (("0.5", 300), ("1", 450), ("5", 540), ("+Inf", 565)):
            out.append({"series": f'holysheep_request_latency_seconds_bucket{{{lab}, le="{le}"}}',
                        "values": _doubling(n * scale)})
    return out


def test_inlined_expressions_return_what_the_recorded_series_return(tmp_path, promtool, result, expander):
    build.write(result, tmp_path)
    checks = []
    for expr, count in EXPRESSIONS:
        inlined = expander.expand(expr)
        assert not metric_names(inlined) & recorded_names(result), inlined
        for at in ("20m", "33m", "38m", "59m"):
            for query in (f"({expr}) unless ({inlined})", f"({inlined}) unless ({expr})",
                          f"abs(({expr}) - ({inlined})) > 1e-9"):
                checks.append({"expr": query, "eval_time": at, "exp_samples": []})
            checks.append({"expr": f"count({expr})", "eval_time": at,  # not vacuous: the original has series
                           "exp_samples": [{"labels": "{}", "value": count}]})
    order = [g.name for g in result.groups]
    test = {"rule_files": [str(p) for p in sorted((tmp_path / "rules").glob("*.yaml"))],
            "evaluation_interval": "1m", "group_eval_order": order,
            "tests": [{"interval": "1m", "input_series": traffic(), "promql_expr_test": checks}]}
    path = tmp_path / "expand-test.yaml"
    path.write_text(yaml.safe_dump(test, sort_keys=False), encoding="utf-8")
    run_promtool_test(promtool, path)


def _doubling(per_minute: int) -> str:
    return f"0+{per_minute}x30 {per_minute * 30 + 2 * per_minute}+{2 * per_minute}x29"


def test_static_labels_are_decided_without_a_filter(expander):
    inlined = expander.expand('job_model_token_type:llm_tokens:rate5m{token_type="prompt"}')
    assert 'token_type="prompt"' in inlined  # the raw selector of the prompt rule
    assert 'token_type="completion"' not in inlined  # the completion rule is left out
    assert MARK not in inlined and " and on " not in inlined


def test_a_selector_no_rule_can_match_is_empty(expander):
    assert expander.expand('job_model_token_type:llm_tokens:rate5m{token_type="cached"}') == "(vector(0) < 0)"


def test_range_reads_become_subqueries_at_the_group_interval(expander):
    inlined = expander.expand("max_over_time(job:llm_requests:rate5m[1h])")
    assert ")[1h:1m]" in inlined
    assert any("job:llm_requests:rate5m[1h]" in note for note in expander.notes)


def test_offsets_move_into_the_inlined_selectors(expander):
    inlined = expander.expand("job:llm_requests:rate5m offset 1h")
    assert "rate(holysheep_requests_total[5m] offset 1h)" in inlined


def group(*rules: RecordingRule) -> RuleGroup:
    return RuleGroup("g", "f", rules, "30s")


def test_a_recording_rule_that_reads_itself_is_refused():
    expander = Expander.from_groups([group(RecordingRule("a:x:sum", Query("sum(b:x:sum)")),
                                           RecordingRule("b:x:sum", Query("sum(a:x:sum)")))], "30s")
    with pytest.raises(ExpansionError, match="refers to itself"):
        expander.expand("a:x:sum > 1")


def test_at_modifier_and_name_regex_on_recorded_series_are_refused():
    expander = Expander.from_groups([group(RecordingRule("a:x:sum", Query("sum(up)")))], "30s")
    with pytest.raises(ExpansionError, match="@ modifier"):
        expander.expand("a:x:sum @ 100")
    with pytest.raises(ExpansionError, match="__name__"):
        expander.expand('{__name__=~"a:.*"}')
    assert expander.expand('{__name__=~"node_.*"}') == '{__name__=~"node_.*"}'  # raw series: untouched


def test_selector_functions_on_inlined_series_are_noted():
    expander = Expander.from_groups([group(RecordingRule("a:x:sum", Query("sum by (job) (up)")))], "30s")
    expander.expand("timestamp(a:x:sum)")
    assert any("timestamp()" in note for note in expander.notes)


def test_values_with_dollar_signs_survive_label_replace():
    expander = Expander.from_groups([group(RecordingRule("a:x:sum", Query("sum(up)"), {"tier": "$1"}))], "30s")
    assert '"$$1"' in expander.expand("a:x:sum")
