"""LLM Gateway Model Detail: one row per selected model, for drilling into an incident.

Unlike the overview this reads the profile's raw series with
rate(...[$__rate_interval]), so zooming in shows full scrape resolution; each
row covers a single model, which keeps the query cost bounded.
"""

from provision.contract import TOKEN_TYPE
from provision.panels import row, timeseries

OVERVIEW_UID = "llm-gateway-overview"
MODEL_UID = "llm-gateway-model"
BAD_RATIO = ((None, "green"), (0.01, "orange"), (0.05, "red"))


def dashboards(ctx):
    q = ctx.panel_queries(raw=True)
    cost = ctx.panel_queries()  # spend exists only as recorded series: prices live in the rules
    latency_limit = ctx.setting("alerts.latency_p95.threshold_seconds")
    slow = ((None, "green"), (latency_limit / 2, "orange"), (latency_limit, "red"))
    return ctx.dashboard(
        uid=MODEL_UID,
        title="LLM Gateway Model Detail",
        description="Per-model traffic, failures, latency, tokens and spend at full resolution.",
        links=[ctx.link(OVERVIEW_UID, "Overview")],
        raw=True,
        rows=[
            row(
                "Model $model",
                timeseries("Requests by status class", q.status_class_rate(), unit="reqps", stack=True, width=8,
                           description="Requests per second by outcome: HTTP class (2xx, 4xx, 5xx), timeout, error, "
                                       "or the gateway's own outcome (OTel error_type, vLLM finished_reason)."),
                timeseries("Error and success ratio",
                           q.failure_ratio(legend="errors"), q.success_ratio(legend="success"),
                           unit="percentunit", minimum=0, maximum=1, thresholds=BAD_RATIO, width=8,
                           description="Failed share (5xx, timeouts, client-side errors) and successful share "
                                       "of requests."),
                timeseries("Rate limited (429)", q.rate_limited_rate(legend="429 rate limited"), unit="reqps", width=4,
                           description="Requests refused with 429 per second."),
                timeseries("Unauthorized (401)", q.unauthorized_rate(legend="401 unauthorized"), unit="reqps", width=4,
                           description="Requests refused with 401 per second."),
                timeseries("Latency P50 / P95 / P99",
                           q.latency_quantile(0.5, legend="P50"), q.latency_quantile(0.95, legend="P95"),
                           q.latency_quantile(0.99, legend="P99"), unit="s", thresholds=slow, width=8,
                           description="End-to-end latency quantiles of this model."),
                timeseries("Mean latency", q.latency_mean(legend="mean"), unit="s", width=8,
                           description="Average latency (histogram sum / count)."),
                timeseries("In flight", q.inflight(by=(), legend="in flight"), unit="short", width=8,
                           description="Requests of this model in progress."),
                timeseries("Tokens by type", q.token_rate(by=(TOKEN_TYPE,)), unit="suffix: tok/s", stack=True,
                           description="Prompt and completion tokens per second."),
                timeseries("Spend by token type", cost.spend_per_hour(by=(TOKEN_TYPE,)), unit="currencyUSD",
                           stack=True, description="Estimated USD per hour from the price table."),
                repeat="model",
            ),
        ],
    )
