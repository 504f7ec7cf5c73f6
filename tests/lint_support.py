"""Small builders of dashboards and rule files for the lint tests.

Every builder's default output lints clean under the holysheep profile; a test
changes one thing and expects exactly the check about that thing to speak.
"""

from __future__ import annotations

import copy
from pathlib import Path

from provision.lint import Artifacts, LintReport, LintSettings, lint_artifacts
from provision.profiles import get_profile

FIXTURES = Path(__file__).parent / "fixtures" / "lint"
PROFILE = get_profile("holysheep")
RUNBOOK_BASE = "https://example.com/docs/runbooks.md"
DS = {"type": "prometheus", "uid": "${datasource}"}
RATE = 'sum by (model) (rate(holysheep_requests_total{job=~"$job", model=~"$model"}[$__rate_interval]))'
ERROR_RATIO = "job_model:errors:ratio_rate5m"


def settings(**overrides) -> LintSettings:
    values = dict(profile=PROFILE, runbooks=FIXTURES / "runbooks.md", runbook_base_url=RUNBOOK_BASE)
    values.update(overrides)
    return LintSettings(**values)


def lint(*documents, **setting_overrides) -> LintReport:
    artifacts = Artifacts()
    for index, document in enumerate(documents):
        suffix = "yaml" if "groups" in document else "json"
        artifacts.add(f"doc{index}.{suffix}", copy.deepcopy(document))
    return lint_artifacts(artifacts, settings(**setting_overrides))


def checks(report: LintReport) -> set[str]:
    """Ids of the findings that count (not silenced)."""
    return {f.check for f in report.findings if f.silenced is None}


# -- dashboards ------------------------------------------------------------------


def target(expr: str = RATE, ref: str = "A", legend: str = "{{model}}", **extra) -> dict:
    return {"datasource": dict(DS), "expr": expr, "legendFormat": legend, "refId": ref, **extra}


def panel(*targets: dict, panel_id: int = 1, grid=(0, 0, 12, 8), kind: str = "timeseries", unit: str = "reqps",
          **extra) -> dict:
    x, y, w, h = grid
    return {
        "id": panel_id,
        "type": kind,
        "title": f"Panel {panel_id}",
        "description": "What it shows.",
        "datasource": dict(DS),
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": list(targets) or [target()],
        **extra,
    }


def variables() -> list[dict]:
    def label_values(name: str) -> dict:
        return {"type": "query", "name": name, "datasource": dict(DS), "multi": True, "includeAll": True,
                "query": f"label_values(holysheep_requests_total, {name})"}

    return [{"type": "datasource", "name": "datasource", "query": "prometheus"},
            label_values("job"), label_values("model")]


def dashboard(*panels: dict, uid: str = "test-board", templating: list[dict] | None = None) -> dict:
    return {
        "uid": uid,
        "title": "Test",
        "schemaVersion": 39,
        "templating": {"list": variables() if templating is None else templating},
        "panels": list(panels) or [panel()],
    }


def query_dashboard(*exprs: str, legend: str = "") -> dict:
    """A clean dashboard whose one panel runs `exprs`."""
    return dashboard(panel(*(target(e, chr(65 + i), legend) for i, e in enumerate(exprs))))


# -- rules -----------------------------------------------------------------------


def recording(name: str, expr: str, labels: dict | None = None) -> dict:
    rule = {"record": name, "expr": expr}
    if labels:
        rule["labels"] = labels
    return rule


BASE_RECORDINGS = [
    recording(ERROR_RATIO,
              'sum by (job, model) (rate(holysheep_requests_total{status_code=~"5.."}[5m])) '
              "/ sum by (job, model) (rate(holysheep_requests_total[5m]))"),
]


def alert(**overrides) -> dict:
    rule = {
        "alert": "GatewayErrorsHigh",
        "expr": f"{ERROR_RATIO} > 0.05",
        "for": "5m",
        "labels": {"severity": "warning"},
        "annotations": {
            "summary": "Gateway requests are failing.",
            "description": "{{ $labels.model }} of {{ $labels.job }} fails {{ $value | humanizePercentage }}.",
            "runbook_url": f"{RUNBOOK_BASE}#gatewayerrorshigh",
        },
    }
    for key, value in overrides.items():
        if value is None:
            rule.pop(key, None)
        else:
            rule[key] = value
    return rule


def annotations(**overrides) -> dict:
    values = dict(alert()["annotations"])
    for key, value in overrides.items():
        if value is None:
            values.pop(key)
        else:
            values[key] = value
    return values


def rule_file(*rules: dict, with_base: bool = True) -> dict:
    return {"groups": [{"name": "test", "rules": [*(BASE_RECORDINGS if with_base else []), *rules]}]}
