"""Ruler rule groups: the JSON bodies Grafana's ruler proxy forwards to a Mimir or Cortex ruler."""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner

from conftest import REPO
from provision import build
from provision.cli import main
from provision.config import from_mapping
from provision.render.ruler import render_ruler_rule_groups


def render(raw: dict):
    return render_ruler_rule_groups(build.build(from_mapping(raw, root=REPO)))


def test_bodies_are_the_rule_file_groups_with_recording_rules():
    result = build.build(from_mapping({"rules": {"target": "ruler"}}, root=REPO))
    groups = render_ruler_rule_groups(result)
    from_files = {g["name"]: g for f in result.rule_files.values() for g in f["groups"]}
    assert {g.name: g.body for g in groups} == from_files
    traffic = next(g for g in groups if g.name == "llm-gateway-traffic")
    assert traffic.body["interval"] == "30s"
    assert any("record" in r for r in traffic.body["rules"])
    assert any("alert" in r for g in groups for r in g.body["rules"])


def test_identity_defaults_to_the_grafana_datasource_and_configured_namespace():
    (group, *_) = render({"rules": {"target": "ruler"}})
    assert (group.datasource_uid, group.namespace, group.subtype) == ("prometheus", "relaywatch", "mimir")
    assert group.key == f"prometheus/relaywatch/{group.name}"
    (group, *_) = render({"rules": {"target": "ruler", "ruler": {"datasource_uid": "mimir", "namespace": "llm",
                                                                   "subtype": "cortex"}}})
    assert group.key.startswith("mimir/llm/") and group.subtype == "cortex"


def test_alerts_stay_out_when_grafana_evaluates_them():
    groups = render({"rules": {"target": ["ruler", "grafana"]}})
    assert groups and all("record" in r for g in groups for r in g.body["rules"])
    assert "llm-gateway-alerts" not in {g.name for g in groups}


def test_cli_writes_one_json_body_per_group(tmp_path):
    result = CliRunner().invoke(main, ["build", "--out", str(tmp_path), "--rules-target", "ruler"])
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (tmp_path / "ruler-rule-groups").iterdir())
    assert files == ["llm-gateway-alerts.json", "llm-gateway-cost-alerts.json", "llm-gateway-latency.json",
                     "llm-gateway-slo-alerts.json", "llm-gateway-slo-long.json", "llm-gateway-slo.json",
                     "llm-gateway-tokens.json", "llm-gateway-traffic.json"]
    body = json.loads((tmp_path / "ruler-rule-groups" / "llm-gateway-alerts.json").read_text())
    rule_file = yaml.safe_load((tmp_path / "rules" / "llm-gateway-alerts.yaml").read_text())
    assert body == next(g for g in rule_file["groups"] if g["name"] == "llm-gateway-alerts")


def test_a_loki_ruler_is_refused_with_the_reason(tmp_path):
    config = tmp_path / "relaywatch.yaml"
    config.write_text("rules: {target: ruler, ruler: {subtype: loki}}\n")
    result = CliRunner().invoke(main, ["build", "--config", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "rules.ruler.subtype: 'loki'" in result.output and "LogQL" in result.output
    assert result.output.count("\n") == 1
