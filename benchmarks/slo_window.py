"""SLO period window: what the 30-day error ratio costs Prometheus, and how exact it is.

Backfills a month of synthetic traffic (raw request counters at a 15 s scrape, plus the
SLO's recorded 5m rates at the 30 s rule interval, computed exactly here) and evaluates
the 30-day error ratio three ways on a real Prometheus:

- derived: sum_over_time of the recorded 5m rates (what relaywatch records; docs/slo.md),
- raw:     rate() of the raw counters over 30 days (exact; the baseline),
- average: avg_over_time of recorded 5m ratios (averaging ratios: wrong weights),

with each one's value, its error against the exact ratio computed here, the samples
Prometheus touched (stats=all) and the median time of five queries.

Traffic follows a daily cycle (night at a quarter of the peak) with 1% failures, and a
two-hour incident at 30% failures in the night of day 12: the case where averaging
ratios goes wrong, because a quiet hour weighs as much as a busy one.

    .venv/bin/python -m benchmarks.slo_window [--quick] [--days 30] [--models 4]
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
from pathlib import Path

from benchmarks.common import count, ratio, run, seconds, table
from benchmarks.history import MAX_BLOCK, promtool_available
from benchmarks.prometheus import Prometheus

JOB = "llm-gateway"
# How answered and failed requests split over status codes (shares of all requests when healthy).
ANSWERED = {"200": 0.985, "400": 0.002, "429": 0.003}
FAILED = {"500": 0.006, "timeout": 0.003, "error": 0.001}
SCRAPE, RULE, WINDOW = 15, 30, 300  # seconds
START = 1_700_000_000 // 86400 * 86400  # midnight, so the night is where the cycle says
INCIDENT_DAY = 12


def traffic(t: float) -> tuple[float, float]:
    """(requests/s of one model, share failed) at t seconds after START."""
    day = t / 86400
    rate = 10 * (0.625 - 0.375 * math.cos(2 * math.pi * day))  # 2.5 req/s at midnight, 10 at noon
    incident = INCIDENT_DAY + 2 / 24 <= day < INCIDENT_DAY + 4 / 24
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
        recorded = [(t, *(a - b for a, b in zip(by_time[t], by_time[t - WINDOW])))
                    for t in range(WINDOW, days * 86400 + 1, RULE)]
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


def ways(period: str) -> dict[str, str]:
    failed = "|".join(FAILED)
    return {
        "derived (relaywatch)": f"sum_over_time(job:llm_slo_availability_errors:rate5m[{period}]) / "
                                f"sum_over_time(job:llm_slo_availability_requests:rate5m[{period}])",
        "raw counters": f'sum by (job) (rate(holysheep_requests_total{{status_code=~"{failed}"}}[{period}])) / '
                        f"sum by (job) (rate(holysheep_requests_total[{period}]))",
        "average of 5m ratios": f"avg_over_time(job:llm_slo_availability_errors:ratio_rate5m[{period}])",
    }


def run_benchmark(quick: bool = False, days: int | None = None, models: int = 4) -> dict:
    days = days or (14 if quick else 30)
    with tempfile.TemporaryDirectory(prefix="relaywatch-bench-slo-") as tmp:
        work = Path(tmp)
        data = work / "data"
        data.mkdir()
        exact = write_openmetrics(work / "input.om", days, models)
        run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", f"--max-block-duration={MAX_BLOCK}",
             str(work / "input.om"), str(data)], timeout=3600)
        (work / "input.om").unlink()
        at, period = START + days * 86400, f"{days}d"
        results = {}
        with Prometheus(work, data) as prom:
            for name, expr in ways(period).items():
                answers = [prom.query(expr, at=at) for _ in range(6)][1:]  # the first warms the page cache
                value = float(answers[0].result[0]["value"][1])
                results[name] = (value, answers[0].samples, statistics.median(a.seconds for a in answers))
    return {"days": days, "models": models, "exact": exact, "results": results}


def report(data: dict) -> str:
    exact, results = data["exact"], data["results"]
    raw = results["raw counters"]
    rows = [[name, f"{value:.6%}", f"{abs(value - exact) / exact:.4%}", count(samples), ratio(samples, raw[1]),
             seconds(time_), ratio(time_, raw[2])] for name, (value, samples, time_) in results.items()]
    return "\n".join([
        "### SLO period window",
        "",
        f"{data['days']} days of one job's traffic ({data['models']} models × 6 statuses, raw counters at a "
        f"{SCRAPE} s scrape, the SLO's recorded 5m rates at {RULE} s), with a night-time incident; the "
        f"{data['days']}-day error ratio three ways (exact: {exact:.6%}). Time: median of five queries.",
        "",
        table(["way", "value", "error vs exact", "samples", "samples ÷ raw", "time", "time ÷ raw"], rows,
              align="lrrrrrr"),
    ])


def headline(data: dict) -> list[str]:
    derived, raw = data["results"]["derived (relaywatch)"], data["results"]["raw counters"]
    return [
        f"The {data['days']}-day SLO error ratio derived from recorded 5m rates reads "
        f"{ratio(raw[1], derived[1])} fewer samples than rate() over the raw counters and takes "
        f"{ratio(derived[2], raw[2])} the time, within {abs(derived[0] - data['exact']) / data['exact']:.4%} "
        f"of the exact ratio.",
    ]


def interpret(data: dict) -> str:
    derived, raw = data["results"]["derived (relaywatch)"], data["results"]["raw counters"]
    average = data["results"]["average of 5m ratios"]
    return (
        f"**SLO window.** The period's ratio is read from two job-level recorded series instead of every "
        f"raw series: {ratio(raw[1], derived[1])} fewer samples here, and the gap widens with every model, "
        f"status and instance, since the recorded series stay two. Averaging the recorded 5m ratios would "
        f"be cheaper still but wrong by {abs(average[0] - data['exact']) / data['exact']:.1%}: it weighs a "
        f"quiet night's incident like a busy noon."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--days", type=int)
    parser.add_argument("--models", type=int, default=4)
    args = parser.parse_args()
    if not promtool_available():
        raise SystemExit("promtool and prometheus are needed (Debian: apt-get install -y prometheus)")
    print(report(run_benchmark(args.quick, args.days, args.models)))


if __name__ == "__main__":
    main()
