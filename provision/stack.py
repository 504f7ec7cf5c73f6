"""A local monitoring stack: the traffic simulator and a Prometheus scraping it.

Used by `provision demo` and the end-to-end tests. Starting it:
1. the simulator's HTTP exporter binds its port (so the scrape target is known);
2. `history` seconds of traffic are simulated, written as OpenMetrics with the
   target's job and instance labels, and backfilled with promtool;
3. prometheus.yml comes from `provision.scrape` (the same as `provision scrape-config`)
   with the generated rule files;
4. the simulator starts following the wall clock and Prometheus starts.
`stop()` ends both, whatever state the start reached.
"""

from __future__ import annotations

import time
from pathlib import Path

from provision.config import Config
from provision.contract import Profile
from provision.exporter import SimulatorServer
from provision.history import backfill, history, write_history
from provision.prometheus_server import PrometheusServer
from provision.promql import duration_seconds
from provision.scrape import job_name, render, scrape_config
from provision.simulate import simulator_from_config


class LocalStack:
    def __init__(
        self,
        config: Config,
        profile: Profile,
        *,
        rules_dir: Path,
        workdir: Path,
        listen: str = "127.0.0.1:9090",
        simulator_port: int | None = None,
        history_seconds: float = 3600.0,
        scenario: str | None = None,
        prometheus: str = "prometheus",
        promtool: str = "promtool",
    ):
        self.config = config
        self.profile = profile
        self.rules_dir = Path(rules_dir)
        self.workdir = Path(workdir)
        self.listen = listen
        self.history_seconds = history_seconds
        self.promtool = promtool
        simulate = config.section("simulate")
        self.host = simulate["host"]
        self.simulator_port = simulate["port"] if simulator_port is None else simulator_port
        self.scenario = scenario
        self.simulator = self.registry = self.server = None
        self.prometheus = PrometheusServer(config_file=self.workdir / "prometheus.yml", data_dir=self.workdir / "data",
                                           listen=listen, binary=prometheus, log_file=self.workdir / "prometheus.log")

    @property
    def target(self) -> str:
        return self.server.address

    def start(self) -> "LocalStack":
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        now = time.time()
        self.simulator, self.registry = simulator_from_config(self.config, self.profile,
                                                              start=now - self.history_seconds, scenario=self.scenario)
        self.server = SimulatorServer(self.simulator, self.registry, host=self.host, port=self.simulator_port)
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.history_seconds > 0:
            step = duration_seconds(self.config.data["scrape_interval"])
            text = history(self.simulator, self.registry, until=time.time(), step=step,
                           target={"job": job_name(self.config), "instance": self.target})
            history_file = self.workdir / "history.om"
            write_history(text, history_file)
            backfill(history_file, self.workdir / "data", promtool=self.promtool)
        document = scrape_config(self.config, targets=[self.target], rules_dir=self.rules_dir)
        (self.workdir / "prometheus.yml").write_text(render(document), encoding="utf-8")
        self.server.start()
        self.prometheus.start()

    def stop(self) -> None:
        self.prometheus.stop()
        if self.server is not None:
            self.server.stop()

    def __enter__(self) -> "LocalStack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
