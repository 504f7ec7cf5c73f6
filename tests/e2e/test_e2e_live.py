"""The commands a user runs, live: build, simulate, scrape-config and a real Prometheus.

Scenarios are switched at run time over the simulator's HTTP endpoint and the alerts
follow: an error burst fires and resolves, a token spike fires against the model's own
recorded baseline, a traffic stop fires, and a stopped exporter fires TargetDown and
MetricsAbsent. Short windows and `for` durations (the config allows them) keep this to
about a minute and a half.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import requests
import yaml
from click.testing import CliRunner
from conftest import require_binary
from e2e_harness import JOB, e2e_settings, free_port, wait_until

from provision.cli import main
from provision.prometheus_server import PrometheusServer

pytestmark = pytest.mark.e2e
FAULT_MODEL = "claude-sonnet-4.5"


@pytest.fixture
def live(tmp_path):
    prometheus_binary = require_binary("prometheus")
    require_binary("promtool")
    settings = e2e_settings(
        tmp_path,
        scrape_interval="1s",
        rules={"interval": "1s", "window": "6s"},
        alerts={"error_ratio": {"warning_for": "1s", "critical_for": "1s"},
                "traffic_stopped": {"for": "1s", "lookback": "10m"},
                "token_spike": {"baseline": "15s", "for": "1s"},
                "target_down": {"for": "1s"}, "metrics_absent": {"for": "1s"}},
        simulate={"timeout_seconds": 3, "faults": {"model": FAULT_MODEL}},
    )
    config = tmp_path / "relaywatch.yaml"
    config.write_text(yaml.safe_dump(settings))
    built = CliRunner().invoke(main, ["build", "--config", str(config)])
    assert built.exit_code == 0, built.output

    simulator = subprocess.Popen([sys.executable, "-m", "provision.cli", "simulate", "--config", str(config),
                                  "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    prometheus = None
    try:
        banner = simulator.stdout.readline()
        url = re.search(r"on (http://[\d.]+:\d+)/metrics", banner)
        assert url, banner + simulator.stderr.read()
        target = url.group(1).removeprefix("http://")
        scrape = CliRunner().invoke(main, ["scrape-config", "--config", str(config), "--target", target,
                                           "--rules-dir", str(tmp_path / "build" / "rules")])
        assert scrape.exit_code == 0, scrape.output
        (tmp_path / "prometheus.yml").write_text(scrape.stdout)
        prometheus = PrometheusServer(config_file=tmp_path / "prometheus.yml", data_dir=tmp_path / "data",
                                      listen=f"127.0.0.1:{free_port()}", binary=prometheus_binary).start()
        yield simulator, url.group(1), prometheus
    finally:
        if prometheus is not None:
            prometheus.stop()
        simulator.kill()
        simulator.wait()


def firing(prometheus, alertname: str, **labels) -> bool:
    return any(a["labels"]["alertname"] == alertname and a["state"] == "firing"
               and all(a["labels"].get(k) == v for k, v in labels.items()) for a in prometheus.alerts())


def switch(url: str, scenario: str) -> None:
    answer = requests.post(f"{url}/scenario/{scenario}", timeout=5)
    assert answer.status_code == 200 and answer.json()["scenario"] == scenario


def test_alerts_follow_scenarios_switched_at_run_time(live):
    simulator, url, prometheus = live

    def serving():
        result = prometheus.query(f'job:llm_requests:rate6s{{job="{JOB}"}}')
        return result and float(result[0]["value"][1]) > 5

    wait_until(serving, "traffic in the recorded request rate")
    assert prometheus.alerts() == []

    switch(url, "error_burst")
    wait_until(lambda: firing(prometheus, "LLMGatewayErrorRatioHigh", model=FAULT_MODEL, severity="critical"),
               "LLMGatewayErrorRatioHigh (critical) for the fault model")
    others = {a["labels"].get("model") for a in prometheus.alerts()}
    assert others == {FAULT_MODEL}

    switch(url, "healthy")
    wait_until(lambda: not prometheus.alerts(), "the error burst's alerts to resolve")

    switch(url, "token_spike")
    wait_until(lambda: firing(prometheus, "LLMGatewayTokenSpike", model=FAULT_MODEL), "LLMGatewayTokenSpike")
    assert {a["labels"].get("model") for a in prometheus.alerts()} == {FAULT_MODEL}

    switch(url, "traffic_stop")
    wait_until(lambda: firing(prometheus, "LLMGatewayTrafficStopped", job=JOB), "LLMGatewayTrafficStopped")

    simulator.terminate()
    assert simulator.wait(timeout=10) == 0
    wait_until(lambda: firing(prometheus, "LLMGatewayTargetDown", job=JOB), "LLMGatewayTargetDown")
    wait_until(lambda: firing(prometheus, "LLMGatewayMetricsAbsent"), "LLMGatewayMetricsAbsent")
