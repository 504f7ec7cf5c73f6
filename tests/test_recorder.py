"""The recorder writes a finished request onto the series the profile's roles read."""

from __future__ import annotations

import dataclasses

import pytest
from handmade_profiles import DURATION, OTEL_LIKE, SPLIT_COUNTERS, TOKEN_USAGE
from prometheus_client import CollectorRegistry

from provision.contract import (
    COUNTER,
    FAILED,
    GAUGE,
    INFLIGHT,
    LATENCY,
    PROMPT_TOKENS,
    REQUESTS,
    Matcher,
    Metric,
    Selection,
)
from provision.profiles.holysheep import PROFILE as HOLYSHEEP
from provision.recorder import ProfileShapeError, Recorder, outcome_roles


def value(registry: CollectorRegistry, name: str, **labels) -> float | None:
    return registry.get_sample_value(name, labels)


def role_count(registry: CollectorRegistry, profile, role: str, model: str) -> float:
    """What a PromQL sum over the role's selection would give for one model."""
    selection = profile.role(role)
    total = 0.0
    for family in registry.collect():
        for sample in family.samples:
            if sample.name != selection.series or sample.labels.get(profile.model_label) != model:
                continue
            if all(m.matches(sample.labels.get(m.label, "")) for m in selection.matchers):
                total += sample.value
    return total


@pytest.mark.parametrize(
    "status, roles",
    [("200", {"succeeded"}), ("201", {"succeeded"}), ("500", {"failed"}), ("503", {"failed"}),
     ("timeout", {"failed"}), ("error", {"failed"}), ("429", {"rate_limited"}), ("401", {"unauthorized"}),
     ("404", set()), ("400", set())],
)
def test_outcome_roles_follow_the_contract(status, roles):
    assert outcome_roles(status) == frozenset(roles)


def test_default_profile_gets_the_source_documents_series():
    registry = CollectorRegistry()
    recorder = Recorder(HOLYSHEEP, registry)
    recorder.record("gpt-4.1", "200", 0.7, prompt_tokens=120, completion_tokens=30)
    recorder.record("gpt-4.1", "timeout", 30.0)
    recorder.add_in_flight("gpt-4.1", 1)
    assert value(registry, "holysheep_requests_total", model="gpt-4.1", status_code="200") == 1
    assert value(registry, "holysheep_requests_total", model="gpt-4.1", status_code="timeout") == 1
    assert value(registry, "holysheep_request_latency_seconds_bucket", model="gpt-4.1", le="1.0") == 1
    assert value(registry, "holysheep_request_latency_seconds_bucket", model="gpt-4.1", le="+Inf") == 2
    assert value(registry, "holysheep_request_latency_seconds_sum", model="gpt-4.1") == pytest.approx(30.7)
    assert value(registry, "holysheep_tokens_total", model="gpt-4.1", token_type="prompt") == 120
    assert value(registry, "holysheep_tokens_total", model="gpt-4.1", token_type="completion") == 30
    assert value(registry, "holysheep_active_requests", model="gpt-4.1") == 1


@pytest.mark.parametrize("profile", [HOLYSHEEP, OTEL_LIKE, SPLIT_COUNTERS], ids=lambda p: p.name)
def test_each_status_lands_in_its_roles_only(profile):
    registry = CollectorRegistry()
    recorder = Recorder(profile, registry)
    mix = {"200": 7, "500": 3, "timeout": 2, "error": 1, "429": 4, "401": 5}
    for status, times in mix.items():
        for _ in range(times):
            recorder.record("m", status, 0.3, 10 if status == "200" else None, 5 if status == "200" else None)
    expected = {"requests": 22, "succeeded": 7, "failed": 6, "rate_limited": 4, "unauthorized": 5}
    for role, count in expected.items():
        assert role_count(registry, profile, role, "m") == count, role
    assert role_count(registry, profile, PROMPT_TOKENS, "m") == 70


def test_other_statuses_count_as_requests_and_as_the_profile_sees_them():
    registry = CollectorRegistry()
    recorder = Recorder(HOLYSHEEP, registry)
    recorder.record("m", "404", 0.2)
    assert role_count(registry, HOLYSHEEP, "requests", "m") == 1
    assert sum(role_count(registry, HOLYSHEEP, r, "m") for r in ("succeeded", "failed", "rate_limited")) == 0
    # The OTel-like profile calls every error_type but two a failure, so a 404 is one there.
    registry = CollectorRegistry()
    Recorder(OTEL_LIKE, registry).record("m", "404", 0.2)
    assert role_count(registry, OTEL_LIKE, "failed", "m") == 1


def test_histogram_shaped_profile_counts_requests_with_the_latency_observation():
    registry = CollectorRegistry()
    recorder = Recorder(OTEL_LIKE, registry)
    recorder.record("gpt-4.1", "200", 0.3, 100, 20)
    recorder.record("gpt-4.1", "429", 0.05)
    ok = dict(operation="chat", request_model="gpt-4.1", error_type="")
    assert value(registry, f"{DURATION}_count", **ok) == 1
    assert value(registry, f"{DURATION}_count", **{**ok, "error_type": "RateLimitError"}) == 1
    assert value(registry, f"{TOKEN_USAGE}_sum", operation="chat", request_model="gpt-4.1", token_kind="input") == 100
    assert value(registry, f"{TOKEN_USAGE}_count", operation="chat", request_model="gpt-4.1", token_kind="output") == 1
    assert not recorder.tracks_in_flight


def test_split_counters_write_failures_on_their_own_counter_and_in_flight_without_model():
    registry = CollectorRegistry()
    recorder = Recorder(SPLIT_COUNTERS, registry)
    recorder.record("claude", "503", 1.0)
    recorder.add_in_flight("claude", 2)
    assert value(registry, "acme_proxy_calls_total", llm="claude", code="503", team="") == 1
    assert value(registry, "acme_proxy_failures_total", llm="claude", exception_status="500", team="") == 1
    assert value(registry, "acme_proxy_in_flight") == 2


def test_token_counts_of_none_write_nothing():
    registry = CollectorRegistry()
    Recorder(HOLYSHEEP, registry).record("gpt-4.1", "500", 1.0)
    assert value(registry, "holysheep_tokens_total", model="gpt-4.1", token_type="prompt") is None


def _with_role(profile, role, selection, *metrics):
    return dataclasses.replace(profile, roles={**profile.roles, role: selection},
                               metrics=(*profile.metrics, *metrics))


@pytest.mark.parametrize(
    "profile, message",
    [
        (_with_role(HOLYSHEEP, REQUESTS, Selection("nowhere_total")),
         "profile holysheep: role requests reads nowhere_total, which is not among the profile's metrics"),
        (_with_role(HOLYSHEEP, REQUESTS, Selection("holysheep_active_requests")),
         "role requests reads holysheep_active_requests (a gauge); relaywatch can only write a counter or a "
         "histogram's _count for it"),
        (_with_role(HOLYSHEEP, INFLIGHT, Selection("holysheep_requests_total")),
         "role inflight reads holysheep_requests_total (a counter); relaywatch can only write a gauge for it"),
        (_with_role(HOLYSHEEP, REQUESTS, Selection("calls"), Metric("calls", COUNTER, ("model",))),
         "counter calls has no _total suffix"),
        (_with_role(HOLYSHEEP, FAILED, Selection("holysheep_requests_total", (Matcher("region", "=", "eu"),))),
         "role failed matches label region, which holysheep_requests_total does not declare"),
        (_with_role(HOLYSHEEP, PROMPT_TOKENS, Selection("holysheep_request_latency_seconds_sum")),
         "holysheep_request_latency_seconds is read as latency and as tokens; one family cannot carry both"),
        (_with_role(HOLYSHEEP, LATENCY, Selection("x_seconds"), Metric("x_seconds", GAUGE, ("model",))),
         "role latency reads x_seconds (a gauge); relaywatch can only write a histogram for it"),
        (_with_role(HOLYSHEEP, FAILED, Selection("holysheep_requests_total", (Matcher("status_code", "=", "200"),))),
         "a request with status 500 cannot be written into requests, failed of holysheep_requests_total without "
         "also matching succeeded"),
    ],
)
def test_shapes_it_cannot_write_are_refused_in_one_line(profile, message):
    with pytest.raises(ProfileShapeError) as caught:
        Recorder(profile, CollectorRegistry())
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_matchers_on_target_labels_are_left_to_the_scrape():
    selection = Selection("holysheep_requests_total", (Matcher("job", "=", "gateway"),))
    profile = _with_role(HOLYSHEEP, REQUESTS, selection)
    registry = CollectorRegistry()
    Recorder(profile, registry).record("gpt-4.1", "200", 0.1)
    assert value(registry, "holysheep_requests_total", model="gpt-4.1", status_code="200") == 1
