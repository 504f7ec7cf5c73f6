"""Helpers for the rule-group push tests: the project of push_support with rules.target set,
a Mimir ruler behind Grafana, and readers of the traffic the emulator saw."""

from __future__ import annotations

import json
import textwrap
from urllib.parse import unquote

import yaml
from push_support import Project

FOLDER = "relaywatch"
ALERTS, COST_ALERTS = "llm-gateway-alerts", "llm-gateway-cost-alerts"  # the repository's alert groups
RULER_DS, NAMESPACE = "mimir", "relaywatch"
GROUPS_PATH = "/api/v1/provisioning/folder/"
RULER_PATH = f"/api/ruler/{RULER_DS}/api/v1/rules"


def use_rules(project: Project, targets: list[str], **settings) -> None:
    """Point rules.target at `targets`; `grafana=`/`ruler=` merge into those sections. The ruler
    target gets a Mimir ruler behind the datasource `mimir` (created in the emulator)."""
    rules = {"target": targets, "ruler": {"datasource_uid": RULER_DS, "namespace": NAMESPACE, "subtype": "mimir"}}
    for section, values in settings.items():
        rules.setdefault(section, {}).update(values)
    project.set("rules", rules)
    if RULER_DS not in project.grafana.state.rulers:
        project.grafana.add_ruler_datasource(RULER_DS, "mimir")


def push(project: Project, *args: str, code: int = 0):
    """`provision push <args>`, asserting its exit code."""
    result = project.run("push", *args)
    assert result.exit_code == code, result.stdout + result.stderr
    return result


def set_alert_setting(project: Project, dotted: str, value) -> None:
    data = project.config()
    node = data.setdefault("alerts", {})
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    project.config_path.write_text(yaml.safe_dump(data))


def add_alert_definitions(project: Project, name: str, body: str) -> None:
    (project.root / "alerts" / f"{name}.py").write_text(textwrap.dedent(body), encoding="utf-8")


def group_puts(grafana) -> dict[str, list]:
    """Group name -> the PUT requests sent for it (folder path as sent)."""
    out: dict[str, list] = {}
    for r in grafana.requests("PUT", GROUPS_PATH):
        out.setdefault(unquote(r.path.rsplit("/", 1)[1]), []).append(r)
    return out


def ruler_posts(grafana) -> list:
    return grafana.requests("POST", RULER_PATH)


def rule_writes(grafana) -> list[tuple[str, str]]:
    return [(r.method, unquote(r.path)) for r in grafana.writes()
            if r.path.startswith(("/api/v1/provisioning/", "/api/ruler/"))]


def stored_group(grafana, name: str, folder: str = FOLDER) -> list:
    return grafana.rule_group(folder, name)


def body_of(request) -> dict:
    return json.loads(request.body)
