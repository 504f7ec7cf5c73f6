"""Run a local Prometheus server (for `provision demo` and the end-to-end tests).

The server gets its own storage directory and listen address; `stop()` always
ends it (SIGTERM, then SIGKILL), and a server that exits while starting raises
PrometheusError with the last line it logged.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import requests

READY_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 15


class PrometheusError(RuntimeError):
    """The server could not be started or answered an API call with an error; one line."""


class PrometheusServer:
    def __init__(
        self,
        *,
        config_file: Path,
        data_dir: Path,
        listen: str = "127.0.0.1:9090",
        binary: str = "prometheus",
        log_file: Path | None = None,
        retention: str = "30d",
    ):
        self.config_file = Path(config_file)
        self.data_dir = Path(data_dir)
        self.listen = listen
        self.binary = binary
        self.retention = retention
        self.log_file = Path(log_file) if log_file else self.data_dir.parent / "prometheus.log"
        self._process: subprocess.Popen | None = None
        self._session = requests.Session()

    @property
    def url(self) -> str:
        return f"http://{self.listen}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = READY_TIMEOUT_SECONDS) -> "PrometheusServer":
        command = [
            self.binary,
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address={self.listen}",
            f"--storage.tsdb.retention.time={self.retention}",
            "--web.enable-lifecycle",
        ]
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "wb") as log:
            try:
                self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
            except FileNotFoundError:
                raise PrometheusError(f"{self.binary}: not found; install Debian's prometheus package "
                                      "or pass the binary's path") from None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise PrometheusError(f"prometheus exited with code {self._process.returncode}: {self.last_log_line()}")
            if self._ready():
                return self
            time.sleep(0.2)
        self.stop()
        raise PrometheusError(f"prometheus on {self.listen} was not ready within {timeout:g}s: {self.last_log_line()}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> "PrometheusServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- HTTP API --------------------------------------------------------------

    def api(self, path: str, **params) -> object:
        """GET /api/v1/<path>; the `data` of a successful answer."""
        response = self._session.get(f"{self.url}/api/v1/{path}", params=params, timeout=30)
        try:
            body = response.json()
        except ValueError:
            raise PrometheusError(f"{path}: HTTP {response.status_code}, not JSON") from None
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self.api("query", **params)["result"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        return self.api("query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=f"{step:g}")["result"]

    def alerts(self) -> list[dict]:
        return self.api("alerts")["alerts"]

    def rule_groups(self) -> list[dict]:
        return self.api("rules")["groups"]

    def _ready(self) -> bool:
        try:
            return self._session.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def last_log_line(self) -> str:
        try:
            lines = self.log_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return lines[-1] if lines else "no log"
