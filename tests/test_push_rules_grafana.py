"""push, diff and prune of Grafana-managed rule groups (rules.target grafana), through the
real CLI against the emulated Grafana: the provisioning API's bodies, idempotence, drift,
ownership, provenance and faults."""

from __future__ import annotations

import pytest
from grafana_emulator import GrafanaEmulator
from push_support import (  # noqa: F401 - fixtures
    PASSWORD, TOKEN, USER, Project, grafana, make_project, project, status_of, summary,
)
from rules_push_support import (
    ALERTS, COST_ALERTS, FOLDER, GROUPS_PATH, add_alert_definitions, body_of, group_puts, push, rule_writes,
    set_alert_setting, stored_group, use_rules,
)

from provision.grafana.resources.rule_group_grafana import MARKER, PROVENANCE_HEADER
from provision.validate_deliveries import grafana_rule_problems

GROUP = f"{FOLDER}/{ALERTS}"
COST_GROUP = f"{FOLDER}/{COST_ALERTS}"
KIND = "grafana_rule_group"


@pytest.fixture
def rules_project(project):
    use_rules(project, ["grafana"])
    return project


def _header(request) -> str | None:
    return next((v for k, v in request.headers.items() if k.lower() == PROVENANCE_HEADER.lower()), None)


def test_push_puts_one_schema_valid_body_per_group_with_api_provenance(rules_project, grafana):
    result = push(rules_project)

    assert status_of(result.stdout, KIND, GROUP) == "created"
    assert status_of(result.stdout, KIND, COST_GROUP) == "created"
    puts = group_puts(grafana)
    assert sorted(puts) == [ALERTS, COST_ALERTS] and all(len(p) == 1 for p in puts.values())
    for name, (request) in ((n, p[0]) for n, p in puts.items()):
        assert request.path == f"{GROUPS_PATH}{FOLDER}/rule-groups/{name}"
        assert request.status == 200
        assert _header(request) is None  # editable_in_ui: false -> provenance api
        body = body_of(request)
        assert body["title"] == name and body["folderUid"] == FOLDER and body["interval"] % 10 == 0
        for rule in body["rules"]:
            assert grafana_rule_problems(rule) == [], rule["title"]
            assert rule["uid"].startswith("rw-") and len(rule["uid"]) <= 40
            assert rule["annotations"][MARKER]
            assert "keepFiringFor" not in rule
    stored = stored_group(grafana, ALERTS)
    assert {r.provenance for r in stored} == {"api"}
    assert [r.uid for r in stored] == [r["uid"] for r in body_of(puts[ALERTS][0])["rules"]]


def test_second_push_writes_nothing_and_reads_little(rules_project, grafana):
    push(rules_project)
    grafana.clear_log()

    again = push(rules_project)

    assert summary(again.stdout)["unchanged"] == 5  # folder, two dashboards, two rule groups
    assert rule_writes(grafana) == []
    rule_reads = sorted(r.path for r in grafana.reads() if r.path.startswith("/api/v1/provisioning"))
    assert rule_reads == ["/api/v1/provisioning/alert-rules", f"{GROUPS_PATH}{FOLDER}/rule-groups/{ALERTS}",
                          f"{GROUPS_PATH}{FOLDER}/rule-groups/{COST_ALERTS}"]
    # Grafana 11 dropped missingSeriesEvalsToResolve on save, and that is no difference either
    assert all("missingSeriesEvalsToResolve" not in r.content for r in stored_group(grafana, ALERTS))


def test_a_changed_threshold_rewrites_exactly_that_group_and_diff_shows_it(rules_project, grafana):
    push(rules_project)
    set_alert_setting(rules_project, "error_ratio.critical", 0.3)
    grafana.clear_log()

    diff = rules_project.run("diff", "--exit-code")

    assert diff.exit_code == 1
    assert status_of(diff.stdout, KIND, GROUP) == "update"
    assert "changes 'LLMGatewayErrorRatioHigh (critical)'" in diff.stdout
    assert f"--- grafana/{FOLDER}/{ALERTS}" in diff.stdout and f"+++ build/{ALERTS}" in diff.stdout
    changed = [line for line in diff.stdout.splitlines() if line.startswith(("-", "+"))
               and not line.startswith(("---", "+++"))]
    assert [line[0] + line[1:].strip() for line in changed if "0.2" in line or "0.3" in line] == ["-- 0.2", "+- 0.3"]
    assert MARKER not in diff.stdout
    assert rule_writes(grafana) == []

    pushed = push(rules_project)

    assert status_of(pushed.stdout, KIND, GROUP) == "updated"
    assert status_of(pushed.stdout, KIND, COST_GROUP) == "unchanged"
    assert rule_writes(grafana) == [("PUT", f"{GROUPS_PATH}{FOLDER}/rule-groups/{ALERTS}")]
    threshold = [r for r in stored_group(grafana, ALERTS) if r.content["title"] == "LLMGatewayErrorRatioHigh (critical)"]
    assert threshold[0].content["data"][2]["model"]["conditions"][0]["evaluator"]["params"] == [0.3]


def test_dry_run_sends_no_write(rules_project, grafana):
    result = push(rules_project, "--dry-run")

    assert status_of(result.stdout, KIND, GROUP) == "create"
    assert "nothing was written" in result.stdout
    assert grafana.writes() == []


def test_ui_edit_is_reported_as_drift_and_force_overwrites(rules_project, grafana):
    use_rules(rules_project, ["grafana"], grafana={"editable_in_ui": True})
    push(rules_project)
    assert {_header(r) for r in grafana.requests("PUT", GROUPS_PATH)} == {"true"}
    assert {r.provenance for r in stored_group(grafana, ALERTS)} == {""}
    edited = stored_group(grafana, ALERTS)[0]
    grafana.edit_alert_rule(edited.uid, lambda r: r.update(labels={**r["labels"], "team": "payments"}), via="ui")
    grafana.clear_log()

    drifted = push(rules_project, code=1)

    assert status_of(drifted.stdout, KIND, GROUP) == "drifted"
    assert f"rule {edited.content['title']!r} was changed in Grafana since relaywatch pushed it" in drifted.stdout
    assert status_of(drifted.stdout, KIND, COST_GROUP) == "unchanged"
    assert rule_writes(grafana) == []
    diff = rules_project.run("diff")
    assert "-    team: payments" in diff.stdout

    forced = push(rules_project, "--force")

    assert status_of(forced.stdout, KIND, GROUP) == "updated"
    assert "forced over changes made in Grafana" in forced.stdout
    assert "team" not in grafana.state.alert_rules[edited.uid].content["labels"]
    assert {_header(r) for r in grafana.requests("PUT", GROUPS_PATH)} == {"true"}
    grafana.clear_log()
    push(rules_project)
    assert rule_writes(grafana) == []


def test_a_change_through_the_api_to_a_read_only_rule_is_drift_too(rules_project, grafana):
    push(rules_project)
    rule = stored_group(grafana, COST_ALERTS)[0]
    grafana.edit_alert_rule(rule.uid, lambda r: r.update({"for": "1h"}), via="api")  # provenance stays api

    result = push(rules_project, code=1)

    assert status_of(result.stdout, KIND, COST_GROUP) == "drifted"
    assert grafana.state.alert_rules[rule.uid].content["for"] == "1h"


def test_a_same_named_group_relaywatch_did_not_create_is_not_overwritten(rules_project, grafana):
    grafana.seed_folder("LLM Gateway", uid=FOLDER)
    grafana.seed_rule_group(FOLDER, ALERTS, [{"title": "Their alert", "uid": "their-alert"}])

    result = push(rules_project, code=1)

    assert status_of(result.stdout, KIND, GROUP) == "drifted"
    assert "rule 'Their alert' was not created by relaywatch" in result.stdout
    assert [r.uid for r in stored_group(grafana, ALERTS)] == ["their-alert"]
    assert f"{GROUPS_PATH}{FOLDER}/rule-groups/{ALERTS}" not in [r.path for r in grafana.writes()]


def test_a_rule_added_by_hand_to_relaywatch_group_is_drift(rules_project, grafana):
    use_rules(rules_project, ["grafana"], grafana={"editable_in_ui": True})
    push(rules_project)
    grafana.seed_rule_group(FOLDER, COST_ALERTS, [{"title": "Hand added", "uid": "hand-added"}])

    result = push(rules_project, code=1)

    assert status_of(result.stdout, KIND, COST_GROUP) == "drifted"
    assert "rule 'Hand added' was not created by relaywatch" in result.stdout
    assert "hand-added" in grafana.state.alert_rules


def _stop_building_cost_alerts(project: Project) -> None:
    (project.root / "alerts" / "cost.py").unlink()


def _seed_neighbours(grafana):
    grafana.seed_rule_group(FOLDER, "team-alerts", [{"title": "Team alert", "uid": "team-alert"}])
    grafana.seed_folder("Other", uid="other")
    grafana.seed_rule_group("other", COST_ALERTS, [{"title": "Same group name elsewhere", "uid": "elsewhere"}])


def test_prune_deletes_only_relaywatch_groups(rules_project, grafana):
    push(rules_project)
    _seed_neighbours(grafana)
    _stop_building_cost_alerts(rules_project)
    grafana.clear_log()

    kept = push(rules_project)
    assert f"{KIND} {COST_GROUP}: unchanged: no longer built; push --prune deletes it" in kept.stdout
    dry = push(rules_project, "--prune", "--dry-run")
    assert status_of(dry.stdout, KIND, COST_GROUP) == "delete"
    diff = rules_project.run("diff", "--prune", "--exit-code")
    assert diff.exit_code == 1 and status_of(diff.stdout, KIND, COST_GROUP) == "delete"
    assert rule_writes(grafana) == []

    pruned = push(rules_project, "--prune")

    assert status_of(pruned.stdout, KIND, COST_GROUP) == "deleted"
    assert summary(pruned.stdout)["deleted"] == 1
    assert rule_writes(grafana) == [("DELETE", f"{GROUPS_PATH}{FOLDER}/rule-groups/{COST_ALERTS}")]
    assert stored_group(grafana, COST_ALERTS) == []
    assert {"team-alert", "elsewhere"} <= set(grafana.state.alert_rules)
    assert "team-alerts" not in pruned.stdout and "other/" not in pruned.stdout
    grafana.clear_log()
    push(rules_project, "--prune")
    assert rule_writes(grafana) == []


def test_prune_on_grafana_10_deletes_rule_by_rule(tmp_path):
    with GrafanaEmulator(token=TOKEN, basic_auth=(USER, PASSWORD), version="10.4.0") as old:
        project = make_project(tmp_path, old)
        use_rules(project, ["grafana"])
        push(project)
        uids = [r.uid for r in stored_group(old, COST_ALERTS)]
        _stop_building_cost_alerts(project)
        old.clear_log()

        pruned = push(project, "--prune")

        assert status_of(pruned.stdout, KIND, COST_GROUP) == "deleted"
        assert rule_writes(old) == [("DELETE", f"{GROUPS_PATH}{FOLDER}/rule-groups/{COST_ALERTS}")] + [
            ("DELETE", f"/api/v1/provisioning/alert-rules/{uid}") for uid in uids]
        assert [r.status for r in old.writes()][0] == 404  # no group DELETE before Grafana 11
        assert stored_group(old, COST_ALERTS) == []


def test_prune_leaves_an_edited_group_alone_unless_forced(rules_project, grafana):
    use_rules(rules_project, ["grafana"], grafana={"editable_in_ui": True})
    push(rules_project)
    rule = stored_group(grafana, COST_ALERTS)[0]
    grafana.edit_alert_rule(rule.uid, lambda r: r["annotations"].update(summary="still needed by alice"))
    _stop_building_cost_alerts(rules_project)

    refused = push(rules_project, "--prune", code=1)

    assert status_of(refused.stdout, KIND, COST_GROUP) == "drifted"
    assert "push --prune --force deletes it anyway" in refused.stdout
    assert stored_group(grafana, COST_ALERTS)

    forced = push(rules_project, "--prune", "--force")

    assert status_of(forced.stdout, KIND, COST_GROUP) == "deleted"
    assert stored_group(grafana, COST_ALERTS) == []


def test_prune_keeps_rules_relaywatch_did_not_create_in_its_group(rules_project, grafana):
    push(rules_project)
    grafana.seed_rule_group(FOLDER, COST_ALERTS, [{"title": "Hand added", "uid": "hand-added"}])
    ours = [r.uid for r in stored_group(grafana, COST_ALERTS) if r.uid != "hand-added"]
    _stop_building_cost_alerts(rules_project)
    grafana.clear_log()

    pruned = push(rules_project, "--prune")

    assert "keeps 1 rules relaywatch did not create" in pruned.stdout
    assert rule_writes(grafana) == [("DELETE", f"/api/v1/provisioning/alert-rules/{uid}") for uid in ours]
    assert [r.uid for r in stored_group(grafana, COST_ALERTS)] == ["hand-added"]


def test_switching_editable_in_ui_rewrites_every_rule_once(rules_project, grafana):
    push(rules_project)
    use_rules(rules_project, ["grafana"], grafana={"editable_in_ui": True})
    grafana.clear_log()

    switched = push(rules_project)

    assert "provenance api -> none (rules.grafana.editable_in_ui)" in switched.stdout
    assert summary(switched.stdout)["updated"] == 2
    assert {_header(r) for r in grafana.requests("PUT", GROUPS_PATH)} == {"true"}
    assert {r.provenance for r in grafana.state.alert_rules.values()} == {""}
    grafana.clear_log()
    push(rules_project)
    assert rule_writes(grafana) == []


def test_a_group_provisioned_from_files_fails_without_a_request(rules_project, grafana):
    grafana.seed_folder("LLM Gateway", uid=FOLDER)
    grafana.seed_rule_group(FOLDER, ALERTS, [{"title": "From a file", "uid": "from-file"}], provenance="file")

    result = push(rules_project, code=1)

    assert status_of(result.stdout, KIND, GROUP) == "failed"
    assert "provisioned from files by Grafana itself (provenance file)" in result.stdout
    assert f"{GROUPS_PATH}{FOLDER}/rule-groups/{ALERTS}" not in [r.path for r in grafana.writes()]
    assert status_of(result.stdout, KIND, COST_GROUP) == "created"


def test_a_provenance_conflict_from_grafana_is_one_clear_line(tmp_path):
    """Grafana 10 deletes rule by rule, where provenance must match: rules pushed read-only,
    then pruned with editable_in_ui on, meet a 409."""
    with GrafanaEmulator(token=TOKEN, basic_auth=(USER, PASSWORD), version="10.4.0") as old:
        project = make_project(tmp_path, old)
        use_rules(project, ["grafana"])
        push(project)
        use_rules(project, ["grafana"], grafana={"editable_in_ui": True})
        _stop_building_cost_alerts(project)

        result = push(project, "--prune", code=1)

        line = next(line for line in result.stdout.splitlines() if line.startswith(f"{KIND} {COST_GROUP}:"))
        assert line.startswith(f"{KIND} {COST_GROUP}: failed: 409 cannot delete with provided provenance '', "
                               "needs 'api': provenance conflict")
        assert "rules.grafana.editable_in_ui: false" in line
        assert "Traceback" not in result.stdout + result.stderr
        assert stored_group(old, COST_ALERTS)


KEEP_FIRING = '''
    from provision.contract import FAILED
    from provision.rules import AlertRule, Condition, Query, RuleGroup


    def rule_groups(ctx):
        return [RuleGroup("sticky-alerts", "sticky-alerts", (AlertRule(
            name="StickyFailures", condition=Condition(Query(ctx.names.outcome_ratio(FAILED)), ">", 0.5),
            severity="warning", summary="Failures stick.", description="{{ $labels.model }}",
            for_="2m", keep_firing_for="10m", runbook="llmgatewayerrorratiohigh"),))]
'''


def test_grafana_12_keeps_keep_firing_for_and_a_change_to_it_is_drift(tmp_path):
    with GrafanaEmulator(token=TOKEN, basic_auth=(USER, PASSWORD), version="12.1.0") as new:
        project = make_project(tmp_path, new)
        use_rules(project, ["grafana"], grafana={"editable_in_ui": True})
        add_alert_definitions(project, "sticky", KEEP_FIRING)
        push(project)
        body = body_of(group_puts(new)["sticky-alerts"][0])
        assert body["rules"][0]["keep_firing_for"] == "10m" and grafana_rule_problems(body["rules"][0]) == []
        rule = stored_group(new, "sticky-alerts")[0]
        assert rule.content["keep_firing_for"] == "10m" and rule.content["missingSeriesEvalsToResolve"] == 1
        new.clear_log()
        push(project)
        assert rule_writes(new) == []

        new.edit_alert_rule(rule.uid, lambda r: r.update(keep_firing_for="30m"))
        result = push(project, code=1)

        assert status_of(result.stdout, KIND, f"{FOLDER}/sticky-alerts") == "drifted"


def test_renaming_a_group_moves_its_rules_without_losing_them(rules_project, grafana):
    push(rules_project)
    uids = [r.uid for r in stored_group(grafana, COST_ALERTS)]
    cost = rules_project.root / "alerts" / "cost.py"
    cost.write_text(cost.read_text().replace('RuleGroup("llm-gateway-cost-alerts"', 'RuleGroup("spend-alerts"'))
    grafana.clear_log()

    moved = push(rules_project, "--prune")

    assert status_of(moved.stdout, KIND, f"{FOLDER}/spend-alerts") == "created"
    assert "moves rules from group llm-gateway-cost-alerts" in moved.stdout
    assert rule_writes(grafana) == [("PUT", f"{GROUPS_PATH}{FOLDER}/rule-groups/spend-alerts")]
    assert [r.uid for r in stored_group(grafana, "spend-alerts")] == uids
    assert stored_group(grafana, COST_ALERTS) == []


def test_5xx_on_group_writes_and_reads_are_retried(rules_project, grafana):
    grafana.fail_next(1, 503, "/api/v1/provisioning/alert-rules", method="GET")
    grafana.fail_next(2, 502, GROUPS_PATH, method="PUT")

    result = push(rules_project)

    assert summary(result.stdout)["created"] == 5  # folder, two dashboards, two rule groups
    assert grafana.count("PUT", GROUPS_PATH) == 4
    assert len(stored_group(grafana, ALERTS)) > 0 and len(stored_group(grafana, COST_ALERTS)) > 0


def test_a_refused_read_fails_the_groups_and_writes_none(rules_project, grafana):
    grafana.fail_next(1, 403, "/api/v1/provisioning/alert-rules", method="GET",
                      body={"message": "You'll need additional permissions to perform this action."})

    result = push(rules_project, code=1)

    assert status_of(result.stdout, KIND, GROUP) == "failed"
    assert "cannot read Grafana's alert rules: 403" in result.stdout
    assert grafana.count("PUT", GROUPS_PATH) == 0


def test_missing_permission_is_explained(rules_project, grafana):
    grafana.set_token_permissions(TOKEN, role="Editor", permissions=[
        "folders:read", "folders:create", "folders:write", "dashboards:read", "dashboards:create", "dashboards:write",
        "alert.rules:read", "alert.provisioning:read"])

    result = push(rules_project, code=1)

    assert status_of(result.stdout, KIND, GROUP) == "failed"
    assert "the service account needs alert.rules:read/write on folder relaywatch" in result.stdout


def test_invalid_rules_config_sends_nothing(rules_project, grafana):
    use_rules(rules_project, ["grafana"], grafana={"interval": "25s"})

    result = rules_project.run("push")

    assert result.exit_code == 2
    assert "rules.grafana.interval" in result.stderr
    assert grafana.log == []


def test_rules_target_flag_selects_the_kinds(project, grafana):
    result = project.run("push", "--rules-target", "grafana", "--dry-run")

    assert result.exit_code == 0, result.stderr
    assert status_of(result.stdout, KIND, GROUP) == "create"
    plain = project.run("push", "--dry-run")
    assert KIND not in plain.stdout
    assert grafana.count("GET", "/api/v1/provisioning") == 1  # only the run that targets grafana reads rules


def test_token_never_printed_with_rule_groups(rules_project, grafana):
    grafana.fail_next(1, 400, GROUPS_PATH, method="PUT", body={"message": f"bad {TOKEN}"})

    result = rules_project.run("push", "--verbose")

    assert TOKEN not in result.stdout + result.stderr
    assert "bad <redacted>" in result.stdout


def test_prune_after_dropping_the_target_removes_relaywatch_groups(rules_project, grafana):
    push(rules_project)
    _seed_neighbours(grafana)
    use_rules(rules_project, ["files"])
    grafana.clear_log()

    kept = push(rules_project)
    assert KIND not in kept.stdout and grafana.count("GET", "/api/v1/provisioning") == 0
    pruned = push(rules_project, "--prune")

    assert status_of(pruned.stdout, KIND, GROUP) == "deleted"
    assert status_of(pruned.stdout, KIND, COST_GROUP) == "deleted"
    assert sorted(r.uid for r in grafana.state.alert_rules.values()) == ["elsewhere", "team-alert"]


def test_prune_without_access_to_alerting_is_no_failure(project, grafana):
    grafana.set_token_permissions(TOKEN, role="Editor", permissions=[
        "folders:read", "folders:create", "dashboards:read", "dashboards:create", "dashboards:write",
        "dashboards:delete"])

    result = push(project, "--prune")

    assert KIND not in result.stdout and "ruler_rule_group" not in result.stdout
    assert grafana.last("GET", "/api/v1/provisioning/alert-rules").status == 403
