"""What lint reads: dashboards and rule files, from a build directory or any path.

A file is recognised by its content, not its name: a Grafana dashboard (the
model itself, the `{"dashboard": ..., "meta": ...}` wrapper of Grafana's GET
API, or an old model with `rows`), a Prometheus rule file (`groups:`), or a
Kubernetes PrometheusRule (`spec.groups`). Each is flattened into the items the
checks walk: panels, targets, rules, each knowing its artifact and location.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from provision import yamlread
from provision.promql_ast import PromQLError, parse

DASHBOARDS_DIR, RULES_DIR = "dashboards", "rules"


class LintInputError(Exception):
    """A path that cannot be linted: unreadable, not JSON/YAML, or neither a dashboard nor a rule file."""


@dataclass
class Expression:
    """A PromQL expression, parsed with Grafana variables marked (ast None when it does not parse)."""

    text: str
    ast: Any = None
    error: str | None = None

    @classmethod
    def of(cls, text: str) -> "Expression":
        try:
            return cls(text, ast=parse(text, mark_variables=True))
        except PromQLError as exc:
            return cls(text, error=str(exc))


@dataclass
class Dashboard:
    artifact: str
    data: dict
    panels: list["Panel"] = field(default_factory=list)
    targets: list["Target"] = field(default_factory=list)
    location: str = "dashboard"
    line: int | None = None
    problems: list[str] = field(default_factory=list)  # structural, found while loading

    @property
    def variables(self) -> dict[str, dict]:
        listed = (self.data.get("templating") or {}).get("list") if isinstance(self.data.get("templating"), dict) else None
        return {v["name"]: v for v in listed or [] if isinstance(v, dict) and isinstance(v.get("name"), str)}


@dataclass
class Panel:
    dashboard: Dashboard
    data: dict
    location: str
    row: "Panel | None" = None  # the collapsed row holding this panel
    line: int | None = None

    @property
    def artifact(self) -> str:
        return self.dashboard.artifact

    @property
    def type(self) -> str:
        return str(self.data.get("type") or "")


@dataclass
class Target:
    panel: Panel
    data: dict
    location: str
    expr: Expression
    line: int | None = None

    @property
    def artifact(self) -> str:
        return self.panel.artifact

    @property
    def dashboard(self) -> Dashboard:
        return self.panel.dashboard

    @property
    def legend(self) -> str:
        legend = self.data.get("legendFormat")
        return legend if isinstance(legend, str) else ""


@dataclass
class Rule:
    artifact: str
    group: str
    data: dict
    kind: str  # alert | record
    name: str
    expr: Expression
    line: int | None = None

    @property
    def location(self) -> str:
        return f"{self.kind} {self.name}"

    @property
    def labels(self) -> dict[str, str]:
        return _string_map(self.data.get("labels"))

    @property
    def annotations(self) -> dict[str, str]:
        return _string_map(self.data.get("annotations"))


@dataclass
class RuleFile:
    artifact: str
    rules: list[Rule] = field(default_factory=list)
    problems: list[tuple[str, int | None]] = field(default_factory=list)  # (message, line)
    location: str = "file"
    line: int | None = None


@dataclass
class Artifacts:
    dashboards: list[Dashboard] = field(default_factory=list)
    rule_files: list[RuleFile] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.dashboards) + len(self.rule_files)

    @property
    def names(self) -> list[str]:
        return [a.artifact for a in (*self.dashboards, *self.rule_files)]

    @property
    def panels(self) -> list[Panel]:
        return [p for d in self.dashboards for p in d.panels]

    @property
    def targets(self) -> list[Target]:
        return [t for d in self.dashboards for t in d.targets]

    @property
    def rules(self) -> list[Rule]:
        return [r for f in self.rule_files for r in f.rules]

    def add(self, artifact: str, data: Any, text: str = "") -> None:
        """Add one parsed document, recognised by its content."""
        try:
            kind, body = detect(data)
        except LintInputError as exc:
            raise LintInputError(f"{artifact}: {exc}") from None
        if kind == "dashboard":
            self.dashboards.append(read_dashboard(artifact, body))
        else:
            self.rule_files.append(read_rule_file(artifact, body, text))


# -- loading ---------------------------------------------------------------------


def load_build(out_dir: Path) -> Artifacts:
    """The dashboards and rule files of a build directory, named relative to it."""
    artifacts = Artifacts()
    for directory, pattern in ((DASHBOARDS_DIR, "*.json"), (RULES_DIR, "*.yaml")):
        for path in sorted((out_dir / directory).glob(pattern)):
            artifact = f"{directory}/{path.name}"
            try:
                text, data = read_document(path)
                artifacts.add(artifact, data, text)
            except LintInputError as exc:  # validation reports it too; lint keeps going
                problem = str(exc).removeprefix(f"{path}:").strip()
                if directory == DASHBOARDS_DIR:
                    artifacts.dashboards.append(Dashboard(artifact, {}, problems=[problem]))
                else:
                    artifacts.rule_files.append(RuleFile(artifact, problems=[(problem, None)]))
    return artifacts


def load_paths(paths: list[Path]) -> Artifacts:
    artifacts = Artifacts()
    for path in paths:
        text, data = read_document(path)
        artifacts.add(str(path), data, text)
    return artifacts


def read_document(path: Path) -> tuple[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LintInputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LintInputError(f"{path}: cannot read: {exc}") from None
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("{", "[")):
        try:
            return text, json.loads(text)
        except json.JSONDecodeError as exc:
            raise LintInputError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    try:
        return text, yamlread.load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{mark.line + 1}:{mark.column + 1}:" if mark else ""
        reason = str(getattr(exc, "problem", None) or exc).strip()
        raise LintInputError(f"{path}:{where} not valid YAML: {reason}") from None


def detect(data: Any) -> tuple[str, Any]:
    """("dashboard", model) or ("rules", rule file mapping); LintInputError otherwise."""
    if isinstance(data, dict):
        if isinstance(data.get("dashboard"), dict) and "panels" not in data:
            return "dashboard", data["dashboard"]  # Grafana's GET /api/dashboards/uid/<uid> answer
        if "groups" in data:
            return "rules", data
        if data.get("kind") == "PrometheusRule" and isinstance(data.get("spec"), dict):
            return "rules", data["spec"]
        if any(key in data for key in ("panels", "rows", "templating", "schemaVersion")):
            return "dashboard", data
    raise LintInputError("neither a Grafana dashboard (no panels) nor a Prometheus rule file (no groups)")


def read_dashboard(artifact: str, data: dict) -> Dashboard:
    dashboard = Dashboard(artifact, data)
    panels = data.get("panels")
    if panels is None and isinstance(data.get("rows"), list):  # models before Grafana 5
        panels = [p for row in data["rows"] if isinstance(row, dict) for p in row.get("panels") or []]
    if panels is not None and not isinstance(panels, list):
        dashboard.problems.append("`panels` is not a list")
        panels = []
    for index, panel in enumerate(panels or []):
        if not isinstance(panel, dict):
            dashboard.problems.append(f"panels[{index}] is not an object")
            continue
        row = _add_panel(dashboard, panel, f"panels[{index}]")
        children = panel.get("panels") if panel.get("type") == "row" else None
        for child_index, child in enumerate(children if isinstance(children, list) else []):
            if isinstance(child, dict):
                _add_panel(dashboard, child, f"panels[{index}].panels[{child_index}]", row=row)
    return dashboard


def _add_panel(dashboard: Dashboard, data: dict, path: str, *, row: Panel | None = None) -> Panel | None:
    if data.get("repeatPanelId") is not None:
        return None  # a clone Grafana made of a repeated panel, not part of the definition
    title = data.get("title")
    named = f"panel {data['id']}" if isinstance(data.get("id"), int) else path
    location = named + (f" {json.dumps(title, ensure_ascii=False)}" if isinstance(title, str) and title else "")
    panel = Panel(dashboard, data, location, row=row)
    dashboard.panels.append(panel)
    targets = data.get("targets")
    for index, target in enumerate(targets if isinstance(targets, list) else []):
        if isinstance(target, dict) and isinstance(target.get("expr"), str) and is_prometheus(panel, target):
            where = f"{location} {target_name(target, index)}"
            dashboard.targets.append(Target(panel, target, where, Expression.of(target["expr"])))
    return panel


def target_name(target: dict, index: int) -> str:
    ref_id = target.get("refId")
    return f"target {ref_id}" if isinstance(ref_id, str) and ref_id else f"targets[{index}]"


def is_prometheus(panel: Panel, target: dict) -> bool:
    """Whether a target is a Prometheus query (unknown or variable datasources are taken as Prometheus)."""
    for ref in (target.get("datasource"), panel.data.get("datasource")):
        if isinstance(ref, dict) and isinstance(ref.get("type"), str) and ref["type"] not in ("prometheus", "datasource"):
            return False
        if isinstance(ref, dict) and ref.get("type") == "prometheus":
            return True
    return True


def read_rule_file(artifact: str, data: dict, text: str = "") -> RuleFile:
    rule_file = RuleFile(artifact)
    lines = _rule_lines(text)
    groups = data.get("groups")
    if not isinstance(groups, list):
        rule_file.problems.append(("`groups` is not a list", None))
        return rule_file
    for g, group in enumerate(groups):
        if not isinstance(group, dict) or not isinstance(group.get("name"), str):
            rule_file.problems.append((f"groups[{g}] has no name", lines.get((g, None))))
            continue
        rules = group.get("rules")
        if not isinstance(rules, list):
            rule_file.problems.append((f"group {group['name']}: `rules` is not a list", lines.get((g, None))))
            continue
        for r, rule in enumerate(rules):
            line = lines.get((g, r))
            problem = _rule_problem(rule)
            if problem:
                rule_file.problems.append((f"group {group['name']} rule {r + 1}: {problem}", line))
                continue
            kind = "alert" if "alert" in rule else "record"
            rule_file.rules.append(
                Rule(artifact, group["name"], rule, kind, str(rule[kind]), Expression.of(str(rule["expr"])), line)
            )
    return rule_file


def _rule_problem(rule: Any) -> str | None:
    if not isinstance(rule, dict):
        return "not a mapping"
    if ("alert" in rule) == ("record" in rule):
        return "needs exactly one of `alert` and `record`"
    if not isinstance(rule.get("expr"), (str, int, float)) or isinstance(rule.get("expr"), bool):
        return "has no `expr`"
    return None


def _rule_lines(text: str) -> dict[tuple[int, int | None], int]:
    """(group index, rule index or None) -> 1-based line, from the YAML node tree."""
    if not text:
        return {}
    try:
        root = yamlread.compose(text)
    except yaml.YAMLError:
        return {}
    groups = _child(root, "groups") or _child(_child(root, "spec"), "groups")
    lines: dict[tuple[int, int | None], int] = {}
    if not isinstance(groups, yaml.SequenceNode):
        return lines
    for g, group in enumerate(groups.value):
        lines[(g, None)] = group.start_mark.line + 1
        rules = _child(group, "rules")
        if isinstance(rules, yaml.SequenceNode):
            for r, rule in enumerate(rules.value):
                lines[(g, r)] = rule.start_mark.line + 1
    return lines


def _child(node, key: str):
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v
    return None


def _string_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}
