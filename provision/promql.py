"""Small PromQL string builders shared by recording rules, panels and alerts.

They only assemble text; the contract decides the names. Output is stable
(fixed label order, fixed number formatting) so the build is deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from provision.contract import Matcher, Selection, quote

COMPARISONS = (">", ">=", "<", "<=", "==", "!=")
REGEX_SPECIAL = set("\\.+*?()|[]{}^$")
_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w|y)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000,
                 "y": 31_536_000_000}


def number(value: float) -> str:
    """Shortest exact PromQL literal for a number: 5 not 5.0, 8e-06 not 0.000008."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def selector(series: str, matchers: Iterable[Matcher] = ()) -> str:
    rendered = ", ".join(m.render() for m in matchers)
    return f"{series}{{{rendered}}}" if rendered else series


def select(selection: Selection, extra: Iterable[Matcher] = (), suffix: str = "") -> str:
    """The selector of a role's series narrowed by `extra` matchers.

    A selection summing several series selects them by a `__name__` regex.
    """
    matchers = (*selection.matchers, *extra)
    if not selection.plus:
        return selector(selection.series + suffix, matchers)
    names = "|".join(name + suffix for name in selection.names())
    return "{" + ", ".join(m.render() for m in (Matcher("__name__", "=~", names), *matchers)) + "}"


def regex_escape(value: str) -> str:
    """A literal value inside a PromQL (RE2) regex."""
    return "".join("\\" + char if char in REGEX_SPECIAL else char for char in value)


def any_of(values: Iterable[str]) -> str:
    """A regex matching exactly one of `values`."""
    return "|".join(regex_escape(v) for v in values)


def duration_seconds(duration: str) -> int:
    """Seconds in a Prometheus duration such as 5m or 1h30m."""
    parts = _DURATION_PART.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return sum(int(n) * _UNIT_MS[u] for n, u in parts) // 1000


def duration(seconds: int) -> str:
    """A Prometheus duration for whole seconds, in the largest unit that divides it: 600 -> 10m."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def rate(expr: str, window: str) -> str:
    return f"rate({expr}[{window}])"


def aggregate(op: str, by: Sequence[str], expr: str) -> str:
    if not by:
        return f"{op}({expr})"
    return f"{op} by ({', '.join(by)}) ({expr})"


def sum_by(by: Sequence[str], expr: str) -> str:
    return aggregate("sum", by, expr)


def copy_label(expr: str, dst: str, src: str) -> str:
    """Give every series a `dst` label holding its `src` label's value."""
    return f'label_replace({expr}, "{dst}", "$1", "{src}", "(.*)")'


def rename_labels(expr: str, renames: dict[str, str]) -> str:
    """Copy raw labels to canonical names (canonical -> raw), in a stable order."""
    for dst, src in sorted(renames.items()):
        expr = copy_label(expr, dst, src)
    return expr


def status_class(expr: str, status_label: str, dst: str = "status_class", absent: str | None = None) -> str:
    """Add a `dst` label: 2xx/4xx/5xx for HTTP codes, the status itself otherwise.

    `absent` names the class of series without a status label (OTel marks only failures).
    """
    expr = copy_label(expr, dst, status_label)
    if absent is not None:
        expr = f'label_replace({expr}, "{dst}", {quote(absent)}, "{status_label}", "")'
    return f'label_replace({expr}, "{dst}", "${{1}}xx", "{status_label}", "([0-9])[0-9][0-9]")'


def histogram_quantile(quantile: float, expr: str) -> str:
    return f"histogram_quantile({number(quantile)}, {expr})"


def ratio(numerator: str, denominator: str) -> str:
    return f"{paren(numerator)} / {paren(denominator)}"


def compare(expr: str, op: str, threshold: float) -> str:
    if op not in COMPARISONS:
        raise ValueError(f"unknown comparison {op!r}")
    return f"{paren(expr)} {op} {number(threshold)}"


def paren(expr: str) -> str:
    """Wrap an expression in parentheses unless it is already a single term."""
    if _is_single_term(expr):
        return expr
    return f"({expr})"


def _is_single_term(expr: str) -> bool:
    depth, quoted, escaped = 0, False, False
    for char in expr:
        if quoted:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char in "({[":
            depth += 1
        elif char in ")}]":
            depth -= 1
        elif char == " " and depth == 0:
            return False
    return True
