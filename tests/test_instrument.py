"""Instrumented chat-completions calls against a local OpenAI-compatible server."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import prometheus_client
import pytest
import requests
from handmade_profiles import OTEL_LIKE
from prometheus_client import CollectorRegistry

from provision.instrument import ChatCompletions, GatewayMetrics, StreamError, server_sent_events, status_of

MESSAGES = [{"role": "user", "content": "hello"}]
USAGE = {"prompt_tokens": 12, "completion_tokens": 34, "total_tokens": 46}


class FakeAPI(ThreadingHTTPServer):
    """Answers /v1/chat/completions as `self.answer` says; keeps the bodies it received."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # the timeout tests hang up on purpose; the answer then meets a closed socket

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answer = ("json", 200, {"choices": [{"message": {"content": "hi"}}], "usage": USAGE})
        self.bodies: list[dict] = []
        self.in_flight_seen: list[float | None] = []
        self.registry: CollectorRegistry | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/v1"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):  # noqa: N802 - http.server's naming
        server: FakeAPI = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server.bodies.append(body)
        if server.registry is not None:
            server.in_flight_seen.append(
                server.registry.get_sample_value("holysheep_active_requests", {"model": "gpt-4.1"}))
        kind, status, payload = server.answer
        if kind == "sleep":
            time.sleep(payload)
            kind, payload = "json", {"usage": USAGE}
        if kind == "json":
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif kind == "html":
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload.encode())
        else:  # an event stream of these chunks
            self.send_response(status)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for chunk in payload:
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.close_connection = True


@pytest.fixture
def api():
    server = FakeAPI()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def registry():
    return CollectorRegistry()


@pytest.fixture
def client(api, registry):
    metrics = GatewayMetrics(registry=registry)
    api.registry = registry
    return ChatCompletions(api.base_url, "sk-test", metrics=metrics, timeout=(2, 2))


def sample(registry, name, **labels):
    return registry.get_sample_value(name, labels)


def requests_with(registry, model="gpt-4.1", status="200"):
    return sample(registry, "holysheep_requests_total", model=model, status_code=status)


def test_answer_records_request_latency_tokens_and_in_flight(client, api, registry):
    answer = client.create("gpt-4.1", MESSAGES, temperature=0.2)
    assert answer["usage"] == USAGE
    assert requests_with(registry) == 1
    assert sample(registry, "holysheep_request_latency_seconds_count", model="gpt-4.1") == 1
    assert sample(registry, "holysheep_tokens_total", model="gpt-4.1", token_type="prompt") == 12
    assert sample(registry, "holysheep_tokens_total", model="gpt-4.1", token_type="completion") == 34
    assert api.in_flight_seen == [1.0]  # while the server was answering
    assert sample(registry, "holysheep_active_requests", model="gpt-4.1") == 0


def test_timeout_is_the_http_timeout_never_a_body_field(client, api):
    client.create("gpt-4.1", MESSAGES, timeout=5, max_tokens=10)
    assert api.bodies == [{"model": "gpt-4.1", "messages": MESSAGES, "max_tokens": 10}]


@pytest.mark.parametrize("status", [500, 503, 429, 401, 400])
def test_error_answers_are_recorded_with_their_code_and_raised(client, api, registry, status):
    api.answer = ("json", status, {"error": {"message": "nope"}})
    with pytest.raises(requests.HTTPError) as caught:
        client.create("gpt-4.1", MESSAGES)
    assert caught.value.response.status_code == status
    assert requests_with(registry, status=str(status)) == 1
    assert sample(registry, "holysheep_tokens_total", model="gpt-4.1", token_type="prompt") is None
    assert sample(registry, "holysheep_active_requests", model="gpt-4.1") == 0


def test_timeout_is_recorded_as_timeout_with_its_latency(client, api, registry):
    api.answer = ("sleep", 200, 1.5)
    with pytest.raises(requests.Timeout):
        client.create("gpt-4.1", MESSAGES, timeout=(2, 0.3))
    assert requests_with(registry, status="timeout") == 1
    assert sample(registry, "holysheep_request_latency_seconds_sum", model="gpt-4.1") >= 0.3


def test_unreachable_api_is_recorded_as_error(registry):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = ChatCompletions(f"http://127.0.0.1:{port}/v1", "sk", metrics=GatewayMetrics(registry=registry))
    with pytest.raises(requests.ConnectionError):
        client.create("gpt-4.1", MESSAGES)
    assert requests_with(registry, status="error") == 1


def test_answer_that_is_not_json_is_an_error(client, api, registry):
    api.answer = ("html", 200, "<html>maintenance</html>")
    with pytest.raises(ValueError):
        client.create("gpt-4.1", MESSAGES)
    assert requests_with(registry, status="error") == 1
    assert requests_with(registry, status="200") is None


def test_unknown_models_are_folded_into_other(client, registry):
    for model in ("gpt-4.1", "gpt-4.1-2025-04-14", "my-finetune", "GPT-4.1"):
        client.create(model, MESSAGES)
    assert requests_with(registry) == 1
    assert requests_with(registry, model="other") == 3


def test_models_can_be_given(api, registry):
    metrics = GatewayMetrics(models=["house-model"], registry=registry)
    ChatCompletions(api.base_url, "sk", metrics=metrics).create("house-model", MESSAGES)
    ChatCompletions(api.base_url, "sk", metrics=metrics).create("gpt-4.1", MESSAGES)
    assert requests_with(registry, model="house-model") == 1
    assert requests_with(registry, model="other") == 1


STREAM = [
    {"choices": [{"delta": {"content": "Hel"}}], "usage": None},
    {"choices": [{"delta": {"content": "lo"}}], "usage": None},
    {"choices": [], "usage": USAGE},
]


def test_stream_asks_for_usage_and_records_the_final_chunks_tokens(client, api, registry):
    api.answer = ("stream", 200, STREAM)
    chunks = list(client.stream("gpt-4.1", MESSAGES, max_tokens=5))
    assert chunks == STREAM
    assert api.bodies[0]["stream"] is True
    assert api.bodies[0]["stream_options"] == {"include_usage": True}
    assert "timeout" not in api.bodies[0]
    assert requests_with(registry) == 1
    assert sample(registry, "holysheep_tokens_total", model="gpt-4.1", token_type="completion") == 34


def test_stream_without_usage_records_the_request_but_no_tokens(client, api, registry):
    api.answer = ("stream", 200, STREAM[:2])
    assert len(list(client.stream("gpt-4.1", MESSAGES, include_usage=False))) == 2
    assert "stream_options" not in api.bodies[0]
    assert requests_with(registry) == 1
    assert sample(registry, "holysheep_tokens_total", model="gpt-4.1", token_type="completion") is None


def test_stream_sends_nothing_until_read_and_a_reader_that_stops_records_the_call(client, api, registry):
    api.answer = ("stream", 200, STREAM)
    chunks = client.stream("gpt-4.1", MESSAGES)
    assert api.bodies == []
    next(chunks)
    chunks.close()
    assert requests_with(registry) == 1
    assert sample(registry, "holysheep_active_requests", model="gpt-4.1") == 0


def test_error_inside_a_stream_is_recorded_and_raised(client, api, registry):
    api.answer = ("stream", 200, [STREAM[0], {"error": {"message": "upstream overloaded"}}])
    with pytest.raises(StreamError, match="upstream overloaded"):
        list(client.stream("gpt-4.1", MESSAGES))
    assert requests_with(registry, status="error") == 1


def test_stream_refused_with_429_is_recorded(client, api, registry):
    api.answer = ("json", 429, {"error": {"message": "slow down"}})
    with pytest.raises(requests.HTTPError):
        list(client.stream("gpt-4.1", MESSAGES))
    assert requests_with(registry, status="429") == 1


def test_track_wraps_any_client_and_reraises(registry):
    metrics = GatewayMetrics(registry=registry)

    class RateLimitError(Exception):
        status_code = 429

    with metrics.track("deepseek-v3.2") as call:
        call.usage({"prompt_tokens": 3, "completion_tokens": 4})
    with pytest.raises(RateLimitError):
        with metrics.track("deepseek-v3.2"):
            raise RateLimitError()
    assert requests_with(registry, model="deepseek-v3.2") == 1
    assert requests_with(registry, model="deepseek-v3.2", status="429") == 1


@pytest.mark.parametrize(
    "exc, status",
    [(requests.ReadTimeout(), "timeout"), (TimeoutError(), "timeout"), (type("APITimeoutError", (Exception,), {})(),
                                                                          "timeout"),
     (requests.ConnectionError(), "error"), (KeyError("x"), "error"),
     (type("APIStatusError", (Exception,), {"status_code": 502})(), "502")],
)
def test_status_of_exceptions(exc, status):
    assert status_of(exc) == status


def test_constructing_starts_no_server_and_shares_collectors_per_registry(monkeypatch, registry):
    def refuse(*args, **kwargs):
        raise AssertionError("an HTTP server was started")

    monkeypatch.setattr(prometheus_client, "start_http_server", refuse)
    monkeypatch.setattr(prometheus_client, "start_wsgi_server", refuse)
    first, second = GatewayMetrics(registry=registry), GatewayMetrics(registry=registry)
    assert first.recorder is second.recorder
    other = CollectorRegistry()
    assert GatewayMetrics(registry=other).recorder is not first.recorder


def test_another_profile_records_on_its_own_series(registry):
    metrics = GatewayMetrics(OTEL_LIKE, registry=registry)
    with metrics.track("gpt-4.1"):
        pass
    assert sample(registry, "acme_genai_operation_duration_seconds_count", operation="chat",
                  request_model="gpt-4.1", error_type="") == 1


def test_from_config_takes_profile_and_price_table(tmp_path, registry):
    config = tmp_path / "relaywatch.yaml"
    config.write_text("pricing:\n  house-model: {input: 1, output: 2}\n")
    metrics = GatewayMetrics.from_config(str(config), registry=registry)
    assert metrics.model_label("house-model") == "house-model"
    assert metrics.model_label("gpt-4.1") == "other"


def test_server_sent_events_parsing():
    lines = [": keep-alive", "", "data: {\"a\": 1}", "", "event: x", "data: {\"b\":", "data: 2}", "", "data: [DONE]",
             "", "data: {\"after\": 1}", ""]
    assert list(server_sent_events(lines)) == [{"a": 1}, {"b": 2}]
