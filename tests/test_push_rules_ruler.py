"""push, diff and prune of data-source-managed rule groups (rules.target ruler) through
Grafana's ruler proxy to an emulated Mimir ruler: JSON to Grafana, YAML upstream, the
namespace relaywatch's own and nothing outside it touched."""

from __future__ import annotations

import pytest
import yaml
from push_support import grafana, project, status_of, summary  # noqa: F401 - fixtures
from rules_push_support import (
    ALERTS, COST_ALERTS, NAMESPACE, RULER_DS, RULER_PATH, body_of, push, rule_writes, ruler_posts,
    set_alert_setting, use_rules,
)

KIND = "ruler_rule_group"


def uid(group: str) -> str:
    return f"{RULER_DS}/{NAMESPACE}/{group}"


@pytest.fixture
def ruler_project(project):
    """Only the ruler target: it carries recording rules and alerts."""
    use_rules(project, ["ruler"])
    return project


def test_push_posts_json_to_grafana_and_grafana_sends_yaml_to_mimir(ruler_project, grafana):
    result = push(ruler_project)

    posts = ruler_posts(grafana)
    names = sorted(body_of(p)["name"] for p in posts)
    assert names == sorted([ALERTS, COST_ALERTS, "llm-gateway-latency", "llm-gateway-tokens", "llm-gateway-traffic"])
    for post in posts:
        assert post.path == f"{RULER_PATH}/{NAMESPACE}" and post.query == {"subtype": ["mimir"]}
        assert post.status == 202
        assert status_of(result.stdout, KIND, uid(body_of(post)["name"])) == "created"
    upstream = grafana.state.upstream_log
    assert {(u.method, u.path, u.content_type) for u in upstream if u.method == "POST"} == {
        ("POST", f"/config/v1/rules/{NAMESPACE}", "application/yaml")}
    for u in (u for u in upstream if u.method == "POST"):
        group = yaml.safe_load(u.body)
        assert not u.body.lstrip().startswith("{") and group["name"] in names and group["rules"]
    stored = grafana.ruler_groups(RULER_DS, NAMESPACE)
    alerts = {r["alert"] for r in stored[ALERTS]["rules"]}
    assert "LLMGatewayErrorRatioHigh" in alerts and all("record" in r for r in stored["llm-gateway-traffic"]["rules"])


def test_bodies_are_valid_prometheus_rule_groups(ruler_project, grafana, promtool, tmp_path):
    import subprocess

    push(ruler_project)
    groups = [body_of(p) for p in ruler_posts(grafana)]
    path = tmp_path / "sent.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}))

    checked = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_second_push_writes_nothing(ruler_project, grafana):
    push(ruler_project)
    grafana.clear_log()

    again = push(ruler_project)

    assert status_of(again.stdout, KIND, uid(ALERTS)) == "unchanged"
    assert rule_writes(grafana) == []
    assert [r.path for r in grafana.reads() if r.path.startswith("/api/ruler")] == [f"{RULER_PATH}/{NAMESPACE}"]


def test_a_changed_threshold_posts_exactly_that_group_and_diff_shows_it(ruler_project, grafana):
    push(ruler_project)
    set_alert_setting(ruler_project, "error_ratio.critical", 0.3)
    grafana.clear_log()

    diff = ruler_project.run("diff", "--exit-code")

    assert diff.exit_code == 1
    assert status_of(diff.stdout, KIND, uid(ALERTS)) == "update"
    assert "changes LLMGatewayErrorRatioHigh" in diff.stdout
    assert f"--- ruler/{uid(ALERTS)}" in diff.stdout
    assert any(line.startswith("+") and "> 0.3" in line for line in diff.stdout.splitlines())
    assert any(line.startswith("-") and "> 0.2" in line for line in diff.stdout.splitlines())
    assert rule_writes(grafana) == []

    pushed = push(ruler_project)

    assert summary(pushed.stdout)["updated"] == 1
    assert rule_writes(grafana) == [("POST", f"{RULER_PATH}/{NAMESPACE}")]
    assert body_of(ruler_posts(grafana)[0])["name"] == ALERTS


def test_dry_run_sends_no_write(ruler_project, grafana):
    result = push(ruler_project, "--dry-run")

    assert status_of(result.stdout, KIND, uid(ALERTS)) == "create"
    assert grafana.writes() == [] and grafana.state.upstream_log == [
        u for u in grafana.state.upstream_log if u.method == "GET"]


def test_a_change_made_in_the_namespace_is_overwritten_and_shown_first(ruler_project, grafana):
    push(ruler_project)
    group = grafana.ruler_groups(RULER_DS, NAMESPACE)["llm-gateway-traffic"]
    group["rules"][0]["expr"] = "vector(1)"
    grafana.seed_ruler_group(RULER_DS, NAMESPACE, group)

    diff = ruler_project.run("diff")
    assert any(line.startswith("-") and line.endswith("expr: vector(1)") for line in diff.stdout.splitlines())
    pushed = push(ruler_project)

    assert status_of(pushed.stdout, KIND, uid("llm-gateway-traffic")) == "updated"
    assert grafana.ruler_groups(RULER_DS, NAMESPACE)["llm-gateway-traffic"]["rules"][0]["expr"] != "vector(1)"


def test_prune_deletes_only_groups_of_relaywatch_namespace(ruler_project, grafana):
    push(ruler_project)
    foreign = {"name": "theirs", "rules": [{"record": "team:up:sum", "expr": "sum(up)"}]}
    grafana.seed_ruler_group(RULER_DS, "other-team", foreign)
    grafana.add_ruler_datasource("other-mimir", "mimir")
    grafana.seed_ruler_group("other-mimir", NAMESPACE, dict(foreign, name=COST_ALERTS))
    (ruler_project.root / "alerts" / "cost.py").unlink()
    grafana.clear_log()

    kept = push(ruler_project)
    assert f"{KIND} {uid(COST_ALERTS)}: unchanged: no longer built; push --prune deletes it" in kept.stdout
    dry = push(ruler_project, "--prune", "--dry-run")
    assert status_of(dry.stdout, KIND, uid(COST_ALERTS)) == "delete"
    assert rule_writes(grafana) == []

    pruned = push(ruler_project, "--prune")

    assert status_of(pruned.stdout, KIND, uid(COST_ALERTS)) == "deleted"
    assert rule_writes(grafana) == [("DELETE", f"{RULER_PATH}/{NAMESPACE}/{COST_ALERTS}")]
    assert COST_ALERTS not in grafana.ruler_groups(RULER_DS, NAMESPACE)
    assert grafana.ruler_groups(RULER_DS, "other-team") == {"theirs": foreign}
    assert list(grafana.ruler_groups("other-mimir", NAMESPACE)) == [COST_ALERTS]
    assert all("other-team" not in r.path for r in grafana.log)


def test_with_the_grafana_target_the_ruler_gets_recording_rules_only(project, grafana):
    use_rules(project, ["grafana", "ruler"])

    result = push(project)

    groups = grafana.ruler_groups(RULER_DS, NAMESPACE)
    assert ALERTS not in groups and groups
    assert all("record" in rule for group in groups.values() for rule in group["rules"])
    assert status_of(result.stdout, "grafana_rule_group", f"relaywatch/{ALERTS}") == "created"


def test_cortex_subtype_uses_grafana_s_rules_prefix(project, grafana):
    grafana.add_ruler_datasource("cortex", "cortex")
    use_rules(project, ["ruler"], ruler={"datasource_uid": "cortex", "subtype": "cortex"})

    push(project)

    assert {(u.method, u.path) for u in grafana.state.upstream_log if u.method == "POST"} == {
        ("POST", f"/rules/{NAMESPACE}")}
    assert ALERTS in grafana.ruler_groups("cortex", NAMESPACE)


def test_a_ruler_without_the_mimir_api_gets_a_hint(project, grafana):
    grafana.add_ruler_datasource("cortex", "cortex")
    use_rules(project, ["ruler"], ruler={"datasource_uid": "cortex", "subtype": "mimir"})

    result = push(project, code=1)

    line = next(line for line in result.stdout.splitlines() if line.startswith(f"{KIND} cortex/{NAMESPACE}/{ALERTS}"))
    assert ": failed: 404 404 page not found" in line
    assert "check rules.ruler.subtype" in line


def test_an_unknown_datasource_fails_every_group_with_one_read(project, grafana):
    use_rules(project, ["ruler"], ruler={"datasource_uid": "nope"})

    result = push(project, code=1)

    assert "data source not found: datasource 'nope' (rules.ruler.datasource_uid) does not exist in Grafana" \
        in result.stdout
    assert status_of(result.stdout, KIND, f"nope/{NAMESPACE}/{ALERTS}") == "failed"
    assert grafana.requests("POST", "/api/ruler") == []


def test_ruler_faults_are_retried(ruler_project, grafana):
    grafana.fail_next(1, 503, RULER_PATH, method="GET")
    grafana.fail_next(2, 502, RULER_PATH, method="POST")

    result = push(ruler_project)

    assert summary(result.stdout)["failed"] == 0
    assert len(grafana.ruler_groups(RULER_DS, NAMESPACE)) == 5


def test_missing_permission_is_explained(ruler_project, grafana):
    from push_support import TOKEN

    grafana.set_token_permissions(TOKEN, role="Editor", permissions=[
        "folders:read", "folders:create", "dashboards:read", "dashboards:create", "dashboards:write",
        "alert.rules.external:read"])

    result = push(ruler_project, code=1)

    assert "needs alert.rules.external:write on datasource 'mimir'" in result.stdout
    assert grafana.ruler_groups(RULER_DS, NAMESPACE) == {}
