"""Profiles made by hand for tests: shapes other than the default profile's.

- OTEL_LIKE: requests are the latency histogram's _count, failures carry an
  `error_type` label that successes lack, tokens are a histogram's _sum (the
  shape of OpenTelemetry GenAI metrics).
- SPLIT_COUNTERS: failures on a counter of their own, other label names, an
  in-flight gauge without a model label (the shape of LiteLLM's metrics).
"""

from types import SimpleNamespace

from provision import profiles
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

DURATION = "acme_genai_operation_duration_seconds"
TOKEN_USAGE = "acme_genai_token_usage"
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536)
CHAT = Matcher("operation", "=", "chat")


def _error(op: str, value: str) -> Matcher:
    return Matcher("error_type", op, value)


OTEL_LIKE = Profile(
    name="otel-like",
    title="Hand-made OpenTelemetry-shaped profile",
    model_label="request_model",
    status_label="error_type",
    latency_buckets=DURATION_BUCKETS,
    metrics=(
        Metric(DURATION, HISTOGRAM, ("operation", "request_model", "error_type"), buckets=DURATION_BUCKETS),
        Metric(TOKEN_USAGE, HISTOGRAM, ("operation", "request_model", "token_kind"), buckets=TOKEN_BUCKETS),
    ),
    roles={
        REQUESTS: Selection(f"{DURATION}_count", (CHAT,)),
        SUCCEEDED: Selection(f"{DURATION}_count", (CHAT, _error("=", ""))),
        FAILED: Selection(f"{DURATION}_count", (CHAT, _error("!~", "|RateLimitError|AuthenticationError"))),
        RATE_LIMITED: Selection(f"{DURATION}_count", (CHAT, _error("=", "RateLimitError"))),
        UNAUTHORIZED: Selection(f"{DURATION}_count", (CHAT, _error("=", "AuthenticationError"))),
        LATENCY: Selection(DURATION, (CHAT,)),
        PROMPT_TOKENS: Selection(f"{TOKEN_USAGE}_sum", (CHAT, Matcher("token_kind", "=", "input"))),
        COMPLETION_TOKENS: Selection(f"{TOKEN_USAGE}_sum", (CHAT, Matcher("token_kind", "=", "output"))),
    },
)

CALLS = "acme_proxy_calls_total"
FAILURES = "acme_proxy_failures_total"
SPLIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)

SPLIT_COUNTERS = Profile(
    name="split-counters",
    title="Hand-made LiteLLM-shaped profile",
    model_label="llm",
    status_label="code",
    latency_buckets=SPLIT_BUCKETS,
    metrics=(
        Metric(CALLS, COUNTER, ("llm", "code", "team")),
        Metric(FAILURES, COUNTER, ("llm", "exception_status", "team")),
        Metric("acme_proxy_latency_seconds", HISTOGRAM, ("llm", "team"), buckets=SPLIT_BUCKETS),
        Metric("acme_proxy_input_tokens_total", COUNTER, ("llm", "team")),
        Metric("acme_proxy_output_tokens_total", COUNTER, ("llm", "team")),
        Metric("acme_proxy_in_flight", GAUGE, ()),
    ),
    roles={
        REQUESTS: Selection(CALLS),
        SUCCEEDED: Selection(CALLS, (Matcher("code", "=~", "2.."),)),
        FAILED: Selection(FAILURES, (Matcher("exception_status", "=~", "5..|timeout|error"),)),
        RATE_LIMITED: Selection(CALLS, (Matcher("code", "=", "429"),)),
        UNAUTHORIZED: Selection(CALLS, (Matcher("code", "=", "401"),)),
        LATENCY: Selection("acme_proxy_latency_seconds"),
        PROMPT_TOKENS: Selection("acme_proxy_input_tokens_total"),
        COMPLETION_TOKENS: Selection("acme_proxy_output_tokens_total"),
        INFLIGHT: Selection("acme_proxy_in_flight"),
    },
)


def install(monkeypatch, profile: Profile) -> None:
    """Make `profile` selectable as `profile: <name>` in relaywatch.yaml, as a built-in one is."""
    monkeypatch.setitem(profiles.BUILTIN, profile.name, profile)
    module = SimpleNamespace(NAME=profile.name, OPTIONS={}, profile=lambda options=None: profile)
    monkeypatch.setitem(profiles.MODULES, profile.name, module)
