"""Actions -> requests: reads for planning, then writes, kind by kind.

Kinds run in order (folders, data source, dashboards), so a dashboard is only
saved once its folder exists; within a kind, requests run concurrently on a
bounded thread pool (grafana.concurrency). A failed write never stops the
others; an action whose prerequisite failed is reported failed, not sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from provision.build import BuildResult
from provision.config import Config
from provision.grafana.client import GrafanaClient, GrafanaError
from provision.grafana.resources.base import DONE, FAILED, Desired, Kind, Outcome, RunOptions, planned
from provision.plan import Plan

Progress = Callable[[int, int], None]


def desired_state(kinds: Sequence[Kind], build: BuildResult, config: Config) -> dict[str, list[Desired]]:
    return {kind.name: kind.desired(build, config) for kind in kinds}


def read_state(client: GrafanaClient, kinds: Sequence[Kind], desired: dict[str, list[Desired]],
               options: RunOptions, pool: ThreadPoolExecutor) -> dict[str, Any]:
    return {kind.name: kind.fetch(client, desired[kind.name], options, _mapper(pool)) for kind in kinds}


def apply_plan(client: GrafanaClient, kinds: Sequence[Kind], plan: Plan, options: RunOptions,
               pool: ThreadPoolExecutor, progress: Progress | None = None) -> list[Outcome]:
    outcomes: dict[str, Outcome] = {}
    total, done = len(plan.actions), 0
    for kind in kinds:
        batch = [a for a in plan.actions if a.kind == kind.name]

        def run(action, kind=kind) -> Outcome:
            failed_needs = [key for key in action.needs if key in outcomes and outcomes[key].status == DONE[FAILED]]
            if not action.writes:
                return planned(action)
            if failed_needs:
                return Outcome(action, DONE[FAILED], f"not sent: {failed_needs[0].replace(':', ' ')} failed")
            try:
                return kind.apply(client, action, options)
            except GrafanaError as exc:
                return Outcome(action, DONE[FAILED], str(exc))

        for outcome in pool.map(run, batch):
            outcomes[outcome.action.key] = outcome
            done += 1
            if progress:
                progress(done, total)
    return [outcomes[a.key] for a in plan.actions]


def _mapper(pool: ThreadPoolExecutor):
    return lambda fn, items: list(pool.map(fn, items))
