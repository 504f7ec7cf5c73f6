"""Check built artifacts: schema, PromQL syntax, the metric contract, promtool.

Works on the files in a build directory, so it checks exactly what would be
loaded or pushed. Each problem is one line naming the artifact, the panel or
rule, and what is wrong.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from provision.contract import Profile
from provision import yamlread
from provision.promql_ast import BUILTIN_SERIES, PromQLError, metric_names

PROMTOOL_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class Problem:
    artifact: str
    location: str
    message: str

    def __str__(self) -> str:
        where = f"{self.artifact}: {self.location}" if self.location else self.artifact
        return f"{where}: {self.message}"


@dataclass
class Report:
    problems: list[Problem]
    checked: int
    promtool: str  # "passed", "failed", or why it did not run

    @property
    def ok(self) -> bool:
        return not self.problems


def validate_build(out_dir: Path, profile: Profile, *, promtool: str | None = "promtool") -> Report:
    """Validate build/dashboards/*.json and build/rules/*.yaml against the profile."""
    rule_paths = sorted((out_dir / "rules").glob("*.yaml"))
    dashboard_paths = sorted((out_dir / "dashboards").glob("*.json"))
    problems: list[Problem] = []
    rule_files = {}
    for path in rule_paths:
        loaded = _load(path, yamlread.load, problems)
        if loaded is not None:
            rule_files[path] = loaded
    recorded = {rule["record"] for f in rule_files.values() for g in f.get("groups") or [] for rule in g.get("rules") or []
                if isinstance(rule, dict) and "record" in rule}
    known = profile.series_names() | recorded | BUILTIN_SERIES
    for path, data in rule_files.items():
        problems += rule_file_problems(_name(path, out_dir), data, known)
    for path in dashboard_paths:
        data = _load(path, json.loads, problems)
        if data is not None:
            problems += dashboard_problems(_name(path, out_dir), data, known)
    from provision.validate_deliveries import check_deliveries  # it builds on this module's checks

    deliveries = check_deliveries(out_dir, profile.series_names(), known)
    problems += deliveries.problems
    if not rule_paths:
        status = "not run: no rule files"
    elif any(p.artifact.startswith("rules/") for p in problems):
        status = "not run: fix the rule files' problems first"
    else:
        status, promtool_problems = run_promtool(rule_paths, promtool, out_dir)
        problems += promtool_problems
    if deliveries.rule_files and status == "passed":
        status, promtool_problems = promtool_check_extracted(deliveries.rule_files, promtool)
        problems += promtool_problems
    return Report(problems, len(rule_paths) + len(dashboard_paths) + deliveries.checked, status)


def dashboard_problems(artifact: str, dashboard: dict, known: set[str]) -> list[Problem]:
    problems = [Problem(artifact, _json_path(e.absolute_path), e.message) for e in _schema_errors("dashboard", dashboard)]
    for panel in dashboard.get("panels") or []:
        if not isinstance(panel, dict):
            continue
        for target in panel.get("targets") or []:
            expr = target.get("expr") if isinstance(target, dict) else None
            if not isinstance(expr, str):
                continue
            where = f"panel {panel.get('id')} {panel.get('title', '')!r} target {target.get('refId', '?')}"
            problems += _expr_problems(artifact, where, expr, known)
    return problems


def rule_file_problems(artifact: str, data: dict, known: set[str]) -> list[Problem]:
    problems = [Problem(artifact, _json_path(e.absolute_path), e.message) for e in _schema_errors("rules", data)]
    if problems:
        return problems
    names: set[str] = set()
    for group in data["groups"]:
        if group["name"] in names:
            problems.append(Problem(artifact, f"group {group['name']!r}", "group name is repeated in the same file"))
        names.add(group["name"])
        for rule in group["rules"]:
            where = f"group {group['name']!r} {'alert' if 'alert' in rule else 'record'} {rule.get('alert') or rule.get('record')!r}"
            problems += _expr_problems(artifact, where, rule["expr"], known)
    return problems


def _expr_problems(artifact: str, where: str, expr: str, known: set[str],
                   unknown: str = "is neither in the active profile nor recorded by a rule of this build") -> list[Problem]:
    try:
        used = metric_names(expr)
    except PromQLError as exc:
        return [Problem(artifact, where, f"PromQL does not parse: {exc}")]
    return [
        Problem(artifact, where, f"metric {name!r} {unknown}")
        for name in sorted(used - known)
    ]


def run_promtool(rule_paths: list[Path], promtool: str | None, out_dir: Path) -> tuple[str, list[Problem]]:
    binary = shutil.which(promtool) if promtool else None
    if not binary:
        return "not run: promtool not found (install Debian's prometheus package)", []
    proc = subprocess.run(
        [binary, "check", "rules", *map(str, rule_paths)],
        capture_output=True, text=True, timeout=PROMTOOL_TIMEOUT_SECONDS,
    )
    if proc.returncode == 0:
        return "passed", []
    lines = [line.strip() for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    failures = [line for line in lines if not line.startswith(("Checking", "SUCCESS"))]
    return "failed", [Problem("promtool check rules", "", line) for line in failures or lines]


def promtool_check_extracted(rule_files: dict[str, dict], promtool: str | None) -> tuple[str, list[Problem]]:
    """`promtool check rules` over rule groups found inside other artifacts (ruler bodies,
    PrometheusRule objects, Grafana queries), each written to a temporary rule file."""
    with tempfile.TemporaryDirectory(prefix="relaywatch-rules-") as tmp:
        paths, names = [], {}
        for index, (artifact, data) in enumerate(sorted(rule_files.items())):
            path = Path(tmp) / f"{index:03d}.yaml"
            path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
            paths.append(path)
            names[str(path)] = artifact
        status, problems = run_promtool(paths, promtool, Path(tmp))
    renamed = []
    for problem in problems:
        message = problem.message
        for tmp_path, artifact in names.items():
            message = message.replace(tmp_path, artifact)
        renamed.append(Problem(problem.artifact, problem.location, message))
    return status, renamed


def _schema_errors(name: str, data) -> list[jsonschema.ValidationError]:
    validator = jsonschema.Draft202012Validator(_schema(name))
    return sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))


_SCHEMAS: dict[str, dict] = {}


def _schema(name: str) -> dict:
    if name not in _SCHEMAS:
        text = resources.files("provision").joinpath(f"schemas/{name}.schema.json").read_text(encoding="utf-8")
        _SCHEMAS[name] = json.loads(text)
    return _SCHEMAS[name]


def _load(path: Path, loader, problems: list[Problem]):
    try:
        return loader(path.read_text(encoding="utf-8"))
    except (ValueError, yaml.YAMLError, OSError) as exc:
        problems.append(Problem(path.name, "", f"cannot be read: {str(exc).splitlines()[0]}"))
        return None


def _name(path: Path, out_dir: Path) -> str:
    return str(path.relative_to(out_dir))


def _json_path(path) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".") or "(top level)"
