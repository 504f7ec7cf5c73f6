"""Push benchmark: relaywatch's push against a naive upload script, through the emulated Grafana.

The emulator (tests/grafana_emulator) answers every request after a fixed latency (20 ms,
a Grafana across a network), so wall time is about round trips, as it is in production.
For 50 and 500 generated dashboards, each client does:

- first push: into an empty Grafana;
- no-op push: nothing changed (must write nothing; the benchmark fails loudly otherwise);
- one changed: one dashboard's title changed;
- all changed: a setting every dashboard carries changed (`dashboards.refresh`).

The baseline is what a hand-written upload script does (`NaiveUploader`): for each
dashboard a POST /api/dashboards/db with overwrite: true, one after the other, no reads.
relaywatch runs through its own stages, as `provision push` does: build and validate once
(timed apart, it is the same for every push), then health check, reads, plan and writes
on `grafana.concurrency` threads, at the default (4) and at 1.

    .venv/bin/python -m benchmarks.push [--quick]
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

from benchmarks.common import REPO, BenchmarkError, count, ratio, seconds, table
from benchmarks.project import retitle, scaled_project

sys.path.insert(0, str(REPO / "tests"))
from grafana_emulator import GrafanaEmulator  # noqa: E402  (the emulator lives with the tests)

from provision.build import BuildResult  # noqa: E402
from provision.config import Config, load_config  # noqa: E402
from provision.grafana.resources.dashboard import SEARCH_PAGE, UID_CHUNK  # noqa: E402
from provision.push import Session, build_for_push, grafana_target, run_options  # noqa: E402

LATENCY = 0.020
TOKEN = "glsa_RelaywatchBench_0000"
SCENARIOS = ("first push", "no-op push", "one changed", "all changed")
GRAFANA_SEARCH_LIMIT = 5000  # the most hits Grafana's /api/search returns per page


@dataclass(frozen=True)
class Push:
    reads: int
    writes: int
    seconds: float  # the HTTP part: from the first request to the last answer


@dataclass(frozen=True)
class Run:
    client: str
    dashboards: int
    pushes: dict[str, Push]
    build_seconds: float = 0.0  # relaywatch: build and validate before the first request


class NaiveUploader:
    """What a hand-written upload script does: POST every dashboard with overwrite, in turn."""

    def __init__(self, url: str, token: str, folder_uid: str):
        self.url, self.folder_uid = url, folder_uid
        self.session = requests.Session()  # keep-alive: kinder to the baseline than requests.post
        self.session.headers["Authorization"] = f"Bearer {token}"

    def push(self, dashboards: dict[str, dict]) -> None:
        for board in dashboards.values():
            payload = {"dashboard": {**board, "id": None}, "folderUid": self.folder_uid, "overwrite": True}
            response = self.session.post(f"{self.url}/api/dashboards/db", json=payload, timeout=30)
            response.raise_for_status()


def minimum_reads(scenario: str, dashboards: int, changed: int) -> int:
    """The fewest reads with which a push can be correct without clobbering anyone.

    The folder must be known to exist (1). Which dashboards exist: one search lists up to
    5000. Unless Grafana is known empty, each existing dashboard must be read to compare
    it (the classic API has no bulk read), and each one about to be overwritten needs its
    latest version's record, to know the last save was a push and not a person.
    """
    searches = math.ceil(dashboards / GRAFANA_SEARCH_LIMIT)
    if scenario == "first push":
        return 1 + searches
    return 1 + searches + dashboards + changed


# -- the clients -------------------------------------------------------------------------


class RelaywatchClient:
    def __init__(self, config: Config, url: str, concurrency: int):
        self.config, self.concurrency = config, concurrency
        self.target = grafana_target(config, url, environ={"GRAFANA_TOKEN": TOKEN})
        self.options = run_options(config)

    def push(self, build: BuildResult) -> None:
        with Session(self.target, concurrency=self.concurrency) as session:
            session.health()
            plan = session.plan(build, self.config, self.options)
            outcomes = session.apply(plan, self.options)
        failed = [o for o in outcomes if not o.ok]
        if failed:
            raise BenchmarkError(f"push failed: {failed[0].action.key}: {failed[0].status} {failed[0].reason}")


@dataclass(frozen=True)
class Builds:
    """What the scenarios push: as generated, one title changed, every dashboard's refresh changed."""

    config: Config
    by_scenario: dict[str, BuildResult]
    seconds: float  # one build + validation, as push does before its first request


def make_builds(dashboards: int, work: Path) -> Builds:
    root = work / f"project-{dashboards}"
    config_path = scaled_project(root, dashboards=dashboards)

    def build() -> tuple[BuildResult, float]:
        config = load_config(config_path)
        started = time.perf_counter()
        result = build_for_push(config, config.path("build"), "promtool")
        return result, time.perf_counter() - started

    original, seconds_ = build()
    config = load_config(config_path)
    first_stem = sorted((root / "dashboards").glob("*.py"))[0].stem
    retitle(root / "dashboards", first_stem, "changed")
    one_changed, _ = build()
    retitle(root / "dashboards", first_stem, "")
    data = yaml.safe_load(config_path.read_text())
    data.setdefault("dashboards", {})["refresh"] = "1m"
    config_path.write_text(yaml.safe_dump(data))
    all_changed, _ = build()
    scenarios = dict(zip(SCENARIOS, (original, original, one_changed, all_changed)))
    return Builds(config, scenarios, seconds_)


def relaywatch_run(builds: Builds, concurrency: int) -> Run:
    n = len(builds.by_scenario["first push"].dashboards)
    with GrafanaEmulator(token=TOKEN, latency=LATENCY) as grafana:
        client = RelaywatchClient(builds.config, grafana.url, concurrency)
        pushes = {scenario: _measure(grafana, lambda b=build: client.push(b))
                  for scenario, build in builds.by_scenario.items()}
    if pushes["no-op push"].writes:
        raise BenchmarkError(f"a no-op push of {n} dashboards wrote {pushes['no-op push'].writes} times")
    if pushes["one changed"].writes != 1:
        raise BenchmarkError(f"changing one dashboard of {n} wrote {pushes['one changed'].writes} times")
    return Run(f"relaywatch, concurrency {concurrency}", n, pushes, builds.seconds)


def naive_run(builds: Builds) -> Run:
    folder = builds.config.grafana["folder"]
    with GrafanaEmulator(token=TOKEN, latency=LATENCY) as grafana:
        grafana.seed_folder(folder["title"], folder["uid"])  # a script assumes its folder exists
        uploader = NaiveUploader(grafana.url, TOKEN, folder["uid"])
        pushes = {scenario: _measure(grafana, lambda b=build.dashboards: uploader.push(b))
                  for scenario, build in builds.by_scenario.items()}
    return Run("naive script", len(builds.by_scenario["first push"].dashboards), pushes)


def _measure(grafana: GrafanaEmulator, push) -> Push:
    grafana.clear_log()
    started = time.perf_counter()
    push()
    elapsed = time.perf_counter() - started
    return Push(len(grafana.reads()), len(grafana.writes()), elapsed)


# -- the report --------------------------------------------------------------------------


def run_benchmark(quick: bool = False) -> dict:
    sizes = (50, 200) if quick else (50, 500)
    os.environ["RELAYWATCH_REVISION"] = "bench"  # the commit message's revision; no git lookups
    runs = []
    with tempfile.TemporaryDirectory(prefix="relaywatch-bench-push-") as tmp:
        for n in sizes:
            builds = make_builds(n, Path(tmp))
            runs += [naive_run(builds), relaywatch_run(builds, 4), relaywatch_run(builds, 1)]
    return {"sizes": sizes, "runs": runs}


def report(data: dict) -> str:
    lines = [
        "### Push",
        "",
        f"Against the emulated Grafana at {LATENCY * 1000:.0f} ms per request. Reads and writes are the "
        "requests the emulator received; time is the HTTP part of a push, from the health check to the "
        "last answer (relaywatch builds and validates before its first request; that time is given "
        "apart, and is the same for every push). The naive script's folder exists beforehand; relaywatch "
        "checks for its folder and creates it (one write in its first push). *Least possible reads* is "
        "explained below the tables.",
        "",
    ]
    for n in data["sizes"]:
        runs = [r for r in data["runs"] if r.dashboards == n]
        naive = next(r for r in runs if r.client == "naive script")
        ours = next(r for r in runs if r is not naive)
        rows = []
        for scenario in SCENARIOS:
            changed = 0 if scenario in ("first push", "no-op push") else ours.pushes[scenario].writes
            least = minimum_reads(scenario, n, changed)
            for r in runs:
                p = r.pushes[scenario]
                is_naive = r is naive
                rows.append([scenario if r is runs[0] else "", r.client, count(p.reads),
                             "" if is_naive else f"{least} (+{p.reads - least})", count(p.writes),
                             seconds(p.seconds), "" if is_naive else ratio(p.seconds, naive.pushes[scenario].seconds)])
        lines += [
            f"**{n} dashboards**: build and validation before the first request {seconds(ours.build_seconds)}.",
            "",
            table(["push", "client", "reads", "least possible reads (+ extra)", "writes", "time", "time ÷ naive"],
                  rows, align="llrrrrr"),
            "",
        ]
    lines.append(_reads_note())
    return "\n".join(lines)


def _reads_note() -> str:
    return (
        "Least possible reads: one read of the folder, one search per 5000 dashboards, then "
        "for every dashboard Grafana already holds one read to compare it (the classic HTTP API "
        "has no bulk read of dashboard JSON), and for every dashboard about to be overwritten one "
        "read of its latest version, to know the last save was a push and not a person. "
        f"relaywatch's extra reads are its health check (one), a search by uid for built "
        f"dashboards its managed search did not list ({UID_CHUNK} uids per search, so that a "
        f"dashboard moved out of the folder is found; {SEARCH_PAGE} per page for the managed "
        "search), and the data source check when it manages one."
    )


def _runs(data: dict, n: int) -> tuple[Run, Run, Run]:
    runs = {r.client: r for r in data["runs"] if r.dashboards == n}
    return runs["naive script"], runs["relaywatch, concurrency 4"], runs["relaywatch, concurrency 1"]


def headline(data: dict) -> list[str]:
    n = max(data["sizes"])
    naive, ours, _ = _runs(data, n)
    noop = ours.pushes["no-op push"]
    one = ours.pushes["one changed"]
    return [
        f"A no-op push of {n} dashboards sends no write and {noop.reads} reads, "
        f"{noop.reads - minimum_reads('no-op push', n, 0)} above the least the API allows; the naive script "
        f"sends {naive.pushes['no-op push'].writes} writes, each a new version in a dashboard's history. "
        f"Changing one dashboard writes 1 ({one.reads} reads).",
        f"At the default concurrency relaywatch's pushes take "
        f"{ratio(min(ours.pushes[s].seconds / naive.pushes[s].seconds for s in SCENARIOS), 1)}–"
        f"{ratio(max(ours.pushes[s].seconds / naive.pushes[s].seconds for s in SCENARIOS), 1)} "
        f"the naive script's time.",
    ]


def interpret(data: dict) -> str:
    n = max(data["sizes"])
    naive, ours, serial = _runs(data, n)
    every = ours.pushes["all changed"]
    speed = {s: ours.pushes[s].seconds / naive.pushes[s].seconds for s in SCENARIOS}
    unchanged = [s for s in SCENARIOS if s != "all changed"]
    extra = {s: ours.pushes[s].reads - minimum_reads(s, n, 0 if s in ("first push", "no-op push")
                                                    else ours.pushes[s].writes) for s in SCENARIOS}
    every_ratio = speed["all changed"]
    return (
        "**Push.** The naive script's time is its request count times the latency: it can do nothing "
        "else. relaywatch reads before it writes, so that a push that changes nothing writes nothing "
        "(no new versions, no notifications, no edits of colleagues overwritten) and a push that "
        "changes one dashboard writes one. On one thread (concurrency 1) that costs about what the "
        "script costs, one request per dashboard either way; on the default four threads the reads and "
        f"writes overlap and a first, no-op or one-dashboard push of {n} dashboards takes "
        f"{min(speed[s] for s in unchanged):.2f}–{max(speed[s] for s in unchanged):.2f}× the script's time. "
        f"When every dashboard changed ({every.writes} of {n} after a change of the refresh setting; the "
        f"cost dashboards set their own) relaywatch reads each dashboard and its latest version before "
        f"writing it ({every.reads} reads, {every.writes} writes) and takes {every_ratio:.2f}× the "
        f"script's time at concurrency 4 ({'slower' if every_ratio > 1 else 'still no slower'}), "
        f"{serial.pushes['all changed'].seconds / naive.pushes['all changed'].seconds:.2f}× at 1: the version "
        "read is what tells its own earlier push from a person's edit, which it refuses to overwrite. "
        f"Its reads above the least the API allows are {', '.join(f'{extra[s]} ({s})' for s in SCENARIOS)}: "
        "the health check, and on a first push the searches by uid that find a built dashboard moved "
        "out of the folder."
    )


def main(argv: list[str]) -> None:
    print(report(run_benchmark(quick="--quick" in argv)))


if __name__ == "__main__":
    main(sys.argv[1:])
