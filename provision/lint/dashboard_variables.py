"""Dashboard variables: a Prometheus datasource variable used everywhere, and the
job and model variables every query filters on."""

from __future__ import annotations

import json

from promql_parser import Call, MatchOp, VectorSelector

from provision.contract import JOB, MODEL
from provision.lint.artifacts import Dashboard, Panel, Target, target_name
from provision.lint.dashboard_structure import NON_DATA_PANELS
from provision.lint.registry import DASHBOARD, ERROR, TARGET, Hit, check
from provision.promql_ast import referenced_variables, selector_name, walk_values

# Grafana's own datasources: no Prometheus query runs through them.
BUILTIN_DATASOURCES = {"-- Grafana --", "-- Dashboard --", "grafana", "dashboard"}
MIXED_DATASOURCE = "-- Mixed --"
DEFAULT_VARIABLE = "datasource"


def prometheus_datasource_variables(dashboard: Dashboard) -> list[str]:
    return [name for name, v in dashboard.variables.items()
            if v.get("type") == "datasource" and str(v.get("query") or "").lower() == "prometheus"]


def _uid(ref) -> str | None:
    """The uid (or legacy name) a datasource reference points at."""
    if isinstance(ref, str):
        return ref
    if isinstance(ref, dict):
        uid = ref.get("uid")
        return uid if isinstance(uid, str) else None
    return None


def _uses_variable(ref, names: list[str]) -> bool:
    uid = _uid(ref)
    return uid is not None and any(uid in (f"${n}", f"${{{n}}}", f"[[{n}]]") for n in names)


def _describe(ref) -> str:
    return json.dumps(ref, sort_keys=True) if isinstance(ref, dict) else repr(ref)


@check("dashboard-datasource-variable", ERROR, DASHBOARD,
       "The dashboard has a datasource variable of type prometheus, so it works on any Grafana.")
def dashboard_datasource_variable(dashboard: Dashboard, ctx):
    if prometheus_datasource_variables(dashboard):
        return
    others = [name for name, v in dashboard.variables.items() if v.get("type") == "datasource"]
    if others:
        yield f"datasource variable ${others[0]} does not list Prometheus datasources (query: prometheus)"
    else:
        yield f"no datasource variable: add ${DEFAULT_VARIABLE} of type datasource with query prometheus"


@check("panel-datasource-variable", ERROR, DASHBOARD,
       "Every panel, query and query variable uses the datasource variable, never a hard-coded datasource.")
def panel_datasource_variable(dashboard: Dashboard, ctx):
    names = prometheus_datasource_variables(dashboard)
    use = f"${{{names[0] if names else DEFAULT_VARIABLE}}}"
    for panel in dashboard.panels:
        if panel.type not in NON_DATA_PANELS:
            yield from _panel_datasources(panel, names, use)
    for name, variable in dashboard.variables.items():
        if variable.get("type") == "query" and not _uses_variable(variable.get("datasource"), names):
            ref = variable.get("datasource")
            what = "no datasource (Grafana's default)" if ref is None else f"datasource {_describe(ref)}"
            yield Hit(f"query variable ${name} uses {what}; use {use}", where=f"variable {name}")


def _panel_datasources(panel: Panel, names: list[str], use: str):
    ref = panel.data.get("datasource")
    uid = _uid(ref)
    if uid in BUILTIN_DATASOURCES:
        return
    mixed = uid == MIXED_DATASOURCE
    if ref is None:
        yield Hit(f"the panel names no datasource, so Grafana uses its default one; use {use}", item=panel)
    elif not mixed and not _uses_variable(ref, names):
        yield Hit(f"hard-coded datasource {_describe(ref)}; use {use}", item=panel)
    targets = panel.data.get("targets")
    for index, target in enumerate(targets if isinstance(targets, list) else []):
        if not isinstance(target, dict):
            continue
        target_ref = target.get("datasource")
        where = target_name(target, index)
        if target_ref is None:
            if mixed:
                yield Hit(f"the query of a mixed panel names no datasource; use {use}", where=where, item=panel)
        elif _uid(target_ref) not in BUILTIN_DATASOURCES and not _uses_variable(target_ref, names):
            yield Hit(f"hard-coded datasource {_describe(target_ref)}; use {use}", where=where, item=panel)


@check("dashboard-job-model-variables", ERROR, DASHBOARD,
       "The dashboard has `job` and `model` query variables to narrow every panel.")
def dashboard_job_model_variables(dashboard: Dashboard, ctx):
    for name in (JOB, MODEL):
        variable = dashboard.variables.get(name)
        if variable is None:
            yield f"no ${name} variable: add a query variable listing the {name} label's values"
        elif variable.get("type") not in ("query", "custom", "constant", "textbox"):
            yield f"${name} is a {variable.get('type')!r} variable; make it a query variable over the label's values"


@check("target-job-model-filter", ERROR, TARGET,
       "Every selector filters on the dashboard's $job and $model variables (with =~, as they are multi-valued).",
       parsed=True)
def target_job_model_filter(target: Target, ctx):
    variables = target.dashboard.variables
    for node, parents in walk_values(target.expr.ast):
        if not isinstance(node, VectorSelector):
            continue
        name = selector_name(node)
        if name is None or any(isinstance(p, Call) and p.func.name.startswith("absent") for p in parents):
            continue
        for label, variable in _filters_expected(name, node, ctx):
            matchers = [m for m in node.matchers.matchers if m.name == label and variable in referenced_variables(m.value)]
            if not matchers:
                yield f'{name} is not filtered on ${variable}: add {label}=~"${variable}"'
            elif _multi_valued(variables.get(variable)) and any(m.op == MatchOp.Equal for m in matchers):
                yield f'{name} matches multi-value ${variable} with =; use {label}=~"${variable}"'


def _filters_expected(name: str, selector, ctx) -> list[tuple[str, str]]:
    """(label, variable) pairs a selector should filter on, given what its series carry."""
    metric = ctx.raw_metric(name)
    if metric is not None:
        model = ctx.profile.model_label if ctx.profile.model_label in metric.labels else None
        return [(JOB, JOB)] + ([(model, MODEL)] if model else [])
    if ctx.is_constant(name):
        return []  # a table from config (prices): every row is wanted, whatever the variables say
    if name in ctx.recorded:
        labels = ctx.series_labels(selector).known
        return [(label, label) for label in (JOB, MODEL) if label in labels]
    if ":" in name:
        return []  # an undefined recording: promql-recording-defined reports it
    return [(JOB, JOB)]  # any scraped series has a job


def _multi_valued(variable: dict | None) -> bool:
    return bool(variable) and bool(variable.get("multi") or variable.get("includeAll"))
