"""Panel queries, filtered on the dashboard's template variables.

Two sources give the same signals:
- recorded (default): the recording rules' series, cheap to refresh, 5m resolution;
- raw: the profile's own series with `rate(...[$__rate_interval])`, full
  resolution for drilling into an incident, at a higher query cost.

Every method takes `by` in canonical label names and returns a Query whose
legend names the labels the result keeps.
"""

from __future__ import annotations

from provision import promql
from provision.contract import (
    FAILED,
    INFLIGHT,
    JOB,
    LATENCY,
    LE,
    MODEL,
    PRICING,
    RATE_LIMITED,
    REQUESTS,
    STATUS,
    STATUS_BREAKDOWN,
    SUCCEEDED,
    TOKEN_TYPE,
    UNAUTHORIZED,
    Matcher,
    Profile,
)
from provision.recording import TOKEN_ROLES, RecordedNames
from provision.rules import Query

RATE_INTERVAL = "$__rate_interval"
STATUS_CLASS = "status_class"
SECONDS_PER_HOUR = 3600


class PanelQueries:
    def __init__(self, profile: Profile, names: RecordedNames, *, selector: dict[str, str], raw: bool = False,
                 priced: bool = True):
        self.profile = profile
        self.names = names
        self.raw = raw
        self.priced = priced  # whether the price table has models, so spend is recorded
        self.selector = tuple(Matcher(k, "=", v) for k, v in sorted(selector.items()))

    # -- filters and labels --------------------------------------------------

    def label(self, canonical: str) -> str:
        """The label name a query result carries for a canonical label."""
        if self.raw and canonical == MODEL:
            return self.profile.model_label
        if self.raw and canonical == STATUS and self.profile.status_label:
            return self.profile.status_label
        return canonical

    def legend(self, *canonical: str) -> str:
        return " ".join("{{" + self.label(c) + "}}" for c in canonical)

    def _filters(self) -> tuple[Matcher, ...]:
        return (Matcher(JOB, "=~", "$job"), Matcher(self.label(MODEL), "=~", "$model"))

    def _recorded(self, name: str, *extra: Matcher) -> str:
        return promql.selector(name, (*self._filters(), *extra))

    def _raw(self, role: str, suffix: str = "") -> str:
        return promql.select(self.profile.role(role), (*self.selector, *self._filters()), suffix)

    def _by(self, by: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(self.label(c) for c in by)

    def _need(self, *roles: str) -> tuple[str, ...]:
        return self.profile.missing(roles)

    def _query(self, expr: str, by: tuple[str, ...], roles: tuple[str, ...], legend: str | None = None) -> Query:
        return Query(expr, legend=self.legend(*by) if legend is None else legend, requires=frozenset(roles))

    # -- variables -----------------------------------------------------------

    def variable_source(self, *extra: Matcher) -> str:
        """The series the job and model variables list their values from."""
        if self.raw:
            return promql.select(self.profile.role(REQUESTS), (*self.selector, *extra))
        return promql.selector(self.names.requests, extra)

    # -- traffic -------------------------------------------------------------

    def request_rate(self, by: tuple[str, ...] = (), legend: str | None = None) -> Query:
        if missing := self._need(REQUESTS):
            return Query.unavailable(missing)
        return self._query(self._rate(REQUESTS, by), by, (REQUESTS,), legend)

    def outcome_rate(self, role: str, by: tuple[str, ...] = (), legend: str | None = None) -> Query:
        if missing := self._need(role):
            return Query.unavailable(missing)
        if self.raw:
            expr = self._rate(role, by)
        else:
            expr = promql.sum_by(self._by(by), self._recorded(self.names.outcome(role)))
        return self._query(expr, by, (role,), legend)

    def status_class_rate(self, by: tuple[str, ...] = ()) -> Query:
        """Request rate split into 2xx/4xx/5xx and non-HTTP outcomes (timeout, error)."""
        if missing := self._need(STATUS_BREAKDOWN):
            return Query.unavailable(missing)
        status = self.label(STATUS)
        if self.raw:
            series = promql.rate(self._raw(REQUESTS), RATE_INTERVAL)
        else:
            series = self._recorded(self.names.requests_by_status)
        classes = promql.status_class(series, status, absent=self.profile.status_when_absent)
        expr = promql.sum_by((*self._by(by), STATUS_CLASS), classes)
        return Query(expr, legend=" ".join([self.legend(*by), "{{status_class}}"]).strip(),
                     requires=frozenset([STATUS_BREAKDOWN]))

    def outcome_ratio(self, role: str, by: tuple[str, ...] = (), legend: str | None = None) -> Query:
        """Share of requests with this outcome (failed, succeeded, rate_limited, unauthorized)."""
        if missing := self._need(role, REQUESTS):
            return Query.unavailable(missing)
        expr = promql.ratio(self.outcome_rate(role, by).expr, self._rate(REQUESTS, by))
        return self._query(expr, by, (role, REQUESTS), legend)

    def failure_ratio(self, by: tuple[str, ...] = (), legend: str | None = None) -> Query:
        return self.outcome_ratio(FAILED, by, legend)

    def success_ratio(self, by: tuple[str, ...] = (), legend: str | None = None) -> Query:
        return self.outcome_ratio(SUCCEEDED, by, legend)

    def rate_limited_rate(self, by: tuple[str, ...] = (), legend: str | None = None) -> Query:
        return self.outcome_rate(RATE_LIMITED, by, legend)

    def unauthorized_rate(self, by: tuple[str, ...] = (), legend: str | None = None) -> Query:
        return self.outcome_rate(UNAUTHORIZED, by, legend)

    # -- latency -------------------------------------------------------------

    def latency_quantile(self, quantile: float, by: tuple[str, ...] = (), legend: str | None = None) -> Query:
        if missing := self._need(LATENCY):
            return Query.unavailable(missing)
        expr = promql.histogram_quantile(quantile, self._latency_buckets(by))
        return self._query(expr, by, (LATENCY,), legend)

    def latency_buckets(self) -> Query:
        """Request rate per latency bucket, for a heatmap."""
        if missing := self._need(LATENCY):
            return Query.unavailable(missing)
        return Query(self._latency_buckets(()), legend="{{le}}", requires=frozenset([LATENCY]))

    def latency_mean(self, by: tuple[str, ...] = (), legend: str | None = None) -> Query:
        if missing := self._need(LATENCY):
            return Query.unavailable(missing)
        if self.raw:
            total = promql.sum_by(self._by(by), promql.rate(self._raw(LATENCY, "_sum"), RATE_INTERVAL))
            count = promql.sum_by(self._by(by), promql.rate(self._raw(LATENCY, "_count"), RATE_INTERVAL))
        else:
            total = promql.sum_by(self._by(by), self._recorded(self.names.latency_sum))
            count = promql.sum_by(self._by(by), self._recorded(self.names.latency_count))
        return self._query(promql.ratio(total, count), by, (LATENCY,), legend)

    def _latency_buckets(self, by: tuple[str, ...]) -> str:
        keep = (*self._by(by), LE)
        if self.raw:
            return promql.sum_by(keep, promql.rate(self._raw(LATENCY, "_bucket"), RATE_INTERVAL))
        return promql.sum_by(keep, self._recorded(self.names.latency_buckets))

    # -- tokens and cost -----------------------------------------------------

    def token_rate(self, by: tuple[str, ...] = (MODEL, TOKEN_TYPE), legend: str | None = None) -> Query:
        """Tokens per second, prompt and completion."""
        roles = tuple(TOKEN_ROLES.values())
        if missing := self._need(*roles):
            return Query.unavailable(missing)
        if not self.raw:
            expr = promql.sum_by(self._by(by), self._recorded(self.names.tokens))
            return self._query(expr, by, roles, legend)
        keep = tuple(c for c in by if c != TOKEN_TYPE)
        parts = []
        for token_type, role in TOKEN_ROLES.items():
            part = promql.sum_by(self._by(keep), promql.rate(self._raw(role), RATE_INTERVAL))
            if TOKEN_TYPE in by:
                part = f'label_replace({part}, "{TOKEN_TYPE}", "{token_type}", "", "")'
            parts.append(part)
        expr = " or ".join(parts) if TOKEN_TYPE in by else f"{promql.paren(parts[0])} + {promql.paren(parts[1])}"
        return self._query(expr, by, roles, legend)

    def spend_per_hour(self, by: tuple[str, ...] = (MODEL,), legend: str | None = None) -> Query:
        """Estimated spend in USD per hour from the price table (recorded series only)."""
        roles = tuple(TOKEN_ROLES.values())
        if missing := self._need(*roles) or ((PRICING,) if not self.priced else ()):
            return Query.unavailable(missing)
        expr = f"{promql.sum_by(by, self._recorded_canonical(self.names.spend))} * {SECONDS_PER_HOUR}"
        return Query(expr, legend=self._canonical_legend(by) if legend is None else legend,
                     requires=frozenset(roles))

    def unpriced_token_rate(self, by: tuple[str, ...] = (MODEL,)) -> Query:
        """Tokens/s of models missing from the price table, so they are never priced at zero silently."""
        roles = tuple(TOKEN_ROLES.values())
        if missing := self._need(*roles):
            return Query.unavailable(missing)
        expr = promql.sum_by(by, self._recorded_canonical(self.names.unpriced_tokens))
        return Query(expr, legend=self._canonical_legend(by), requires=frozenset(roles))

    def inflight(self, by: tuple[str, ...] = (MODEL,), legend: str | None = None) -> Query:
        if missing := self._need(INFLIGHT):
            return Query.unavailable(missing)
        if self.raw:
            expr = promql.sum_by(self._by(by), self._raw(INFLIGHT))
        else:
            expr = promql.sum_by(self._by(by), self._recorded(self.names.inflight))
        return self._query(expr, by, (INFLIGHT,), legend)

    # -- shared --------------------------------------------------------------

    def _rate(self, role: str, by: tuple[str, ...]) -> str:
        if self.raw:
            return promql.sum_by(self._by(by), promql.rate(self._raw(role), RATE_INTERVAL))
        if role == REQUESTS:
            return promql.sum_by(self._by(by), self._recorded(self.names.requests))
        return promql.sum_by(self._by(by), self._recorded(self.names.outcome(role)))

    def _recorded_canonical(self, name: str) -> str:
        """Cost exists only as recorded series (the price table lives in rules)."""
        return promql.selector(name, (Matcher(JOB, "=~", "$job"), Matcher(MODEL, "=~", "$model")))

    def _canonical_legend(self, by: tuple[str, ...]) -> str:
        return " ".join("{{" + c + "}}" for c in by)

