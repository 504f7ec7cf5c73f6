"""promql_ast: variable stand-ins, range windows and the labels an expression keeps."""

from __future__ import annotations

from datetime import timedelta

import pytest

from provision.promql_ast import (
    LabelSet,
    calls,
    parse,
    range_argument,
    referenced_variables,
    result_labels,
    selector_name,
    substitute_variables,
    window_variable,
)

SERIES = {
    "requests": LabelSet(frozenset({"job", "instance", "model", "status"})),
    "buckets": LabelSet(frozenset({"job", "instance", "model", "le"})),
    "per_job": LabelSet(frozenset({"job"})),
    "raw": LabelSet(frozenset({"job", "instance"}), open=True),
}


def labels(expr: str) -> LabelSet:
    return result_labels(parse(expr), lambda node: SERIES[selector_name(node)])


@pytest.mark.parametrize("expr, known, open_", [
    ("requests", {"job", "instance", "model", "status"}, False),
    ('requests{extra="x"}', {"job", "instance", "model", "status", "extra"}, False),
    ("rate(requests[5m])", {"job", "instance", "model", "status"}, False),
    ("sum by (model) (rate(requests[5m]))", {"model"}, False),
    ("sum without (instance, status) (requests)", {"job", "model"}, False),
    ("sum(requests)", set(), False),
    ("topk(3, requests)", {"job", "instance", "model", "status"}, False),
    ('count_values("value", per_job)', {"value"}, False),
    ("histogram_quantile(0.9, sum by (le, model) (rate(buckets[5m])))", {"model"}, False),
    ('label_replace(per_job, "team", "$1", "job", "(.*)")', {"job", "team"}, False),
    ('label_join(per_job, "both", "-", "job", "model")', {"job", "both"}, False),
    ("requests / on (job) per_job", {"job"}, False),
    ("requests / ignoring (status) requests", {"job", "instance", "model"}, False),
    ("requests * on (job) group_left (team) per_job", {"job", "instance", "model", "status", "team"}, False),
    ("per_job * on (job) group_right () requests", {"job", "instance", "model", "status"}, False),
    ("requests and per_job", {"job", "instance", "model", "status"}, False),
    ("per_job unless requests", {"job"}, False),
    ("per_job or sum by (model) (requests)", {"job", "model"}, False),
    ("vector(1)", set(), False),
    ("scalar(per_job) * requests", {"job", "instance", "model", "status"}, False),
    ("time() - per_job", {"job"}, False),
    ('absent(requests{job="gateway", model=~"gpt.*"})', {"job"}, False),
    ("max_over_time(per_job[1h:5m])", {"job"}, False),
    ("-per_job", {"job"}, False),
    ("sum by (model) (raw)", {"model"}, False),
    ("rate(raw[5m])", {"job", "instance"}, True),
    ("sum without (instance) (raw)", {"job"}, True),
])
def test_result_labels(expr, known, open_):
    assert labels(expr) == LabelSet(frozenset(known), open_)


def test_open_label_sets_may_have_any_label():
    assert LabelSet(frozenset({"job"})).may_have("job")
    assert not LabelSet(frozenset({"job"})).may_have("model")
    assert LabelSet(frozenset({"job"}), open=True).may_have("model")


def test_query_stand_ins_are_unchanged():
    expr = 'sum(rate(x{job=~"$job", model=~"${model:regex}"}[$__rate_interval])) > $threshold'
    assert substitute_variables(expr) == 'sum(rate(x{job=~".*", model=~".*"}[5m])) > 1'


def test_marked_stand_ins_say_which_variable_they_were():
    ast = parse('rate(x{job=~"$job", model=~"[[model]]"}[$__rate_interval]) + irate(x[$__interval])'
                " + increase(x[$window]) + rate(x[5m])", mark_variables=True)
    windows = [window_variable(range_argument(call).range) for call in calls(ast, {"rate", "irate", "increase"})]
    assert windows == ["__rate_interval", "__interval", "custom variable", None]
    matchers = parse('x{job=~"$job", model=~"[[model]]|${other}"}', mark_variables=True).matchers.matchers
    assert [referenced_variables(m.value) for m in matchers] == [{"job"}, {"model", "other"}]


def test_regex_groups_are_not_grafana_variables():
    expr = 'label_replace(x, "class", "${1}xx", "code", "([0-9])..") or label_replace(x, "a", "$1", "b", "(.*)")'
    assert substitute_variables(expr) == expr


def test_a_fixed_window_is_no_variable():
    assert window_variable(timedelta(minutes=5)) is None
