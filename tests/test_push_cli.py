"""provision push / diff through the real CLI against the emulated Grafana: what is sent,
what is not, and what the user is told."""

from __future__ import annotations

import json
import shutil

import yaml
from grafana_emulator import GrafanaEmulator
from push_support import (  # noqa: F401 - fixtures
    BUILT, PASSWORD, REPO, TOKEN, USER, Project, grafana, project, reads, status_of, summary, writes,
)

DASHBOARD_GETS = sorted(("GET", f"/api/dashboards/uid/{uid}") for uid in BUILT)


def test_first_push_creates_folder_and_dashboards(project, grafana):
    result = project.run("push")
    assert result.exit_code == 0, result.stderr
    assert status_of(result.stdout, "folder", "relaywatch") == "created"
    for uid in BUILT:
        assert status_of(result.stdout, "dashboard", uid) == "created"
    assert "push: 3 created, 0 updated, 0 deleted, 0 unchanged, 0 drifted, 0 failed" in result.stdout

    assert writes(grafana) == [("POST", "/api/folders")] + [("POST", "/api/dashboards/db")] * 2
    # nothing exists yet: health, the folder, the managed search and one search by uid; no GET that 404s
    assert reads(grafana) == [("GET", "/api/health"), ("GET", "/api/folders/relaywatch"), ("GET", "/api/search"),
                              ("GET", "/api/search")]
    assert grafana.log[3].query["dashboardUIDs"] == list(BUILT)
    folder = grafana.state.folders["relaywatch"]
    assert folder.title == "LLM Gateway" and folder.parent_uid == ""
    for uid in BUILT:
        stored = grafana.state.dashboards[uid]
        assert stored.folder_uid == "relaywatch"
        assert "relaywatch" in stored.tags
        message = grafana.state.versions[uid][-1].message
        assert message.startswith("relaywatch push rev=testrev1 content=sha256:")
    for post in grafana.requests("POST", "/api/dashboards/db"):
        body = post.json
        assert body["overwrite"] is False and body["folderUid"] == "relaywatch"
        assert "id" not in body["dashboard"] and "version" not in body["dashboard"]
        assert post.auth_scheme == "Bearer"


def test_second_push_sends_no_write_and_few_reads(project, grafana):
    assert project.run("push").exit_code == 0
    grafana.clear_log()

    result = project.run("push")

    assert result.exit_code == 0, result.stderr
    assert "push: 0 created, 0 updated, 0 deleted, 3 unchanged, 0 drifted, 0 failed" in result.stdout
    assert writes(grafana) == []
    # health, the folder, one search page, one GET per built dashboard; no versions needed
    assert sorted(reads(grafana)) == sorted([("GET", "/api/health"), ("GET", "/api/folders/relaywatch"),
                                             ("GET", "/api/search")] + DASHBOARD_GETS)
    search = grafana.last("GET", "/api/search").query
    assert search["type"] == ["dash-db"] and search["tag"] == ["relaywatch"]
    assert search["folderUIDs"] == ["relaywatch"]


def test_changed_definitions_update_with_the_version_read(project, grafana):
    assert project.run("push").exit_code == 0
    versions = {uid: grafana.state.dashboards[uid].version for uid in BUILT}
    project.set("dashboards", {"refresh": "1m"})
    grafana.clear_log()

    result = project.run("push")

    assert result.exit_code == 0, result.stderr
    for uid in BUILT:
        assert status_of(result.stdout, "dashboard", uid) == "updated"
        assert grafana.state.dashboards[uid].data["refresh"] == "1m"
        assert grafana.state.dashboards[uid].version == versions[uid] + 1
    for post in grafana.requests("POST", "/api/dashboards/db"):
        assert post.json["overwrite"] is False
        assert post.json["dashboard"]["version"] == versions[post.json["dashboard"]["uid"]]
    # the latest version of a dashboard that differs is read, to tell our change from someone
    # else's; Grafana lists a first save as "Initial save", so version 1 is read on its own, without the list
    versions_path = "/api/dashboards/uid/llm-gateway-model/versions"
    assert [r.path for r in grafana.log if r.path.startswith(versions_path)] == [versions_path + "/1"]
    assert summary(project.run("push").stdout)["unchanged"] == 3

    project.set("dashboards", {"refresh": "2m"})
    grafana.clear_log()
    assert summary(project.run("push").stdout)["updated"] == 2
    assert [r.path for r in grafana.log if r.path.startswith(versions_path)] == [versions_path]
    assert grafana.last("GET", versions_path).query["limit"] == ["1"]


def test_ui_edit_is_drift_refused_then_forced(project, grafana):
    assert project.run("push").exit_code == 0
    grafana.ui_edit("llm-gateway-overview", lambda d: d.update(title="Hand edited"), user="alice")
    grafana.clear_log()

    refused = project.run("push")

    assert refused.exit_code == 1
    assert status_of(refused.stdout, "dashboard", "llm-gateway-overview") == "drifted"
    assert "alice" in refused.stdout and "--force" in refused.stdout
    assert status_of(refused.stdout, "dashboard", "llm-gateway-model") == "unchanged"
    assert writes(grafana) == []
    assert grafana.state.dashboards["llm-gateway-overview"].title == "Hand edited"

    forced = project.run("push", "--force")

    assert forced.exit_code == 0, forced.stderr
    assert status_of(forced.stdout, "dashboard", "llm-gateway-overview") == "updated"
    assert grafana.state.dashboards["llm-gateway-overview"].title == "LLM Gateway Overview"
    assert project.run("push").exit_code == 0


def test_drift_is_pushed_around_not_blocking_the_rest(project, grafana):
    assert project.run("push").exit_code == 0
    grafana.ui_edit("llm-gateway-overview", lambda d: d.update(title="Hand edited"))
    project.set("dashboards", {"refresh": "1m"})

    result = project.run("push")

    assert result.exit_code == 1
    assert status_of(result.stdout, "dashboard", "llm-gateway-overview") == "drifted"
    assert status_of(result.stdout, "dashboard", "llm-gateway-model") == "updated"
    assert grafana.state.dashboards["llm-gateway-model"].data["refresh"] == "1m"


def test_a_save_racing_the_push_is_reported_not_clobbered(project, grafana, monkeypatch):
    assert project.run("push").exit_code == 0
    project.set("dashboards", {"refresh": "1m"})
    from provision.grafana.resources import dashboard

    real_save = dashboard._save

    def save_after_someone_else(client, action, options):
        grafana.ui_edit(action.uid, lambda d: d.update(description="edited meanwhile"), user="bob")
        return real_save(client, action, options)

    monkeypatch.setattr(dashboard, "_save", save_after_someone_else)
    result = project.run("push")

    assert result.exit_code == 1
    for uid in BUILT:
        assert status_of(result.stdout, "dashboard", uid) == "drifted"
        assert grafana.state.dashboards[uid].data["description"] == "edited meanwhile"
    assert "during the push" in result.stdout


def test_dry_run_sends_no_write(project, grafana):
    result = project.run("push", "--dry-run")

    assert result.exit_code == 0, result.stderr
    assert status_of(result.stdout, "folder", "relaywatch") == "create"
    assert status_of(result.stdout, "dashboard", "llm-gateway-overview") == "create"
    assert "nothing was written" in result.stdout
    assert writes(grafana) == []
    assert grafana.state.dashboards == {} and grafana.state.folders == {}


def test_diff_shows_a_unified_diff_and_exit_code(project, grafana):
    assert project.run("push").exit_code == 0
    assert project.run("diff", "--exit-code").exit_code == 0
    project.set("dashboards", {"refresh": "1m"})

    plain = project.run("diff")
    strict = project.run("diff", "--exit-code")

    assert plain.exit_code == 0 and strict.exit_code == 1
    assert status_of(plain.stdout, "dashboard", "llm-gateway-overview") == "update"
    assert "--- grafana/llm-gateway-overview.json" in plain.stdout
    assert "+++ build/llm-gateway-overview.json" in plain.stdout
    assert '-  "refresh": "30s",' in plain.stdout and '+  "refresh": "1m",' in plain.stdout
    assert '"version"' not in plain.stdout and '"id": ' not in plain.stdout.split("\n@@")[0]
    assert writes(grafana) == [("POST", "/api/folders")] + [("POST", "/api/dashboards/db")] * 2


def test_json_output(project, grafana):
    result = project.run("push", "--output", "json")

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["summary"] == {"created": 3, "updated": 0, "deleted": 0, "unchanged": 0, "drifted": 0,
                                   "failed": 0}
    assert document["dry_run"] is False and document["grafana"]["version"] == "11.5.0"
    entry = next(r for r in document["resources"] if r["uid"] == "llm-gateway-overview")
    assert entry == {"kind": "dashboard", "uid": "llm-gateway-overview", "name": "LLM Gateway Overview",
                     "action": "create", "status": "created", "reason": "", "version": 1}


def test_nested_folder_is_created_under_its_parent_and_moved_back(project, grafana):
    grafana.seed_folder("Platform", uid="platform")
    project.configure(folder={"uid": "relaywatch", "title": "LLM Gateway", "parent_uid": "platform"})

    result = project.run("push")

    assert result.exit_code == 0, result.stderr
    assert grafana.requests("POST", "/api/folders")[0].json["parentUid"] == "platform"
    assert grafana.state.folders["relaywatch"].parent_uid == "platform"
    assert summary(project.run("push").stdout)["unchanged"] == 3

    grafana.state.folders["relaywatch"].parent_uid = ""  # someone moved it to the root
    moved = project.run("push")
    assert status_of(moved.stdout, "folder", "relaywatch") == "updated"
    assert "parent (root) -> platform" in moved.stdout
    assert grafana.state.folders["relaywatch"].parent_uid == "platform"


def test_a_new_folder_setting_moves_relaywatchs_dashboards(project, grafana):
    assert project.run("push").exit_code == 0
    project.configure(folder={"uid": "llm", "title": "LLM"})

    diff = project.run("diff")
    moved = project.run("push")

    assert "folder: relaywatch -> llm" in diff.stdout
    assert moved.exit_code == 0, moved.stdout + moved.stderr
    assert status_of(moved.stdout, "folder", "llm") == "created"
    for uid in BUILT:
        assert status_of(moved.stdout, "dashboard", uid) == "updated"
        assert grafana.state.dashboards[uid].folder_uid == "llm"
    assert "moved from folder relaywatch to llm" in moved.stdout
    assert summary(project.run("push").stdout)["unchanged"] == 3


def test_a_built_uid_taken_by_someone_elses_dashboard_is_not_overwritten(project, grafana):
    grafana.seed_folder("Team", uid="team")
    grafana.seed_dashboard({"uid": "llm-gateway-model", "title": "Ours, by hand"}, "team", user="alice")

    result = project.run("push")

    assert result.exit_code == 1
    assert status_of(result.stdout, "dashboard", "llm-gateway-model") == "drifted"
    assert status_of(result.stdout, "dashboard", "llm-gateway-overview") == "created"
    assert grafana.state.dashboards["llm-gateway-model"].title == "Ours, by hand"
    assert grafana.state.dashboards["llm-gateway-model"].folder_uid == "team"


def test_missing_parent_folder_fails_the_folder_and_its_dashboards(project, grafana):
    project.configure(folder={"uid": "relaywatch", "title": "LLM Gateway", "parent_uid": "nowhere"})

    result = project.run("push")

    assert result.exit_code == 1
    assert status_of(result.stdout, "folder", "relaywatch") == "failed"
    assert "parent folder 'nowhere'" in result.stdout
    assert status_of(result.stdout, "dashboard", "llm-gateway-overview") == "failed"
    assert grafana.count("POST", "/api/dashboards/db") == 0


def test_folder_title_follows_the_config(project, grafana):
    assert project.run("push").exit_code == 0
    project.configure(folder={"uid": "relaywatch", "title": "LLM Relay"})

    result = project.run("push")

    assert status_of(result.stdout, "folder", "relaywatch") == "updated"
    assert grafana.state.folders["relaywatch"].title == "LLM Relay"
    assert grafana.last("PUT", "/api/folders/relaywatch").json == {"title": "LLM Relay", "version": 1,
                                                                    "overwrite": False}


def test_unmanaged_datasource_is_never_touched(project, grafana):
    assert project.run("push").exit_code == 0
    assert grafana.count(path_prefix="/api/datasources") == 0


def test_managed_datasource_is_created_then_kept_in_line(project, grafana):
    project.configure(datasource={"uid": "prom", "name": "Prom", "url": "http://prometheus:9090", "manage": True})

    created = project.run("push")

    assert created.exit_code == 0, created.stderr
    assert status_of(created.stdout, "datasource", "prom") == "created"
    ds = grafana.state.datasources["prom"]
    assert (ds.name, ds.type, ds.url, ds.access) == ("Prom", "prometheus", "http://prometheus:9090", "proxy")
    assert ds.json_data["timeInterval"] == "15s"
    assert summary(project.run("push").stdout)["unchanged"] == 4

    ds.url, ds.json_data = "http://elsewhere:9090", {**ds.json_data, "customQueryParameters": "a=b"}
    updated = project.run("push")
    assert status_of(updated.stdout, "datasource", "prom") == "updated"
    assert ds.url == "http://prometheus:9090"
    assert ds.json_data["customQueryParameters"] == "a=b"  # settings relaywatch does not own are kept


def test_read_only_datasource_is_reported_not_overwritten(project, grafana):
    grafana.seed_datasource("Prom", uid="prom", url="http://old:9090", read_only=True)
    project.configure(datasource={"uid": "prom", "name": "Prom", "url": "http://prometheus:9090", "manage": True})

    result = project.run("push")

    assert result.exit_code == 1
    assert status_of(result.stdout, "datasource", "prom") == "failed"
    assert "read-only" in result.stdout
    assert grafana.count("PUT", "/api/datasources") == 0
    assert status_of(result.stdout, "dashboard", "llm-gateway-overview") == "created"


def test_grafana_12_and_10_are_pushed_alike(tmp_path):
    for version in ("10.4.3", "12.0.1"):
        root = tmp_path / version
        for name in ("dashboards", "alerts"):
            shutil.copytree(REPO / name, root / name)
        with GrafanaEmulator(token=TOKEN, version=version) as emulator:
            (root / "relaywatch.yaml").write_text(yaml.safe_dump({"grafana": {"url": emulator.url}}))
            proj = Project(root, emulator)
            assert proj.run("push").exit_code == 0
            emulator.ui_edit("llm-gateway-model", lambda d: d.update(title="Edited"))
            emulator.clear_log()
            second = proj.run("push")
            assert second.exit_code == 1
            assert status_of(second.stdout, "dashboard", "llm-gateway-model") == "drifted"
            assert status_of(second.stdout, "dashboard", "llm-gateway-overview") == "unchanged"
            assert emulator.writes() == []


def test_basic_auth_works_too(project, grafana):
    result = project.run("push", token=None, env={"GRAFANA_USER": USER, "GRAFANA_PASSWORD": PASSWORD})

    assert result.exit_code == 0, result.stderr
    assert {r.auth_scheme for r in grafana.log if r.path != "/api/health"} == {"Basic"}


def test_grafana_url_flag_beats_env_and_config(project, grafana):
    project.configure(url="http://127.0.0.1:9")  # nothing listens there
    result = project.run("push", "--grafana-url", grafana.url, env={"GRAFANA_URL": "http://127.0.0.1:9"})
    assert result.exit_code == 0, result.stderr

    from_env = project.run("push", env={"GRAFANA_URL": grafana.url})
    assert from_env.exit_code == 0, from_env.stderr
