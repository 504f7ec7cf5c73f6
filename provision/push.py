"""The stages of push and diff, and the Grafana connection shared by every Grafana command.

build + validate (nothing is sent when that finds a problem) -> health check
-> read what Grafana holds -> plan -> apply. The CLI calls these and prints.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision import build as build_stage
from provision.apply import Progress, apply_plan, desired_state, read_state
from provision.build import BuildResult
from provision.config import Config, ConfigError, rule_targets
from provision.grafana.client import (
    URL_ENV, ClientSettings, Credentials, CredentialsError, GrafanaClient, GrafanaError, Log, plain_http_warning,
    url_problem,
)
from provision.grafana.resources import KINDS
from provision.grafana.resources.base import Action, Outcome, RunOptions
from provision.plan import Plan, make_plan
from provision.render.ruler import RulerNamespace
from provision.validate import Report, validate_build

REVISION_ENV = "RELAYWATCH_REVISION"


@dataclass(frozen=True)
class Target:
    """Which Grafana, how to reach it, and who we are there."""

    settings: ClientSettings
    credentials: Credentials
    warnings: tuple[str, ...] = ()


def grafana_target(config: Config, url_flag: str | None = None, *, ca_cert: str | None = None,
                   insecure: bool = False, environ: Mapping[str, str] | None = None) -> Target:
    """Resolve URL (--grafana-url > GRAFANA_URL > grafana.url), TLS and credentials; usage problems
    raise ConfigError (exit 2) before anything is sent."""
    env = os.environ if environ is None else environ
    url, source = ((url_flag, "--grafana-url") if url_flag else
                   (env[URL_ENV], URL_ENV) if env.get(URL_ENV) else
                   (config.grafana["url"], f"{config.name()}: grafana.url"))
    problem = url_problem(url)
    if problem:
        raise ConfigError([f"{source}: {problem}"])
    if ca_cert and insecure:
        raise ConfigError(["--ca-cert and --insecure-skip-tls-verify contradict each other; pick one"])
    if ca_cert and not Path(ca_cert).is_file():
        raise ConfigError([f"--ca-cert: {ca_cert}: no such file"])
    try:
        credentials = Credentials.from_env(env)
    except CredentialsError as exc:
        raise ConfigError([f"error: {exc}"]) from None
    warnings = [w for w in [plain_http_warning(url)] if w]
    if insecure:
        warnings.append("warning: TLS certificate verification is off (--insecure-skip-tls-verify)")
    verify: bool | str = ca_cert or not insecure
    return Target(ClientSettings.from_config(config.grafana, url=url, verify=verify), credentials, tuple(warnings))


class InvalidBuild(Exception):
    def __init__(self, report: Report):
        super().__init__(f"{len(report.problems)} problems")
        self.report = report


def build_for_push(config: Config, out_dir: Path, promtool: str | None) -> BuildResult:
    """Build, write and validate; raise InvalidBuild so that nothing is sent."""
    result = build_stage.build(config)
    build_stage.write(result, out_dir)
    report = validate_build(out_dir, result.context.profile, promtool=promtool)
    if not report.ok:
        raise InvalidBuild(report)
    return result


def source_revision(root: Path, environ: Mapping[str, str] | None = None) -> str:
    """The source revision for commit messages: RELAYWATCH_REVISION, else git, else 'unknown'."""
    env = os.environ if environ is None else environ
    if env.get(REVISION_ENV, "").strip():
        return env[REVISION_ENV].split()[0][:80]  # one word, and Grafana caps messages at 500 characters
    try:
        proc = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else "unknown"


def run_options(config: Config, *, prune: bool = False, force: bool = False) -> RunOptions:
    grafana = config.grafana
    return RunOptions(folder_uid=grafana["folder"]["uid"], managed_tag=grafana["managed_tag"],
                      revision=source_revision(config.root), prune=prune, force=force,
                      rule_targets=rule_targets(config), editable_in_ui=config.rules["grafana"]["editable_in_ui"],
                      ruler=RulerNamespace.from_config(config))


class Session:
    """A client and a bounded thread pool for one command; use as a context manager."""

    def __init__(self, target: Target, *, concurrency: int, log: Log | None = None):
        self.client = GrafanaClient(target.settings, target.credentials, log=log)
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="grafana")

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.pool.shutdown(wait=True)
        self.client.close()

    def health(self) -> dict:
        """GET /api/health: reachable and its database up. Returns the body (version, ...)."""
        try:
            body = self.client.get("/api/health")
        except GrafanaError as exc:
            if exc.status == 503:
                raise GrafanaError(503, f"Grafana at {self.client.base_url} is unhealthy: its database check "
                                        f"fails ({exc.message})", method=exc.method, path=exc.path) from None
            raise
        return body if isinstance(body, dict) else {}

    def plan(self, build: BuildResult, config: Config, options: RunOptions) -> Plan:
        desired = desired_state(KINDS, build, config)
        actual = read_state(self.client, KINDS, desired, options, self.pool)
        return make_plan(KINDS, desired, actual, options)

    def apply(self, plan: Plan, options: RunOptions, progress: Progress | None = None) -> list[Outcome]:
        return apply_plan(self.client, KINDS, plan, options, self.pool, progress)


def diff_text(action: Action) -> str:
    """The unified diff an action would make, if its kind can show one."""
    kind = next(k for k in KINDS if k.name == action.kind)
    return kind.diff(action) if kind.diff else ""
