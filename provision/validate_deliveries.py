"""Check the delivery renderings of a build directory, as validate.py checks
dashboards and rule files: each problem one line naming the file and place.

- grafana-rule-groups/*.json: the group body's shape; every rule against
  Grafana's published alerting schemas (v11.6.x and v12.3.3, with the real key
  `keep_firing_for` mapped to the schema's `keepFiringFor`); the data items
  referring to each other; the query parses and reads no recorded series.
- ruler-rule-groups/*.json: each body is a valid Prometheus rule group.
- kubernetes/*.yaml: YAML documents of the expected apiVersion/kind with valid
  metadata; PrometheusRule groups and ConfigMap dashboards checked like the
  build's own files; nothing above the 1 MiB an object may hold.
- provisioning/: the two provisioning files' required keys.
- prometheus/rule_files.yml: a `rule_files` list.

The rule groups found in all of these (and each Grafana query, as an alert
expression) are collected for one `promtool check rules` run.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from provision import yamlread
from provision.promql import duration_seconds
from provision.promql_ast import BUILTIN_SERIES
from provision.render import (
    GRAFANA_RULES_DIR,
    KUBERNETES_DIR,
    PROMETHEUS_DIR,
    PROVISIONING_DIR,
    RULER_RULES_DIR,
)
from provision.render.kubernetes import CONFIGMAP_DATA_LIMIT
from provision.validate import Problem, _expr_problems, dashboard_problems, rule_file_problems

GRAFANA_SCHEMA_VERSIONS = ("v11.6.x", "v12.3.3")
EXPRESSION_TYPES = {"math", "reduce", "threshold", "resample", "classic_conditions", "sql"}
KINDS = {("monitoring.coreos.com/v1", "PrometheusRule"), ("v1", "ConfigMap"),
         ("kustomize.config.k8s.io/v1beta1", "Kustomization")}
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
NOT_RAW = "is not a raw series of the active profile (Grafana cannot read recorded series)"
DURATION = re.compile(r"^(0|([0-9]+(ms|s|m|h|d|w|y))+)$")


@dataclass
class DeliveryReport:
    problems: list = field(default_factory=list)  # of validate.Problem
    checked: int = 0
    rule_files: dict[str, dict] = field(default_factory=dict)  # artifact -> {"groups": [...]} for promtool


def check_deliveries(out_dir: Path, profile_series: set[str], known: set[str]) -> DeliveryReport:
    """`profile_series`: raw series names (all a Grafana query may read); `known`: those plus recorded ones."""
    report = DeliveryReport()
    checks = (
        (GRAFANA_RULES_DIR, "*.json", lambda a, d: _grafana_group(a, d, profile_series | BUILTIN_SERIES, report)),
        (RULER_RULES_DIR, "*.json", lambda a, d: _ruler_group(a, d, known, report)),
        (KUBERNETES_DIR, "*.yaml", lambda a, d: _kubernetes(a, d, known, report, out_dir)),
        (PROVISIONING_DIR, "*/*.yaml", _provisioning),
        (PROMETHEUS_DIR, "*.yml", _prometheus_snippet),
    )
    for directory, pattern, check in checks:
        for path in sorted((out_dir / directory).glob(pattern)):
            artifact = path.relative_to(out_dir).as_posix()
            report.checked += 1
            data = _load(path, artifact, report)
            if data is not _UNREADABLE:
                report.problems += check(artifact, data)
    return report


# -- Grafana-managed rule groups ---------------------------------------------------


def _grafana_group(artifact: str, body, raw_series: set[str], report: DeliveryReport) -> list:
    if not isinstance(body, dict) or not isinstance(body.get("rules"), list):
        return [Problem(artifact, "", "not a rule group body: expected a mapping with a rules list")]
    problems = []
    interval = body.get("interval")
    if not isinstance(interval, int) or interval < 10 or interval % 10:
        problems.append(Problem(artifact, "interval", f"{interval!r} is not a whole number of seconds, "
                                                      "a multiple of 10"))
    for key in ("title", "folderUid"):
        if not isinstance(body.get(key), str) or not body.get(key):
            problems.append(Problem(artifact, key, "must be a non-empty string"))
    queries = []
    for index, rule in enumerate(body["rules"]):
        where = f"rules[{index}] {rule.get('title', '?')!r}" if isinstance(rule, dict) else f"rules[{index}]"
        if not isinstance(rule, dict):
            problems.append(Problem(artifact, where, "not a mapping"))
            continue
        problems += [Problem(artifact, where, message) for message in grafana_rule_problems(rule)]
        if rule.get("ruleGroup") != body.get("title") or rule.get("folderUID") != body.get("folderUid"):
            problems.append(Problem(artifact, where, "ruleGroup/folderUID differ from the group's title/folderUid"))
        for item in rule.get("data") or []:
            expr = (item.get("model") or {}).get("expr") if isinstance(item, dict) else None
            if isinstance(expr, str):
                queries.append({"alert": str(rule.get("title")), "expr": expr})
                problems += _expr_problems(artifact, f"{where} query {item.get('refId')}", expr, raw_series,
                                           unknown=NOT_RAW)
    titles = [r.get("title") for r in body["rules"] if isinstance(r, dict)]
    for title in sorted({t for t in titles if titles.count(t) > 1}):
        problems.append(Problem(artifact, f"title {title!r}", "appears twice; titles are unique in a folder"))
    if queries:
        report.rule_files[f"{artifact} (queries)"] = {"groups": [{"name": str(body.get("title")), "rules": queries}]}
    return problems


def grafana_rule_problems(rule: dict) -> list[str]:
    """A provisioning-API rule body against both schemas and the links between its data items."""
    problems = []
    for version in GRAFANA_SCHEMA_VERSIONS:
        validator = jsonschema.Draft7Validator(_grafana_rule_schema(version))
        for error in sorted(validator.iter_errors(_as_schema_spells_it(rule, version)), key=lambda e: list(e.path)):
            path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
            problems.append(f"{path or '(rule)'}: {error.message} (Grafana {version} alerting schema)")
    uid = rule.get("uid")
    if not isinstance(uid, str) or not re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", uid):
        problems.append(f"uid: {uid!r} is not 1-40 of letters, digits, - and _")
    for key in ("for", "keep_firing_for"):
        if key in rule and not (isinstance(rule[key], str) and DURATION.match(rule[key])):
            problems.append(f"{key}: {rule[key]!r} is not a duration string such as 5m or 1h30m")
    evals = rule.get("missingSeriesEvalsToResolve")
    if evals is not None and (not isinstance(evals, int) or evals < 1):
        problems.append(f"missingSeriesEvalsToResolve: {evals!r} must be a positive integer")
    data = rule.get("data") if isinstance(rule.get("data"), list) else []
    refs = [item.get("refId") for item in data if isinstance(item, dict)]
    if len(set(refs)) != len(refs):
        problems.append(f"data: refIds repeat: {refs}")
    if rule.get("condition") not in refs:
        problems.append(f"condition: {rule.get('condition')!r} is not the refId of a data item")
    for item in data:
        if isinstance(item, dict):
            problems += _data_item_problems(item, set(refs))
    return problems


def _data_item_problems(item: dict, refs: set[str]) -> list[str]:
    model = item.get("model") if isinstance(item.get("model"), dict) else {}
    where = f"data {item.get('refId')!r}"
    if model.get("refId") != item.get("refId"):
        return [f"{where}: model.refId {model.get('refId')!r} differs from refId"]
    if item.get("datasourceUid") != "__expr__":
        if not isinstance(model.get("expr"), str) or not model["expr"].strip():
            return [f"{where}: a datasource query needs model.expr"]
        return []
    if model.get("type") not in EXPRESSION_TYPES:
        return [f"{where}: expression type {model.get('type')!r} is not one of {', '.join(sorted(EXPRESSION_TYPES))}"]
    used = set(re.findall(r"\$\{?(\w+)", model.get("expression", ""))) if model["type"] == "math" \
        else {model.get("expression")}
    missing = sorted(str(r) for r in used - refs)
    return [f"{where}: refers to {', '.join(missing)}, not a refId of this rule"] if missing else []


def _as_schema_spells_it(rule: dict, version: str) -> dict:
    """The published schemas predate some keys Grafana's API takes (its Go struct is the
    reference): `keep_firing_for` is `keepFiringFor` in nanoseconds in v12.3.3 and absent
    from v11.6.x, whose server ignores it; `missingSeriesEvalsToResolve` is in neither."""
    copied = copy.deepcopy(rule)
    copied.pop("missingSeriesEvalsToResolve", None)
    keep = copied.pop("keep_firing_for", None)
    if isinstance(keep, str) and DURATION.match(keep) and version != "v11.6.x":
        copied["keepFiringFor"] = int(duration_seconds(keep) * 1e9)
    return copied


_SCHEMAS: dict[str, dict] = {}


def _grafana_rule_schema(version: str) -> dict:
    if version not in _SCHEMAS:
        name = f"schemas/grafana-alerting-{version}.schema.json"
        schema = json.loads(resources.files("provision").joinpath(name).read_text(encoding="utf-8"))
        _SCHEMAS[version] = {"$ref": "#/definitions/Rule", "definitions": schema["definitions"]}
    return _SCHEMAS[version]


# -- ruler and Kubernetes ------------------------------------------------------------


def _ruler_group(artifact: str, body, known: set[str], report: DeliveryReport) -> list:
    rule_file = {"groups": [body]}
    problems = rule_file_problems(artifact, rule_file, known)
    if not problems:
        report.rule_files[artifact] = rule_file
    return problems


def _kubernetes(artifact: str, documents, known: set[str], report: DeliveryReport, out_dir: Path) -> list:
    problems = []
    for obj in documents if isinstance(documents, list) else [documents]:
        if not isinstance(obj, dict) or (obj.get("apiVersion"), obj.get("kind")) not in KINDS:
            kind = (obj.get("apiVersion"), obj.get("kind")) if isinstance(obj, dict) else type(obj).__name__
            problems.append(Problem(artifact, "", f"unexpected object {kind}; expected one of "
                                                  + ", ".join(f"{a} {k}" for a, k in sorted(KINDS))))
            continue
        if obj["kind"] == "Kustomization":
            for resource in obj.get("resources") or []:
                if not (out_dir / KUBERNETES_DIR / resource).is_file():
                    problems.append(Problem(artifact, f"resources {resource!r}", "no such file next to it"))
            continue
        problems += [Problem(artifact, "metadata", m) for m in _metadata_problems(obj.get("metadata"))]
        if len(json.dumps(obj).encode()) > CONFIGMAP_DATA_LIMIT + 64 * 1024:
            problems.append(Problem(artifact, "", "object larger than Kubernetes accepts (about 1 MiB)"))
        if obj["kind"] == "PrometheusRule":
            rule_file = {"groups": (obj.get("spec") or {}).get("groups")}
            found = rule_file_problems(artifact, rule_file, known)
            problems += found
            if not found:
                report.rule_files[artifact] = rule_file
        else:
            for key, value in (obj.get("data") or {}).items():
                if not CONFIGMAP_KEY.match(key):
                    problems.append(Problem(artifact, f"data {key!r}", "not a valid ConfigMap key"))
                if key.endswith(".json"):
                    try:
                        problems += dashboard_problems(f"{artifact} {key}", json.loads(value), known)
                    except (TypeError, ValueError) as exc:
                        problems.append(Problem(artifact, f"data {key!r}", f"not JSON: {exc}"))
    return problems


def _metadata_problems(metadata) -> list[str]:
    if not isinstance(metadata, dict):
        return ["missing"]
    problems = []
    name, namespace = metadata.get("name"), metadata.get("namespace")
    if not isinstance(name, str) or len(name) > 253 or not DNS_SUBDOMAIN.match(name):
        problems.append(f"name {name!r} is not a DNS-1123 subdomain")
    if not isinstance(namespace, str) or len(namespace) > 63 or not DNS_LABEL.match(namespace):
        problems.append(f"namespace {namespace!r} is not a DNS-1123 label")
    for key, value in (metadata.get("labels") or {}).items():
        if not isinstance(value, str) or len(value) > 63:
            problems.append(f"label {key}: value {value!r} must be a string of at most 63 characters")
    return problems


# -- provisioning and the prometheus.yml snippet ----------------------------------------


def _provisioning(artifact: str, data) -> list:
    section, required = ("providers", ("name", "type", "options")) if "/dashboards/" in f"/{artifact}" \
        else ("datasources", ("name", "type", "uid", "url", "access"))
    if not isinstance(data, dict) or data.get("apiVersion") != 1 or not isinstance(data.get(section), list):
        return [Problem(artifact, "", f"expected apiVersion: 1 and a {section} list")]
    problems = []
    for index, entry in enumerate(data[section]):
        for key in required:
            if not isinstance(entry, dict) or entry.get(key) in (None, ""):
                problems.append(Problem(artifact, f"{section}[{index}]", f"{key} is required"))
        if section == "providers" and isinstance(entry, dict) and not (entry.get("options") or {}).get("path"):
            problems.append(Problem(artifact, f"{section}[{index}].options", "path is required"))
    return problems


def _prometheus_snippet(artifact: str, data) -> list:
    files = data.get("rule_files") if isinstance(data, dict) else None
    if not isinstance(files, list) or not files or not all(isinstance(f, str) and f for f in files):
        return [Problem(artifact, "rule_files", "must be a non-empty list of paths")]
    return []


_UNREADABLE = object()


def _load(path: Path, artifact: str, report: DeliveryReport):
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            return json.loads(text)
        documents = [d for d in yamlread.load_all(text) if d is not None]
        return documents if path.parent.name == KUBERNETES_DIR else (documents[0] if documents else None)
    except (ValueError, yaml.YAMLError, OSError) as exc:
        report.problems.append(Problem(artifact, "", f"cannot be read: {str(exc).splitlines()[0]}"))
        return _UNREADABLE
