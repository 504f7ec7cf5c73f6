"""history, rollback and pull through the real CLI, on Grafana 11 and 12 answer shapes."""

from __future__ import annotations

import json

import pytest
from grafana_emulator import GrafanaEmulator
from push_support import TOKEN, grafana, project, status_of, writes  # noqa: F401 - fixtures

UID = "llm-gateway-overview"


@pytest.fixture(params=["11.5.0", "12.1.0"], ids=["grafana11-array", "grafana12-envelope"])
def versioned(request, project):
    """The project aimed at an emulator answering the versions list as Grafana 11 or 12 does."""
    with GrafanaEmulator(token=TOKEN, version=request.param) as emulator:
        project.grafana = emulator
        project.configure(url=emulator.url)
        yield project


def _history_after_push_edit_push(project):
    """v1 created by relaywatch, v2 edited by alice, v3 written by relaywatch --force."""
    grafana = project.grafana
    assert project.run("push").exit_code == 0
    grafana.ui_edit(UID, lambda d: d.update(title="Alice's title"), user="alice", message="tweak title")
    assert project.run("push", "--force").exit_code == 0
    return grafana


def test_history_lists_versions_newest_first(versioned):
    grafana = _history_after_push_edit_push(versioned)

    result = versioned.run("history", UID)

    answer = grafana.last("GET", f"/api/dashboards/uid/{UID}/versions").response_json
    assert isinstance(answer, dict if grafana.version.startswith("12") else list)

    assert result.exit_code == 0, result.stderr
    rows = result.stdout.splitlines()
    assert rows[0].split() == ["VERSION", "CREATED", "BY", "MESSAGE"]
    assert [row.split()[0] for row in rows[1:]] == ["3", "2", "1"]
    assert "relaywatch push rev=testrev1" in rows[1]
    assert "alice" in rows[2] and "tweak title" in rows[2]

    document = json.loads(versioned.run("history", UID, "--output", "json").stdout)
    assert [(v["version"], v["byRelaywatch"]) for v in document] == [(3, True), (2, False), (1, False)]


def test_history_pages_through_a_long_history(versioned, monkeypatch):
    from provision.grafana import versions

    monkeypatch.setattr(versions, "PAGE_SIZE", 2)
    grafana = _history_after_push_edit_push(versioned)
    for n in range(3):
        grafana.ui_edit(UID, lambda d, n=n: d.update(description=f"edit {n}"), user="bob")

    grafana.clear_log()

    result = versioned.run("history", UID, "--limit", "5")

    assert [row.split()[0] for row in result.stdout.splitlines()[1:]] == ["6", "5", "4", "3", "2"]
    assert [r.query["limit"] for r in grafana.log] == [["2"], ["2"], ["1"]]


def test_rollback_defaults_to_the_version_before_the_last_push(versioned):
    grafana = _history_after_push_edit_push(versioned)
    grafana.clear_log()

    result = versioned.run("rollback", UID)

    assert result.exit_code == 0, result.stderr
    assert f"dashboard {UID}: rolled back from version 3 to version 2 (saved as version 4)" in result.stdout
    assert writes(grafana) == [("POST", f"/api/dashboards/uid/{UID}/restore")]
    assert grafana.last("POST", f"/api/dashboards/uid/{UID}/restore").json == {"version": 2}
    assert grafana.state.dashboards[UID].title == "Alice's title"

    # a rolled-back dashboard is not silently re-pushed: it reads as drift
    after = versioned.run("push")
    assert after.exit_code == 1
    assert status_of(after.stdout, "dashboard", UID) == "drifted"
    assert "Restored from version 2" in after.stdout


def test_rollback_to_an_explicit_version_and_dry_run(versioned):
    grafana = _history_after_push_edit_push(versioned)
    grafana.clear_log()

    dry = versioned.run("rollback", UID, "--to-version", "2", "--dry-run")

    assert dry.exit_code == 0, dry.stderr
    assert '-  "title": "LLM Gateway Overview",' in dry.stdout and "+  \"title\": \"Alice's title\"," in dry.stdout
    assert "nothing was written" in dry.stdout
    assert writes(grafana) == []

    done = versioned.run("rollback", UID, "--to-version", "1")
    assert done.exit_code == 0
    # version 1 has the same content as version 3 (both the build): nothing to restore
    assert "nothing to do" in done.stdout
    assert writes(grafana) == []


def test_rollback_refuses_without_a_relaywatch_write(project, grafana):
    grafana.seed_dashboard({"uid": "hand", "title": "Hand made"}, user="alice")
    grafana.ui_edit("hand", lambda d: d.update(title="Hand made 2"), user="alice")

    result = project.run("rollback", "hand")

    assert result.exit_code == 1
    assert "no relaywatch push after its first version" in result.stderr
    assert "--to-version" in result.stderr
    assert writes(grafana) == []


def test_rollback_refuses_a_dashboard_with_a_single_version(project, grafana):
    assert project.run("push").exit_code == 0

    result = project.run("rollback", UID)

    assert result.exit_code == 1
    assert "single version" in result.stderr
    assert grafana.count("POST", f"/api/dashboards/uid/{UID}/restore") == 0


def test_rollback_to_a_missing_version_or_dashboard(project, grafana):
    assert project.run("push").exit_code == 0

    missing_version = project.run("rollback", UID, "--to-version", "9")
    missing_dashboard = project.run("rollback", "nope")

    assert missing_version.exit_code == 1 and "has no version 9" in missing_version.stderr
    assert missing_dashboard.exit_code == 1 and "dashboard nope: not found" in missing_dashboard.stderr
    assert writes(grafana) == [("POST", "/api/folders"), ("POST", "/api/dashboards/db"),
                               ("POST", "/api/dashboards/db")]


def test_pull_exports_normalised_json(project, grafana, tmp_path):
    board = {"uid": "hand", "title": "Hand made", "id": None, "tags": ["team"], "schemaVersion": 39,
             "panels": [{"id": 7, "type": "timeseries", "title": "Rate",
                         "datasource": {"type": "prometheus", "uid": "${datasource}"},
                         "targets": [{"refId": "A", "expr": "sum(rate(x[5m]))",
                                      "datasource": {"type": "prometheus", "uid": "${datasource}"}}]}]}
    grafana.seed_dashboard(board, user="alice")
    grafana.ui_edit("hand", lambda d: d.update(description="edited"), user="alice")
    out = tmp_path / "hand.json"

    to_stdout = project.run("pull", "hand")
    to_file = project.run("pull", "hand", "--out", str(out))

    assert to_stdout.exit_code == 0 and to_file.exit_code == 0, to_file.stderr
    assert to_stdout.stdout == out.read_text()
    exported = json.loads(out.read_text())
    assert "id" not in exported and "version" not in exported
    assert exported["uid"] == "hand" and exported["description"] == "edited"
    assert exported["panels"][0]["id"] == 7
    assert exported["panels"][0]["targets"][0]["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert out.read_text() == json.dumps(exported, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert "pulled dashboard hand (version 2, folder General)" in to_file.stderr
    assert writes(grafana) == []


def test_pull_of_a_pushed_dashboard_matches_the_build(project, grafana):
    assert project.run("push").exit_code == 0

    pulled = project.run("pull", UID)

    assert json.loads(pulled.stdout) == project.built(UID)


def test_pull_unknown_dashboard(project, grafana):
    result = project.run("pull", "nope")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: dashboard nope: not found in Grafana"
