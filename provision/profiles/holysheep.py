"""The source document's SDK (holysheep_monitor.py): the default profile.

Names, types, labels and buckets exactly as its prometheus_client code declares
them. `status_code` is the HTTP status as a string, or `timeout` / `error` for
calls that raised before an answer came back.
"""

from provision.contract import (
    COMPLETION_TOKENS,
    COUNTER,
    FAILED,
    GAUGE,
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

REQUESTS_TOTAL = "holysheep_requests_total"
LATENCY_SECONDS = "holysheep_request_latency_seconds"
TOKENS_TOTAL = "holysheep_tokens_total"
ACTIVE_REQUESTS = "holysheep_active_requests"
BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)


def _status(op: str, value: str) -> tuple[Matcher, ...]:
    return (Matcher("status_code", op, value),)


NAME = "holysheep"

PROFILE = Profile(
    name=NAME,
    title="Source document SDK (holysheep_*)",
    model_label="model",
    status_label="status_code",
    latency_buckets=BUCKETS,
    metrics=(
        Metric(REQUESTS_TOTAL, COUNTER, ("model", "status_code"), help="Total HolySheep API requests"),
        Metric(LATENCY_SECONDS, HISTOGRAM, ("model",), buckets=BUCKETS, help="HolySheep API request latency"),
        Metric(TOKENS_TOTAL, COUNTER, ("model", "token_type"), help="Total tokens used"),
        Metric(ACTIVE_REQUESTS, GAUGE, ("model",), help="Number of active requests"),
    ),
    roles={
        REQUESTS: Selection(REQUESTS_TOTAL),
        SUCCEEDED: Selection(REQUESTS_TOTAL, _status("=~", "2..")),
        FAILED: Selection(REQUESTS_TOTAL, _status("=~", "5..|timeout|error")),
        RATE_LIMITED: Selection(REQUESTS_TOTAL, _status("=", "429")),
        UNAUTHORIZED: Selection(REQUESTS_TOTAL, _status("=", "401")),
        LATENCY: Selection(LATENCY_SECONDS),
        PROMPT_TOKENS: Selection(TOKENS_TOTAL, (Matcher("token_type", "=", "prompt"),)),
        COMPLETION_TOKENS: Selection(TOKENS_TOTAL, (Matcher("token_type", "=", "completion"),)),
        INFLIGHT: Selection(ACTIVE_REQUESTS),
    },
    source="../shared/seed: holysheep_monitor.py (prometheus_client declarations)",
)

OPTIONS: dict = {}


def profile(options: dict | None = None) -> Profile:
    """The profile; this SDK's names are fixed, so there is nothing to configure."""
    return PROFILE
