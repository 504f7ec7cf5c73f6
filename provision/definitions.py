"""The context handed to definitions, and the loading of dashboards/*.py and alerts/*.py.

A dashboard definition module defines `dashboards(ctx)` returning one
DashboardSpec or a list; an alert definition module defines `rule_groups(ctx)`
returning a list of RuleGroup. Files starting with `_` are helpers, not loaded.
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from provision.config import Config, ConfigError
from provision.contract import JOB, MODEL, Matcher, Profile
from provision.cost import CostQueries
from provision.panels import DashboardSpec, Link, RowSpec, Variable, datasource_variable, label_variable
from provision.profiles import ProfileError, UnknownProfile, get_profile
from provision.queries import PanelQueries
from provision.recording import RecordedNames, Recordings
from provision.rules import Query
from provision.slo import SLOs, load_slos


class DefinitionError(Exception):
    """A definition file that cannot be loaded or returns something unusable."""


@dataclass
class Context:
    config: Config
    profile: Profile
    recordings: Recordings
    notices: list[str] = field(default_factory=list)
    slo: SLOs | None = None  # the service level objectives (config `slo`) the profile can measure

    @property
    def names(self) -> RecordedNames:
        return self.recordings.names

    def panel_queries(self, *, raw: bool = False) -> PanelQueries:
        """Queries over recorded series, or over the profile's raw series when `raw`."""
        return PanelQueries(self.profile, self.names, selector=self.config.selector, raw=raw,
                            priced=bool(self.config.pricing))

    def cost_queries(self, *, dashboard: bool = True) -> CostQueries:
        """Spend queries; on a dashboard they follow the job and model variables."""
        filters = (Matcher(JOB, "=~", "$job"), Matcher(MODEL, "=~", "$model")) if dashboard else ()
        return CostQueries(self.profile, self.names, priced=bool(self.config.pricing),
                           interval=self.config.rules["interval"], filters=filters)

    def variables(self, *, raw: bool = False) -> tuple[Variable, ...]:
        queries = self.panel_queries(raw=raw)
        jobs = queries.variable_source()
        models = queries.variable_source(Matcher(JOB, "=~", "$job"))
        return (
            datasource_variable(self.config.grafana["datasource"]["uid"]),
            label_variable(JOB, "Job", jobs, JOB),
            label_variable(MODEL, "Model", models, queries.label(MODEL)),
        )

    def link(self, uid: str, title: str) -> Link:
        return Link(title, f"/d/{uid}")

    def drilldown(self, uid: str, title: str) -> Link:
        """A data link from a per-model series to dashboard `uid`, keeping time range and job."""
        url = f"/d/{uid}?${{__url_time_range}}&${{job:queryparam}}&var-model=${{__field.labels.model}}"
        return Link(title, url)

    def dashboard(
        self,
        *,
        uid: str,
        title: str,
        description: str,
        rows: Iterable[RowSpec],
        links: Iterable[Link] = (),
        raw: bool = False,
        timezone: str | None = None,
        time_from: str | None = None,
        refresh: str | None = None,
    ) -> DashboardSpec:
        """A dashboard with the standard variables, tags, refresh and time range.

        `timezone`, `time_from` and `refresh` override the dashboards.* settings, e.g.
        so that "today" on a cost dashboard starts at midnight UTC like the bills.
        """
        settings = self.config.section("dashboards")
        tags = (self.config.grafana["managed_tag"], *settings["tags"])
        return DashboardSpec(
            uid=uid,
            title=title,
            description=description,
            rows=tuple(rows),
            variables=self.variables(raw=raw),
            tags=tuple(dict.fromkeys(tags)),
            links=tuple(links),
            refresh=refresh or settings["refresh"],
            time_from=time_from or settings["time_from"],
            timezone=timezone or settings["timezone"],
            notices=self.notices,
        )

    def recorded(self, expr: str, *roles: str) -> Query:
        """A query over recorded series that exist only when the profile has `roles`."""
        missing = self.profile.missing(roles)
        return Query.unavailable(missing) if missing else Query(expr, requires=frozenset(roles))

    def raw_selector(self, role: str, suffix: str = "") -> Query:
        """A raw selector of a role's series with the configured extra matchers."""
        if not self.profile.has(role):
            return Query.unavailable([role])
        return Query(self.recordings.raw(self.profile.role(role), suffix), requires=frozenset([role]))

    def setting(self, dotted: str) -> Any:
        """A config value by dotted path, e.g. ctx.setting("alerts.latency_p95.for")."""
        node: Any = self.config.data
        for part in dotted.split("."):
            node = node[part]
        return node


def make_context(config: Config) -> Context:
    try:
        profile = get_profile(config.profile, config.data)
    except ProfileError as exc:
        raise ConfigError([f"{config.name()}: {problem}" for problem in exc.problems]) from None
    except UnknownProfile as exc:
        raise ConfigError([f"{config.name()}: profile: {exc}"]) from None
    recordings = Recordings(
        profile,
        selector=config.selector,
        window=config.rules["window"],
        pricing=config.pricing,
    )
    slo, notices = load_slos(config, profile, recordings)
    return Context(config=config, profile=profile, recordings=recordings, notices=notices, slo=slo)


def definition_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.py") if not p.name.startswith("_"))


def call_definitions(directory: Path, function: str, ctx: Context) -> list[tuple[Path, Any]]:
    """Import each definition file and call its `function(ctx)`: [(file, result), ...]."""
    results = []
    for path in definition_files(directory):
        module = _import(path)
        builder = getattr(module, function, None)
        if not callable(builder):
            raise DefinitionError(f"{_display(path)}: defines no {function}(ctx) function")
        try:
            result = builder(ctx)
        except Exception as exc:  # a bug in user code: report where, not a traceback
            raise DefinitionError(f"{_display(path)}:{_user_line(exc, path)}: {type(exc).__name__}: {exc}") from None
        results.append((path, result))
    return results


def _import(path: Path) -> ModuleType:
    name = f"relaywatch_definitions.{path.parent.name}.{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    # Definitions may import their siblings' helpers (files starting with `_`).
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise DefinitionError(f"{_display(path)}:{exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:
        raise DefinitionError(f"{_display(path)}:{_user_line(exc, path)}: {type(exc).__name__}: {exc}") from None
    finally:
        sys.path.remove(str(path.parent))
    return module


def _user_line(exc: BaseException, path: Path) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
    return str(frames[-1].lineno) if frames else "?"


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
