"""LiteLLM proxy (`litellm_settings.callbacks: ["prometheus"]`).

LiteLLM's PrometheusLogger declares its metrics with prometheus_client:

- `litellm_proxy_total_requests_metric_total` counts every client request,
  `status_code` = "200" on success, the error's code on failure ("429",
  "400", "408" for LiteLLM's Timeout, "500", ...) or "None" when the
  exception carries no code.
- `requested_model` is the model group the client asked for, on every
  request metric; `model` (the upstream deployment) is only on success-path
  metrics, so `requested_model` is the model label.
- Latency (`litellm_request_total_latency_metric`, seconds) and the token
  counters (`litellm_input_tokens_metric_total`,
  `litellm_output_tokens_metric_total`) are recorded for successes only.
- Many caller labels (hashed_api_key, team, user, client_ip, user_agent,
  model_id, ...) come and go with versions and settings; the recording rules
  sum them away and rely only on `requested_model` and `status_code`.

Not provided, and why:
- 401: since PR #18788 (2026-01) the exporter skips requests answered 401 (and
  "invalid api key" errors), so auth failures never reach these metrics.
- in flight: `litellm_in_flight_requests` has no model label and counts every
  HTTP request on the worker (health checks and the scrape itself included),
  so it cannot say what a model has in flight.

Sources: BerriAI/litellm litellm/integrations/prometheus.py and
litellm/types/integrations/prometheus.py (LATENCY_BUCKETS); docs/proxy/prometheus.md.
"""

from __future__ import annotations

from provision.contract import (
    COMPLETION_TOKENS,
    COUNTER,
    FAILED,
    HISTOGRAM,
    INFLIGHT,
    LATENCY,
    PROMPT_TOKENS,
    RATE_LIMITED,
    REQUESTS,
    SUCCEEDED,
    UNAUTHORIZED,
    Matcher,
    Metric,
    Profile,
    Selection,
)

NAME = "litellm"
TOTAL_REQUESTS = "litellm_proxy_total_requests_metric_total"
LATENCY_METRIC = "litellm_request_total_latency_metric"
INPUT_TOKENS = "litellm_input_tokens_metric_total"
OUTPUT_TOKENS = "litellm_output_tokens_metric_total"
MODEL_LABEL = "requested_model"
STATUS_LABEL = "status_code"

# LATENCY_BUCKETS since PR #25527; older releases use a 35-bucket set, and
# `prometheus_latency_buckets` overrides them: quantiles never assume these.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 420.0, 600.0)

OPTIONS: dict = {}


def _status(op: str, value: str) -> tuple[Matcher, ...]:
    return (Matcher(STATUS_LABEL, op, value),)


PROFILE = Profile(
    name=NAME,
    title="LiteLLM proxy (litellm_*)",
    model_label=MODEL_LABEL,
    status_label=STATUS_LABEL,
    latency_buckets=BUCKETS,
    metrics=(
        # Only the labels relied on; the caller labels (hashed_api_key, team, user,
        # client_ip, model_id, ...) vary with version and settings and are summed away.
        Metric(TOTAL_REQUESTS, COUNTER, (MODEL_LABEL, STATUS_LABEL),
               help="Total number of requests made to the proxy server - track number of client side requests"),
        Metric(LATENCY_METRIC, HISTOGRAM, (MODEL_LABEL, "model"), buckets=BUCKETS,
               help="Total latency (seconds) for a request to LiteLLM"),
        Metric(INPUT_TOKENS, COUNTER, (MODEL_LABEL, "model"), help="Total number of input tokens from LLM requests"),
        Metric(OUTPUT_TOKENS, COUNTER, (MODEL_LABEL, "model"), help="Total number of output tokens from LLM requests"),
    ),
    roles={
        REQUESTS: Selection(TOTAL_REQUESTS),
        SUCCEEDED: Selection(TOTAL_REQUESTS, _status("=~", "2..")),
        # 5xx, LiteLLM's Timeout (408) and exceptions without a code ("None").
        FAILED: Selection(TOTAL_REQUESTS, _status("=~", "5..|408|None")),
        # Both the upstream vendor's 429 and LiteLLM's own key/team limiter.
        RATE_LIMITED: Selection(TOTAL_REQUESTS, _status("=", "429")),
        LATENCY: Selection(LATENCY_METRIC),
        PROMPT_TOKENS: Selection(INPUT_TOKENS),
        COMPLETION_TOKENS: Selection(OUTPUT_TOKENS),
    },
    source="BerriAI/litellm litellm/integrations/prometheus.py, litellm/types/integrations/prometheus.py",
    notes=(
        "Latency and tokens are recorded for successful requests only.",
        "429 counts the upstream vendor's limits and LiteLLM's own key/team limiter alike "
        "(tell them apart by exception_class on litellm_proxy_failed_requests_metric_total).",
        "/metrics needs a LiteLLM key by default since v1.85.0: give the scrape job an authorization header.",
    ),
    lacks={
        UNAUTHORIZED: "LiteLLM leaves requests answered 401 out of its Prometheus metrics since PR #18788",
        INFLIGHT: "litellm_in_flight_requests has no model label and counts every HTTP request "
                  "on the worker, health checks and scrapes included",
    },
)


def profile(options: dict | None = None) -> Profile:
    return PROFILE
