"""The project's panel helpers, and their rendering to Grafana's dashboard model.

Definitions describe panels with the small value objects below. Only
`render_dashboard` touches grafanalib, whose defaults are those of old Grafana
(schemaVersion 12, maxDataPoints 100, intervalFactor 2, datasource as a bare
string, top-level rows/style): its output is reduced here to the current model
(schemaVersion 39, datasource references as objects). Replacing grafanalib means
changing this module only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import grafanalib.core as gl
from grafanalib._gen import DashboardEncoder

from provision.rules import Query, unavailable_reason

SCHEMA_VERSION = 39
GRID_WIDTH = 24
DATASOURCE_VARIABLE = "datasource"
DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}
Thresholds = Sequence[tuple[float | None, str]]


@dataclass(frozen=True)
class Link:
    title: str
    url: str


@dataclass(frozen=True)
class PanelSpec:
    kind: str  # timeseries | stat | piechart | bargauge
    title: str
    description: str
    unit: str
    queries: tuple[Query, ...]
    width: int = 12
    height: int = 8
    stack: bool = False
    minimum: float | None = None
    maximum: float | None = None
    decimals: int | None = None
    thresholds: Thresholds | None = None
    links: tuple[Link, ...] = ()
    instant: bool = False
    time_from: str | None = None  # panel relative time, e.g. now/d for "today so far"
    no_value: str | None = None  # text shown when the query returns nothing

    def available_queries(self) -> tuple[Query, ...]:
        return tuple(q for q in self.queries if q.available)

    def missing(self) -> tuple[str, ...]:
        return tuple(sorted({role for q in self.queries for role in q.missing}))


@dataclass(frozen=True)
class RowSpec:
    title: str
    panels: tuple[PanelSpec, ...]
    repeat: str | None = None


@dataclass(frozen=True)
class Variable:
    """A template variable: `datasource` (kind datasource) or a label query."""

    name: str
    label: str
    kind: str  # datasource | query
    query: str
    multi: bool = False
    include_all: bool = False
    default: str | None = None


@dataclass(frozen=True)
class DashboardSpec:
    uid: str
    title: str
    description: str
    rows: tuple[RowSpec, ...]
    variables: tuple[Variable, ...]
    tags: tuple[str, ...] = ()
    links: tuple[Link, ...] = ()
    refresh: str = "30s"
    time_from: str = "now-6h"
    timezone: str = "browser"
    notices: list[str] = field(default_factory=list, compare=False)


# -- helpers used by the definitions --------------------------------------------


def timeseries(
    title: str,
    *queries: Query,
    unit: str,
    description: str,
    width: int = 12,
    height: int = 8,
    stack: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    thresholds: Thresholds | None = None,
    links: Iterable[Link] = (),
) -> PanelSpec:
    return PanelSpec("timeseries", title, description, unit, tuple(queries), width, height, stack,
                     minimum, maximum, None, thresholds, tuple(links))


def stat(
    title: str,
    query: Query,
    *,
    unit: str,
    description: str,
    width: int = 3,
    height: int = 4,
    decimals: int | None = None,
    thresholds: Thresholds | None = None,
    instant: bool = False,
    time_from: str | None = None,
    no_value: str | None = None,
) -> PanelSpec:
    """A single number; `instant` for queries that aggregate over `$__range` themselves."""
    return PanelSpec("stat", title, description, unit, (query,), width, height, decimals=decimals,
                     thresholds=thresholds, instant=instant, time_from=time_from, no_value=no_value)


def piechart(title: str, query: Query, *, unit: str, description: str, width: int = 8, height: int = 8,
             decimals: int | None = None, time_from: str | None = None) -> PanelSpec:
    return PanelSpec("piechart", title, description, unit, (query,), width, height, decimals=decimals, instant=True,
                     time_from=time_from)


def bargauge(
    title: str, *queries: Query, unit: str, description: str, width: int = 12, height: int = 8,
    thresholds: Thresholds | None = None, decimals: int | None = None, time_from: str | None = None,
    no_value: str | None = None,
) -> PanelSpec:
    return PanelSpec("bargauge", title, description, unit, tuple(queries), width, height, decimals=decimals,
                     thresholds=thresholds, instant=True, time_from=time_from, no_value=no_value)


def row(title: str, *panels: PanelSpec, repeat: str | None = None) -> RowSpec:
    return RowSpec(title, tuple(panels), repeat)


def datasource_variable(default_uid: str) -> Variable:
    return Variable(DATASOURCE_VARIABLE, "Data source", "datasource", "prometheus", default=default_uid)


def label_variable(name: str, title: str, selector: str, label: str) -> Variable:
    """A multi-value variable listing a label's values on `selector` (All = any value)."""
    return Variable(name, title, "query", f"label_values({selector}, {label})", multi=True, include_all=True)


# -- rendering ---------------------------------------------------------------


def drop_unavailable(spec: DashboardSpec) -> DashboardSpec:
    """Remove panels whose queries need roles the profile lacks, noting each one."""
    rows = []
    for r in spec.rows:
        kept = []
        for panel in r.panels:
            if panel.available_queries():
                kept.append(panel)
                for query in panel.queries:
                    if not query.available:
                        spec.notices.append(f"dashboard {spec.uid}: panel {panel.title!r}: one of its queries "
                                            f"left out: {unavailable_reason(query.missing)}")
            else:
                spec.notices.append(
                    f"dashboard {spec.uid}: panel {panel.title!r} left out: {unavailable_reason(panel.missing())}"
                )
        if kept:
            rows.append(RowSpec(r.title, tuple(kept), r.repeat))
    return DashboardSpec(spec.uid, spec.title, spec.description, tuple(rows), spec.variables, spec.tags,
                         spec.links, spec.refresh, spec.time_from, spec.timezone, spec.notices)


def render_dashboard(spec: DashboardSpec) -> dict:
    """The dashboard JSON model (without `id`), ready to write or push."""
    spec = drop_unavailable(spec)
    laid_out = _layout(spec.rows)
    board = gl.Dashboard(
        title=spec.title,
        uid=spec.uid,
        description=spec.description,
        tags=list(spec.tags),
        panels=[panel for panel, _ in laid_out],
        refresh=spec.refresh,
        time=gl.Time(spec.time_from, "now"),
        timezone=spec.timezone,
        templating=gl.Templating(list=[_variable(v) for v in spec.variables]),
        links=[_dashboard_link(link) for link in spec.links],
    )
    data = _plain(board.to_json_data())
    return _modern_dashboard(data, spec, [panel_spec for _, panel_spec in laid_out])


def _layout(rows: Sequence[RowSpec]) -> list[tuple[object, PanelSpec | None]]:
    """grafanalib panels (with their specs; None for rows) placed row by row, left to right."""
    out, next_id, y = [], 1, 0
    for r in rows:
        grid = gl.GridPos(h=1, w=GRID_WIDTH, x=0, y=y)
        repeat = gl.Repeat("h", r.repeat) if r.repeat else gl.Repeat()
        out.append((gl.RowPanel(title=r.title, id=next_id, gridPos=grid, repeat=repeat), None))
        next_id, y, x, line_height = next_id + 1, y + 1, 0, 0
        for panel in r.panels:
            if x + panel.width > GRID_WIDTH:
                x, y, line_height = 0, y + line_height, 0
            out.append((_panel(panel, next_id, gl.GridPos(h=panel.height, w=panel.width, x=x, y=y)), panel))
            next_id += 1
            x += panel.width
            line_height = max(line_height, panel.height)
        y += line_height
    return out


def _panel(spec: PanelSpec, panel_id: int, grid: gl.GridPos):
    targets = [
        gl.Target(expr=q.expr, legendFormat=q.legend, refId=chr(ord("A") + i), instant=spec.instant)
        for i, q in enumerate(spec.available_queries())
    ]
    common = dict(title=spec.title, description=spec.description, id=panel_id, gridPos=grid, targets=targets,
                  dataSource=DATASOURCE_REF)
    if spec.kind == "timeseries":
        return gl.TimeSeries(
            unit=spec.unit, fillOpacity=20 if spec.stack else 10, showPoints="never",
            stacking={"mode": "normal", "group": "A"} if spec.stack else {"mode": "none"},
            legendDisplayMode="table", legendPlacement="right" if spec.width > 12 else "bottom",
            legendCalcs=["mean", "max", "lastNotNull"], tooltipMode="multi", tooltipSort="desc",
            valueMin=spec.minimum, valueMax=spec.maximum, **common,
        )
    if spec.kind == "stat":
        return gl.Stat(format=spec.unit, reduceCalc="lastNotNull", graphMode="area", colorMode="value",
                       decimals=spec.decimals, **common)
    if spec.kind == "piechart":
        return gl.PieChartv2(unit=spec.unit, pieType="donut", legendDisplayMode="table",
                             legendPlacement="right", legendValues=["value", "percent"],
                             reduceOptionsCalcs=["lastNotNull"], **common)
    if spec.kind == "bargauge":
        return gl.BarGauge(format=spec.unit, calc="lastNotNull", orientation="horizontal",
                           displayMode="gradient", **common)
    raise ValueError(f"unknown panel kind {spec.kind!r}")


def _variable(v: Variable) -> gl.Template:
    if v.kind == "datasource":
        return gl.Template(name=v.name, label=v.label, query=v.query, type="datasource",
                           default=v.default, hide=0)
    return gl.Template(name=v.name, label=v.label, query=v.query, dataSource=DATASOURCE_REF,
                       multi=v.multi, includeAll=v.include_all, allValue=".*" if v.include_all else None,
                       refresh=2, sort=1, hide=0)


def _dashboard_link(link: Link) -> gl.DashboardLink:
    return gl.DashboardLink(title=link.title, uri=link.url, type="link", includeVars=True, keepTime=True,
                            icon="dashboard")


def _plain(data) -> dict:
    """grafanalib objects -> plain JSON types."""
    return json.loads(json.dumps(data, cls=DashboardEncoder))


# -- reduction to the current dashboard model ------------------------------------

DASHBOARD_KEYS = ("annotations", "description", "editable", "graphTooltip", "links", "panels", "refresh",
                  "schemaVersion", "tags", "templating", "time", "timepicker", "timezone", "title", "uid")
PANEL_KEYS = ("datasource", "description", "fieldConfig", "gridPos", "id", "links", "options", "repeat",
              "repeatDirection", "targets", "title", "transformations", "type")
VARIABLE_KEYS = ("allValue", "current", "datasource", "hide", "includeAll", "label", "multi", "name",
                 "options", "query", "refresh", "regex", "sort", "type")
LINK_KEYS = ("asDropdown", "icon", "includeVars", "keepTime", "tags", "targetBlank", "title", "tooltip",
             "type", "url")
BUILTIN_ANNOTATION = {
    "builtIn": 1,
    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
    "enable": True,
    "hide": True,
    "iconColor": "rgba(0, 211, 255, 1)",
    "name": "Annotations & Alerts",
    "type": "dashboard",
}


def _modern_dashboard(data: dict, spec: DashboardSpec, panel_specs: list[PanelSpec | None]) -> dict:
    out = _pick(data, DASHBOARD_KEYS)
    out["schemaVersion"] = SCHEMA_VERSION
    out["annotations"] = {"list": [BUILTIN_ANNOTATION]}
    out["graphTooltip"] = 1  # shared crosshair: correlate latency, errors and traffic
    out["timepicker"] = {}
    out["panels"] = [_modern_panel(p, s) for p, s in zip(data["panels"], panel_specs, strict=True)]
    out["templating"] = {"list": [_modern_variable(v, spec) for v in data["templating"]["list"]]}
    out["links"] = [_modern_link(link) for link in data["links"]]
    return out


def _modern_panel(panel: dict, spec: PanelSpec | None) -> dict:
    if panel["type"] == "row":
        out = {"collapsed": False, "gridPos": panel["gridPos"], "id": panel["id"], "panels": [],
               "title": panel["title"], "type": "row"}
        if panel.get("repeat"):
            out["repeat"] = panel["repeat"]
        return out
    out = _drop_none(_pick(panel, PANEL_KEYS))
    out["datasource"] = dict(DATASOURCE_REF)
    out["targets"] = [_modern_target(t) for t in panel["targets"]]
    defaults = out.setdefault("fieldConfig", {"defaults": {}, "overrides": []}).setdefault("defaults", {})
    out["fieldConfig"].setdefault("overrides", [])
    defaults["unit"] = spec.unit
    if spec.decimals is not None:
        defaults["decimals"] = spec.decimals
    if spec.minimum is not None:
        defaults["min"] = spec.minimum
    if spec.maximum is not None:
        defaults["max"] = spec.maximum
    defaults["thresholds"] = _thresholds(spec.thresholds)
    if spec.thresholds and spec.kind == "timeseries":
        defaults.setdefault("custom", {})["thresholdsStyle"] = {"mode": "dashed"}
    if spec.links:
        defaults["links"] = [_data_link(link) for link in spec.links]
    if spec.no_value is not None:
        defaults["noValue"] = spec.no_value
    if spec.time_from:
        out["timeFrom"] = spec.time_from
    if spec.kind == "stat":
        out.setdefault("options", {})["colorMode"] = "value" if spec.thresholds else "none"
    return out


def _modern_target(target: dict) -> dict:
    out = {
        "datasource": dict(DATASOURCE_REF),
        "editorMode": "code",
        "expr": target["expr"],
        "legendFormat": target.get("legendFormat") or "__auto",
        "range": not target.get("instant", False),
        "refId": target["refId"],
    }
    if target.get("instant"):
        out["instant"] = True
    return out


def _thresholds(steps: Thresholds | None) -> dict:
    """Threshold steps. Grafana always treats the first step as the base (-Infinity)
    and exports its value as null, which the v11 schema rejects; every relaywatch
    panel shows non-negative values, so the base is written as 0."""
    steps = steps or ((None, "green"),)
    return {"mode": "absolute",
            "steps": [{"color": color, "value": 0 if value is None else value} for value, color in steps]}


def _data_link(link: Link) -> dict:
    """A field data link. Grafana reads title/url/targetBlank; the published schemas
    model field links as dashboard links, so the remaining keys are filled for them."""
    return {"asDropdown": False, "icon": "external link", "includeVars": False, "keepTime": False, "tags": [],
            "targetBlank": False, "title": link.title, "tooltip": "", "type": "link", "url": link.url}


def _modern_variable(var: dict, spec: DashboardSpec) -> dict:
    out = _pick(var, VARIABLE_KEYS)
    out = {k: v for k, v in out.items() if v is not None}
    out["options"] = []
    if var["type"] == "datasource":
        default = next((v.default for v in spec.variables if v.name == var["name"]), None)
        out.pop("datasource", None)
        out["current"] = {"selected": False, "text": default or "", "value": default or ""}
        out.pop("allValue", None)
        out.update(includeAll=False, multi=False, refresh=1, regex="")
        out.pop("sort", None)
    else:
        out["datasource"] = dict(DATASOURCE_REF)
        out["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
        out["regex"] = ""
    return out


def _modern_link(link: dict) -> dict:
    out = _pick(link, LINK_KEYS)
    out["url"] = link.get("uri") or link.get("url", "")
    out.setdefault("tags", [])
    out["tooltip"] = out.get("tooltip") or ""
    return out


def _pick(data: dict, keys: Iterable[str]) -> dict:
    return {k: data[k] for k in keys if k in data}


def _drop_none(value):
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value
