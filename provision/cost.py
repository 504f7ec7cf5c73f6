"""Spend queries over the recorded price and token series, for the cost dashboard and alerts.

Spend is only known as a rate: `job_model:llm_spend_usd:rate<w>` (and by token
type, `job_model_token_type:...`), in USD/s, recorded once per rule evaluation
interval. Spend over a period is the
integral of that rate: the sum of its samples in the period times the
evaluation interval, `sum_over_time(spend[<period>]) * <interval in seconds>`.

Why this form:
- Each sample is a w-window average, so the integral of the samples is the
  spend, exactly for steady traffic; at the period's ends the smoothing moves at
  most half a window's spend across the boundary.
- A series that starts mid-period (a new model, a new job) adds nothing
  before it exists. `avg_over_time(...) * period` would stretch it over the
  whole period.
- A subquery stepping one window, `sum_over_time(spend[period:w]) * w`, reads
  fewer points but counts the whole window before the period whenever the
  period starts on a step (midnight does), a full window too much.
The interval is the one written into every generated rule group
(`rules.interval`), so the samples really are that far apart. The cost: every
sample of the period is read, 86,400 per model for a 30-day month at 30 s
(the cost dashboard refreshes every 5 minutes for that reason).

Nothing here prices a model missing from the price table: its tokens are counted
separately (`llm_tokens_unpriced`), never at zero USD.
"""

from __future__ import annotations

from provision import promql
from provision.contract import MODEL, PRICING, REQUESTS, TOKEN_TYPE, Matcher, Profile
from provision.recording import TOKEN_ROLES, RecordedNames
from provision.rules import Query

SECONDS_PER_DAY = 86_400
TOKENS_NEEDED = tuple(TOKEN_ROLES.values())


class CostQueries:
    """Spend expressions; `filters` narrow every recorded series (e.g. job=~"$job")."""

    def __init__(self, profile: Profile, names: RecordedNames, *, priced: bool, interval: str,
                 filters: tuple[Matcher, ...] = ()):
        self.profile = profile
        self.names = names
        self.priced = priced
        self.filters = filters
        self.interval_seconds = promql.duration_seconds(interval)

    # -- building blocks -----------------------------------------------------

    def integral(self, series: str, period: str, by: tuple[str, ...] = ()) -> str:
        """The total over `period` of a recorded per-second rate, by `by`."""
        samples = f"sum_over_time({promql.selector(series, self.filters)}[{period}])"
        return f"{promql.sum_by(by, samples)} * {self.interval_seconds}"

    def _query(self, expr: str, legend: str = "", *, needs_price: bool = True, extra: tuple[str, ...] = ()) -> Query:
        roles = (*TOKENS_NEEDED, *extra)
        missing = self.profile.missing(roles)
        if needs_price and not self.priced:
            missing = (*missing, PRICING)
        if missing:
            return Query.unavailable(missing)
        return Query(expr, legend=legend, requires=frozenset(roles))

    @staticmethod
    def _legend(by: tuple[str, ...]) -> str:
        return " ".join("{{" + label + "}}" for label in by)

    # -- spend ---------------------------------------------------------------

    def spend(self, period: str = "$__range", by: tuple[str, ...] = (), legend: str | None = None) -> Query:
        """USD spent over `period` (Grafana's $__range, or a duration such as 1d)."""
        series = self.names.spend if TOKEN_TYPE in by else self.names.model_spend
        return self._query(self.integral(series, period, by), self._legend(by) if legend is None else legend)

    def projected_month(self) -> Query:
        """Month to date plus the last day's pace over the rest of the month.

        For a panel whose time range is the month so far (relative time now/M):
        `$__range_s` is the time elapsed in the month. The pace of the last 24 h
        smooths the daily cycle and follows a change (a cheaper model) within a day.
        """
        month_to_date = self.integral(self.names.model_spend, "$__range")
        pace = f"{self.integral(self.names.model_spend, '1d')} / {SECONDS_PER_DAY}"
        remaining = f"(days_in_month() * {SECONDS_PER_DAY} - $__range_s)"
        return self._query(f"{month_to_date} + {pace} * {remaining}", "projected")

    def monthly_pace(self, window: str) -> Query:
        """USD a whole calendar month would cost at the average spend rate of the last `window`."""
        seconds = promql.duration_seconds(window)
        per_second = f"{self.integral(self.names.model_spend, window)} / {seconds}"
        return self._query(f"{per_second} * days_in_month() * {SECONDS_PER_DAY}")

    def budget_used(self, budget: float) -> Query:
        """Share of the monthly budget spent, for a panel whose range is the month so far."""
        month_to_date = self.integral(self.names.model_spend, "$__range")
        return self._query(f"{month_to_date} / {promql.number(budget)}", "budget used")

    def cost_per_1k_requests(self, by: tuple[str, ...] = (MODEL,)) -> Query:
        """USD per 1000 requests at the current rates (failed requests included, as they are paid for)."""
        spend = promql.sum_by(by, promql.selector(self.names.model_spend, self.filters))
        requests = promql.sum_by(by, promql.selector(self.names.requests, self.filters))
        return self._query(f"{promql.ratio(spend, requests)} * 1000", self._legend(by), extra=(REQUESTS,))

    def same_traffic_on_each_model(self, period: str = "$__range") -> Query:
        """USD the tokens of `period`, by type, would have cost at each priced model's prices."""
        tokens = self.integral(self.names.tokens, period, (TOKEN_TYPE,))
        priced = f"({tokens}) * on ({TOKEN_TYPE}) group_right () {self.names.price}"
        return self._query(promql.sum_by((MODEL,), priced), "{{model}}")

    def price_per_million(self) -> Query:
        """The price table as configured, USD per million tokens."""
        return self._query(f"{promql.selector(self.names.price, self._model_filter())} * 1000000",
                           "{{model}} {{token_type}}")

    # -- models missing from the price table ----------------------------------

    def unpriced_models(self, period: str = "$__range") -> Query:
        """How many models had tokens in `period` but no price: 0 is a real zero here."""
        busy = f"max_over_time({promql.selector(self.names.unpriced_tokens, self.filters)}[{period}])"
        expr = f"count({promql.sum_by((MODEL,), busy)} > 0) or vector(0)"
        return self._query(expr, "unpriced models", needs_price=False)

    def unpriced_tokens(self, period: str = "$__range") -> Query:
        """Tokens of unpriced models over `period`, by model."""
        return self._query(self.integral(self.names.unpriced_tokens, period, (MODEL,)), "{{model}}", needs_price=False)

    def _model_filter(self) -> tuple[Matcher, ...]:
        return tuple(m for m in self.filters if m.label == MODEL)
