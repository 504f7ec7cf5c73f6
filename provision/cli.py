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
@handle_errors
def profiles(config_path: str | None) -> None:
    """List the metric profiles and what each provides."""
    from provision.contract import ALL_ROLES
    from provision.profiles import BUILTIN

    config = load_config(config_path)
    for name, profile in sorted(BUILTIN.items()):
        marker = "*" if name == config.profile else " "
        missing = [role for role in ALL_ROLES if not profile.has(role)]
        lacks = f"; lacks {', '.join(missing)}" if missing else ""
        click.echo(f"{marker} {name}: {profile.title}{lacks}")


# -- simulate, scrape-config, check-metrics, demo -------------------------------------


def _profile(config: Config):
    from provision.profiles import get_profile

    return get_profile(config.profile, config.data.get("custom_profile"))


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
    from provision.duration import seconds

    if not value:
        return 0.0
    try:
        return seconds(value)
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
              help="Where Prometheus reads the generated rule files (default: <build>/rules).")
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
    directory = Path(rules_dir) if rules_dir else config.path("build") / "rules"
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
        f"Grafana      add a Prometheus data source with uid {datasource['uid']!r} and URL {prometheus}",
        "             (grafana.datasource in relaywatch.yaml), set grafana.url, then `provision push`",
        "Ctrl-C stops both.",
    ]
    for line in lines:
        click.echo(line)


if __name__ == "__main__":  # pragma: no cover
    main()
