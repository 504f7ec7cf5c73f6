"""LLM Gateway Cost: what the traffic costs, per model, from the price table in relaywatch.yaml.

How the numbers are computed (provision/cost.py has the expressions and the reasoning):

- Spend exists only as a recorded rate (USD/s per job, model and token type:
  tokens/s times the configured price). A total over a period is its integral:
  `sum_over_time(spend[<period>]) * <rule interval>`. Exact for steady traffic,
  and a model that appeared at noon adds nothing to the morning (an
  `avg_over_time(...) * period` would spread it over the whole day).
- "Today" and "Month to date" are the same query on panels whose relative time
  is `now/d` and `now/M` (Grafana's "Today so far" / "This month so far"), so
  `$__range` is the time since midnight / since the 1st. The dashboard runs in
  `cost.timezone` (default UTC, the day providers bill by), which decides where
  Grafana puts midnight.
- "Projected month" = month to date + the last 24 h's spend rate times the
  seconds left in the month (`days_in_month()` in PromQL, UTC). A day's pace
  smooths the daily cycle yet follows a switch to a cheaper model within a day.
- "The same traffic on each model" prices the selected range's prompt and
  completion tokens (of all models, priced or not) at every model of the table.
- Models missing from the price table are never priced at zero: spend panels
  leave them out, and their count and tokens are shown on their own.
"""

from dataclasses import replace

from provision.contract import MODEL, TOKEN_TYPE
from provision.panels import bargauge, piechart, row, stat, timeseries

COST_UID = "llm-gateway-cost"
OVERVIEW_UID = "llm-gateway-overview"
TODAY, THIS_MONTH = "now/d", "now/M"
NONE_UNPRICED = ((None, "green"), (1, "red"))


def dashboards(ctx):
    q = ctx.panel_queries()
    cost = ctx.cost_queries()
    budget = ctx.setting("cost.monthly_budget_usd")
    return ctx.dashboard(
        uid=COST_UID,
        title="LLM Gateway Cost",
        description="Spend per model from the price table: today, month to date, projected month, "
                    "cost per request and what the same traffic would cost on other models.",
        links=[ctx.link(OVERVIEW_UID, "Overview")],
        timezone=ctx.setting("cost.timezone"),
        time_from="now-7d",
        refresh="5m",  # month-long integrals read every sample of the month; spend moves slowly
        rows=[
            row("Spend", *spend_stats(cost, q, budget)),
            row(
                "By model",
                timeseries("Spend rate by model", q.spend_per_hour(by=(MODEL,)), unit="currencyUSD", stack=True,
                           description="USD per hour per model: prompt and completion tokens at the table's prices."),
                piechart("Share of spend by model", cost.spend(by=(MODEL,)), unit="currencyUSD", width=6,
                         decimals=2, description="USD per model over the selected time range."),
                bargauge("Month to date by model", cost.spend(by=(MODEL,)), unit="currencyUSD", width=6,
                         decimals=2, time_from=THIS_MONTH, description="USD per model since the 1st of the month."),
                timeseries("Cost per 1k requests by model", cost.cost_per_1k_requests(), unit="currencyUSD",
                           description="USD per 1000 requests at the current rates; failed requests count as "
                                       "requests, as they usually are paid for or retried."),
                timeseries("Spend rate by token type", q.spend_per_hour(by=(TOKEN_TYPE,)), unit="currencyUSD",
                           stack=True, description="USD per hour for prompt and for completion tokens."),
            ),
            row(
                "What if",
                bargauge("The same traffic on each model", cost.same_traffic_on_each_model(),
                         cost.spend(legend="actual (priced models)"), unit="currencyUSD", decimals=2,
                         description="What the prompt and completion tokens of the selected range would have "
                                     "cost at each model's prices, next to what they did cost. Tokenizers "
                                     "differ between vendors, so treat it as an estimate."),
                bargauge("Price table", cost.price_per_million(), unit="currencyUSD", decimals=2,
                         description="USD per million tokens as configured under `pricing` in relaywatch.yaml."),
            ),
            row(
                "Models missing from the price table",
                bargauge("Tokens of unpriced models", cost.unpriced_tokens(), unit="short", width=24,
                         no_value="Every model with tokens has a price",
                         description="Tokens in the selected range of models missing from `pricing`. "
                                     "Add them to relaywatch.yaml to see their spend."),
            ),
        ],
    )


def spend_stats(cost, q, budget):
    """The headline numbers, sharing the row's width."""
    over_budget = ((None, "green"), (0.8 * budget, "orange"), (budget, "red")) if budget else None
    usd = dict(unit="currencyUSD", decimals=2)
    stats = [
        stat("Spend rate", q.spend_per_hour(by=()), **usd,
             description="USD per hour at the current rate (last rate window), priced models only."),
        stat("Today", cost.spend(), **usd, instant=True, time_from=TODAY,
             description="USD spent since midnight in the dashboard's timezone, priced models only."),
        stat("Month to date", cost.spend(), **usd, instant=True, time_from=THIS_MONTH, thresholds=over_budget,
             description="USD spent since the 1st of the month, priced models only."),
        stat("Projected month", cost.projected_month(), **usd, instant=True, time_from=THIS_MONTH,
             thresholds=over_budget,
             description="Month to date plus the last 24 hours' pace over the rest of the month."),
    ]
    if budget:
        stats.append(stat("Budget used", cost.budget_used(budget), unit="percentunit", decimals=1, instant=True,
                          time_from=THIS_MONTH, thresholds=((None, "green"), (0.8, "orange"), (1, "red")),
                          description=f"Month-to-date spend as a share of the monthly budget of {budget:g} USD "
                                      "(cost.monthly_budget_usd)."))
    stats.append(stat("Models without a price", cost.unpriced_models(), unit="none", decimals=0, instant=True,
                      thresholds=NONE_UNPRICED,
                      description="Models with tokens in the selected range but missing from `pricing`: their "
                                  "spend is unknown, not zero, and left out of every USD figure."))
    return [replace(panel, width=24 // len(stats)) for panel in stats]
