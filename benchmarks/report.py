"""docs/benchmarks.md: the machine, the commands, each area's figures and what they say.

Each area module provides `report(data)` (its tables), `headline(data)` (a few bullets
for the summary) and `interpret(data)` (prose reading its ratios); the record of the
waste the figures showed and the fixes made, measured at the time, is benchmarks/fixes.md.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks import build, push, query_cost, slo_window
from benchmarks.common import table

MODULES = {"build": build, "push": push, "query": query_cost, "slo": slo_window}
FIXES = Path(__file__).with_name("fixes.md")


def render(host: dict[str, str], results: dict[str, dict], durations: dict[str, float], *, quick: bool,
           command: str, reused: tuple[str, ...] = ()) -> str:
    total = sum(durations.values())
    areas = [a for a in MODULES if a in results]
    lines = [
        "# Benchmarks",
        "",
        f"Written by `{command}` on {host['date']} ({'quick sizes' if quick else 'full suite'}; the run took "
        f"{total / 60:.0f} min: " + ", ".join(f"{a} {durations[a] / 60:.1f} min" for a in areas) + "). "
        + (f"The {', '.join(reused)} figures were measured by an earlier run of the same code and "
           "taken from build/bench-results/. " if reused else "")
        + "Do not edit by hand: run the suite again.",
        "",
        "Every figure is set against a baseline measured in the same run on the same machine: the bare "
        "import floor for the build, a naive upload script for push, the source document's own panels "
        "for query cost, raw counters for the SLO window. The machine is shared, so absolute times move "
        "from run to run; the ratios are what the suite is for.",
        "",
        "## In short",
        "",
        *(f"- {line}" for a in areas for line in MODULES[a].headline(results[a])),
        "",
        "## The machine",
        "",
        table(["", ""], [[k, v] for k, v in host.items()], align="ll"),
        "",
        "## How to run",
        "",
        "```",
        "make bench          # the full suite; writes docs/benchmarks.md",
        "make bench-quick    # smaller sizes (10 models × 4 instances, 50 and 200 dashboards); writes build/benchmarks.md",
        "",
        ".venv/bin/python -m benchmarks [--quick] [--only build,push,query,slo] [--reuse AREA,...] [--out FILE]",
        ".venv/bin/python -m benchmarks.build [--quick]        # one area, its tables on stdout",
        ".venv/bin/python -m benchmarks.push [--quick]",
        ".venv/bin/python -m benchmarks.query_cost [--quick] [--keep DIR] [--margin SECONDS]",
        ".venv/bin/python -m benchmarks.slo_window [--quick] [--days 30] [--models 4]",
        "```",
        "",
        "Each area's results are kept in build/bench-results/ as it finishes; `--reuse query` writes the "
        "report again with the stored query-cost results instead of measuring them anew. "
        "Query cost and the SLO window need `promtool` and `prometheus` (Debian's `prometheus` package, "
        "2.42); the suite fails with a message when they are missing. Push runs against the Grafana "
        "emulator in tests/grafana_emulator. Nothing is asserted about wall-clock time: the suite fails "
        "only when an invariant breaks (a no-op push that writes, a one-dashboard change that writes "
        "more than once, a build or query that fails).",
        "",
        "## Results",
        "",
    ]
    for area in areas:
        lines += [MODULES[area].report(results[area]), ""]
    lines += ["## What the figures say", ""]
    for area in areas:
        lines += [MODULES[area].interpret(results[area]), ""]
    if FIXES.exists():
        lines += [FIXES.read_text(encoding="utf-8").strip(), ""]
    return "\n".join(lines)
