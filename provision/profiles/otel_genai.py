"""OpenTelemetry GenAI semantic conventions, as exported to Prometheus.

Client-side metrics of an instrumented OpenAI-compatible client (for example
`opentelemetry-instrumentation-openai-v2`), scraped from the Collector's
`prometheus` exporter or the Python SDK's PrometheusMetricReader:

- `gen_ai.client.operation.duration` (histogram, s) becomes
  `gen_ai_client_operation_duration_seconds_{bucket,sum,count}`. Every call is
  observed once, success or failure, so `_count` is the request counter.
- `gen_ai.client.token.usage` (histogram, {token}: no unit suffix, no _total)
  becomes `gen_ai_client_token_usage_{bucket,sum,count}` with
  `gen_ai_token_type` = input / output; `_sum` counts the tokens.
- The model is `gen_ai_request_model` (`gen_ai_response_model` is missing on
  failures and holds the dated snapshot name).
- Failures carry `error_type`, absent on success. Its values depend on the
  instrumentation: openai-python's exception class names for the Python one
  (RateLimitError = 429, AuthenticationError = 401, ...), so which values mean
  429, 401 and other client errors is configurable under
  `profile_options.otel_genai`.

There is no in-flight instrument in the GenAI conventions.
Sources: see docs/profiles.md (semantic-conventions gen-ai-metrics.md,
opentelemetry-specification prometheus_and_openmetrics.md, the openai-v2
instrumentation's instruments.py / patch.py, openai-python _exceptions.py).
"""

from __future__ import annotations

from provision.contract import (
    COMPLETION_TOKENS,
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
from provision.promql import any_of

NAME = "otel_genai"
DURATION = "gen_ai_client_operation_duration_seconds"
TOKEN_USAGE = "gen_ai_client_token_usage"
MODEL_LABEL = "gen_ai_request_model"
ERROR_LABEL = "error_type"
TOKEN_TYPE_LABEL = "gen_ai_token_type"

# Advised explicit bucket boundaries of the semantic conventions.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)

# Labels every series carries (attributes of the instrumentation); the Collector
# adds job and instance from the resource.
COMMON_LABELS = ("gen_ai_operation_name", "gen_ai_request_model", "gen_ai_system", "server_address", "server_port")

# error_type values of openai-python exceptions, the Python instrumentation's default.
OPTIONS = {
    "rate_limited_errors": ["RateLimitError"],
    "unauthorized_errors": ["AuthenticationError"],
    # Other 4xx answers: the caller's fault, counted neither as success nor as failure.
    "client_errors": ["BadRequestError", "PermissionDeniedError", "NotFoundError", "ConflictError",
                      "UnprocessableEntityError"],
}


def profile(options: dict | None = None) -> Profile:
    opts = {**OPTIONS, **(options or {})}
    rate_limited, unauthorized = opts["rate_limited_errors"], opts["unauthorized_errors"]
    not_failures = [*rate_limited, *unauthorized, *opts["client_errors"]]
    failed = [Matcher(ERROR_LABEL, "!=", "")]
    if not_failures:
        failed.append(Matcher(ERROR_LABEL, "!~", any_of(not_failures)))
    count = f"{DURATION}_count"
    roles = {
        REQUESTS: Selection(count),
        SUCCEEDED: Selection(count, (Matcher(ERROR_LABEL, "=", ""),)),
        FAILED: Selection(count, tuple(failed)),
        LATENCY: Selection(DURATION),
        PROMPT_TOKENS: Selection(f"{TOKEN_USAGE}_sum", (Matcher(TOKEN_TYPE_LABEL, "=", "input"),)),
        COMPLETION_TOKENS: Selection(f"{TOKEN_USAGE}_sum", (Matcher(TOKEN_TYPE_LABEL, "=", "output"),)),
    }
    if rate_limited:
        roles[RATE_LIMITED] = Selection(count, (Matcher(ERROR_LABEL, "=~", any_of(rate_limited)),))
    if unauthorized:
        roles[UNAUTHORIZED] = Selection(count, (Matcher(ERROR_LABEL, "=~", any_of(unauthorized)),))
    return Profile(
        name=NAME,
        title="OpenTelemetry GenAI semantic conventions (gen_ai_*)",
        model_label=MODEL_LABEL,
        status_label=ERROR_LABEL,
        status_when_absent="ok",
        latency_buckets=DURATION_BUCKETS,
        metrics=(
            Metric(DURATION, HISTOGRAM, (*COMMON_LABELS, ERROR_LABEL, "gen_ai_response_model"),
                   buckets=DURATION_BUCKETS, help="GenAI operation duration"),
            Metric(TOKEN_USAGE, HISTOGRAM, (*COMMON_LABELS, TOKEN_TYPE_LABEL, "gen_ai_response_model"),
                   buckets=TOKEN_BUCKETS, help="Measures number of input and output tokens used"),
        ),
        roles=roles,
        source="open-telemetry/semantic-conventions docs/gen-ai/gen-ai-metrics.md; "
               "opentelemetry-python-contrib instrumentation-genai/opentelemetry-instrumentation-openai-v2",
        notes=(
            "Client-side view: latency includes the network and the relay, failures included.",
            "Failed calls record no tokens; error_type is absent on success (shown as 'ok').",
            "Embeddings are observed too: add `gen_ai_operation_name: chat` to `selector` to keep chat only.",
        ),
        lacks={
            INFLIGHT: "the GenAI semantic conventions define no in-flight instrument",
            RATE_LIMITED: "profile_options.otel_genai.rate_limited_errors is empty",
            UNAUTHORIZED: "profile_options.otel_genai.unauthorized_errors is empty",
        },
    )
