"""Lint settings from relaywatch.yaml: profile, scrape interval, runbooks, silences.

`lint.silence` entries are checked twice: their shape by the config schema
(check, artifact and a non-empty reason are required), their check ids here,
against the registry, so a typo cannot silence nothing without anyone noticing.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path, PurePosixPath

import promql_parser

from provision.config import DEFAULTS, Config, ConfigError
from provision.contract import Profile
from provision.lint.registry import CHECKS
from provision.rules import SEVERITIES

DEFAULT_SCRAPE_INTERVAL = timedelta(seconds=15)


@dataclass(frozen=True)
class Silence:
    """Mutes one check for the artifacts matching `artifact`, with a written reason."""

    index: int
    check: str
    artifact: str
    reason: str
    location: str | None = None

    def matches(self, check: str, artifact: str, location: str) -> bool:
        return (check == self.check and self.covers(artifact)
                and (self.location is None or fnmatch.fnmatchcase(location, self.location)))

    def covers(self, artifact: str) -> bool:
        """Whether `artifact` matches the glob by its path, its file name or its name without extension."""
        path = PurePosixPath(artifact)
        return any(fnmatch.fnmatchcase(name, self.artifact) for name in (artifact, path.name, path.stem))

    def __str__(self) -> str:
        return f"lint.silence[{self.index}] ({self.check} on {self.artifact})"


@dataclass(frozen=True)
class LintSettings:
    profile: Profile
    scrape_interval: timedelta = DEFAULT_SCRAPE_INTERVAL
    alert_severities: tuple[str, ...] = SEVERITIES
    runbooks: Path | None = None  # the runbooks document runbook_url anchors must exist in
    runbook_base_url: str | None = None
    silences: tuple[Silence, ...] = ()

    @classmethod
    def from_config(cls, config: Config, profile: Profile) -> "LintSettings":
        section = config.data.get("lint") or {}
        return cls(
            profile=profile,
            scrape_interval=_scrape_interval(config),
            alert_severities=tuple(section.get("alert_severities") or SEVERITIES),
            runbooks=runbooks_document(config),
            runbook_base_url=config.alerts.get("runbook_base_url"),
            silences=silences(section.get("silence") or [], config.name()),
        )


def _scrape_interval(config: Config) -> timedelta:
    value = config.data.get("scrape_interval") or "15s"
    try:
        return promql_parser.parse_duration(value)
    except ValueError as exc:  # the schema admits 0s, which no Prometheus scrapes at
        raise ConfigError([f"{config.name()}: scrape_interval: {value!r}: {exc}"]) from None


def silences(entries: list[dict], source: str) -> tuple[Silence, ...]:
    problems, found = [], []
    for index, entry in enumerate(entries):
        if entry["check"] not in CHECKS:
            problems.append(f"{source}: lint.silence[{index}].check: unknown check {entry['check']!r} "
                            "(the checks are listed in docs/lint.md and by `provision lint --list`)")
            continue
        found.append(Silence(index, entry["check"], entry["artifact"], entry["reason"].strip(), entry.get("location")))
    if problems:
        raise ConfigError(problems)
    return tuple(found)


# relaywatch's own runbooks, which the default runbook_base_url points at.
BUNDLED_RUNBOOKS = Path(__file__).resolve().parents[2] / "docs" / "runbooks.md"


def runbooks_document(config: Config) -> Path:
    """The runbooks file the runbook_url anchors must exist in.

    A config kept outside the repository (no runbooks file of its own) that still
    links to relaywatch's published runbooks is checked against those.
    """
    path = config.path("runbooks")
    uses_default_url = config.alerts["runbook_base_url"] == DEFAULTS["alerts"]["runbook_base_url"]
    if not path.is_file() and uses_default_url and BUNDLED_RUNBOOKS.is_file():
        return BUNDLED_RUNBOOKS
    return path
