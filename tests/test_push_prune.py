"""push --prune deletes exactly the dashboards relaywatch manages and no longer builds."""

from __future__ import annotations

from push_support import grafana, project, status_of, summary, writes  # noqa: F401 - fixtures

GONE = "llm-gateway-model"  # its definition file is removed in these tests


def _seed_neighbours(grafana):
    """Dashboards prune must never touch, whatever they look like."""
    grafana.seed_folder("Other team", uid="other")
    grafana.seed_dashboard({"uid": "hand-made", "title": "Hand made", "tags": []}, "relaywatch", user="alice")
    grafana.seed_dashboard({"uid": "other-tagged", "title": "Tagged elsewhere", "tags": ["relaywatch"]}, "other",
                           user="alice")
    grafana.seed_dashboard({"uid": "root-tagged", "title": "Tagged in General", "tags": ["relaywatch"]}, "",
                           user="alice")


def _stop_building_the_model_dashboard(project):
    (project.root / "dashboards" / "model.py").unlink()


def test_prune_deletes_only_managed_dashboards_no_longer_built(project, grafana):
    assert project.run("push").exit_code == 0
    _seed_neighbours(grafana)
    _stop_building_the_model_dashboard(project)
    grafana.clear_log()

    without = project.run("push")
    assert without.exit_code == 0, without.stderr
    assert "no longer built; push --prune deletes it" in without.stdout
    assert GONE in grafana.state.dashboards and writes(grafana) == []
    grafana.clear_log()

    pruned = project.run("push", "--prune")

    assert pruned.exit_code == 0, pruned.stderr
    assert status_of(pruned.stdout, "dashboard", GONE) == "deleted"
    assert summary(pruned.stdout)["deleted"] == 1
    assert writes(grafana) == [("DELETE", f"/api/dashboards/uid/{GONE}")]
    assert GONE not in grafana.state.dashboards
    assert {"hand-made", "other-tagged", "root-tagged", "llm-gateway-overview"} <= set(grafana.state.dashboards)
    for neighbour in ("hand-made", "other-tagged", "root-tagged"):
        assert neighbour not in pruned.stdout
        assert grafana.count("GET", f"/api/dashboards/uid/{neighbour}") == 0


def test_prune_dry_run_and_diff_list_the_deletion_without_sending_it(project, grafana):
    assert project.run("push").exit_code == 0
    _stop_building_the_model_dashboard(project)
    grafana.clear_log()

    dry = project.run("push", "--prune", "--dry-run")
    diff = project.run("diff", "--prune", "--exit-code")

    assert status_of(dry.stdout, "dashboard", GONE) == "delete"
    assert status_of(diff.stdout, "dashboard", GONE) == "delete" and diff.exit_code == 1
    assert writes(grafana) == []


def test_prune_refuses_a_dashboard_edited_by_someone_else_unless_forced(project, grafana):
    assert project.run("push").exit_code == 0
    grafana.ui_edit(GONE, lambda d: d.update(description="alice still uses this"), user="alice")
    _stop_building_the_model_dashboard(project)

    refused = project.run("push", "--prune")

    assert refused.exit_code == 1
    assert status_of(refused.stdout, "dashboard", GONE) == "drifted"
    assert "alice" in refused.stdout
    assert GONE in grafana.state.dashboards

    forced = project.run("push", "--prune", "--force")

    assert forced.exit_code == 0, forced.stderr
    assert status_of(forced.stdout, "dashboard", GONE) == "deleted"
    assert GONE not in grafana.state.dashboards


def test_prune_skips_a_dashboard_the_search_index_still_lists_after_it_moved(project, grafana, monkeypatch):
    assert project.run("push").exit_code == 0
    _stop_building_the_model_dashboard(project)
    grafana.state.dashboards[GONE].folder_uid = ""  # moved out of the managed folder; the search is stale
    from provision.grafana.resources import dashboard

    monkeypatch.setattr(dashboard, "search_managed", lambda client, options: [
        {"uid": GONE, "title": "LLM Gateway Model", "type": "dash-db", "folderUid": "relaywatch",
         "tags": ["relaywatch"]}])

    result = project.run("push", "--prune")

    assert result.exit_code == 0, result.stderr
    assert GONE in grafana.state.dashboards
    assert grafana.count("DELETE") == 0


def test_search_is_paged(project, grafana, monkeypatch):
    from provision.grafana.resources import dashboard

    monkeypatch.setattr(dashboard, "SEARCH_PAGE", 2)
    assert project.run("push").exit_code == 0
    for n in range(5):
        grafana.seed_dashboard({"uid": f"old-{n}", "title": f"Old {n}", "tags": ["relaywatch"]}, "relaywatch",
                               message="relaywatch push rev=old content=sha256:0123456789abcdef")
    grafana.clear_log()

    result = project.run("push", "--prune")

    assert result.exit_code == 0, result.stderr
    pages = [r.query["page"][0] for r in grafana.requests("GET", "/api/search")]
    assert pages == ["1", "2", "3", "4"]  # 7 hits, 2 a page: the 4th page is short
    assert summary(result.stdout)["deleted"] == 5
    assert set(grafana.state.dashboards) == {"llm-gateway-overview", "llm-gateway-model"}
