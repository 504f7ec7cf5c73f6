"""A Prometheus server on 127.0.0.1 for the query-cost benchmark, and the API calls it makes.

The server gets a temporary config and storage directory, an out-of-order window (the
rules evaluated live write their results inside the backfilled history) and the lifecycle
API (config reloads). Queries ask for `stats=all` and are timed from the request to the
last byte of the answer, so the cost of encoding and sending a big result is counted:
a Grafana refresh waits for it too.
"""

from __future__ import annotations

import json
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

from benchmarks.common import BenchmarkError
from provision.prometheus_server import PrometheusError, PrometheusServer

READY_TIMEOUT = 120
QUERY_TIMEOUT = 600
OUT_OF_ORDER_WINDOW = "1d"


@dataclass(frozen=True)
class Answer:
    seconds: float  # request to last byte
    samples: int  # stats.samples.totalQueryableSamples
    series: int  # series in the result
    points: int  # points in the result
    result: list  # the result itself (a vector or matrix)


class Prometheus:
    """`with Prometheus(work) as prom: prom.query_range(...)`; `rule_files` are loaded when given."""

    def __init__(self, work: Path, data_dir: Path, rule_files: list[Path] = ()):
        self.work, self.data_dir = work, data_dir
        self.config = work / "prometheus.yml"
        # retention: the backfilled history (up to the SLO benchmark's 30 days) must outlive it
        self.server = PrometheusServer(config_file=self.config, data_dir=data_dir, listen=f"127.0.0.1:{_free_port()}",
                                       log_file=work / "prometheus.log", retention="100y")
        self.url = self.server.url
        self.session = requests.Session()
        self.write_config(rule_files)

    def write_config(self, rule_files: list[Path] = ()) -> None:
        config = {"global": {"evaluation_interval": "30s"},
                  "storage": {"tsdb": {"out_of_order_time_window": OUT_OF_ORDER_WINDOW}}}
        if rule_files:
            config["rule_files"] = [str(p) for p in rule_files]
        self.config.write_text(yaml.safe_dump(config))

    def __enter__(self) -> Prometheus:
        try:
            self.server.start(timeout=READY_TIMEOUT)
        except PrometheusError as exc:
            raise BenchmarkError(str(exc)) from None
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()

    # -- API ---------------------------------------------------------------------------

    def get(self, path: str, **params) -> dict:
        response = self.session.get(f"{self.url}{path}", params=params, timeout=QUERY_TIMEOUT)
        body = response.json()
        if body.get("status") != "success":
            raise BenchmarkError(f"{path} {params.get('query', '')}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, *, at: float | None = None, start: float | None = None, end: float | None = None,
              step: float | None = None) -> Answer:
        """An instant query (`at`) or a range query (`start`, `end`, `step`), with its cost."""
        if at is not None:
            path, params = "/api/v1/query", {"query": expr, "time": f"{at:.3f}", "stats": "all"}
        else:
            path, params = "/api/v1/query_range", {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}",
                                                   "step": f"{step:g}", "stats": "all"}
        started = time.perf_counter()
        response = self.session.get(f"{self.url}{path}", params=params, timeout=QUERY_TIMEOUT)
        content = response.content
        elapsed = time.perf_counter() - started
        body = json.loads(content)
        if body.get("status") != "success":
            raise BenchmarkError(f"query {expr!r}: {body.get('errorType')}: {body.get('error')}")
        data = body["data"]
        result = data["result"] if data["resultType"] in ("vector", "matrix") else [data["result"]]
        points = sum(len(s["values"]) if isinstance(s, dict) and "values" in s else 1 for s in result)
        samples = data["stats"]["samples"]["totalQueryableSamples"]
        return Answer(elapsed, samples, len(result), points, result)

    def reload(self) -> None:
        response = self.session.post(f"{self.url}/-/reload", timeout=60)
        if response.status_code != 200:
            raise BenchmarkError(f"prometheus refused to reload its config: {response.text.strip()}")

    def metrics(self) -> dict[str, float]:
        """Prometheus's own metrics, unlabelled ones only."""
        text = self.session.get(f"{self.url}/metrics", timeout=30).text
        found = {}
        for line in text.splitlines():
            match = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*) ([0-9.eE+-]+|NaN)$", line)
            if match:
                found[match.group(1)] = float(match.group(2))
        return found

    def wait_for_compaction(self, quiet: float = 15, timeout: float = 3600) -> None:
        """Until the TSDB has merged the backfilled blocks: a compaction has run (the first
        comes a minute after start) and nothing has changed for `quiet` seconds since."""
        deadline = time.monotonic() + timeout
        last, since = None, time.monotonic()
        while time.monotonic() < deadline:
            m = self.metrics()
            state = (m.get("prometheus_tsdb_compactions_total"), m.get("prometheus_tsdb_blocks_loaded"),
                     m.get("prometheus_tsdb_compaction_populating_block"))
            ran = m.get("prometheus_tsdb_compactions_triggered_total", 0) >= 1
            if state != last:
                last, since = state, time.monotonic()
            elif ran and not state[2] and time.monotonic() - since >= quiet:
                return
            time.sleep(2)
        raise BenchmarkError(f"prometheus still compacting after {timeout:.0f}s")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
