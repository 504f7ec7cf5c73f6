"""LLM Gateway Overview: the first screen for anyone running the gateway.

Reads the recorded series (cheap to refresh for everyone who has it open).
Failures are 5xx, timeouts and client-side errors; 429 and 401 are shown on
their own because they call for different fixes (slow down / fix the key).
"""

from provision.contract import FAILED, MODEL, RATE_LIMITED, TOKEN_TYPE, UNAUTHORIZED
from provision.panels import bargauge, row, stat, timeseries

OVERVIEW_UID = "llm-gateway-overview"
MODEL_UID = "llm-gateway-model"

GOOD_RATIO = ((None, "red"), (0.95, "orange"), (0.99, "green"))
BAD_RATIO = ((None, "green"), (0.01, "orange"), (0.05, "red"))


def dashboards(ctx):
    q = ctx.panel_queries()
    latency_limit = ctx.setting("alerts.latency_p95.threshold_seconds")
    slow = ((None, "green"), (latency_limit / 2, "orange"), (latency_limit, "red"))
    drill = [ctx.drilldown(MODEL_UID, "Model detail")]
    return ctx.dashboard(
        uid=OVERVIEW_UID,
        title="LLM Gateway Overview",
        description="Traffic, failures, latency, tokens and spend of the LLM API gateway, per model.",
        links=[ctx.link(MODEL_UID, "Model detail")],
        rows=[
            row(
                "At a glance",
                stat("Requests/s", q.request_rate(), unit="reqps",
                     description="Requests per second over all selected models."),
                stat("Success ratio", q.success_ratio(), unit="percentunit", decimals=2, thresholds=GOOD_RATIO,
                     description="Share of requests answered successfully (2xx on HTTP gateways)."),
                stat("Error ratio", q.failure_ratio(), unit="percentunit", decimals=2, thresholds=BAD_RATIO,
                     description="Share of requests that failed: 5xx, timeouts and client-side errors."),
                stat("P95 latency", q.latency_quantile(0.95), unit="s", decimals=2, thresholds=slow,
                     description="95th percentile of end-to-end request latency over all selected models."),
                stat("Tokens/s", q.token_rate(by=()), unit="suffix: tok/s",
                     description="Prompt plus completion tokens per second."),
                stat("Spend", q.spend_per_hour(by=()), unit="currencyUSD", decimals=2,
                     description="Estimated spend in USD per hour at the current rate, from the price table."),
                stat("In flight", q.inflight(by=()), unit="short",
                     description="Requests in progress right now."),
                stat("Rate limited", q.outcome_ratio(RATE_LIMITED), unit="percentunit", decimals=2,
                     thresholds=BAD_RATIO, description="Share of requests refused with 429 Too Many Requests."),
            ),
            row(
                "Traffic",
                timeseries("Request rate by model", q.request_rate(by=(MODEL,)), unit="reqps", links=drill,
                           description="Requests per second per model."),
                timeseries("Request rate by status class", q.status_class_rate(), unit="reqps", stack=True,
                           description="Requests per second by outcome: HTTP class (2xx, 4xx, 5xx), timeout, error, "
                                       "or the gateway's own outcome (OTel error_type, vLLM finished_reason)."),
                timeseries("Rate limited (429) by model", q.rate_limited_rate(by=(MODEL,)), unit="reqps", width=8,
                           description="Requests refused with 429: slow down or spread load over models."),
                timeseries("Unauthorized (401) by model", q.unauthorized_rate(by=(MODEL,)), unit="reqps", width=8,
                           description="Requests refused with 401: the API key is wrong, expired or revoked."),
                timeseries("In-flight requests by model", q.inflight(), unit="short", width=8,
                           description="Requests in progress per model; a climb with flat traffic means slower answers."),
            ),
            row(
                "Failures",
                timeseries("Error ratio by model", q.failure_ratio(by=(MODEL,)), unit="percentunit", minimum=0,
                           thresholds=BAD_RATIO, links=drill,
                           description="Failed share of requests per model (5xx, timeouts, client-side errors)."),
                timeseries("Success ratio by model", q.success_ratio(by=(MODEL,)), unit="percentunit",
                           minimum=0, maximum=1, description="Share of requests answered successfully, per model."),
                timeseries("Rate-limited ratio by model", q.outcome_ratio(RATE_LIMITED, by=(MODEL,)),
                           unit="percentunit", minimum=0, width=8,
                           description="Share of requests answered 429, per model."),
                timeseries("Unauthorized ratio by model", q.outcome_ratio(UNAUTHORIZED, by=(MODEL,)),
                           unit="percentunit", minimum=0, width=8,
                           description="Share of requests answered 401, per model."),
                timeseries("Failures by model", q.outcome_rate(FAILED, by=(MODEL,)), unit="reqps", stack=True, width=8,
                           description="Failed requests per second per model."),
            ),
            row(
                "Latency",
                timeseries("Latency P50 / P95 / P99",
                           q.latency_quantile(0.5, legend="P50"), q.latency_quantile(0.95, legend="P95"),
                           q.latency_quantile(0.99, legend="P99"), unit="s", thresholds=slow,
                           description="End-to-end latency quantiles over all selected models, from the histogram."),
                timeseries("P95 latency by model", q.latency_quantile(0.95, by=(MODEL,)), unit="s",
                           thresholds=slow, links=drill, description="95th percentile latency per model."),
                timeseries("P99 latency by model", q.latency_quantile(0.99, by=(MODEL,)), unit="s",
                           description="99th percentile latency per model."),
                timeseries("Mean latency by model", q.latency_mean(by=(MODEL,)), unit="s",
                           description="Average latency per model (histogram sum / count)."),
            ),
            row(
                "Tokens and spend",
                timeseries("Token throughput by model", q.token_rate(by=(MODEL, TOKEN_TYPE)), unit="suffix: tok/s",
                           description="Prompt and completion tokens per second, per model."),
                timeseries("Prompt vs completion", q.token_rate(by=(TOKEN_TYPE,)), unit="suffix: tok/s",
                           stack=True, description="Tokens per second by type over all selected models."),
                timeseries("Spend by model", q.spend_per_hour(by=(MODEL,)), unit="currencyUSD", stack=True,
                           description="Estimated USD per hour per model, prompt and completion tokens at the "
                                       "price table's rates."),
                bargauge("Tokens of models missing from the price table", q.unpriced_token_rate(),
                         unit="suffix: tok/s", no_value="Every model with tokens has a price",
                         description="Models with traffic but no price in relaywatch.yaml: their spend is unknown, "
                                     "not zero. Add them to `pricing`."),
            ),
        ],
    )
