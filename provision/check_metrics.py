"""Check a live /metrics endpoint against the active profile: would the dashboards work?

For each role the profile maps, the endpoint's families are checked for the
things that make panels empty or wrong: the family is missing, has another type,
lacks a label the queries group or filter by, has no samples yet, or (for
histograms) other buckets than the profile assumes. An endpoint that cannot be
reached or is not a Prometheus exposition raises Unusable with one line.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit, urlunsplit

import requests
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from provision.contract import (
    ALL_ROLES,
    COMPLETION_TOKENS,
    FAILED,
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
)
from provision.promql import selector
from provision.recorder import TARGET_LABELS

# Ask as Prometheus 2.x asks (OpenMetrics first): the check must see the names Prometheus will store.
ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
          "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
# Roles whose panels are empty without samples; the others (failures) are rightly empty when all is well.
ESSENTIAL_ROLES = (REQUESTS, LATENCY, PROMPT_TOKENS, COMPLETION_TOKENS, INFLIGHT)
OUTCOME_ROLES_MAY_BE_EMPTY = (SUCCEEDED, FAILED, RATE_LIMITED, UNAUTHORIZED)
MAX_MODEL_VALUES = 50
OK, NOTE, WARNING, PROBLEM = "ok", "note", "warning", "problem"


class Unusable(Exception):
    """The endpoint cannot be reached or read; the message is one line."""


@dataclass
class Finding:
    role: str
    series: str
    severity: str  # ok | note | warning | problem
    check: str  # present | missing | wrong_type | missing_labels | no_samples | buckets | status_values | models
    message: str


@dataclass
class Report:
    url: str
    profile: str
    findings: list[Finding] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == PROBLEM]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict:
        return {"url": self.url, "profile": self.profile, "ok": self.ok, "problems": len(self.problems),
                "models": self.models, "unpriced_models": self.unpriced,
                "findings": [asdict(f) for f in self.findings]}


# -- fetching and parsing ----------------------------------------------------------


def metrics_url(url: str) -> str:
    """The URL to fetch: /metrics is added when the URL names no path."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        raise Unusable(f"{url}: not an http(s) URL such as http://127.0.0.1:9464/metrics")
    if parts.scheme not in ("http", "https"):
        raise Unusable(f"{url}: only http and https URLs can be checked")
    if parts.path in ("", "/"):
        parts = parts._replace(path="/metrics")
    return urlunsplit(parts)


def fetch(url: str, *, timeout: float) -> tuple[str, str]:
    """(body, content type) of a 200 answer, or Unusable."""
    try:
        response = requests.get(url, headers={"Accept": ACCEPT}, timeout=timeout)
    except requests.exceptions.ConnectTimeout:
        raise Unusable(f"{url}: connection timed out after {timeout:g}s (host down or port filtered?)") from None
    except requests.exceptions.ReadTimeout:
        raise Unusable(f"{url}: no answer within {timeout:g}s") from None
    except requests.exceptions.ConnectionError as exc:
        reason = "connection refused: nothing listens on that port" if "refused" in str(exc).lower() else \
            f"cannot connect: {_short(exc)}"
        raise Unusable(f"{url}: {reason}") from None
    except requests.exceptions.RequestException as exc:
        raise Unusable(f"{url}: {_short(exc)}") from None
    if response.status_code != 200:
        raise Unusable(f"{url}: HTTP {response.status_code} {response.reason or ''}".rstrip())
    return response.text, response.headers.get("Content-Type", "")


@dataclass
class Exposition:
    """Samples by name, and the type of the family each sample name belongs to."""

    samples: dict[str, list[dict[str, str]]]  # sample name -> label sets
    types: dict[str, str]  # sample name -> family type
    families: dict[str, str]  # family name (counters without _total) -> type
    empty: set[str]  # families declared (# TYPE) without any sample yet


def parse(body: str, content_type: str, url: str) -> Exposition:
    kind = content_type.split(";")[0].strip().lower()
    stripped = body.lstrip()
    if kind in ("text/html", "application/json") or stripped.startswith(("<", "{", "[")):
        raise Unusable(f"{url}: not a Prometheus exposition (Content-Type {kind or 'none'}); is this the metrics path?")
    parser = parse_openmetrics if kind == "application/openmetrics-text" else parse_text
    exposition = Exposition({}, {}, {}, set())
    try:
        for family in parser(body):
            exposition.families[family.name] = family.type
            if not family.samples:
                exposition.empty.add(family.name)
            for sample in family.samples:
                exposition.samples.setdefault(sample.name, []).append(dict(sample.labels))
                exposition.types[sample.name] = family.type
    except Exception as exc:  # the parsers raise ValueError, IndexError, ... on malformed input
        raise Unusable(f"{url}: not a Prometheus exposition: {_short(exc)}") from None
    if stripped and not exposition.samples and not exposition.families:
        raise Unusable(f"{url}: not a Prometheus exposition: no metric lines found")
    return exposition


# -- checking ------------------------------------------------------------------------


def check(exposition: Exposition, profile: Profile, *, url: str, pricing: dict, latency_threshold: float) -> Report:
    report = Report(url, profile.name)
    for role in ALL_ROLES:
        if role in profile.roles:
            report.findings += _check_role(exposition, profile, role, latency_threshold)
    report.findings += _status_findings(exposition, profile)
    report.models = _models(exposition, profile)
    report.unpriced = [m for m in report.models if m not in pricing]
    if report.unpriced:
        report.findings.append(Finding("", "", NOTE, "models",
                                       f"models without a price in the price table (their spend is unknown): "
                                       f"{', '.join(report.unpriced)}"))
    if len(report.models) > MAX_MODEL_VALUES:
        report.findings.append(Finding(REQUESTS, profile.role(REQUESTS).series, WARNING, "models",
                                       f"{profile.model_label} has {len(report.models)} values: fold unknown models "
                                       "into a bounded set, or every panel and rule grows with them"))
    return report


def _check_role(exposition: Exposition, profile: Profile, role: str, latency_threshold: float) -> list[Finding]:
    selection = profile.role(role)
    metric = profile.metric(selection.series)
    shown = selector(selection.series, selection.matchers)
    probe = selection.series + ("_bucket" if metric and metric.type == HISTOGRAM and selection.series == metric.name
                                else "")
    found = exposition.samples.get(probe)
    declared = metric.name.removesuffix("_total") if metric else None
    renamed = found is None and probe.replace(":", "_") in exposition.samples
    if found is None and (renamed or declared not in exposition.empty):
        return [Finding(role, shown, PROBLEM, "missing", f"missing{_near_miss(exposition, probe)}")]
    found = found or []  # declared, no samples yet: how prometheus_client shows an unused labelled family
    findings = []
    exposed = exposition.types.get(probe) or exposition.families.get(declared, "unknown")
    if metric is not None:
        findings += _type_findings(role, shown, metric, exposed)
    missing = [label for label in _required_labels(profile, role, metric) if not any(s.get(label) for s in found)]
    if missing:
        findings.append(Finding(role, shown, PROBLEM, "missing_labels",
                                f"no series carries label {', '.join(missing)}, which the queries group or filter by"))
    matching = [s for s in found if all(m.matches(s.get(m.label, "")) for m in _own_matchers(selection.matchers))]
    if not matching:
        severity = PROBLEM if role in ESSENTIAL_ROLES else NOTE
        why = "the panels reading it stay empty until there is traffic" if severity == PROBLEM else \
            "none seen yet, which is fine while nothing of the kind happens"
        findings.append(Finding(role, shown, severity, "no_samples", f"no series match: {why}"))
    if metric is not None and metric.type == HISTOGRAM and probe.endswith("_bucket"):
        findings += _bucket_findings(profile, role, shown, metric, found, latency_threshold)
    if not any(f.severity in (PROBLEM, WARNING) for f in findings):
        series = {tuple(sorted((k, v) for k, v in s.items() if k != "le")) for s in matching}
        findings.insert(0, Finding(role, shown, OK, "present", f"{exposed}, {len(series)} series"))
    return findings


def _type_findings(role: str, shown: str, metric: Metric, exposed: str) -> list[Finding]:
    if exposed == metric.type:
        return []
    if exposed in ("unknown", "untyped"):
        return [Finding(role, shown, WARNING, "wrong_type",
                        f"exposed without a # TYPE line; the profile expects a {metric.type}")]
    return [Finding(role, shown, PROBLEM, "wrong_type", f"exposed as a {exposed}; the profile expects a {metric.type}")]


def _required_labels(profile: Profile, role: str, metric: Metric | None) -> list[str]:
    """Labels the queries cannot do without: the model label, and what the role's matchers need present."""
    declared = metric.labels if metric else ()
    required = [profile.model_label] if profile.model_label in declared else []
    if role not in OUTCOME_ROLES_MAY_BE_EMPTY:
        for matcher in _own_matchers(profile.role(role).matchers):
            if not matcher.matches("") and matcher.label not in required:
                required.append(matcher.label)
    if role == REQUESTS and profile.status_label in declared and SUCCEEDED in profile.roles:
        success = profile.role(SUCCEEDED).matchers
        if any(m.label == profile.status_label and not m.matches("") for m in success):
            required.append(profile.status_label)
    return required


def _bucket_findings(profile: Profile, role: str, shown: str, metric: Metric, found: list[dict],
                     latency_threshold: float) -> list[Finding]:
    expected = tuple(metric.buckets or (profile.latency_buckets if role == LATENCY else ()))
    exposed = sorted({float(s["le"]) for s in found if "le" in s and s["le"] not in ("+Inf", "Inf")})
    if not expected or _same_buckets(exposed, expected):
        return []
    findings = [Finding(role, shown, WARNING, "buckets",
                        f"buckets {_numbers(exposed)} differ from the profile's {_numbers(expected)}")]
    if role == LATENCY and exposed and latency_threshold <= exposed[-1] and not any(
            abs(b - latency_threshold) < 1e-9 for b in exposed):
        findings.append(Finding(role, shown, PROBLEM, "buckets",
                                f"no bucket boundary at the latency alert threshold {latency_threshold:g}s: P95 "
                                "around it is interpolated, so the alert and the panels' thresholds are guesses"))
    return findings


def _status_findings(exposition: Exposition, profile: Profile) -> list[Finding]:
    """Request statuses that no outcome role recognises, e.g. OK/ERROR instead of HTTP codes."""
    if REQUESTS not in profile.roles or not profile.status_label:
        return []
    requests_role = profile.role(REQUESTS)
    values = sorted({s.get(profile.status_label, "") for s in exposition.samples.get(requests_role.series, [])})
    outcomes = [profile.role(r) for r in OUTCOME_ROLES_MAY_BE_EMPTY if r in profile.roles
                and profile.role(r).series == requests_role.series]
    if not values or not outcomes:
        return []
    unknown = [v for v in values if not any(all(m.matches(v) for m in o.matchers if m.label == profile.status_label)
                                            for o in outcomes)]
    if SUCCEEDED in profile.roles and unknown == values:
        return [Finding(SUCCEEDED, selector(requests_role.series, ()), PROBLEM, "status_values",
                        f"no request matches any outcome; {profile.status_label} values seen: "
                        f"{', '.join(repr(v) for v in values)} (success and error ratios would read 0)")]
    if unknown:
        return [Finding(REQUESTS, selector(requests_role.series, ()), NOTE, "status_values",
                        f"counted as requests but as no outcome (neither success nor failure): "
                        f"{profile.status_label}={', '.join(unknown)}")]
    return []


def _models(exposition: Exposition, profile: Profile) -> list[str]:
    names = set()
    for role in (REQUESTS, LATENCY):
        if role in profile.roles:
            selection = profile.role(role)
            suffix = "_count" if role == LATENCY else ""
            for labels in exposition.samples.get(selection.series + suffix, []):
                if labels.get(profile.model_label):
                    names.add(labels[profile.model_label])
    return sorted(names)


def _own_matchers(matchers: tuple[Matcher, ...]) -> tuple[Matcher, ...]:
    """Matchers an exporter can satisfy; job and instance come from the scrape."""
    return tuple(m for m in matchers if m.label not in TARGET_LABELS)


def _near_miss(exposition: Exposition, name: str) -> str:
    escaped = name.replace(":", "_")
    if escaped != name and escaped in exposition.samples:
        return (f"; the endpoint serves it as {escaped}: its OpenMetrics output turns ':' into '_' "
                "(prometheus_client with escaping=underscores, client_python#1177), so Prometheus stores that "
                "name; for vLLM set profile_options.vllm.metric_prefix: vllm_ (or rename with "
                "metric_relabel_configs)")
    base = name.removesuffix("_bucket").removesuffix("_total")
    candidates = [n for n in sorted(exposition.samples) if n != name and (
        n in (base, base + "_total", base + "_bucket") or n.endswith("_" + base) or base.endswith("_" + n))]
    if candidates:
        return f"; the endpoint has {', '.join(candidates[:3])}: another name or suffix?"
    return "; the endpoint exports nothing like it (another gateway? set `profile` in relaywatch.yaml)"


def _same_buckets(exposed: list[float], expected: tuple[float, ...]) -> bool:
    return len(exposed) == len(expected) and all(abs(a - b) <= 1e-9 * max(1, abs(b))
                                                   for a, b in zip(exposed, sorted(expected)))


def _numbers(values) -> str:
    return ", ".join(f"{v:g}" for v in values)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]

