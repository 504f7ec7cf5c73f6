"""The metric contract: the roles relaywatch reads and how a profile maps them.

A gateway exports facts about its traffic (requests and their outcome, latency,
tokens, in-flight requests) under its own metric and label names. A Profile maps
each *role* onto the gateway's real series. Everything downstream (recording
rules, dashboards, alerts) asks the profile, never a literal name.

The recording rules translate a profile's series into relaywatch's canonical
vocabulary (the labels below), so dashboards and alerts over recorded series are
the same for every gateway.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

# Canonical labels of recorded series.
JOB = "job"
MODEL = "model"
STATUS = "status"
TOKEN_TYPE = "token_type"
LE = "le"

# Canonical token types: what the price table calls input and output.
PROMPT = "prompt"
COMPLETION = "completion"
TOKEN_TYPES = (PROMPT, COMPLETION)

# Roles a profile may provide. A definition that needs a role the active
# profile lacks is dropped from the build with a notice.
REQUESTS = "requests"  # all requests, a counter
SUCCEEDED = "succeeded"  # requests answered successfully
FAILED = "failed"  # failures: 5xx, timeouts, client-side errors
RATE_LIMITED = "rate_limited"  # HTTP 429
UNAUTHORIZED = "unauthorized"  # HTTP 401
STATUS_BREAKDOWN = "status"  # a label on `requests` carrying the status
LATENCY = "latency"  # end-to-end latency histogram, seconds
PROMPT_TOKENS = "prompt_tokens"
COMPLETION_TOKENS = "completion_tokens"
INFLIGHT = "inflight"  # in-flight requests, a gauge

# Not a role of the profile but of the config: spend needs a non-empty price table.
PRICING = "pricing"

OUTCOME_ROLES = (SUCCEEDED, FAILED, RATE_LIMITED, UNAUTHORIZED)
ALL_ROLES = (
    REQUESTS,
    *OUTCOME_ROLES,
    STATUS_BREAKDOWN,
    LATENCY,
    PROMPT_TOKENS,
    COMPLETION_TOKENS,
    INFLIGHT,
)

# What each role means, for `provision profiles`, notices and docs.
ROLE_DESCRIPTIONS = {
    REQUESTS: "all requests (a counter, or a histogram's _count)",
    SUCCEEDED: "requests answered successfully",
    FAILED: "failed requests: server errors, timeouts, client-side errors",
    RATE_LIMITED: "requests refused as rate limited (HTTP 429)",
    UNAUTHORIZED: "requests refused as unauthorized (HTTP 401)",
    STATUS_BREAKDOWN: "a status label on the request counter",
    LATENCY: "end-to-end latency histogram in seconds",
    PROMPT_TOKENS: "prompt (input) tokens",
    COMPLETION_TOKENS: "completion (output) tokens",
    INFLIGHT: "requests in progress (a gauge)",
}

COUNTER, HISTOGRAM, GAUGE = "counter", "histogram", "gauge"


@dataclass(frozen=True)
class Matcher:
    """One PromQL label matcher, e.g. status_code=~"5..|timeout"."""

    label: str
    op: str  # =, !=, =~, !~
    value: str

    def render(self) -> str:
        return f"{self.label}{self.op}{quote(self.value)}"

    def matches(self, value: str) -> bool:
        """Whether a label value (\"\" when the label is absent) satisfies this matcher.

        Prometheus anchors regular expressions at both ends, hence fullmatch.
        """
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        found = _regex(self.value).fullmatch(value) is not None
        return found if self.op == "=~" else not found


@dataclass(frozen=True)
class Selection:
    """Series of one metric narrowed by matchers: what a role reads.

    `series` is the exposition name taken as is: a counter's `_total` name, a
    histogram's base name (for the latency role), or a histogram's `_count` /
    `_sum` when that is where a gateway keeps the fact.
    """

    series: str
    matchers: tuple[Matcher, ...] = ()
    # Further series of the same kind summed with `series`, e.g. vLLM's running
    # and waiting requests, which together are what the gateway has in flight.
    plus: tuple[str, ...] = ()

    def names(self) -> tuple[str, ...]:
        return (self.series, *self.plus)


@dataclass(frozen=True)
class Metric:
    """A metric family as the gateway exports it (for validation and check-metrics)."""

    name: str  # family name: counters with _total, histograms without _bucket
    type: str  # counter | histogram | gauge
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()
    help: str = ""

    def series_names(self) -> tuple[str, ...]:
        if self.type == HISTOGRAM:
            return tuple(f"{self.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        return (self.name,)


@dataclass(frozen=True)
class Profile:
    """How one gateway exports the contract's roles."""

    name: str
    title: str
    model_label: str
    metrics: tuple[Metric, ...]
    roles: dict[str, Selection]
    status_label: str | None = None
    # The status a request has when it carries no status label at all (OTel
    # puts error_type on failures only), shown as this value in breakdowns.
    status_when_absent: str | None = None
    latency_buckets: tuple[float, ...] = ()
    source: str = ""  # where the names were checked
    notes: tuple[str, ...] = ()
    # Why the gateway cannot provide a role it lacks: role -> reason.
    lacks: dict[str, str] = field(default_factory=dict)

    def has(self, role: str) -> bool:
        if role == STATUS_BREAKDOWN:
            return self.status_label is not None and REQUESTS in self.roles
        return role in self.roles

    def role(self, role: str) -> Selection:
        try:
            return self.roles[role]
        except KeyError:
            raise MissingRole(role) from None

    def missing(self, roles) -> tuple[str, ...]:
        return tuple(sorted(r for r in roles if not self.has(r)))

    def metric(self, series: str) -> Metric | None:
        """The family a series name belongs to (a histogram's _bucket maps to the histogram)."""
        for metric in self.metrics:
            if series in metric.series_names() or series == metric.name:
                return metric
        return None

    def series_names(self) -> set[str]:
        return {name for metric in self.metrics for name in metric.series_names()}

    def why_missing(self, role: str) -> str:
        """One sentence on why this profile has no `role`."""
        return self.lacks.get(role) or f"{self.title} exports no {ROLE_DESCRIPTIONS.get(role, role)}"

    def canonical_labels(self) -> dict[str, str]:
        """Canonical label -> this profile's raw label, for labels that differ."""
        pairs = {MODEL: self.model_label}
        if self.status_label:
            pairs[STATUS] = self.status_label
        return {canon: raw for canon, raw in pairs.items() if canon != raw}


class MissingRole(LookupError):
    """The active profile does not export what a definition needs."""


def quote(value: str) -> str:
    """A PromQL double-quoted string literal."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


@functools.lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern:
    return re.compile(pattern)
