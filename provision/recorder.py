"""Write finished requests onto a profile's own metric families (prometheus_client).

The instrumentation (`provision.instrument`) and the traffic simulator
(`provision.simulate`) describe a request the same way: model, status, latency,
prompt and completion tokens. A Recorder turns that into increments and
observations on exactly the series the active profile's roles read, so the
generated rules and dashboards see the request whatever the gateway calls its
metrics.

What a role may read, and what is written for it:

| role                         | series                 | write                        |
|------------------------------|------------------------|------------------------------|
| requests and outcome roles   | a counter `x_total`    | +1 per request               |
|                              | the latency `_count`   | counted by the latency write |
| latency                      | a histogram            | observe(latency seconds)     |
| prompt / completion tokens   | a counter `x_total`    | +n tokens                    |
|                              | a histogram's `_sum`   | observe(n tokens)            |
| inflight                     | a gauge                | requests in progress         |

Any other shape raises ProfileShapeError with one line saying which role and why.

Statuses are the contract's: an HTTP code as a string, `timeout` or `error`. A
request lands in the series of the roles its status belongs to (2xx succeeded;
5xx, timeout, error failed; 429 rate_limited; 401 unauthorized) and, as far as
the profile's matchers can tell them apart, in no other role's series. The label
values that achieve this are searched among the status itself and the values
the profile's matchers name (`error_type="RateLimitError"` gives RateLimitError).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from provision.contract import (
    COMPLETION,
    COUNTER,
    FAILED,
    GAUGE,
    HISTOGRAM,
    INFLIGHT,
    LATENCY,
    OUTCOME_ROLES,
    PROMPT,
    RATE_LIMITED,
    REQUESTS,
    SUCCEEDED,
    UNAUTHORIZED,
    Matcher,
    Metric,
    Profile,
)
from provision.profiles.custom import READABLE  # which series of which family type each role may read
from provision.recording import TOKEN_ROLES

REQUEST_ROLES = (REQUESTS, *OUTCOME_ROLES)
# Prometheus attaches these at scrape time; an exporter never sets them.
TARGET_LABELS = frozenset({"job", "instance"})
# Statuses every profile must be able to record; checked when a Recorder is made.
STANDARD_STATUSES = ("200", "500", "429", "401", "timeout", "error")
TIMEOUT, ERROR = "timeout", "error"

_HTTP_CODE = re.compile(r"[1-5][0-9][0-9]")


class ProfileShapeError(ValueError):
    """The profile describes series this module cannot write; the message is one line."""


def outcome_roles(status: str) -> frozenset[str]:
    """The contract's outcome roles a request with this status belongs to."""
    if status in (TIMEOUT, ERROR) or (_HTTP_CODE.fullmatch(status) and status.startswith("5")):
        return frozenset([FAILED])
    if status == "429":
        return frozenset([RATE_LIMITED])
    if status == "401":
        return frozenset([UNAUTHORIZED])
    if _HTTP_CODE.fullmatch(status) and status.startswith("2"):
        return frozenset([SUCCEEDED])
    return frozenset()


@dataclass(frozen=True)
class Read:
    """How one role reads one metric family."""

    role: str
    metric: Metric
    part: str  # the suffix read: "" (the family itself), "_count" or "_sum"
    matchers: tuple[Matcher, ...]


@dataclass(frozen=True)
class _Write:
    family: str
    values: tuple[str, ...]  # label values in the family's label order; model filled in per call
    model_index: int | None
    observe: bool  # histogram observation rather than a counter increment


def profile_reads(profile: Profile) -> dict[str, Read]:
    """Role -> how it reads its family, or ProfileShapeError when no write could feed it."""
    reads = {}
    for role, selection in profile.roles.items():
        metric = profile.metric(selection.series)
        if metric is None:
            raise ProfileShapeError(
                f"profile {profile.name}: role {role} reads {selection.series}, which is not among the "
                "profile's metrics"
            )
        allowed = READABLE.get(role, ())
        part = next((suffix for kind, suffix in allowed if metric.type == kind and selection.series ==
                     metric.name + suffix), None)
        if part is None:
            shapes = " or ".join(f"a {kind}" + (f"'s {suffix}" if suffix else "") for kind, suffix in allowed)
            raise ProfileShapeError(
                f"profile {profile.name}: role {role} reads {selection.series} (a {metric.type}); "
                f"relaywatch can only write {shapes or 'nothing'} for it"
            )
        reads[role] = Read(role, metric, part, selection.matchers)
    _check_families(profile, reads)
    return reads


def _kind(role: str) -> str:
    if role in REQUEST_ROLES:
        return "request"
    if role in TOKEN_ROLES.values():
        return "tokens"
    return {LATENCY: "latency", INFLIGHT: "inflight"}.get(role, "other")


# Kinds of fact one family may carry together: a histogram read for latency can count requests too.
_COMPATIBLE_KINDS = ({"request"}, {"latency"}, {"request", "latency"}, {"tokens"}, {"inflight"})


def _check_families(profile: Profile, reads: dict[str, Read]) -> None:
    latency = reads.get(LATENCY)
    kinds: dict[str, set[str]] = {}
    for read in reads.values():
        kinds.setdefault(read.metric.name, set()).add(_kind(read.role))
        if read.part == "_count" and (latency is None or latency.metric.name != read.metric.name):
            raise ProfileShapeError(
                f"profile {profile.name}: role {read.role} counts requests with {read.metric.name}_count, "
                "but only the latency histogram's _count can stand for requests"
            )
        if read.metric.type == COUNTER and not read.metric.name.endswith("_total"):
            raise ProfileShapeError(
                f"profile {profile.name}: counter {read.metric.name} has no _total suffix; prometheus_client "
                "always exports counters as <name>_total"
            )
        for matcher in read.matchers:
            if matcher.label not in read.metric.labels and matcher.label not in TARGET_LABELS:
                raise ProfileShapeError(
                    f"profile {profile.name}: role {read.role} matches label {matcher.label}, which "
                    f"{read.metric.name} does not declare"
                )
    for family, found in sorted(kinds.items()):
        if found not in _COMPATIBLE_KINDS:
            raise ProfileShapeError(
                f"profile {profile.name}: {family} is read as {' and as '.join(sorted(found))}; "
                "one family cannot carry both"
            )


class Recorder:
    """The profile's metric families on `registry`, and the writes of a finished request."""

    def __init__(self, profile: Profile, registry: CollectorRegistry):
        self.profile = profile
        self.reads = profile_reads(profile)
        self._families: dict[str, tuple[Metric, tuple[str, ...], object]] = {}
        for read in sorted(self.reads.values(), key=lambda r: r.metric.name):
            if read.metric.name not in self._families:
                self._families[read.metric.name] = self._declare(read, registry)
        self._candidates = _candidate_values(profile)
        self._plans: dict[tuple, tuple[_Write, ...]] = {}
        for status in STANDARD_STATUSES:
            self._request_plan(status)
        for role in TOKEN_ROLES.values():
            self._token_plan(role)
        self._inflight = self._gauge_write() if INFLIGHT in self.reads else None

    # -- public ----------------------------------------------------------------

    def record(
        self,
        model: str,
        status: str,
        latency: float,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
    ) -> None:
        """One finished request. Token counts of None (no usage known) write nothing."""
        for write in self._request_plan(status):
            self._apply(write, model, observed=latency, increment=1)
        for token_type, amount in ((PROMPT, prompt_tokens), (COMPLETION, completion_tokens)):
            if amount is not None:
                for write in self._token_plan(TOKEN_ROLES[token_type]):
                    self._apply(write, model, observed=amount, increment=amount)

    def status_label_value(self, status: str) -> str | None:
        """The value the request series' status label gets for this status (None: no such label)."""
        read, label = self.reads.get(REQUESTS), self.profile.status_label
        if read is None or label is None:
            return None
        _, labels, _ = self._families[read.metric.name]
        for write in self._request_plan(status):
            if write.family == read.metric.name and label in labels:
                return write.values[labels.index(label)]
        return None

    @property
    def tracks_in_flight(self) -> bool:
        return self._inflight is not None

    def add_in_flight(self, model: str, delta: float) -> None:
        if self._inflight is not None:
            self._child(self._inflight, model).inc(delta)

    def set_in_flight(self, model: str, value: float) -> None:
        if self._inflight is not None:
            self._child(self._inflight, model).set(value)

    # -- declaring -------------------------------------------------------------

    def _declare(self, read: Read, registry: CollectorRegistry) -> tuple[Metric, tuple[str, ...], object]:
        metric = read.metric
        labels = tuple(label for label in metric.labels if label not in TARGET_LABELS)
        documentation = metric.help or metric.name
        if metric.type == COUNTER:
            collector = Counter(metric.name, documentation, labels, registry=registry)
        elif metric.type == GAUGE:
            collector = Gauge(metric.name, documentation, labels, registry=registry)
        else:
            buckets = metric.buckets or (self.profile.latency_buckets if read.role == LATENCY else ())
            if not buckets:
                raise ProfileShapeError(f"profile {self.profile.name}: histogram {metric.name} declares no buckets")
            collector = Histogram(metric.name, documentation, labels, buckets=buckets, registry=registry)
        return metric, labels, collector

    # -- planning --------------------------------------------------------------

    def _request_plan(self, status: str) -> tuple[_Write, ...]:
        key = ("request", status)
        if key not in self._plans:
            members = {REQUESTS, LATENCY, *outcome_roles(status)}
            by_family: dict[str, list[Read]] = {}
            for read in self.reads.values():
                if read.role in (*REQUEST_ROLES, LATENCY):
                    by_family.setdefault(read.metric.name, []).append(read)
            writes = []
            for family, reads in sorted(by_family.items()):
                inside = [r for r in reads if r.role in members]
                if inside:
                    outside = [r for r in reads if r.role not in members]
                    writes.append(self._write(family, inside, outside, status, strict=status in STANDARD_STATUSES))
            self._plans[key] = tuple(writes)
        return self._plans[key]

    def _token_plan(self, role: str) -> tuple[_Write, ...]:
        key = ("tokens", role)
        if key not in self._plans:
            read = self.reads.get(role)
            if read is None:
                self._plans[key] = ()
            else:
                others = [r for r in self.reads.values() if r.metric.name == read.metric.name and r.role != role]
                self._plans[key] = (self._write(read.metric.name, [read], others, None, strict=True),)
        return self._plans[key]

    def _gauge_write(self) -> _Write:
        read = self.reads[INFLIGHT]
        return self._write(read.metric.name, [read], [], None, strict=True)

    def _write(self, family: str, inside: list[Read], outside: list[Read], status: str | None, *,
               strict: bool) -> _Write:
        """The write of one fact on one family. `strict`: it must stay out of every `outside` role."""
        metric, labels, _ = self._families[family]
        values, overlap = self._solve(labels, inside, outside, status)
        roles = ", ".join(r.role for r in inside)
        if values is None:
            raise ProfileShapeError(
                f"profile {self.profile.name}: no label values of {family} put a request with status "
                f"{status} into {roles}"
            )
        if strict and overlap:
            raise ProfileShapeError(
                f"profile {self.profile.name}: a request with status {status} cannot be written into {roles} of "
                f"{family} without also matching {', '.join(overlap)}"
            )
        model = self.profile.model_label
        model_index = labels.index(model) if model in labels else None
        return _Write(family, values, model_index, metric.type == HISTOGRAM)

    def _solve(
        self, labels: tuple[str, ...], inside: list[Read], outside: list[Read], status: str | None
    ) -> tuple[tuple[str, ...] | None, list[str]]:
        """Label values meeting every matcher of `inside` and as few `outside` roles as possible,
        with the outside roles they still meet."""
        free = [label for label in labels if label != self.profile.model_label]
        best, best_overlap = None, []
        for combo in itertools.product(*(self._options(label, status) for label in free)):
            value_of = dict(zip(free, combo))
            if not all(_holds(r.matchers, value_of) for r in inside):
                continue
            overlap = [r.role for r in outside if _holds(r.matchers, value_of)]
            if best is None or len(overlap) < len(best_overlap):
                best, best_overlap = value_of, overlap
                if not overlap:
                    break
        if best is None:
            return None, []
        return tuple(best.get(label, "") for label in labels), best_overlap

    def _options(self, label: str, status: str | None) -> list[str]:
        known = self._candidates.get(label, [])
        if label == self.profile.status_label and status is not None:
            known = [status, *known, *STANDARD_STATUSES]
        return list(dict.fromkeys([*known, ""])) if known else [""]

    # -- writing ---------------------------------------------------------------

    def _apply(self, write: _Write, model: str, *, observed: float, increment: float) -> None:
        child = self._child(write, model)
        if write.observe:
            child.observe(observed)
        else:
            child.inc(increment)

    def _child(self, write: _Write, model: str):
        collector = self._families[write.family][2]
        if not write.values:
            return collector  # a family without labels is its own only series
        values = list(write.values)
        if write.model_index is not None:
            values[write.model_index] = model
        return collector.labels(*values)


def _holds(matchers: tuple[Matcher, ...], value_of: dict[str, str]) -> bool:
    """Whether label values satisfy matchers; model and target labels are not decided here."""
    return all(m.matches(value_of[m.label]) for m in matchers if m.label in value_of)


def _candidate_values(profile: Profile) -> dict[str, list[str]]:
    """Label -> literal values the profile's matchers name, in role order."""
    found: dict[str, list[str]] = {}
    for selection in profile.roles.values():
        for matcher in selection.matchers:
            values = found.setdefault(matcher.label, [])
            for value in _examples(matcher):
                if value not in values:
                    values.append(value)
    return found


def _examples(matcher: Matcher) -> list[str]:
    """Values a matcher names: `=` its value; `=~` literal alternatives ("5.." gives 500)."""
    if matcher.op in ("=", "!="):
        return [matcher.value]
    out = []
    for alternative in _alternatives(matcher.value):
        for guess in (alternative.replace(".", "0"), re.sub(r"\\(.)", r"\1", alternative)):
            if Matcher(matcher.label, "=~", matcher.value).matches(guess) and guess not in out:
                out.append(guess)
    return out


def _alternatives(pattern: str) -> list[str]:
    """Top-level `|` alternatives of a regular expression."""
    parts, depth, current, escaped = [], 0, [], False
    for char in pattern:
        if escaped:
            current.append(char)
            escaped = False
            continue
        if char == "\\":
            escaped = True
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts
