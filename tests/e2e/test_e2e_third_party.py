"""A third-party style exporter, not relaywatch's simulator: hand-written exposition text
whose counters grow linearly with time, served by two instances of one job.

It differs from prometheus_client's output the way other exporters do: label order,
extra labels (region, pod), `le="1"` instead of `le="1.0"`, exponent notation, no HELP
lines, `_created` samples. Its rates are known exactly, so the recorded series and the
overview's stat panels must match them closely.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from click.testing import CliRunner
from conftest import require_binary
from e2e_harness import JOB, e2e_settings, free_port, substitute, wait_evaluated, wait_until

from provision.cli import main
from provision.prometheus_server import PrometheusServer

pytestmark = pytest.mark.e2e
STARTED = time.time() - 3600  # the exporters have been up for an hour
BUCKETS = ("0.1", "0.25", "0.5", "1", "2", "5", "10", "+Inf")
# Per instance: requests/s by model and status; cumulative share of each latency bucket; mean latency;
# prompt and completion tokens/s.
TRAFFIC = {
    "gpt-4.1": {"statuses": {"200": 1.9, "500": 0.06, "429": 0.04}, "mean": 1.6,
                "cumulative": (0, 0.05, 0.2, 0.5, 0.8, 0.97, 0.99, 1), "tokens": (1500.0, 400.0)},
    "deepseek-v3.2": {"statuses": {"200": 0.97, "timeout": 0.03}, "mean": 2.1,
                      "cumulative": (0, 0.02, 0.1, 0.4, 0.75, 0.9, 0.96, 1), "tokens": (700.0, 250.0)},
}


def exposition(now: float, pod: str) -> str:
    age = now - STARTED
    lines = ["# TYPE holysheep_requests_total counter"]
    for model, spec in TRAFFIC.items():
        for status, rate in spec["statuses"].items():
            lines.append(f'holysheep_requests_total{{status_code="{status}",region="eu-west-1",pod="{pod}",'
                         f'model="{model}"}} {rate * age:.6e}')
    lines.append("# TYPE holysheep_requests_created gauge")
    lines += [f'holysheep_requests_created{{status_code="200",region="eu-west-1",pod="{pod}",model="{m}"}} '
              f"{STARTED:.3f}" for m in TRAFFIC]
    lines.append("# TYPE holysheep_request_latency_seconds histogram")
    for model, spec in TRAFFIC.items():
        count = sum(spec["statuses"].values()) * age
        for le, share in zip(BUCKETS, spec["cumulative"]):
            lines.append(f'holysheep_request_latency_seconds_bucket{{pod="{pod}",model="{model}",le="{le}"}} '
                         f"{share * count:.6e}")
        lines.append(f'holysheep_request_latency_seconds_count{{pod="{pod}",model="{model}"}} {count:.6e}')
        lines.append(f'holysheep_request_latency_seconds_sum{{pod="{pod}",model="{model}"}} '
                     f"{spec['mean'] * count:.6e}")
    lines.append("# TYPE holysheep_tokens_total counter")
    for model, spec in TRAFFIC.items():
        for token_type, rate in zip(("prompt", "completion"), spec["tokens"]):
            lines.append(f'holysheep_tokens_total{{token_type="{token_type}",model="{model}",pod="{pod}"}} '
                         f"{rate * age:.6e}")
    lines.append("# TYPE holysheep_active_requests gauge")
    lines += [f'holysheep_active_requests{{model="{m}",pod="{pod}"}} 3' for m in TRAFFIC]
    return "\n".join(lines) + "\n"


class ThirdPartyExporter(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, pod: str):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.pod = pod

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server_port}"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        body = exposition(time.time(), self.server.pod).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def rate(statuses=None, models=TRAFFIC) -> float:
    """Requests/s over both instances."""
    return 2 * sum(r for m in models for s, r in TRAFFIC[m]["statuses"].items() if statuses is None or s in statuses)


def quantile(q: float) -> float:
    """histogram_quantile's own interpolation over both models' buckets: exact for linear counters."""
    bounds = [float(b) for b in BUCKETS[:-1]]
    totals = [sum(TRAFFIC[m]["cumulative"][i] * rate(None, [m]) for m in TRAFFIC) for i in range(len(BUCKETS))]
    rank = q * totals[-1]
    i = next(i for i, total in enumerate(totals) if total >= rank)
    lower, below = (bounds[i - 1], totals[i - 1]) if i else (0.0, 0.0)
    return lower + (bounds[i] - lower) * (rank - below) / (totals[i] - below)


@pytest.fixture(scope="module")
def scraped(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("third-party")
    prometheus_binary = require_binary("prometheus")
    require_binary("promtool")
    exporters = [ThirdPartyExporter(pod) for pod in ("gw-a", "gw-b")]
    for exporter in exporters:
        threading.Thread(target=exporter.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    settings = e2e_settings(tmp_path, scrape_interval="1s", rules={"interval": "1s", "window": "10s"})
    config = tmp_path / "relaywatch.yaml"
    config.write_text(yaml.safe_dump(settings))
    prometheus = None
    try:
        built = CliRunner().invoke(main, ["build", "--config", str(config)])
        assert built.exit_code == 0, built.output
        scrape = CliRunner().invoke(main, ["scrape-config", "--config", str(config),
                                           "--rules-dir", str(tmp_path / "build" / "rules"),
                                           *(arg for e in exporters for arg in ("--target", e.target))])
        (tmp_path / "prometheus.yml").write_text(scrape.stdout)
        prometheus = PrometheusServer(config_file=tmp_path / "prometheus.yml", data_dir=tmp_path / "data",
                                      listen=f"127.0.0.1:{free_port()}", binary=prometheus_binary).start()
        yield prometheus, exporters, config, tmp_path / "build"
    finally:
        if prometheus is not None:
            prometheus.stop()
        for exporter in exporters:
            exporter.shutdown()
            exporter.server_close()


def test_check_metrics_accepts_the_exporter(scraped):
    _, exporters, config, _ = scraped
    result = CliRunner().invoke(main, ["check-metrics", f"http://{exporters[0].target}/metrics",
                                       "--config", str(config)])
    assert result.exit_code == 0, result.output


def test_recorded_series_and_stat_panels_match_the_exporters_rates(scraped):
    prometheus, _, _, build = scraped

    def value(expr):
        result = prometheus.query(expr)
        return float(result[0]["value"][1]) if len(result) == 1 else None

    # a full window of scrapes of both instances, then two evaluations
    wait_until(lambda: (value(f'count(count_over_time(up{{job="{JOB}"}}[10s]) >= 10)') or 0) == 2,
               "10 s of scrapes of both exporters", every=1)
    wait_evaluated(prometheus, time.time() + 1)

    overview = json.loads((build / "dashboards" / "llm-gateway-overview.json").read_text())
    stats = {p["title"]: substitute(p["targets"][0]["expr"]) for p in overview["panels"] if p["type"] == "stat"}
    tokens = 2 * sum(sum(spec["tokens"]) for spec in TRAFFIC.values())
    spend = 2 * (1500 * 8 + 400 * 32 + 700 * 0.42 + 250 * 1.68) * 3600 / 1e6
    expected = {
        "Requests/s": rate(),
        "Success ratio": rate({"200"}) / rate(),
        "Error ratio": rate({"500", "timeout"}) / rate(),
        "Rate limited": rate({"429"}) / rate(),
        "Tokens/s": tokens,
        "Spend": spend,
        "In flight": 12,
        "P95 latency": quantile(0.95),
    }
    assert set(expected) <= set(stats)
    for title, want in expected.items():
        assert value(stats[title]) == pytest.approx(want, rel=0.01), title
