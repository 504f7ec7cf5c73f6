"""Run the benchmark suite and write the report.

    .venv/bin/python -m benchmarks                      # everything, writes docs/benchmarks.md
    .venv/bin/python -m benchmarks --quick --out build/benchmarks.md
    .venv/bin/python -m benchmarks --only build,push    # some areas (the report has only those)
    .venv/bin/python -m benchmarks --reuse query        # take the query area from the last run's results

Each area's results are kept in build/bench-results/AREA.pickle as soon as it finishes, so a
report can be written again, or an area re-run alone, without repeating the long ones.

Exit status 1 when an invariant the suite checks breaks (a no-op push that writes, a failed
build or query) or a tool it needs is missing; the message says which.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from pathlib import Path

from benchmarks import build, push, query_cost, report, slo_window
from benchmarks.common import REPO, BenchmarkError, machine
from benchmarks.history import promtool_available

AREAS = {"build": build, "push": push, "query": query_cost, "slo": slo_window}
RESULTS = REPO / "build" / "bench-results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description="relaywatch's benchmark suite")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a few minutes)")
    parser.add_argument("--only", default=",".join(AREAS), help=f"comma-separated areas: {', '.join(AREAS)}")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md", help="report file")
    parser.add_argument("--reuse", default="", help="comma-separated areas to take from build/bench-results")
    args = parser.parse_args(argv)
    areas = [a.strip() for a in args.only.split(",") if a.strip()]
    reused = [a.strip() for a in args.reuse.split(",") if a.strip()]
    unknown = [a for a in areas + reused if a not in AREAS]
    if unknown:
        parser.error(f"unknown area {', '.join(unknown)}; expected {', '.join(AREAS)}")
    missing = [a for a in reused if not (RESULTS / f"{a}.pickle").exists()]
    if missing:
        print(f"error: no stored results for {', '.join(missing)} in {RESULTS}", file=sys.stderr)
        return 1
    if ({"query", "slo"} & (set(areas) - set(reused))) and not promtool_available():
        print("error: promtool and prometheus are needed (Debian: apt-get install -y prometheus)", file=sys.stderr)
        return 1
    host = machine()
    results, durations = {}, {}
    command = " ".join(["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])])
    for area in areas:
        if area in reused:
            results[area], durations[area] = pickle.loads((RESULTS / f"{area}.pickle").read_bytes())
            print(f"benchmark: {area} taken from {RESULTS / area}.pickle", file=sys.stderr)
            continue
        print(f"benchmark: {area}...", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            results[area] = AREAS[area].run_benchmark(quick=args.quick)
        except BenchmarkError as exc:
            print(f"error: {area}: {exc}", file=sys.stderr)
            return 1
        durations[area] = time.monotonic() - started
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"{area}.pickle").write_bytes(pickle.dumps((results[area], durations[area])))
        print(f"benchmark: {area} done in {durations[area]:.0f} s", file=sys.stderr, flush=True)
    text = report.render(host, results, durations, quick=args.quick, command=command,
                         reused=tuple(a for a in areas if a in reused))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
