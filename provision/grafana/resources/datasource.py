"""The Prometheus data source the dashboards default to, when grafana.datasource.manage is on.

Only the settings relaywatch owns are compared and written (name, type, access,
url, and the scrape interval and HTTP method in jsonData); everything else a
person set in Grafana (auth, TLS, other jsonData) is kept, because PUT replaces
the whole data source. Left alone entirely when manage is off.
"""

from __future__ import annotations

from typing import Any

from provision.build import BuildResult
from provision.config import Config
from provision.grafana.client import GrafanaClient, GrafanaError
from provision.grafana.resources.base import (
    CREATE, DONE, FAILED, UNCHANGED, UPDATE, Action, Desired, Kind, Map, Outcome, ReadFailure, RunOptions, read_each,
)

KIND = "datasource"
OWNED = ("name", "type", "access", "url")
# Fields of the GET answer that a PUT must not send back.
READ_ONLY = ("id", "orgId", "typeLogoUrl", "typeName", "secureJsonFields", "readOnly")


def desired(build: BuildResult, config: Config) -> list[Desired]:
    ds = config.grafana["datasource"]
    if not ds.get("manage"):
        return []
    body = {
        "uid": ds["uid"],
        "name": ds["name"],
        "type": "prometheus",
        "access": "proxy",
        "url": ds["url"],
        # Grafana's $__rate_interval needs the real scrape interval to pick safe windows.
        "jsonData": {"httpMethod": "POST", "timeInterval": config.data["scrape_interval"]},
    }
    return [Desired(KIND, ds["uid"], ds["name"], body)]


def fetch(client: GrafanaClient, wanted: list[Desired], options: RunOptions, pmap: Map) -> dict[str, Any]:
    return read_each(client, wanted, pmap, _read)


def _read(client: GrafanaClient, uid: str) -> dict | None:
    return client.get_or_none(f"/api/datasources/uid/{uid}")


def plan(wanted: list[Desired], current: dict[str, Any], options: RunOptions) -> list[Action]:
    return [_plan_one(d, current.get(d.uid)) for d in wanted]


def _plan_one(d: Desired, stored: dict | ReadFailure | None) -> Action:
    if isinstance(stored, ReadFailure):
        return Action(KIND, d.uid, d.name, FAILED, f"cannot read it: {stored.reason}", desired=d)
    if stored is None:
        return Action(KIND, d.uid, d.name, CREATE, desired=d)
    changes = _changes(d.body, stored)
    if changes and stored.get("readOnly"):
        return Action(KIND, d.uid, d.name, FAILED,
                      f"differs ({', '.join(changes)}) but is provisioned read-only from a file in Grafana: "
                      "change it there, or set grafana.datasource.manage: false", desired=d, current=stored)
    return Action(KIND, d.uid, d.name, UPDATE if changes else UNCHANGED,
                  f"changed: {', '.join(changes)}" if changes else "", desired=d, current=stored,
                  version=stored.get("version"))


def _changes(want: dict, stored: dict) -> list[str]:
    changes = [key for key in OWNED if stored.get(key) != want[key]]
    stored_json = stored.get("jsonData") or {}
    changes += [f"jsonData.{key}" for key, value in want["jsonData"].items() if stored_json.get(key) != value]
    return changes


def apply(client: GrafanaClient, action: Action, options: RunOptions) -> Outcome:
    want = action.desired.body
    try:
        if action.op == CREATE:
            return _create(client, action, want)
        body = {k: v for k, v in (action.current or {}).items() if k not in READ_ONLY}
        body.update({k: want[k] for k in OWNED})
        body["jsonData"] = {**(action.current or {}).get("jsonData", {}), **want["jsonData"]}
        body["version"] = action.version
        saved = client.put(f"/api/datasources/uid/{action.uid}", body)
        return Outcome(action, DONE[UPDATE], action.reason, _version(saved))
    except GrafanaError as exc:
        return Outcome(action, DONE[FAILED], _failure(exc, want))


def _create(client: GrafanaClient, action: Action, want: dict) -> Outcome:
    try:
        saved = client.post("/api/datasources", want)
    except GrafanaError as exc:
        if exc.status != 409:
            raise
        existing = _read(client, action.uid)  # a retried create whose first answer was lost?
        if existing is None or _changes(want, existing):
            raise
        saved = {"datasource": existing}
    return Outcome(action, DONE[CREATE], action.reason, _version(saved))


def _version(saved: Any) -> int | None:
    datasource = saved.get("datasource") if isinstance(saved, dict) else None
    return datasource.get("version") if isinstance(datasource, dict) else None


def _failure(exc: GrafanaError, want: dict) -> str:
    if exc.status == 409 and "name" in exc.message:
        return (f"{exc}: another data source is already named {want['name']!r}; set grafana.datasource.uid to "
                "its uid, or pick another grafana.datasource.name")
    if exc.status == 409:
        return f"{exc}: changed in Grafana during the push; run push again"
    if exc.status == 403:
        return f"{exc}: managing data sources needs the Admin role (datasources:create / datasources:write)"
    return str(exc)


DATASOURCE = Kind(KIND, desired, fetch, plan, apply)
