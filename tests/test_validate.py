"""provision validate over real build output and over planted mistakes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from conftest import require_binary
from provision import build
from provision.cli import main
from provision.config import from_mapping
from provision.profiles import get_profile
from provision.validate import validate_build

REPO = Path(__file__).resolve().parent.parent
PROFILE = get_profile("holysheep")


@pytest.fixture
def out(tmp_path) -> Path:
    build.write(build.build(from_mapping({}, root=REPO)), tmp_path)
    return tmp_path


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def edit_rules(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def first_target(dashboard: dict) -> dict:
    return next(p for p in dashboard["panels"] if p["type"] != "row")["targets"][0]


def test_the_real_build_is_valid_and_passes_promtool(out):
    require_binary("promtool")
    report = validate_build(out, PROFILE)
    assert report.problems == []
    assert report.promtool == "passed"
    assert report.checked == 8  # 4 dashboards, 3 rule files, prometheus/rule_files.yml


def test_without_promtool_validation_says_it_did_not_run(out):
    report = validate_build(out, PROFILE, promtool="no-such-promtool-binary")
    assert report.ok
    assert report.promtool.startswith("not run: promtool not found")


def test_unknown_metric_in_a_panel_is_named_with_panel_and_target(out):
    path = out / "dashboards" / "llm-gateway-overview.json"
    edit_json(path, lambda d: first_target(d).update(expr='sum(rate(holysheep_request_total{job=~"$job"}[5m]))'))
    problems = [str(p) for p in validate_build(out, PROFILE, promtool=None).problems]
    assert problems == ["dashboards/llm-gateway-overview.json: panel 2 'Requests/s' target A: metric "
                        "'holysheep_request_total' is neither in the active profile nor recorded by a rule of this build"]


def test_unparsable_promql_is_reported(out):
    path = out / "dashboards" / "llm-gateway-model.json"
    edit_json(path, lambda d: first_target(d).update(expr="sum(rate(x[$__rate_interval])"))
    problems = [str(p) for p in validate_build(out, PROFILE, promtool=None).problems]
    assert len(problems) == 1 and "PromQL does not parse" in problems[0] and "target A" in problems[0]


def test_legacy_dashboard_keys_fail_the_project_schema(out):
    path = out / "dashboards" / "llm-gateway-overview.json"
    edit_json(path, lambda d: (d.update(schemaVersion=12, rows=[]), d["panels"][1].update(maxDataPoints=100)))
    problems = [str(p) for p in validate_build(out, PROFILE, promtool=None).problems]
    assert any("schemaVersion: 12 is less than the minimum of 39" in p for p in problems)
    assert len(problems) == 3


def test_rule_file_problems_name_group_and_rule(out):
    path = out / "rules" / "llm-gateway-alerts.yaml"
    edit_rules(path, lambda d: next(g for g in d["groups"] if g["name"] == "llm-gateway-alerts")["rules"][0].update(
        expr="job_model:llm_requests_failed:ratio_rate5m >"))
    problems = [str(p) for p in validate_build(out, PROFILE, promtool=None).problems]
    assert len(problems) == 1
    assert problems[0].startswith("rules/llm-gateway-alerts.yaml: group 'llm-gateway-alerts' alert "
                                  "'LLMGatewayErrorRatioHigh': PromQL does not parse")


def test_rule_file_schema_rejects_unknown_keys_like_prometheus(out):
    path = out / "rules" / "llm-gateway-recording.yaml"
    edit_rules(path, lambda d: d["groups"][0]["rules"][0].update(annotations={"x": "y"}))
    problems = validate_build(out, PROFILE, promtool=None).problems
    assert problems and problems[0].artifact == "rules/llm-gateway-recording.yaml"


def test_promtool_failures_are_reported(out):
    require_binary("promtool")
    path = out / "rules" / "llm-gateway-alerts.yaml"
    edit_rules(path, lambda d: d["groups"][0]["rules"][0]["annotations"].update(description="{{ $labels.model "))
    report = validate_build(out, PROFILE)
    assert report.promtool == "failed"
    assert any("description" in str(p) for p in report.problems)


def test_cli_validate_exits_1_on_problems_and_0_when_clean(out):
    runner = CliRunner()
    ok = runner.invoke(main, ["validate", "--out", str(out), "--promtool", "none"])
    assert ok.exit_code == 0, ok.output
    edit_json(out / "dashboards" / "llm-gateway-overview.json", lambda d: first_target(d).update(expr="nope{"))
    bad = runner.invoke(main, ["validate", "--out", str(out), "--promtool", "none"])
    assert bad.exit_code == 1
    assert "invalid: dashboards/llm-gateway-overview.json: panel 2" in bad.output


def test_cli_validate_without_a_build_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["validate", "--out", str(tmp_path / "empty")])
    assert result.exit_code == 2
    assert "nothing built yet" in result.output
