"""Hours of simulated history in seconds: OpenMetrics snapshots, then promtool backfill.

The simulator is stepped from its start to `until`, and the registry is read
every `step` seconds as a scrape would read it. The snapshots are written as
one OpenMetrics file with timestamps, which
`promtool tsdb create-blocks-from openmetrics` turns into TSDB blocks for a
Prometheus storage directory. The same simulator then carries on live, so the
backfilled history and the scraped present join without a counter reset.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.utils import floatToGoString

from provision.simulate import Simulator

PROMTOOL_TIMEOUT_SECONDS = 300


class BackfillError(RuntimeError):
    """promtool could not turn the history into blocks; the message is one line."""


def history(
    simulator: Simulator, registry: CollectorRegistry, *, until: float, step: float, target: dict[str, str]
) -> str:
    """OpenMetrics text of the registry every `step` seconds until `until` (the simulator is advanced).

    `target` holds the labels a scrape would attach (job, instance): without them the
    history would not join the series Prometheus scrapes afterwards.
    """
    families: dict[str, tuple[str, str, list[str]]] = {}
    when = simulator.now + step
    while when <= until + 1e-9:
        simulator.advance(when)
        _snapshot(registry, when, target, families)
        when += step
    simulator.advance(until)
    lines = []
    for name, (kind, documentation, samples) in families.items():
        lines.append(f"# HELP {name} {_escape_help(documentation)}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(samples)
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _snapshot(registry: CollectorRegistry, timestamp: float, target: dict[str, str], families: dict) -> None:
    stamp = f"{timestamp:.3f}"
    for family in registry.collect():
        entry = families.setdefault(family.name, (family.type, family.documentation, []))
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue  # the creation time is not part of the history
            labels = ",".join(f'{k}="{_escape_label(v)}"' for k, v in sorted({**sample.labels, **target}.items()))
            selector = f"{sample.name}{{{labels}}}" if labels else sample.name
            entry[2].append(f"{selector} {floatToGoString(sample.value)} {stamp}")


def write_history(text: str, path: Path) -> None:
    """Write atomically, so a reader waiting for the file never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def backfill(openmetrics_file: Path, data_dir: Path, *, promtool: str = "promtool") -> None:
    """Create TSDB blocks from an OpenMetrics file in a Prometheus storage directory."""
    command = [promtool, "tsdb", "create-blocks-from", "openmetrics", str(openmetrics_file), str(data_dir)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PROMTOOL_TIMEOUT_SECONDS)
    except FileNotFoundError:
        raise BackfillError(f"{promtool}: not found; install Debian's prometheus package or pass --promtool") from None
    except subprocess.TimeoutExpired:
        raise BackfillError(f"{promtool} tsdb create-blocks-from openmetrics did not finish in "
                            f"{PROMTOOL_TIMEOUT_SECONDS}s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BackfillError(f"{promtool} tsdb create-blocks-from openmetrics {openmetrics_file}: {last}")


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")
