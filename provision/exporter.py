"""Serve a Simulator over HTTP and step it on wall time.

GET  /metrics            the profile's metrics, in the text format 0.0.4
GET  /scenario           {"scenario": current, "scenarios": {name: description}}
POST /scenario/<name>    switch scenario at run time
GET  /                   a short index

A scrape and a tick never interleave (one lock), so a scrape never sees a
request counted without its latency or tokens.

Always the text format, even when the scraper prefers OpenMetrics (Prometheus
2.x does): prometheus_client's OpenMetrics output turns ':' into '_' in sample
names but not in # TYPE lines (prometheus/client_python#1177), which would rename
vllm:* series; the text format keeps names as the profile declares them.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, generate_latest

from provision.simulate import SCENARIOS, TICK_SECONDS, Simulator


TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


class SimulatorServer:
    """HTTP exporter plus a ticker thread that advances the simulator to the wall clock."""

    def __init__(self, simulator: Simulator, registry: CollectorRegistry, *, host: str, port: int, clock=time.time):
        self.simulator = simulator
        self.registry = registry
        self.lock = threading.Lock()
        self._clock = clock
        self._stop = threading.Event()
        self._httpd = make_server(host, port, self._app, server_class=_Server, handler_class=_QuietHandler)
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        return self._httpd.server_port

    @property
    def address(self) -> str:
        """host:port, as a scrape target names it."""
        return f"{self._httpd.server_address[0]}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> "SimulatorServer":
        self._threads = [
            threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True,
                             name="simulate-http"),
            threading.Thread(target=self._tick_forever, daemon=True, name="simulate-clock"),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._threads:  # shutdown() waits for serve_forever, which only runs once started
            self._httpd.shutdown()
        self._httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def set_scenario(self, name: str) -> None:
        with self.lock:
            self.simulator.set_scenario(name)

    def cycle_scenario(self) -> str:
        """Switch to the next scenario in SCENARIOS order (SIGUSR1)."""
        names = list(SCENARIOS)
        with self.lock:
            following = names[(names.index(self.simulator.scenario) + 1) % len(names)]
            self.simulator.set_scenario(following)
        return following

    def _tick_forever(self) -> None:
        while not self._stop.is_set():
            with self.lock:
                self.simulator.advance(self._clock())
                due = self.simulator.now + TICK_SECONDS
            self._stop.wait(max(0.0, due - self._clock()))

    # -- HTTP ----------------------------------------------------------------

    def _app(self, environ, start_response):
        path, method = environ.get("PATH_INFO", "/"), environ.get("REQUEST_METHOD", "GET")
        if path == "/metrics":
            with self.lock:
                body = generate_latest(self.registry)
            return _respond(start_response, "200 OK", body, TEXT_FORMAT)
        if path == "/scenario" and method == "GET":
            return self._json(start_response, "200 OK", self._state())
        if path.startswith("/scenario/"):
            if method != "POST":
                return _respond(start_response, "405 Method Not Allowed", b"use POST\n", "text/plain", [("Allow", "POST")])
            name = path.removeprefix("/scenario/")
            if name not in SCENARIOS:
                return self._json(start_response, "404 Not Found",
                                  {"error": f"unknown scenario {name!r}", "scenarios": list(SCENARIOS)})
            self.set_scenario(name)
            return self._json(start_response, "200 OK", self._state())
        if path == "/":
            return _respond(start_response, "200 OK", self._index().encode(), "text/plain; charset=utf-8")
        return _respond(start_response, "404 Not Found", b"not found: try /metrics or /scenario\n", "text/plain")

    def _state(self) -> dict:
        return {"scenario": self.simulator.scenario,
                "scenarios": {name: description for name, (_, description) in SCENARIOS.items()}}

    def _json(self, start_response, status: str, data: dict):
        return _respond(start_response, status, (json.dumps(data, indent=2) + "\n").encode(), "application/json")

    def _index(self) -> str:
        lines = [f"relaywatch traffic simulator: scenario {self.simulator.scenario}", "",
                 "GET  /metrics", "GET  /scenario", "POST /scenario/<name>:"]
        lines += [f"  {name:<17} {description}" for name, (_, description) in SCENARIOS.items()]
        return "\n".join(lines) + "\n"


def _respond(start_response, status: str, body: bytes, content_type: str, headers=()):
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))), *headers])
    return [body]


def run_until_stopped(
    *,
    on_usr1: Callable[[], None] | None = None,
    on_hup: Callable[[], None] | None = None,
    alive: Callable[[], bool] = lambda: True,
) -> None:
    """Block until Ctrl-C, SIGTERM or `alive()` turning false; SIGUSR1 and SIGHUP call their handlers."""
    stopped = threading.Event()
    # Also SIGINT explicitly: a process started in the background inherits it ignored.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda *_: stopped.set())
    if on_usr1:
        signal.signal(signal.SIGUSR1, lambda *_: on_usr1())
    if on_hup:
        signal.signal(signal.SIGHUP, lambda *_: on_hup())
    try:
        while not stopped.wait(0.5) and alive():
            pass
    except KeyboardInterrupt:
        pass
