"""The one interface every resource kind implements, and the data passed through it.

A kind is four functions (and an optional diff): what the build wants
(`desired`), what Grafana holds (`fetch`, reads only), what to do about the
difference (`plan`, pure), and doing one action (`apply`, writes). plan.py and
apply.py drive them in order; adding a kind is adding one module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from provision.build import BuildResult
from provision.config import Config
from provision.grafana.client import GrafanaClient, GrafanaError
from provision.render.ruler import RulerNamespace

CREATE, UPDATE, DELETE, UNCHANGED, DRIFTED, FAILED = "create", "update", "delete", "unchanged", "drifted", "failed"
WRITES = frozenset({CREATE, UPDATE, DELETE})
# What an action's op becomes once done (or, for the ops that write nothing, as planned).
DONE = {CREATE: "created", UPDATE: "updated", DELETE: "deleted", UNCHANGED: "unchanged", DRIFTED: "drifted",
        FAILED: "failed"}
PROBLEMS = frozenset({"drifted", "failed"})

T, R = TypeVar("T"), TypeVar("R")
Map = Callable[[Callable[[T], R], Iterable[T]], list[R]]


@dataclass(frozen=True)
class RunOptions:
    """What this run of push/diff asks for."""

    folder_uid: str
    managed_tag: str
    revision: str
    prune: bool = False
    force: bool = False
    rule_targets: tuple[str, ...] = ()  # rules.target: which rule-group kinds are in play
    editable_in_ui: bool = False  # rules.grafana.editable_in_ui: push rules without provenance
    ruler: RulerNamespace | None = None  # where the ruler target's groups live


@dataclass(frozen=True)
class Desired:
    """One resource as the build wants it."""

    kind: str
    uid: str
    name: str
    body: dict
    folder_uid: str = ""
    source: Any = None  # the rendered delivery this was made from, when a kind needs more than the body


@dataclass(frozen=True)
class Action:
    """What to do about one resource, with what Grafana holds (`current`, `version`)
    as it was read: updates send that version back so a concurrent save is refused."""

    kind: str
    uid: str
    name: str
    op: str
    reason: str = ""
    desired: Desired | None = None
    current: Any = None  # what Grafana holds, as the kind read it
    version: int | None = None
    needs: tuple[str, ...] = ()  # keys of actions that must succeed first

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.uid}"

    @property
    def writes(self) -> bool:
        return self.op in WRITES


@dataclass(frozen=True)
class Outcome:
    action: Action
    status: str  # a value of DONE
    reason: str = ""
    version: int | None = None

    @property
    def ok(self) -> bool:
        return self.status not in PROBLEMS


def planned(action: Action) -> Outcome:
    """The outcome of an action that writes nothing."""
    return Outcome(action, DONE[action.op], action.reason, action.version)


@dataclass(frozen=True)
class Kind:
    name: str
    desired: Callable[[BuildResult, Config], list[Desired]]
    fetch: Callable[[GrafanaClient, list[Desired], RunOptions, Map], Any]
    plan: Callable[[list[Desired], Any, RunOptions], list[Action]]
    apply: Callable[[GrafanaClient, Action, RunOptions], Outcome]
    diff: Callable[[Action], str] | None = None


@dataclass(frozen=True)
class ReadFailure:
    """A resource Grafana would not show us; planned as failed, the others go on."""

    reason: str


def guarded(read: Callable[[], T]) -> T | ReadFailure:
    """Run one read; a refusal about this resource becomes a ReadFailure. Unreachable
    Grafana and rejected credentials propagate: nothing else would work either."""
    try:
        return read()
    except GrafanaError as exc:
        if exc.status in (None, 401):
            raise
        return ReadFailure(str(exc))


def read_each(client: GrafanaClient, wanted: list[Desired], pmap: Map,
              read: Callable[[GrafanaClient, str], Any]) -> dict[str, Any]:
    """`read(client, uid)` for every wanted resource, concurrently: uid -> what Grafana holds
    (None when absent, a ReadFailure when refused)."""
    return dict(pmap(lambda d: (d.uid, guarded(lambda: read(client, d.uid))), wanted))
