"""Planning (pure) and applying (ordering, bounded concurrency) without a Grafana."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from provision.apply import apply_plan
from provision.grafana.resources import dashboard
from provision.grafana.resources.base import Action, Desired, Kind, Outcome, ReadFailure, RunOptions
from provision.grafana.resources.dashboard import State, Stored, content_digest
from provision.grafana.versions import (
    NoRollbackTarget, Version, default_rollback_target, push_message, pushed_digest, written_by_push,
)
from provision.plan import Plan

OPTIONS = RunOptions(folder_uid="rw", managed_tag="relaywatch", revision="abc")
BOARD = {"uid": "d1", "title": "One", "tags": ["relaywatch"], "refresh": "30s", "panels": []}
WANT = Desired("dashboard", "d1", "One", BOARD, "rw")


def _stored(board=None, *, folder="rw", latest=None, **meta):
    board = dict(board or BOARD, id=12, version=4)
    return Stored(board, {"folderUid": folder, "version": 4, **meta}, latest)


def _version(message, by="alice"):
    return Version(4, "2026-01-01T00:00:00Z", by, message)


def _plan(stored, options=OPTIONS, stale=None):
    return dashboard.plan([WANT], State({"d1": stored, **(stale or {})}, {k: k for k in stale or {}}), options)


def test_equal_after_dropping_volatile_fields_is_unchanged():
    [action] = _plan(_stored())
    assert action.op == "unchanged" and action.version == 4


def test_new_dashboard_is_created_after_its_folder():
    [action] = _plan(None)
    assert action.op == "create" and action.needs == ("folder:rw",)


def test_a_difference_written_by_relaywatch_is_an_update():
    ours = _version(push_message("old", content_digest({**BOARD, "refresh": "5m"})), by="ci")
    [action] = _plan(_stored({**BOARD, "refresh": "5m"}, latest=ours))
    assert (action.op, action.reason, action.version) == ("update", "changed refresh", 4)


def test_grafana_rewording_what_we_sent_is_not_a_change():
    ours = _version(push_message("old", content_digest(BOARD)), by="ci")
    [action] = _plan(_stored({**BOARD, "refresh": "1m"}, latest=ours))  # e.g. min_refresh_interval raised it
    assert action.op == "unchanged"


def test_a_difference_by_someone_else_is_drift_unless_forced():
    theirs = _version("fixed a typo")
    [drifted] = _plan(_stored({**BOARD, "title": "Typo"}, latest=theirs))
    [forced] = _plan(_stored({**BOARD, "title": "Typo"}, latest=theirs), RunOptions("rw", "relaywatch", "abc",
                                                                                      force=True))
    assert drifted.op == "drifted" and "alice" in drifted.reason and "'fixed a typo'" in drifted.reason
    assert forced.op == "update" and "forced" in forced.reason


def test_moved_out_of_the_folder_by_relaywatch_config_is_moved_back():
    ours = _version(push_message("old", content_digest(BOARD)), by="ci")
    [action] = _plan(_stored(folder="elsewhere", latest=ours))
    assert action.op == "update" and "moved from folder elsewhere to rw" in action.reason


def test_provisioned_and_unreadable_dashboards_fail():
    [provisioned] = _plan(_stored({**BOARD, "title": "x"}, provisioned=True, latest=_version("")))
    [unreadable] = _plan(ReadFailure("403 Access denied"))
    assert provisioned.op == "failed" and "provisioned" in provisioned.reason
    assert unreadable.op == "failed" and "403 Access denied" in unreadable.reason


def test_stale_dashboards_are_listed_and_only_pruned_when_ours():
    managed = {"tags": ["relaywatch"], "title": "Old"}
    ours = _version(push_message("old", "0" * 16), by="ci")
    cases = {
        "kept": (OPTIONS, _stored(managed, latest=ours), "unchanged"),
        "ours": (RunOptions("rw", "relaywatch", "abc", prune=True), _stored(managed, latest=ours), "delete"),
        "theirs": (RunOptions("rw", "relaywatch", "abc", prune=True), _stored(managed, latest=_version("")),
                   "drifted"),
        "forced": (RunOptions("rw", "relaywatch", "abc", prune=True, force=True),
                   _stored(managed, latest=_version("")), "delete"),
    }
    for name, (options, stored, op) in cases.items():
        actions = _plan(_stored(), options, stale={"old": stored})
        assert [a.op for a in actions if a.uid == "old"] == [op], name
    untagged = _stored({"tags": []}, latest=ours)
    moved = _stored(managed, folder="other", latest=ours)
    for stored in (untagged, moved, None):
        actions = _plan(_stored(), RunOptions("rw", "relaywatch", "abc", prune=True, force=True),
                        stale={"old": stored})
        assert [a.uid for a in actions] == ["d1"]


def test_diff_is_a_unified_diff_of_normalised_json():
    theirs = _version("")
    [action] = _plan(_stored({**BOARD, "refresh": "5m"}, latest=theirs))
    text = dashboard.diff(action)
    assert text.startswith("--- grafana/d1.json\n+++ build/d1.json\n")
    assert '-  "refresh": "5m",\n+  "refresh": "30s",' in text
    assert '"version"' not in text and '"id"' not in text


def test_marker_parsing():
    message = push_message("v1.2-3-gabc", "0123456789abcdef")
    assert written_by_push(message) and pushed_digest(message) == "0123456789abcdef"
    assert not written_by_push("Initial save") and pushed_digest("relaywatch rollback") is None
    assert not written_by_push(None)


def test_default_rollback_target():
    versions = [Version(5, "", "alice", "typo"), Version(4, "", "ci", push_message("b", "1" * 16)),
                Version(3, "", "ci", push_message("a", "2" * 16)), Version(1, "", "ci", "Initial save")]
    last_push, target = default_rollback_target("d", versions)
    assert (last_push.version, target.version) == (4, 3)
    with pytest.raises(NoRollbackTarget, match="no relaywatch push after its first version"):
        default_rollback_target("d", [Version(2, "", "a", "x"), Version(1, "", "a", "Initial save")])
    with pytest.raises(NoRollbackTarget, match="no earlier version"):
        default_rollback_target("d", [Version(3, "", "a", push_message("a", "2" * 16)), Version(4, "", "a", "x")][::-1])
    with pytest.raises(NoRollbackTarget, match="single version"):
        default_rollback_target("d", [Version(1, "", "a", "Initial save")])


def _fake_kind(name, log, lock, active, delay=0.02):
    def apply(client, action, options):
        with lock:
            active[0] += 1
            active[1] = max(active[1], active[0])
            log.append((name, action.uid))
        time.sleep(delay)
        with lock:
            active[0] -= 1
        return Outcome(action, "failed" if action.uid == "bad" else "created")

    return Kind(name, desired=None, fetch=None, plan=None, apply=apply)


def test_apply_runs_kinds_in_order_with_bounded_concurrency_and_skips_dependants():
    log, lock, active = [], threading.Lock(), [0, 0]
    kinds = [_fake_kind("folder", log, lock, active), _fake_kind("dashboard", log, lock, active)]
    actions = [Action("folder", "bad", "bad", "create"), Action("folder", "good", "good", "create")]
    actions += [Action("dashboard", f"d{n}", "d", "create", needs=("folder:good",)) for n in range(8)]
    actions += [Action("dashboard", "orphan", "o", "create", needs=("folder:bad",)),
                Action("dashboard", "same", "s", "unchanged", needs=("folder:bad",))]
    with ThreadPoolExecutor(max_workers=3) as pool:
        outcomes = apply_plan(None, kinds, Plan(actions), OPTIONS, pool)

    assert [o.action.uid for o in outcomes] == [a.uid for a in actions]
    assert {o.action.uid: o.status for o in outcomes}["orphan"] == "failed"
    assert "folder bad failed" in outcomes[-2].reason
    assert outcomes[-1].status == "unchanged"
    assert active[1] <= 3
    assert [kind for kind, _ in log[:2]] == ["folder", "folder"]
    assert {uid for _, uid in log} == {"bad", "good", *(f"d{n}" for n in range(8))}  # orphan was never sent


def test_a_meta_without_folder_uid_is_not_a_move_and_not_prunable():
    unknown = Stored(dict(BOARD, id=1, version=4), {"folderId": 7, "version": 4})
    root = Stored(dict(BOARD, id=1, version=4), {"folderId": 0, "version": 4})
    assert unknown.folder_uid is None and root.folder_uid == ""
    [action] = dashboard.plan([WANT], State({"d1": unknown}), OPTIONS)
    assert action.op == "unchanged"
    prune = RunOptions("rw", "relaywatch", "abc", prune=True, force=True)
    stale = Stored({"tags": ["relaywatch"]}, {"folderId": 7, "version": 2}, _version(push_message("a", "0" * 16)))
    actions = dashboard.plan([WANT], State({"d1": _stored(), "old": stale}, {"old": "Old"}), prune)
    assert [a.uid for a in actions] == ["d1"]
