"""Synthetic gateway history for the query-cost benchmark, backfilled into a Prometheus TSDB.

The series are the default profile's (the source document's SDK): request counter by model
and status, latency histogram by model, token counter by model and token type, in-flight
gauge by model; every instance of the gateway exports all of them, with `job` and
`instance` as a scrape would attach them.

Traffic follows a daily cycle (quiet at midnight UTC, a quarter of the noon peak) with a
long tail of models (the busiest ~13 req/s per instance at noon, the quietest under one).
Counters are closed-form (the integral of the rate), so any scrape time has an exact
value and writing a series is one multiplication per sample.

Resolution: the newest `fine_hours` at the scrape interval (15 s), the days before at a
coarser one (2 m by default). A week at 15 s for 1000 model-instance pairs would be 770
million samples, several GB of OpenMetrics and most of an hour of promtool; the coarse
part keeps every rate window of the rules and panels (5 m and up) filled with at least two
samples, and it understates the cost of reading raw series, never overstates it.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from benchmarks.common import BenchmarkError, count, run
from provision.profiles import holysheep
from provision.promql_ast import metric_names

DAY = 86400
PERIOD = DAY / (2 * math.pi)
# Shares of all requests by status (failures: 500, timeout, error = 1.5%).
STATUSES = {"200": 0.975, "401": 0.002, "429": 0.008, "500": 0.009, "timeout": 0.004, "error": 0.002}
ANSWERED = 1 - STATUSES["timeout"] - STATUSES["error"]  # requests the latency histogram observes
# Cumulative share of observed requests within each bucket of holysheep's histogram.
LATENCY_CDF = {"0.1": 0.04, "0.25": 0.17, "0.5": 0.42, "1.0": 0.68, "2.0": 0.87, "5.0": 0.97, "10.0": 0.994,
               "+Inf": 1.0}
MEAN_LATENCY = 1.1  # seconds
TOKENS = {"prompt": 620, "completion": 240}  # per successful request
PRICED = ("gpt-4.1", "claude-sonnet-4.5", "gemini-2.5-flash", "deepseek-v3.2")  # the source's price table
MAX_BLOCK = "1458h"  # promtool's largest block range: one pass over the file per 60 days
JOB = "llm-gateway"
MODELS_PER_FILE = 5  # about 2 GB of OpenMetrics per file at full size


@dataclass(frozen=True)
class Shape:
    """How much history, of how many series."""

    models: int = 50
    instances: int = 20
    fine_hours: int = 24
    coarse_days: int = 6
    scrape: int = 15
    coarse_scrape: int = 120

    @property
    def seconds(self) -> int:
        return self.fine_hours * 3600 + self.coarse_days * DAY

    def series(self) -> int:
        per_pair = len(STATUSES) + len(LATENCY_CDF) + 2 + len(TOKENS) + 1
        return self.models * self.instances * per_pair

    def samples(self) -> int:
        return self.series() * len(self.timestamps(0))

    def timestamps(self, end: int) -> list[int]:
        fine_start = end - self.fine_hours * 3600
        coarse = range(fine_start - self.coarse_days * DAY, fine_start, self.coarse_scrape)
        return [*coarse, *range(fine_start, end + 1, self.scrape)]

    def describe(self) -> str:
        coarse = f" and the {self.coarse_days} days before at {self.coarse_scrape // 60} m" if self.coarse_days else ""
        return (f"{self.models} models × {self.instances} instances ({count(self.series())} raw series), the last "
                f"{self.fine_hours} h at a {self.scrape} s scrape{coarse}: {count(self.samples())} samples")


def model_names(n: int) -> list[str]:
    """The source's four priced models, then unpriced ones (the cost dashboard shows both)."""
    return [*PRICED[:n], *(f"model-{i + 1:02d}" for i in range(len(PRICED), n))]


def peak_rate(model_index: int) -> float:
    """Requests per second of one instance at noon: a long tail over the models."""
    return 13.0 / (1 + model_index) ** 0.8


def cumulative(t: float, start: float) -> float:
    """Requests since `start` of a 1 req/s-at-noon instance (the integral of the daily cycle)."""
    def integral(x: float) -> float:
        return 0.625 * x - 0.375 * PERIOD * math.sin(x / PERIOD)

    return integral(t) - integral(start)


def load(t: float) -> float:
    """The daily cycle at t: 0.25 at midnight UTC, 1 at noon."""
    return 0.625 - 0.375 * math.cos(t / PERIOD)


def write_openmetrics(path: Path, shape: Shape, end: int, models: range) -> None:
    """The series of `models` (indexes) over the history ending at `end`, grouped by metric name."""
    stamps = shape.timestamps(end)
    start = stamps[0] - shape.scrape
    counts = [cumulative(t, start) for t in stamps]
    loads = [load(t) for t in stamps]
    texts = [str(t) for t in stamps]
    names = model_names(shape.models)
    instances = [f"gw-{i + 1:02d}:8000" for i in range(shape.instances)]

    def pairs() -> Iterator[tuple[str, float, str]]:
        for m in models:
            for i, instance in enumerate(instances):
                rate = peak_rate(m) * (1 + 0.01 * i)  # instances differ a little
                yield f'job="{JOB}",instance="{instance}",model="{names[m]}"', rate, names[m]

    def counter(out, name: str, labels: str, factor: float) -> None:
        out.write("".join(f"{name}{{{labels}}} {int(factor * c)} {t}\n" for c, t in zip(counts, texts)))

    with path.open("w", encoding="utf-8") as out:
        name = holysheep.REQUESTS_TOTAL
        out.write(f"# TYPE {name} unknown\n")
        for labels, rate, _ in pairs():
            for status, share in STATUSES.items():
                counter(out, name, f'{labels},status_code="{status}"', rate * share)
        base = holysheep.LATENCY_SECONDS
        out.write(f"# TYPE {base}_bucket unknown\n")
        for labels, rate, _ in pairs():
            for le, share in LATENCY_CDF.items():
                counter(out, f"{base}_bucket", f'{labels},le="{le}"', rate * ANSWERED * share)
        out.write(f"# TYPE {base}_count unknown\n")
        for labels, rate, _ in pairs():
            counter(out, f"{base}_count", labels, rate * ANSWERED)
        out.write(f"# TYPE {base}_sum unknown\n")
        for labels, rate, _ in pairs():
            factor = rate * ANSWERED * MEAN_LATENCY
            out.write("".join(f"{base}_sum{{{labels}}} {factor * c:.3f} {t}\n" for c, t in zip(counts, texts)))
        name = holysheep.TOKENS_TOTAL
        out.write(f"# TYPE {name} unknown\n")
        for labels, rate, _ in pairs():
            for token_type, per_request in TOKENS.items():
                counter(out, name, f'{labels},token_type="{token_type}"', rate * STATUSES["200"] * per_request)
        name = holysheep.ACTIVE_REQUESTS
        out.write(f"# TYPE {name} unknown\n")
        for labels, rate, _ in pairs():
            factor = rate * MEAN_LATENCY
            out.write("".join(f"{name}{{{labels}}} {round(factor * x)} {t}\n" for x, t in zip(loads, texts)))
        out.write("# EOF\n")


def backfill_raw(shape: Shape, end: int, data_dir: Path, work: Path) -> None:
    """Write the history as OpenMetrics, a few models per file, and turn each file into a TSDB
    block while the next one is written (promtool maps its whole input: smaller files keep
    memory and disk in bounds). Prometheus merges the blocks, which overlap in time."""
    pending: tuple[subprocess.Popen, Path] | None = None
    try:
        for first in range(0, shape.models, MODELS_PER_FILE):
            source = work / f"history-{first:03d}.om"
            write_openmetrics(source, shape, end, range(first, min(first + MODELS_PER_FILE, shape.models)))
            _finish(pending)
            pending = None
            command = ["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet",
                       f"--max-block-duration={MAX_BLOCK}", str(source), str(data_dir)]
            pending = (subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), source)
        _finish(pending)
    finally:
        for leftover in work.glob("history-*.om"):
            leftover.unlink()


def _finish(pending: tuple[subprocess.Popen, Path] | None) -> None:
    if pending is None:
        return
    process, source = pending
    output, _ = process.communicate()
    source.unlink(missing_ok=True)
    if process.returncode != 0:
        last = (output.strip().splitlines() or ["no output"])[-1]
        raise BenchmarkError(f"promtool tsdb create-blocks-from openmetrics {source.name}: {last}")


# -- recorded series ------------------------------------------------------------------


def recording_levels(rule_files: list[Path]) -> list[list[dict]]:
    """The recording rules of `rule_files` split by dependency: level 0 reads raw series only,
    level n reads series recorded at levels below n. Each level is a list of rule groups
    (name, interval, its rules of that level), ready for a rule file."""
    groups = [g for path in rule_files for g in yaml.safe_load(path.read_text())["groups"]]
    recording = [(g, r) for g in groups for r in g["rules"] if "record" in r]
    recorded = {r["record"] for _, r in recording}
    level: dict[str, int] = {}
    while len(level) < len(recorded):
        progressed = False
        for _, rule in recording:
            needs = metric_names(rule["expr"]) & recorded - {rule["record"]}
            if all(n in level for n in needs):
                new = max((level[n] + 1 for n in needs), default=0)
                if level.get(rule["record"], -1) < new:
                    level[rule["record"]] = new
                    progressed = True
        if not progressed and len(level) < len(recorded):
            raise BenchmarkError(f"recording rules depend on each other in a cycle: {sorted(recorded - set(level))}")
    levels: list[list[dict]] = []
    for n in range(max(level.values(), default=-1) + 1):
        chosen = []
        for group in groups:
            rules = [r for r in group["rules"] if "record" in r and level[r["record"]] == n]
            if rules:
                chosen.append({"name": group["name"], "interval": group.get("interval", "1m"), "rules": rules})
        levels.append(chosen)
    return levels


def backfill_rules(groups: list[dict], *, start: int, end: int, url: str, data_dir: Path, work: Path) -> None:
    """`promtool tsdb create-blocks-from rules` for one level, the blocks moved into `data_dir`."""
    rule_file = work / "backfill-rules.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    out = work / "backfill-blocks"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    run(["promtool", "tsdb", "create-blocks-from", "rules", "--quiet", f"--start={start}", f"--end={end}",
         f"--url={url}", f"--output-dir={out}", str(rule_file)], timeout=7200)
    for block in out.iterdir():
        if block.is_dir():
            shutil.move(str(block), str(data_dir / block.name))


def promtool_available() -> bool:
    return all(shutil.which(b) for b in ("promtool", "prometheus"))
