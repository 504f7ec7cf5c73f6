"""PromQL against the metric contract, for dashboard queries and rules alike: it
parses, reads series that exist, takes rates of counters only, never shows a
counter's raw value, computes quantiles over summed buckets, and uses windows
long enough for the scrape interval."""

from __future__ import annotations

import difflib

from promql_parser import (
    AggregateExpr,
    AggModifierType,
    BinaryExpr,
    Call,
    MatrixSelector,
    NumberLiteral,
    ParenExpr,
    SubqueryExpr,
    VectorSelector,
    display_duration,
)

from provision.contract import HISTOGRAM, LE
from provision.lint.registry import ERROR, EXPRESSION, check
from provision.promql_ast import (
    BUILTIN_SERIES,
    RATE_FUNCTIONS,
    SET_OPS,
    calls,
    range_argument,
    selector_name,
    selectors,
    unwrap,
    walk,
    walk_values,
    window_variable,
)

MIN_SCRAPES_PER_WINDOW = 4
CLOSE_MATCH = 0.85  # how alike a known name must be to be suggested for a typo
# Functions that compute from several samples of a window: they need enough of them.
SAMPLE_FUNCTIONS = RATE_FUNCTIONS | {"delta", "idelta", "deriv", "predict_linear", "resets", "changes"}
COUNTER_FUNCTIONS = RATE_FUNCTIONS | {"resets"}
# Functions and aggregations that look only at which series exist, not at their values.
VALUE_BLIND = {"absent", "absent_over_time", "present_over_time", "count_over_time", "timestamp", "count", "group"}
# Functions that hand their argument's values on unchanged.
PASS_THROUGH = {"label_replace", "label_join", "sort", "sort_desc", "sort_by_label", "sort_by_label_desc"}


def _names(expr) -> list[tuple[str, object]]:
    return [(name, node) for node in selectors(expr.ast) if (name := selector_name(node))]


@check("promql-parse", ERROR, EXPRESSION, "Every query and rule expression is valid PromQL.")
def promql_parse(item, ctx):
    if item.expr.error:
        yield f"does not parse as PromQL: {item.expr.error}"


@check("promql-metric-in-profile", ERROR, EXPRESSION,
       "Every raw metric a query reads exists in the active profile.", parsed=True)
def promql_metric_in_profile(item, ctx):
    for name in dict.fromkeys(name for name, _ in _names(item.expr)):
        if name in ctx.raw_series or name in ctx.recorded or name in BUILTIN_SERIES or ":" in name:
            continue
        metric = ctx.profile.metric(name)
        if metric is not None and metric.type == HISTOGRAM:
            hint = f"; {name} is a histogram: read {name}_bucket, {name}_sum or {name}_count"
        else:
            close = difflib.get_close_matches(name, sorted(ctx.raw_series), n=1, cutoff=CLOSE_MATCH)
            hint = f"; did you mean {close[0]}?" if close else ""
        yield f"{name} is not a series of the {ctx.profile.name} profile{hint}"


@check("promql-recording-defined", ERROR, EXPRESSION,
       "Every recorded series (a name with colons) a query reads is defined by a rule being linted.", parsed=True)
def promql_recording_defined(item, ctx):
    for name in dict.fromkeys(name for name, _ in _names(item.expr)):
        if ":" in name and name not in ctx.recorded and name not in ctx.raw_series:
            close = difflib.get_close_matches(name, sorted(ctx.recorded), n=1, cutoff=CLOSE_MATCH)
            hint = f"; did you mean {close[0]}?" if close else ""
            yield f"recorded series {name} is not defined by any recording rule being linted{hint}"


@check("promql-rate-gauge", ERROR, EXPRESSION,
       "rate(), irate() and increase() are taken of counters only, never of a gauge or a recorded series.", parsed=True)
def promql_rate_gauge(item, ctx):
    for call in calls(item.expr.ast, RATE_FUNCTIONS):
        matrix = range_argument(call)
        name = selector_name(matrix.vector_selector) if matrix is not None else None
        reason = ctx.gauge_reason(name) if name else None
        if reason:
            yield f"{call.func.name}() of a non-counter: {reason}; its values go down as well as up"


@check("promql-counter-rate", ERROR, EXPRESSION,
       "Counters (_total, _count, _sum, _bucket) are read only through rate() or increase().", parsed=True)
def promql_counter_rate(item, ctx):
    for node, parents in walk_values(item.expr.ast):
        if isinstance(node, VectorSelector) and (name := selector_name(node)) and ctx.is_counter(name):
            if not _counter_handled(parents):
                yield (f"counter {name} is used without rate() or increase(): its raw value only grows and "
                       "drops to zero when the process restarts")


def _counter_handled(parents: tuple) -> bool:
    """Whether the nearest ancestor that uses a counter's values takes its rate (or ignores values)."""
    for parent in reversed(parents):
        if isinstance(parent, (ParenExpr, MatrixSelector, SubqueryExpr)):
            continue
        if isinstance(parent, Call):
            name = parent.func.name
            if name in COUNTER_FUNCTIONS or name in VALUE_BLIND:
                return True
            if name in PASS_THROUGH:
                continue
            return False
        if isinstance(parent, AggregateExpr):
            return str(parent.op) in VALUE_BLIND
        if isinstance(parent, BinaryExpr) and str(parent.op) in SET_OPS:
            continue
        return False
    return False


@check("promql-histogram-quantile", ERROR, EXPRESSION,
       "histogram_quantile() reads the sum of bucket rates, aggregated by (le, ...) so le is kept.", parsed=True)
def promql_histogram_quantile(item, ctx):
    for call in calls(item.expr.ast, {"histogram_quantile"}):
        if len(call.args) != 2:
            continue
        quantile, buckets = unwrap(call.args[0]), unwrap(call.args[1])
        if isinstance(quantile, NumberLiteral) and not 0 <= quantile.val <= 1:
            yield f"histogram_quantile({quantile.val:g}, ...): the quantile must be between 0 and 1"
        yield from _bucket_problems(buckets, ctx)


def _bucket_problems(buckets, ctx):
    if isinstance(buckets, AggregateExpr):
        op, modifier = str(buckets.op), buckets.modifier
        if op != "sum":
            yield f"buckets aggregated with {op}(); only sum() of bucket rates gives a quantile"
        elif not _keeps(modifier, LE):
            yield f"the aggregation drops the {LE} label, so there are no buckets left; use sum by ({LE}, ...)"
    else:
        labels = ctx.labels_of(buckets)
        if not labels.may_have(LE):
            yield f"the argument has no {LE} label, so it holds no buckets"
        elif any(not _recorded(name, ctx) for name, _ in _named(buckets)):
            yield (f"histogram_quantile() over per-series buckets gives one quantile per series, not one of the "
                   f"traffic; aggregate first: sum by ({LE}, ...) (rate(..._bucket[...]))")
    raw = [name for name, _ in _named(buckets) if not _recorded(name, ctx)]
    if raw and not any(name.endswith("_bucket") for name in raw):
        yield f"histogram_quantile() reads {', '.join(sorted(set(raw)))}, not a histogram's _bucket series"


def _keeps(modifier, label: str) -> bool:
    """Whether an aggregation with this by/without modifier keeps `label`."""
    if modifier is None:
        return False
    if modifier.type == AggModifierType.By:
        return label in modifier.labels
    return label not in modifier.labels


def _named(node) -> list[tuple[str, object]]:
    return [(name, n) for n, _ in walk(node) if isinstance(n, VectorSelector) and (name := selector_name(n))]


def _recorded(name: str, ctx) -> bool:
    return name in ctx.recorded or (":" in name and name not in ctx.raw_series)


@check("promql-range-window", ERROR, EXPRESSION,
       "Range windows of rate() and similar functions span at least four scrape intervals.", parsed=True)
def promql_range_window(item, ctx):
    scrape = ctx.settings.scrape_interval
    minimum = scrape * MIN_SCRAPES_PER_WINDOW
    for call in calls(item.expr.ast, SAMPLE_FUNCTIONS):
        matrix = range_argument(call)
        if matrix is None or window_variable(matrix.range) is not None:
            continue  # $__rate_interval is at least four scrape intervals by definition
        if matrix.range < minimum:
            yield (f"{call.func.name}() over [{display_duration(matrix.range)}] spans fewer than "
                   f"{MIN_SCRAPES_PER_WINDOW} scrape intervals of {display_duration(scrape)}: one missed scrape "
                   f"leaves too few samples; use at least [{display_duration(minimum)}]")
