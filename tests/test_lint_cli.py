"""`provision lint` and lint inside `provision build`, through the CLI and the build output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from lint_support import FIXTURES, dashboard, panel, target
from provision import build as build_stage
from provision.cli import main
from provision.config import from_mapping
from provision.lint import LintSettings, lint_build, lint_paths
from provision.profiles import get_profile

REPO = Path(__file__).resolve().parent.parent
SOURCE_DASHBOARD = FIXTURES / "source_document_dashboard.json"


def run(*args: str, cwd: Path | None = None):
    runner = CliRunner()
    if cwd is None:
        return runner.invoke(main, list(args))
    with runner.isolated_filesystem(temp_dir=cwd):
        return runner.invoke(main, list(args))


def write_config(path: Path, data: dict) -> Path:
    data = {"paths": {"dashboards": str(REPO / "dashboards"), "alerts": str(REPO / "alerts"),
                      "runbooks": str(REPO / "docs" / "runbooks.md")}, **data}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The project's own build, as `provision build` writes it."""
    out = tmp_path_factory.mktemp("build")
    config = from_mapping({}, root=REPO)
    build_stage.write(build_stage.build(config), out)
    return out


# -- the project's own output ---------------------------------------------------------


@pytest.mark.parametrize("overrides", [
    {},
    {"cost": {"monthly_budget_usd": 500}},
    {"selector": {"job": "llm-gateway"}, "scrape_interval": "30s"},
], ids=["defaults", "with-budget-alert", "with-job-selector"])
def test_project_build_lints_clean(tmp_path, overrides):
    config = from_mapping(overrides, root=REPO)
    result = build_stage.build(config)
    build_stage.write(result, tmp_path)
    report = lint_build(tmp_path, LintSettings.from_config(config, result.context.profile))
    assert report.artifacts == len(result.dashboards) + len(result.rule_files) > 0
    assert [str(f) for f in report.findings] == []


def test_lint_command_on_the_build(built):
    result = run("lint", "--config", str(write_config(built / "relaywatch.yaml", {})), "--out", str(built))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "linted 7 artifacts: 0 errors, 0 warnings, 0 silenced"


def test_build_runs_lint_and_fails_on_a_lint_error(tmp_path):
    definitions = tmp_path / "dashboards"
    definitions.mkdir()
    (definitions / "fixed_window.py").write_text(
        "from provision.panels import row, timeseries\n"
        "from provision.rules import Query\n\n"
        "def dashboards(ctx):\n"
        "    q = Query('sum(rate(holysheep_requests_total{job=~\"$job\", model=~\"$model\"}[5m]))')\n"
        "    return ctx.dashboard(uid='fixed', title='Fixed', description='A fixed window.',\n"
        "                         rows=[row('R', timeseries('Rate', q, unit='reqps', description='Rate.'))])\n",
        encoding="utf-8",
    )
    config = write_config(tmp_path / "relaywatch.yaml", {"paths": {
        "dashboards": str(definitions), "alerts": str(REPO / "alerts"), "runbooks": str(REPO / "docs/runbooks.md")}})
    out = tmp_path / "build"
    linted = run("build", "--config", str(config), "--out", str(out))
    assert linted.exit_code == 1, linted.output
    assert "dashboards/fixed.json: panel 2 \"Rate\" target A: promql-rate-interval:" in linted.stdout
    assert "linted 4 artifacts: 1 errors" in linted.stdout
    skipped = run("build", "--config", str(config), "--out", str(out), "--no-lint")
    assert skipped.exit_code == 0, skipped.output
    assert "linted" not in skipped.stdout


# -- --path on dashboards made elsewhere ------------------------------------------------


def test_path_lints_a_dashboard_pulled_from_grafana(built, tmp_path):
    """GET /api/dashboards/uid/<uid> wraps the model with meta; Grafana adds id and version."""
    model = json.loads((built / "dashboards" / "llm-gateway-overview.json").read_text())
    pulled = {"dashboard": {**model, "id": 17, "version": 4},
              "meta": {"folderUid": "relaywatch", "slug": "llm-gateway-overview", "version": 4}}
    path = tmp_path / "pulled.json"
    path.write_text(json.dumps(pulled), encoding="utf-8")
    rules = sorted(str(p) for p in (built / "rules").glob("*.yaml"))
    config = str(write_config(tmp_path / "relaywatch.yaml", {}))

    with_rules = run("lint", "--config", config, "--path", str(path), *(f"--path={r}" for r in rules))
    assert with_rules.exit_code == 0, with_rules.output
    assert with_rules.stdout.strip() == "linted 4 artifacts: 0 errors, 0 warnings, 0 silenced"

    # Alone, its recorded series are known from relaywatch's own recording rules.
    alone = run("lint", "--config", config, "--path", str(path))
    assert alone.exit_code == 0, alone.output
    assert alone.stdout.strip() == "linted 1 artifacts: 0 errors, 0 warnings, 0 silenced"


def test_path_flags_recorded_series_nobody_defines(tmp_path):
    expr = 'sum(job_model:llm_requests:rate1m{job=~"$job", model=~"$model"})'
    path = _dashboard_file(tmp_path, dashboard(panel(target(expr))))
    result = run("lint", "--config", str(write_config(tmp_path / "c.yaml", {})), "--path", str(path))
    assert result.exit_code == 1
    assert ("promql-recording-defined: recorded series job_model:llm_requests:rate1m is not defined by any "
            "recording rule being linted; did you mean job_model:llm_requests:rate5m?") in result.stdout


def test_path_on_the_source_documents_dashboard_finds_its_mistakes(tmp_path):
    config = str(write_config(tmp_path / "relaywatch.yaml", {}))
    result = run("lint", "--config", config, "--path", str(SOURCE_DASHBOARD), "--output", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    by_check: dict[str, list[dict]] = {}
    for finding in report["findings"]:
        by_check.setdefault(finding["check"], []).append(finding)
    assert len(by_check["panel-deprecated-type"]) == 4  # three graph panels and a singlestat
    assert {"'graph'", "'singlestat'"} <= {f["message"].split()[2] for f in by_check["panel-deprecated-type"]}
    assert len(by_check["promql-rate-interval"]) == 6  # every rate() window is fixed ([5m], [1h])
    assert len(by_check["promql-histogram-quantile"]) == 3  # P50/P95/P99 without sum by (le)
    assert len(by_check["panel-datasource-variable"]) == 4  # every panel on the default datasource
    for check in ("dashboard-uid", "dashboard-datasource-variable", "dashboard-job-model-variables",
                  "target-job-model-filter", "panel-description", "panel-unit"):
        assert check in by_check, check
    unit = by_check["panel-unit"]
    assert [f["location"] for f in unit] == ['panels[2] "Token Usage by Model"']  # the others set yaxes/format
    assert report["errors"] >= 30 and report["warnings"] == 5


def test_path_detects_rule_files_by_content_and_reports_lines(tmp_path):
    rules = tmp_path / "team-rules.txt"
    rules.write_text(
        "groups:\n"
        "  - name: team\n"
        "    rules:\n"
        "      - alert: HighErrors\n"
        "        expr: sum(rate(holysheep_requests_total{status_code=~\"5..\"}[5m])) > 1\n"
        "        labels: {severity: critical}\n"
        "        annotations:\n"
        "          summary: Errors are high.\n"
        "          description: '{{ $value }} errors/s on {{ $labels.model }}.'\n"
        "          runbook_url: https://wiki.example.com/errors\n",
        encoding="utf-8",
    )
    result = run("lint", "--config", str(write_config(tmp_path / "c.yaml", {})), "--path", str(rules))
    assert result.exit_code == 1
    assert (f"{rules}:4: alert HighErrors annotation description: alert-annotation-labels: "
            "$labels.model is not a label of the expression's result (it keeps no labels)") in result.stdout


def test_path_reads_a_kubernetes_prometheusrule(tmp_path):
    settings = LintSettings(profile=get_profile("holysheep"))
    doc = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": {"name": "x"},
           "spec": {"groups": [{"name": "g", "rules": [{"record": "bad_name", "expr": "up"}]}]}}
    path = tmp_path / "rule.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    report = lint_paths([path], settings)
    assert [(f.check, f.line) for f in report.findings] == [("recording-name", 9)]


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ('{"title": "x"}', "neither a Grafana dashboard (no panels) nor a Prometheus rule file (no groups)"),
    ('{"panels": [', "not valid JSON"),
    ("groups: [unclosed", "not valid YAML"),
])
def test_bad_path_is_a_one_line_usage_error(tmp_path, content, message):
    path = tmp_path / ("in.json" if content and content.startswith("{") else "in.yaml")
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = run("lint", "--config", str(write_config(tmp_path / "c.yaml", {})), "--path", str(path))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}") and message in lines[0], result.stderr
    assert "Traceback" not in result.output


def test_nothing_built_is_a_usage_error(tmp_path):
    config = str(write_config(tmp_path / "c.yaml", {}))
    result = run("lint", "--config", config, "--out", str(tmp_path / "empty"))
    assert result.exit_code == 2
    assert "nothing built yet" in result.stderr


# -- output, exit codes, silences -------------------------------------------------------


def _dashboard_file(tmp_path: Path, data: dict, name: str = "board.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_warnings_alone_exit_zero_and_errors_exit_one(tmp_path):
    config = str(write_config(tmp_path / "c.yaml", {}))
    warned = _dashboard_file(tmp_path, dashboard(panel(description="")), "warned.json")
    result = run("lint", "--config", config, "--path", str(warned))
    assert result.exit_code == 0, result.output
    assert 'panel-description: the panel has no description [warning]' in result.stdout
    assert result.stdout.strip().endswith("linted 1 artifacts: 0 errors, 1 warnings, 0 silenced")
    broken = _dashboard_file(tmp_path, dashboard(panel(target(expr="rate("))), "broken.json")
    assert run("lint", "--config", config, "--path", str(broken)).exit_code == 1


def test_json_output_shape(tmp_path):
    path = _dashboard_file(tmp_path, dashboard(panel(kind="graph", description="")))
    result = run("lint", "--config", str(write_config(tmp_path / "c.yaml", {})), "--path", str(path),
                 "--output", "json")
    report = json.loads(result.stdout)
    assert set(report) == {"artifacts", "errors", "warnings", "silenced", "findings", "unused_silences"}
    assert (report["artifacts"], report["errors"], report["warnings"], report["silenced"]) == (1, 1, 1, 0)
    assert report["findings"] == [
        {"artifact": str(path), "check": "panel-deprecated-type", "line": None, "location": 'panel 1 "Panel 1"',
         "message": "panel type 'graph' is a deprecated Angular panel (removed in Grafana 12); use 'timeseries'",
         "reason": None, "severity": "error", "silenced": False},
        {"artifact": str(path), "check": "panel-description", "line": None, "location": 'panel 1 "Panel 1"',
         "message": "the panel has no description", "reason": None, "severity": "warning", "silenced": False},
    ]
    again = run("lint", "--config", str(tmp_path / "c.yaml"), "--path", str(path), "--output", "json")
    assert again.stdout == result.stdout


def test_silence_with_reason_keeps_the_finding_but_not_the_error(tmp_path):
    path = _dashboard_file(tmp_path, dashboard(panel(kind="graph")), "legacy-board.json")
    reason = "kept as exported until the team migrates it"
    config = write_config(tmp_path / "c.yaml", {"lint": {"silence": [
        {"check": "panel-deprecated-type", "artifact": "legacy-*", "reason": reason},
        {"check": "panel-unit", "artifact": "legacy-board", "reason": "stale: the unit was added"},
        {"check": "panel-unit", "artifact": "other-board", "reason": "another artifact, not linted now"},
    ]}})
    text = run("lint", "--config", str(config), "--path", str(path))
    assert text.exit_code == 0, text.output
    assert "panel-deprecated-type" not in text.stdout
    assert text.stdout.strip().endswith("0 errors, 0 warnings, 1 silenced")
    assert text.stderr.strip() == "notice: lint.silence[1] (panel-unit on legacy-board) matched no finding; remove it"
    report = json.loads(run("lint", "--config", str(config), "--path", str(path), "--output", "json").stdout)
    assert report["errors"] == 0 and report["silenced"] == 1
    assert [(f["check"], f["silenced"], f["reason"]) for f in report["findings"]] == [
        ("panel-deprecated-type", True, reason)]
    assert report["unused_silences"] == ["lint.silence[1] (panel-unit on legacy-board)"]


@pytest.mark.parametrize("entry, problem", [
    ({"check": "panel-unit", "artifact": "x"}, "lint.silence[0]: 'reason' is required"),
    ({"check": "panel-unit", "artifact": "x", "reason": "  "}, "lint.silence[0].reason: '  ' is not valid"),
    ({"check": "panel-units", "artifact": "x", "reason": "typo"}, "lint.silence[0].check: unknown check 'panel-units'"),
    ({"check": "panel-unit", "reason": "no artifact"}, "lint.silence[0]: 'artifact' is required"),
])
def test_silence_without_a_reason_or_with_an_unknown_check_is_a_config_error(tmp_path, entry, problem):
    config = write_config(tmp_path / "c.yaml", {"lint": {"silence": [entry]}})
    path = _dashboard_file(tmp_path, dashboard())
    result = run("lint", "--config", str(config), "--path", str(path))
    assert result.exit_code == 2
    assert problem in result.stderr, result.stderr
    assert result.stdout == ""


def test_a_zero_scrape_interval_is_a_config_error(tmp_path):
    config = write_config(tmp_path / "c.yaml", {"scrape_interval": "0s"})
    result = run("lint", "--config", str(config), "--path", str(_dashboard_file(tmp_path, dashboard())))
    assert result.exit_code == 2
    assert result.stderr.strip() == f"{config}: scrape_interval: '0s': duration must be greater than 0"


def test_list_names_every_check_with_its_severity():
    from provision.lint import CHECKS

    result = run("lint", "--list")
    assert result.exit_code == 0
    listed = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()}
    assert listed == {check.id: check.severity for check in CHECKS.values()}


def test_every_check_has_a_section_in_docs_lint_md():
    from provision.lint import CHECKS

    text = (REPO / "docs" / "lint.md").read_text(encoding="utf-8")
    headings = [line[4:].strip().strip("`") for line in text.splitlines() if line.startswith("### ")]
    assert sorted(headings) == sorted(CHECKS)
    for check_id in CHECKS:
        section = text.split(f"### `{check_id}`", 1)[1].split("\n### ", 1)[0]
        for part in ("Bad:", "Good:", "Silence"):
            assert part in section, (check_id, part)
