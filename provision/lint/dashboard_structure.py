"""Dashboard structure: uid, panel types, titles, descriptions, units, targets, ids, layout."""

from __future__ import annotations

from itertools import combinations

from provision.lint.artifacts import Dashboard, Panel, target_name
from provision.lint.registry import DASHBOARD, ERROR, PANEL, WARNING, Hit, check

UID_MAX_LENGTH = 40
GRID_COLUMNS = 24
# Panels that show no query results, so need no targets or unit.
NON_DATA_PANELS = {"row", "text", "news", "dashlist", "annolist", "alertlist", "welcome", "gettingstarted"}
# Angular panels: off by default in Grafana 11, removed in 12; their replacements.
DEPRECATED_PANELS = {
    "graph": "timeseries",
    "singlestat": "stat",
    "table-old": "table",
    "grafana-singlestat-panel": "stat",
    "grafana-piechart-panel": "piechart",
    "grafana-worldmap-panel": "geomap",
}
# Panels that show numbers on an axis or as a value, where a unit says what they count.
UNIT_PANELS = {"timeseries", "graph", "stat", "singlestat", "gauge", "bargauge", "piechart", "barchart", "trend",
               "histogram"}


def _is_data_panel(panel: Panel) -> bool:
    return panel.type not in NON_DATA_PANELS and "libraryPanel" not in panel.data


@check("dashboard-structure", ERROR, DASHBOARD, "The dashboard model has the shape Grafana expects.")
def dashboard_structure(dashboard: Dashboard, ctx):
    yield from dashboard.problems


@check("dashboard-uid", ERROR, DASHBOARD,
       "The dashboard has a stable uid of at most 40 letters, digits, - and _.")
def dashboard_uid(dashboard: Dashboard, ctx):
    uid = dashboard.data.get("uid")
    if uid in (None, ""):
        yield "no uid: Grafana makes up a new one on every import, so links and updates break"
    elif not isinstance(uid, str):
        yield f"uid {uid!r} is not a string"
    elif len(uid) > UID_MAX_LENGTH:
        yield f"uid {uid!r} is {len(uid)} characters; Grafana allows at most {UID_MAX_LENGTH}"
    elif not all(c.isascii() and (c.isalnum() or c in "-_") for c in uid):
        yield f"uid {uid!r} may contain only letters, digits, - and _"


@check("panel-deprecated-type", ERROR, PANEL,
       "No Angular panel types (graph, singlestat, ...): Grafana 11 disables them and Grafana 12 removed them.")
def panel_deprecated_type(panel: Panel, ctx):
    if panel.type in DEPRECATED_PANELS:
        yield (f"panel type {panel.type!r} is a deprecated Angular panel (removed in Grafana 12); "
               f"use {DEPRECATED_PANELS[panel.type]!r}")


@check("panel-title", WARNING, PANEL, "Every panel has a title.")
def panel_title(panel: Panel, ctx):
    title = panel.data.get("title")
    if panel.type != "row" and not (isinstance(title, str) and title.strip()):
        yield "the panel has no title"


@check("panel-description", WARNING, PANEL,
       "Every data panel has a description saying what it shows and how to read it.")
def panel_description(panel: Panel, ctx):
    description = panel.data.get("description")
    if _is_data_panel(panel) and not (isinstance(description, str) and description.strip()):
        yield "the panel has no description"


@check("panel-unit", WARNING, PANEL, "Every panel that shows numbers has a unit.")
def panel_unit(panel: Panel, ctx):
    if panel.type in UNIT_PANELS and "libraryPanel" not in panel.data and not panel_units(panel.data):
        yield "the panel has no unit (fieldConfig.defaults.unit)"


def panel_units(data: dict) -> list[str]:
    """Units a panel sets: field defaults, overrides, or the legacy graph/singlestat keys."""
    field_config = data.get("fieldConfig") if isinstance(data.get("fieldConfig"), dict) else {}
    defaults = field_config.get("defaults") if isinstance(field_config.get("defaults"), dict) else {}
    units = [defaults.get("unit")]
    for override in field_config.get("overrides") or []:
        for prop in (override.get("properties") or []) if isinstance(override, dict) else []:
            if isinstance(prop, dict) and prop.get("id") == "unit":
                units.append(prop.get("value"))
    units.append(data.get("format"))  # singlestat
    units += [axis.get("format") for axis in data.get("yaxes") or [] if isinstance(axis, dict)][:1]  # graph
    return [u for u in units if isinstance(u, str) and u]  # "none" is a choice: a plain number


@check("panel-targets", ERROR, PANEL, "Every data panel has at least one query, and no query is empty.")
def panel_targets(panel: Panel, ctx):
    if not _is_data_panel(panel):
        return
    targets = panel.data.get("targets")
    if not isinstance(targets, list) or not targets:
        yield "the panel has no queries: it shows nothing"
        return
    for index, target in enumerate(targets):
        if isinstance(target, dict) and "expr" in target and not str(target.get("expr") or "").strip():
            yield Hit("the query is empty", where=target_name(target, index))


@check("panel-id-unique", ERROR, DASHBOARD, "Panel ids are unique within a dashboard.")
def panel_id_unique(dashboard: Dashboard, ctx):
    first: dict = {}
    for panel in dashboard.panels:
        panel_id = panel.data.get("id")
        if panel_id is None:
            continue
        if panel_id in first:
            yield Hit(f"panel id {panel_id} is also used by {first[panel_id].location}", item=panel)
        else:
            first[panel_id] = panel


@check("panel-grid-position", ERROR, DASHBOARD,
       "Panels stay within the 24-column grid and do not overlap one another.")
def panel_grid_position(dashboard: Dashboard, ctx):
    # A collapsed row keeps its panels' positions for when it opens: compare them among themselves.
    placed: dict[int | None, list[tuple[Panel, tuple[int, int, int, int]]]] = {}
    for panel in dashboard.panels:
        box = _grid_box(panel.data.get("gridPos"))
        if box is None:
            continue  # Grafana lays out panels without a position itself
        x, y, w, h = box
        if x < 0 or y < 0 or w <= 0 or h <= 0 or x + w > GRID_COLUMNS:
            yield Hit(f"gridPos x={x} w={w} y={y} h={h} lies outside the {GRID_COLUMNS}-column grid", item=panel)
            continue
        placed.setdefault(id(panel.row) if panel.row else None, []).append((panel, box))
    for group in placed.values():
        for (first, a), (second, b) in combinations(group, 2):
            if _overlap(a, b):
                yield Hit(f"overlaps {first.location} on the grid", item=second)


def _grid_box(grid) -> tuple[int, int, int, int] | None:
    if not isinstance(grid, dict):
        return None
    values = [grid.get(k) for k in ("x", "y", "w", "h")]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return None
    return tuple(values)


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah
