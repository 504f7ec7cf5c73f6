"""The managed folder (grafana.folder): created with its parent for nested folders,
renamed and moved back when its title or parent differ from the config."""

from __future__ import annotations

from typing import Any

from provision.build import BuildResult
from provision.config import Config
from provision.grafana.client import GrafanaClient, GrafanaError
from provision.grafana.resources.base import (
    CREATE, DONE, FAILED, UNCHANGED, UPDATE, Action, Desired, Kind, Map, Outcome, ReadFailure, RunOptions, read_each,
)

KIND = "folder"


def desired(build: BuildResult, config: Config) -> list[Desired]:
    folder = config.grafana["folder"]
    body = {"uid": folder["uid"], "title": folder["title"], "parentUid": folder.get("parent_uid") or ""}
    return [Desired(KIND, folder["uid"], folder["title"], body)]


def fetch(client: GrafanaClient, wanted: list[Desired], options: RunOptions, pmap: Map) -> dict[str, Any]:
    return read_each(client, wanted, pmap, _read)


def _read(client: GrafanaClient, uid: str) -> dict | None:
    return client.get_or_none(f"/api/folders/{uid}")


def plan(wanted: list[Desired], current: dict[str, Any], options: RunOptions) -> list[Action]:
    return [_plan_one(d, current.get(d.uid)) for d in wanted]


def _plan_one(d: Desired, stored: dict | ReadFailure | None) -> Action:
    if isinstance(stored, ReadFailure):
        return Action(KIND, d.uid, d.name, FAILED, f"cannot read it: {stored.reason}", desired=d)
    if stored is None:
        where = f"in folder {d.body['parentUid']}" if d.body["parentUid"] else ""
        return Action(KIND, d.uid, d.name, CREATE, where, desired=d)
    changes = _changes(d.body, stored)
    return Action(KIND, d.uid, d.name, UPDATE if changes else UNCHANGED, "; ".join(changes), desired=d,
                  current=stored, version=stored.get("version"))


def _changes(want: dict, stored: dict) -> list[str]:
    changes = []
    if stored.get("title") != want["title"]:
        changes.append(f"title {stored.get('title')!r} -> {want['title']!r}")
    if _parent(stored) != want["parentUid"]:
        changes.append(f"parent {_parent(stored) or '(root)'} -> {want['parentUid'] or '(root)'}")
    return changes


def _parent(stored: dict) -> str:
    return stored.get("parentUid") or ""


def apply(client: GrafanaClient, action: Action, options: RunOptions) -> Outcome:
    want = action.desired.body
    try:
        if action.op == CREATE:
            return _create(client, action, want)
        stored = action.current or {}
        saved = stored
        if stored.get("title") != want["title"]:
            saved = client.put(f"/api/folders/{action.uid}",
                               {"title": want["title"], "version": action.version, "overwrite": False})
        if _parent(stored) != want["parentUid"]:
            saved = client.post(f"/api/folders/{action.uid}/move", {"parentUid": want["parentUid"]})
        return Outcome(action, DONE[UPDATE], action.reason, _version(saved))
    except GrafanaError as exc:
        return Outcome(action, DONE[FAILED], _failure(exc, want))


def _create(client: GrafanaClient, action: Action, want: dict) -> Outcome:
    body = {"uid": want["uid"], "title": want["title"]}
    if want["parentUid"]:
        body["parentUid"] = want["parentUid"]
    try:
        saved = client.post("/api/folders", body)
    except GrafanaError as exc:
        if exc.status not in (409, 412):
            raise
        # Exists after all: created by a retried request whose answer was lost, or by someone meanwhile.
        saved = _read(client, action.uid)
        if saved is None or _changes(want, saved):
            raise
    return Outcome(action, DONE[CREATE], action.reason, _version(saved))


def _version(saved: Any) -> int | None:
    return saved.get("version") if isinstance(saved, dict) else None


def _failure(exc: GrafanaError, want: dict) -> str:
    if exc.status == 404 and want["parentUid"]:
        return f"{exc}: parent folder {want['parentUid']!r} (grafana.folder.parent_uid) does not exist"
    if exc.status == 403:
        return f"{exc}: the service account needs folders:create / folders:write (Editor) where the folder lives"
    return str(exc)


FOLDER = Kind(KIND, desired, fetch, plan, apply)
