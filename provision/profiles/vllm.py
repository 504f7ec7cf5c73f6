"""vLLM's OpenAI-compatible server (V1 engine), scraped at its /metrics.

Server-side engine metrics, `vllm:` names, labels `model_name` (the served
model name) and `engine` (data-parallel rank, summed away):

- `vllm:request_success_total` counts *finished* requests by
  `finished_reason`: stop, length, abort (the client went away), error
  (retryable internal error, answered 500) and, in newer releases, repetition.
  It is the request counter; `finished_reason` is its status label.
- `vllm:e2e_request_latency_seconds` is the server-side latency histogram.
- `vllm:prompt_tokens_total` / `vllm:generation_tokens_total` count tokens.
- `vllm:num_requests_running` + `vllm:num_requests_waiting` are what the
  server has in flight (running in a batch, or queued for one).

What a server-side exporter cannot know is left out rather than shown empty:
the engine metrics carry no HTTP status, so no 429 or 401 (vLLM queues requests
rather than rate limiting them); requests rejected before the engine (bad
parameters, unknown model, 401 with --api-key) never reach these counters.

Which finish reasons count as failures is configurable under
`profile_options.vllm.failed_reasons` (default: error; add abort when clients
abort only on timeouts).

Sources: vllm-project/vllm vllm/v1/metrics/loggers.py (names, labels, buckets),
vllm/v1/engine/__init__.py (FINISH_REASON_STRINGS), docs/design/metrics.md.
"""

from __future__ import annotations

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
from provision.promql import any_of

NAME = "vllm"
FINISHED = "request_success_total"
E2E_LATENCY = "e2e_request_latency_seconds"
PROMPT = "prompt_tokens_total"
GENERATION = "generation_tokens_total"
RUNNING = "num_requests_running"
WAITING = "num_requests_waiting"
# vLLM names its metrics vllm:*. prometheus_client 0.26 serves them as vllm_* when
# Prometheus asks for OpenMetrics (client_python#1177), so that is what gets stored.
PREFIXES = ("vllm:", "vllm_")
MODEL_LABEL = "model_name"
REASON_LABEL = "finished_reason"
BASE_LABELS = (MODEL_LABEL, "engine")

BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
           480.0, 960.0, 1920.0, 7680.0)
COMPLETED_REASONS = ("stop", "length", "repetition")

OPTIONS = {"failed_reasons": ["error"], "metric_prefix": "vllm:"}


def profile(options: dict | None = None) -> Profile:
    opts = {**OPTIONS, **(options or {})}
    failed = opts["failed_reasons"]
    prefix = opts["metric_prefix"]
    finished, e2e_latency, prompt, generation, running, waiting = (
        prefix + name for name in (FINISHED, E2E_LATENCY, PROMPT, GENERATION, RUNNING, WAITING))
    roles = {
        REQUESTS: Selection(finished),
        SUCCEEDED: Selection(finished, (Matcher(REASON_LABEL, "=~", any_of(COMPLETED_REASONS)),)),
        LATENCY: Selection(e2e_latency),
        PROMPT_TOKENS: Selection(prompt),
        COMPLETION_TOKENS: Selection(generation),
        INFLIGHT: Selection(running, plus=(waiting,)),
    }
    if failed:
        roles[FAILED] = Selection(finished, (Matcher(REASON_LABEL, "=~", any_of(failed)),))
    return Profile(
        name=NAME,
        title=f"vLLM OpenAI-compatible server ({prefix}*)",
        model_label=MODEL_LABEL,
        status_label=REASON_LABEL,
        latency_buckets=BUCKETS,
        metrics=(
            Metric(finished, COUNTER, (*BASE_LABELS, REASON_LABEL), help="Count of successfully processed requests."),
            Metric(e2e_latency, HISTOGRAM, BASE_LABELS, buckets=BUCKETS,
                   help="Histogram of e2e request latency in seconds."),
            Metric(prompt, COUNTER, BASE_LABELS, help="Number of prefill tokens processed."),
            Metric(generation, COUNTER, BASE_LABELS, help="Number of generation tokens processed."),
            Metric(running, GAUGE, BASE_LABELS, help="Number of requests in model execution batches."),
            Metric(waiting, GAUGE, BASE_LABELS, help="Number of requests waiting to be processed."),
        ),
        roles=roles,
        source="vllm-project/vllm vllm/v1/metrics/loggers.py, vllm/v1/engine/__init__.py",
        notes=(
            "Requests are finished requests; the status breakdown shows finished_reason "
            "(stop, length, abort, error, repetition).",
            "Latency is server-side: no network or gateway time.",
            "One model per server: 'by model' is 'by served model name'.",
        ),
        lacks={
            RATE_LIMITED: "vLLM's engine metrics carry no HTTP status, and vLLM queues requests "
                          "(vllm:num_requests_waiting) rather than rate limiting them",
            UNAUTHORIZED: "vLLM's engine metrics carry no HTTP status, and a 401 never reaches the engine",
            FAILED: "profile_options.vllm.failed_reasons is empty",
        },
    )
