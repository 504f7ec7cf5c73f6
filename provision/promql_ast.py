"""Parsing PromQL offline (promql-parser) and reading what an expression uses.

Grafana variables are not PromQL: they are replaced by stand-ins of the right
kind before parsing (a duration for $__rate_interval, a string inside quotes,
a number elsewhere). With `mark_variables`, the stand-ins stay recognisable
after parsing, so a linter can tell `[$__rate_interval]` from `[5m]` and
`job=~"$job"` from `job=~".*"`.

Beyond parsing, this module answers questions about an expression's tree:
which selectors it reads, which range windows its functions use, and which
labels its result keeps (`result_labels`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import promql_parser
from promql_parser import (
    AggregateExpr,
    BinaryExpr,
    Call,
    MatchOp,
    MatrixSelector,
    NumberLiteral,
    ParenExpr,
    StringLiteral,
    SubqueryExpr,
    UnaryExpr,
    ValueType,
    VectorMatchCardinality,
    VectorSelector,
)

DURATION_VARIABLES = {"__rate_interval", "__interval", "__range", "__auto"}
NUMBER_VARIABLES = {"__range_s", "__range_ms", "__interval_ms"}
# $name, ${name}, ${name:format}, [[name]]
_VARIABLE = re.compile(r"\$\{(\w+)(?::[\w-]+)?\}|\$(\w+)|\[\[(\w+)(?::[\w-]+)?\]\]")
_SPECIAL = re.compile(r"""[\\"'`$\[\]]""")  # the characters substitute_variables acts on
# Synthetic series every Prometheus has, and ALERTS.
BUILTIN_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS", "ALERTS_FOR_STATE"}

# In marked mode a duration variable becomes 5m plus a few milliseconds that
# identify it: nobody writes [5m1ms], so the window still says where it came from.
CUSTOM_DURATION = "custom variable"
_MARKED_DURATIONS = {"__rate_interval": 1, "__interval": 2, "__range": 3, "__auto": 4, CUSTOM_DURATION: 9}
_MARKER = re.compile(r"__var_(\w+?)__")

COMPARISON_OPS = {"==", "!=", ">", "<", ">=", "<="}
SET_OPS = {"and", "or", "unless"}
RATE_FUNCTIONS = {"rate", "irate", "increase"}
# Functions that give their result the label named by their second argument.
_LABEL_ADDING = {"label_replace", "label_join"}


class PromQLError(ValueError):
    pass


def substitute_variables(expr: str, *, mark: bool = False) -> str:
    """`expr` with every Grafana variable replaced by valid PromQL of the right kind."""
    out, quoted, brackets, i = [], None, 0, 0
    while True:
        # Only quotes, escapes, brackets and `$` change anything: copy the text between them whole.
        special = _SPECIAL.search(expr, i)
        if special is None:
            out.append(expr[i:])
            return "".join(out)
        at = special.start()
        out.append(expr[i:at])
        char = expr[at]
        if quoted:
            if char == "\\":
                out.append(expr[at : at + 2])
                i = at + 2
                continue
            if char == quoted:
                quoted = None
        elif char in "\"'`":
            quoted = char
        match = _VARIABLE.match(expr, at) if char in "$[" else None
        name = next((g for g in match.groups() if g), None) if match else None
        if name and not name.isdigit():  # $1 in label_replace is a regex group, not a variable
            out.append(_stand_in(name, inside_string=quoted is not None, in_range=brackets > 0, mark=mark))
            i = match.end()
            continue
        if not quoted:
            brackets += {"[": 1, "]": -1}.get(char, 0)
        out.append(char)
        i = at + 1


def _stand_in(name: str, *, inside_string: bool, in_range: bool, mark: bool) -> str:
    if inside_string:
        return f"__var_{name}__" if mark else ".*"
    if name in DURATION_VARIABLES or in_range:
        if not mark:
            return "5m"
        return f"5m{_MARKED_DURATIONS.get(name, _MARKED_DURATIONS[CUSTOM_DURATION])}ms"
    if name in NUMBER_VARIABLES:
        return "3600"
    return "1"


def window_variable(window: timedelta) -> str | None:
    """The Grafana variable a window parsed in marked mode stands for (`__rate_interval`, ...)."""
    for name, millis in _MARKED_DURATIONS.items():
        if window == timedelta(minutes=5, milliseconds=millis):
            return name
    return None


def referenced_variables(value: str) -> set[str]:
    """Variables referenced in a matcher value parsed in marked mode."""
    return set(_MARKER.findall(value))


def parse(expr: str, *, mark_variables: bool = False):
    """The AST of an expression (with Grafana variables substituted)."""
    try:
        return promql_parser.parse(substitute_variables(expr, mark=mark_variables))
    except ValueError as exc:
        raise PromQLError(str(exc).splitlines()[0]) from None


# -- walking the tree ------------------------------------------------------------


def children(node) -> list:
    if isinstance(node, BinaryExpr):
        return [node.lhs, node.rhs]
    if isinstance(node, AggregateExpr):
        return [node.param, node.expr] if node.param is not None else [node.expr]
    if isinstance(node, Call):
        return list(node.args)
    if isinstance(node, (ParenExpr, UnaryExpr, SubqueryExpr)):
        return [node.expr]
    if isinstance(node, MatrixSelector):
        return [node.vector_selector]
    return []


def walk(node, parents: tuple = ()) -> Iterator[tuple[object, tuple]]:
    """Every node with its ancestors (nearest last), depth first, in expression order."""
    yield node, parents
    for child in children(node):
        yield from walk(child, (*parents, node))


def walk_values(node, parents: tuple = ()) -> Iterator[tuple[object, tuple]]:
    """Like walk, but skips the right side of `and` / `unless`, whose values never reach the result
    (only its label sets are compared)."""
    yield node, parents
    if isinstance(node, BinaryExpr) and str(node.op) in ("and", "unless"):
        yield from walk_values(node.lhs, (*parents, node))
        return
    for child in children(node):
        yield from walk_values(child, (*parents, node))


def unwrap(node):
    """The expression inside any number of parentheses."""
    while isinstance(node, ParenExpr):
        node = node.expr
    return node


def selectors(ast) -> list:
    """Every VectorSelector in the expression, in order."""
    return [node for node, _ in walk(ast) if isinstance(node, VectorSelector)]


def selector_name(node) -> str | None:
    if node.name:
        return node.name
    for matcher in node.matchers.matchers:
        if matcher.name == "__name__" and matcher.op == MatchOp.Equal:
            return matcher.value
    return None


def metric_names(expr: str) -> set[str]:
    return {name for node in selectors(parse(expr)) if (name := selector_name(node))}


def calls(ast, names: set[str] | None = None) -> list:
    """Function calls in the expression, optionally only those named in `names`."""
    return [node for node, _ in walk(ast) if isinstance(node, Call) and (names is None or node.func.name in names)]


def range_argument(call) -> MatrixSelector | None:
    """The range-vector argument of a function like rate(), if it is a plain selector[range]."""
    for arg in call.args:
        if isinstance(arg, MatrixSelector):
            return arg
    return None


def is_comparison(node) -> bool:
    """A filtering comparison (`>`, `==`, ...), not one with `bool`, which returns every series."""
    return (isinstance(node, BinaryExpr) and str(node.op) in COMPARISON_OPS
            and not (node.modifier is not None and node.modifier.return_bool))


def is_scalar(node) -> bool:
    node = unwrap(node)
    if isinstance(node, (NumberLiteral, StringLiteral)):
        return True
    if isinstance(node, Call):
        return node.func.return_type == ValueType.Scalar
    if isinstance(node, UnaryExpr):
        return is_scalar(node.expr)
    if isinstance(node, BinaryExpr):
        return is_scalar(node.lhs) and is_scalar(node.rhs)
    return False


def equality_labels(selector) -> set[str]:
    """Labels a selector's equality matchers guarantee on every series it returns."""
    return {m.name for m in selector.matchers.matchers
            if m.op == MatchOp.Equal and m.value and m.name != "__name__"}


# -- the labels of a result ---------------------------------------------------------


@dataclass(frozen=True)
class LabelSet:
    """Labels a result carries: surely `known`, and possibly others when `open`."""

    known: frozenset[str] = frozenset()
    open: bool = False

    def may_have(self, label: str) -> bool:
        return self.open or label in self.known

    def __or__(self, other: "LabelSet") -> "LabelSet":
        return LabelSet(self.known | other.known, self.open or other.open)

    def adding(self, *labels: str) -> "LabelSet":
        return LabelSet(self.known | set(labels), self.open)

    def without(self, *labels: str) -> "LabelSet":
        return LabelSet(self.known - set(labels), self.open)

    def only(self, labels) -> "LabelSet":
        """Keep just `labels`: those surely present, or all of them when unsure."""
        labels = set(labels)
        return LabelSet(frozenset(labels if self.open else labels & self.known), False)


NO_LABELS = LabelSet()
UNKNOWN_LABELS = LabelSet(open=True)
SeriesLabels = Callable[[VectorSelector], LabelSet]


def result_labels(node, series_labels: SeriesLabels) -> LabelSet:
    """The labels an expression's result keeps, following Prometheus's evaluation rules.

    `series_labels(selector)` says what a selector's series carry (from the
    metric contract or the recording rules); `__name__` is never counted.
    """
    node = unwrap(node)
    if isinstance(node, VectorSelector):
        return series_labels(node).adding(*equality_labels(node))
    if isinstance(node, MatrixSelector):
        return result_labels(node.vector_selector, series_labels)
    if isinstance(node, (UnaryExpr, SubqueryExpr)):
        return result_labels(node.expr, series_labels)
    if isinstance(node, AggregateExpr):
        return _aggregate_labels(node, series_labels)
    if isinstance(node, Call):
        return _call_labels(node, series_labels)
    if isinstance(node, BinaryExpr):
        return _binary_labels(node, series_labels)
    return NO_LABELS  # number and string literals


def _aggregate_labels(node, series_labels: SeriesLabels) -> LabelSet:
    inner = result_labels(node.expr, series_labels)
    op = str(node.op)
    if op in ("topk", "bottomk", "limitk", "limit_ratio"):
        return inner  # these select series; grouping labels only scope the selection
    modifier = node.modifier
    if modifier is None:
        grouped = NO_LABELS
    elif modifier.type == promql_parser.AggModifierType.By:
        grouped = inner.only(modifier.labels)
    else:
        grouped = inner.without(*modifier.labels)
    if op == "count_values" and isinstance(node.param, StringLiteral):
        grouped = grouped.adding(node.param.val)
    return grouped


def _call_labels(node, series_labels: SeriesLabels) -> LabelSet:
    name = node.func.name
    if node.func.return_type == ValueType.Scalar or name in ("vector", "time"):
        return NO_LABELS
    if name in ("absent", "absent_over_time"):
        arg = unwrap(node.args[0]) if node.args else None
        if isinstance(arg, MatrixSelector):
            arg = arg.vector_selector
        return LabelSet(frozenset(equality_labels(arg))) if isinstance(arg, VectorSelector) else NO_LABELS
    vector_args = [a for a in node.args if not is_scalar(a)]
    if not vector_args:
        return NO_LABELS
    labels = result_labels(vector_args[0], series_labels)
    if name in ("histogram_quantile", "histogram_fraction"):
        return labels.without("le")
    if name in _LABEL_ADDING and len(node.args) > 1 and isinstance(node.args[1], StringLiteral):
        return labels.adding(node.args[1].val)
    return labels


def _binary_labels(node, series_labels: SeriesLabels) -> LabelSet:
    lhs_scalar, rhs_scalar = is_scalar(node.lhs), is_scalar(node.rhs)
    if lhs_scalar and rhs_scalar:
        return NO_LABELS
    if rhs_scalar:
        return result_labels(node.lhs, series_labels)
    if lhs_scalar:
        return result_labels(node.rhs, series_labels)
    left, right = result_labels(node.lhs, series_labels), result_labels(node.rhs, series_labels)
    op, modifier = str(node.op), node.modifier
    if op == "or":
        return left | right
    if op in SET_OPS:
        return left
    card = modifier.card if modifier is not None else VectorMatchCardinality.OneToOne
    matching = modifier.matching if modifier is not None else None
    if card == VectorMatchCardinality.ManyToOne:
        return left.adding(*modifier.group_labels)
    if card == VectorMatchCardinality.OneToMany:
        return right.adding(*modifier.group_labels)
    if matching is None:
        return left
    if matching.type == promql_parser.LabelModifierType.Include:  # on (...)
        return left.only(matching.labels)
    return left.without(*matching.labels)  # ignoring (...)
