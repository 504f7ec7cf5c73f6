"""Run every registered check over a set of artifacts and collect the findings.

Findings come out in a stable order (artifact, then position in it, then check)
so the output of two runs over the same files is identical. Silenced findings
stay in the report, marked with their reason, but do not count as errors.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

from provision.lint.artifacts import Artifacts
from provision.lint.context import LintContext
from provision.lint.registry import (
    ALERT,
    ALL_RULES,
    CHECKS,
    DASHBOARD,
    ERROR,
    EXPRESSION,
    PANEL,
    RECORDING,
    RULE_FILE,
    TARGET,
    WARNING,
    Hit,
)
from provision.lint.settings import LintSettings, Silence


@dataclass(frozen=True)
class Finding:
    check: str
    severity: str
    artifact: str
    location: str
    message: str
    line: int | None = None
    silenced: str | None = None  # the reason of the silence that covers it

    def __str__(self) -> str:
        where = f"{self.artifact}:{self.line}" if self.line else self.artifact
        return f"{where}: {self.location}: {self.check}: {self.message} [{self.severity}]"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["silenced"] = self.silenced is not None
        data["reason"] = self.silenced
        return data


@dataclass
class LintReport:
    findings: list[Finding]
    artifacts: int
    unused_silences: list[Silence]

    def _active(self, severity: str) -> list[Finding]:
        return [f for f in self.findings if f.severity == severity and f.silenced is None]

    @property
    def errors(self) -> list[Finding]:
        return self._active(ERROR)

    @property
    def warnings(self) -> list[Finding]:
        return self._active(WARNING)

    @property
    def silenced(self) -> list[Finding]:
        return [f for f in self.findings if f.silenced is not None]

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        return (f"linted {self.artifacts} artifacts: {len(self.errors)} errors, {len(self.warnings)} warnings, "
                f"{len(self.silenced)} silenced")

    def to_json(self) -> dict:
        return {
            "artifacts": self.artifacts,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "silenced": len(self.silenced),
            "findings": [f.to_dict() for f in self.findings],
            "unused_silences": [str(s) for s in self.unused_silences],
        }

    def json_text(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True)


def run_checks(artifacts: Artifacts, settings: LintSettings, reference: Artifacts | None = None) -> LintReport:
    ctx = LintContext(settings, artifacts, reference)
    items = _items_by_scope(artifacts)
    order = _positions(artifacts)
    found: list[tuple[tuple, Finding]] = []
    for rank, check in enumerate(CHECKS.values()):
        for item in items[check.scope]:
            if check.parsed and item.expr.ast is None:
                continue
            for hit in check.run(item, ctx):
                hit = hit if isinstance(hit, Hit) else Hit(hit)
                subject = hit.item if hit.item is not None else item
                location = f"{subject.location} {hit.where}" if hit.where else subject.location
                line = hit.line or subject.line
                finding = Finding(check.id, check.severity, subject.artifact, location, hit.message, line)
                found.append(((order[id(subject)], rank), finding))
    # The same mistake twice in one query (two selectors of one metric) is reported once.
    findings = list(dict.fromkeys(finding for _, finding in sorted(found, key=lambda pair: pair[0])))
    findings, unused = _apply_silences(findings, settings.silences, artifacts.names)
    return LintReport(findings, artifacts.count, unused)


def _items_by_scope(artifacts: Artifacts) -> dict[str, list]:
    rules = artifacts.rules
    return {
        DASHBOARD: artifacts.dashboards,
        PANEL: artifacts.panels,
        TARGET: artifacts.targets,
        EXPRESSION: [*artifacts.targets, *rules],
        RULE_FILE: artifacts.rule_files,
        ALERT: [r for r in rules if r.kind == "alert"],
        RECORDING: [r for r in rules if r.kind == "record"],
        ALL_RULES: [artifacts] if rules else [],
    }


def _positions(artifacts: Artifacts) -> dict[int, tuple[int, int]]:
    """Each item's (artifact rank, position in the artifact), for a stable, readable order."""
    order: dict[int, tuple[int, int]] = {}
    for rank, dashboard in enumerate(artifacts.dashboards):
        order[id(dashboard)] = (rank, 0)
        targets: dict[int, list] = {}
        for target in dashboard.targets:
            targets.setdefault(id(target.panel), []).append(target)
        for panel in dashboard.panels:
            order[id(panel)] = (rank, len(order))
            for target in targets.get(id(panel), []):
                order[id(target)] = (rank, len(order))
    offset = len(artifacts.dashboards)
    for rank, rule_file in enumerate(artifacts.rule_files, start=offset):
        order[id(rule_file)] = (rank, 0)
        for position, rule in enumerate(rule_file.rules, start=1):
            order[id(rule)] = (rank, position)
    return order


def _apply_silences(
    findings: list[Finding], silences: tuple[Silence, ...], linted: list[str]
) -> tuple[list[Finding], list[Silence]]:
    """Mark silenced findings; also return the silences that cover a linted artifact yet matched nothing
    (stale: the problem was fixed). Silences for artifacts not linted this time are not reported."""
    used: set[int] = set()
    out = []
    for finding in findings:
        silence = next((s for s in silences if s.matches(finding.check, finding.artifact, finding.location)), None)
        if silence is not None:
            used.add(silence.index)
            finding = replace(finding, silenced=silence.reason)
        out.append(finding)
    stale = [s for s in silences if s.index not in used and any(s.covers(name) for name in linted)]
    return out, stale
