"""Desired vs. actual -> actions. Pure: no HTTP here (the reads are in apply.read_state).

Each resource kind plans its own resources (provision/grafana/resources/);
this module runs them in order and summarises.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from provision.grafana.resources.base import Action, Desired, Kind, Outcome, RunOptions

# Summary order, for the summary line and --output json.
STATUSES = ("created", "updated", "deleted", "unchanged", "drifted", "failed")


@dataclass(frozen=True)
class Plan:
    actions: list[Action]

    @property
    def writes(self) -> list[Action]:
        return [a for a in self.actions if a.writes]


def make_plan(kinds: Sequence[Kind], desired: dict[str, list[Desired]], actual: dict[str, Any],
              options: RunOptions) -> Plan:
    return Plan([action for kind in kinds for action in kind.plan(desired[kind.name], actual[kind.name], options)])


def summary(outcomes: Iterable[Outcome]) -> dict[str, int]:
    counts = Counter(o.status for o in outcomes)
    return {status: counts.get(status, 0) for status in STATUSES}
