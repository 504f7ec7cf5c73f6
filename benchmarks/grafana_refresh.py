"""The queries one refresh of a dashboard sends to Prometheus, as Grafana would send them.

For every panel in view (rows are not queried; a collapsed row's panels are not loaded)
and every target that is not hidden:

- the panel's time range: the dashboard's, or the panel's own (`timeFrom`: `now/d` is
  today so far, `now/M` this month so far, `6h` or `now-6h` the last six hours; UTC);
- the interval: range / max data points (about 1000 px of graph for every panel), rounded
  to Grafana's steps (`roundInterval`: 86.4 s -> 1 m, 604.8 s -> 10 m), no finer than the
  data source's scrape interval;
- variables: `$__interval`, `$__rate_interval` = max($__interval + scrape, 4 x scrape)
  (Grafana 10+), `$__range` and `$__range_s`; dashboard variables as given (`$job` and
  `$model` set to All give `.*`);
- instant targets are one query at the end of the range; range targets a query_range over
  the range aligned to the step, as Grafana's Prometheus data source aligns it.

Repeated rows (`repeat`) are queried once, with the variable's value as given: with All
(`.*`) that one copy reads what all repeated copies together would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

# Grafana's roundInterval (pkg/gtime / intervalv2): an interval up to the first bound is
# rounded to the second, in seconds.
ROUNDING = [
    (0.015, 0.01), (0.035, 0.02), (0.075, 0.05), (0.15, 0.1), (0.35, 0.2), (0.75, 0.5), (1.5, 1), (3.5, 2),
    (7.5, 5), (12.5, 10), (17.5, 15), (25, 20), (45, 30), (90, 60), (210, 120), (450, 300), (750, 600),
    (1050, 900), (1500, 1200), (2700, 1800), (5400, 3600), (9000, 7200), (16200, 10800), (32400, 21600),
    (86400, 43200), (604800, 86400), (1814400, 604800),
]
MAX_DATA_POINTS = 1000
_VARIABLE = re.compile(r"\$\{(\w+)(?::[\w-]+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_RELATIVE = re.compile(r"^(?:now-)?(\d+)([smhdwy])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


@dataclass(frozen=True)
class PanelQuery:
    panel: str
    ref: str
    expr: str  # variables substituted
    instant: bool
    start: int
    end: int
    step: int


def round_interval(seconds: float) -> float:
    for bound, rounded in ROUNDING:
        if seconds <= bound:
            return rounded
    return 31536000


def interval_text(seconds: float) -> str:
    for unit in ("d", "h", "m"):
        if seconds >= UNITS[unit] and seconds % UNITS[unit] == 0:
            return f"{int(seconds // UNITS[unit])}{unit}"
    return f"{seconds:g}s"


def panel_range(panel: dict, end: int, dashboard_range: int) -> tuple[int, int]:
    """(start, end) of a panel: the dashboard's range or the panel's relative time override."""
    override = (panel.get("timeFrom") or "").strip()
    if not override:
        return end - dashboard_range, end
    moment = datetime.fromtimestamp(end, timezone.utc)
    if override == "now/d":
        return int(moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()), end
    if override == "now/M":
        return int(moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()), end
    match = _RELATIVE.match(override)
    if not match:
        raise ValueError(f"panel {panel.get('title')!r}: time override {override!r} is not modelled")
    return end - int(match.group(1)) * UNITS[match.group(2)], end


def panels_in_view(dashboard: dict) -> list[dict]:
    out = []
    for panel in dashboard.get("panels") or []:
        if panel.get("type") == "row":
            if not panel.get("collapsed"):
                out += [p for p in panel.get("panels") or [] if p.get("type") != "row"]
            continue
        out.append(panel)
    return out


def refresh(dashboard: dict, *, end: int, range_seconds: int, scrape: int,
            variables: dict[str, str]) -> list[PanelQuery]:
    """The queries of one refresh of `dashboard` whose time range is the last `range_seconds`
    before `end`."""
    queries = []
    for panel in panels_in_view(dashboard):
        start, stop = panel_range(panel, end, range_seconds)
        span = stop - start
        minimum = _seconds(panel.get("interval")) or scrape
        interval = max(round_interval(span / (panel.get("maxDataPoints") or MAX_DATA_POINTS)), minimum)
        values = {
            **variables,
            "__interval": interval_text(interval),
            "__interval_ms": str(int(interval * 1000)),
            "__rate_interval": interval_text(max(interval + scrape, 4 * scrape)),
            "__range": f"{span}s",
            "__range_s": str(span),
            "__range_ms": str(span * 1000),
        }
        for target in panel.get("targets") or []:
            if target.get("hide") or not target.get("expr"):
                continue
            expr = substitute(target["expr"], values)
            step = int(interval)
            instant = bool(target.get("instant")) and not target.get("range")
            queries.append(PanelQuery(panel.get("title", ""), target.get("refId", ""), expr, instant,
                                      start // step * step, stop // step * step, step))
    return queries


def substitute(expr: str, values: dict[str, str]) -> str:
    def replace(match: re.Match) -> str:
        name = next(g for g in match.groups() if g)
        if name not in values:
            if name.isdigit():  # $1 in label_replace
                return match.group(0)
            raise ValueError(f"variable ${name} has no value in {expr!r}")
        return values[name]

    return _VARIABLE.sub(replace, expr)


def _seconds(text: str | None) -> int:
    if not text:
        return 0
    match = _RELATIVE.match(text.strip().lstrip(">"))
    return int(match.group(1)) * UNITS[match.group(2)] if match else 0
