"""The `provision` command: parse options, call the stages, print. Nothing else.

Exit codes: 0 success; 1 the work ran and found problems (invalid artifacts,
failed or drifted resources); 2 usage or configuration errors.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import click

from provision import build as build_stage
from provision import lint as lint_stage
from provision.config import Config, ConfigError, load_config
from provision.contract import Profile
from provision.definitions import DefinitionError
from provision.profiles import UnknownProfile
from provision.validate import Report, validate_build

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


class Failure(Exception):
    """A problem already worded for the user: print it and exit with `code`."""

    def __init__(self, lines: list[str] | str, code: int):
        super().__init__(lines)
        self.lines = [lines] if isinstance(lines, str) else lines
        self.code = code


def handle_errors(command):
    """Turn the stages' exceptions into one-line messages and exit codes, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except ConfigError as exc:
            _fail(exc.problems, EXIT_USAGE)
        except UnknownProfile as exc:
            _fail([f"config: profile: {exc}"], EXIT_USAGE)
        except DefinitionError as exc:
            _fail([f"error: {exc}"], EXIT_PROBLEMS)
        except Failure as exc:
            _fail(exc.lines, exc.code)
        except Exception as exc:  # a bug, not bad input: still one line unless asked for more
            if os.environ.get("RELAYWATCH_DEBUG"):
                raise
            _fail([f"internal error: {type(exc).__name__}: {exc} (RELAYWATCH_DEBUG=1 shows a traceback)"],
                  EXIT_PROBLEMS)

    return wrapper


def _fail(lines: list[str], code: int) -> None:
    for line in lines:
        click.echo(line, err=True)
    sys.exit(code)


config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), default=None,
    help="Config file (default: ./relaywatch.yaml if present, else built-in defaults).",
)
out_option = click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), default=None,
    help="Build directory (default: paths.build of the config, ./build).",
)


def _out_dir(config: Config, out_dir: str | None) -> Path:
    return Path(out_dir) if out_dir else config.path("build")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="relaywatch")
def main() -> None:
    """relaywatch: Grafana dashboards and Prometheus rules for LLM API gateways, as code."""


def _rule_targets_option(ctx, param, values: tuple[str, ...]) -> list[str] | None:
    from provision.config import RULE_TARGETS

    targets = [t.strip() for value in values for t in value.split(",") if t.strip()]
    unknown = [t for t in targets if t not in RULE_TARGETS]
    if unknown:
        raise click.BadParameter(f"unknown target {', '.join(unknown)}; expected {', '.join(RULE_TARGETS)}")
    return list(dict.fromkeys(targets)) or None


def _delivery_overrides(rules_target: list[str] | None, kubernetes: bool | None, provisioning: bool | None) -> dict:
    overrides: dict = {}
    if rules_target:
        overrides["rules.target"] = rules_target
    if kubernetes is not None:
        overrides["rules.kubernetes.enabled"] = kubernetes
    if provisioning is not None:
        overrides["rules.provisioning.enabled"] = provisioning
    return overrides


@main.command()
@config_option
@out_option
@click.option("--no-validate", is_flag=True, help="Only write the files; skip validation and lint.")
@click.option("--no-lint", is_flag=True, help="Validate but do not lint (see `provision lint`).")
@click.option("--promtool", default="promtool", show_default=True, help="promtool binary used for validation.")
@click.option("--rules-target", "rules_target", multiple=True, callback=_rule_targets_option, metavar="TARGETS",
              help="Where rules are delivered: files, grafana, ruler (comma-separated or repeated); "
                   "overrides rules.target.")
@click.option("--kubernetes/--no-kubernetes", default=None,
              help="Write build/kubernetes/ (PrometheusRule, dashboard ConfigMaps); "
                   "overrides rules.kubernetes.enabled.")
@click.option("--provisioning/--no-provisioning", default=None,
              help="Write build/provisioning/ (Grafana file provisioning); overrides rules.provisioning.enabled.")
@handle_errors
def build(config_path: str | None, out_dir: str | None, no_validate: bool, no_lint: bool, promtool: str,
          rules_target: list[str] | None, kubernetes: bool | None, provisioning: bool | None) -> None:
    """Generate build/dashboards/*.json and build/rules/*.yaml (and the deliveries asked for), then validate them."""
    config = load_config(config_path, overrides=_delivery_overrides(rules_target, kubernetes, provisioning))
    result = build_stage.build(config)
    target = _out_dir(config, out_dir)
    written = build_stage.write(result, target)
    for notice in result.notices:
        click.echo(f"notice: {notice}", err=True)
    click.echo(
        f"built {len(result.dashboards)} dashboards and {len(result.rule_files)} rule files "
        f"({len(written)} files) in {target} with profile {result.context.profile.name}"
    )
    if not no_validate:
        report = validate_build(target, result.context.profile, promtool=promtool)
        lint_report = None if no_lint else _lint_build(config, result.context.profile, target)
        _report(report, lint_report)


def _lint_build(config: Config, profile: Profile, target: Path) -> lint_stage.LintReport:
    return lint_stage.lint_build(target, lint_stage.LintSettings.from_config(config, profile))


@main.command()
@config_option
@out_option
@click.option("--promtool", default="promtool", show_default=True, help="promtool binary.")
@handle_errors
def validate(config_path: str | None, out_dir: str | None, promtool: str) -> None:
    """Validate the built files: schemas, PromQL, the metric contract, promtool check rules."""
    from provision.definitions import make_context

    config = load_config(config_path)
    target = _out_dir(config, out_dir)
    if not (target / "dashboards").is_dir() and not (target / "rules").is_dir():
        raise Failure(f"error: {target}: nothing built yet; run `provision build` first", EXIT_USAGE)
    _report(validate_build(target, make_context(config).profile, promtool=promtool))


def _report(report: Report, lint_report: lint_stage.LintReport | None = None) -> None:
    for problem in report.problems:
        click.echo(f"invalid: {problem}", err=True)
    click.echo(f"validated {report.checked} files: {len(report.problems)} problems; promtool {report.promtool}")
    if lint_report is not None:
        _print_lint(lint_report)
    if not report.ok or (lint_report is not None and not lint_report.ok):
        sys.exit(EXIT_PROBLEMS)


@main.command()
@config_option
@out_option
@click.option("--path", "paths", multiple=True, type=click.Path(dir_okay=False),
              help="Lint this dashboard JSON or Prometheus rule file instead of the build (repeatable); "
                   "it may read the series relaywatch's recording rules define.")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Findings as text lines or one JSON document.")
@click.option("--list", "list_checks", is_flag=True, help="List the checks (id, severity, summary) and exit.")
@handle_errors
def lint(config_path: str | None, out_dir: str | None, paths: tuple[str, ...], output: str, list_checks: bool) -> None:
    """Lint dashboards and rules: the checks Grafana and Prometheus users expect (docs/lint.md).

    Exit 1 when an error is found (warnings do not fail), 2 on bad input or config.
    """
    from provision.definitions import make_context

    if list_checks:
        for check in lint_stage.CHECKS.values():
            click.echo(f"{check.id:32} {check.severity:8} {check.summary}")
        return
    config = load_config(config_path)
    context = make_context(config)
    settings = lint_stage.LintSettings.from_config(config, context.profile)
    try:
        if paths:
            reference = lint_stage.project_recordings(context.recordings.groups())
            report = lint_stage.lint_paths([Path(p) for p in paths], settings, reference)
        else:
            target = _out_dir(config, out_dir)
            if not (target / "dashboards").is_dir() and not (target / "rules").is_dir():
                raise Failure(f"error: {target}: nothing built yet; run `provision build` first or pass --path",
                              EXIT_USAGE)
            report = lint_stage.lint_build(target, settings)
    except lint_stage.LintInputError as exc:
        raise Failure(f"error: {exc}", EXIT_USAGE) from None
    if output == "json":
        click.echo(report.json_text())
    else:
        _print_lint(report)
    if not report.ok:
        sys.exit(EXIT_PROBLEMS)


def _print_lint(report: lint_stage.LintReport) -> None:
    for finding in report.findings:
        if finding.silenced is None:
            click.echo(str(finding))
    for silence in report.unused_silences:
        click.echo(f"notice: {silence} matched no finding; remove it", err=True)
    click.echo(report.summary())


@main.command()
@config_option
@click.argument("name", required=False)
@handle_errors
def profiles(config_path: str | None, name: str | None) -> None:
    """List the metric profiles and what each provides, or show what profile NAME reads for each role."""
    from provision.definitions import make_context
    from provision.profiles import BUILTIN, CUSTOM, describe, get_profile, profile_names

    config = load_config(config_path)
    if name:
        if name not in profile_names():
            raise Failure(f"error: unknown profile {name!r}; known profiles: {', '.join(profile_names())}", EXIT_USAGE)
        profile = make_context(config).profile if name == config.profile else get_profile(name, config.data)
        click.echo("\n".join(describe.details(profile)))
        return
    listed = dict(sorted(BUILTIN.items()))
    if config.profile == CUSTOM:
        listed[CUSTOM] = make_context(config).profile
    click.echo("\n".join(describe.support_table(listed, config.profile)))
    if CUSTOM not in listed:
        click.echo(f"  {CUSTOM}: your gateway described under custom_profile in relaywatch.yaml (docs/profiles.md)")
    click.echo("x: provided, -: not exported by the gateway (what needs it is left out of the build); "
               "`provision profiles NAME` shows the series behind each role.")



# -- Grafana: push, diff, history, rollback, pull ----------------------------------

PROGRESS_MIN_RESOURCES = 10


def grafana_errors(command):
    """Grafana's refusals, an invalid build and impossible rollbacks as one-line failures."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from provision.grafana.client import GrafanaError
        from provision.grafana.versions import NoRollbackTarget
        from provision.push import InvalidBuild

        try:
            return command(*args, **kwargs)
        except GrafanaError as exc:
            where = f"{exc.method} {exc.path}: " if exc.status else ""
            raise Failure(f"error: {where}{exc}", EXIT_PROBLEMS) from None
        except InvalidBuild as exc:
            lines = [f"invalid: {problem}" for problem in exc.report.problems]
            raise Failure(lines + ["error: the build is invalid; nothing was sent to Grafana"], EXIT_PROBLEMS) from None
        except NoRollbackTarget as exc:
            raise Failure(f"error: {exc}", EXIT_PROBLEMS) from None

    return wrapper


def grafana_options(command):
    options = (
        click.option("--grafana-url", default=None, metavar="URL",
                     help="Grafana's base URL (default: $GRAFANA_URL, else grafana.url of the config). "
                          "Credentials come from GRAFANA_TOKEN, or GRAFANA_USER and GRAFANA_PASSWORD."),
        click.option("--ca-cert", type=click.Path(dir_okay=False), default=None,
                     help="CA bundle that signed Grafana's TLS certificate."),
        click.option("--insecure-skip-tls-verify", "insecure", is_flag=True,
                     help="Do not verify Grafana's TLS certificate (for tests only)."),
        click.option("-v", "--verbose", is_flag=True, help="Log every HTTP request and retry on stderr."),
    )
    for option in reversed(options):
        command = option(command)
    return command


rules_target_option = click.option(
    "--rules-target", "rules_target", multiple=True, callback=_rule_targets_option, metavar="TARGETS",
    help="Where rules are delivered: files, grafana, ruler (comma-separated or repeated); overrides rules.target. "
         "push and diff cover the Grafana-managed and ruler rule groups of the targets given.")
output_option = click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True,
                             help="Output format.")
promtool_option = click.option("--promtool", default="promtool", show_default=True,
                               help="promtool binary used to validate the build.")


def _session(config: Config, grafana_url: str | None, ca_cert: str | None, insecure: bool, verbose: bool):
    """Resolve the target (usage errors exit 2 before anything is built or sent), print its
    warnings; returns a function opening the Session."""
    from provision.push import Session, grafana_target

    target = grafana_target(config, grafana_url, ca_cert=ca_cert, insecure=insecure)
    for warning in target.warnings:
        click.echo(warning, err=True)
    log = (lambda line: click.echo(f"http: {line}", err=True)) if verbose else None
    return lambda: Session(target, concurrency=config.grafana["concurrency"], log=log)


def _prepare(config_path, out_dir, grafana_url, ca_cert, insecure, verbose, promtool, rules_target=None):
    """What push and diff do before the first request: config, target, build and validation."""
    from provision.push import build_for_push

    config = load_config(config_path, overrides=_delivery_overrides(rules_target, None, None))
    open_session = _session(config, grafana_url, ca_cert, insecure, verbose)
    result = build_for_push(config, _out_dir(config, out_dir), promtool)
    for notice in result.notices:
        click.echo(f"notice: {notice}", err=True)
    return config, result, open_session


def _connected(session, output: str) -> dict:
    health = session.health()
    if output == "text":
        click.echo(f"grafana: {session.client.base_url} (Grafana {health.get('version', 'version hidden')})", err=True)
    return health


def _progress(total: int):
    if total < PROGRESS_MIN_RESOURCES or not sys.stderr.isatty():
        return None
    return lambda done, total: click.echo(f"\rapplying {done}/{total}", err=True, nl=done == total)


def _print_outcomes(outcomes, *, session, health, output: str, dry_run: bool, diffs: bool = False) -> None:
    """One line per resource and a summary (or a JSON document) on stdout."""
    from provision.plan import summary
    from provision.push import diff_text

    counts = summary(outcomes)
    if output == "json":
        resources = []
        for o in outcomes:
            entry = {"kind": o.action.kind, "uid": o.action.uid, "name": o.action.name, "action": o.action.op,
                     "status": o.status, "reason": o.reason, "version": o.version}
            if diffs:
                entry["diff"] = diff_text(o.action)
            resources.append(entry)
        document = {"grafana": {"url": session.client.base_url, "version": health.get("version")},
                    "dry_run": dry_run, "resources": resources, "summary": counts}
        click.echo(json.dumps(document, indent=2))
        return
    for o in outcomes:
        verb = o.action.op if dry_run else o.status
        click.echo(f"{o.action.kind} {o.action.uid}: {verb}" + (f": {o.reason}" if o.reason else ""))
        if diffs:
            text = diff_text(o.action)
            if text:
                click.echo(text.rstrip("\n"))
    if dry_run:
        to_do = {"created": "to create", "updated": "to update", "deleted": "to delete"}
        parts = [f"{n} {to_do.get(status, status)}" for status, n in counts.items()]
        click.echo(f"{'diff' if diffs else 'dry run'}: {', '.join(parts)}; nothing was written")
    else:
        click.echo("push: " + ", ".join(f"{n} {status}" for status, n in counts.items()))


def _problems(outcomes) -> bool:
    return any(not o.ok for o in outcomes)


@main.command()
@config_option
@out_option
@grafana_options
@click.option("--prune", is_flag=True,
              help="Delete what relaywatch created and no longer builds: dashboards with the managed tag in the "
                   "managed folder, its rule groups there, and groups in its ruler namespace.")
@click.option("--force", is_flag=True,
              help="Overwrite (with --prune: delete) dashboards and Grafana rule groups that were changed in Grafana "
                   "by someone else.")
@click.option("--dry-run", is_flag=True, help="Print the plan; send no write.")
@rules_target_option
@output_option
@promtool_option
@handle_errors
@grafana_errors
def push(config_path, out_dir, grafana_url, ca_cert, insecure, verbose, prune, force, dry_run, rules_target, output,
         promtool):
    """Build, validate, then push the folder, data source, dashboards and rule groups to Grafana.

    Exit 0 when everything is as built, 1 when anything failed or drifted, 2 for usage errors.
    """
    from provision.grafana.resources.base import planned
    from provision.push import run_options

    config, result, open_session = _prepare(config_path, out_dir, grafana_url, ca_cert, insecure, verbose, promtool,
                                            rules_target)
    options = run_options(config, prune=prune, force=force)
    with open_session() as session:
        health = _connected(session, output)
        plan = session.plan(result, config, options)
        if dry_run:
            outcomes = [planned(action) for action in plan.actions]
        else:
            outcomes = session.apply(plan, options, _progress(len(plan.writes)))
    _print_outcomes(outcomes, session=session, health=health, output=output, dry_run=dry_run)
    if _problems(outcomes):
        sys.exit(EXIT_PROBLEMS)


@main.command()
@config_option
@out_option
@grafana_options
@click.option("--prune", is_flag=True, help="Also show what push --prune would delete.")
@click.option("--exit-code", is_flag=True, help="Exit 1 when anything differs, like git diff --exit-code.")
@rules_target_option
@output_option
@promtool_option
@handle_errors
@grafana_errors
def diff(config_path, out_dir, grafana_url, ca_cert, insecure, verbose, prune, exit_code, rules_target, output,
         promtool):
    """Show what push would change, with a unified diff of each dashboard and rule group it would update."""
    from provision.grafana.resources.base import UNCHANGED, planned
    from provision.push import run_options

    config, result, open_session = _prepare(config_path, out_dir, grafana_url, ca_cert, insecure, verbose, promtool,
                                            rules_target)
    with open_session() as session:
        health = _connected(session, output)
        plan = session.plan(result, config, run_options(config, prune=prune))
    outcomes = [planned(action) for action in plan.actions]
    _print_outcomes(outcomes, session=session, health=health, output=output, dry_run=True, diffs=True)
    if any(o.status == "failed" for o in outcomes):
        sys.exit(EXIT_PROBLEMS)
    if exit_code and any(o.action.op != UNCHANGED for o in outcomes):
        sys.exit(EXIT_PROBLEMS)


@main.command()
@click.argument("uid")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000), help="Versions to show.")
@config_option
@grafana_options
@output_option
@handle_errors
@grafana_errors
def history(uid, limit, config_path, grafana_url, ca_cert, insecure, verbose, output):
    """List a dashboard's versions, newest first: who saved each, when, and its message."""
    from provision.grafana.versions import list_versions

    open_session = _session(load_config(config_path), grafana_url, ca_cert, insecure, verbose)
    with open_session() as session:
        versions = list_versions(session.client, uid, limit)
    if output == "json":
        click.echo(json.dumps([{"version": v.version, "created": v.created, "createdBy": v.created_by,
                                "message": v.message, "byRelaywatch": v.by_push} for v in versions], indent=2))
        return
    width = max([len(v.created_by) for v in versions] + [2])
    click.echo(f"{'VERSION':>7}  {'CREATED':<20}  {'BY':<{width}}  MESSAGE")
    for v in versions:
        click.echo(f"{v.version:>7}  {v.created:<20}  {v.created_by:<{width}}  {v.message}".rstrip())


@main.command()
@click.argument("uid")
@click.option("--to-version", type=click.IntRange(min=1), default=None,
              help="Version to restore (default: the one before relaywatch's last push).")
@click.option("--dry-run", is_flag=True, help="Show the change; write nothing.")
@config_option
@grafana_options
@handle_errors
@grafana_errors
def rollback(uid, to_version, dry_run, config_path, grafana_url, ca_cert, insecure, verbose):
    """Restore a dashboard to an earlier version through Grafana's versions API."""
    from provision.grafana.resources.dashboard import json_diff
    from provision.grafana.rollback import plan_rollback, restore

    open_session = _session(load_config(config_path), grafana_url, ca_cert, insecure, verbose)
    with open_session() as session:
        rb = plan_rollback(session.client, uid, to_version)
        target = rb.target.version
        if not rb.changes_content:
            click.echo(f"dashboard {uid}: version {target} has the same content as the current version "
                       f"{rb.current_version}; nothing to do")
            return
        if dry_run:
            click.echo(json_diff(rb.current, rb.target_data, f"grafana/{uid}.json@{rb.current_version}",
                                 f"grafana/{uid}.json@{target}").rstrip("\n"))
            click.echo(f"dashboard {uid}: would roll back from version {rb.current_version} to version {target}; "
                       "nothing was written")
            return
        new_version = restore(session.client, rb)
    click.echo(f"dashboard {uid}: rolled back from version {rb.current_version} to version {target} "
               f"(saved as version {new_version})")
    click.echo("note: until the definitions match it, push reports this dashboard as drifted; "
               "push --force replaces it with the build", err=True)


@main.command()
@click.argument("uid")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), default=None,
              help="Write the JSON to this file instead of stdout.")
@config_option
@grafana_options
@handle_errors
@grafana_errors
def pull(uid, out_file, config_path, grafana_url, ca_cert, insecure, verbose):
    """Export a dashboard from Grafana as normalised JSON (to bring a hand-made one under code)."""
    from provision.grafana.resources.dashboard import export_text, get_dashboard

    open_session = _session(load_config(config_path), grafana_url, ca_cert, insecure, verbose)
    with open_session() as session:
        stored = get_dashboard(session.client, uid)
    if stored is None:
        raise Failure(f"error: dashboard {uid}: not found in Grafana", EXIT_PROBLEMS)
    text = export_text(stored.dashboard)
    if not out_file:
        click.echo(text, nl=False)
        return
    path = Path(out_file)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise Failure(f"error: {out_file}: cannot write: {exc.strerror}", EXIT_PROBLEMS) from None
    click.echo(f"pulled dashboard {uid} (version {stored.version}, folder {stored.folder_uid or 'General'}) "
               f"into {out_file}", err=True)


# -- simulate, scrape-config, check-metrics, demo -------------------------------------


def _profile(config: Config):
    from provision.definitions import make_context

    return make_context(config).profile


def _recordable(config: Config):
    """The active profile, refused in one line when the simulator cannot write its shape."""
    from prometheus_client import CollectorRegistry

    from provision.recorder import ProfileShapeError, Recorder

    profile = _profile(config)
    try:
        Recorder(profile, CollectorRegistry())
    except ProfileShapeError as exc:
        raise Failure(f"{config.name()}: profile: {exc}", EXIT_USAGE) from None
    return profile


def _history_seconds(value: str | None, option: str) -> float:
    from provision.promql import duration_seconds

    if not value:
        return 0.0
    try:
        return float(duration_seconds(value))
    except ValueError as exc:
        raise Failure(f"error: {option}: {exc}", EXIT_USAGE) from None


def _scenario_choice():
    from provision.simulate import SCENARIOS

    return click.Choice(list(SCENARIOS))


@main.command()
@config_option
@click.option("--host", default=None, help="Address to listen on (default: simulate.host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port to listen on (default: simulate.port, 9464; never Prometheus's 9090).")
@click.option("--scenario", type=_scenario_choice(), default=None, help="Scenario at start (default: simulate.scenario).")
@click.option("--seed", type=int, default=None, help="Seed of the traffic (default: simulate.seed).")
@click.option("--arrivals", type=click.Choice(["poisson", "steady"]), default=None,
              help="poisson: random like real traffic; steady: exact rates and shares.")
@click.option("--history", default=None, metavar="DURATION",
              help="First simulate this much past traffic (e.g. 1h) and write it to --history-file, labelled "
                   "job=<selector.job> instance=HOST:PORT as the scrape will label it.")
@click.option("--history-file", type=click.Path(dir_okay=False), default=None,
              help="OpenMetrics file for `promtool tsdb create-blocks-from openmetrics`.")
@handle_errors
def simulate(config_path, host, port, scenario, seed, arrivals, history, history_file) -> None:
    """Serve simulated gateway traffic as the active profile's metrics.

    Switch scenario at run time with `curl -X POST http://HOST:PORT/scenario/NAME`, or
    SIGUSR1 for the next one; SIGHUP reloads the simulate: section of the config.
    """
    import time

    from provision.exporter import SimulatorServer, run_until_stopped
    from provision.history import history as simulated_history
    from provision.history import write_history
    from provision.scrape import clashing_targets, default_target, job_name
    from provision.simulate import SCENARIOS, simulator_from_config, traffic_from_config

    options = {"simulate.host": host, "simulate.port": port, "simulate.seed": seed, "simulate.arrivals": arrivals}
    overrides = {key: value for key, value in options.items() if value is not None}
    config = load_config(config_path, overrides=overrides)
    past = _history_seconds(history, "--history")
    if bool(past) != bool(history_file):
        raise Failure("error: --history and --history-file go together", EXIT_USAGE)
    target = default_target(config)
    if clashing_targets([target]):
        raise Failure(f"error: {target} is Prometheus's own port; pick another with --port", EXIT_USAGE)
    profile = _recordable(config)
    simulator, registry = simulator_from_config(config, profile, start=time.time() - past, scenario=scenario)
    try:
        server = SimulatorServer(simulator, registry, host=config.section("simulate")["host"],
                                 port=config.section("simulate")["port"])
    except OSError as exc:
        raise Failure(f"error: cannot listen on {target}: {exc.strerror or exc}", EXIT_USAGE) from None
    if past:
        step = _history_seconds(config.data["scrape_interval"], "scrape_interval")
        text = simulated_history(simulator, registry, until=time.time(), step=step,
                                 target={"job": job_name(config), "instance": server.address})
        write_history(text, Path(history_file))
        click.echo(f"wrote {history} of history to {history_file}; before starting Prometheus run: "
                   f"promtool tsdb create-blocks-from openmetrics {history_file} <prometheus data dir>")

    def cycle():
        click.echo(f"scenario: {server.cycle_scenario()}")

    def reload():
        try:
            traffic = traffic_from_config(load_config(config_path, overrides=overrides))
        except ConfigError as exc:
            click.echo(f"reload failed, keeping the old settings: {exc.problems[0]}", err=True)
            return
        with server.lock:
            simulator.set_traffic(traffic)
        click.echo("reloaded the simulate: section")

    server.start()
    click.echo(f"serving {profile.name} metrics on {server.url}/metrics (scenario {simulator.scenario}); "
               f"switch with: curl -X POST {server.url}/scenario/<{'|'.join(SCENARIOS)}>; Ctrl-C stops")
    try:
        run_until_stopped(on_usr1=cycle, on_hup=reload)
    finally:
        server.stop()


@main.command("scrape-config")
@config_option
@click.option("--target", "targets", multiple=True, metavar="HOST:PORT",
              help="The gateway's metrics endpoint; repeatable (default: simulate.host:simulate.port).")
@click.option("--rules-dir", type=click.Path(file_okay=False), default=None,
              help="Where Prometheus reads the generated rule files (default: rules.files.directory, where "
                   "build/rules/*.yaml are copied on the Prometheus host).")
@handle_errors
def scrape_config_command(config_path, targets, rules_dir) -> None:
    """Print the Prometheus scrape job for the gateway and the rule_files of the generated rules."""
    import re

    from provision.scrape import DEFAULT_JOB, clashing_targets, default_target, render, scrape_config

    config = load_config(config_path)
    targets = list(targets) or [default_target(config)]
    for target in targets:
        if not re.fullmatch(r"[^\s/:]+:[0-9]{1,5}|\[[0-9a-fA-F:]+\]:[0-9]{1,5}", target):
            raise Failure(f"error: --target {target!r}: expected HOST:PORT, e.g. 127.0.0.1:9464", EXIT_USAGE)
    clashes = clashing_targets(targets)
    if clashes:
        raise Failure(f"error: --target {clashes[0]}: port 9090 on this machine is Prometheus itself, not the "
                      "gateway; run the exporter on another port (relaywatch uses 9464)", EXIT_USAGE)
    directory = Path(rules_dir) if rules_dir else Path(config.rules["files"]["directory"])
    if "job" not in config.selector:
        click.echo(f"hint: set `selector: {{job: {DEFAULT_JOB}}}` in relaywatch.yaml so the rules read only this "
                   "job's series", err=True)
    click.echo(render(scrape_config(config, targets=targets, rules_dir=directory)), nl=False)


@main.command("check-metrics")
@click.argument("url")
@config_option
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True, help="Seconds to wait.")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@handle_errors
def check_metrics_command(url, config_path, timeout, output) -> None:
    """Check that a /metrics endpoint exposes what the dashboards need (exit 1 if not, 2 if unreachable)."""
    import json

    from provision.check_metrics import Unusable, check, fetch, metrics_url, parse

    config = load_config(config_path)
    profile = _profile(config)
    try:
        target = metrics_url(url)
        body, content_type = fetch(target, timeout=timeout)
        exposition = parse(body, content_type, target)
    except Unusable as exc:
        if output == "json":
            click.echo(json.dumps({"url": url, "profile": profile.name, "ok": False, "error": str(exc)}, indent=2))
        raise Failure(f"error: {exc}", EXIT_USAGE) from None
    report = check(exposition, profile, url=target, pricing=config.pricing,
                   latency_threshold=config.alerts["latency_p95"]["threshold_seconds"])
    if output == "json":
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        click.echo(f"{target}: profile {profile.name}")
        for finding in report.findings:
            label = finding.severity.upper() if finding.severity == "problem" else finding.severity
            where = f"{finding.role:<17} {finding.series}: " if finding.role else ""
            click.echo(f"  {label:<8} {where}{finding.message}")
        if report.models:
            click.echo(f"models: {', '.join(report.models)}")
        verdict = "the dashboards would be empty or wrong" if report.problems else "the dashboards have what they need"
        click.echo(f"{len(report.problems)} problems: {verdict}")
    if report.problems:
        sys.exit(EXIT_PROBLEMS)


@main.command()
@config_option
@click.option("--port", type=click.IntRange(1, 65535), default=9090, show_default=True, help="Prometheus's port.")
@click.option("--history", default="1h", show_default=True, metavar="DURATION",
              help="Simulated past traffic backfilled before Prometheus starts.")
@click.option("--scenario", type=_scenario_choice(), default=None, help="Scenario at start (default: simulate.scenario).")
@click.option("--simulator-port", type=click.IntRange(1, 65535), default=None,
              help="The simulator's port (default: simulate.port, 9464).")
@click.option("--prometheus", "prometheus_binary", default="prometheus", show_default=True)
@click.option("--promtool", default="promtool", show_default=True)
@handle_errors
def demo(config_path, port, history, scenario, simulator_port, prometheus_binary, promtool) -> None:
    """Run Prometheus and the simulator locally with the generated rules; Ctrl-C stops both."""
    import shutil
    import tempfile

    from provision.exporter import run_until_stopped
    from provision.history import BackfillError
    from provision.prometheus_server import PrometheusError
    from provision.stack import LocalStack

    config = load_config(config_path, overrides={"simulate.port": simulator_port} if simulator_port else None)
    past = _history_seconds(history, "--history")
    profile = _recordable(config)
    result = build_stage.build(config)
    build_dir = config.path("build")
    build_stage.write(result, build_dir)
    _port_free("127.0.0.1", port, "Prometheus (--port)")
    workdir = Path(tempfile.mkdtemp(prefix="relaywatch-demo-"))
    stack = LocalStack(config, profile, rules_dir=build_dir / "rules", workdir=workdir, listen=f"127.0.0.1:{port}",
                       history_seconds=past, scenario=scenario, prometheus=prometheus_binary, promtool=promtool)
    try:
        stack.start()
        _demo_banner(config, stack, build_dir)
        run_until_stopped(alive=lambda: stack.prometheus.running)
        if not stack.prometheus.running:
            raise Failure(f"error: prometheus stopped: {stack.prometheus.last_log_line()}", EXIT_PROBLEMS)
    except OSError as exc:
        raise Failure(f"error: cannot listen on {stack.host}:{stack.simulator_port}: {exc.strerror or exc}",
                      EXIT_USAGE) from None
    except (BackfillError, PrometheusError) as exc:
        raise Failure(f"error: {exc}", EXIT_PROBLEMS) from None
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    click.echo("stopped Prometheus and the simulator")


def _port_free(host: str, port: int, what: str) -> None:
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is no clash
        try:
            probe.bind((host, port))
        except OSError:
            raise Failure(f"error: {host}:{port} is in use; is another {what} running?", EXIT_USAGE) from None


def _demo_banner(config: Config, stack, build_dir: Path) -> None:
    from provision.simulate import SCENARIOS

    prometheus, simulator = stack.prometheus.url, f"http://{stack.target}"
    datasource = config.grafana["datasource"]
    lines = [
        f"Prometheus   {prometheus}  (alerts: {prometheus}/alerts, rules: {prometheus}/rules, "
        f"targets: {prometheus}/targets)",
        f"simulator    {simulator}/metrics  profile {stack.profile.name}, scenario {stack.simulator.scenario}",
        f"scenarios    curl -X POST {simulator}/scenario/<name>: {', '.join(SCENARIOS)}",
        f"rules        {build_dir / 'rules'} (history backfilled: {stack.history_seconds / 60:g} min)",
        "Grafana      export GRAFANA_URL=<your Grafana> GRAFANA_TOKEN=<service account token>; provision push",
        f"             (the dashboards read data source uid {datasource['uid']!r}: with grafana.datasource "
        f"{{url: {prometheus}, manage: true}} push creates it, or add it in Grafana)",
        "Ctrl-C stops both.",
    ]
    for line in lines:
        click.echo(line)


if __name__ == "__main__":  # pragma: no cover
    main()
