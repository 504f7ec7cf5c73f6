"""The `provision` command: parse options, call the stages, print. Nothing else.

Exit codes: 0 success; 1 the work ran and found problems (invalid artifacts,
failed or drifted resources); 2 usage or configuration errors.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from provision import build as build_stage
from provision.config import Config, ConfigError, load_config
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


@main.command()
@config_option
@out_option
@click.option("--no-validate", is_flag=True, help="Only write the files; skip validation.")
@click.option("--promtool", default="promtool", show_default=True, help="promtool binary used for validation.")
@handle_errors
def build(config_path: str | None, out_dir: str | None, no_validate: bool, promtool: str) -> None:
    """Generate build/dashboards/*.json and build/rules/*.yaml, then validate them."""
    config = load_config(config_path)
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
        _report(validate_build(target, result.context.profile, promtool=promtool))


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


def _report(report: Report) -> None:
    for problem in report.problems:
        click.echo(f"invalid: {problem}", err=True)
    click.echo(f"validated {report.checked} files: {len(report.problems)} problems; promtool {report.promtool}")
    if not report.ok:
        sys.exit(EXIT_PROBLEMS)


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
