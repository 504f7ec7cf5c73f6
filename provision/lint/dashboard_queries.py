"""Dashboard queries: rate windows that follow the dashboard, legends that name real labels."""

from __future__ import annotations

import re

from promql_parser import display_duration

from provision.lint.artifacts import Target
from provision.lint.registry import ERROR, TARGET, check
from provision.promql_ast import CUSTOM_DURATION, RATE_FUNCTIONS, calls, range_argument, window_variable

LEGEND_LABEL = re.compile(r"\{\{\s*([^}\s]+)\s*\}\}")
# $__range is deliberate: "total over the time picked" (increase over the dashboard's range).
ACCEPTED_WINDOWS = {"__rate_interval", "__range", CUSTOM_DURATION}


@check("promql-rate-interval", ERROR, TARGET,
       "rate(), irate() and increase() in dashboards use [$__rate_interval], not a fixed window or $__interval.",
       parsed=True)
def promql_rate_interval(target: Target, ctx):
    for call in calls(target.expr.ast, RATE_FUNCTIONS):
        matrix = range_argument(call)
        if matrix is None:
            continue
        variable = window_variable(matrix.range)
        if variable in ACCEPTED_WINDOWS:
            continue
        name = call.func.name
        if variable is not None:
            yield (f"{name}() over [${variable}], which can be shorter than two scrapes when zoomed in; "
                   "use [$__rate_interval]")
        else:
            yield (f"{name}() over a fixed [{display_duration(matrix.range)}] window; use [$__rate_interval] so the "
                   "window follows the zoom level and the scrape interval")


@check("target-legend-labels", ERROR, TARGET,
       "Legend formats refer only to labels the query's result keeps.", parsed=True)
def target_legend_labels(target: Target, ctx):
    if not target.legend or target.legend == "__auto":
        return
    labels = ctx.labels_of(target.expr.ast)
    for label in dict.fromkeys(LEGEND_LABEL.findall(target.legend)):
        if not label.startswith("__") and not labels.may_have(label):
            kept = ", ".join(sorted(labels.known)) or "no labels"
            yield f"legend {{{{{label}}}}} names a label the result does not have (it keeps {kept})"
