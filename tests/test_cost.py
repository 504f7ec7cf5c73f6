"""Cost: spend recording, the cost dashboard's numbers, and the cost alerts, under promtool.

The dashboard's queries are taken from the built JSON with Grafana's
variables filled in as Grafana would fill them for a panel whose range is two
hours (`$__range` = 7200s) and evaluated by promtool against known token rates.
Evaluation happens 10 s after a rule evaluation, like a real query whose `now`
does not fall on the rule group's ticks. promtool evaluates rules at the test's
evaluation_interval, not the groups' own: the tests use the groups' 30s, as
Prometheus does.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from exporter_series import absent, close_to, firing, only
from promtool_helpers import Series, run_promtool_test, write_test_file
from provision import build
from provision.config import DEFAULT_PRICING, from_mapping
from provision.validate import dashboard_problems

REPO = Path(__file__).resolve().parent.parent
GRAFANA_SCHEMAS = REPO / "tests" / "schemas" / "grafana"
COST_UID = "llm-gateway-cost"
JOB = "llm-gateway"
STEP = "30s"  # the rule groups' interval (rules.interval), and the scrape interval of these series
PER_STEP = 30

# tokens per second (prompt, completion) and requests per second, per model
TRAFFIC = {"gpt-4.1": (1000, 500, 10), "deepseek-v3.2": (100, 50, 1), "llama-3-70b": (20, 10, 1)}
UNPRICED = "llama-3-70b"
SPIKE = "LLMGatewayTokenSpike"


def usd_per_second(model: str) -> float:
    prompt, completion, _ = TRAFFIC[model]
    price = DEFAULT_PRICING[model]
    return (prompt * price["input"] + completion * price["output"]) / 1e6


PRICED_PER_SECOND = sum(usd_per_second(m) for m in TRAFFIC if m != UNPRICED)


def steady(minutes: int, per_step: int = PER_STEP) -> list[Series]:
    """holysheep_* counters of TRAFFIC, one sample every `per_step` seconds."""
    steps = minutes * 60 // per_step
    series = []
    for model, (prompt, completion, requests) in TRAFFIC.items():
        lab = f'job="{JOB}", instance="gw-1:8000", model="{model}"'
        series += [
            Series(f'holysheep_requests_total{{{lab}, status_code="200"}}', f"0+{requests * per_step}x{steps}"),
            Series(f'holysheep_tokens_total{{{lab}, token_type="prompt"}}', f"0+{prompt * per_step}x{steps}"),
            Series(f'holysheep_tokens_total{{{lab}, token_type="completion"}}', f"0+{completion * per_step}x{steps}"),
        ]
    return series


def build_dir(tmp_path: Path, **settings) -> Path:
    out = tmp_path / "build"
    build.write(build.build(from_mapping(settings, root=REPO)), out)
    return out


def rules_of(out: Path) -> list[Path]:
    return sorted((out / "rules").glob("*.yaml"))


def check(promtool: str, tmp_path: Path, out: Path, series: list[Series], checks, interval: str = STEP) -> None:
    run_promtool_test(promtool, write_test_file(tmp_path / "t.yaml", rules_of(out), series, exprs=checks,
                                                interval=interval))


def dashboard(out: Path) -> dict:
    return json.loads((out / "dashboards" / f"{COST_UID}.json").read_text())


def panel(board: dict, title: str) -> dict:
    return next(p for p in board["panels"] if p["title"] == title)


def query(board: dict, title: str, ref: str = "A", range_s: int = 7200) -> str:
    """A panel's query with the dashboard variables and Grafana's range variables filled in."""
    expr = next(t["expr"] for t in panel(board, title)["targets"] if t["refId"] == ref)
    return (expr.replace("$__range_s", str(range_s)).replace("$__range", f"{range_s}s")
            .replace("$job", ".*").replace("$model", ".*"))


def test_cost_dashboard_validates_and_carries_the_expected_panels(tmp_path):
    out = build_dir(tmp_path, cost={"monthly_budget_usd": 2000})
    board = dashboard(out)
    recorded = {r["record"] for f in rules_of(out) for g in __import__("yaml").safe_load(f.read_text())["groups"]
                for r in g["rules"] if "record" in r}
    assert dashboard_problems(f"{COST_UID}.json", board, recorded | {"up"}) == []
    for version in ("v11.6.x", "v12.3.3"):
        schema = json.loads((GRAFANA_SCHEMAS / version / "dashboard.jsonschema.json").read_text())
        errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(board), key=str)
        assert not errors, (version, errors[0].message)
    assert board["timezone"] == "utc"
    titles = [p["title"] for p in board["panels"] if p["type"] != "row"]
    for expected in ("Spend rate", "Today", "Month to date", "Projected month", "Budget used",
                     "Models without a price", "Spend rate by model", "Share of spend by model",
                     "Cost per 1k requests by model", "The same traffic on each model", "Tokens of unpriced models"):
        assert expected in titles
    assert panel(board, "Today")["timeFrom"] == "now/d"
    assert panel(board, "Month to date")["timeFrom"] == panel(board, "Projected month")["timeFrom"] == "now/M"
    assert all(t.get("instant") for t in panel(board, "Today")["targets"])
    assert panel(board, "Share of spend by model")["type"] == "piechart"
    steps = panel(board, "Projected month")["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [0, 1600, 2000]
    assert panel(board, "Tokens of unpriced models")["fieldConfig"]["defaults"]["noValue"]


def test_without_a_budget_there_is_no_budget_panel_or_alert(tmp_path):
    out = build_dir(tmp_path)
    assert "Budget used" not in [p["title"] for p in dashboard(out)["panels"]]
    assert "LLMGatewaySpendOverBudget" not in "".join(p.read_text() for p in rules_of(out))
    assert "LLMGatewayTokenSpike" in "".join(p.read_text() for p in rules_of(out))


def test_an_empty_price_table_leaves_spend_out_with_notices_but_still_shows_unpriced_tokens(tmp_path):
    result = build.build(from_mapping({"pricing": {}}, root=REPO))
    titles = [p["title"] for p in result.dashboards[COST_UID]["panels"]]
    assert "Tokens of unpriced models" in titles and "Models without a price" in titles
    assert "Today" not in titles and "Spend rate by model" not in titles
    assert "the price table (pricing) is empty: no spend is recorded; what needs it is left out" in result.notices
    assert any("panel 'Today' left out: the price table (pricing) is empty" in n for n in result.notices)
    overview = [p["title"] for p in result.dashboards["llm-gateway-overview"]["panels"]]
    assert "Spend by model" not in overview  # never a chart of a series no rule records


def test_spend_per_hour_cost_per_request_and_unpriced_models(tmp_path, promtool):
    out = build_dir(tmp_path)
    board = dashboard(out)
    at = "3h10s"
    checks = []
    for model in TRAFFIC:
        labels = f'{{job="{JOB}", model="{model}"}}'
        if model == UNPRICED:
            checks.append(absent(at, f"job_model_token_type:llm_spend_usd:rate5m{labels}"))
            checks.append(close_to(at, f"job_model:llm_tokens_unpriced:rate5m{labels}", labels, 30.0))
            continue
        checks.append(close_to(at, f"sum by (job, model) (job_model_token_type:llm_spend_usd:rate5m{labels}) * 3600",
                               labels, usd_per_second(model) * 3600))
        checks.append(absent(at, f"job_model:llm_tokens_unpriced:rate5m{labels}"))
        per_1k = usd_per_second(model) / TRAFFIC[model][2] * 1000
        cost_per_1k = query(board, "Cost per 1k requests by model")
        checks.append(close_to(at, only(cost_per_1k, model=model), f'{{model="{model}"}}', per_1k))
    checks += [
        close_to(at, query(board, "Spend rate"), "{}", PRICED_PER_SECOND * 3600),
        close_to(at, query(board, "Models without a price"), "{}", 1),
        close_to(at, query(board, "Tokens of unpriced models"), f'{{model="{UNPRICED}"}}', 30 * 7200),
    ]
    check(promtool, tmp_path, out, steady(200), checks)


def test_spend_over_a_range_share_by_model_and_the_same_traffic_on_each_model(tmp_path, promtool):
    out = build_dir(tmp_path)
    board = dashboard(out)
    at = "3h10s"  # the panel's range, 7200 s, lies in steady traffic
    checks = [close_to(at, query(board, "Today"), "{}", PRICED_PER_SECOND * 7200)]
    for model in ("gpt-4.1", "deepseek-v3.2"):
        checks.append(close_to(at, only(query(board, "Share of spend by model"), model=model),
                               f'{{model="{model}"}}', usd_per_second(model) * 7200))
    prompt = sum(t[0] for t in TRAFFIC.values())
    completion = sum(t[1] for t in TRAFFIC.values())
    for model, price in DEFAULT_PRICING.items():
        cost = (prompt * price["input"] + completion * price["output"]) / 1e6 * 7200
        checks.append(close_to(at, only(query(board, "The same traffic on each model"), model=model),
                               f'{{model="{model}"}}', cost))
    checks.append(close_to(at, query(board, "The same traffic on each model", ref="B"), "{}", PRICED_PER_SECOND * 7200))
    checks.append(close_to(at, only(query(board, "Price table"), model="gpt-4.1", token_type="completion"),
                           '{model="gpt-4.1", token_type="completion"}', 32.0))
    check(promtool, tmp_path, out, steady(200), checks)


def test_a_model_that_appears_mid_range_is_not_stretched_over_the_whole_range(tmp_path, promtool):
    """gpt-4.1 only from 2h on: a range ending at 3h05m10s counts the 3910 s it ran, not the whole range."""
    out = build_dir(tmp_path)
    lab = f'job="{JOB}", instance="gw-1:8000", model="gpt-4.1"'
    series = [Series(f'holysheep_tokens_total{{{lab}, token_type="prompt"}}', "_x240 0+30000x160"),
              Series(f'holysheep_tokens_total{{{lab}, token_type="completion"}}', "_x240 0+15000x160")]
    at, ran = "3h5m10s", 3910
    board = dashboard(out)
    checks = [close_to(at, query(board, "Today", range_s=3600), "{}", usd_per_second("gpt-4.1") * 3600),
              # the 5m rate ramps up over its first window: within one window's spend (300 s of 3910 s),
              # where spreading the average over the whole range would say 7200 s
              close_to(at, query(board, "Today", range_s=7200), "{}", usd_per_second("gpt-4.1") * ran,
                       rel=300 / ran)]
    check(promtool, tmp_path, out, series, checks)


def test_projected_month_is_month_to_date_plus_the_last_days_pace(tmp_path, promtool):
    out = build_dir(tmp_path, rules={"interval": "1m"})  # a day of samples: one a minute keeps the test quick
    board = dashboard(out)
    assert "* 60" in query(board, "Projected month")
    at = "25h10s"  # the last day lies in steady traffic; January 1970 has 31 days
    projected = query(board, "Projected month", range_s=7200)
    checks = [close_to(at, projected, "{}", PRICED_PER_SECOND * 31 * 86400, rel=1e-6)]
    check(promtool, tmp_path, out, steady(26 * 60, per_step=60), checks, interval="1m")


@pytest.mark.parametrize("budget, fires", [(20_000, True), (100_000, False)])
def test_budget_alert_fires_when_the_pace_exceeds_the_monthly_budget(budget, fires, tmp_path, promtool):
    out = build_dir(tmp_path, cost={"monthly_budget_usd": budget})
    monthly = PRICED_PER_SECOND * 31 * 86400  # ~64,600 USD at this traffic
    assert (monthly > budget) == fires
    expected = [{"alertname": "LLMGatewaySpendOverBudget", "severity": "warning"}] if fires else []
    checks = [firing("7h", expected),
              close_to("7h10s", "sum(sum_over_time(job_model_token_type:llm_spend_usd:rate5m[6h])) * 30 / 21600 "
                             "* days_in_month() * 86400", "{}", monthly, rel=1e-6)]
    check(promtool, tmp_path, out, steady(8 * 60), checks)


def spike_series() -> list[Series]:
    """Four hours steady, then gpt-4.1 jumps tenfold and a quiet model twentyfold (to 40 tok/s)."""
    series = []
    for model, before, factor in (("gpt-4.1", 1500, 10), ("deepseek-v3.2", 150, 1), ("quiet-model", 2, 20)):
        lab = f'job="{JOB}", instance="gw-1:8000", model="{model}"'
        per_step = before * PER_STEP
        values = f"0+{per_step}x480 {per_step * 480 + per_step * factor}+{per_step * factor}x120"
        series.append(Series(f'holysheep_tokens_total{{{lab}, token_type="prompt"}}', values))
    return series


def test_token_spike_fires_for_a_tenfold_jump_not_for_steady_or_quiet_models(tmp_path, promtool):
    out = build_dir(tmp_path)
    spike = {"alertname": SPIKE, "severity": "warning", "job": JOB, "model": "gpt-4.1"}
    checks = [
        firing("3h50m", [], only=SPIKE),  # steady traffic: nothing
        firing("4h15m", [spike], only=SPIKE),  # ten times its baseline for more than `for`
        # quiet-model went from 2 to 40 tok/s, twenty times its baseline, but under min_tokens_per_second
        close_to("4h15m", 'job_model:llm_tokens:rate5m{model="quiet-model"}', '{job="llm-gateway", '
                 'model="quiet-model"}', 40.0),
    ]
    check(promtool, tmp_path, out, spike_series(), checks)


def test_token_spike_thresholds_come_from_config(tmp_path, promtool):
    out = build_dir(tmp_path, alerts={"token_spike": {"factor": 15, "min_tokens_per_second": 10}})
    quiet = {"alertname": SPIKE, "severity": "warning", "job": JOB, "model": "quiet-model"}
    # factor 15: gpt-4.1's tenfold jump stays quiet, quiet-model's twentyfold one above 10 tok/s fires
    checks = [firing("4h10m", [quiet], only=SPIKE)]
    check(promtool, tmp_path, out, spike_series(), checks)
