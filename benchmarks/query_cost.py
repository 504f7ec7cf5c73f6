"""Query-cost benchmark: what the generated dashboards and rules cost a real Prometheus.

1. Build the repository's project (default profile and config).
2. Backfill a week of synthetic gateway history (benchmarks/history.py) with
   `promtool tsdb create-blocks-from openmetrics`, then the series the generated recording
   rules record, level by level (a rule reading recorded series needs them backfilled
   first) with `promtool tsdb create-blocks-from rules`. Prometheus cannot evaluate rules
   in the past, and a dashboard over the last week reads a week of recorded series, so
   they are backfilled, at the groups' own intervals, exactly as the rules define them.
3. Start Prometheus 2.42 on 127.0.0.1, let it merge the backfilled blocks, then refresh
   every generated dashboard, and the source document's dashboard (benchmarks/
   seed_dashboard.json, its four panels verbatim), over the last 24 h and 7 d: samples
   touched (`stats=all`, totalQueryableSamples) and time of one refresh, each the median
   of several refreshes.
4. Load the generated rule files and let Prometheus evaluate them over the backfilled
   data: each group's evaluation time per cycle from the rules API, and the samples each
   rule reads (its expression as an instant query with stats).

The history ends a little after the benchmark's own end (`--margin`), so that when the
rules are evaluated at the wall clock every window they read is full of backfilled
samples; their results go into Prometheus through its out-of-order window.

    .venv/bin/python -m benchmarks.query_cost [--quick] [--keep DIR]
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from benchmarks import history
from benchmarks.common import REPO, VENV_BIN, BenchmarkError, count, ratio, run, seconds, table
from benchmarks.grafana_refresh import PanelQuery, refresh
from benchmarks.history import Shape
from benchmarks.project import default_project
from benchmarks.prometheus import Prometheus
from provision.config import load_config
from provision.contract import MODEL
from provision.definitions import make_context

SEED = Path(__file__).with_name("seed_dashboard.json")
RANGES = {"24 h": 86400, "7 d": 7 * 86400}
ALL = {"job": ".*", "model": ".*"}
ONE_MODEL = "gpt-4.1"


@dataclass
class Refresh:
    """One dashboard refreshed over one range: per query and in total."""

    name: str
    range_name: str
    queries: list[PanelQuery]
    samples: list[int] = field(default_factory=list)
    series: list[int] = field(default_factory=list)
    times: list[list[float]] = field(default_factory=list)  # per run, per query

    @property
    def total_samples(self) -> int:
        return sum(self.samples)

    @property
    def total_time(self) -> float:
        return statistics.median(sum(run_) for run_ in self.times)

    def spread(self) -> str:
        totals = [sum(r) for r in self.times]
        return f"{seconds(min(totals))}–{seconds(max(totals))}"


def measure(prom: Prometheus, name: str, range_name: str, queries: list[PanelQuery], runs: int) -> Refresh:
    result = Refresh(name, range_name, queries)
    for i in range(runs + 1):  # the first refresh warms the page cache and is not counted
        times = []
        for q in queries:
            answer = (prom.query(q.expr, at=q.end) if q.instant
                      else prom.query(q.expr, start=q.start, end=q.end, step=q.step))
            times.append(answer.seconds)
            if i == 0:
                result.samples.append(answer.samples)
                result.series.append(answer.series)
        if i:
            result.times.append(times)
    return result


# -- what is refreshed --------------------------------------------------------------------


def dashboards_to_refresh(build_dir: Path) -> dict[str, tuple[dict, dict[str, str]]]:
    """Name -> (dashboard JSON, variable values): every generated dashboard with All selected,
    Model Detail also as opened from a drilldown (one model), and the source's dashboard."""
    boards = {}
    for path in sorted((build_dir / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        boards[board["title"]] = (board, ALL)
        if any(p.get("repeat") == MODEL for p in board.get("panels") or []):
            one = {**ALL, "model": ONE_MODEL.replace(".", "\\\\.")}  # Grafana escapes regex values
            boards[f"{board['title']} (one model)"] = (board, one)
    boards["source document's dashboard"] = (json.loads(SEED.read_text())["dashboard"], {})
    return boards


PAIRS = {  # the source's panel title -> the same panel from relaywatch's query builders
    "Request Rate (Requests/sec)": ("request rate by model", lambda q: [q.request_rate(by=(MODEL,))]),
    "Latency Distribution (P50/P95/P99)": ("latency P50/P95/P99",
                                           lambda q: [q.latency_quantile(x) for x in (0.5, 0.95, 0.99)]),
    "Token Usage by Model": ("tokens by model and type", lambda q: [q.token_rate()]),
    "Error Rate %": ("error ratio", lambda q: [q.failure_ratio()]),
}


def panel_pairs(config_path: Path) -> dict[str, dict[str, dict]]:
    """Per source panel: the source's, relaywatch's over raw series (right aggregation and
    $__rate_interval, no recording rules) and relaywatch's over recorded series, as panels."""
    ctx = make_context(load_config(config_path))
    seed = {p["title"]: p for p in json.loads(SEED.read_text())["dashboard"]["panels"]}
    pairs = {}
    for title, (name, build) in PAIRS.items():
        def panel(queries, label):
            return {"title": label, "targets": [{"expr": q.expr, "refId": chr(65 + i)} for i, q in enumerate(queries)]}

        pairs[name] = {"source document": {**seed[title], "title": title},
                       "relaywatch, raw series": panel(build(ctx.panel_queries(raw=True)), name),
                       "relaywatch, recorded series": panel(build(ctx.panel_queries()), name)}
    return pairs


# -- rules --------------------------------------------------------------------------------


def rule_evaluations(prom: Prometheus, rule_files: list[Path], cycles: int, timeout: float) -> dict[str, list[dict]]:
    """Load the rule files and collect each group's evaluations (evaluationTime, per rule)
    until every group at the shortest interval has `cycles` of them."""
    prom.write_config(rule_files)
    prom.reload()
    seen: dict[str, dict[str, dict]] = defaultdict(dict)
    intervals: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for group in prom.get("/api/v1/rules")["groups"]:
            intervals[group["name"]] = group["interval"]
            if group["lastEvaluation"].startswith("0001"):
                continue
            seen[group["name"]][group["lastEvaluation"]] = group
        shortest = min(intervals.values(), default=0)
        if intervals and all(len(seen[name]) >= cycles for name, iv in intervals.items() if iv == shortest):
            break
        time.sleep(2)
    prom.write_config()
    prom.reload()
    return {name: list(evals.values()) for name, evals in seen.items()}


def rule_samples(prom: Prometheus, rule_files: list[Path], at: float) -> dict[str, list[tuple[str, int, float]]]:
    """Group -> [(rule, samples read, seconds)]: each rule's expression as an instant query."""
    out = {}
    for path in rule_files:
        for group in yaml.safe_load(path.read_text())["groups"]:
            out[group["name"]] = []
            for rule in group["rules"]:
                answer = prom.query(rule["expr"], at=at)
                out[group["name"]].append((rule.get("record") or rule.get("alert"), answer.samples, answer.seconds))
    return out


# -- the run ------------------------------------------------------------------------------


def run_benchmark(quick: bool = False, keep: Path | None = None, margin: int | None = None) -> dict:
    if not history.promtool_available():
        raise BenchmarkError("promtool and prometheus are needed (Debian: apt-get install -y prometheus)")
    shape = Shape(models=10, instances=4) if quick else Shape()
    margin = margin or (20 * 60 if quick else 100 * 60)
    runs = 3 if quick else 2  # full size: each refresh of the source's panels reads ~2 billion samples
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="relaywatch-bench-query-"))
    try:
        return _run(shape, margin, runs, work)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def _run(shape: Shape, margin: int, runs: int, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    timings = {}
    config_path = default_project(work / "project")
    run([str(VENV_BIN / "provision"), "build", "--config", str(config_path)], cwd=config_path.parent)
    build_dir = config_path.parent / "build"
    rule_files = sorted((build_dir / "rules").glob("*.yaml"))
    end = (int(time.time()) + margin) // 60 * 60
    start = end - shape.seconds
    data = work / "data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir()

    started = time.monotonic()
    history.backfill_raw(shape, end, data, work)
    timings["raw backfill"] = time.monotonic() - started
    started = time.monotonic()
    levels = history.recording_levels(rule_files)
    for n, groups in enumerate(levels):
        with Prometheus(work, data) as prom:
            history.backfill_rules(groups, start=start, end=end, url=prom.url, data_dir=data, work=work)
        timings[f"recording rules level {n}"] = time.monotonic() - started
        started = time.monotonic()

    with Prometheus(work, data) as prom:
        started = time.monotonic()
        prom.wait_for_compaction()
        timings["compaction"] = time.monotonic() - started
        started = time.monotonic()
        refreshes = []
        for name, (board, variables) in dashboards_to_refresh(build_dir).items():
            for range_name, span in RANGES.items():
                queries = refresh(board, end=end, range_seconds=span, scrape=shape.scrape, variables=variables)
                refreshes.append(measure(prom, name, range_name, queries, runs))
        pairs = []
        for name, panels in panel_pairs(config_path).items():
            for writer, panel in panels.items():
                for range_name, span in RANGES.items():
                    queries = refresh({"panels": [panel]}, end=end, range_seconds=span, scrape=shape.scrape,
                                      variables=ALL)
                    pairs.append((name, writer, measure(prom, f"{name}: {writer}", range_name, queries, runs)))
        timings["dashboard refreshes"] = time.monotonic() - started
        if time.time() > end - 60:
            raise BenchmarkError(f"the rules would be evaluated after the end of the backfilled history; "
                                 f"run again with a --margin above {margin}s")
        started = time.monotonic()
        evaluations = rule_evaluations(prom, rule_files, cycles=4, timeout=300)
        at = time.time() - 30
        samples = rule_samples(prom, rule_files, at)
        timings["rule evaluation"] = time.monotonic() - started
    return {"shape": shape, "levels": len(levels), "refreshes": refreshes, "pairs": pairs,
            "evaluations": evaluations, "rule_samples": samples, "timings": timings}


# -- the report -----------------------------------------------------------------------------


def report(data: dict) -> str:
    shape: Shape = data["shape"]
    refreshes: list[Refresh] = data["refreshes"]
    by_key = {(r.name, r.range_name): r for r in refreshes}
    seed = "source document's dashboard"
    lines = [
        "### Query cost",
        "",
        f"History: {shape.describe()}; the recording rules' series backfilled over the same week in "
        f"{data['levels']} dependency levels. Steps as Grafana picks them for 1000 px "
        f"(1 m at 24 h, 10 m at 7 d), `$__rate_interval` = max(step + {shape.scrape} s, {4 * shape.scrape} s), "
        f"`$job` and `$model` All (`.*`). Samples: `totalQueryableSamples` of `stats=all`; time: one refresh, "
        f"its queries one after the other, request to last byte, median of "
        f"{len(refreshes[0].times)} refreshes (spread: fastest–slowest).",
        "",
        "**The source's four panels and the same panels from relaywatch** (one panel's refresh):",
        "",
        _pairs_table(data["pairs"]),
        "",
        "**One refresh of each dashboard**, against the source document's dashboard:",
        "",
    ]
    rows = []
    names = list(dict.fromkeys(r.name for r in refreshes))
    for name in names:
        for range_name in RANGES:
            r, s = by_key[(name, range_name)], by_key[(seed, range_name)]
            rows.append([name if range_name == next(iter(RANGES)) else "", range_name, len(r.queries),
                         count(r.total_samples), ratio(r.total_samples, s.total_samples),
                         seconds(r.total_time), r.spread(), ratio(r.total_time, s.total_time)])
    lines += [
        table(["dashboard", "range", "queries", "samples", "samples ÷ source", "time", "spread", "time ÷ source"],
              rows, align="llrrrrrr"),
        "",
        "**Rule groups**, evaluated by Prometheus over the backfilled data:",
        "",
        _rules_table(data["evaluations"], data["rule_samples"]),
        "",
        "Most expensive rules (samples read per evaluation):",
        "",
        _top_rules(data["rule_samples"]),
        "",
        "Setup times of this run: " + ", ".join(f"{k} {seconds(v)}" for k, v in data["timings"].items()) + ".",
    ]
    return "\n".join(lines)


def _pairs_table(pairs: list[tuple[str, str, Refresh]]) -> str:
    rows = []
    baseline = {(name, r.range_name): r for name, writer, r in pairs if writer == "source document"}
    for name, writer, r in pairs:
        b = baseline[(name, r.range_name)]
        first = writer == "source document" and r.range_name == next(iter(RANGES))
        rows.append([name if first else "", writer, r.range_name, count(sum(r.series)), count(r.total_samples),
                     ratio(r.total_samples, b.total_samples), seconds(r.total_time), ratio(r.total_time, b.total_time)])
    return table(["panel", "written by", "range", "series returned", "samples", "samples ÷ source", "time",
                  "time ÷ source"], rows, align="lllrrrrr")


def _rules_table(evaluations: dict[str, list[dict]], samples: dict[str, list]) -> str:
    rows = []
    for name, evals in sorted(evaluations.items(), key=lambda kv: kv[0]):
        warm = evals[1:] or evals  # the first evaluation after loading is cold
        times = [e["evaluationTime"] for e in warm]
        interval = evals[0]["interval"]
        read = sum(s for _, s, _ in samples.get(name, ()))
        rows.append([name, len(evals[0]["rules"]), f"{interval:g} s", len(warm), seconds(statistics.median(times)),
                     f"{seconds(min(times))}–{seconds(max(times))}", count(read), count(read * 60 / interval)])
    total = sum(float(r[-1].replace(" ", "")) for r in rows)
    rows = [[*r, f"{float(r[-1].replace(' ', '')) / total:.0%}" if total else "–"] for r in rows]
    return table(["group", "rules", "interval", "cycles", "evaluation time (median)", "spread",
                  "samples per cycle", "samples per minute", "share"], rows, align="lrrrrrrrr")


def _top_rules(samples: dict[str, list], top: int = 6) -> str:
    ranked = sorted(((s, name, group) for group, rules in samples.items() for name, s, _ in rules), reverse=True)
    return table(["rule", "group", "samples"], [[f"`{name}`", group, count(s)] for s, name, group in ranked[:top]],
                 align="llr")


SEED_NAME = "source document's dashboard"


def _refresh(data: dict, name: str, range_name: str) -> Refresh:
    return next(r for r in data["refreshes"] if r.name == name and r.range_name == range_name)


def _title(data: dict, word: str) -> str:
    return next(r.name for r in data["refreshes"] if word in r.name and "one model" not in r.name)


def _samples_per_minute(data: dict) -> dict[str, float]:
    per_minute = {}
    for name, evals in data["evaluations"].items():
        read = sum(s for _, s, _ in data["rule_samples"].get(name, ()))
        per_minute[name] = read * 60 / evals[0]["interval"]
    return per_minute


def headline(data: dict) -> list[str]:
    overview = _title(data, "Overview")
    o24, s24 = _refresh(data, overview, "24 h"), _refresh(data, SEED_NAME, "24 h")
    o7, s7 = _refresh(data, overview, "7 d"), _refresh(data, SEED_NAME, "7 d")
    recorded = [r for name, writer, r in data["pairs"] if writer == "relaywatch, recorded series"]
    seed = {(name, r.range_name): r for name, writer, r in data["pairs"] if writer == "source document"}
    factors = [seed[(name, r.range_name)].total_samples / max(r.total_samples, 1)
               for (name, writer, r) in data["pairs"] if writer == "relaywatch, recorded series"]
    per_minute = _samples_per_minute(data)
    top = max(per_minute, key=per_minute.get)
    return [
        f"One refresh of the Overview ({len(o24.queries)} queries) reads {ratio(s24.total_samples, o24.total_samples)} "
        f"fewer samples than the source document's dashboard ({len(s24.queries)} queries) over 24 h and "
        f"{ratio(s7.total_samples, o7.total_samples)} fewer over 7 d, in {ratio(o24.total_time, s24.total_time)} "
        f"and {ratio(o7.total_time, s7.total_time)} of its time.",
        f"The source's four panels built by relaywatch over recorded series read "
        f"{min(factors):.0f}–{max(factors):.0f}× fewer samples ({len(recorded) // 2} panels, 24 h and 7 d).",
        f"Of the samples the generated rules read per minute, {per_minute[top] / sum(per_minute.values()):.0%} "
        f"are read by the group {top}.",
    ]


def interpret(data: dict) -> str:
    model = _title(data, "Model Detail")
    m24, s24 = _refresh(data, model, "24 h"), _refresh(data, SEED_NAME, "24 h")
    one = _refresh(data, f"{model} (one model)", "24 h")
    shape: Shape = data["shape"]
    per_minute = _samples_per_minute(data)
    top = max(per_minute, key=per_minute.get)
    return "\n\n".join([
        "**Query cost.** A panel over recorded series reads one sample per series per step, whatever "
        "the range and however many instances and status codes the gateway has: the recording rules "
        "have already summed them, at the rule interval. A panel over raw series reads every scraped "
        "sample in its window at every step, for every instance and status. That is the whole "
        "difference between the source's panels and relaywatch's, and it grows with the gateway: "
        f"here {shape.instances} instances and {shape.models} models. The source's panels also return "
        "one line per raw series (per instance and status code), and their fixed `[5m]` windows read "
        "only half of the samples at the 10 m step of a 7-day range: cheaper than "
        "`$__rate_interval`, which covers the whole step, but blind to what happens between steps. "
        "Written correctly over raw series (relaywatch's `raw=True` queries) the same panels cost about "
        "what the source's cost: the recording rules, not the panel code, are where the saving is.",
        f"Model Detail reads raw series on purpose (zoomed in, it shows scrape resolution), one row per "
        f"model. With All models selected it reads {ratio(m24.total_samples, s24.total_samples)} the "
        f"samples of the source's dashboard over 24 h; opened from the Overview's drilldown, for one model, "
        f"{ratio(one.total_samples, s24.total_samples)}.",
        f"The rules: the group {top} reads most, because its 30m and 1h error ratios take rate() of the "
        "raw counters for exactness (docs/slo.md); everything else reads raw series over 5 minutes once, "
        "or recorded series.",
    ])


def main(argv: list[str]) -> None:
    keep = Path(argv[argv.index("--keep") + 1]) if "--keep" in argv else None
    margin = int(argv[argv.index("--margin") + 1]) if "--margin" in argv else None
    print(report(run_benchmark(quick="--quick" in argv, keep=keep, margin=margin)))


if __name__ == "__main__":
    main(sys.argv[1:])
