"""Every check: a small bad input it flags, and good inputs (legitimate patterns) it passes.

Good inputs must lint completely clean, so they double as proof that the checks
do not fire on the patterns a careful team writes on purpose.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from lint_support import (
    ERROR_RATIO,
    RATE,
    RUNBOOK_BASE,
    alert,
    annotations,
    checks,
    dashboard,
    lint,
    panel,
    query_dashboard,
    recording,
    rule_file,
    target,
    variables,
)
from provision.lint import CHECKS

HARD_CODED = {"type": "prometheus", "uid": "P1809F7CD0C75ACF3"}
BUCKETS = 'holysheep_request_latency_seconds_bucket{job=~"$job", model=~"$model"}'
PER_JOB = "job:requests:rate5m"
PER_JOB_RULE = recording(PER_JOB, "sum by (job) (rate(holysheep_requests_total[5m]))")


def variables_without(name: str) -> list[dict]:
    return [v for v in variables() if v["name"] != name]


def with_variable(name: str, **changes) -> list[dict]:
    return [{**v, **changes} if v["name"] == name else v for v in variables()]


def collapsed_row(row_id: int, *children: dict, y: int = 0) -> dict:
    return {"id": row_id, "type": "row", "title": f"Row {row_id}", "collapsed": True,
            "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": list(children)}


BAD = [
    # dashboard structure
    ("dashboard-structure", [{"uid": "a", "title": "A", "panels": {"id": 1}}], {}),
    ("dashboard-uid", [dashboard(uid="")], {}),
    ("dashboard-uid", [dashboard(uid="x" * 41)], {}),
    ("dashboard-uid", [dashboard(uid="llm/gateway")], {}),
    ("panel-deprecated-type", [dashboard(panel(kind="graph"))], {}),
    ("panel-deprecated-type", [dashboard(panel(kind="singlestat"))], {}),
    ("panel-title", [dashboard(panel(title=" "))], {}),
    ("panel-description", [dashboard(panel(description=""))], {}),
    ("panel-unit", [dashboard(panel(unit=""))], {}),
    ("panel-targets", [dashboard(panel(targets=[]))], {}),
    ("panel-targets", [dashboard(panel(target(expr="  ")))], {}),
    ("panel-id-unique", [dashboard(panel(panel_id=1), panel(panel_id=1, grid=(12, 0, 12, 8)))], {}),
    ("panel-grid-position", [dashboard(panel(panel_id=1), panel(panel_id=2, grid=(6, 4, 12, 8)))], {}),
    ("panel-grid-position", [dashboard(panel(grid=(16, 0, 12, 8)))], {}),
    # variables and datasources
    ("dashboard-datasource-variable", [dashboard(templating=variables_without("datasource"))], {}),
    ("dashboard-datasource-variable", [dashboard(templating=with_variable("datasource", query="loki"))], {}),
    ("panel-datasource-variable", [dashboard(panel(datasource=HARD_CODED))], {}),
    ("panel-datasource-variable", [dashboard(panel(datasource=None))], {}),
    ("panel-datasource-variable", [dashboard(panel(target(datasource="Prometheus")))], {}),
    ("panel-datasource-variable", [dashboard(templating=with_variable("job", datasource=HARD_CODED))], {}),
    ("panel-datasource-variable",
     [dashboard(panel(target(datasource=None), datasource={"type": "datasource", "uid": "-- Mixed --"}))], {}),
    ("dashboard-job-model-variables", [dashboard(templating=variables_without("model"))], {}),
    ("dashboard-job-model-variables", [dashboard(templating=with_variable("job", type="interval"))], {}),
    ("target-job-model-filter",
     [query_dashboard('sum(rate(holysheep_requests_total{job=~"$job"}[$__rate_interval]))')], {}),
    ("target-job-model-filter",
     [query_dashboard('sum(rate(holysheep_requests_total{model=~"$model"}[$__rate_interval]))')], {}),
    ("target-job-model-filter",
     [query_dashboard('sum(rate(holysheep_requests_total{job="$job", model=~"$model"}[$__rate_interval]))')], {}),
    ("target-job-model-filter", [query_dashboard(f'sum({ERROR_RATIO}{{job=~"$job"}})'), rule_file()], {}),
    # dashboard queries
    ("promql-rate-interval", [query_dashboard(RATE.replace("$__rate_interval", "5m"))], {}),
    ("promql-rate-interval", [query_dashboard(RATE.replace("$__rate_interval", "$__interval"))], {}),
    ("target-legend-labels", [dashboard(panel(target(legend="{{status_code}}")))], {}),
    ("target-legend-labels",
     [dashboard(panel(target(RATE.replace("sum by (model)", "sum"), legend="{{ model }}")))], {}),
    # PromQL against the contract
    ("promql-parse", [query_dashboard(RATE[:-1])], {}),
    ("promql-parse", [rule_file(alert(expr="job_model:errors:ratio_rate5m >"))], {}),
    ("promql-metric-in-profile", [query_dashboard(RATE.replace("requests_total", "request_total"))], {}),
    ("promql-metric-in-profile",
     [query_dashboard(f"histogram_quantile(0.9, sum by (le) (rate({BUCKETS.replace('_bucket', '')}[$__rate_interval])))")],
     {}),
    ("promql-recording-defined", [rule_file(alert(expr="job_model:undefined:ratio_rate5m > 0.05"))], {}),
    ("promql-recording-defined", [query_dashboard(f'sum({PER_JOB}{{job=~"$job"}})')], {}),
    ("promql-rate-gauge",
     [query_dashboard('sum(rate(holysheep_active_requests{job=~"$job", model=~"$model"}[$__rate_interval]))')], {}),
    ("promql-rate-gauge", [rule_file(recording("job:errors:rate5m", f"sum by (job) (rate({ERROR_RATIO}[5m]))"))], {}),
    ("promql-counter-rate", [query_dashboard('sum(holysheep_requests_total{job=~"$job", model=~"$model"})')], {}),
    ("promql-counter-rate",
     [rule_file(recording("job:latency_seconds_sum:delta5m",
                          "sum by (job) (delta(holysheep_request_latency_seconds_sum[5m]))"))], {}),
    ("promql-histogram-quantile",
     [query_dashboard(f"histogram_quantile(0.95, rate({BUCKETS}[$__rate_interval]))")], {}),
    ("promql-histogram-quantile",
     [query_dashboard(f"histogram_quantile(0.95, sum by (model) (rate({BUCKETS}[$__rate_interval])))")], {}),
    ("promql-histogram-quantile",
     [query_dashboard(f"histogram_quantile(0.95, max by (le) (rate({BUCKETS}[$__rate_interval])))")], {}),
    ("promql-histogram-quantile",
     [query_dashboard(f"histogram_quantile(95, sum by (le) (rate({BUCKETS}[$__rate_interval])))")], {}),
    ("promql-histogram-quantile",
     [query_dashboard("histogram_quantile(0.95, sum by (le) (rate("
                      'holysheep_request_latency_seconds_count{job=~"$job", model=~"$model"}[$__rate_interval])))')],
     {}),
    ("promql-range-window",
     [rule_file(recording("job:requests:rate30s", "sum by (job) (rate(holysheep_requests_total[30s]))"))], {}),
    ("promql-range-window",
     [rule_file(recording("job:requests:rate1m", "sum by (job) (rate(holysheep_requests_total[1m]))"))],
     {"scrape_interval": timedelta(seconds=30)}),
    # rule files
    ("rule-file-structure", [{"groups": [{"name": "g", "rules": [{"alert": "A", "record": "b:c:d", "expr": "1"}]}]}],
     {}),
    ("rule-file-structure", [{"groups": [{"name": "g", "rules": [{"alert": "A"}]}]}], {}),
    ("rule-file-structure", [{"groups": "g"}], {}),
    # alerts
    ("alert-name-camelcase", [rule_file(alert(alert="gateway_errors_high"))], {}),
    ("alert-severity-label", [rule_file(alert(labels={}))], {}),
    ("alert-severity-label", [rule_file(alert(labels={"severity": "page"}))], {}),
    ("alert-summary-static", [rule_file(alert(annotations=annotations(summary=None)))], {}),
    ("alert-summary-static", [rule_file(alert(annotations=annotations(summary="{{ $labels.model }} fails.")))], {}),
    ("alert-summary-sentence", [rule_file(alert(annotations=annotations(summary="gateway requests failing")))], {}),
    ("alert-description-templated", [rule_file(alert(annotations=annotations(description=None)))], {}),
    ("alert-description-templated", [rule_file(alert(annotations=annotations(description="Errors are high.")))], {}),
    ("alert-runbook-url", [rule_file(alert(annotations=annotations(runbook_url=None)))], {}),
    ("alert-runbook-url", [rule_file(alert(annotations=annotations(runbook_url=f"{RUNBOOK_BASE}#nope")))], {}),
    ("alert-runbook-url", [rule_file(alert(annotations=annotations(runbook_url=RUNBOOK_BASE)))], {}),
    ("alert-runbook-url", [rule_file(alert(annotations=annotations(runbook_url="see the wiki")))], {}),
    ("alert-runbook-url", [rule_file(alert())], {"runbooks": Path("/nonexistent/runbooks.md")}),
    ("alert-annotation-labels",
     [rule_file(alert(annotations=annotations(description="{{ $labels.status_code }} is {{ $value }}.")))], {}),
    ("alert-annotation-labels", [rule_file(alert(expr=f"sum({ERROR_RATIO}) > 0.05"))], {}),
    ("alert-annotation-labels", [rule_file(alert(labels={"severity": "warning", "team": "{{ $labels.team }}"}))], {}),
    ("alert-annotation-labels",
     [rule_file(alert(expr=f"{ERROR_RATIO} > on (job) {PER_JOB}"), PER_JOB_RULE)], {}),
    ("alert-absent-for", [rule_file(alert(expr="absent(holysheep_requests_total)", **{"for": None}))], {}),
    ("alert-absent-for", [rule_file(alert(expr="absent(holysheep_requests_total)", **{"for": "0s"}))], {}),
    ("alert-comparison", [rule_file(alert(expr=ERROR_RATIO))], {}),
    ("alert-comparison", [rule_file(alert(expr=f"{ERROR_RATIO} > bool 0.05"))], {}),
    ("alert-comparison", [rule_file(alert(expr=f"{ERROR_RATIO} > 0.05 or {ERROR_RATIO}"))], {}),
    # recording rules
    ("recording-name", [rule_file(recording("requests_rate", "sum(rate(holysheep_requests_total[5m]))"))], {}),
    ("recording-duplicate", [rule_file(), rule_file(with_base=True)], {}),
    ("recording-level-labels",
     [rule_file(recording("job:requests:rate5m", "sum by (job, model) (rate(holysheep_requests_total[5m]))"))], {}),
]

GOOD = [
    ("dashboard-uid", [dashboard(uid="llm-gateway_overview-01")], {}),
    ("panel-description", [dashboard(panel(), {"id": 2, "type": "text", "title": "Notes",
                                               "gridPos": {"x": 12, "y": 0, "w": 12, "h": 8}})], {}),
    ("panel-unit", [dashboard(panel(unit="", fieldConfig={"defaults": {}, "overrides": [
        {"matcher": {"id": "byName", "options": "x"}, "properties": [{"id": "unit", "value": "s"}]}]}))], {}),
    ("panel-unit", [dashboard(panel(unit="none"))], {}),
    ("panel-title", [dashboard({"id": 9, "type": "row", "title": "", "gridPos": {"x": 0, "y": 0, "w": 24, "h": 1},
                                "panels": []}, panel(grid=(0, 1, 12, 8)))], {}),
    ("panel-grid-position", [dashboard(collapsed_row(1, panel(panel_id=2, grid=(0, 1, 12, 8))),
                                       collapsed_row(3, panel(panel_id=4, grid=(0, 1, 12, 8)), y=1))], {}),
    ("panel-id-unique", [dashboard(panel(panel_id=1), panel(panel_id=2, grid=(12, 0, 12, 8)))], {}),
    ("panel-datasource-variable", [dashboard(panel(datasource="$datasource", targets=[target(datasource=None)]))], {}),
    ("panel-datasource-variable",
     [dashboard(panel(datasource={"type": "datasource", "uid": "-- Mixed --"}))], {}),
    ("target-job-model-filter", [query_dashboard(f'sum({PER_JOB}{{job=~"${{job}}"}})'), rule_file(PER_JOB_RULE)], {}),
    ("target-job-model-filter", [query_dashboard('sum(up{job=~"$job"})')], {}),
    ("target-job-model-filter",
     [query_dashboard(f'{RATE} and on (model) (sum by (model) (rate(holysheep_requests_total[$__rate_interval])) > 0)')],
     {}),
    ("target-job-model-filter", [  # "the same tokens at each model's price": the price table is not traffic
        query_dashboard('sum by (model) (sum by (token_type) (rate(holysheep_tokens_total{job=~"$job", '
                        'model=~"$model"}[$__rate_interval])) * on (token_type) group_right () '
                        'model_token_type:price_usd_per_token:config)', legend="{{model}}"),
        rule_file(recording("model_token_type:price_usd_per_token:config", "vector(8e-06)",
                            {"model": "gpt-4.1", "token_type": "prompt"}))], {}),
    ("promql-rate-interval",
     [query_dashboard('sum(increase(holysheep_requests_total{job=~"$job", model=~"$model"}[$__range]))')], {}),
    ("target-legend-labels", [query_dashboard(
        'rate(holysheep_requests_total{job=~"$job", model=~"$model"}[$__rate_interval])', legend="{{instance}}")], {}),
    ("target-legend-labels", [query_dashboard(
        f"sum by (le) (rate({BUCKETS}[$__rate_interval]))", legend="{{le}}")], {}),
    ("target-legend-labels", [query_dashboard(
        f'label_replace({RATE}, "provider", "$1", "model", "([^-]+)-.*")', legend="{{provider}} {{model}}")], {}),
    ("promql-metric-in-profile", [query_dashboard(
        f"histogram_quantile(0.9, sum by (le, model) (rate({BUCKETS}[$__rate_interval])))")], {}),
    ("promql-recording-defined", [query_dashboard(f'sum({ERROR_RATIO}{{job=~"$job", model=~"$model"}})'),
                                  rule_file()], {}),
    ("promql-counter-rate", [rule_file(
        recording("job_instance:series:count", "count by (job, instance) (holysheep_requests_total)"),
        alert(alert="GatewayErrorsHigh", expr="absent(holysheep_requests_total{job=\"gateway\"}) == 1",
              annotations=annotations(description="No request series of {{ $labels.job }}.")))], {}),
    ("promql-histogram-quantile", [rule_file(
        recording("job_model_le:latency_seconds_bucket:rate5m",
                  "sum by (job, model, le) (rate(holysheep_request_latency_seconds_bucket[5m]))"),
        alert(expr="histogram_quantile(0.95, job_model_le:latency_seconds_bucket:rate5m) > 5"))], {}),
    ("promql-range-window",
     [rule_file(recording("job:requests:rate30s", "sum by (job) (rate(holysheep_requests_total[30s]))"))],
     {"scrape_interval": timedelta(seconds=5)}),
    ("alert-severity-label", [rule_file(alert(labels={"severity": "page"}))], {"alert_severities": ("page", "ticket")}),
    ("alert-description-templated", [rule_file(alert(
        expr="absent(holysheep_requests_total)", annotations=annotations(description="The request metrics are gone.")))],
     {}),
    ("alert-runbook-url", [rule_file(alert(annotations=annotations(runbook_url=f"{RUNBOOK_BASE}#gateway-latency-p95")))],
     {}),
    ("alert-runbook-url", [rule_file(alert(annotations=annotations(runbook_url=f"{RUNBOOK_BASE}#custom-anchor")))], {}),
    ("alert-runbook-url", [rule_file(alert(annotations=annotations(runbook_url="https://wiki.example.com/gateway")))],
     {}),
    ("alert-runbook-url", [rule_file(alert(
        annotations=annotations(runbook_url="https://github.com/acme/ops/blob/main/runbooks.md#gateway")))], {}),
    ("alert-annotation-labels", [rule_file(alert(
        expr='up{job="gateway"} == 0', annotations=annotations(description="{{ $labels.instance }} is down.")))], {}),
    ("alert-annotation-labels", [rule_file(alert(
        expr=f"{ERROR_RATIO} > 0.05 and on (job) {PER_JOB} > 1",
        annotations=annotations(description="{{ $labels.model }} fails {{ $value }}.")), PER_JOB_RULE)], {}),
    ("alert-comparison", [rule_file(alert(expr=f"{ERROR_RATIO} and on (job) ({PER_JOB} > 1)"), PER_JOB_RULE)], {}),
    ("recording-duplicate", [rule_file(
        recording("model_token_type:price_usd_per_token:config", "vector(8e-06)",
                  {"model": "gpt-4.1", "token_type": "prompt"}),
        recording("model_token_type:price_usd_per_token:config", "vector(3.2e-05)",
                  {"model": "gpt-4.1", "token_type": "completion"}))], {}),
    ("recording-level-labels", [rule_file(recording(
        "job_model_status:requests:rate5m",
        'sum by (job, model, status) (label_replace(rate(holysheep_requests_total[5m]), "status", "$1", '
        '"status_code", "(.*)"))'))], {}),
]


def _case_id(case) -> str:
    return case[0]


@pytest.mark.parametrize("check_id, documents, overrides", BAD, ids=[_case_id(c) for c in BAD])
def test_bad_input_is_flagged(check_id, documents, overrides):
    report = lint(*documents, **overrides)
    assert check_id in checks(report), [str(f) for f in report.findings]


@pytest.mark.parametrize("check_id, documents, overrides", GOOD, ids=[_case_id(c) for c in GOOD])
def test_good_input_lints_clean(check_id, documents, overrides):
    report = lint(*documents, **overrides)
    assert report.findings == []


def test_base_inputs_lint_clean():
    assert lint(dashboard(), rule_file(alert())).findings == []


def test_every_check_has_a_bad_case():
    assert {case[0] for case in BAD} == set(CHECKS)


def test_every_good_case_names_a_real_check():
    assert {case[0] for case in GOOD} <= set(CHECKS)


def test_datasource_reference_forms():
    for ref in ("${datasource}", "$datasource", "[[datasource]]", {"uid": "${datasource}"}):
        assert lint(dashboard(panel(datasource=ref, targets=[target(datasource=ref)]))).findings == []
