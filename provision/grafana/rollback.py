"""Rollback through Grafana's versions API, made safe: the target is checked, the
default target is derived from relaywatch's own writes, and nothing is written
when there is nothing to undo."""

from __future__ import annotations

from dataclasses import dataclass

from provision.grafana.client import GrafanaClient, GrafanaError
from provision.grafana.resources.dashboard import get_dashboard, normalise
from provision.grafana.versions import NoRollbackTarget, Version, default_rollback_target, get_version, list_versions


@dataclass(frozen=True)
class Rollback:
    uid: str
    current_version: int
    current: dict  # the dashboard JSON as Grafana holds it now
    target: Version
    target_data: dict  # the dashboard JSON of the target version

    @property
    def changes_content(self) -> bool:
        return normalise(self.current) != normalise(self.target_data)


def plan_rollback(client: GrafanaClient, uid: str, to_version: int | None = None) -> Rollback:
    stored = get_dashboard(client, uid)
    if stored is None:
        raise NoRollbackTarget(f"dashboard {uid}: not found in Grafana")
    current, current_version = stored.dashboard, int(stored.version or 0)
    if to_version is None:
        _, target = default_rollback_target(uid, list_versions(client, uid))
    elif to_version == current_version:
        raise NoRollbackTarget(f"dashboard {uid}: version {to_version} is the current version")
    else:
        target = Version(to_version, "", "", "")
    try:
        found, data = get_version(client, uid, target.version)
    except GrafanaError as exc:
        if exc.status in (404, 500):  # Grafana 11 answers a missing version with 500
            raise NoRollbackTarget(f"dashboard {uid}: Grafana has no version {target.version} ({exc.message}); "
                                   f"see provision history {uid}") from None
        raise
    if data is None:
        raise NoRollbackTarget(f"dashboard {uid}: Grafana returned no content for version {target.version}")
    return Rollback(uid, current_version, current, found if found.version else target, data)


def restore(client: GrafanaClient, rollback: Rollback) -> int | None:
    """POST .../restore; returns the new version number."""
    saved = client.post(f"/api/dashboards/uid/{rollback.uid}/restore", {"version": rollback.target.version})
    return saved.get("version") if isinstance(saved, dict) else None
