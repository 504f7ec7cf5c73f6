"""The recorded series: names, and the recording rules that produce them.

Recording rules are the one place where a profile's raw series are read in
bulk. They aggregate away instances and translate the profile's label names
into the canonical ones of `provision.contract`, so everything downstream
(overview dashboards, alerts, SLOs, cost) reads the same small set of series
whatever the gateway.

Names follow Prometheus's `level:metric:operations` convention.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from provision import promql
from provision.contract import (
    COMPLETION,
    COMPLETION_TOKENS,
    FAILED,
    INFLIGHT,
    JOB,
    LATENCY,
    LE,
    MODEL,
    OUTCOME_ROLES,
    PROMPT,
    PROMPT_TOKENS,
    RATE_LIMITED,
    REQUESTS,
    STATUS,
    STATUS_BREAKDOWN,
    SUCCEEDED,
    TOKEN_TYPE,
    UNAUTHORIZED,
    Matcher,
    Profile,
    Selection,
)
from provision.rules import Query, RecordingRule, RuleGroup

TOKEN_ROLES = {PROMPT: PROMPT_TOKENS, COMPLETION: COMPLETION_TOKENS}
OUTCOMES = {SUCCEEDED: "succeeded", FAILED: "failed", RATE_LIMITED: "rate_limited", UNAUTHORIZED: "unauthorized"}


@dataclass(frozen=True)
class RecordedNames:
    """Names of the recorded series for one rate window (e.g. 5m)."""

    window: str

    @property
    def _op(self) -> str:
        return f"rate{self.window}"

    @property
    def requests_by_status(self) -> str:
        return f"job_model_status:llm_requests:{self._op}"

    @property
    def requests(self) -> str:
        return f"job_model:llm_requests:{self._op}"

    @property
    def job_requests(self) -> str:
        return f"job:llm_requests:{self._op}"

    def outcome(self, role: str) -> str:
        return f"job_model:llm_requests_{OUTCOMES[role]}:{self._op}"

    def outcome_ratio(self, role: str, *, per_model: bool = True) -> str:
        level = "job_model" if per_model else "job"
        return f"{level}:llm_requests_{OUTCOMES[role]}:ratio_{self._op}"

    @property
    def latency_buckets(self) -> str:
        return f"job_model_le:llm_request_latency_seconds_bucket:{self._op}"

    @property
    def latency_sum(self) -> str:
        return f"job_model:llm_request_latency_seconds_sum:{self._op}"

    @property
    def latency_count(self) -> str:
        return f"job_model:llm_request_latency_seconds_count:{self._op}"

    @property
    def tokens(self) -> str:
        return f"job_model_token_type:llm_tokens:{self._op}"

    @property
    def model_tokens(self) -> str:
        """Prompt plus completion tokens per (job, model)."""
        return f"job_model:llm_tokens:{self._op}"

    @property
    def price(self) -> str:
        return "model_token_type:llm_price_usd_per_token:config"

    @property
    def spend(self) -> str:
        return f"job_model_token_type:llm_spend_usd:{self._op}"

    @property
    def model_spend(self) -> str:
        """Spend of prompt plus completion tokens per (job, model): half the series to integrate."""
        return f"job_model:llm_spend_usd:{self._op}"

    @property
    def unpriced_tokens(self) -> str:
        return f"job_model:llm_tokens_unpriced:{self._op}"

    @property
    def inflight(self) -> str:
        return "job_model:llm_requests_in_flight:sum"

    @property
    def gateway_jobs(self) -> str:
        return "job:llm_gateway_series:count"


def per_token(per_million: float) -> float:
    """USD per token from USD per million tokens, without binary rounding noise (32/1e6 -> 3.2e-05)."""
    return float(Decimal(str(per_million)) / Decimal(1_000_000))


class Recordings:
    """Builds the recording rule groups for a profile, a selector and a window."""

    def __init__(self, profile: Profile, *, selector: dict[str, str], window: str, pricing: dict):
        self.profile = profile
        self.names = RecordedNames(window)
        self.window = window
        self.selector = tuple(Matcher(label, "=", value) for label, value in sorted(selector.items()))
        self.pricing = pricing

    # -- raw reads -----------------------------------------------------------

    def raw(self, selection: Selection, suffix: str = "", extra: tuple[Matcher, ...] = ()) -> str:
        """A raw selector for a role's series with the configured extra matchers."""
        return promql.select(selection, (*extra, *self.selector), suffix)

    def _rate_by(self, role: str, by: tuple[str, ...], suffix: str = "") -> Query:
        return self.window_rate(role, by, self.window, suffix)

    def window_rate(
        self, role: str, by: tuple[str, ...], window: str, suffix: str = "", extra: tuple[Matcher, ...] = ()
    ) -> Query:
        """sum by (canonical labels) of the rate of a role's raw series over `window`."""
        if not self.profile.has(role):
            return Query.unavailable([role])
        rate = promql.rate(self.raw(self.profile.role(role), suffix, extra), window)
        return Query(self._canonical_sum(by, rate), requires=frozenset([role]))

    def _canonical_sum(self, by: tuple[str, ...], expr: str) -> str:
        """sum by (canonical labels), renaming the profile's raw labels on the way.

        The sum by the raw labels comes first: copying requested_model over a
        series' own `model` label (LiteLLM) could otherwise give two series the
        same labels, which Prometheus refuses as a duplicate labelset.
        """
        renames = {c: r for c, r in self.profile.canonical_labels().items() if c in by}
        if not renames:
            return promql.sum_by(by, expr)
        raw_by = tuple(renames.get(label, label) for label in by)
        return promql.sum_by(by, promql.rename_labels(promql.sum_by(raw_by, expr), renames))

    # -- groups --------------------------------------------------------------

    def traffic_group(self, interval: str | None = None) -> RuleGroup:
        n = self.names
        rules: list[RecordingRule] = []
        if self.profile.has(STATUS_BREAKDOWN):
            rules.append(RecordingRule(n.requests_by_status, self._rate_by(REQUESTS, (JOB, MODEL, STATUS))))
            total = Query(promql.sum_by((JOB, MODEL), n.requests_by_status), requires=frozenset([REQUESTS]))
        else:
            total = self._rate_by(REQUESTS, (JOB, MODEL))
        rules.append(RecordingRule(n.requests, total))
        rules.append(RecordingRule(n.job_requests, self._derived(promql.sum_by((JOB,), n.requests), REQUESTS)))
        for role in OUTCOME_ROLES:
            rules.extend(self._outcome_rules(role))
        rules.append(RecordingRule(n.gateway_jobs, self._gateway_jobs()))
        inflight = self._sum_raw(INFLIGHT, (JOB, MODEL))
        rules.append(RecordingRule(n.inflight, inflight))
        return RuleGroup("llm-gateway-traffic", "llm-gateway-recording", tuple(rules), interval)

    def latency_group(self, interval: str | None = None) -> RuleGroup:
        n = self.names
        rules = (
            RecordingRule(n.latency_buckets, self._rate_by(LATENCY, (JOB, MODEL, LE), "_bucket")),
            RecordingRule(n.latency_sum, self._rate_by(LATENCY, (JOB, MODEL), "_sum")),
            RecordingRule(n.latency_count, self._rate_by(LATENCY, (JOB, MODEL), "_count")),
        )
        return RuleGroup("llm-gateway-latency", "llm-gateway-recording", rules, interval)

    def tokens_group(self, interval: str | None = None) -> RuleGroup:
        """Token rates, the price table as series, spend, and tokens nobody priced."""
        n = self.names
        rules: list[RecordingRule] = []
        for token_type, role in TOKEN_ROLES.items():
            rules.append(RecordingRule(n.tokens, self._rate_by(role, (JOB, MODEL)), {TOKEN_TYPE: token_type}))
        tokens_needed = (PROMPT_TOKENS, COMPLETION_TOKENS)
        per_model = self._derived(promql.sum_by((JOB, MODEL), n.tokens), *tokens_needed)
        rules.append(RecordingRule(n.model_tokens, per_model))
        for model, price in sorted(self.pricing.items()):
            for token_type, per_million in ((PROMPT, price["input"]), (COMPLETION, price["output"])):
                value = Query(f"vector({promql.number(per_token(per_million))})")
                rules.append(RecordingRule(n.price, value, {MODEL: model, TOKEN_TYPE: token_type}))
        if self.pricing:
            spend = f"{n.tokens} * on ({MODEL}, {TOKEN_TYPE}) group_left () {n.price}"
            rules.append(RecordingRule(n.spend, self._derived(spend, *tokens_needed)))
            rules.append(RecordingRule(n.model_spend, self._derived(promql.sum_by((JOB, MODEL), n.spend),
                                                                    *tokens_needed)))
            unpriced = promql.sum_by((JOB, MODEL), f"{n.tokens} unless on ({MODEL}) {n.price}")
        else:
            unpriced = promql.sum_by((JOB, MODEL), n.tokens)
        rules.append(RecordingRule(n.unpriced_tokens, self._derived(unpriced, *tokens_needed)))
        return RuleGroup("llm-gateway-tokens", "llm-gateway-recording", tuple(rules), interval)

    def groups(self, interval: str | None = None) -> list[RuleGroup]:
        return [self.traffic_group(interval), self.latency_group(interval), self.tokens_group(interval)]

    # -- helpers -------------------------------------------------------------

    def _derived(self, expr: str, *roles: str) -> Query:
        missing = self.profile.missing(roles)
        if missing:
            return Query.unavailable(missing)
        return Query(expr, requires=frozenset(roles))

    def _outcome_rules(self, role: str) -> list[RecordingRule]:
        n = self.names
        missing = self.profile.missing((role, REQUESTS))
        if missing:
            return [RecordingRule(n.outcome(role), Query.unavailable(missing))]
        needs = frozenset([role, REQUESTS])
        # With no matching series (no failures yet) the sum is empty; fall back to
        # 0 for every model that has traffic so ratios read 0, not "no data".
        counted = f"{self._outcome_rate(role)} or 0 * {n.requests}"
        per_model = promql.ratio(n.outcome(role), n.requests)
        per_job = promql.ratio(promql.sum_by((JOB,), n.outcome(role)), promql.sum_by((JOB,), n.requests))
        return [
            RecordingRule(n.outcome(role), Query(counted, requires=needs)),
            RecordingRule(n.outcome_ratio(role), Query(per_model, requires=needs)),
            RecordingRule(n.outcome_ratio(role, per_model=False), Query(per_job, requires=needs)),
        ]

    def _outcome_rate(self, role: str) -> str:
        """Rate of one outcome per (job, model).

        When the outcome is the request counter narrowed by its status label, it is
        read from the per-status recording instead of the raw series again.
        """
        matchers = self.status_matchers(role)
        if matchers is not None:
            return promql.sum_by((JOB, MODEL), promql.selector(self.names.requests_by_status, matchers))
        return self._rate_by(role, (JOB, MODEL)).expr

    def status_matchers(self, role: str) -> tuple[Matcher, ...] | None:
        """The role's matchers on the canonical status label, when the role is the request
        counter narrowed by its status label only, so that a per-status recording of the
        requests answers for it; None otherwise."""
        if not (self.profile.has(STATUS_BREAKDOWN) and self.profile.has(role)):
            return None
        selection, requests = self.profile.role(role), self.profile.role(REQUESTS)
        extra = [m for m in selection.matchers if m not in requests.matchers]
        if selection.series != requests.series or any(m.label != self.profile.status_label for m in extra):
            return None
        return tuple(Matcher(STATUS, m.op, m.value) for m in extra)

    def _sum_raw(self, role: str, by: tuple[str, ...]) -> Query:
        if not self.profile.has(role):
            return Query.unavailable([role])
        return Query(self._canonical_sum(by, self.raw(self.profile.role(role))), requires=frozenset([role]))

    def _gateway_jobs(self) -> Query:
        """How many gateway series each scrape job exports: tells which jobs are gateways,
        so a target of such a job that stops answering can be told from any other."""
        for role, suffix in ((REQUESTS, ""), (LATENCY, "_count"), (PROMPT_TOKENS, "")):
            if self.profile.has(role):
                sel = self.raw(self.profile.role(role), suffix)
                return Query(promql.aggregate("count", (JOB,), sel), requires=frozenset([role]))
        return Query.unavailable([REQUESTS])
