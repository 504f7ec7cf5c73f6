"""Shared fixtures and helpers for the push tests: an emulated Grafana and a project
directory whose relaywatch.yaml points at it, and a runner for the real CLI."""

from __future__ import annotations

import inspect
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from grafana_emulator import GrafanaEmulator

from provision.cli import main

REPO = Path(__file__).resolve().parent.parent
TOKEN = "glsa_RelaywatchTestToken_9f3c1d2e7b"
USER, PASSWORD = "pushbot", "Pa55-RelaywatchTest-77x"
BUILT = ("llm-gateway-model", "llm-gateway-overview")  # the uids the repository's definitions build
GRAFANA_ENV = ("GRAFANA_URL", "GRAFANA_TOKEN", "GRAFANA_USER", "GRAFANA_PASSWORD", "RELAYWATCH_REVISION")


@pytest.fixture
def grafana():
    with GrafanaEmulator(token=TOKEN, basic_auth=(USER, PASSWORD)) as emulator:
        yield emulator


@dataclass
class Project:
    root: Path
    grafana: GrafanaEmulator

    @property
    def config_path(self) -> Path:
        return self.root / "relaywatch.yaml"

    def config(self) -> dict:
        return yaml.safe_load(self.config_path.read_text())

    def configure(self, **grafana_settings) -> None:
        """Merge settings into the grafana section (a dotted key sets a nested value)."""
        data = self.config()
        for dotted, value in grafana_settings.items():
            node = data["grafana"]
            *parents, last = dotted.split("__")
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = value
        self.config_path.write_text(yaml.safe_dump(data))

    def set(self, section: str, values: dict) -> None:
        data = self.config()
        data.setdefault(section, {}).update(values)
        self.config_path.write_text(yaml.safe_dump(data))

    def run(self, *args: str, env: dict | None = None, token: str | None = TOKEN):
        """Run `provision <args> --config <project>` in-process; returns click's Result."""
        environ = {name: None for name in GRAFANA_ENV}
        environ.update({"GRAFANA_TOKEN": token, "RELAYWATCH_REVISION": "testrev1"})
        environ.update(env or {})
        runner = CliRunner(**_separate_stderr())
        return runner.invoke(main, [*args, "--config", str(self.config_path)], env=environ, catch_exceptions=False)

    def built(self, uid: str) -> dict:
        return json.loads((self.root / "build" / "dashboards" / f"{uid}.json").read_text())


def _separate_stderr() -> dict:
    """click < 8.2 mixes stderr into stdout unless told not to; later versions always separate."""
    return {"mix_stderr": False} if "mix_stderr" in inspect.signature(CliRunner).parameters else {}


PROJECT_DASHBOARDS = ("overview.py", "model.py")


@pytest.fixture
def project(tmp_path, grafana) -> Project:
    """A copy of the repository's definitions and a config aimed at the emulator, with
    fast retries so fault tests stay quick. The tests count on two dashboards, the
    overview and the model detail, and on no SLO rules (tests/test_slo*.py cover those),
    whatever else the repository defines."""
    return make_project(tmp_path, grafana)


def make_project(tmp_path: Path, grafana: GrafanaEmulator) -> Project:
    """The `project` fixture's project, for an emulator a test starts itself (another version)."""
    shutil.copytree(REPO / "alerts", tmp_path / "alerts")
    (tmp_path / "dashboards").mkdir()
    for name in PROJECT_DASHBOARDS:
        shutil.copy(REPO / "dashboards" / name, tmp_path / "dashboards" / name)
    config = {
        "grafana": {
            "url": grafana.url,
            "retries": 3,
            "backoff": {"initial": 0.01, "max": 0.05},
            "timeout": {"connect": 2, "read": 2},
        },
        "slo": {"availability": {"target": None}},
    }
    (tmp_path / "relaywatch.yaml").write_text(yaml.safe_dump(config))
    return Project(tmp_path, grafana)


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def status_of(output: str, kind: str, uid: str) -> str:
    """The status word of `<kind> <uid>: <status>[: reason]` in the output."""
    prefix = f"{kind} {uid}: "
    found = [line[len(prefix):].split(":")[0] for line in output.splitlines() if line.startswith(prefix)]
    assert len(found) == 1, f"expected one line for {kind} {uid} in:\n{output}"
    return found[0]


def summary(output: str) -> dict[str, int]:
    """The counts of the summary line, keyed as printed: {"created": 1, ...} for push,
    {"to create": 1, ...} for a dry run or diff."""
    line = next(line for line in output.splitlines() if line.startswith(("push: ", "dry run: ", "diff: ")))
    counts = line.split(": ", 1)[1].split(";")[0].split(", ")
    return {words: int(n) for n, words in (part.split(" ", 1) for part in counts)}


def writes(grafana: GrafanaEmulator) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in grafana.writes()]


def reads(grafana: GrafanaEmulator) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in grafana.reads()]
