"""SLOs through the config, the engine and the build: factors, validation, rules, dashboard."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from conftest import REPO
from provision import build
from provision.cli import main
from provision.config import from_mapping
from provision.contract import FAILED
from provision.profiles import holysheep
from provision.recording import Recordings
from provision.slo import BURN_POLICIES, burn_factor, le_matcher, load_slos


def built(tmp_path: Path, slo: dict | None = None, **config) -> build.BuildResult:
    result = build.build(from_mapping({**config, **({"slo": slo} if slo else {})}, root=REPO))
    build.write(result, tmp_path)
    return result


def slo_rules(result: build.BuildResult) -> list[dict]:
    return [rule for group in result.rule_files["llm-gateway-slo"]["groups"] for rule in group["rules"]]


def alerts(result: build.BuildResult) -> list[dict]:
    return [rule for rule in slo_rules(result) if "alert" in rule]


def recorded(result: build.BuildResult) -> dict[str, str]:
    return {rule["record"]: rule["expr"] for rule in slo_rules(result) if "record" in rule}


def cli_build(tmp_path: Path, config_text: str):
    config = tmp_path / "relaywatch.yaml"
    config.write_text(config_text)
    out = tmp_path / "out"
    return CliRunner().invoke(main, ["build", "--config", str(config), "--out", str(out)]), out


# -- factors -------------------------------------------------------------------------


@pytest.mark.parametrize("period, factors", [
    ("30d", ["14.4", "6", "3", "1"]),     # the SRE workbook's table
    ("4w", ["13.44", "5.6", "2.8", "1"]),  # 0.1 x 28d / 3d = 0.93 is raised to 1
    ("90d", ["43.2", "18", "9", "3"]),
    ("7d", ["3.36", "1.4", "1", "1"]),
])
def test_burn_factor_is_budget_share_times_period_over_long_window(period, factors):
    assert [str(burn_factor(p, period)) for p in BURN_POLICIES] == factors


def test_windows_and_budget_shares_are_the_workbooks():
    assert [(p.kind, p.long_window, p.short_window, p.budget_share) for p in BURN_POLICIES] == [
        ("page", "1h", "5m", Decimal("0.02")), ("page", "6h", "30m", Decimal("0.05")),
        ("ticket", "1d", "2h", Decimal("0.1")), ("ticket", "3d", "6h", Decimal("0.1"))]


def test_alert_thresholds_follow_the_period(tmp_path):
    result = built(tmp_path, {"period": "4w"})
    page = next(a for a in alerts(result) if a["labels"]["severity"] == "critical")
    assert '"1h", "", "") > 13.44 and' in page["expr"] and '"6h", "", "") > 5.6 and' in page["expr"]
    assert "job:llm_slo_availability_error_budget:remaining4w" in recorded(result)
    assert "of the 4w objective" in page["annotations"]["description"]


# -- config validation ----------------------------------------------------------------


def test_a_latency_threshold_between_buckets_is_a_config_error_naming_the_key(tmp_path):
    result, out = cli_build(tmp_path, "slo:\n  latency: {target: 0.95, threshold_seconds: 3}\n")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "relaywatch.yaml: slo.latency.threshold_seconds: 3 is not a bucket boundary" in lines[0]
    assert lines[0].endswith("use one of 0.1, 0.25, 0.5, 1, 2, 5, 10")
    assert not out.exists()


@pytest.mark.parametrize("text, expected", [
    ("slo:\n  latency: {target: 0.95}\n", "slo.latency.threshold_seconds: required when slo.latency.target is set"),
    ("slo:\n  availability: {target: 99.5}\n", "slo.availability.target: 99.5 is greater than or equal to the maximum"),
    ("slo:\n  availability: {target: 1}\n", "slo.availability.target: 1 is greater than or equal to the maximum"),
    ("slo:\n  period: 1d\n", "slo.period: 1d is shorter than 3d"),
    ("slo:\n  period: month\n", "slo.period: 'month' is not valid"),
    ("slo:\n  long_window_interval: 10m\n", "slo.long_window_interval: 10m is too long"),
    ("slo:\n  availability: {traget: 0.99}\n", "slo.availability: unknown key 'traget'"),
])
def test_bad_slo_settings_exit_2_with_one_line_naming_the_key(tmp_path, text, expected):
    result, out = cli_build(tmp_path, text)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert expected in result.output
    assert not out.exists()


def test_threshold_matches_a_bucket_however_the_exporter_spells_it():
    assert le_matcher(1).render() == 'le=~"1|1\\\\.0"'
    assert le_matcher(0.25).render() == 'le=~"0\\\\.25"'
    assert le_matcher(5.0).render() == 'le=~"5|5\\\\.0"'


# -- what the profile cannot measure --------------------------------------------------


def test_an_slo_the_profile_cannot_measure_is_left_out_with_one_notice(tmp_path, monkeypatch):
    roles = {k: v for k, v in holysheep.PROFILE.roles.items() if k != FAILED}
    no_failures = dataclasses.replace(holysheep.PROFILE, roles=roles)
    monkeypatch.setattr("provision.definitions.get_profile", lambda name, custom=None: no_failures)
    result = built(tmp_path)
    slo_notices = [n for n in result.notices if "slo" in n]
    assert slo_notices == ["slo availability left out: the profile holysheep has no failed"]
    assert "llm-gateway-slo" not in result.rule_files and "llm-gateway-slo" not in result.dashboards


def test_a_pair_that_cannot_fire_at_the_target_is_left_out_with_a_notice():
    config = from_mapping({"slo": {"latency": {"target": 0.9, "threshold_seconds": 5}}}, root=REPO)
    recordings = Recordings(holysheep.PROFILE, selector={}, window="5m", pricing={})
    slo, notices = load_slos(config, holysheep.PROFILE, recordings)
    latency = slo.objectives[1]
    assert [(b.kind, [p.long_window for p, _ in b.pairs]) for b in slo.burn_alerts(latency)] == [
        ("page", ["6h"]), ("ticket", ["1d", "3d"])]
    assert notices == ["slo latency: the page alert over 1h/5m left out: a 14.4x burn of a 10% budget "
                       "needs 144% of requests to be bad"]


def test_no_objectives_means_no_slo_rules_and_no_slo_dashboard(tmp_path):
    result = built(tmp_path, {"availability": {"target": None}})
    assert "llm-gateway-slo" not in result.rule_files
    assert "llm-gateway-slo" not in result.dashboards


# -- the rules -------------------------------------------------------------------------


def test_default_build_records_every_window_the_budget_and_the_burn_rate(tmp_path):
    names = recorded(built(tmp_path))
    for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"):
        assert f"job:llm_slo_availability_errors:ratio_rate{window}" in names
    assert names["job:llm_slo_availability_error_budget:remaining30d"] == (
        "1 - job:llm_slo_availability_errors:ratio_rate30d / 0.015")
    assert names["job:llm_slo_availability_error_budget:burnrate1h"] == (
        "job:llm_slo_availability_errors:ratio_rate1h / 0.015")
    assert names["job:llm_slo_availability_errors:rate5m"] == "sum by (job) (job_model:llm_requests_failed:rate5m)"


def test_windows_up_to_an_hour_read_raw_counters_and_longer_ones_sum_the_5m_rates(tmp_path):
    result = built(tmp_path)
    names = recorded(result)
    for window in ("30m", "1h"):
        # the raw counters are read once per window, by status; both sides of the ratio read that
        assert names[f"job_status:llm_requests:rate{window}"] == (
            f'sum by (job, status) (label_replace(sum by (job, status_code) (rate(holysheep_requests_total[{window}])), '
            '"status", "$1", "status_code", "(.*)"))')
        assert names[f"job:llm_slo_availability_errors:ratio_rate{window}"] == (
            f'(sum by (job) (job_status:llm_requests:rate{window}{{status=~"5..|timeout|error"}}) '
            f"or 0 * job:llm_slo_availability_requests:rate5m) / (sum by (job) (job_status:llm_requests:rate{window}))")
    raw_reads = [r["expr"] for g in result.rule_files["llm-gateway-slo"]["groups"] for r in g["rules"]
                 if "holysheep_requests_total[" in r.get("expr", "")]
    assert len(raw_reads) == 2  # one per raw window
    assert names["job:llm_slo_availability_errors:ratio_rate30d"] == (
        "sum_over_time(job:llm_slo_availability_errors:rate5m[30d]) "
        "/ sum_over_time(job:llm_slo_availability_requests:rate5m[30d])")


def test_long_windows_are_evaluated_less_often(tmp_path):
    groups = {g["name"]: g for g in built(tmp_path).rule_files["llm-gateway-slo"]["groups"]}
    assert groups["llm-gateway-slo"]["interval"] == "30s"
    assert groups["llm-gateway-slo-long"]["interval"] == "2m"
    assert {r["record"].rsplit(":", 1)[1] for r in groups["llm-gateway-slo-long"]["rules"]} == {
        "ratio_rate1d", "ratio_rate3d", "ratio_rate30d", "remaining30d"}


def test_a_different_recording_window_reads_5m_from_raw_counters(tmp_path):
    names = recorded(built(tmp_path, rules={"window": "2m"}))
    assert "job:llm_slo_availability_errors:rate2m" in names
    assert "job_status:llm_requests:rate5m" in names["job:llm_slo_availability_errors:ratio_rate5m"]
    assert "holysheep_requests_total[5m]" in names["job_status:llm_requests:rate5m"]
    assert "job:llm_slo_availability_errors:rate2m[1d]" in names["job:llm_slo_availability_errors:ratio_rate1d"]


def test_a_period_equal_to_an_alert_window_shares_its_ratio(tmp_path):
    names = recorded(built(tmp_path, {"period": "72h"}))
    assert "job:llm_slo_availability_errors:ratio_rate72h" not in names
    assert names["job:llm_slo_availability_error_budget:remaining72h"] == (
        "1 - job:llm_slo_availability_errors:ratio_rate3d / 0.015")


def test_rate_limited_requests_count_as_failures_only_when_asked(tmp_path):
    plain = recorded(built(tmp_path / "a"))
    counted = recorded(built(tmp_path / "b", {"availability": {"count_rate_limited": True}}))
    assert "429" not in plain["job:llm_slo_availability_errors:ratio_rate1h"]
    assert 'job_status:llm_requests:rate1h{status="429"}' in counted["job:llm_slo_availability_errors:ratio_rate1h"]
    assert "llm_requests_rate_limited:rate5m" in counted["job:llm_slo_availability_errors:rate5m"]


def test_latency_counts_requests_above_the_threshold_bucket(tmp_path):
    names = recorded(built(tmp_path, {"latency": {"target": 0.95, "threshold_seconds": 5}}))
    assert names["job:llm_slo_latency_errors:rate5m"] == (
        'sum by (job) (clamp_min(job_model:llm_request_latency_seconds_count:rate5m - sum by (job, model) '
        '(job_model_le:llm_request_latency_seconds_bucket:rate5m{le=~"5|5\\\\.0"}), 0))')
    assert "holysheep_request_latency_seconds_count[1h]" in names["job:llm_slo_latency_errors:ratio_rate1h"]


def test_one_page_and_one_ticket_each_an_or_of_two_window_pairs(tmp_path):
    rules = alerts(built(tmp_path))
    assert [(a["alert"], a["labels"]) for a in rules] == [
        ("LLMGatewayErrorBudgetBurn", {"severity": "critical", "slo": "availability"}),
        ("LLMGatewayErrorBudgetBurn", {"severity": "warning", "slo": "availability"})]
    page, ticket = rules
    assert page["expr"] == (
        '(label_replace(job:llm_slo_availability_errors:ratio_rate1h / 0.015, "window", "1h", "", "") > 14.4 '
        "and on (job) ((job:llm_slo_availability_errors:ratio_rate5m / 0.015) > 14.4)) or "
        '(label_replace(job:llm_slo_availability_errors:ratio_rate6h / 0.015, "window", "6h", "", "") > 6 '
        "and on (job) ((job:llm_slo_availability_errors:ratio_rate30m / 0.015) > 6))")
    assert "ratio_rate1d / 0.015" in ticket["expr"] and "> 3 and on (job)" in ticket["expr"]
    assert "ratio_rate3d / 0.015" in ticket["expr"] and "> 1 and on (job)" in ticket["expr"]
    assert "for" not in page  # the short window already filters blips
    notes = page["annotations"]
    assert "{{" not in notes["summary"] and notes["summary"].endswith(".")
    assert '{{ $value | printf "%.1f" }}x faster than sustainable over the last {{ $labels.window }}' in (
        notes["description"])
    assert "This page fires at 14.4x over 1h and 5m, or 6x over 6h and 30m." in notes["description"]
    assert "query" in notes["description"] and "remaining30d{job=%q}" in notes["description"]
    assert notes["runbook_url"].endswith("docs/runbooks.md#llmgatewayerrorbudgetburn")


def test_grafana_managed_burn_alerts_point_to_the_dashboard_instead_of_querying(tmp_path):
    result = built(tmp_path, rules={"target": "grafana"})
    bodies = {g.name: g.body for g in result.deliveries.grafana_rule_groups}
    rules = bodies["llm-gateway-slo-alerts"]["rules"]
    assert [r["title"] for r in rules] == ["LLMGatewayErrorBudgetBurn (critical)", "LLMGatewayErrorBudgetBurn (warning)"]
    page = rules[0]
    assert page["annotations"]["description"].endswith("This page fires at 14.4x over 1h and 5m, or 6x over 6h "
                                                       "and 30m.")  # no queried budget: Grafana cannot query
    # Each branch filters with its own factor in the query; the condition passes the loosest.
    assert page["data"][2]["model"]["conditions"][0]["evaluator"] == {"params": [6], "type": "gt"}
    assert any("Grafana evaluates the SLO burn alerts" in n for n in result.notices)


def test_per_model_objectives_alert_per_model_and_record_both_levels(tmp_path):
    result = built(tmp_path, {"per_model": True, "latency": {"target": 0.95, "threshold_seconds": 5}})
    names = recorded(result)
    assert "job_model:llm_slo_availability_errors:ratio_rate1h" in names
    assert "job:llm_slo_availability_errors:ratio_rate1h" in names  # for the dashboard's totals
    # one raw read per window, at the model level; the job level sums it
    assert "holysheep_requests_total[1h]" in names["job_model_status:llm_requests:rate1h"]
    assert names["job_status:llm_requests:rate1h"] == "sum by (job, status) (job_model_status:llm_requests:rate1h)"
    assert names["job:llm_slo_latency_errors:rate5m"] == "sum by (job) (job_model:llm_slo_latency_errors:rate5m)"
    for alert in alerts(result):
        assert "(label_replace(job_model:llm_slo_" in alert["expr"] and "and on (job, model)" in alert["expr"]
        assert "{{ $labels.model }}" in alert["annotations"]["description"]
        assert "{job=%q, model=%q}" in alert["annotations"]["description"]
    assert {a["alert"] for a in alerts(result)} == {"LLMGatewayErrorBudgetBurn", "LLMGatewayLatencyBudgetBurn"}


def test_every_burn_alert_has_a_runbook_section(tmp_path):
    anchors = {line[3:].strip().lower() for line in (REPO / "docs" / "runbooks.md").read_text().splitlines()
               if line.startswith("## ")}
    result = built(tmp_path, {"latency": {"target": 0.95, "threshold_seconds": 5}})
    used = {a["annotations"]["runbook_url"].split("#")[1] for a in alerts(result)}
    assert used == {"llmgatewayerrorbudgetburn", "llmgatewaylatencybudgetburn"}
    assert used <= anchors


def test_the_build_with_slos_validates_and_passes_promtool(tmp_path):
    result, out = cli_build(tmp_path, f"paths: {{dashboards: {REPO}/dashboards, alerts: {REPO}/alerts}}\n"
                                      "slo:\n  per_model: true\n  latency: {target: 0.95, threshold_seconds: 5}\n")
    assert result.exit_code == 0, result.output
    assert "0 problems" in result.output
    assert (out / "rules" / "llm-gateway-slo.yaml").exists() and (out / "dashboards" / "llm-gateway-slo.json").exists()


# -- the dashboard ---------------------------------------------------------------------


def slo_dashboard(tmp_path: Path, slo: dict | None = None) -> dict:
    built(tmp_path, slo)
    return json.loads((tmp_path / "dashboards" / "llm-gateway-slo.json").read_text())


def test_dashboard_shows_objective_sli_budget_burn_rates_and_burn_down(tmp_path):
    board = slo_dashboard(tmp_path)
    assert board["uid"] == "llm-gateway-slo" and board["time"] == {"from": "now-30d", "to": "now"}
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource", "job", "model"]
    titles = [p["title"] for p in board["panels"]]
    assert titles == ["Availability: 98.5% of requests succeed over 30d", "Objective", "SLI over 30d",
                      "Error budget left", "Burn rate (1h)", "Error budget left over time", "Burn rate",
                      "Burn rate by window", "SLI"]
    panels = {p["title"]: p for p in board["panels"] if p["type"] != "row"}
    assert panels["Objective"]["targets"][0]["expr"] == "vector(0.985)"
    by_window = [t["legendFormat"] for t in panels["Burn rate by window"]["targets"]]
    assert by_window == ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"]
    assert panels["Burn rate (1h)"]["targets"][0]["expr"] == (
        'job:llm_slo_availability_error_budget:burnrate1h{job=~"$job"}')  # the recorded current burn rate
    assert panels["Error budget left over time"]["targets"][0]["expr"] == (
        'job:llm_slo_availability_error_budget:remaining30d{job=~"$job"}')
    for panel in panels.values():
        assert panel["description"] and panel["fieldConfig"]["defaults"]["unit"], panel["title"]


def test_dashboard_breaks_the_budget_down_by_model_when_configured(tmp_path):
    board = slo_dashboard(tmp_path, {"per_model": True, "latency": {"target": 0.95, "threshold_seconds": 5}})
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows == ["Availability: 98.5% of requests succeed over 30d", "Availability by model",
                    "Latency: 95% of requests answered within 5s over 30d", "Latency by model"]
    by_model = [t["expr"] for p in board["panels"] if p.get("title", "").endswith("by model") and p["type"] != "row"
                for t in p["targets"]]
    assert by_model and all('job=~"$job", model=~"$model"' in expr for expr in by_model)
    assert all(expr.startswith("job_model:") for expr in by_model)


def test_slo_dashboard_rule_file_and_alerts_are_deterministic(tmp_path):
    first = build.rendered_files(built(tmp_path / "a", {"per_model": True}))
    second = build.rendered_files(built(tmp_path / "b", {"per_model": True}))
    assert first == second
    assert yaml.safe_load(first["rules/llm-gateway-slo.yaml"])["groups"]
