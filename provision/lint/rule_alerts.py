"""Alerting rules: names, severity, annotations that help the person paged, and
expressions that fire only when something is wrong."""

from __future__ import annotations

import re
from pathlib import Path

import promql_parser
from promql_parser import AggregateExpr, BinaryExpr, Call, SubqueryExpr

from provision.lint.artifacts import Rule, RuleFile
from provision.lint.registry import ALERT, ERROR, RULE_FILE, WARNING, Hit, check
from provision.promql_ast import SET_OPS, calls, children, is_comparison, is_scalar, unwrap

CAMEL_CASE = re.compile(r"^[A-Z][A-Za-z0-9]*$")
TEMPLATE = "{{"
# $labels.x, .Labels.x, index $labels "x"
LABEL_REFERENCE = re.compile(r"""\$labels\.(\w+)|\.Labels\.(\w+)|index\s+\$labels\s+"([^"]+)\"""")
ABSENT = {"absent", "absent_over_time"}


@check("rule-file-structure", ERROR, RULE_FILE, "The rule file has the shape Prometheus loads.")
def rule_file_structure(rule_file: RuleFile, ctx):
    for message, line in rule_file.problems:
        yield Hit(message, line=line)


@check("alert-name-camelcase", WARNING, ALERT, "Alert names are CamelCase, like LLMGatewayErrorRatioHigh.")
def alert_name_camelcase(rule: Rule, ctx):
    if not CAMEL_CASE.match(rule.name):
        yield f"alert name {rule.name!r} is not CamelCase (letters and digits, starting with a capital)"


@check("alert-severity-label", ERROR, ALERT, "Every alert has a severity label from the allowed set.")
def alert_severity_label(rule: Rule, ctx):
    allowed = ctx.settings.alert_severities
    severity = rule.labels.get("severity")
    if severity is None:
        yield f"no severity label: add one of {', '.join(allowed)} so routing can tell a page from a ticket"
    elif TEMPLATE not in severity and severity not in allowed:
        yield f"severity {severity!r} is not one of {', '.join(allowed)}"


@check("alert-summary-static", ERROR, ALERT,
       "Every alert has a summary annotation without templates, so notifications group and read alike.")
def alert_summary_static(rule: Rule, ctx):
    summary = rule.annotations.get("summary")
    if not summary or not summary.strip():
        yield "no summary annotation: add one static sentence saying what is wrong"
    elif TEMPLATE in summary:
        yield "the summary is templated; keep it static and put the series and values in the description"


@check("alert-summary-sentence", WARNING, ALERT,
       "The summary is one sentence: a capital letter first, a full stop last.")
def alert_summary_sentence(rule: Rule, ctx):
    summary = (rule.annotations.get("summary") or "").strip()
    if summary and TEMPLATE not in summary and not (summary[0].isupper() and summary[-1] in ".!?"):
        yield f"summary {summary!r} is not a sentence: start with a capital letter and end with a full stop"


@check("alert-description-templated", ERROR, ALERT,
       "Every alert has a description templated with the labels and value that fired.")
def alert_description_templated(rule: Rule, ctx):
    description = rule.annotations.get("description")
    if not description or not description.strip():
        yield "no description annotation: say which series fired, its value and what it means"
    elif TEMPLATE not in description and not _is_absent_alert(rule):
        yield "the description is not templated: name the series and value that fired ({{ $labels.x }}, {{ $value }})"


def _is_absent_alert(rule: Rule) -> bool:
    """absent() results carry at most the selector's fixed labels: there is nothing to template."""
    return rule.expr.ast is not None and bool(calls(rule.expr.ast, ABSENT))


@check("alert-runbook-url", ERROR, ALERT,
       "Every alert has a runbook_url; one into the project's runbooks points at an existing heading.")
def alert_runbook_url(rule: Rule, ctx):
    url = (rule.annotations.get("runbook_url") or "").strip()
    if not url:
        yield "no runbook_url annotation: link the runbook section saying what to do"
        return
    if not re.match(r"^(https?://|/)", url):
        yield f"runbook_url {url!r} is not an http(s) URL or an absolute path"
        return
    runbooks: Path | None = ctx.settings.runbooks
    base, _, anchor = url.partition("#")
    if runbooks is None or not _points_at(base, runbooks, ctx.settings.runbook_base_url):
        return
    anchors = ctx.runbook_anchors
    if anchors is None:
        yield f"runbook_url points at {runbooks.name}, but {_display(runbooks)} does not exist"
    elif not anchor:
        yield f"runbook_url points at {runbooks.name} without a #section"
    elif anchor not in anchors:
        yield f"runbook_url anchor #{anchor} is not a heading of {_display(runbooks)}"


def _points_at(base: str, runbooks: Path, base_url: str | None) -> bool:
    """Whether a runbook URL is the project's runbooks document: the configured base URL, or a
    site-relative path to a file of that name. Other sites' runbooks.md are not ours to check."""
    if base_url and base == base_url.partition("#")[0]:
        return True
    return base.startswith("/") and base.endswith("/" + runbooks.name)


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@check("alert-annotation-labels", ERROR, ALERT,
       "Annotation and label templates use only labels the alert expression's result keeps.", parsed=True)
def alert_annotation_labels(rule: Rule, ctx):
    labels = ctx.labels_of(rule.expr.ast)
    kept = ", ".join(sorted(labels.known)) or "no labels"
    for kind, values in (("annotation", rule.annotations), ("label", rule.labels)):
        for key, text in sorted(values.items()):
            for label in dict.fromkeys(next(g for g in m if g) for m in LABEL_REFERENCE.findall(text)):
                if not labels.may_have(label):
                    yield Hit(f"$labels.{label} is not a label of the expression's result (it keeps {kept}); "
                              "it renders empty", where=f"{kind} {key}")


@check("alert-absent-for", ERROR, ALERT,
       "An alert on absent() waits with `for`, so a restart or a slow scrape does not page.")
def alert_absent_for(rule: Rule, ctx):
    if not _is_absent_alert(rule):
        return
    if not _waits(rule.data.get("for")):
        yield "absent() fires on the first evaluation without series; add `for:` (e.g. 5m or more)"


def _waits(duration) -> bool:
    if duration is None or re.fullmatch(r"(0+(ms|s|m|h|d|w|y)?)+", str(duration).strip()):
        return False
    try:
        return promql_parser.parse_duration(str(duration).strip()).total_seconds() > 0
    except ValueError:
        return True  # a malformed duration is promtool's to report


@check("alert-comparison", ERROR, ALERT,
       "An alert expression compares against a threshold (or uses absent()); otherwise it fires on every series.",
       parsed=True)
def alert_comparison(rule: Rule, ctx):
    if has_condition(rule.expr.ast):
        return
    top = unwrap(rule.expr.ast)
    if isinstance(top, BinaryExpr) and top.modifier is not None and top.modifier.return_bool:
        yield "the comparison uses `bool`, which returns every series (as 0 or 1), so the alert always fires"
    else:
        yield "no comparison: the alert fires for every series the expression returns; compare it to a threshold"


def has_condition(node) -> bool:
    """Whether an expression returns series only when a condition holds."""
    node = unwrap(node)
    if is_comparison(node):
        return True
    if isinstance(node, BinaryExpr):
        op = str(node.op)
        if op == "or":
            return has_condition(node.lhs) and has_condition(node.rhs)
        if op in SET_OPS or not (is_scalar(node.lhs) or is_scalar(node.rhs)):
            return has_condition(node.lhs) or has_condition(node.rhs)
        return has_condition(node.rhs if is_scalar(node.lhs) else node.lhs)
    if isinstance(node, Call) and node.func.name in ABSENT:
        return True
    if isinstance(node, (Call, AggregateExpr, SubqueryExpr)):
        return any(has_condition(child) for child in children(node))
    return False
