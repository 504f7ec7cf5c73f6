"""The `provision` command: parse options, call the stages, print. Nothing else.

Exit codes: 0 success; 1 the work ran and found problems (invalid artifacts,
failed or drifted resources); 2 usage or configuration errors.
"""

from __future__ import annotations

import functools
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


if __name__ == "__main__":  # pragma: no cover
    main()
