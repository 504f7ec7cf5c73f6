"""End-to-end harness: a real Prometheus (127.0.0.1, free port, temporary storage) with the
generated rules, scraping the traffic simulator after a backfilled history.

Test modules import the `start` fixture from here and set `pytestmark = pytest.mark.e2e`;
run them alone with `pytest -m e2e` (`make e2e`). Servers are stopped by the fixture's
finaliser, also when a test fails. (No conftest.py here: a second module named
conftest would shadow tests/conftest.py for `from conftest import ...`.)
"""

from __future__ import annotations

import json
import re
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from conftest import REPO, require_binary
from e2e_expected import PanelExpectations
from handmade_profiles import install

from provision import build as build_stage
from provision import profiles
from provision.build import BuildResult
from provision.config import Config, from_mapping
from provision.contract import INFLIGHT, LATENCY, Profile
from provision.simulate import KNOWN_MODELS, Expectation
from provision.stack import LocalStack

JOB = "llm-gateway-e2e"
SCRAPE_INTERVAL = 2  # seconds; the history's step too
RULE_INTERVAL = 1
UNPRICED_MODEL = "house-model"
SETTLE_TIMEOUT = 90  # a wait for a condition, never an assertion on time
RAW_WINDOW = 60  # what $__rate_interval stands for: well over 4 scrape intervals
RANGE = "1h"  # what $__range stands for: longer than the recorded history, so integrals see all of it


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def e2e_settings(tmp: Path, **extra) -> dict:
    """Steady traffic of the four priced models plus one the price table lacks."""
    models = {**KNOWN_MODELS, UNPRICED_MODEL: dict(rate=0.5, latency={"p50": 0.8, "p95": 1.6},
                                                   tokens={"prompt": 400, "completion": 150})}
    settings = {
        "selector": {"job": JOB},
        "scrape_interval": f"{SCRAPE_INTERVAL}s",
        "rules": {"interval": f"{RULE_INTERVAL}s"},
        "slo": {"long_window_interval": f"{RULE_INTERVAL}s"},  # the 1d/3d/30d groups too, for quick settling
        "paths": {"dashboards": str(REPO / "dashboards"), "alerts": str(REPO / "alerts"), "build": str(tmp / "build")},
        "simulate": {"arrivals": "steady", "models": models},
    }
    for key, value in extra.items():
        settings[key] = {**settings.get(key, {}), **value} if isinstance(value, dict) else value
    return settings


@dataclass
class Running:
    config: Config
    built: BuildResult
    stack: LocalStack
    started: float = field(default_factory=time.time)

    @property
    def prometheus(self):
        return self.stack.prometheus

    @property
    def expectation(self) -> Expectation:
        return self.stack.simulator.expectation()

    def query(self, expr: str) -> list[dict]:
        return self.prometheus.query(expr)

    def value(self, expr: str) -> float:
        result = self.query(expr)
        assert len(result) == 1, f"{expr}: expected one series, got {result}"
        return float(result[0]["value"][1])

    def by(self, expr: str, label: str) -> dict[str, float]:
        return {r["metric"].get(label, ""): float(r["value"][1]) for r in self.query(expr)}

    def stop(self) -> None:
        self.stack.stop()

    @property
    def buckets(self) -> tuple[float, ...]:
        profile = self.built.context.profile
        return profile.metric(profile.role(LATENCY).series).buckets or profile.latency_buckets

    def panels(self) -> PanelExpectations:
        """What the dashboards should show, in this profile's terms."""
        profile, recorder = self.built.context.profile, self.stack.simulator.recorder
        in_flight_by_model = profile.has(INFLIGHT) and \
            profile.model_label in profile.metric(profile.role(INFLIGHT).series).labels

        def status_value(status: str) -> str:
            value = recorder.status_label_value(status)
            if value is None:
                return status
            return value or profile.status_when_absent or ""

        return PanelExpectations(self.expectation, self.config.pricing, self.buckets, status_value=status_value,
                                 in_flight_by_model=in_flight_by_model,
                                 budget=self.config.data["cost"]["monthly_budget_usd"],
                                 slo_target=self.config.data["slo"]["availability"]["target"])


def panel_targets(running: Running):
    for uid, dashboard in running.built.dashboards.items():
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                yield uid, panel, target


def substitute(expr: str) -> str:
    """Grafana's variables as the dashboards' defaults give them: All models and jobs."""
    expr = expr.replace("$__rate_interval", f"{RAW_WINDOW}s").replace("$__range_s", "3600")
    expr = expr.replace("$__range", RANGE)
    return re.sub(r"\$\{?(job|model)\}?", ".*", expr)


def panel_problems(running: Running, window: float) -> tuple[list[str], int]:
    """Run every target of every dashboard; (what is missing or wrong, values checked).

    `window` is the recording rules' rate window; raw targets use RAW_WINDOW.
    """
    panels = running.panels()
    table = panels.specs()
    at = time.time() - 0.5  # one instant for every query, so integrals and their coverage agree
    spend = running.built.context.names.model_spend
    samples = running.prometheus.query(f'max(count_over_time({spend}{{job="{JOB}"}}[{RANGE}]))', at=at)
    panels.covered_seconds = float(samples[0]["value"][1]) * RULE_INTERVAL if samples else 0.0
    problems, checked = [], 0
    for uid, panel, target in panel_targets(running):
        where = f"{uid} / {panel['title']!r} / {target['refId']}"
        result = running.prometheus.query(substitute(target["expr"]), at=at)
        if not result:
            problems.append(f"{where}: no data for {target['expr']}")
            continue
        specs = table.get(panel["title"])
        if specs is None:
            if panel["type"] in ("stat", "bargauge"):
                problems.append(f"{where}: a number panel without an expected value in e2e_expected.py")
            continue
        spec = specs[ord(target["refId"]) - ord("A")]
        seen = []
        for series in result:
            key = {label: series["metric"].get(label, "") for label in spec.by}
            seen.append(key)
            span = RAW_WINDOW if "$__rate_interval" in target["expr"] else window
            problem = panels.problem(spec, key, float(series["value"][1]), span)
            if problem:
                problems.append(f"{where} {key or ''}: {problem}")
            checked += 1
        expected = {json.dumps(k, sort_keys=True) for k in (spec.keys if spec.keys is not None else [{}])}
        allowed = expected | {json.dumps(k, sort_keys=True) for k in spec.optional}
        got = [json.dumps(k, sort_keys=True) for k in seen]
        if not expected <= set(got) or not set(got) <= allowed or len(got) != len(set(got)):
            problems.append(f"{where}: series {sorted(got)}, expected {sorted(expected)} (may also be "
                            f"{sorted(allowed - expected)})")
    return problems, checked


def active_alerts(running: Running) -> set[tuple]:
    """(alertname, model, severity) of every pending or firing alert."""
    return {(a["labels"]["alertname"], a["labels"].get("model"), a["labels"].get("severity"))
            for a in running.prometheus.alerts() if a["state"] in ("pending", "firing")}


def wait_until(condition, what: str, timeout: float = SETTLE_TIMEOUT, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what} after {timeout:g}s")
        time.sleep(every)


def settle(running: Running, evaluations: int = 2) -> None:
    """Wait for a live scrape, then for every rule group to evaluate `evaluations` times after it."""
    prometheus = running.prometheus

    def scraped():
        targets = prometheus.api("targets")["activeTargets"]
        return [t for t in targets if t["health"] == "up"]

    target = wait_until(scraped, "the first scrape of the simulator")[0]
    wait_evaluated(prometheus, _timestamp(target["lastScrape"]) + evaluations * RULE_INTERVAL)


def wait_evaluated(prometheus, after: float) -> None:
    """Wait until every rule group has been evaluated after the time `after`."""

    def evaluated():
        groups = prometheus.rule_groups()
        return groups and all(_timestamp(g["lastEvaluation"]) > after for g in groups)

    wait_until(evaluated, "rule evaluations after the data arrived")


def _timestamp(rfc3339: str) -> float:
    text = rfc3339.replace("Z", "+00:00")
    if "." in text:  # Prometheus gives nanoseconds; fromisoformat takes at most microseconds
        head, tail = text.split(".", 1)
        digits = "".join(c for c in tail if c.isdigit())
        text = f"{head}.{digits[:6]}{tail[len(digits):]}"
    return datetime.fromisoformat(text).timestamp()


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    """start(scenario=..., profile=..., history_minutes=..., **settings) -> Running, settled."""
    prometheus, promtool = require_binary("prometheus"), require_binary("promtool")
    started: list[LocalStack] = []
    patch = pytest.MonkeyPatch()

    def run(scenario: str = "healthy", profile: Profile | None = None, history_minutes: float = 10,
            settle_first: bool = True, **extra) -> Running:
        tmp = tmp_path_factory.mktemp(scenario)
        settings = e2e_settings(tmp, **extra)
        if profile is not None:
            if profile.name not in profiles.BUILTIN:
                install(patch, profile)
            settings["profile"] = profile.name
        config = from_mapping(settings, root=tmp)
        built = build_stage.build(config)
        build_stage.write(built, tmp / "build")
        stack = LocalStack(config, built.context.profile, rules_dir=tmp / "build" / "rules", workdir=tmp / "stack",
                           listen=f"127.0.0.1:{free_port()}", simulator_port=0,
                           history_seconds=history_minutes * 60, scenario=scenario,
                           prometheus=prometheus, promtool=promtool)
        started.append(stack)
        stack.start()
        running = Running(config, built, stack)
        if settle_first:
            settle(running)
        return running

    yield run
    for stack in started:
        stack.stop()
    patch.undo()
