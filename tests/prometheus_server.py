"""A real Prometheus on 127.0.0.1 over backfilled synthetic series, for tests that
need PromQL values (not only pass/fail as `promtool test rules` gives).

Series are written once as `SyntheticSeries` (a value or None per step) and
rendered two ways: OpenMetrics for `promtool tsdb create-blocks-from
openmetrics`, and promtool's `input_series` notation, so the server and
`promtool test rules` read exactly the same samples. Time starts at the Unix
epoch, as in promtool's unit tests.
"""

from __future__ import annotations

import json
import math
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from promtool_helpers import Series

READY_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class SyntheticSeries:
    name: str
    labels: tuple[tuple[str, str], ...]
    values: tuple[float | None, ...]  # one per step; None: no sample

    def selector(self) -> str:
        rendered = ", ".join(f'{k}="{v}"' for k, v in self.labels)
        return f"{self.name}{{{rendered}}}"

    def promtool(self) -> Series:
        return Series(self.selector(), " ".join("_" if v is None else _number(v) for v in self.values))


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def openmetrics(series: list[SyntheticSeries], step_seconds: int) -> str:
    lines = []
    for name in sorted({s.name for s in series}):
        lines.append(f"# TYPE {name} unknown")
        for s in sorted((s for s in series if s.name == name), key=lambda s: s.labels):
            labels = ",".join(f'{k}="{v}"' for k, v in s.labels)
            lines += [f"{name}{{{labels}}} {_number(v)} {i * step_seconds}" for i, v in enumerate(s.values)
                      if v is not None]
    return "\n".join(lines) + "\n# EOF\n"


def backfill(promtool: str, series: list[SyntheticSeries], step_seconds: int, data_dir: Path) -> None:
    source = data_dir.parent / f"{data_dir.name}.om"
    source.write_text(openmetrics(series, step_seconds), encoding="utf-8")
    command = [promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(source), str(data_dir)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"backfill failed: {proc.stdout}\n{proc.stderr}"


class PrometheusServer:
    """`with PrometheusServer(binary, data_dir) as prom: prom.instant(expr, t)`"""

    def __init__(self, binary: str, data_dir: Path):
        self.binary, self.data_dir = binary, data_dir
        self.port = _free_port()
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "PrometheusServer":
        config = self.data_dir.parent / f"{self.data_dir.name}.prometheus.yml"
        config.write_text("global: {}\n", encoding="utf-8")
        self.log = (self.data_dir.parent / f"{self.data_dir.name}.log").open("w")
        self.process = subprocess.Popen(
            [self.binary, f"--config.file={config}", f"--storage.tsdb.path={self.data_dir}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=100y"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.process.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"prometheus not ready within {READY_TIMEOUT_SECONDS}s; see {self.log.name}")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    def instant(self, expr: str, at_seconds: float) -> dict[frozenset, float]:
        """An instant query at `at_seconds`, as Grafana's alerting sends it: labels -> value."""
        query = urllib.parse.urlencode({"query": expr, "time": f"{at_seconds:.3f}"})
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v1/query?{query}", timeout=60) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return {frozenset(r["metric"].items()): float(r["value"][1]) for r in body["data"]["result"]}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
