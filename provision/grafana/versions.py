"""Dashboard versions: relaywatch's commit-message marker, history, rollback targets.

relaywatch keeps no local state. Every dashboard it writes carries a commit
message `relaywatch push rev=<git rev> content=sha256:<digest>`; Grafana keeps
that message with the version. Whoever pushes next, from whatever machine,
reads the latest version's message to learn whether relaywatch wrote it (and
which content it sent) or somebody else changed the dashboard since.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from provision.grafana.client import GrafanaClient, GrafanaError

PUSH_PREFIX = "relaywatch push"
_PUSH = re.compile(r"^relaywatch push\b")
_DIGEST = re.compile(r"\bcontent=sha256:([0-9a-f]{8,64})\b")
PAGE_SIZE = 100


def push_message(revision: str, digest: str) -> str:
    return f"{PUSH_PREFIX} rev={revision} content=sha256:{digest}"


def written_by_push(message: str | None) -> bool:
    return bool(message and _PUSH.match(message))


def pushed_digest(message: str | None) -> str | None:
    """The content digest a relaywatch push recorded in its message, if any."""
    if not written_by_push(message):
        return None
    found = _DIGEST.search(message or "")
    return found.group(1) if found else None


@dataclass(frozen=True)
class Version:
    version: int
    created: str
    created_by: str
    message: str
    parent_version: int = 0
    restored_from: int = 0

    @classmethod
    def from_api(cls, item: dict[str, Any]) -> Version:
        return cls(
            version=int(item.get("version") or 0),
            created=str(item.get("created") or ""),
            created_by=str(item.get("createdBy") or ""),
            message=str(item.get("message") or ""),
            parent_version=int(item.get("parentVersion") or 0),
            restored_from=int(item.get("restoredFrom") or 0),
        )

    @property
    def reworded(self) -> bool:
        """Whether Grafana's versions list shows another message than the one saved."""
        return self.parent_version == 0 or self.restored_from != 0

    @property
    def by_push(self) -> bool:
        return written_by_push(self.message)

    def who(self) -> str:
        return f"{self.created_by or 'someone'} at {self.created or 'an unknown time'}"


def list_versions(client: GrafanaClient, uid: str, limit: int = 1000) -> list[Version]:
    """Up to `limit` versions, newest first. Grafana 10/11 answer with a JSON array
    (paged by limit/start); Grafana 12 with {"versions": [...], "continueToken": ...}."""
    path = f"/api/dashboards/uid/{uid}/versions"
    found: list[Version] = []
    params: dict[str, Any] = {"limit": min(PAGE_SIZE, limit)}
    while len(found) < limit:
        body = client.get(path, params)
        items, token = _version_items(body)
        found += [Version.from_api(item) for item in items if isinstance(item, dict)]
        if token:
            params = {"limit": min(PAGE_SIZE, limit - len(found)), "continueToken": token}
        elif isinstance(body, list) and len(items) == params["limit"]:
            params = {"limit": min(PAGE_SIZE, limit - len(found)), "start": len(found)}
        else:
            break
    unique = {v.version: v for v in found}
    return sorted(unique.values(), key=lambda v: v.version, reverse=True)[:limit]


def _version_items(body: Any) -> tuple[list, str]:
    if isinstance(body, list):
        return body, ""
    if isinstance(body, dict):
        return list(body.get("versions") or []), str(body.get("continueToken") or "")
    return [], ""


def get_version(client: GrafanaClient, uid: str, version: int) -> tuple[Version, dict | None]:
    """One version with its unaltered message (the list rewrites some, e.g. "Initial save")
    and its dashboard JSON."""
    body = client.get(f"/api/dashboards/uid/{uid}/versions/{version}")
    body = body if isinstance(body, dict) else {}
    data = body.get("data")
    return Version.from_api(body), data if isinstance(data, dict) else None


def current_version(client: GrafanaClient, uid: str, version: int) -> Version:
    """The record of a dashboard's current `version`, its message as written: one request.

    A list request (newest first, no dashboard JSON) answers for later versions. Grafana
    shows every first save as "Initial save" in that list, whatever its message was, so
    version 1 (and a listed entry Grafana reworded) is read on its own.
    """
    entry = None if version == 1 else _listed(client, uid, version)
    if entry and not entry.reworded:
        return entry
    try:
        return get_version(client, uid, version)[0]
    except GrafanaError as exc:
        if exc.status in (404, 405, 500, 501):  # no single-version endpoint: the list will do
            entry = entry or _listed(client, uid, version)
            if entry:
                return entry
        raise


def _listed(client: GrafanaClient, uid: str, version: int) -> Version | None:
    listed = list_versions(client, uid, limit=1)
    return listed[0] if listed and listed[0].version == version else None


class NoRollbackTarget(Exception):
    """No version to roll back to; the message says why and what to do."""


def default_rollback_target(uid: str, versions: list[Version]) -> tuple[Version, Version]:
    """(the last relaywatch push, the version before it) from a newest-first list."""
    if len(versions) < 2:
        raise NoRollbackTarget(f"dashboard {uid}: it has a single version; nothing to roll back to")
    pushes = [v for v in versions if v.by_push]
    if not pushes:
        raise NoRollbackTarget(
            f"dashboard {uid}: no relaywatch push after its first version, so there is no default to roll "
            f"back to; pick one with --to-version N (see provision history {uid})"
        )
    last_push = pushes[0]
    earlier = [v for v in versions if v.version < last_push.version]
    if not earlier:
        raise NoRollbackTarget(
            f"dashboard {uid}: relaywatch's last write is version {last_push.version} and no earlier version "
            f"is kept; nothing to roll back to"
        )
    return last_push, earlier[0]
