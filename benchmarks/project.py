"""Scratch copies of the repository's project, scaled up for the build and push benchmarks.

A project is what `provision build` reads: relaywatch.yaml, dashboards/*.py, alerts/*.py and
the runbooks lint checks anchors against. Scaling keeps the definitions real:

- more dashboards: N definition files, each a copy of one of the repository's dashboard
  definitions (cycling through them) with its uids and title renamed, so every copy is a
  full-size dashboard with its own identity;
- more models: a price table of N entries (the source document's four, then model-0005...),
  which grows the price and spend recording rules.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from benchmarks.common import REPO, BenchmarkError

UID_PREFIX = '"llm-gateway-'
TITLE_PREFIX = 'title="LLM Gateway '


def definition_kinds() -> list[Path]:
    """The repository's dashboard definitions, in a fixed order."""
    return sorted((REPO / "dashboards").glob("[!_]*.py"))


def default_project(root: Path) -> Path:
    """A copy of the repository's project in `root`; returns its config path."""
    root.mkdir(parents=True, exist_ok=True)
    for directory in ("dashboards", "alerts"):
        shutil.copytree(REPO / directory, root / directory, ignore=shutil.ignore_patterns("__pycache__"),
                        dirs_exist_ok=True)
    (root / "docs").mkdir(exist_ok=True)
    shutil.copy(REPO / "docs" / "runbooks.md", root / "docs" / "runbooks.md")
    shutil.copy(REPO / "relaywatch.yaml", root / "relaywatch.yaml")
    return root / "relaywatch.yaml"


def scaled_project(root: Path, *, dashboards: int | None = None, models: int | None = None) -> Path:
    """The default project with `dashboards` generated dashboard definitions and/or a price
    table of `models` entries; returns its config path."""
    config_path = default_project(root)
    if dashboards is not None:
        write_dashboards(root / "dashboards", dashboards)
    if models is not None:
        config = yaml.safe_load(config_path.read_text())
        config["pricing"] = price_table(config["pricing"], models)
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return config_path


def write_dashboards(directory: Path, n: int) -> list[str]:
    """Replace the definitions in `directory` by `n` renamed copies; returns their files' stems."""
    for old in directory.glob("*.py"):
        old.unlink()
    kinds = definition_kinds()
    stems = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        stem = f"{kind.stem}_{i // len(kinds):03d}"
        (directory / f"{stem}.py").write_text(renamed(kind.read_text(), f"c{i // len(kinds):03d}"))
        stems.append(stem)
    return stems


def renamed(source: str, tag: str) -> str:
    """A definition whose uids (and the uids it links to) and title carry `tag`."""
    for marker in (UID_PREFIX, TITLE_PREFIX):
        if marker not in source:
            raise BenchmarkError(f"a dashboard definition has no {marker!r}: update benchmarks/project.py")
    return source.replace(UID_PREFIX, f"{UID_PREFIX}{tag}-").replace(TITLE_PREFIX, f"{TITLE_PREFIX}{tag} ")


def retitle(directory: Path, stem: str, suffix: str) -> None:
    """Change one generated dashboard's title (a one-dashboard change for push)."""
    path = directory / f"{stem}.py"
    text = path.read_text()
    start = text.index(TITLE_PREFIX) + len(TITLE_PREFIX)
    end = text.index('"', start)
    base = text[start:end].split(" #")[0]
    path.write_text(text[:start] + base + (f" #{suffix}" if suffix else "") + text[end:])


def price_table(prices: dict[str, dict], n: int) -> dict[str, dict]:
    """The first `n` entries of the source's table continued with made-up models."""
    table = dict(list(prices.items())[:n])
    for i in range(len(table), n):
        table[f"model-{i + 1:04d}"] = {"input": round(0.5 + i % 17 * 0.75, 2), "output": round(2 + i % 13 * 3.0, 2)}
    return table
