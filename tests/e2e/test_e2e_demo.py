"""`provision demo` (what `make demo` runs): Prometheus and the simulator up with the rules,
history backfilled, and both stopped by Ctrl-C with nothing left behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from conftest import require_binary
from e2e_harness import e2e_settings, free_port, wait_until

from provision.prometheus_server import PrometheusServer

pytestmark = pytest.mark.e2e


def test_demo_serves_prometheus_with_history_and_stops_on_ctrl_c(tmp_path):
    require_binary("prometheus")
    require_binary("promtool")
    config = tmp_path / "relaywatch.yaml"
    config.write_text(yaml.safe_dump(e2e_settings(tmp_path, rules={"interval": "1s"})))
    port, simulator_port = free_port(), free_port()
    before = set(Path(tempfile.gettempdir()).glob("relaywatch-demo-*"))
    demo = subprocess.Popen([sys.executable, "-m", "provision.cli", "demo", "--config", str(config),
                             "--port", str(port), "--simulator-port", str(simulator_port), "--history", "15m"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = [demo.stdout.readline() for _ in range(7)]
        assert banner[0].startswith(f"Prometheus   http://127.0.0.1:{port}  (alerts: http://127.0.0.1:{port}/alerts"), \
            "".join(banner) + demo.stderr.read()
        assert f"http://127.0.0.1:{simulator_port}/metrics" in banner[1]
        assert "provision push" in "".join(banner)
        prometheus = PrometheusServer(config_file=config, data_dir=tmp_path, listen=f"127.0.0.1:{port}")
        # the backfilled hour is there at once: fifteen minutes ago the gateway was already busy
        old = prometheus.query('sum(rate(holysheep_requests_total[5m] offset 10m))')
        assert old and float(old[0]["value"][1]) > 5
        wait_until(lambda: prometheus.query("job:llm_requests:rate5m"), "the recording rules")
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=30) == 0
        assert demo.stdout.read().strip().endswith("stopped Prometheus and the simulator")
        assert set(Path(tempfile.gettempdir()).glob("relaywatch-demo-*")) == before
    finally:  # SIGTERM first: the demo stops its Prometheus; SIGKILL would orphan it
        if demo.poll() is None:
            demo.terminate()
            try:
                demo.wait(timeout=30)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait()
