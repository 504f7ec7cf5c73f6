"""What the benchmark modules share: repeated timing, the machine, formatting.

Every figure the suite reports is a ratio against a baseline measured in the same
run, so a slower or busier machine moves both sides of it. Timings are repeated
and reported as the median with the spread (fastest and slowest run).
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


class BenchmarkError(RuntimeError):
    """An invariant the benchmark checks broke (e.g. a no-op push wrote something)."""


@dataclass(frozen=True)
class Timing:
    """Wall times of repeated runs, in seconds."""

    runs: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def low(self) -> float:
        return min(self.runs)

    @property
    def high(self) -> float:
        return max(self.runs)

    def spread(self) -> str:
        """'min–max' of the runs, for the tables."""
        return f"{seconds(self.low)}–{seconds(self.high)}"

    def __str__(self) -> str:
        return f"{seconds(self.median)} ({self.spread()}, {len(self.runs)} runs)"


def repeat(action: Callable[[], object], times: int, *, warmup: int = 1) -> Timing:
    """Run `action` `warmup` times untimed, then `times` times timed."""
    for _ in range(warmup):
        action()
    runs = []
    for _ in range(times):
        started = time.perf_counter()
        action()
        runs.append(time.perf_counter() - started)
    return Timing(tuple(runs))


def run(command: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run a command; a non-zero exit is a broken benchmark, reported with its last output line."""
    proc = subprocess.run(list(command), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
        raise BenchmarkError(f"{' '.join(map(str, command))} exited with {proc.returncode}: {last}")
    return proc


def bench_env(**overrides: str) -> dict[str, str]:
    """The environment for timed subprocesses: bytecode caching on (a warm-up run writes the
    caches, as on any machine that ran the tool before), no colour, no debug."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "RELAYWATCH_DEBUG")}
    env.update(overrides)
    return env


def seconds(value: float) -> str:
    """A duration for a table: 3 significant digits, in s or ms."""
    if value >= 1:
        return f"{value:.2f} s" if value < 100 else f"{value:.0f} s"
    return f"{value * 1000:.3g} ms"


def ratio(value: float, baseline: float) -> str:
    """value / baseline as '12.3×' (or '0.45×')."""
    if baseline == 0:
        return "∞×" if value else "1×"
    r = value / baseline
    return f"{r:.3g}×"


def count(value: float) -> str:
    """A count with thin-space thousands: 1 234 567."""
    return f"{value:,.0f}".replace(",", " ")


def table(header: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None) -> str:
    """A Markdown table; `align` is one letter per column (l or r), numbers right by default."""
    align = align or "l" + "r" * (len(header) - 1)
    marks = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# -- the machine -------------------------------------------------------------------


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "memory": _memory(),
        "load": "%.2f %.2f %.2f" % os.getloadavg(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "prometheus": _version_line("prometheus"),
        "promtool": _version_line("promtool"),
        "relaywatch": _git_revision(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return "unknown"


def _version_line(binary: str) -> str:
    path = shutil.which(binary)
    if not path:
        return "not installed"
    proc = subprocess.run([path, "--version"], capture_output=True, text=True)
    first = (proc.stdout or proc.stderr).strip().splitlines()
    return first[0] if first else "unknown"


def _git_revision() -> str:
    proc = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty", "--abbrev=12"],
                          capture_output=True, text=True)
    return proc.stdout.strip() or "unknown"
