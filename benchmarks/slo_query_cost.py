"""What the SLO period window costs Prometheus, and how exact it is.

Backfills a month of synthetic gateway traffic (raw request counters at the scrape
interval, plus the SLO's recorded 5m rates at the rule interval) into a fresh TSDB,
starts a real Prometheus on 127.0.0.1, and evaluates the 30-day error ratio three ways:

- derived: sum_over_time of the recorded 5m rates (what relaywatch records),
- raw:     rate() of the raw counters over 30 days (exact, what a naive rule does),
- average: avg_over_time of recorded 5m ratios (averaging ratios: wrong weights),

reporting each one's value, its error against the exact ratio computed here, the
samples Prometheus touched (stats=all) and the median wall time of five queries.

Traffic follows a daily cycle (night at a quarter of the peak) with 1% failures, and a
two-hour incident at 30% failures in the night of day 12: the case where averaging
ratios goes wrong, because a quiet hour weighs as much as a busy one.

Usage: .venv/bin/python benchmarks/slo_query_cost.py [--days 30] [--models 4]
Needs promtool and prometheus on PATH; works in .bench/slo-cost (ignored by git). A month
takes about 25 minutes on two cores, nearly all of it promtool writing 2-hour blocks.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import socket
import statistics
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

JOB = "llm-gateway"
# How answered and failed requests split over status codes (shares of all requests when healthy).
ANSWERED = {"200": 0.985, "400": 0.002, "429": 0.003}
FAILED = {"500": 0.006, "timeout": 0.003, "error": 0.001}
SCRAPE, RULE, WINDOW = 15, 30, 300  # seconds
START = 1_700_000_000 // 86400 * 86400  # midnight, so the night is where the cycle says


def traffic(t: float) -> tuple[float, float]:
    """(requests/s of one model, share failed) at t seconds after START."""
    day = t / 86400
    rate = 10 * (0.625 - 0.375 * math.cos(2 * math.pi * day))  # 2.5 req/s at midnight, 10 at noon
    incident = 12 + 2 / 24 <= day < 12 + 4 / 24
    return rate, 0.30 if incident else sum(FAILED.values())


def cumulative(days: int, step: int):
    """Per step: (t, total requests, failed requests) of one model, integrated exactly per second."""
    total = failed = 0.0
    for t in range(0, days * 86400 + 1, step):
        yield t, total, failed
        for second in range(t, t + step):
            rate, bad = traffic(second)
            total, failed = total + rate, failed + rate * bad


def write_openmetrics(path: Path, days: int, models: int) -> float:
    """Raw counters and recorded 5m rates; returns the exact failed share of the whole range."""
    raw = list(cumulative(days, SCRAPE))
    by_time = {t: (n, f) for t, n, f in raw}
    with path.open("w") as out:
        out.write("# TYPE holysheep_requests counter\n")
        for m in range(models):
            for status, share in (*ANSWERED.items(), *FAILED.items()):
                labels = f'job="{JOB}",instance="gw-1:8000",model="model-{m}",status_code="{status}"'
                failed = status in FAILED
                part = share / sum((FAILED if failed else ANSWERED).values())
                for t, n, f in raw:
                    out.write(f"holysheep_requests_total{{{labels}}} {(f if failed else n - f) * part:.6f} {START + t}\n")
        recorded = [(t, *(a - b for a, b in zip(by_time[t], by_time[t - WINDOW]))) for t in range(WINDOW, days * 86400 + 1, RULE)]
        for name, index in (("errors", 2), ("requests", 1)):
            metric = f"job:llm_slo_availability_{name}:rate5m"
            out.write(f"# TYPE {metric} gauge\n")
            for row in recorded:
                out.write(f'{metric}{{job="{JOB}"}} {models * row[index] / WINDOW:.9f} {START + row[0]}\n')
        metric = "job:llm_slo_availability_errors:ratio_rate5m"
        out.write(f"# TYPE {metric} gauge\n")
        for t, n, f in recorded:
            out.write(f'{metric}{{job="{JOB}"}} {f / n:.9f} {START + t}\n')
        out.write("# EOF\n")
    _, total, failed = raw[-1]
    return failed / total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def query(port: int, expr: str, at: int) -> tuple[float, int, float]:
    params = urllib.parse.urlencode({"query": expr, "time": at, "stats": "all"})
    started = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query?{params}", timeout=120) as response:
        body = json.load(response)
    elapsed = time.perf_counter() - started
    value = float(body["data"]["result"][0]["value"][1])
    return value, body["data"]["stats"]["samples"]["totalQueryableSamples"], elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--models", type=int, default=4)
    args = parser.parse_args()
    work = Path(".bench/slo-cost")
    shutil.rmtree(work, ignore_errors=True)
    (work / "data").mkdir(parents=True)
    exact = write_openmetrics(work / "input.om", args.days, args.models)
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(work / "input.om"),
                    str(work / "data")], check=True, capture_output=True)
    (work / "input.om").unlink()
    port = free_port()
    config = work / "prometheus.yml"
    config.write_text("global: {}\n")
    server = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={work / 'data'}",
                               f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=3650d"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        at, period = START + args.days * 86400, f"{args.days}d"
        failed = "|".join(FAILED)
        ways = {
            "derived": f"sum_over_time(job:llm_slo_availability_errors:rate5m[{period}]) / "
                       f"sum_over_time(job:llm_slo_availability_requests:rate5m[{period}])",
            "raw": f'sum by (job) (rate(holysheep_requests_total{{status_code=~"{failed}"}}[{period}])) / '
                   f"sum by (job) (rate(holysheep_requests_total[{period}]))",
            "average": f"avg_over_time(job:llm_slo_availability_errors:ratio_rate5m[{period}])",
        }
        print(f"{args.days} days, {args.models} models x {len(ANSWERED) + len(FAILED)} statuses, "
              f"scrape {SCRAPE}s, rules {RULE}s;"
              f" exact failed share {exact:.6%}")
        print(f"{'way':8} {'value':>10} {'error':>10} {'samples':>10} {'median ms':>10}")
        for name, expr in ways.items():
            runs = [query(port, expr, at) for _ in range(5)]
            value, samples = runs[0][0], runs[0][1]
            print(f"{name:8} {value:10.6%} {abs(value - exact) / exact:10.4%} {samples:10d} "
                  f"{statistics.median(r[2] for r in runs) * 1000:10.1f}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
