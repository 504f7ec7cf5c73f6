"""build/kubernetes/: PrometheusRule objects and dashboard ConfigMaps, and their validation."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from click.testing import CliRunner

from conftest import REPO
from provision import build
from provision.cli import main
from provision.config import from_mapping
from provision.definitions import DefinitionError, make_context
from provision.render.kubernetes import object_name, render_kubernetes
from provision.validate import validate_build

LABELS = {"release": "kube-prometheus-stack", "team": "llm"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    config = out / "relaywatch.yaml"
    config.write_text(yaml.safe_dump({
        "paths": {"dashboards": str(REPO / "dashboards"), "alerts": str(REPO / "alerts"),
                  "runbooks": str(REPO / "docs" / "runbooks.md")},
        "rules": {"kubernetes": {"namespace": "observability", "labels": LABELS}},
    }))
    result = CliRunner().invoke(main, ["build", "--config", str(config), "--out", str(out / "b"), "--kubernetes"])
    assert result.exit_code == 0, result.output
    return out / "b"


def documents(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_one_prometheus_rule_per_rule_file_with_the_selector_labels(built):
    for stem in ("llm-gateway-alerts", "llm-gateway-recording"):
        (obj,) = documents(built / "kubernetes" / f"prometheusrule-{stem}.yaml")
        assert obj["apiVersion"] == "monitoring.coreos.com/v1" and obj["kind"] == "PrometheusRule"
        assert obj["metadata"] == {"name": f"relaywatch-{stem}", "namespace": "observability",
                                   "labels": {"app.kubernetes.io/managed-by": "relaywatch", **LABELS}}
        assert obj["spec"]["groups"] == yaml.safe_load((built / "rules" / f"{stem}.yaml").read_text())["groups"]


def test_dashboard_configmaps_for_the_sidecar(built):
    (obj,) = documents(built / "kubernetes" / "configmap-dashboard-llm-gateway-overview.yaml")
    assert obj["apiVersion"] == "v1" and obj["kind"] == "ConfigMap"
    assert obj["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert obj["metadata"]["annotations"] == {"grafana_folder": "LLM Gateway"}
    assert list(obj["data"]) == ["llm-gateway-overview.json"]
    assert obj["data"]["llm-gateway-overview.json"] == (built / "dashboards" / "llm-gateway-overview.json").read_text()
    assert "llm-gateway-overview.json: |" in (built / "kubernetes" / "configmap-dashboard-llm-gateway-overview.yaml"
                                              ).read_text()  # a literal block: readable in a diff


def test_kustomization_lists_every_object(built):
    (kustomization,) = documents(built / "kubernetes" / "kustomization.yaml")
    others = sorted(p.name for p in (built / "kubernetes").iterdir() if p.name != "kustomization.yaml")
    assert kustomization["resources"] == others and len(others) == 7  # 4 dashboards, 3 rule files


def test_validation_checks_objects_and_runs_promtool_on_their_rules(built, tmp_path, promtool):
    profile = make_context(from_mapping({}, root=REPO)).profile
    report = validate_build(built, profile, promtool=promtool)
    assert report.ok and report.promtool == "passed", report.problems
    broken = tmp_path / "b"
    shutil.copytree(built, broken)
    rule_path = broken / "kubernetes" / "prometheusrule-llm-gateway-alerts.yaml"
    rule_path.write_text(rule_path.read_text().replace("for: 5m", "for: five minutes", 1))
    map_path = broken / "kubernetes" / "configmap-dashboard-llm-gateway-model.yaml"
    map_path.write_text(map_path.read_text().replace("kind: ConfigMap", "kind: Secret"))
    problems = [str(p) for p in validate_build(broken, profile, promtool=promtool).problems]
    assert any("configmap-dashboard-llm-gateway-model.yaml" in p and "v1', 'Secret'" in p for p in problems), problems
    assert any("prometheusrule-llm-gateway-alerts.yaml" in p and "five minutes" in p for p in problems), problems


def test_object_names_are_dns_subdomains():
    assert object_name("relaywatch-llm-gateway-alerts") == "relaywatch-llm-gateway-alerts"
    odd = object_name("relaywatch-dashboard-My_Board")
    assert odd.startswith("relaywatch-dashboard-my-board-") and odd != object_name("relaywatch-dashboard-my-board")
    assert len(object_name("x" * 400)) <= 253


def big_result(panel_text: int):
    result = build.build(from_mapping({"rules": {"kubernetes": {"enabled": False}}}, root=REPO))
    uid = "llm-gateway-overview"
    result.dashboards = {uid: {**result.dashboards[uid], "description": "x" * panel_text}}
    result.context.notices.clear()
    return result, uid


def test_a_dashboard_over_1_mib_pretty_is_stored_compact():
    result, uid = big_result(0)
    pretty = len(build.dashboard_text(result.dashboards[uid]).encode())
    compact = len(json.dumps(result.dashboards[uid], sort_keys=True, separators=(",", ":")).encode())
    result, uid = big_result(1024 * 1024 - (pretty + compact) // 2)  # over the limit pretty, under it compact
    files = render_kubernetes(result)
    (obj,) = list(yaml.safe_load_all(files[f"kubernetes/configmap-dashboard-{uid}.yaml"].split("\n", 1)[1]))
    text = obj["data"][f"{uid}.json"]
    assert "\n" not in text and json.loads(text)["uid"] == uid
    assert any("without whitespace" in n for n in result.notices)
    assert any("--server-side" in n for n in result.notices)


def test_a_dashboard_over_1_mib_compact_fails_the_build():
    result, uid = big_result(1024 * 1024 + 10)
    with pytest.raises(DefinitionError, match=f"dashboard {uid}: .* above the 1 MiB a ConfigMap holds"):
        render_kubernetes(result)


def test_dashboards_can_be_left_out_and_the_folder_annotation_dropped(tmp_path):
    result = build.build(from_mapping({"rules": {"kubernetes": {"enabled": True, "dashboards": False}}}, root=REPO))
    assert not any("configmap" in path for path in result.deliveries.files)
    result = build.build(from_mapping({"rules": {"kubernetes": {"enabled": True, "folder_annotation": None}}},
                                      root=REPO))
    text = next(t for p, t in result.deliveries.files.items() if "configmap" in p)
    assert "annotations" not in yaml.safe_load(text.split("\n", 1)[1])["metadata"]
