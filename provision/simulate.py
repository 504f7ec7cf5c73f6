"""Simulated gateway traffic: per-model requests, named fault scenarios, a stepped clock.

The simulator owns no clock: `advance(until)` runs whole ticks of simulated time,
so tests and history backfill step it as fast as they like and the live
exporter steps it on wall time. Each request is recorded when it completes
(counters move when a real client would move them) and is in flight until then.

Two arrival modes, both deterministic for a seed:
- `poisson`: Poisson arrivals, random outcomes and sizes (looks like real traffic);
- `steady`: arrivals, outcomes, latencies and token sizes follow low-discrepancy
  sequences, so any window of a few minutes matches the configured rates, shares
  and distributions almost exactly (what the end-to-end tests compare against).
"""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter as Tally
from dataclasses import dataclass, field, replace
from statistics import NormalDist

from prometheus_client import CollectorRegistry

from provision.config import Config, ConfigError
from provision.contract import Profile
from provision.recorder import TIMEOUT, Recorder

TICK_SECONDS = 1.0
SUCCESS = "200"
# Answers that come back at once, as a fraction of a normal answer's latency.
FAST_STATUSES = {"429": 0.1, "401": 0.1, "error": 0.05}
_Z95 = NormalDist().inv_cdf(0.95)
# Per-model traffic when simulate.models is not configured: plausible shapes for
# the source document's models, a generic one for any other priced model.
KNOWN_MODELS = {
    "gpt-4.1": dict(rate=2.0, latency={"p50": 1.4, "p95": 3.2}, tokens={"prompt": 1100, "completion": 350}),
    "claude-sonnet-4.5": dict(rate=1.2, latency={"p50": 2.0, "p95": 4.2}, tokens={"prompt": 1600, "completion": 500}),
    "gemini-2.5-flash": dict(rate=3.0, latency={"p50": 0.45, "p95": 1.3}, tokens={"prompt": 700, "completion": 220}),
    "deepseek-v3.2": dict(rate=1.5, latency={"p50": 1.1, "p95": 2.7}, tokens={"prompt": 900, "completion": 300}),
}
GENERIC_MODEL = dict(rate=1.0, latency={"p50": 1.0, "p95": 2.5}, tokens={"prompt": 800, "completion": 250})


# -- configuration -------------------------------------------------------------


@dataclass(frozen=True)
class ModelTraffic:
    name: str
    rate: float  # requests per second
    latency_p50: float
    latency_p95: float
    prompt_tokens: float  # mean per answered request
    completion_tokens: float

    @property
    def sigma(self) -> float:
        return math.log(self.latency_p95 / self.latency_p50) / _Z95


@dataclass(frozen=True)
class Faults:
    model: str
    error_ratio: float
    timeout_ratio: float
    rate_limited_ratio: float
    unauthorized_ratio: float
    latency_factor: float
    token_factor: float


@dataclass(frozen=True)
class Traffic:
    models: tuple[ModelTraffic, ...]
    statuses: dict[str, float]  # baseline share of each non-200 status
    faults: Faults
    arrivals: str = "poisson"
    seed: int = 1
    timeout_seconds: float = 30.0
    token_spread: float = 0.5  # sigma of log(token count)

    def model(self, name: str) -> ModelTraffic:
        return next(m for m in self.models if m.name == name)


def traffic_from_config(config: Config) -> Traffic:
    """The simulate: section as Traffic; ConfigError lines name the key."""
    section = config.section("simulate")
    name = config.name()
    models_raw = section.get("models") or {m: KNOWN_MODELS.get(m, GENERIC_MODEL) for m in sorted(config.pricing)}
    if not models_raw:
        raise ConfigError([f"{name}: simulate.models: no models to simulate (and no pricing to take them from)"])
    problems, models = [], []
    for model, spec in models_raw.items():
        latency = {**GENERIC_MODEL["latency"], **(spec.get("latency") or {})}
        tokens = {**GENERIC_MODEL["tokens"], **(spec.get("tokens") or {})}
        if latency["p95"] <= latency["p50"]:
            problems.append(f"{name}: simulate.models.{model}.latency: p95 {latency['p95']} must be above p50 "
                            f"{latency['p50']}")
        models.append(ModelTraffic(model, float(spec.get("rate", GENERIC_MODEL["rate"])), float(latency["p50"]),
                                   float(latency["p95"]), float(tokens["prompt"]), float(tokens["completion"])))
    statuses = {str(k): float(v) for k, v in section["statuses"].items() if v}
    if SUCCESS in statuses:
        problems.append(f"{name}: simulate.statuses.{SUCCESS}: 200 answers are the share the other statuses leave; "
                        "remove it")
    if sum(statuses.values()) > 1:
        problems.append(f"{name}: simulate.statuses: the shares add up to {sum(statuses.values()):g}, more than 1")
    faults = dict(section["faults"])
    fault_model = faults.pop("model", None) or models[0].name
    if fault_model not in models_raw:
        problems.append(f"{name}: simulate.faults.model: {fault_model!r} is not a simulated model; expected one of "
                        f"{', '.join(models_raw)}")
    scenario = section["scenario"]
    if scenario not in SCENARIOS:
        problems.append(f"{name}: simulate.scenario: unknown scenario {scenario!r}; expected one of "
                        f"{', '.join(SCENARIOS)}")
    if problems:
        raise ConfigError(problems)
    return Traffic(
        models=tuple(models),
        statuses=statuses,
        faults=Faults(fault_model, **{k: float(v) for k, v in faults.items()}),
        arrivals=section["arrivals"],
        seed=int(section["seed"]),
        timeout_seconds=float(section["timeout_seconds"]),
        token_spread=float(section["token_spread"]),
    )


# -- scenarios -------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """What one model's traffic looks like under a scenario."""

    rate: float
    statuses: dict[str, float]  # share of each non-200 status; the rest answer 200
    latency_factor: float = 1.0
    token_factor: float = 1.0

    def shares(self) -> dict[str, float]:
        """Every status with its share, 200 included."""
        return {SUCCESS: 1.0 - sum(self.statuses.values()), **self.statuses}


def _inject(shape: Shape, extra: dict[str, float]) -> Shape:
    """Add statuses with these shares, scaling the existing ones into what is left."""
    rest = 1.0 - sum(extra.values())
    statuses = {status: share * rest for status, share in shape.statuses.items()}
    for status, share in extra.items():
        statuses[status] = statuses.get(status, 0.0) + share
    return replace(shape, statuses=statuses)


def _healthy(traffic: Traffic, model: ModelTraffic) -> Shape:
    return Shape(model.rate, dict(traffic.statuses))


def _fault(change, *, every_model: bool = False):
    """A scenario: healthy traffic, changed by `change(faults, shape)` on the fault model (or all)."""

    def scenario(traffic: Traffic, model: ModelTraffic) -> Shape:
        shape = _healthy(traffic, model)
        if every_model or model.name == traffic.faults.model:
            return change(traffic.faults, shape)
        return shape

    return scenario


SERVER_ERRORS = {"500": 0.5, "502": 0.3, "503": 0.2}

SCENARIOS = {
    "healthy": (_healthy, "baseline traffic of every model"),
    "error_burst": (_fault(lambda f, s: _inject(s, {code: f.error_ratio * part for code, part in SERVER_ERRORS.items()})),
                    "5xx answers for one model (faults.error_ratio)"),
    "timeouts": (_fault(lambda f, s: _inject(s, {TIMEOUT: f.timeout_ratio})),
                 "client-side timeouts for one model (faults.timeout_ratio)"),
    "latency_spike": (_fault(lambda f, s: replace(s, latency_factor=f.latency_factor)),
                      "one model answers faults.latency_factor times slower"),
    "rate_limit_storm": (_fault(lambda f, s: _inject(s, {"429": f.rate_limited_ratio})),
                         "429 Too Many Requests for one model (faults.rate_limited_ratio)"),
    "auth_storm": (_fault(lambda f, s: _inject(s, {"401": f.unauthorized_ratio}), every_model=True),
                   "401 Unauthorized for every model: a revoked key (faults.unauthorized_ratio)"),
    "token_spike": (_fault(lambda f, s: replace(s, token_factor=f.token_factor)),
                    "one model's prompts and answers grow faults.token_factor times"),
    "traffic_stop": (_fault(lambda f, s: replace(s, rate=0.0), every_model=True), "no requests at all"),
}


def shape_of(traffic: Traffic, scenario: str, model: ModelTraffic) -> Shape:
    return SCENARIOS[scenario][0](traffic, model)


# -- what a scenario implies ----------------------------------------------------


@dataclass(frozen=True)
class Expectation:
    """The long-run values a scenario implies, in the contract's terms."""

    traffic: Traffic
    scenario: str

    def shape(self, model: str) -> Shape:
        return shape_of(self.traffic, self.scenario, self.traffic.model(model))

    def _models(self, models) -> list[str]:
        return list(models) if models is not None else [m.name for m in self.traffic.models]

    def request_rate(self, models=None, statuses=None) -> float:
        total = 0.0
        for name in self._models(models):
            shape = self.shape(name)
            shares = shape.shares()
            total += shape.rate * sum(p for s, p in shares.items() if statuses is None or s in statuses)
        return total

    def ratio(self, statuses, models=None) -> float:
        everything = self.request_rate(models)
        return self.request_rate(models, statuses) / everything if everything else 0.0

    def token_rate(self, token_type: str, models=None) -> float:
        """Tokens per second; only answered (2xx) requests carry usage."""
        total = 0.0
        for name in self._models(models):
            model, shape = self.traffic.model(name), self.shape(name)
            mean = model.prompt_tokens if token_type == "prompt" else model.completion_tokens
            total += shape.rate * shape.shares()[SUCCESS] * mean * shape.token_factor
        return total

    def spend_per_hour(self, pricing: dict, models=None) -> float:
        total = 0.0
        for name in self._models(models):
            if name in pricing:
                price = pricing[name]
                per_second = (self.token_rate("prompt", [name]) * price["input"]
                              + self.token_rate("completion", [name]) * price["output"]) / 1e6
                total += per_second * 3600
        return total

    def latency_cdf(self, seconds: float, models=None) -> float:
        weight = cdf = 0.0
        for name in self._models(models):
            model, shape = self.traffic.model(name), self.shape(name)
            for status, share in shape.shares().items():
                weight += shape.rate * share
                cdf += shape.rate * share * _status_latency_cdf(self.traffic, model, shape, status, seconds)
        return cdf / weight if weight else 0.0

    def latency_quantile(self, q: float, models=None) -> float:
        low, high = 0.0, 1e4
        for _ in range(100):
            middle = (low + high) / 2
            low, high = (middle, high) if self.latency_cdf(middle, models) < q else (low, middle)
        return high

    def mean_latency(self, model: str) -> float:
        traffic_model, shape = self.traffic.model(model), self.shape(model)
        total = 0.0
        for status, share in shape.shares().items():
            if status == TIMEOUT:
                total += share * self.traffic.timeout_seconds
            else:
                scale = _latency_scale(shape, status)
                total += share * traffic_model.latency_p50 * scale * math.exp(traffic_model.sigma ** 2 / 2)
        return total

    def in_flight(self, model: str) -> float:
        """Little's law: arrival rate times mean time in the system."""
        return self.shape(model).rate * self.mean_latency(model)


def _latency_scale(shape: Shape, status: str) -> float:
    return FAST_STATUSES.get(status, shape.latency_factor)


def _status_latency_cdf(traffic: Traffic, model: ModelTraffic, shape: Shape, status: str, seconds: float) -> float:
    if status == TIMEOUT:
        return 1.0 if seconds >= traffic.timeout_seconds else 0.0
    if seconds <= 0:
        return 0.0
    median = model.latency_p50 * _latency_scale(shape, status)
    return NormalDist().cdf(math.log(seconds / median) / model.sigma)


# -- the simulator ---------------------------------------------------------------

# One low-discrepancy stream each: latency, prompt tokens, completion tokens, start within the tick, arrivals.
_STEPS = ((math.sqrt(5) - 1) / 2, math.sqrt(2) - 1, math.sqrt(3) - 1, math.sqrt(7) - 2, math.sqrt(11) - 3)


@dataclass
class _ModelState:
    """Per-model generators: a seeded RNG (poisson) or low-discrepancy sequences (steady)."""

    rng: random.Random
    expected: float = 0.0  # steady arrivals due so far
    started: int = 0  # steady arrivals started so far
    deficit: dict[str, float] = field(default_factory=dict)  # steady status mix
    sequence: list[float] = field(default_factory=lambda: [0.0] * len(_STEPS))

    def uniform(self, stream: int) -> float:
        """The next number of a low-discrepancy stream in (0, 1)."""
        self.sequence[stream] = (self.sequence[stream] + _STEPS[stream]) % 1.0
        return min(max(self.sequence[stream], 1e-9), 1 - 1e-9)


@dataclass(order=True)
class _Pending:
    ends: float
    order: int
    model: str = field(compare=False)
    status: str = field(compare=False)
    latency: float = field(compare=False)
    prompt: int | None = field(compare=False)
    completion: int | None = field(compare=False)


class Simulator:
    """Requests per model under a scenario, recorded through a Recorder as they complete."""

    def __init__(self, traffic: Traffic, recorder: Recorder, *, start: float, scenario: str = "healthy"):
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; expected one of {', '.join(SCENARIOS)}")
        self.recorder = recorder
        self.now = float(start)
        self.scenario = scenario
        self.completed: Tally = Tally()  # (model, status) -> requests, for tests and reports
        self.tokens: Tally = Tally()  # (model, token type) -> tokens
        self._pending: list[_Pending] = []
        self._running: Tally = Tally()  # model -> requests started, not yet completed
        self._order = 0
        self._states: dict[str, _ModelState] = {}
        self.traffic = traffic
        self.set_traffic(traffic)

    def set_traffic(self, traffic: Traffic) -> None:
        """New traffic settings (a reloaded config); models keep their generators."""
        self.traffic = traffic
        for model in traffic.models:
            if model.name not in self._states:
                rng = random.Random(f"{traffic.seed}:{model.name}")
                state = _ModelState(rng)
                state.sequence = [rng.random() for _ in _STEPS]
                self._states[model.name] = state
        for model in traffic.models:
            self.recorder.set_in_flight(model.name, self._running[model.name])

    def set_scenario(self, name: str) -> None:
        if name not in SCENARIOS:
            raise KeyError(name)
        self.scenario = name

    def expectation(self) -> Expectation:
        return Expectation(self.traffic, self.scenario)

    def advance(self, until: float) -> None:
        """Run every whole tick that ends at or before `until`."""
        while self.now + TICK_SECONDS <= until + 1e-9:
            self._tick()

    # -- one tick ----------------------------------------------------------------

    def _tick(self) -> None:
        start, end = self.now, self.now + TICK_SECONDS
        for model in self.traffic.models:
            shape = shape_of(self.traffic, self.scenario, model)
            state = self._states[model.name]
            count = self._arrivals(state, shape.rate * TICK_SECONDS)
            for i in range(count):
                begins = start + (self._spread(state, i, count)) * TICK_SECONDS
                self._start(model, shape, state, begins)
        while self._pending and self._pending[0].ends <= end:
            done = heapq.heappop(self._pending)
            self.recorder.record(done.model, done.status, done.latency, done.prompt, done.completion)
            self._running[done.model] -= 1
            self.completed[(done.model, done.status)] += 1
            self.tokens[(done.model, "prompt")] += done.prompt or 0
            self.tokens[(done.model, "completion")] += done.completion or 0
        self.now = end
        for model in self.traffic.models:
            self.recorder.set_in_flight(model.name, self._running[model.name])

    def _steady(self) -> bool:
        return self.traffic.arrivals == "steady"

    def _arrivals(self, state: _ModelState, expected: float) -> int:
        if self._steady():
            # Start whatever brings the count to floor(due + u), u quasi-random: never more than one
            # request off the exact count, yet not periodic, so scrapes do not alias with arrivals.
            state.expected += expected
            count = max(0, math.floor(state.expected + state.uniform(4)) - state.started)
            state.started += count
            return count
        return _poisson(state.rng, expected)

    def _spread(self, state: _ModelState, index: int, count: int) -> float:
        """Where in the tick a request starts: evenly spaced, shifted so that a scrape interval
        that is a multiple of the arrival period does not always catch the same phase."""
        return (index + state.uniform(3)) / count if self._steady() else state.rng.random()

    def _start(self, model: ModelTraffic, shape: Shape, state: _ModelState, begins: float) -> None:
        status = self._status(state, shape.shares())
        if status == TIMEOUT:
            latency = self.traffic.timeout_seconds
        else:
            latency = self._lognormal(state, 0, math.log(model.latency_p50), model.sigma)
            latency *= _latency_scale(shape, status)
        prompt = completion = None
        if status == SUCCESS:
            spread = self.traffic.token_spread
            prompt = self._tokens(state, 1, model.prompt_tokens * shape.token_factor, spread)
            completion = self._tokens(state, 2, model.completion_tokens * shape.token_factor, spread)
        self._order += 1
        self._running[model.name] += 1
        heapq.heappush(self._pending, _Pending(begins + latency, self._order, model.name, status, latency,
                                               prompt, completion))

    def _status(self, state: _ModelState, shares: dict[str, float]) -> str:
        if self._steady():
            # Error diffusion: each request goes to the status furthest behind its share.
            for status, share in shares.items():
                state.deficit[status] = state.deficit.get(status, 0.0) + share
            for status in list(state.deficit):
                if status not in shares:
                    del state.deficit[status]
            chosen = max(shares, key=lambda s: (state.deficit[s], s == SUCCESS))
            state.deficit[chosen] -= 1.0
            return chosen
        return state.rng.choices(list(shares), weights=list(shares.values()))[0]

    def _lognormal(self, state: _ModelState, stream: int, mu: float, sigma: float) -> float:
        if self._steady():
            return math.exp(mu + sigma * NormalDist().inv_cdf(state.uniform(stream)))
        return state.rng.lognormvariate(mu, sigma)

    def _tokens(self, state: _ModelState, stream: int, mean: float, spread: float) -> int:
        if mean <= 0:
            return 0
        mu = math.log(mean) - spread ** 2 / 2  # keeps the mean at `mean`
        return max(1, round(self._lognormal(state, stream, mu, spread)))


def _poisson(rng: random.Random, expected: float) -> int:
    """A Poisson draw (Knuth's method for the small means of one tick)."""
    if expected <= 0:
        return 0
    if expected > 50:
        return max(0, round(rng.gauss(expected, math.sqrt(expected))))
    limit, count, product = math.exp(-expected), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def simulator_from_config(
    config: Config, profile: Profile, *, start: float, scenario: str | None = None
) -> tuple[Simulator, CollectorRegistry]:
    """A simulator writing the profile's metrics on a registry of its own."""
    registry = CollectorRegistry()
    simulator = Simulator(traffic_from_config(config), Recorder(profile, registry), start=start,
                          scenario=scenario or config.section("simulate")["scenario"])
    return simulator, registry
