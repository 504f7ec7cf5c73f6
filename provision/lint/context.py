"""What checks know besides the item in front of them: the metric contract, the
recorded series of the rule files being linted, the labels of any expression,
the scrape interval and the runbook anchors."""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path

from provision.contract import COUNTER, GAUGE, HISTOGRAM, JOB, LE, Metric
from provision.lint.artifacts import Artifacts, Rule
from provision.lint.settings import LintSettings
from provision.promql_ast import (
    BUILTIN_SERIES,
    UNKNOWN_LABELS,
    LabelSet,
    result_labels,
    selector_name,
    selectors,
)

INSTANCE = "instance"
COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")
SCRAPE_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
ALERT_SERIES = {"ALERTS", "ALERTS_FOR_STATE"}


class LintContext:
    def __init__(self, settings: LintSettings, artifacts: Artifacts, reference: Artifacts | None = None):
        """`reference` holds rules that define series without being linted (the project's own)."""
        self.settings = settings
        self.profile = settings.profile
        self.recorded: dict[str, list[Rule]] = {}
        for rule in [*artifacts.rules, *(reference.rules if reference else [])]:
            if rule.kind == "record":
                self.recorded.setdefault(rule.name, []).append(rule)
        self._recorded_labels: dict[str, LabelSet] = {}

    # -- the metric contract --------------------------------------------------

    @cached_property
    def raw_series(self) -> set[str]:
        return self.profile.series_names()

    def raw_metric(self, name: str) -> Metric | None:
        """The profile's metric family of a raw series name (None for names the profile lacks)."""
        return self.profile.metric(name) if name in self.raw_series else None

    def is_counter(self, name: str) -> bool:
        metric = self.raw_metric(name)
        if metric is not None:
            return metric.type in (COUNTER, HISTOGRAM)
        if ":" in name or name in BUILTIN_SERIES or name in self.recorded:
            return False
        return name.endswith(COUNTER_SUFFIXES)

    def gauge_reason(self, name: str) -> str | None:
        """Why `name` is not a counter one may take the rate of, or None when it may be one."""
        metric = self.raw_metric(name)
        if metric is not None and metric.type == GAUGE:
            return f"{name} is a gauge in the {self.profile.name} profile"
        if name in self.recorded:
            return f"{name} is a recorded series (record the rate of the raw counter instead)"
        if name in BUILTIN_SERIES:
            return f"{name} is a gauge Prometheus synthesises"
        return None

    def is_constant(self, name: str) -> bool:
        """A recorded series computed from no series at all (a price table, a threshold): config, not traffic."""
        rules = self.recorded.get(name, [])
        return bool(rules) and all(rule.expr.ast is not None and not selectors(rule.expr.ast) for rule in rules)

    # -- labels ---------------------------------------------------------------

    def series_labels(self, selector) -> LabelSet:
        name = selector_name(selector)
        if name is None:
            return UNKNOWN_LABELS
        metric = self.raw_metric(name)
        if metric is not None:
            extra = {LE} if metric.type == HISTOGRAM and name.endswith("_bucket") else set()
            # Scraped series also carry the target's labels, which the contract cannot know.
            return LabelSet(frozenset({*metric.labels, JOB, INSTANCE, *extra}), open=True)
        if name in self.recorded:
            return self._labels_of_recorded(name)
        if name in SCRAPE_SERIES:
            return LabelSet(frozenset({JOB, INSTANCE}), open=True)
        if name in ALERT_SERIES:
            return LabelSet(frozenset({"alertname", "alertstate"}), open=True)
        return UNKNOWN_LABELS

    def labels_of(self, ast) -> LabelSet:
        """The labels an expression's result keeps."""
        return result_labels(ast, self.series_labels)

    def _labels_of_recorded(self, name: str) -> LabelSet:
        if name not in self._recorded_labels:
            self._recorded_labels[name] = UNKNOWN_LABELS  # a cycle reads as unknown, not as a crash
            labels = LabelSet()
            for rule in self.recorded[name]:
                found = self.labels_of(rule.expr.ast) if rule.expr.ast is not None else UNKNOWN_LABELS
                labels = labels | found.adding(*rule.labels)
            self._recorded_labels[name] = labels
        return self._recorded_labels[name]

    # -- runbooks -------------------------------------------------------------

    @cached_property
    def runbook_anchors(self) -> set[str] | None:
        """Anchors of the runbooks document, or None when it does not exist."""
        path = self.settings.runbooks
        if not isinstance(path, Path) or not path.is_file():
            return None
        return markdown_anchors(path.read_text(encoding="utf-8"))


_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_HTML_ANCHOR = re.compile(r"""<a\s+(?:id|name)=["']([^"']+)["']""")
_FENCE = re.compile(r"^\s*(```|~~~)")


def markdown_anchors(text: str) -> set[str]:
    """The anchors GitHub and most renderers give a Markdown document's headings, plus explicit ones."""
    anchors: set[str] = set(_HTML_ANCHOR.findall(text))
    seen: dict[str, int] = {}
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if not match:
            continue
        slug = heading_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def heading_slug(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text only
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")
