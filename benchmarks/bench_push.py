"""Push benchmark: N generated dashboards against the emulated Grafana with a fixed
per-request latency; reports requests and wall time of a first push, a no-op push,
a push changing every dashboard (each at version 1: its version is read twice) and
a second such push, at several concurrency settings.

    .venv/bin/python benchmarks/bench_push.py [N] [latency_seconds]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import yaml
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from grafana_emulator import GrafanaEmulator  # noqa: E402

from provision.cli import main  # noqa: E402

DEFINITION = '''
from provision.panels import row, timeseries


def dashboards(ctx):
    q = ctx.panel_queries(raw=True)
    return [ctx.dashboard(uid=f"bench-{{i:04d}}", title=f"Bench {{i}}", description="generated", raw=True,
                          rows=[row("r", timeseries("Requests", q.request_rate(), unit="reqps", description="d"))])
            for i in range({n})]
'''


def run(root: Path, *args: str) -> tuple[float, int]:
    started = time.perf_counter()
    result = CliRunner().invoke(main, ["push", "--config", str(root / "relaywatch.yaml"), *args],
                                env={"GRAFANA_TOKEN": "glsa_bench", "RELAYWATCH_REVISION": "bench"})
    return time.perf_counter() - started, result.exit_code


def main_bench(n: int, latency: float) -> None:
    print(f"{n} dashboards, {latency * 1000:.0f} ms per request")
    print(f"{'concurrency':>11}  {'push':<9} {'seconds':>7}  {'reads':>5}  {'writes':>6}  exit")
    for concurrency in (1, 4, 16):
        with tempfile.TemporaryDirectory() as tmp, GrafanaEmulator(token="glsa_bench", latency=latency) as g:
            root = Path(tmp)
            (root / "dashboards").mkdir()
            (root / "alerts").mkdir()
            (root / "dashboards" / "bench.py").write_text(DEFINITION.format(n=n))
            config = {"grafana": {"url": g.url, "concurrency": concurrency}}
            (root / "relaywatch.yaml").write_text(yaml.safe_dump(config))
            for label, refresh in (("first", "30s"), ("no-op", "30s"), ("changed", "1m"), ("again", "2m")):
                config["dashboards"] = {"refresh": refresh}
                (root / "relaywatch.yaml").write_text(yaml.safe_dump(config))
                g.clear_log()
                seconds, code = run(root)
                print(f"{concurrency:>11}  {label:<9} {seconds:>7.2f}  {len(g.reads()):>5}  {len(g.writes()):>6}  {code}")


if __name__ == "__main__":
    main_bench(int(sys.argv[1]) if len(sys.argv) > 1 else 200, float(sys.argv[2]) if len(sys.argv) > 2 else 0.02)
