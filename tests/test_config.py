"""Config loading: defaults, merging, and one clear line per problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from provision.cli import main
from provision.config import DEFAULT_PRICING, ConfigError, from_mapping, load_config


def test_no_config_file_gives_the_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(None)
    assert config.source is None
    assert config.profile == "holysheep"
    assert config.pricing == DEFAULT_PRICING
    assert config.pricing["deepseek-v3.2"] == {"input": 0.42, "output": 1.68}
    assert config.alerts["latency_p95"]["threshold_seconds"] == 5.0


def test_file_values_merge_over_defaults_key_by_key(tmp_path):
    path = tmp_path / "relaywatch.yaml"
    path.write_text("alerts:\n  error_ratio:\n    warning: 0.02\nselector:\n  job: relay\n")
    config = load_config(path)
    assert config.alerts["error_ratio"] == {"warning": 0.02, "critical": 0.2, "warning_for": "10m",
                                            "critical_for": "5m"}
    assert config.selector == {"job": "relay"}
    assert config.root == tmp_path


def test_price_table_replaces_the_default_one(tmp_path):
    config = from_mapping({"pricing": {"my-model": {"input": 1, "output": 2}}}, root=tmp_path)
    assert config.pricing == {"my-model": {"input": 1, "output": 2}}


@pytest.mark.parametrize("raw, expected", [
    ({"alerts": {"error_ratio": {"warning": 1.5}}}, "alerts.error_ratio.warning: 1.5 is greater than the maximum of 1"),
    ({"alerts": {"latency_p95": {"for": "ten minutes"}}}, "alerts.latency_p95.for: 'ten minutes' is not valid"),
    ({"pricing": {"gpt-4.1": {"input": 8}}}, "pricing.gpt-4.1: 'output' is required"),
    ({"pricing": {"gpt-4.1": {"input": -1, "output": 2}}}, "pricing.gpt-4.1.input: -1 is less than the minimum of 0"),
    ({"grafana": {"folder": {"uid": "x" * 41, "title": "t"}}}, "grafana.folder.uid"),
    ({"selector": {"bad-label": "x"}}, "selector"),
    ({"dashbords": {}}, "(top level): unknown key 'dashbords'"),
    ({"alerts": {"error_ratio": {"warning": 0.3, "critical": 0.2}}}, "warning threshold 0.3 is above the critical"),
    ({"rules": {"target": "nowhere"}}, "rules.target: unknown target 'nowhere'"),
])
def test_invalid_values_name_the_key_path(tmp_path, raw, expected):
    with pytest.raises(ConfigError) as err:
        from_mapping(raw, root=tmp_path, source=Path("relaywatch.yaml"))
    assert any(expected in line for line in err.value.problems), err.value.problems
    assert all(line.startswith("relaywatch.yaml: ") for line in err.value.problems)


def test_every_problem_gets_its_own_line(tmp_path):
    raw = {"scrape_interval": 15, "alerts": {"min_request_rate": -1}, "cost": {"monthly_budget_usd": "lots"}}
    with pytest.raises(ConfigError) as err:
        from_mapping(raw, root=tmp_path)
    assert len(err.value.problems) == 3
    assert [line.split(": ")[1] for line in err.value.problems] == [
        "alerts.min_request_rate", "cost.monthly_budget_usd", "scrape_interval"]


@pytest.mark.parametrize("text, expected", [
    ("alerts: [unclosed\n", "relaywatch.yaml:2:1: not valid YAML"),
    ("- just\n- a list\n", "the top level must be a mapping"),
    ("alerts:\n  error_ratio:\n    warning: 2\n", "alerts.error_ratio.warning: 2 is greater than the maximum of 1"),
])
def test_cli_reports_config_errors_in_one_line_each_with_exit_code_2(tmp_path, monkeypatch, text, expected):
    (tmp_path / "relaywatch.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["build"])
    assert result.exit_code == 2
    assert expected in result.output
    assert "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1


def test_missing_explicit_config_file_is_an_error(tmp_path):
    result = CliRunner().invoke(main, ["build", "--config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "config file not found" in result.output


def test_unknown_profile_is_a_config_error(tmp_path):
    (tmp_path / "relaywatch.yaml").write_text("profile: no-such-gateway\n")
    result = CliRunner().invoke(main, ["build", "--config", str(tmp_path / "relaywatch.yaml")])
    assert result.exit_code == 2
    assert "unknown profile 'no-such-gateway'" in result.output
