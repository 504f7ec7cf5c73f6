"""Parsing PromQL offline (promql-parser) and reading what an expression uses.

Grafana variables are not PromQL: they are replaced by stand-ins of the right
kind before parsing (a duration for $__rate_interval, a string inside quotes,
a number elsewhere).
"""

from __future__ import annotations

import re

import promql_parser

DURATION_VARIABLES = {"__rate_interval", "__interval", "__range", "__auto"}
NUMBER_VARIABLES = {"__range_s", "__range_ms", "__interval_ms"}
# $name, ${name}, ${name:format}, [[name]]
_VARIABLE = re.compile(r"\$\{(\w+)(?::[\w-]+)?\}|\$(\w+)|\[\[(\w+)(?::[\w-]+)?\]\]")
# Synthetic series every Prometheus has, and ALERTS.
BUILTIN_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS", "ALERTS_FOR_STATE"}


class PromQLError(ValueError):
    pass


def substitute_variables(expr: str) -> str:
    out, quoted, i = [], None, 0
    while i < len(expr):
        char = expr[i]
        if quoted:
            if char == "\\":
                out.append(expr[i : i + 2])
                i += 2
                continue
            if char == quoted:
                quoted = None
        elif char in "\"'`":
            quoted = char
        match = _VARIABLE.match(expr, i) if char in "$[" else None
        if match:
            name = next(g for g in match.groups() if g)
            out.append(_stand_in(name, inside_string=quoted is not None))
            i = match.end()
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _stand_in(name: str, *, inside_string: bool) -> str:
    if inside_string:
        return ".*"
    if name in DURATION_VARIABLES:
        return "5m"
    if name in NUMBER_VARIABLES:
        return "3600"
    return "1"


def parse(expr: str):
    """The AST of an expression (with Grafana variables substituted)."""
    try:
        return promql_parser.parse(substitute_variables(expr))
    except ValueError as exc:
        raise PromQLError(str(exc).splitlines()[0]) from None


def selectors(ast) -> list:
    """Every VectorSelector in the expression, in order."""
    found = []

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(ast, visit)
    return found


def selector_name(node) -> str | None:
    if node.name:
        return node.name
    for matcher in node.matchers.matchers:
        if matcher.name == "__name__" and str(matcher.op).endswith("Equal") and "Not" not in str(matcher.op):
            return matcher.value
    return None


def metric_names(expr: str) -> set[str]:
    return {name for node in selectors(parse(expr)) if (name := selector_name(node))}
