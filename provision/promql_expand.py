"""Inline recording rules: replace every recorded series an expression reads by
the expression that records it, recursively.

Grafana-managed alert rules query the datasource themselves; they cannot read a
recorded series unless Prometheus (or a ruler) also evaluates that recording
rule. Inlining makes each Grafana alert self-contained, so it fires on the same
data whether or not the recording rules are deployed.

What is exact and what is not:

- `name` becomes `(expr)`; static labels of the rule are set with
  `label_replace`, and several rules recording the same name (told apart by
  static labels) become `(a) or (b)`. A matcher on a static label is decided
  here: the rules it excludes are left out.
- A matcher on any other label filters the expansion with the same semantics
  as a selector matcher: `=` / `!=` as `and on (label)` / `unless on (label)`
  against a one-series vector holding the value; `=~` / `!~` by marking the
  series whose label matches (label_replace anchors its regex like a matcher
  does) and keeping or dropping the marked ones.
- `name offset d` pushes the offset into every selector and subquery of the
  expansion, which is what evaluating it `d` earlier means.
- `name[range]` becomes the subquery `(expr)[range:step]` with the interval of
  the rule's group as step. Prometheus stores recorded samples at the group's
  evaluation times; the subquery samples at multiples of the step. With equal
  spacing the windows hold the same number of samples, shifted by the group's
  evaluation offset (less than one interval).
- `timestamp(name)` and `absent(name{label="v"})` read a selector's sample
  time and equality matchers; on an inlined expression they see the evaluation
  time and no matchers. Both are reported as notes.
- `@` on a recorded series and a recorded name selected through a `__name__`
  regex are refused: there is no faithful inline form.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import promql_parser as pp

from provision.contract import quote
from provision.promql_ast import PromQLError, selector_name
from provision.rules import RecordingRule, RuleGroup

# A label name no gateway exports; it only lives inside one filter step.
MARK = "__relaywatch_match__"
_LOOKS_AT_SELECTOR = {"timestamp", "absent", "absent_over_time"}


class ExpansionError(ValueError):
    """An expression whose recorded series cannot be inlined faithfully."""


@dataclass(frozen=True)
class Definition:
    """One recording rule for a name: its expression, static labels and group interval."""

    expr: str
    labels: Mapping[str, str]
    interval: timedelta


@dataclass
class Expander:
    definitions: dict[str, list[Definition]]
    notes: list[str] = field(default_factory=list)
    _cache: dict[str, pp.Expr] = field(default_factory=dict)

    @classmethod
    def from_groups(cls, groups: Iterable[RuleGroup], default_interval: str) -> "Expander":
        definitions: dict[str, list[Definition]] = {}
        for group in groups:
            interval = pp.parse_duration(group.interval or default_interval)
            for rule in group.rules:
                if isinstance(rule, RecordingRule) and rule.query.expr is not None:
                    definitions.setdefault(rule.record, []).append(Definition(rule.query.expr, rule.labels, interval))
        return cls(definitions)

    def expand(self, expr: str) -> str:
        """The expression with every recorded series inlined, prettified."""
        return self._expand(_parse(expr), ()).prettify()

    # -- recursion ---------------------------------------------------------

    def _expand(self, ast: pp.Expr, stack: tuple[str, ...]) -> pp.Expr:
        def pre_visit(node):
            if isinstance(node, pp.Call) and node.func.name in _LOOKS_AT_SELECTOR:
                self._note_selector_functions(node)
            if isinstance(node, pp.MatrixSelector):
                name = self._recorded(node.vector_selector)
                if name:
                    return self._range(node, name, stack)
            elif isinstance(node, pp.VectorSelector):
                name = self._recorded(node)
                if name:
                    return self._instant(node, name, stack)
            return None

        return pp.transform(ast, pre_visit)

    def _recorded(self, selector: pp.VectorSelector) -> str | None:
        name = selector_name(selector)
        if name is None:
            for m in selector.matchers.matchers:
                if m.name == "__name__" and any(_matches(m, n) for n in self.definitions):
                    raise ExpansionError(f"{selector}: a __name__ matcher that selects recorded series "
                                         "cannot be inlined")
            return None
        return name if name in self.definitions else None

    def _instant(self, selector: pp.VectorSelector, name: str, stack: tuple[str, ...]) -> pp.Expr:
        if selector.at is not None:
            raise ExpansionError(f"{name}: the @ modifier on a recorded series cannot be inlined")
        expanded = self._reference(name, _label_matchers(selector), stack)
        if selector.offset:
            expanded = _shift(expanded, selector.offset)
        return _parse(f"({expanded.prettify()})")

    def _range(self, matrix: pp.MatrixSelector, name: str, stack: tuple[str, ...]) -> pp.Expr:
        selector = matrix.vector_selector
        if selector.at is not None:
            raise ExpansionError(f"{name}: the @ modifier on a recorded series cannot be inlined")
        step = min(d.interval for d in self.definitions[name])
        expanded = self._reference(name, _label_matchers(selector), stack)
        text = f"({expanded.prettify()})[{pp.display_duration(matrix.range)}:{pp.display_duration(step)}]"
        note = (f"{name}[{pp.display_duration(matrix.range)}] is read as a subquery at its group interval "
                f"({pp.display_duration(step)}): the same samples up to the group's evaluation offset")
        if note not in self.notes:
            self.notes.append(note)
        return _parse(text + _offset_text(selector.offset))

    def _reference(self, name: str, matchers: list[pp.Matcher], stack: tuple[str, ...]) -> pp.Expr:
        """`name{matchers}` as one expression: the union of its rules, filtered."""
        if name in stack:
            raise ExpansionError(f"recording rule {name} refers to itself ({' -> '.join((*stack, name))})")
        parts = []
        for definition in self.definitions[name]:
            remaining, selected = [], True
            for m in matchers:
                if m.name in definition.labels:
                    selected = selected and _matches(m, definition.labels[m.name])
                else:
                    remaining.append(m)
            if selected:
                parts.append(_filtered(_with_labels(self._definition(name, definition, stack), definition.labels),
                                       remaining))
        if not parts:
            # The matchers exclude every rule recording this name: the selector is empty.
            return _parse("vector(0) < 0")
        return _parse(" or ".join(f"({p})" for p in parts) if len(parts) > 1 else parts[0])

    def _definition(self, name: str, definition: Definition, stack: tuple[str, ...]) -> str:
        key = f"{name}\0{definition.expr}"
        if key not in self._cache:
            self._cache[key] = self._expand(_parse(definition.expr), (*stack, name))
        return self._cache[key].prettify()

    def _note_selector_functions(self, call: pp.Call) -> None:
        for arg in call.args:
            selector = arg.vector_selector if isinstance(arg, pp.MatrixSelector) else arg
            if isinstance(selector, pp.VectorSelector) and self._recorded(selector):
                note = (f"{call.func.name}() of the recorded series {selector_name(selector)} sees the inlined "
                        "expression, not a selector: sample timestamps and matcher labels are not carried over")
                if note not in self.notes:
                    self.notes.append(note)


# -- building blocks -----------------------------------------------------------


def _parse(text: str) -> pp.Expr:
    try:
        return pp.parse(text)
    except ValueError as exc:
        raise PromQLError(f"{str(exc).splitlines()[0]} in {text!r}") from None


def _label_matchers(selector: pp.VectorSelector) -> list[pp.Matcher]:
    return [m for m in selector.matchers.matchers if m.name != "__name__"]


def _matches(matcher: pp.Matcher, value: str) -> bool:
    op = matcher.op
    if op == pp.MatchOp.Equal:
        return value == matcher.value
    if op == pp.MatchOp.NotEqual:
        return value != matcher.value
    found = re.fullmatch(matcher.value, value) is not None
    return found if op == pp.MatchOp.Re else not found


def _with_labels(expr: str, labels: Mapping[str, str]) -> str:
    """Set a recording rule's static labels, as the rule does on its output."""
    for name, value in sorted(labels.items()):
        expr = f"label_replace({expr}, {quote(name)}, {quote(value.replace('$', '$$'))}, \"\", \"\")"
    return expr


def _one_series(label: str, value: str) -> str:
    """A single series {label="value"} with value 1."""
    return f"label_replace(vector(1), {quote(label)}, {quote(value.replace('$', '$$'))}, \"\", \"\")"


def _filtered(expr: str, matchers: list[pp.Matcher]) -> str:
    """Keep the series of `expr` that a selector with `matchers` would keep."""
    for m in matchers:
        if m.op in (pp.MatchOp.Equal, pp.MatchOp.NotEqual):
            keep = "and" if m.op == pp.MatchOp.Equal else "unless"
            expr = f"({expr}) {keep} on ({m.name}) {_one_series(m.name, m.value)}"
        else:
            keep = "and" if m.op == pp.MatchOp.Re else "unless"
            marked = f'label_replace({expr}, "{MARK}", "1", {quote(m.name)}, {quote(m.value)})'
            kept = f"({marked}) {keep} on ({MARK}) {_one_series(MARK, '1')}"
            expr = f'label_replace({kept}, "{MARK}", "", "", "")'
    return expr


def _shift(ast: pp.Expr, offset: timedelta) -> pp.Expr:
    """Evaluate `ast` `offset` earlier: add the offset to its outermost selectors and subqueries.

    Selectors inside a range selector or subquery are evaluated relative to it,
    so only the outermost ones move.
    """
    depth = 0

    def pre_visit(node):
        nonlocal depth
        if isinstance(node, (pp.MatrixSelector, pp.SubqueryExpr)):
            depth += 1

    def post_visit(node):
        nonlocal depth
        if isinstance(node, (pp.MatrixSelector, pp.SubqueryExpr)):
            depth -= 1
            if depth == 0:
                return _parse(_shifted_text(node, offset))
        elif isinstance(node, pp.VectorSelector) and depth == 0:
            return _parse(_shifted_text(node, offset))
        return None

    return pp.transform(ast, pre_visit, post_visit)


def _shifted_text(node, offset: timedelta) -> str:
    if isinstance(node, pp.VectorSelector):
        total = (node.offset or timedelta()) + offset
        return f"{node.name or ''}{node.matchers}{_offset_text(total)}{_at_text(node.at)}"
    if isinstance(node, pp.MatrixSelector):
        vs = node.vector_selector
        total = (vs.offset or timedelta()) + offset
        return f"{vs.name or ''}{vs.matchers}[{pp.display_duration(node.range)}]{_offset_text(total)}{_at_text(vs.at)}"
    step = pp.display_duration(node.step) if node.step else ""
    total = (node.offset or timedelta()) + offset
    return f"({node.expr.prettify()})[{pp.display_duration(node.range)}:{step}]{_offset_text(total)}{_at_text(node.at)}"


def _offset_text(offset: timedelta | None) -> str:
    if not offset:
        return ""
    if offset < timedelta():
        return f" offset -{pp.display_duration(-offset)}"
    return f" offset {pp.display_duration(offset)}"


def _at_text(at) -> str:
    if at is None:
        return ""
    if at.type == pp.AtModifierType.Start:
        return " @ start()"
    if at.type == pp.AtModifierType.End:
        return " @ end()"
    return f" @ {at.at.timestamp():.3f}"
