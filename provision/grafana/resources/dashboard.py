"""Dashboards: upserted into the managed folder, never clobbering someone else's change.

Reads: one search (paged) for the managed dashboards in the managed folder, one
search by uid for built dashboards it did not list (none on a repeat push), a GET
per built dashboard that exists (and per prune candidate with --prune), and the
latest version's record only for dashboards whose content differs from the build.

Equal after normalisation (volatile fields dropped) means no write. A
difference is relaywatch's to fix only if Grafana's latest version was written
by relaywatch push (its commit message says so); otherwise the dashboard has
drifted and is left alone unless --force. When the latest version is ours and
recorded the very content we would send, Grafana rewrote parts of it on save:
nothing to do either (this keeps a second push write-free on any Grafana).
Updates send the version read, with overwrite off, so a save that lands in
between is refused by Grafana (412) instead of overwritten.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass, field
from provision.build import BuildResult, dashboard_text
from provision.config import Config
from provision.grafana.client import GrafanaClient, GrafanaError
from provision.grafana.resources.base import (
    CREATE, DELETE, DONE, DRIFTED, FAILED, UNCHANGED, UPDATE, Action, Desired, Kind, Map, Outcome, ReadFailure,
    RunOptions, guarded,
)
from provision.grafana.versions import Version, current_version, push_message, pushed_digest

KIND = "dashboard"
# Fields Grafana sets on every save; they say nothing about the content.
VOLATILE = ("id", "version", "iteration")
SEARCH_PAGE = 1000
UID_CHUNK = 50  # uids per search by uid: keeps the URL short


def normalise(dashboard: dict) -> dict:
    return {k: v for k, v in dashboard.items() if k not in VOLATILE}


def content_digest(dashboard: dict) -> str:
    canonical = json.dumps(normalise(dashboard), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def export_text(dashboard: dict) -> str:
    """A stored dashboard as relaywatch writes its own: normalised, sorted keys."""
    return dashboard_text(normalise(dashboard))


@dataclass(frozen=True)
class Stored:
    """A dashboard as Grafana holds it; `latest` (its current version's record) is read
    only when it is needed to decide between update and drift."""

    dashboard: dict
    meta: dict
    latest: Version | None = None

    @property
    def folder_uid(self) -> str | None:
        """"" for the General folder; None when Grafana does not say (a meta without folderUid
        for a dashboard in a folder)."""
        uid = self.meta.get("folderUid")
        if isinstance(uid, str):
            return uid
        return "" if not self.meta.get("folderId") else None

    def moved_from(self, folder_uid: str) -> bool:
        return self.folder_uid is not None and self.folder_uid != folder_uid

    @property
    def version(self) -> int | None:
        return self.meta.get("version") or self.dashboard.get("version")

    def managed(self, options: RunOptions) -> bool:
        # strict: prune deletes only what is known to be in the managed folder
        return self.folder_uid == options.folder_uid and options.managed_tag in (self.dashboard.get("tags") or [])


@dataclass
class State:
    stored: dict[str, Stored | ReadFailure | None]  # by uid; None: not in Grafana
    stale: dict[str, str] = field(default_factory=dict)  # uid -> title: managed here, no longer built


def desired(build: BuildResult, config: Config) -> list[Desired]:
    folder = config.grafana["folder"]["uid"]
    return [Desired(KIND, uid, board.get("title", uid), board, folder) for uid, board in build.dashboards.items()]


# -- reads ---------------------------------------------------------------------


def fetch(client: GrafanaClient, wanted: list[Desired], options: RunOptions, pmap: Map) -> State:
    built = {d.uid: d for d in wanted}
    managed = {hit["uid"]: hit.get("title", hit["uid"]) for hit in search_managed(client, options)}
    stale = {uid: title for uid, title in managed.items() if uid not in built}
    # A built uid can also exist outside the managed folder or without the tag (moved by
    # hand, or the folder setting changed): ask for those by uid, so the plan is right.
    elsewhere = search_uids(client, [uid for uid in built if uid not in managed])
    to_read = [uid for uid in built if uid in managed or uid in elsewhere] + (sorted(stale) if options.prune else [])
    stored: dict[str, Stored | ReadFailure | None] = dict.fromkeys(built)
    stored.update(pmap(lambda uid: (uid, guarded(lambda: _read(client, uid, built.get(uid), options))), to_read))
    return State(stored, stale)


def search_managed(client: GrafanaClient, options: RunOptions) -> list[dict]:
    """Dashboards with the managed tag in the managed folder, all pages. The folder is
    checked here too: Grafana before folderUIDs existed ignores that parameter."""
    hits: dict[str, dict] = {}
    page = 1
    while True:
        batch = client.get("/api/search", {"type": "dash-db", "tag": options.managed_tag,
                                           "folderUIDs": options.folder_uid, "limit": SEARCH_PAGE, "page": page})
        batch = [h for h in batch or [] if isinstance(h, dict) and h.get("uid")]
        new = [h for h in batch if h["uid"] not in hits]
        hits.update((h["uid"], h) for h in new)
        if len(batch) < SEARCH_PAGE or not new:  # last page, or a server that ignores `page`
            break
        page += 1
    return [h for h in hits.values() if h.get("type", "dash-db") == "dash-db"
            and h.get("folderUid", options.folder_uid) == options.folder_uid
            and options.managed_tag in (h.get("tags") or [])]


def search_uids(client: GrafanaClient, uids: list[str]) -> set[str]:
    """Which of `uids` exist as dashboards, anywhere: one search per UID_CHUNK uids."""
    found: set[str] = set()
    for start in range(0, len(uids), UID_CHUNK):
        chunk = uids[start:start + UID_CHUNK]
        hits = client.get("/api/search", {"type": "dash-db", "dashboardUIDs": chunk, "limit": SEARCH_PAGE})
        found |= {h.get("uid") for h in hits or [] if isinstance(h, dict)} & set(chunk)
    return found


def get_dashboard(client: GrafanaClient, uid: str) -> Stored | None:
    body = client.get_or_none(f"/api/dashboards/uid/{uid}")
    if not isinstance(body, dict) or not isinstance(body.get("dashboard"), dict):
        return None
    return Stored(body["dashboard"], body.get("meta") or {})


def _read(client: GrafanaClient, uid: str, want: Desired | None, options: RunOptions) -> Stored | None:
    stored = get_dashboard(client, uid)
    if stored is None:
        return None
    needs_history = (not _matches(want, stored)) if want else stored.managed(options)
    if needs_history and stored.version:
        return Stored(stored.dashboard, stored.meta, current_version(client, uid, stored.version))
    return stored


def _matches(want: Desired, stored: Stored) -> bool:
    return not stored.moved_from(want.folder_uid) and normalise(stored.dashboard) == normalise(want.body)


# -- plan ----------------------------------------------------------------------


def plan(wanted: list[Desired], state: State, options: RunOptions) -> list[Action]:
    actions = [_plan_built(d, state.stored.get(d.uid), options) for d in wanted]
    for uid, title in sorted(state.stale.items()):
        if not options.prune:
            actions.append(Action(KIND, uid, title, UNCHANGED, "no longer built; push --prune deletes it"))
            continue
        action = _plan_prune(uid, title, state.stored.get(uid), options)
        if action:
            actions.append(action)
    return actions


def _plan_built(d: Desired, stored: Stored | ReadFailure | None, options: RunOptions) -> Action:
    def act(op: str, reason: str = "") -> Action:
        current = stored if isinstance(stored, Stored) else None
        return Action(KIND, d.uid, d.name, op, reason, desired=d, current=current,
                      version=current.version if current else None, needs=(f"folder:{d.folder_uid}",))

    if isinstance(stored, ReadFailure):
        return act(FAILED, f"cannot read it: {stored.reason}")
    if stored is None:
        return act(CREATE)
    if _matches(d, stored):
        return act(UNCHANGED)
    if stored.meta.get("provisioned"):
        return act(FAILED, "provisioned from a file by Grafana itself, which refuses API changes; "
                           "remove it from Grafana's provisioning or pick another uid")
    moved = stored.moved_from(d.folder_uid)
    latest = stored.latest
    if latest and latest.by_push:
        if pushed_digest(latest.message) == content_digest(d.body) and not moved:
            return act(UNCHANGED)  # what we sent last time; Grafana reworded it on save
        return act(UPDATE, _what_changed(d, stored))
    change = _last_change(latest)
    if options.force:
        return act(UPDATE, f"forced over a change made in Grafana ({change})")
    return act(DRIFTED, f"changed in Grafana since relaywatch pushed it ({change}); `provision diff` shows how, "
                        "`provision push --force` overwrites it")


def _plan_prune(uid: str, title: str, stored: Stored | ReadFailure | None, options: RunOptions) -> Action | None:
    if isinstance(stored, ReadFailure):
        return Action(KIND, uid, title, FAILED, f"cannot read it: {stored.reason}")
    if stored is None or not stored.managed(options):
        return None  # gone, or the search index was behind: not ours to delete
    if stored.meta.get("provisioned"):
        return Action(KIND, uid, title, FAILED, "no longer built, but provisioned from a file by Grafana itself",
                      current=stored)
    if (stored.latest and stored.latest.by_push) or options.force:
        return Action(KIND, uid, title, DELETE, "no longer built", current=stored, version=stored.version)
    return Action(KIND, uid, title, DRIFTED,
                  f"no longer built, but changed in Grafana since relaywatch pushed it ({_last_change(stored.latest)}); "
                  "push --prune --force deletes it anyway", current=stored)


def _last_change(latest: Version | None) -> str:
    if latest is None:
        return "its history could not be read"
    message = f": {latest.message!r}" if latest.message else ""
    return f"version {latest.version} saved by {latest.who()}{message}"


def _what_changed(d: Desired, stored: Stored) -> str:
    have, want = normalise(stored.dashboard), normalise(d.body)
    keys = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
    parts = [f"changed {', '.join(keys)}"] if keys else []
    if stored.moved_from(d.folder_uid):
        parts.append(f"moved from folder {stored.folder_uid or '(General)'} to {d.folder_uid or '(General)'}")
    return "; ".join(parts)


def json_diff(old: dict, new: dict, old_name: str, new_name: str) -> str:
    """Unified diff of two dashboards' normalised JSON."""
    lines = difflib.unified_diff(export_text(old).splitlines(keepends=True), export_text(new).splitlines(keepends=True),
                                 old_name, new_name)
    return "".join(lines)


def diff(action: Action) -> str:
    """Grafana's copy -> the build, for updates and drift."""
    if action.op not in (UPDATE, DRIFTED) or not action.current or not action.desired:
        return ""
    stored = action.current
    text = json_diff(stored.dashboard, action.desired.body, f"grafana/{action.uid}.json", f"build/{action.uid}.json")
    if stored.moved_from(action.desired.folder_uid):
        text = f"folder: {stored.folder_uid or '(General)'} -> {action.desired.folder_uid or '(General)'}\n" + text
    return text


# -- apply ---------------------------------------------------------------------


def apply(client: GrafanaClient, action: Action, options: RunOptions) -> Outcome:
    try:
        if action.op == DELETE:
            return _delete(client, action)
        return _save(client, action, options)
    except GrafanaError as exc:
        return Outcome(action, DONE[FAILED], _failure(exc, options.folder_uid))


def _save(client: GrafanaClient, action: Action, options: RunOptions) -> Outcome:
    want = action.desired
    digest = content_digest(want.body)
    board = normalise(want.body)
    if action.op == UPDATE:
        board["version"] = action.version
    payload = {"dashboard": board, "folderUid": want.folder_uid, "overwrite": False,
               "message": push_message(options.revision, digest)}
    try:
        saved = client.post("/api/dashboards/db", payload)
    except GrafanaError as exc:
        if exc.status == 409 or exc.status_text == "version-mismatch":
            return _after_conflict(client, action, digest, options)
        raise
    return Outcome(action, DONE[action.op], action.reason, saved.get("version") if isinstance(saved, dict) else None)


def _after_conflict(client: GrafanaClient, action: Action, digest: str, options: RunOptions) -> Outcome:
    """Grafana refused the save because its copy moved on. If what it holds now is what
    we sent, our own earlier attempt landed (a retry after a lost answer): done."""
    stored = _read(client, action.uid, action.desired, options)
    if stored is not None and (_matches(action.desired, stored) or (
            stored.latest and pushed_digest(stored.latest.message) == digest)):
        return Outcome(action, DONE[action.op], action.reason, stored.version)
    change = f" ({_last_change(stored.latest)})" if stored is not None and stored.latest else ""
    return Outcome(action, DONE[DRIFTED], f"changed in Grafana during the push{change}; Grafana refused to "
                                          "overwrite it (version conflict): run push again to re-check")


def _delete(client: GrafanaClient, action: Action) -> Outcome:
    try:
        client.delete(f"/api/dashboards/uid/{action.uid}")
    except GrafanaError as exc:
        if exc.status != 404:  # already gone is what we wanted
            raise
    return Outcome(action, DONE[DELETE], action.reason)


def _failure(exc: GrafanaError, folder: str) -> str:
    if exc.status == 403:
        return (f"{exc}: the service account needs the Editor role on folder {folder or '(General)'} "
                "(dashboards:create, dashboards:write, dashboards:delete)")
    if exc.status == 400 and "folder not found" in exc.message.lower():
        return f"{exc}: folder {folder!r} does not exist in Grafana"
    if exc.status_text == "name-exists":
        return f"{exc}: another dashboard in folder {folder} has the same title (Grafana before 11.3)"
    return str(exc)


DASHBOARD = Kind(KIND, desired, fetch, plan, apply, diff)
