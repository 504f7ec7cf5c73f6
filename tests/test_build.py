"""The build through its public entry points: files written, their content, determinism."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from provision import build
from provision.cli import main
from provision.config import from_mapping

REPO = Path(__file__).resolve().parent.parent
SCHEMAS = Path(__file__).resolve().parent / "schemas" / "grafana"
PRICE_TABLE = "model_token_type:llm_price_usd_per_token:config"
LEGACY_KEYS = {"rows", "hideControls", "sharedCrosshair", "style", "maxDataPoints", "intervalFactor", "step", "span"}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("build")
    result = CliRunner().invoke(main, ["build", "--out", str(out), "--config", str(REPO / "relaywatch.yaml")])
    assert result.exit_code == 0, result.output
    return out


def dashboards(built: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((built / "dashboards").glob("*.json"))}


def rules(built: Path) -> list[dict]:
    return [rule for p in sorted((built / "rules").glob("*.yaml"))
            for group in yaml.safe_load(p.read_text())["groups"] for rule in group["rules"]]


def panels(dashboard: dict) -> list[dict]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def targets(dashboard: dict) -> list[tuple[dict, dict]]:
    return [(p, t) for p in panels(dashboard) for t in p["targets"]]


def test_build_writes_the_expected_files(built):
    assert sorted(p.name for p in (built / "dashboards").iterdir()) == [
        "llm-gateway-cost.json", "llm-gateway-model.json", "llm-gateway-overview.json", "llm-gateway-slo.json"]
    assert sorted(p.name for p in (built / "rules").iterdir()) == [
        "llm-gateway-alerts.yaml", "llm-gateway-recording.yaml", "llm-gateway-slo.yaml"]


def test_two_builds_in_separate_processes_are_byte_identical(tmp_path):
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-m", "provision.cli", "build", "--no-validate", "--out", str(out)],
                       check=True, cwd=REPO, env=env, capture_output=True)
        outputs.append({p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()})
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) == 8  # 4 dashboards, 3 rule files, the prometheus.yml snippet of the files target


@pytest.mark.parametrize("version", ["v11.6.x", "v12.3.3"])
def test_dashboards_validate_against_grafanas_published_schema(built, version):
    schema = json.loads((SCHEMAS / version / "dashboard.jsonschema.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    for uid, dashboard in dashboards(built).items():
        errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(dashboard)]
        assert errors == [], f"{uid} against {version}"


def _walk_keys(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _walk_keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk_keys(item)


def test_dashboards_use_the_current_model_not_grafanalib_defaults(built):
    for uid, dashboard in dashboards(built).items():
        assert dashboard["schemaVersion"] >= 39
        assert "id" not in dashboard
        assert not LEGACY_KEYS & set(_walk_keys(dashboard)), uid
        for panel in panels(dashboard):
            assert panel["type"] not in ("graph", "singlestat")
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            for target in panel["targets"]:
                assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_dashboards_have_stable_uids_managed_tag_and_links_to_each_other(built):
    boards = dashboards(built)
    for uid, dashboard in boards.items():
        assert dashboard["uid"] == uid and len(uid) <= 40 and re.fullmatch(r"[a-zA-Z0-9_-]+", uid)
        assert "relaywatch" in dashboard["tags"]
        linked = {link["url"] for link in dashboard["links"]}
        assert any(other in url for other in boards if other != uid for url in linked), uid


def test_template_variables(built):
    for dashboard in dashboards(built).values():
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        for name in ("job", "model"):
            assert variables[name]["type"] == "query"
            assert variables[name]["multi"] is True and variables[name]["includeAll"] is True
            assert variables[name]["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert 'job=~"$job"' in variables["model"]["query"]


def test_every_panel_has_a_unit_a_description_and_filters_on_the_variables(built):
    for uid, dashboard in dashboards(built).items():
        for panel in panels(dashboard):
            assert panel["description"], (uid, panel["title"])
            assert panel["fieldConfig"]["defaults"]["unit"], (uid, panel["title"])
            assert panel["targets"], (uid, panel["title"])
        for panel, target in targets(dashboard):
            expr = target["expr"]
            if PRICE_TABLE in expr and "llm_tokens" not in expr:
                continue  # the price table is config, recorded without a job
            if uid == "llm-gateway-slo":  # job-level SLO series have no model label (tests/test_slo.py)
                assert 'job=~"$job"' in expr or expr.startswith("vector("), (panel["title"], expr)
                continue
            assert 'job=~"$job"' in expr and '=~"$model"' in expr, (panel["title"], expr)


def test_rates_use_rate_interval_and_quantiles_aggregate_by_le(built):
    raw_rates = 0
    for dashboard in dashboards(built).values():
        for panel, target in targets(dashboard):
            expr = target["expr"]
            for window in re.findall(r"\b(?:rate|irate|increase)\([^\[]*\[([^\]]+)\]", expr):
                assert window == "$__rate_interval", expr
                raw_rates += 1
            if "histogram_quantile" in expr:
                assert re.search(r"histogram_quantile\([0-9.]+, sum by \([^)]*\ble\b[^)]*\)", expr), expr
    assert raw_rates > 10  # the model detail dashboard reads raw series at full resolution


def test_overview_reads_recorded_series_that_the_build_defines(built):
    recorded = {r["record"] for r in rules(built) if "record" in r}
    overview = dashboards(built)["llm-gateway-overview"]
    used = {name for _, t in targets(overview) for name in re.findall(r"[a-z_]+:[a-z_]+:[a-z0-9_]+", t["expr"])}
    assert used and used <= recorded
    assert all("rate(" not in t["expr"] for _, t in targets(overview))


def test_overview_shows_the_signals_users_expect(built):
    titles = {p["title"] for p in panels(dashboards(built)["llm-gateway-overview"])}
    for expected in ("Request rate by model", "Request rate by status class", "Error ratio by model",
                     "Success ratio by model", "Rate limited (429) by model", "Unauthorized (401) by model",
                     "Latency P50 / P95 / P99",
                     "P95 latency by model", "Token throughput by model", "Prompt vs completion",
                     "In-flight requests by model", "Spend by model"):
        assert expected in titles


def test_failures_count_5xx_timeouts_and_errors_but_not_401_or_429(built):
    by_name = {r["record"]: r["expr"] for r in rules(built) if "record" in r}
    assert 'status=~"5..|timeout|error"' in by_name["job_model:llm_requests_failed:rate5m"]
    assert 'status="429"' in by_name["job_model:llm_requests_rate_limited:rate5m"]
    assert 'status="401"' in by_name["job_model:llm_requests_unauthorized:rate5m"]


def test_recording_rule_names_follow_level_metric_operations(built):
    for rule in rules(built):
        if "record" in rule:
            assert re.fullmatch(r"[a-z_]+:[a-z_]+:[a-z0-9_]+", rule["record"]), rule["record"]


def test_alerts_carry_severity_summary_description_and_runbook(built):
    runbooks = (REPO / "docs" / "runbooks.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
               for h in re.findall(r"^#+ (.+)$", runbooks, re.M)}
    alerts = [r for r in rules(built) if "alert" in r]
    assert {a["alert"] for a in alerts} >= {"LLMGatewayErrorRatioHigh", "LLMGatewayLatencyP95High",
                                           "LLMGatewayRateLimited", "LLMGatewayAuthFailures",
                                           "LLMGatewayMetricsAbsent", "LLMGatewayTargetDown",
                                           "LLMGatewayTrafficStopped"}
    for alert in alerts:
        assert re.fullmatch(r"(?:[A-Z][a-z0-9]*|LLM)+", alert["alert"])
        assert alert["labels"]["severity"] in ("critical", "warning", "info")
        notes = alert["annotations"]
        assert notes["summary"].endswith(".") and "{{" not in notes["summary"]
        assert "{{" in notes["description"] or "absent(" in alert["expr"]
        assert notes["runbook_url"].split("#")[1] in anchors, notes["runbook_url"]


def test_thresholds_and_durations_come_from_config(tmp_path):
    config = from_mapping({"alerts": {"latency_p95": {"threshold_seconds": 2.5, "for": "3m"}}}, root=REPO)
    result = build.build(config)
    latency = next(r for f in result.rule_files.values() for g in f["groups"] for r in g["rules"]
                   if r.get("alert") == "LLMGatewayLatencyP95High")
    assert " > 2.5 and " in latency["expr"] and latency["for"] == "3m"


def test_stale_files_from_an_earlier_build_are_removed(tmp_path):
    (tmp_path / "dashboards").mkdir()
    (tmp_path / "dashboards" / "deleted-dashboard.json").write_text("{}")
    build.write(build.build(from_mapping({}, root=REPO)), tmp_path)
    assert not (tmp_path / "dashboards" / "deleted-dashboard.json").exists()


def test_a_failing_definition_is_reported_with_its_file_and_line(tmp_path):
    (tmp_path / "dashboards").mkdir()
    (tmp_path / "alerts").mkdir()
    (tmp_path / "dashboards" / "broken.py").write_text("def dashboards(ctx):\n    return ctx.no_such_thing\n")
    (tmp_path / "relaywatch.yaml").write_text("{}\n")
    result = CliRunner().invoke(main, ["build", "--config", str(tmp_path / "relaywatch.yaml")])
    assert result.exit_code == 1
    assert "broken.py:2: AttributeError" in result.output
    assert "Traceback" not in result.output


def test_duplicate_dashboard_uids_are_refused(tmp_path):
    (tmp_path / "dashboards").mkdir()
    for name in ("a", "b"):
        (tmp_path / "dashboards" / f"{name}.py").write_text(
            "from provision.panels import row\n"
            "def dashboards(ctx):\n"
            "    return ctx.dashboard(uid='same', title='t', description='d', rows=[])\n")
    result = CliRunner().invoke(main, ["build", "--config", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2  # the config file itself is missing
    (tmp_path / "relaywatch.yaml").write_text("{}\n")
    result = CliRunner().invoke(main, ["build", "--config", str(tmp_path / "relaywatch.yaml")])
    assert result.exit_code == 1
    assert "dashboard uid 'same' is also defined in a.py" in result.output


def test_a_place_without_definition_folders_builds_nothing_and_says_so(tmp_path):
    (tmp_path / "relaywatch.yaml").write_text("{}\n")
    result = CliRunner().invoke(main, ["build", "--config", str(tmp_path / "relaywatch.yaml")])
    assert result.exit_code == 1
    assert "no definitions: neither" in result.output and "run from the repository" in result.output
    assert not (tmp_path / "build").exists()
