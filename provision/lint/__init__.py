"""`provision lint`: the checks Grafana and Prometheus users expect, over built or foreign artifacts.

One module per check family registers its checks (see registry.py and
docs/lint.md); the runner applies all of them to a set of artifacts:

    report = lint_build(Path("build"), LintSettings.from_config(config, profile))
    report = lint_paths([Path("exported.json")], settings)
"""

from __future__ import annotations

from pathlib import Path

# Importing the check modules registers their checks; findings on one item follow this order.
from provision.lint import dashboard_structure  # noqa: F401  (isort: skip)
from provision.lint import dashboard_variables  # noqa: F401  (isort: skip)
from provision.lint import dashboard_queries  # noqa: F401  (isort: skip)
from provision.lint import queries  # noqa: F401  (isort: skip)
from provision.lint import rule_alerts  # noqa: F401  (isort: skip)
from provision.lint import rule_recording  # noqa: F401  (isort: skip)
from provision.lint.artifacts import Artifacts, LintInputError, load_build, load_paths
from provision.lint.registry import CHECKS, ERROR, WARNING, Check
from provision.lint.runner import Finding, LintReport, run_checks
from provision.lint.settings import LintSettings, Silence
from provision.rules import RuleGroup, render_group

PROJECT_RECORDINGS = "(relaywatch recording rules)"

__all__ = [
    "CHECKS", "ERROR", "WARNING", "Artifacts", "Check", "Finding", "LintInputError", "LintReport",
    "LintSettings", "Silence", "lint_artifacts", "lint_build", "lint_paths", "project_recordings",
]


def lint_artifacts(artifacts: Artifacts, settings: LintSettings) -> LintReport:
    return run_checks(artifacts, settings)


def lint_build(out_dir: Path, settings: LintSettings) -> LintReport:
    """Lint build/dashboards/*.json and build/rules/*.yaml together."""
    return run_checks(load_build(out_dir), settings)


def lint_paths(paths: list[Path], settings: LintSettings, reference: Artifacts | None = None) -> LintReport:
    """Lint dashboards and rule files made elsewhere. Rule files given together define recorded
    series for all; `reference` (see project_recordings) defines more without being linted."""
    return run_checks(load_paths(paths), settings, reference)


def project_recordings(groups: list[RuleGroup]) -> Artifacts:
    """The project's own recording rules as reference artifacts, so that a dashboard pulled back
    from Grafana may read the series they record."""
    rendered = [render_group(g.without_unavailable(), runbook_base_url="", extra_labels={}) for g in groups]
    reference = Artifacts()
    reference.add(PROJECT_RECORDINGS, {"groups": rendered})
    return reference
