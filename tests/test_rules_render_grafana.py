"""Grafana-managed rule groups: the PUT bodies for the alerting provisioning API.

Bodies are checked against the published alerting schemas vendored in
tests/schemas/grafana (independently of the copies the package validates with)
and for what the schemas cannot say: stable uids, unique titles, the data items'
links, no recorded series in the queries, converted templates.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from conftest import REPO
from provision import build
from provision.cli import main
from provision.config import from_mapping
from provision.definitions import DefinitionError
from provision.promql_ast import metric_names
from provision.render.grafana_rules import data_query, grafana_template, render_grafana_rule_groups, rule_uid
from provision.rules import AlertRule, Condition, Query, RecordingRule
from provision.validate_deliveries import grafana_rule_problems

SCHEMAS = Path(__file__).resolve().parent / "schemas" / "grafana"


def render(raw: dict | None = None, alerts_dir: Path | None = None):
    raw = copy.deepcopy(raw or {})
    if alerts_dir:
        raw.setdefault("paths", {})["alerts"] = str(alerts_dir)
    result = build.build(from_mapping(raw, root=REPO))
    return result, render_grafana_rule_groups(result)


@pytest.fixture(scope="module")
def rendered():
    return render()


def alert_definitions(tmp_path: Path, body: str) -> Path:
    """An alerts/ directory with one definition file: `body` is the body of rule_groups(ctx)."""
    directory = tmp_path / "alerts"
    directory.mkdir()
    (directory / "a.py").write_text("from provision.rules import AlertRule, Condition, Query, RuleGroup\n"
                                    "def rule_groups(ctx):\n" + body)
    return directory


def rules_of(groups) -> list[dict]:
    return [rule for g in groups for rule in g.body["rules"]]


def schema_validator(version: str) -> jsonschema.Draft7Validator:
    schema = json.loads((SCHEMAS / version / "alerting.jsonschema.json").read_text())
    return jsonschema.Draft7Validator({"$ref": "#/definitions/Rule", "definitions": schema["definitions"]})


# Keys Grafana's API takes (its Go struct, ProvisionedAlertRule) that the generated schemas lack.
NOT_IN_PUBLISHED_SCHEMAS = {"missingSeriesEvalsToResolve", "keep_firing_for"}


@pytest.mark.parametrize("version", ["v11.6.x", "v12.3.3"])
def test_every_rule_body_matches_the_published_schema(rendered, version):
    validator = schema_validator(version)
    for rule in rules_of(rendered[1]):
        errors = [e.message for e in validator.iter_errors(
            {k: v for k, v in rule.items() if k not in NOT_IN_PUBLISHED_SCHEMAS})]
        assert not errors, f"{rule['title']}: {errors}"
    group = json.loads((SCHEMAS / version / "alerting.jsonschema.json").read_text())
    group_validator = jsonschema.Draft7Validator({"$ref": "#/definitions/RuleGroup",
                                                  "definitions": group["definitions"]})
    for g in rendered[1]:
        rules = [{k: v for k, v in r.items() if k not in NOT_IN_PUBLISHED_SCHEMAS} for r in g.body["rules"]]
        assert not list(group_validator.iter_errors({**g.body, "rules": rules}))


def test_keep_firing_for_uses_the_api_key_and_passes_the_schema_check(tmp_path):
    alerts = alert_definitions(
        tmp_path,
        "    return [RuleGroup('g', 'g', (AlertRule(name='A', condition=Condition(Query('up'), '==', 0),\n"
        "        severity='warning', summary='s', description='d', for_='60m', keep_firing_for='10m'),))]\n")
    result, groups = render(alerts_dir=alerts)
    rule = groups[0].body["rules"][0]
    assert rule["keep_firing_for"] == "10m" and "keepFiringFor" not in rule
    assert any("keep_firing_for (A) needs Grafana 12" in notice for notice in result.notices)
    assert rule["for"] == "1h"  # as Grafana writes it back
    assert grafana_rule_problems(rule) == []
    assert any("keep_firing_for: 5 is not a duration" in p
               for p in grafana_rule_problems({**rule, "keep_firing_for": 5}))
    assert any("keepFiringFor" in p and "v12.3.3" in p
               for p in grafana_rule_problems({**{k: v for k, v in rule.items() if k != "keep_firing_for"},
                                               "keepFiringFor": "10m"}))  # the schema's spelling is not the API's


def test_group_bodies_carry_folder_interval_and_title(rendered):
    groups = {g.body["title"]: g for g in rendered[1]}  # the recording-only groups have no Grafana form
    assert sorted(groups) == ["llm-gateway-alerts", "llm-gateway-cost-alerts", "llm-gateway-slo-alerts"]
    group = groups["llm-gateway-alerts"]
    assert group.key == "relaywatch/llm-gateway-alerts"
    assert group.body["title"] == "llm-gateway-alerts" and group.body["folderUid"] == "relaywatch"
    assert group.body["interval"] == 30
    for rule in group.body["rules"]:
        assert rule["ruleGroup"] == "llm-gateway-alerts" and rule["folderUID"] == "relaywatch"
        assert rule["isPaused"] is False and rule["orgID"] == 1


def test_uids_are_stable_valid_and_distinct(rendered):
    uids = [rule["uid"] for rule in rules_of(rendered[1])]
    assert len(set(uids)) == len(uids)
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", uid) for uid in uids)
    assert uids == [rule["uid"] for rule in rules_of(render()[1])]  # a rebuild gives the same ones
    assert rule_uid("relaywatch", "LLMGatewayErrorRatioHigh", "critical") in uids
    assert rule_uid("staging", "LLMGatewayErrorRatioHigh", "critical") not in uids  # another folder, another uid
    long = rule_uid("f", "A" * 200 + "-" * 30, "critical")
    assert len(long) <= 40 and re.fullmatch(r"[a-zA-Z0-9_-]+", long)


def test_titles_carry_the_severity_only_where_two_alerts_share_a_name(rendered):
    titles = [rule["title"] for rule in rules_of(rendered[1])]
    assert "LLMGatewayErrorRatioHigh (critical)" in titles and "LLMGatewayErrorRatioHigh (warning)" in titles
    assert "LLMGatewayLatencyP95High" in titles
    assert len(set(titles)) == len(titles)


def test_each_rule_is_query_reduce_condition(rendered):
    for rule in rules_of(rendered[1]):
        a, b, c = rule["data"]
        assert [d["refId"] for d in rule["data"]] == ["A", "B", "C"] and rule["condition"] == "C"
        assert a["datasourceUid"] == "prometheus" and a["model"]["datasource"] == {"type": "prometheus",
                                                                                 "uid": "prometheus"}
        assert a["model"]["instant"] is True and a["model"]["range"] is False
        assert a["relativeTimeRange"] == {"from": 600, "to": 0}
        assert b["datasourceUid"] == "__expr__" and b["model"]["type"] == "reduce"
        assert b["model"]["reducer"] == "last" and b["model"]["expression"] == "A" and "settings" not in b["model"]
        assert c["datasourceUid"] == "__expr__" and c["model"]["type"] in ("threshold", "math")
        assert grafana_rule_problems(rule) == []


def test_conditions_map_comparisons_to_threshold_or_math(rendered):
    by_title = {rule["title"]: rule["data"][2]["model"] for rule in rules_of(rendered[1])}
    critical = by_title["LLMGatewayErrorRatioHigh (critical)"]
    assert critical["type"] == "threshold"
    assert critical["conditions"] == [{"evaluator": {"type": "gt", "params": [0.2]}}]
    assert by_title["LLMGatewayLatencyP95High"]["conditions"][0]["evaluator"] == {"type": "gt", "params": [5]}
    assert by_title["LLMGatewayMetricsAbsent"] == {**by_title["LLMGatewayMetricsAbsent"], "type": "math",
                                                   "expression": "$B == 1"}
    assert by_title["LLMGatewayTrafficStopped"]["expression"] == "$B == 0"


def test_queries_read_no_recorded_series_and_keep_the_guards(rendered):
    result, groups = rendered
    recorded = {r.record for g in result.groups for r in g.rules if isinstance(r, RecordingRule)}
    raw = result.context.profile.series_names() | {"up"}
    for rule in rules_of(groups):
        expr = rule["data"][0]["model"]["expr"]
        assert metric_names(expr) <= raw and not metric_names(expr) & recorded, rule["title"]
    target_down = next(r for r in rules_of(groups) if r["title"] == "LLMGatewayTargetDown")
    assert "and on (job)" in target_down["data"][0]["model"]["expr"]
    assert "[6h:30s]" in target_down["data"][0]["model"]["expr"]  # the recorded range, read as a subquery


def test_nan_samples_are_dropped_except_for_not_equal():
    up = Query("up")
    assert data_query(_alert(Condition(up, ">", 1))) == "up >= -Inf"
    assert data_query(_alert(Condition(up, "!=", 1))) == "up"
    guarded = _alert(Condition(Query("a / b"), "<", 1), guards=(Condition(Query("c"), ">", 0, match_on=("job",)),))
    assert data_query(guarded) == "(a / b) >= -Inf and on (job) (c > 0)"


def test_thresholds_that_percent_f_cannot_print_use_math(tmp_path):
    alerts = alert_definitions(
        tmp_path,
        "    mk = lambda n, op, t: AlertRule(name=n, condition=Condition(Query('up'), op, t), severity='info',\n"
        "                                    summary='s', description='d')\n"
        "    return [RuleGroup('g', 'g', (mk('Tiny', '>', 1e-7), mk('Low', '<', 0.5), mk('Ge', '>=', 2.5),\n"
        "                                 mk('Ne', '!=', 3)))]\n")
    _, groups = render(alerts_dir=alerts)
    models = {rule["title"]: rule["data"][2]["model"] for rule in rules_of(groups)}
    assert models["Tiny"]["type"] == "math" and models["Tiny"]["expression"] == "$B > 0.0000001"
    assert models["Low"]["conditions"][0]["evaluator"] == {"type": "lt", "params": [0.5]}
    assert models["Ge"]["expression"] == "$B >= 2.5" and models["Ne"]["expression"] == "$B != 3"


def test_annotations_read_the_reduced_value_and_keep_labels(rendered):
    rule = next(r for r in rules_of(rendered[1]) if r["title"] == "LLMGatewayErrorRatioHigh (critical)")
    description = rule["annotations"]["description"]
    assert "{{ $values.B.Value | humanizePercentage }}" in description and "$value " not in description
    assert "{{ $labels.model }}" in description
    assert rule["annotations"]["runbook_url"].endswith("#llmgatewayerrorratiohigh")
    assert rule["labels"] == {"severity": "critical"}


def test_template_conversion():
    assert grafana_template("{{ $value }} {{$value|humanize}} {{ $values.A.Value }}", "x") == \
        "{{ $values.B.Value }} {{$values.B.Value|humanize}} {{ $values.A.Value }}"
    assert grafana_template("{{ .Value }} {{ .Labels.job }}", "x") == "{{ $values.B.Value }} {{ .Labels.job }}"
    assert grafana_template("no templates: $value", "x") == "no templates: $value"
    with pytest.raises(DefinitionError, match=r"\$externalLabels"):
        grafana_template("{{ $externalLabels.cluster }}", "alert X")
    with pytest.raises(DefinitionError, match=r"query\(\)"):
        grafana_template('{{ query "up" | first | value }}', "alert X")


def test_no_data_and_error_states_default_and_override(rendered):
    states = {rule["title"]: (rule["noDataState"], rule["execErrState"]) for rule in rules_of(rendered[1])}
    assert set(states.values()) == {("OK", "Error")}
    result, groups = render({"rules": {"grafana": {
        "no_data_state": "NoData", "overrides": {"LLMGatewayMetricsAbsent": {"no_data_state": "Alerting"},
                                                 "NoSuchAlert": {"exec_err_state": "OK"}}}}})
    states = {rule["title"]: rule["noDataState"] for rule in rules_of(groups)}
    assert states["LLMGatewayMetricsAbsent"] == "Alerting" and states["LLMGatewayTargetDown"] == "NoData"
    assert any("NoSuchAlert" in notice for notice in result.notices)


def test_missing_series_setting_and_ui_editability(rendered):
    assert all(rule["missingSeriesEvalsToResolve"] == 1 for rule in rules_of(rendered[1]))
    assert rendered[1][0].editable_in_ui is False
    _, groups = render({"rules": {"grafana": {"missing_series_evals_to_resolve": None, "editable_in_ui": True}}})
    assert all("missingSeriesEvalsToResolve" not in rule for rule in rules_of(groups))
    assert groups[0].editable_in_ui is True


def test_interval_must_suit_grafanas_scheduler():
    with pytest.raises(DefinitionError, match="not a multiple of 10s"):
        render({"rules": {"interval": "15s"}})
    _, groups = render({"rules": {"interval": "15s", "grafana": {"interval": "1m"}}})
    assert groups[0].body["interval"] == 60


def test_two_alerts_with_one_name_and_severity_are_refused(tmp_path):
    alerts = alert_definitions(
        tmp_path,
        "    a = AlertRule(name='Same', condition=Condition(Query('up'), '==', 0), severity='critical',\n"
        "                  summary='s', description='d')\n"
        "    return [RuleGroup('one', 'x', (a,)), RuleGroup('two', 'x', (a,))]\n")
    with pytest.raises(DefinitionError, match="also defined in rule group one"):
        render(alerts_dir=alerts)
    result = CliRunner().invoke(main, ["build", "--config", str(_config(tmp_path, alerts)), "--out",
                                       str(tmp_path / "out"), "--rules-target", "grafana"])
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_cli_build_writes_and_validates_the_rule_groups(tmp_path):
    result = CliRunner().invoke(main, ["build", "--out", str(tmp_path), "--rules-target", "grafana"])
    assert result.exit_code == 0, result.output
    body = json.loads((tmp_path / "grafana-rule-groups" / "llm-gateway-alerts.json").read_text())
    assert body["folderUid"] == "relaywatch" and len(body["rules"]) == 8
    assert "0 problems" in result.output
    # Grafana evaluates the alerts now: the Prometheus rule files keep the recording rules only.
    assert sorted(p.name for p in (tmp_path / "rules").iterdir()) == ["llm-gateway-recording.yaml",
                                                                      "llm-gateway-slo.yaml"]
    assert "dashboards read recorded series" in result.output


def _alert(condition: Condition, guards=()) -> AlertRule:
    return AlertRule(name="X", condition=condition, severity="info", summary="s", description="d", guards=guards)


def _config(tmp_path: Path, alerts: Path) -> Path:
    path = tmp_path / "relaywatch.yaml"
    path.write_text(f"paths: {{alerts: {alerts}, dashboards: {REPO / 'dashboards'}, runbooks: {REPO / 'docs' / 'runbooks.md'}}}\n")
    return path


@pytest.mark.parametrize("version", ["v11.6.x", "v12.3.3"])
def test_the_package_validates_with_the_same_schemas_as_these_tests(version):
    packaged = REPO / "provision" / "schemas" / f"grafana-alerting-{version}.schema.json"
    assert packaged.read_bytes() == (SCHEMAS / version / "alerting.jsonschema.json").read_bytes()


def test_validate_reports_a_recorded_series_or_a_bad_state_in_a_rule_body(tmp_path):
    assert CliRunner().invoke(main, ["build", "--out", str(tmp_path), "--rules-target", "grafana"]).exit_code == 0
    path = tmp_path / "grafana-rule-groups" / "llm-gateway-alerts.json"
    body = json.loads(path.read_text())
    body["rules"][0]["data"][0]["model"]["expr"] = "job_model:llm_requests_failed:ratio_rate5m >= -Inf"
    body["rules"][1]["noDataState"] = "Sometimes"
    body["rules"][2]["condition"] = "D"
    path.write_text(json.dumps(body))
    result = CliRunner().invoke(main, ["validate", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "rules[0] 'LLMGatewayErrorRatioHigh (critical)' query A: metric 'job_model:llm_requests_failed:ratio_rate5m'" \
           " is not a raw series" in result.output
    assert "rules[1] 'LLMGatewayErrorRatioHigh (warning)': noDataState: 'Sometimes' is not one of" in result.output
    assert "rules[2] 'LLMGatewayLatencyP95High': condition: 'D' is not the refId of a data item" in result.output
