"""Build benchmark: `provision build` (generate, validate, lint) against the bare floor.

The floor is what any Python tool with these dependencies pays before doing anything:
starting the interpreter and importing them. `provision build` runs as a subprocess,
exactly as CI runs it, for the repository's project and for copies scaled to 10x and
100x price-table models and 10x and 100x dashboards. Growth should be linear, and the
time above the floor (the work) should dominate once there is work to do.

A stage breakdown (imports, definitions and rendering, writing, validation, lint) and
a cProfile of the largest case show where the time goes.

    .venv/bin/python -m benchmarks.build [--quick]
    .venv/bin/python -m benchmarks.build stages|profile CONFIG   (used by the benchmark itself)
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import sys
import sysconfig
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import yaml

from benchmarks.common import REPO, VENV_BIN, Timing, bench_env, count, ratio, repeat, run, seconds, table
from benchmarks.project import scaled_project

STDLIB = sysconfig.get_paths()["stdlib"] + "/"
FLOOR_IMPORTS = "import grafanalib, requests, yaml, click, jsonschema, promql_parser, prometheus_client"


@dataclass(frozen=True)
class Case:
    name: str
    dashboards: int | None = None  # generated dashboard definitions; None: the repository's
    models: int | None = None  # price-table entries; None: the repository's
    repetitions: int = 5


@dataclass
class CaseResult:
    case: Case
    timing: Timing
    dashboards: int
    models: int
    rules: int
    stages: dict[str, float]


def cases(quick: bool) -> list[Case]:
    reps = 3 if quick else 7
    big = 3 if quick else 5
    return [
        Case("default", repetitions=reps),
        Case("models ×10", models=40, repetitions=reps),
        Case("models ×100", models=400, repetitions=big),
        Case("dashboards ×10", dashboards=40, repetitions=reps),
        Case("dashboards ×100", dashboards=400, repetitions=big),
    ]


def python(*args: str) -> list[str]:
    return [str(VENV_BIN / "python"), *args]


def floor(repetitions: int) -> dict[str, Timing]:
    env = bench_env()
    return {
        "interpreter": repeat(lambda: run(python("-c", "pass"), env=env), repetitions),
        "imports": repeat(lambda: run(python("-c", FLOOR_IMPORTS), env=env), repetitions),
    }


def measure(case: Case, work: Path) -> CaseResult:
    root = work / case.name.replace(" ", "-").replace("×", "x")
    config = scaled_project(root, dashboards=case.dashboards, models=case.models)
    env = bench_env()
    command = [str(VENV_BIN / "provision"), "build", "--config", str(config)]
    timing = repeat(lambda: run(command, cwd=root, env=env), case.repetitions)
    stages = json.loads(run(python("-m", "benchmarks.build", "stages", str(config)), cwd=root,
                            env=bench_env(PYTHONPATH=str(REPO))).stdout)
    built = root / "build"
    rules = sum(len(g["rules"]) for f in (built / "rules").glob("*.yaml") for g in yaml.safe_load(f.read_text())["groups"])
    models = len(yaml.safe_load(config.read_text()).get("pricing") or {})
    return CaseResult(case, timing, len(list((built / "dashboards").glob("*.json"))), models, rules, stages)


def profile(case: Case, work: Path, top: int = 12) -> dict:
    root = work / f"profile-{case.name.replace(' ', '-').replace('×', 'x')}"
    config = scaled_project(root, dashboards=case.dashboards, models=case.models)
    out = run(python("-m", "benchmarks.build", "profile", str(config)), cwd=root, env=bench_env(PYTHONPATH=str(REPO)))
    result = json.loads(out.stdout)
    result["functions"] = result["functions"][:top]
    return result


# -- in the measured process -----------------------------------------------------------


def _stages(config_path: str) -> dict[str, float]:
    """The stages of `provision build` (see provision/cli.py), timed one by one."""
    marks = [("start", time.perf_counter())]
    from provision import build as build_stage
    from provision import lint
    from provision.config import load_config
    from provision.validate import run_promtool, validate_build

    marks.append(("imports", time.perf_counter()))
    config = load_config(config_path)
    result = build_stage.build(config)
    marks.append(("definitions and rendering", time.perf_counter()))
    out = config.path("build")
    build_stage.write(result, out)
    marks.append(("writing files", time.perf_counter()))
    validate_build(out, result.context.profile)
    marks.append(("validation (with promtool)", time.perf_counter()))
    lint.lint_build(out, lint.LintSettings.from_config(config, result.context.profile))
    marks.append(("lint", time.perf_counter()))
    started = time.perf_counter()
    run_promtool(sorted((out / "rules").glob("*.yaml")), "promtool", out)
    stages = {name: marks[i][1] - marks[i - 1][1] for i, (name, _) in enumerate(marks) if i}
    stages["of which promtool check rules"] = time.perf_counter() - started
    return stages


AREAS = (  # (area, substrings of "file:function"), first match wins
    ("JSON Schema validation (jsonschema)", ("jsonschema", "referencing", "rpds")),
    ("PromQL parsing and tree walks", ("promql_parser", "promql_ast.py")),
    ("lint checks", ("provision/lint/",)),
    ("JSON encoding and decoding", ("json/encoder", "json/decoder", "json/__init__", "_json")),
    ("dashboard rendering (grafanalib, panels.py)", ("grafanalib", "provision/panels.py")),
    ("YAML", ("/yaml/", "_yaml")),
    ("waiting for promtool", ("subprocess.py", "selectors.py", "waitpid", "select.poll", "_posixsubprocess",
                              "posix.read")),
    ("imports and compiling definitions", ("importlib", "marshal", "builtins.compile", "builtins.exec",
                                           "zipimport")),
    ("other relaywatch code", ("provision/",)),
)


def _area(where: str) -> str:
    return next((name for name, keys in AREAS if any(k in where for k in keys)), "other")


def _profile(config_path: str) -> dict:
    """cProfile of the in-process equivalent of `provision build`: own time by area and function."""
    from click.testing import CliRunner

    from provision.cli import main

    profiler = cProfile.Profile()
    profiler.enable()
    result = CliRunner().invoke(main, ["build", "--config", config_path])
    profiler.disable()
    if result.exit_code != 0:
        raise SystemExit(f"build failed: {result.output}")
    stats = pstats.Stats(profiler, stream=io.StringIO()).stats
    total = sum(s[2] for s in stats.values())
    total_calls = sum(s[1] for s in stats.values())
    by_area: dict[str, float] = defaultdict(float)
    functions = []
    for (file, line, function), (_, calls, own, cumulative, _) in stats.items():
        where = f"{file}:{function}"
        by_area[_area(where)] += own
        short = file.split("site-packages/")[-1].replace(str(REPO) + "/", "").replace(STDLIB, "")
        functions.append({"function": f"{short}:{line}({function})" if line else function, "calls": calls,
                          "own": own, "cumulative": cumulative})
    functions.sort(key=lambda f: f["own"], reverse=True)
    return {"total": total, "calls": total_calls, "functions": functions,
            "areas": dict(sorted(by_area.items(), key=lambda kv: -kv[1]))}


# -- the report --------------------------------------------------------------------------


def run_benchmark(quick: bool = False) -> dict:
    with tempfile.TemporaryDirectory(prefix="relaywatch-bench-build-") as tmp:
        work = Path(tmp)
        floors = floor(7 if not quick else 3)
        results = [measure(case, work) for case in cases(quick)]
        # Function calls are deterministic where wall time on a shared machine is not: the calls
        # per added dashboard at each size say whether the work itself grows linearly.
        profiles = {r.case.name: profile(r.case, work) for r in results
                    if r.case.name in ("default", "dashboards ×10", "dashboards ×100")}
    return {"floor": floors, "results": results, "profile": profiles["dashboards ×100"],
            "profiled": "dashboards ×100", "calls": {name: p["calls"] for name, p in profiles.items()}}


def report(data: dict) -> str:
    floor_time = data["floor"]["imports"].median
    results: list[CaseResult] = data["results"]
    base = results[0]
    lines = [
        "### Build",
        "",
        f"Floor: starting Python and `{FLOOR_IMPORTS}`: **{data['floor']['imports']}**; "
        f"the bare interpreter alone: {data['floor']['interpreter']}.",
        "",
        table(
            ["case", "dashboards", "models", "rules", "`provision build` (median)", "spread", "× floor",
             "work (above floor)", "work × default"],
            [[r.case.name, r.dashboards, r.models, r.rules, seconds(r.timing.median), r.timing.spread(),
              ratio(r.timing.median, floor_time), seconds(r.timing.median - floor_time),
              ratio(r.timing.median - floor_time, base.timing.median - floor_time)] for r in results],
        ),
        "",
        _growth(data, floor_time),
        "",
        "Where the time goes (one run per case, stages timed inside the process; imports include "
        "the floor's):",
        "",
        _stage_table(results),
        "",
        f"cProfile of `provision build` at {data['profiled']} (own time, in process; the profiler "
        f"inflates pure-Python code, so read shares, not seconds):",
        "",
        table(["area", "share of own time"],
              [[area, f"{own / data['profile']['total']:.0%}"] for area, own in data["profile"]["areas"].items()
               if own / data["profile"]["total"] >= 0.005]),
        "",
        table(["function", "calls", "own", "cumulative"],
              [[f"`{f['function']}`", f["calls"], seconds(f["own"]), seconds(f["cumulative"])]
               for f in data["profile"]["functions"]], align="lrrr"),
    ]
    return "\n".join(lines)


LINEAR = (0.67, 1.5)  # marginal cost ratios (second step / first) read as linear growth


def _marginals(results: list[CaseResult], floor_time: float, axis: str) -> tuple[float, float]:
    """Seconds per added dashboard (or model) from 1x to 10x and from 10x to 100x, on the fastest
    run of each case: on a shared machine the fastest run is the one least disturbed by others."""
    by_name = {r.case.name: r for r in results}
    base, x10, x100 = by_name["default"], by_name[f"{axis} ×10"], by_name[f"{axis} ×100"]
    size = (lambda r: r.dashboards) if axis == "dashboards" else (lambda r: r.models)
    work = lambda r: r.timing.low - floor_time  # noqa: E731
    return ((work(x10) - work(base)) / (size(x10) - size(base)),
            (work(x100) - work(x10)) / (size(x100) - size(x10)))


def _call_marginals(data: dict) -> tuple[float, float]:
    """Function calls per added dashboard from 1x to 10x and from 10x to 100x (deterministic)."""
    by_name = {r.case.name: r for r in data["results"]}
    calls = data["calls"]
    n = {name: by_name[name].dashboards for name in calls}
    first = (calls["dashboards ×10"] - calls["default"]) / (n["dashboards ×10"] - n["default"])
    second = (calls["dashboards ×100"] - calls["dashboards ×10"]) / (n["dashboards ×100"] - n["dashboards ×10"])
    return first, second


def _growth(data: dict, floor_time: float) -> str:
    """Marginal cost per added dashboard / model between the sizes: equal steps mean linear growth."""
    parts = []
    for axis, unit in (("dashboards", "dashboard"), ("models", "model")):
        first, second = _marginals(data["results"], floor_time, axis)
        parts.append(f"each added {unit} costs {seconds(first)} from 1× to 10× and {seconds(second)} from 10× "
                     f"to 100× (ratio {second / first:.2f}; 1.00 is exactly linear)")
    c1, c2 = _call_marginals(data)
    parts.append(f"in function calls, which do not depend on the machine's load, each added dashboard makes "
                 f"{count(c1)} calls from 1× to 10× and {count(c2)} from 10× to 100× (ratio {c2 / c1:.2f})")
    return "Growth (fastest runs): " + "; ".join(parts) + "."


def _stage_table(results: list[CaseResult]) -> str:
    names = list(results[0].stages)
    return table(["stage", *(r.case.name for r in results)],
                 [[name, *(seconds(r.stages[name]) for r in results)] for name in names])


def _by_name(data: dict) -> dict[str, CaseResult]:
    return {r.case.name: r for r in data["results"]}


def headline(data: dict) -> list[str]:
    floor_time = data["floor"]["imports"].median
    r = _by_name(data)
    base, big = r["default"], r["dashboards ×100"]
    return [
        f"`provision build` (generate, validate with promtool, lint) of the repository's {base.dashboards} "
        f"dashboards and {base.rules} rules takes {seconds(base.timing.median)}, "
        f"{ratio(base.timing.median, floor_time)} the {seconds(floor_time)} of starting Python and importing "
        f"the dependencies; {big.dashboards} dashboards take {seconds(big.timing.median)} "
        f"({ratio(big.timing.median - floor_time, base.timing.median - floor_time)} the default's work above "
        f"the floor, for {ratio(big.dashboards, base.dashboards)} the dashboards).",
        _growth(data, floor_time).replace("Growth (fastest runs): e", "E", 1),
    ]


def _linearity(data: dict, floor_time: float) -> str:
    """What the marginal costs say about growth, worded from the figures of this run."""
    time_ratio = (lambda m: m[1] / m[0])(_marginals(data["results"], floor_time, "dashboards"))
    call_ratio = (lambda m: m[1] / m[0])(_call_marginals(data))
    low, high = LINEAR
    if low <= call_ratio <= high and low <= time_ratio <= high:
        return ("the cost per added dashboard is about the same from 4 to 40 as from 40 to 400, in time "
                f"(ratio {time_ratio:.2f}) and in function calls ({call_ratio:.2f}): the build grows linearly")
    if low <= call_ratio <= high:
        return (f"the work grows linearly (function calls per added dashboard, ratio {call_ratio:.2f}) while "
                f"the time per added dashboard moves by {time_ratio:.2f}× between the steps: the same calls "
                "take longer with a larger working set and on a busy shared machine, not a step repeated "
                "per dashboard")
    return (f"the function calls per added dashboard grow by {call_ratio:.2f}× from the first step to the "
            "second: some step is repeated per dashboard and grows with the project; the profile's "
            "functions below are where to look")


def interpret(data: dict) -> str:
    floor_time = data["floor"]["imports"].median
    r = _by_name(data)
    base, big, models = r["default"], r["dashboards ×100"], r["models ×100"]
    areas = data["profile"]["areas"]
    total = data["profile"]["total"]
    top = list(areas.items())[:3]
    start_share = floor_time / base.timing.median
    return "\n".join([
        "**Build.** " + (
            f"For the repository's own project the floor is {start_share:.0%} of the build: what is left "
            f"({seconds(base.timing.median - floor_time)}) is relaywatch's own imports, the definitions, "
            f"validation with two promtool runs ({seconds(base.stages['of which promtool check rules'])} "
            f"each) and lint. As the project grows the work takes over: at {big.dashboards} dashboards the "
            f"floor is {floor_time / big.timing.median:.0%} of the time, and "
            + _linearity(data, floor_time) + ". "
            f"The price table scales the recording rules ({models.rules} rules for {models.models} models) "
            f"and costs {seconds(_marginals(data['results'], floor_time, 'models')[1])} per model. "
            f"Where the time of a large build goes: "
            + ", ".join(f"{name} {own / total:.0%}" for name, own in top)
            + " of the profiled own time. JSON Schema validation is jsonschema's cost per node (about 7 ms "
              "for an 18-panel dashboard); a compiled validator would cut it but is another dependency and "
              "reports one error at a time. Dashboard JSON is written with `json.dumps(indent=2)`, which "
              "Python 3.11 runs without its C encoder; the files must stay byte-identical, so it stays."),
    ])


def main(argv: list[str]) -> None:
    if len(argv) == 2 and argv[0] in ("stages", "profile"):
        print(json.dumps(_stages(argv[1]) if argv[0] == "stages" else _profile(argv[1])))
        return
    print(report(run_benchmark(quick="--quick" in argv)))


if __name__ == "__main__":
    main(sys.argv[1:])
