"""`provision scrape-config`: the scrape job and rule_files, valid for Prometheus 2.42."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from provision.cli import main

REPO = Path(__file__).resolve().parent.parent


def config_file(tmp_path: Path, **settings) -> Path:
    settings.setdefault("paths", {"dashboards": str(REPO / "dashboards"), "alerts": str(REPO / "alerts"),
                                  "build": str(tmp_path / "build")})
    path = tmp_path / "relaywatch.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def scrape(*args):
    return CliRunner().invoke(main, ["scrape-config", *args])


def test_default_job_targets_the_simulator_port_and_hints_at_the_selector(tmp_path):
    result = scrape("--config", str(config_file(tmp_path)))
    assert result.exit_code == 0
    assert "hint: set `selector: {job: llm-gateway}`" in result.stderr
    document = yaml.safe_load(result.stdout)
    job = document["scrape_configs"][0]
    assert job["job_name"] == "llm-gateway"
    assert job["static_configs"] == [{"targets": ["127.0.0.1:9464"]}]
    assert job["metrics_path"] == "/metrics" and job["scrape_interval"] == "15s"
    assert document["rule_files"] == ["/etc/prometheus/rules/relaywatch/*.yaml"]  # rules.files.directory
    assert document["global"] == {"scrape_interval": "15s", "evaluation_interval": "30s"}


def test_selector_names_the_job_and_labels_the_targets(tmp_path):
    path = config_file(tmp_path, selector={"job": "relay", "env": "prod"}, scrape_interval="30s")
    result = scrape("--config", str(path), "--target", "gw-1:9464", "--target", "gw-2:9464",
                    "--rules-dir", "/etc/prometheus/relaywatch")
    assert result.exit_code == 0 and "hint" not in result.stderr
    document = yaml.safe_load(result.stdout)
    job = document["scrape_configs"][0]
    assert job["job_name"] == "relay" and job["scrape_interval"] == "30s"
    assert job["static_configs"] == [{"targets": ["gw-1:9464", "gw-2:9464"], "labels": {"env": "prod"}}]
    assert document["rule_files"] == ["/etc/prometheus/relaywatch/*.yaml"]


@pytest.mark.parametrize("target", ["localhost:9090", "127.0.0.1:9090"])
def test_prometheus_own_port_is_refused(tmp_path, target):
    result = scrape("--config", str(config_file(tmp_path)), "--target", target)
    assert result.exit_code == 2
    assert result.output.strip().endswith("relaywatch uses 9464)")
    assert len(result.output.strip().splitlines()) == 1


def test_a_remote_gateway_on_9090_is_fine(tmp_path):
    assert scrape("--config", str(config_file(tmp_path)), "--target", "relay.internal:9090").exit_code == 0


@pytest.mark.parametrize("target", ["http://gw:9464", "gw", "gw:port", "gw:9464/metrics"])
def test_malformed_targets_are_usage_errors(tmp_path, target):
    result = scrape("--config", str(config_file(tmp_path)), "--target", target)
    assert result.exit_code == 2
    assert f"--target {target!r}: expected HOST:PORT" in result.output


def test_promtool_accepts_the_configuration_with_the_built_rules(tmp_path, promtool):
    path = config_file(tmp_path, selector={"job": "llm-gateway"})
    assert CliRunner().invoke(main, ["build", "--config", str(path), "--no-validate"]).exit_code == 0
    result = scrape("--config", str(path), "--rules-dir", str(tmp_path / "build" / "rules"))
    prometheus_yml = tmp_path / "prometheus.yml"
    prometheus_yml.write_text(result.stdout)
    checked = subprocess.run([promtool, "check", "config", str(prometheus_yml)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    built = len(list((tmp_path / "build" / "rules").glob("*.yaml")))
    assert built >= 2 and f"SUCCESS: {built} rule files found" in checked.stdout
