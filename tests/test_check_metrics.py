"""`provision check-metrics URL` against endpoints that are right, wrong, or not there."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from handmade_profiles import OTEL_LIKE, SPLIT_COUNTERS, install
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from provision.cli import main
from provision.config import from_mapping
from provision.profiles.holysheep import PROFILE as HOLYSHEEP
from provision.simulate import simulator_from_config

FIXTURES = Path(__file__).parent / "fixtures" / "exporters"


class Endpoint(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # the timeout tests hang up on purpose; the answer then meets a closed socket

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.status, self.content_type, self.body, self.delay = 200, "text/plain; version=0.0.4", "", 0.0
        self.paths: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/metrics"

    def serve(self, body: str | bytes, content_type: str = "text/plain; version=0.0.4", status: int = 200):
        self.body, self.content_type, self.status = body, content_type, status


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        server: Endpoint = self.server
        server.paths.append(self.path)
        time.sleep(server.delay)
        body = server.body.encode() if isinstance(server.body, str) else server.body
        self.send_response(server.status)
        self.send_header("Content-Type", server.content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def endpoint():
    server = Endpoint()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def simulated(profile=HOLYSHEEP, seconds=300, openmetrics=False) -> bytes:
    config = from_mapping({"simulate": {"arrivals": "steady"}}, root=Path("."))
    simulator, registry = simulator_from_config(config, profile, start=0)
    simulator.advance(seconds)
    return generate_openmetrics(registry) if openmetrics else generate_latest(registry)


def run(*args, config: dict | None = None, tmp_path: Path | None = None):
    options = []
    if config is not None:
        path = tmp_path / "relaywatch.yaml"
        path.write_text(yaml.safe_dump(config))
        options = ["--config", str(path)]
    return CliRunner().invoke(main, ["check-metrics", *args, *options])


def test_a_complete_endpoint_passes(endpoint):
    endpoint.serve(simulated())
    result = run(endpoint.url)
    assert result.exit_code == 0, result.output
    for role in ("requests", "succeeded", "failed", "latency", "prompt_tokens", "completion_tokens", "inflight"):
        assert f"  ok       {role}" in result.output
    assert "models: claude-sonnet-4.5, deepseek-v3.2, gemini-2.5-flash, gpt-4.1" in result.output
    assert result.output.strip().endswith("0 problems: the dashboards have what they need")


def test_openmetrics_answers_are_read_too(endpoint):
    endpoint.serve(simulated(openmetrics=True), "application/openmetrics-text; version=1.0.0; charset=utf-8")
    assert run(endpoint.url).exit_code == 0


def test_path_defaults_to_metrics(endpoint):
    endpoint.serve(simulated())
    assert run(endpoint.url.removesuffix("/metrics")).exit_code == 0
    assert endpoint.paths == ["/metrics"]


def _without(text: bytes, family: str) -> str:
    return "\n".join(line for line in text.decode().splitlines() if family not in line) + "\n"


def test_missing_family_fails_with_exit_1(endpoint):
    endpoint.serve(_without(simulated(), "holysheep_tokens"))
    result = run(endpoint.url)
    assert result.exit_code == 1
    assert 'PROBLEM  prompt_tokens     holysheep_tokens_total{token_type="prompt"}: missing' in result.output
    assert "2 problems: the dashboards would be empty or wrong" in result.output


def test_a_suffix_near_miss_is_pointed_out(endpoint):
    body = simulated().decode().replace("holysheep_tokens_total", "holysheep_tokens")
    body = body.replace("# TYPE holysheep_tokens counter", "# TYPE holysheep_tokens gauge")
    endpoint.serve(body)
    result = run(endpoint.url)
    assert result.exit_code == 1
    assert "the endpoint has holysheep_tokens: another name or suffix?" in result.output


def test_wrong_type_fails(endpoint):
    registry = CollectorRegistry()
    from prometheus_client import Gauge

    Gauge("holysheep_requests_total", "wrong", ["model", "status_code"], registry=registry).labels(
        "gpt-4.1", "200").set(3)
    endpoint.serve(_without(simulated(), "holysheep_requests") + generate_latest(registry).decode())
    result = run(endpoint.url, "--output", "json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    wrong = [f for f in report["findings"] if f["check"] == "wrong_type"]
    assert wrong and wrong[0]["role"] == "requests" and "exposed as a gauge" in wrong[0]["message"]


def test_missing_labels_fail(endpoint):
    registry = CollectorRegistry()
    Counter("holysheep_requests", "no status", ["model"], registry=registry).labels("gpt-4.1").inc(5)
    endpoint.serve(_without(simulated(), "holysheep_requests") + generate_latest(registry).decode())
    result = run(endpoint.url, "--output", "json")
    findings = json.loads(result.output)["findings"]
    missing = [f for f in findings if f["check"] == "missing_labels"]
    assert result.exit_code == 1
    assert missing[0]["role"] == "requests" and "status_code" in missing[0]["message"]


def test_declared_families_without_samples_mean_empty_dashboards(endpoint):
    registry = CollectorRegistry()
    Counter("holysheep_requests", "h", ["model", "status_code"], registry=registry)
    Histogram("holysheep_request_latency_seconds", "h", ["model"], buckets=HOLYSHEEP.latency_buckets,
              registry=registry)
    endpoint.serve(generate_latest(registry))
    result = run(endpoint.url)
    assert result.exit_code == 1
    assert "no series match: the panels reading it stay empty until there is traffic" in result.output


def _latency_with_buckets(buckets) -> str:
    registry = CollectorRegistry()
    histogram = Histogram("holysheep_request_latency_seconds", "h", ["model"], buckets=buckets, registry=registry)
    histogram.labels("gpt-4.1").observe(0.3)
    return _without(simulated(), "holysheep_request_latency") + generate_latest(registry).decode()


def test_other_buckets_without_the_alert_threshold_fail(endpoint):
    endpoint.serve(_latency_with_buckets((0.1, 0.5, 1, 2.5, 10)))
    result = run(endpoint.url)
    assert result.exit_code == 1
    assert "buckets 0.1, 0.5, 1, 2.5, 10 differ from the profile's 0.1, 0.25, 0.5, 1, 2, 5, 10" in result.output
    assert "no bucket boundary at the latency alert threshold 5s" in result.output


def test_other_buckets_with_the_alert_threshold_warn(endpoint):
    endpoint.serve(_latency_with_buckets((0.5, 1, 5, 30)))
    result = run(endpoint.url)
    assert result.exit_code == 0
    assert "warning  latency" in result.output


def test_status_values_nobody_recognises_fail(endpoint):
    registry = CollectorRegistry()
    counter = Counter("holysheep_requests", "h", ["model", "status_code"], registry=registry)
    counter.labels("gpt-4.1", "OK").inc(10)
    counter.labels("gpt-4.1", "ERROR").inc(1)
    endpoint.serve(_without(simulated(), "holysheep_requests") + generate_latest(registry).decode())
    result = run(endpoint.url)
    assert result.exit_code == 1
    assert "no request matches any outcome; status_code values seen: 'ERROR', 'OK'" in result.output


def test_models_missing_from_the_price_table_are_noted(endpoint, tmp_path):
    endpoint.serve(simulated())
    result = run(endpoint.url, config={"pricing": {"gpt-4.1": {"input": 1, "output": 2}}}, tmp_path=tmp_path)
    assert result.exit_code == 0
    assert "note     models without a price in the price table (their spend is unknown): claude-sonnet-4.5, " \
           "deepseek-v3.2, gemini-2.5-flash" in result.output


def test_colons_escaped_by_openmetrics_are_explained(endpoint, tmp_path):
    """prometheus_client's OpenMetrics output renames vllm:* samples to vllm_* (client_python#1177)."""
    registry = CollectorRegistry()
    Counter("vllm:request_success", "finished", ["model_name", "engine", "finished_reason"],
            registry=registry).labels("m", "0", "stop").inc(3)
    endpoint.serve(generate_openmetrics(registry), "application/openmetrics-text; version=1.0.0; charset=utf-8")
    result = run(endpoint.url, config={"profile": "vllm"}, tmp_path=tmp_path)
    assert result.exit_code == 1
    assert "the endpoint serves it as vllm_request_success_total: its OpenMetrics output turns ':' into '_'" \
        in result.output


def test_another_gateways_endpoint_fails_for_the_default_profile(endpoint):
    endpoint.serve((FIXTURES / "litellm.prom").read_text())
    result = run(endpoint.url)
    assert result.exit_code == 1
    assert "exports nothing like it (another gateway? set `profile` in relaywatch.yaml)" in result.output


@pytest.mark.parametrize("profile", [OTEL_LIKE, SPLIT_COUNTERS], ids=lambda p: p.name)
def test_hand_made_profiles_pass_on_their_own_traffic(endpoint, tmp_path, monkeypatch, profile):
    install(monkeypatch, profile)
    endpoint.serve(simulated(profile))
    result = run(endpoint.url, "--output", "json", config={"profile": profile.name}, tmp_path=tmp_path)
    report = json.loads(result.output)
    assert result.exit_code == 0, result.output
    assert report["ok"] and report["profile"] == profile.name
    assert {f["role"] for f in report["findings"] if f["severity"] == "ok"} >= {"requests", "latency"}


def test_successes_without_the_error_label_are_not_a_missing_label(endpoint, tmp_path, monkeypatch):
    """OTel-shaped: error_type appears on failures only; all-success traffic is fine."""
    install(monkeypatch, OTEL_LIKE)
    from prometheus_client import CollectorRegistry as Registry

    from provision.recorder import Recorder

    registry = Registry()
    recorder = Recorder(OTEL_LIKE, registry)
    recorder.record("gpt-4.1", "200", 0.5, 10, 20)
    endpoint.serve(generate_latest(registry))
    result = run(endpoint.url, config={"profile": OTEL_LIKE.name}, tmp_path=tmp_path)
    assert result.exit_code == 0, result.output
    assert "note     failed" in result.output


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda e: e.serve("<html><body>Grafana</body></html>", "text/html"), "not a Prometheus exposition"),
        (lambda e: e.serve('{"status": "ok"}', "application/json"), "not a Prometheus exposition"),
        (lambda e: e.serve("this is not\na metrics page {{{\n", "text/plain"), "not a Prometheus exposition"),
        (lambda e: e.serve("oops", "text/plain", status=500), "HTTP 500 Internal Server Error"),
        (lambda e: e.serve("", "text/plain", status=404), "HTTP 404 Not Found"),
    ],
)
def test_unusable_answers_exit_2_in_one_line(endpoint, setup, message):
    setup(endpoint)
    result = run(endpoint.url)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {endpoint.url}: ") and message in lines[0]


def test_connection_refused_exits_2():
    port = _free_port()
    result = run(f"http://127.0.0.1:{port}/metrics")
    assert result.exit_code == 2
    assert result.output.strip() == \
        f"error: http://127.0.0.1:{port}/metrics: connection refused: nothing listens on that port"


def test_slow_endpoint_times_out_with_exit_2(endpoint):
    endpoint.serve(simulated())
    endpoint.delay = 2.0
    result = run(endpoint.url, "--timeout", "0.3")
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {endpoint.url}: no answer within 0.3s"


def test_unusable_endpoint_with_json_output_still_prints_json():
    port = _free_port()
    result = CliRunner().invoke(main, ["check-metrics", f"http://127.0.0.1:{port}", "--output", "json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["ok"] is False
    assert "connection refused" in json.loads(result.stdout)["error"]


@pytest.mark.parametrize("url", ["localhost:9464", "ftp://127.0.0.1/metrics", "not a url"])
def test_bad_urls_are_usage_errors(url):
    result = run(url)
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
