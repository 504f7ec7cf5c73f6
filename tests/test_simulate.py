"""The traffic simulator: deterministic traffic, scenarios, run-time switching, history."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml
from click.testing import CliRunner
from handmade_profiles import OTEL_LIKE, SPLIT_COUNTERS
from prometheus_client import CollectorRegistry, generate_latest

from provision.cli import main
from provision.config import from_mapping
from provision.exporter import SimulatorServer
from provision.history import backfill, history
from provision.profiles.holysheep import PROFILE as HOLYSHEEP
from provision.simulate import SCENARIOS, SUCCESS, simulator_from_config, traffic_from_config

STEADY = {"simulate": {"arrivals": "steady"}}


def make(settings=None, profile=HOLYSHEEP, scenario=None, start=0.0):
    config = from_mapping(settings or STEADY, root=Path("."))
    return simulator_from_config(config, profile, start=start, scenario=scenario)


def exposition(registry: CollectorRegistry) -> str:
    """The exposition without _created lines, which hold the wall-clock creation time."""
    return "\n".join(line for line in generate_latest(registry).decode().splitlines() if "_created" not in line)


@pytest.mark.parametrize("arrivals", ["steady", "poisson"])
def test_same_seed_same_traffic_other_seed_other_traffic(arrivals):
    runs = []
    for seed in (7, 7, 8):
        simulator, registry = make({"simulate": {"arrivals": arrivals, "seed": seed}})
        simulator.advance(600)
        runs.append(exposition(registry))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_steady_traffic_matches_the_configured_rates_and_shares():
    simulator, _ = make()
    simulator.advance(3600)
    expected = simulator.expectation()
    for model in simulator.traffic.models:
        done = {status: n for (m, status), n in simulator.completed.items() if m == model.name}
        assert sum(done.values()) / 3600 == pytest.approx(model.rate, rel=0.01)
        assert done[SUCCESS] / sum(done.values()) == pytest.approx(expected.shape(model.name).shares()[SUCCESS],
                                                                     abs=0.001)
        tokens = simulator.tokens[(model.name, "prompt")] / 3600
        assert tokens == pytest.approx(expected.token_rate("prompt", [model.name]), rel=0.02)


def _latency_mean(registry, model):
    total = registry.get_sample_value("holysheep_request_latency_seconds_sum", {"model": model})
    return total / registry.get_sample_value("holysheep_request_latency_seconds_count", {"model": model})


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_each_scenario_produces_what_its_expectation_says(scenario):
    simulator, registry = make(scenario=scenario)
    simulator.advance(1800)
    expected = simulator.expectation()
    for model in simulator.traffic.models:
        shape = expected.shape(model.name)
        done = {status: n for (m, status), n in simulator.completed.items() if m == model.name}
        total = sum(done.values())
        if shape.rate == 0:
            assert total <= model.rate * simulator.traffic.timeout_seconds  # only what was in flight at the start
            continue
        assert total / 1800 == pytest.approx(shape.rate, rel=0.02)
        for status, share in shape.shares().items():
            # Requests still in flight at the end (timeouts take 30 s) are not counted yet.
            assert done.get(status, 0) / total == pytest.approx(share, abs=0.005), (model.name, status)
        assert _latency_mean(registry, model.name) == pytest.approx(expected.mean_latency(model.name), rel=0.05)
        completion = simulator.tokens[(model.name, "completion")] / 1800
        assert completion == pytest.approx(expected.token_rate("completion", [model.name]), rel=0.03)


def test_one_model_scenarios_hit_the_fault_model_only():
    simulator, _ = make(scenario="error_burst")
    fault = simulator.traffic.faults.model
    expected = simulator.expectation()
    assert expected.ratio({"500", "502", "503"}, [fault]) > 0.3
    others = [m.name for m in simulator.traffic.models if m.name != fault]
    assert expected.ratio({"500", "502", "503"}, others) < 0.01


def test_in_flight_follows_littles_law():
    simulator, registry = make()
    samples = []
    for second in range(600, 1800, 7):
        simulator.advance(second)
        samples.append(registry.get_sample_value("holysheep_active_requests", {"model": "gpt-4.1"}))
    assert sum(samples) / len(samples) == pytest.approx(simulator.expectation().in_flight("gpt-4.1"), rel=0.15)


@pytest.mark.parametrize("profile", [OTEL_LIKE, SPLIT_COUNTERS], ids=lambda p: p.name)
def test_other_profile_shapes_are_simulated(profile):
    simulator, registry = make(profile=profile)
    simulator.advance(120)
    text = exposition(registry)
    for metric in profile.metrics:
        assert metric.name.removesuffix("_total") in text


def test_traffic_defaults_to_the_price_table_models():
    config = from_mapping({"pricing": {"m1": {"input": 1, "output": 2}, "m2": {"input": 1, "output": 2}}},
                          root=Path("."))
    assert [m.name for m in traffic_from_config(config).models] == ["m1", "m2"]


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"scenario": "meltdown"}, "simulate.scenario: unknown scenario 'meltdown'; expected one of healthy,"),
        ({"models": {"a": {"rate": 1, "latency": {"p50": 2, "p95": 1}}}},
         "simulate.models.a.latency: p95 1 must be above p50 2"),
        ({"statuses": {"500": 0.7, "502": 0, "429": 0.6, "401": 0, "timeout": 0, "error": 0}}, "simulate.statuses: the shares add up to 1.3"),
        ({"faults": {"model": "gpt-5"}}, "simulate.faults.model: 'gpt-5' is not a simulated model"),
        ({"arrivals": "bursty"}, "simulate.arrivals: 'bursty' is not one of ['poisson', 'steady']"),
        ({"port": 70000}, "simulate.port: 70000 is greater than the maximum of 65535"),
        ({"statuses": {"OK": 0.1}}, "simulate.statuses"),
        ({"statuses": {"200": 0.9}}, "simulate.statuses.200: 200 answers are the share the other statuses leave"),
    ],
)
def test_bad_simulate_settings_are_one_line_errors(tmp_path, settings, message):
    config = tmp_path / "relaywatch.yaml"
    config.write_text(yaml.safe_dump({"simulate": settings}))
    result = CliRunner().invoke(main, ["simulate", "--config", str(config)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and str(config) in lines[0]


def test_history_needs_its_file(tmp_path):
    result = CliRunner().invoke(main, ["simulate", "--history", "1h"])
    assert result.exit_code == 2
    assert "--history and --history-file go together" in result.output


class FakeClock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def served():
    clock = FakeClock(1000.0)
    simulator, registry = make(start=clock.now)
    server = SimulatorServer(simulator, registry, host="127.0.0.1", port=0, clock=clock).start()
    yield server, clock
    server.stop()


def test_http_endpoint_serves_metrics_and_switches_scenarios(served):
    server, clock = served
    clock.now += 120
    deadline = time.monotonic() + 10
    while server.simulator.now < clock.now and time.monotonic() < deadline:
        time.sleep(0.05)
    metrics = requests.get(f"{server.url}/metrics", timeout=5)
    assert metrics.status_code == 200 and metrics.headers["Content-Type"].startswith("text/plain")
    assert 'holysheep_requests_total{model="gpt-4.1",status_code="200"}' in metrics.text
    # text even when OpenMetrics is preferred, as Prometheus does: names keep their colons (vllm:*)
    preferred = requests.get(f"{server.url}/metrics", timeout=5,
                             headers={"Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"})
    assert preferred.headers["Content-Type"].startswith("text/plain; version=0.0.4")

    switched = requests.post(f"{server.url}/scenario/latency_spike", timeout=5)
    assert switched.status_code == 200 and switched.json()["scenario"] == "latency_spike"
    assert server.simulator.scenario == "latency_spike"
    assert requests.get(f"{server.url}/scenario", timeout=5).json()["scenario"] == "latency_spike"
    unknown = requests.post(f"{server.url}/scenario/meltdown", timeout=5)
    assert unknown.status_code == 404 and "healthy" in unknown.json()["scenarios"]
    assert requests.get(f"{server.url}/scenario/healthy", timeout=5).status_code == 405
    assert server.simulator.scenario == "latency_spike"
    assert requests.get(f"{server.url}/nothing", timeout=5).status_code == 404


def test_history_is_valid_openmetrics_for_promtool(tmp_path, promtool):
    simulator, registry = make(start=time.time() - 1800)
    text = history(simulator, registry, until=time.time(), step=15, target={"job": "gw", "instance": "h:1"})
    assert text.endswith("# EOF\n") and "_created" not in text
    assert re.search(r'^holysheep_requests_total\{instance="h:1",job="gw",model="gpt-4.1",status_code="200"\} '
                     r"\S+ \d+\.\d{3}$", text, re.MULTILINE)
    (tmp_path / "history.om").write_text(text)
    backfill(tmp_path / "history.om", tmp_path / "data", promtool=promtool)
    assert any((tmp_path / "data").glob("*/meta.json"))


def _run_simulate(*args):
    command = [sys.executable, "-m", "provision.cli", "simulate", "--port", "0", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    match = re.search(r"on (http://127\.0\.0\.1:\d+)/metrics", line)
    assert match, line + process.stderr.read()
    return process, match.group(1)


def test_cli_simulate_cycles_scenarios_on_sigusr1_and_stops_on_sigterm(tmp_path):
    process, url = _run_simulate()
    try:
        assert requests.get(f"{url}/scenario", timeout=5).json()["scenario"] == "healthy"
        process.send_signal(signal.SIGUSR1)
        assert process.stdout.readline().strip() == "scenario: error_burst"
        assert requests.get(f"{url}/scenario", timeout=5).json()["scenario"] == "error_burst"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
        process.wait()


def test_cli_simulate_reports_a_busy_port_in_one_line(tmp_path):
    process, url = _run_simulate()
    try:
        port = url.rsplit(":", 1)[1]
        result = CliRunner().invoke(main, ["simulate", "--port", port])
        assert result.exit_code == 2
        assert result.output.strip() == f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_cli_simulate_refuses_prometheus_port():
    result = CliRunner().invoke(main, ["simulate", "--port", "9090"])
    assert result.exit_code == 2
    assert "127.0.0.1:9090 is Prometheus's own port" in result.output


def test_a_profile_the_simulator_cannot_write_is_refused_in_one_line(tmp_path, monkeypatch):
    import dataclasses

    from handmade_profiles import install

    from provision.contract import REQUESTS, Selection

    broken = dataclasses.replace(HOLYSHEEP, name="broken",
                                 roles={**HOLYSHEEP.roles, REQUESTS: Selection("holysheep_active_requests")})
    install(monkeypatch, broken)
    config = tmp_path / "relaywatch.yaml"
    config.write_text("profile: broken\n")
    result = CliRunner().invoke(main, ["simulate", "--config", str(config)])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"{config}: profile: profile broken: role requests reads holysheep_active_requests (a gauge); relaywatch "
        "can only write a counter or a histogram's _count for it")
