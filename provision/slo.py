"""Service level objectives: indicators, error ratios per window, burn-rate alert conditions.

An objective (config `slo`) says which share of requests must be good over a rolling period:
- availability: requests that did not fail (5xx, timeout, client-side error; also 429 with
  `count_rate_limited`) out of all requests;
- latency: requests answered within a threshold, a bucket boundary of the latency
  histogram, out of all requests the histogram observed.

error ratio over a window = bad requests / all requests in the window
burn rate               = error ratio / error budget, where error budget = 1 - target

The alerts are multi-window, multi-burn-rate (Google SRE workbook, "Alerting on SLOs"): a
window pair fires while the burn rate is above its factor over a long window AND over a
short one; the page is the `or` of two pairs (1h/5m, 6h/30m), the ticket of two others
(1d/2h, 3d/6h).

How each window is computed (docs/slo.md has the derivation and its error):
- the recording window (5m): from the 5m rates the traffic recordings already keep;
- other windows up to 1h (30m, 1h): rate() of the raw counters, exact, so pages come on time;
- longer windows (2h, 6h, 1d, 3d, the period): sum_over_time of the recorded 5m rate of bad
  requests over the same sum for all requests, a traffic-weighted ratio that reads a few
  pre-aggregated series instead of every raw one, and trails the exact ratio by half the
  recording window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from provision import promql
from provision.config import Config, ConfigError
from provision.contract import FAILED, JOB, LATENCY, LE, MODEL, RATE_LIMITED, REQUESTS, STATUS, Matcher, Profile
from provision.promql import duration_seconds
from provision.recording import Recordings
from provision.rules import Branch, Condition, Query, RecordingRule, RuleGroup

AVAILABILITY, LATENCY_SLO = "availability", "latency"
JOB_LEVEL, MODEL_LEVEL = (JOB,), (JOB, MODEL)

ALERT_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
LONG_WINDOWS = ("1d", "3d")  # with the period: recorded at slo.long_window_interval
EXACT_UP_TO = 3600  # windows up to 1h are read from raw counters
CURRENT_BURN = "1h"  # the window of the recorded "current" burn rate
SEVERITY = {"page": "critical", "ticket": "warning"}
WINDOW_LABEL = "window"  # on each alert instance: the long window of the pair that fired
RULE_FILE = "llm-gateway-slo"


@dataclass(frozen=True)
class BurnPolicy:
    """One window pair: alert when `budget_share` of the period's budget is spent within `long_window`."""

    kind: str  # page | ticket
    long_window: str
    short_window: str
    budget_share: Decimal


# The SRE workbook's pairs: for a 30-day period the factors are 14.4, 6, 3 and 1.
BURN_POLICIES = (
    BurnPolicy("page", "1h", "5m", Decimal("0.02")),
    BurnPolicy("page", "6h", "30m", Decimal("0.05")),
    BurnPolicy("ticket", "1d", "2h", Decimal("0.10")),
    BurnPolicy("ticket", "3d", "6h", Decimal("0.10")),
)


def burn_factor(policy: BurnPolicy, period: str) -> Decimal:
    """The burn rate at which `policy` fires: budget share x period / long window, at least 1.

    Below 1 the budget would outlast the period, so nothing is wrong yet; periods shorter
    than 30 days reach that for the slow ticket (28d: 0.93), hence the floor.
    """
    factor = policy.budget_share * Decimal(duration_seconds(period)) / Decimal(duration_seconds(policy.long_window))
    return max(Decimal(1), factor.quantize(Decimal("0.01"))).normalize()


@dataclass(frozen=True)
class Objective:
    name: str  # availability | latency
    target: Decimal
    requires: tuple[str, ...]
    threshold_seconds: float | None = None
    count_rate_limited: bool = False

    @property
    def budget(self) -> Decimal:
        return 1 - self.target

    def statement(self) -> str:
        """What the objective promises, e.g. '99.5% of requests succeed'."""
        share = percent(self.target)
        if self.name == LATENCY_SLO:
            return f"{share} of requests answered within {self.threshold_seconds:g}s"
        return f"{share} of requests succeed"


@dataclass(frozen=True)
class SLONames:
    """Names of one objective's recorded series at one aggregation level."""

    objective: str
    level: tuple[str, ...]

    @property
    def _prefix(self) -> str:
        return f"{'_'.join(self.level)}:llm_slo_{self.objective}"

    def errors(self, window: str) -> str:
        return f"{self._prefix}_errors:rate{window}"

    def requests(self, window: str) -> str:
        return f"{self._prefix}_requests:rate{window}"

    def ratio(self, window: str) -> str:
        return f"{self._prefix}_errors:ratio_rate{window}"

    def burn_rate(self, window: str) -> str:
        return f"{self._prefix}_error_budget:burnrate{window}"

    def remaining(self, period: str) -> str:
        return f"{self._prefix}_error_budget:remaining{period}"


@dataclass(frozen=True)
class BurnAlert:
    """The page or the ticket of one objective: one branch per window pair, joined with `or`.

    Each branch is `burn rate(long) > factor and burn rate(short) > factor`, labelled
    `window=<long window>`; its value ($value) is the burn rate over the long window."""

    objective: Objective
    kind: str  # page | ticket
    pairs: tuple[tuple[BurnPolicy, Decimal], ...]  # (window pair, factor) per branch
    branches: tuple[Branch, ...]

    @property
    def severity(self) -> str:
        return SEVERITY[self.kind]

    def labels(self) -> dict[str, str]:
        return {"slo": self.objective.name}

    def thresholds(self) -> str:
        """The firing rule in words, e.g. '14.4x over 1h and 5m, or 6x over 6h and 30m'."""
        return ", or ".join(f"{factor}x over {p.long_window} and {p.short_window}" for p, factor in self.pairs)


class SLOs:
    """The configured objectives the profile can measure, and everything derived from them."""

    def __init__(self, objectives: tuple[Objective, ...], *, period: str, per_model: bool,
                 long_interval: str, recordings: Recordings):
        self.objectives = objectives
        self.period = period
        self.per_model = per_model
        self.long_interval = long_interval
        self.recordings = recordings
        self.base_window = recordings.window

    @property
    def alert_level(self) -> tuple[str, ...]:
        return MODEL_LEVEL if self.per_model else JOB_LEVEL

    @property
    def levels(self) -> tuple[tuple[str, ...], ...]:
        """Model level first, so the job level can sum it within the same evaluation."""
        return (MODEL_LEVEL, JOB_LEVEL) if self.per_model else (JOB_LEVEL,)

    def names(self, objective: Objective, level: tuple[str, ...] | None = None) -> SLONames:
        return SLONames(objective.name, level or self.alert_level)

    def windows(self) -> tuple[str, ...]:
        """Every window with a recorded error ratio: the alert windows and the period."""
        lengths = {duration_seconds(w) for w in ALERT_WINDOWS}
        return ALERT_WINDOWS if duration_seconds(self.period) in lengths else (*ALERT_WINDOWS, self.period)

    def period_window(self) -> str:
        """The name the period's ratio is recorded under (3d when the period is 72h)."""
        return next(w for w in self.windows() if duration_seconds(w) == duration_seconds(self.period))

    def time_range(self) -> str:
        """A Grafana relative time range covering the period."""
        return f"now-{math.ceil(duration_seconds(self.period) / 86400)}d"

    # -- recording rules -------------------------------------------------------

    def recording_groups(self) -> list[RuleGroup]:
        """Short windows at the usual interval; 1d, 3d and the period at the long interval."""
        short, long = [], []
        long_windows = {duration_seconds(w) for w in (*LONG_WINDOWS, self.period)}
        for level in self.levels:
            short += self._by_status_rules(level)
        for objective in self.objectives:
            for level in self.levels:
                names = self.names(objective, level)
                short += self._base_rules(objective, level)
                for window in self.windows():
                    ratio = self._query(objective, self._ratio(objective, level, window))
                    (long if duration_seconds(window) in long_windows else short).append(
                        RecordingRule(names.ratio(window), ratio))
                current = f"{names.ratio(CURRENT_BURN)} / {promql.number(objective.budget)}"
                short.append(RecordingRule(names.burn_rate(CURRENT_BURN), self._query(objective, current)))
                left = f"1 - {names.ratio(self.period_window())} / {promql.number(objective.budget)}"
                long.append(RecordingRule(names.remaining(self.period), self._query(objective, left)))
        if not short:
            return []
        return [
            RuleGroup("llm-gateway-slo", RULE_FILE, tuple(short)),
            RuleGroup("llm-gateway-slo-long", RULE_FILE, tuple(long), self.long_interval),
        ]

    def _base_rules(self, objective: Objective, level: tuple[str, ...]) -> list[RecordingRule]:
        """Bad and all requests per second over the recording window, at `level`."""
        names, window = self.names(objective, level), self.base_window
        errors, requests = self._model_errors(objective), self._model_requests(objective)
        if level == JOB_LEVEL:
            if self.per_model:
                model = self.names(objective, MODEL_LEVEL)
                errors, requests = model.errors(window), model.requests(window)
            errors, requests = promql.sum_by(JOB_LEVEL, errors), promql.sum_by(JOB_LEVEL, requests)
        return [
            RecordingRule(names.errors(window), self._query(objective, errors)),
            RecordingRule(names.requests(window), self._query(objective, requests)),
        ]

    def _model_errors(self, objective: Objective) -> str:
        n = self.recordings.names
        if objective.name == LATENCY_SLO:
            bucket = le_matcher(objective.threshold_seconds)
            fast = promql.sum_by(MODEL_LEVEL, promql.selector(n.latency_buckets, (bucket,)))
            return f"clamp_min({n.latency_count} - {fast}, 0)"
        # Both outcome recordings fall back to 0 for models with traffic, so `+` keeps every model.
        return " + ".join(n.outcome(role) for role in self._bad_roles(objective))

    def _model_requests(self, objective: Objective) -> str:
        n = self.recordings.names
        return n.latency_count if objective.name == LATENCY_SLO else n.requests

    def _bad_roles(self, objective: Objective) -> tuple[str, ...]:
        return (FAILED, RATE_LIMITED) if objective.count_rate_limited else (FAILED,)

    def _ratio(self, objective: Objective, level: tuple[str, ...], window: str) -> str:
        names = self.names(objective, level)
        base = self.base_window
        if window == base:
            return promql.ratio(names.errors(base), names.requests(base))
        if duration_seconds(window) <= EXACT_UP_TO:
            return self._raw_ratio(objective, level, window)
        # Each 5m rate counts a request once per evaluation that sees it: the same weight for
        # bad and all requests, so the quotient of the sums is the traffic-weighted ratio.
        return promql.ratio(f"sum_over_time({names.errors(base)}[{window}])",
                            f"sum_over_time({names.requests(base)}[{window}])")

    def _raw_ratio(self, objective: Objective, level: tuple[str, ...], window: str) -> str:
        rate = self.recordings.window_rate
        if objective.name == LATENCY_SLO:
            fast = rate(LATENCY, level, window, "_bucket", (le_matcher(objective.threshold_seconds),)).expr
            return f"clamp_min(1 - {promql.ratio(fast, rate(LATENCY, level, window, '_count').expr)}, 0)"
        # An outcome never seen has no series: count it as 0 wherever there is traffic.
        zero = f"0 * {self.names(objective, level).requests(self.base_window)}"
        if self._reads_by_status(objective):
            by_status = by_status_name(level, window)
            bad = " + ".join(promql.paren(f"{promql.sum_by(level, promql.selector(by_status, self._status(role)))} "
                                          f"or {zero}") for role in self._bad_roles(objective))
            return promql.ratio(bad, promql.sum_by(level, by_status))
        bad = " + ".join(promql.paren(f"{rate(role, level, window).expr} or {zero}")
                         for role in self._bad_roles(objective))
        return promql.ratio(bad, rate(REQUESTS, level, window).expr)

    def _status(self, role: str) -> tuple[Matcher, ...]:
        return self.recordings.status_matchers(role) or ()

    def _reads_by_status(self, objective: Objective) -> bool:
        """Whether the bad requests of `objective` are requests with some statuses, so that one
        per-status recording per window serves both sides of its raw-window ratios."""
        return objective.name == AVAILABILITY and all(
            self.recordings.status_matchers(role) is not None for role in self._bad_roles(objective))

    def _raw_windows(self) -> tuple[str, ...]:
        return tuple(w for w in self.windows() if w != self.base_window and duration_seconds(w) <= EXACT_UP_TO)

    def _by_status_rules(self, level: tuple[str, ...]) -> list[RecordingRule]:
        """Requests per status over each raw window: the raw counters are read once per window
        for both the bad requests and all of them (the job level sums the model level)."""
        if not any(self._reads_by_status(o) for o in self.objectives):
            return []
        rules = []
        for window in self._raw_windows():
            if level == JOB_LEVEL and self.per_model:
                query = Query(promql.sum_by((*JOB_LEVEL, STATUS), by_status_name(MODEL_LEVEL, window)),
                              requires=frozenset([REQUESTS]))
            else:
                query = self.recordings.window_rate(REQUESTS, (*level, STATUS), window)
            rules.append(RecordingRule(by_status_name(level, window), query))
        return rules

    def _query(self, objective: Objective, expr: str) -> Query:
        missing = self.recordings.profile.missing(objective.requires)
        return Query.unavailable(missing) if missing else Query(expr, requires=frozenset(objective.requires))

    # -- alerts ----------------------------------------------------------------

    def _pairs(self, objective: Objective):
        """(policy, factor, whether that burn rate is reachable at this objective's budget) per window pair.

        A factor times the budget of 100% or more needs more than every request to be bad."""
        for policy in BURN_POLICIES:
            factor = burn_factor(policy, self.period)
            yield policy, factor, factor * objective.budget < 1

    def burn_alerts(self, objective: Objective) -> list[BurnAlert]:
        """The page and the ticket, each from the window pairs that can fire at this objective's budget."""
        names, budget = self.names(objective), promql.number(objective.budget)
        match_on = self.alert_level
        alerts = []
        for kind in SEVERITY:
            pairs = tuple((p, f) for p, f, reachable in self._pairs(objective) if reachable and p.kind == kind)
            branches = []
            for policy, factor in pairs:
                burn = f"{names.ratio(policy.long_window)} / {budget}"
                labelled = f'label_replace({burn}, "{WINDOW_LABEL}", "{policy.long_window}", "", "")'
                short = f"{names.ratio(policy.short_window)} / {budget}"
                branches.append(Branch(
                    Condition(self._query(objective, labelled), ">", float(factor)),
                    (Condition(self._query(objective, short), ">", float(factor), match_on=match_on),),
                ))
            if branches:
                alerts.append(BurnAlert(objective, kind, pairs, tuple(branches)))
        return alerts

    def unreachable(self) -> list[str]:
        """Notices for the window pairs that burn_alerts leaves out."""
        return [
            f"slo {objective.name}: the {policy.kind} alert over {policy.long_window}/{policy.short_window} "
            f"left out: a {factor}x burn of a {percent(objective.budget)} budget needs "
            f"{percent(factor * objective.budget)} of requests to be bad"
            for objective in self.objectives
            for policy, factor, reachable in self._pairs(objective) if not reachable
        ]

    # -- dashboard queries -------------------------------------------------------

    def _panel(self, name: str, per_model: bool, expr_of, legend: str) -> Query:
        matchers = [Matcher(JOB, "=~", "$job")] + ([Matcher(MODEL, "=~", "$model")] if per_model else [])
        return Query(expr_of(promql.selector(name, matchers)), legend=legend)

    def _level_names(self, objective: Objective, per_model: bool) -> SLONames:
        return self.names(objective, MODEL_LEVEL if per_model else JOB_LEVEL)

    def sli_query(self, objective: Objective, window: str, *, per_model: bool = False, legend: str = "") -> Query:
        """The share of good requests over `window`."""
        name = self._level_names(objective, per_model).ratio(window)
        return self._panel(name, per_model, lambda s: f"1 - {s}", legend)

    def burn_rate_query(self, objective: Objective, window: str, *, per_model: bool = False, legend: str = "") -> Query:
        names = self._level_names(objective, per_model)
        if window == CURRENT_BURN:
            return self._panel(names.burn_rate(window), per_model, lambda s: s, legend)
        return self._panel(names.ratio(window), per_model, lambda s: f"{s} / {promql.number(objective.budget)}", legend)

    def remaining_query(self, objective: Objective, *, per_model: bool = False, legend: str = "") -> Query:
        name = self._level_names(objective, per_model).remaining(self.period)
        return self._panel(name, per_model, lambda s: s, legend)

    def objective_query(self, objective: Objective) -> Query:
        return Query(f"vector({promql.number(objective.target)})", legend="objective")


def percent(share: Decimal) -> str:
    """0.995 -> '99.5%', 0.1 -> '10%'."""
    return f"{share * 100:f}".rstrip("0").rstrip(".") + "%"


def by_status_name(level: tuple[str, ...], window: str) -> str:
    """Requests per second by status over `window` at `level`, e.g. job_status:llm_requests:rate1h."""
    return f"{'_'.join((*level, STATUS))}:llm_requests:rate{window}"


def le_matcher(threshold: float) -> Matcher:
    """Matches the `le` bucket of `threshold` however the exporter spells it.

    Go clients write le="5", Python's prometheus_client le="5.0" (Prometheus 3 rewrites
    both to "5.0" at ingestion, 2.x keeps them as scraped).
    """
    spellings = sorted({promql.number(threshold), repr(float(threshold))})
    return Matcher(LE, "=~", "|".join(promql.regex_escape(s) for s in spellings))


def load_slos(config: Config, profile: Profile, recordings: Recordings) -> tuple[SLOs, list[str]]:
    """The objectives the config sets and the profile can measure, plus notices for the others.

    Raises ConfigError when the latency threshold is not a bucket boundary of the profile.
    """
    settings = config.section("slo")
    objectives, notices = [], []
    for objective in _configured(settings):
        missing = profile.missing(objective.requires)
        if missing:
            notices.append(f"slo {objective.name} left out: the profile {profile.name} has no {', '.join(missing)}")
            continue
        if objective.name == LATENCY_SLO:
            notices += _check_threshold(config, profile, objective.threshold_seconds)
        objectives.append(objective)
    slos = SLOs(tuple(objectives), period=settings["period"], per_model=settings["per_model"],
                long_interval=settings["long_window_interval"], recordings=recordings)
    return slos, notices + slos.unreachable()


def _configured(settings: dict) -> list[Objective]:
    out = []
    availability, latency = settings["availability"], settings["latency"]
    if availability["target"] is not None:
        rate_limited = availability["count_rate_limited"]
        requires = (REQUESTS, FAILED, RATE_LIMITED) if rate_limited else (REQUESTS, FAILED)
        out.append(Objective(AVAILABILITY, Decimal(str(availability["target"])), requires,
                             count_rate_limited=rate_limited))
    if latency["target"] is not None:
        out.append(Objective(LATENCY_SLO, Decimal(str(latency["target"])), (LATENCY,),
                             threshold_seconds=float(latency["threshold_seconds"])))
    return out


def _check_threshold(config: Config, profile: Profile, threshold: float) -> list[str]:
    buckets = profile.latency_buckets
    if not buckets:
        return [f"slo latency: the profile {profile.name} does not declare its latency buckets; "
                f"make sure {threshold:g}s is one of them"]
    if not any(math.isclose(threshold, b, rel_tol=1e-9) for b in buckets):
        valid = ", ".join(f"{b:g}" for b in buckets)
        raise ConfigError([f"{config.name()}: slo.latency.threshold_seconds: {threshold:g} is not a bucket "
                           f"boundary of the {profile.name} profile's latency histogram; use one of {valid}"])
    return []
