"""The emulator's alerting endpoints over real HTTP: the provisioning API's status codes,
bodies, validation and provenance rules, and the ruler proxy (JSON in, YAML upstream)."""

from __future__ import annotations

import copy
import json

import pytest
import requests
import yaml

from grafana_emulator import GrafanaEmulator

TOKEN = "glsa_alerting_test_0001"
FOLDER = "team"
GROUPS = "/api/v1/provisioning/folder"
RULES = "/api/v1/provisioning/alert-rules"


def rule(uid: str = "r1", title: str = "High errors", **changes) -> dict:
    body = {
        "uid": uid, "title": title, "condition": "C", "folderUID": FOLDER, "ruleGroup": "g", "orgID": 1,
        "noDataState": "OK", "execErrState": "Error", "for": "5m", "labels": {"severity": "warning"},
        "annotations": {"summary": "s"}, "isPaused": False,
        "data": [
            {"refId": "A", "datasourceUid": "prom", "relativeTimeRange": {"from": 600, "to": 0},
             "model": {"refId": "A", "expr": "up", "instant": True}},
            {"refId": "C", "datasourceUid": "__expr__", "relativeTimeRange": {"from": 0, "to": 0},
             "model": {"refId": "C", "type": "threshold", "expression": "A",
                       "conditions": [{"evaluator": {"type": "gt", "params": [0.5]}}]}},
        ],
    }
    body.update(changes)
    return body


def group(*rules: dict, interval: int = 60) -> dict:
    return {"title": "ignored", "folderUid": "ignored", "interval": interval, "rules": list(rules)}


class Api:
    def __init__(self, emulator: GrafanaEmulator, token: str = TOKEN):
        self.emulator = emulator
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def __call__(self, method: str, path: str, body=None, *, editable: bool = False, raw: str | None = None,
                 **params):
        headers = {"X-Disable-Provenance": "false"} if editable else {}  # any value counts
        if raw is not None:
            headers["Content-Type"] = "application/yaml"
            return self.session.request(method, self.emulator.url + path, data=raw, headers=headers, params=params)
        return self.session.request(method, self.emulator.url + path, json=body, headers=headers, params=params)


def make(version: str = "11.5.0", **kwargs):
    emulator = GrafanaEmulator(token=TOKEN, version=version, **kwargs).start()
    emulator.seed_folder("Team", uid=FOLDER)
    return emulator, Api(emulator)


@pytest.fixture
def env():
    emulator, api = make()
    yield emulator, api
    emulator.stop()


def put_group(api, name="g", *rules, editable=False, interval=60):
    return api("PUT", f"{GROUPS}/{FOLDER}/rule-groups/{name}", group(*rules, interval=interval), editable=editable)


# -- single rules ------------------------------------------------------------------------


def test_rule_post_get_put_delete_status_codes(env):
    _, api = env
    created = api("POST", RULES, rule())
    assert created.status_code == 201
    assert created.json()["provenance"] == "api" and created.json()["id"] > 0

    got = api("GET", f"{RULES}/r1")
    assert got.status_code == 200 and got.json()["for"] == "5m" and got.json()["uid"] == "r1"
    updated = api("PUT", f"{RULES}/r1", rule(title="Renamed"))
    assert updated.status_code == 200 and updated.json()["title"] == "Renamed"

    assert api("DELETE", f"{RULES}/r1").status_code == 204
    assert api("DELETE", f"{RULES}/r1").status_code == 204  # idempotent
    missing = api("GET", f"{RULES}/r1")
    assert missing.status_code == 404 and missing.content == b""
    assert api("PUT", f"{RULES}/nope", rule(uid="nope")).content == b""


def test_provenance_follows_the_header_s_presence_and_its_transitions(env):
    _, api = env
    assert api("POST", RULES, rule(uid="none"), editable=True).json().get("provenance") is None
    api("POST", RULES, rule(uid="prov", title="Other"))

    refused = api("DELETE", f"{RULES}/prov", editable=True)
    assert refused.status_code == 409
    assert refused.json()["messageId"] == "alerting.provenanceMismatch"
    assert refused.json()["message"] == "cannot delete with provided provenance '', needs 'api'"
    assert api("PUT", f"{RULES}/prov", rule(uid="prov", title="Other"), editable=True).status_code == 500
    assert api("PUT", f"{RULES}/none", rule(uid="none"), editable=False).json()["provenance"] == "api"  # none -> api


def test_rule_validation_messages(env):
    _, api = env
    cases = [
        (rule(**{"for": 300}), "bad request data"),
        (rule(**{"for": "5 minutes"}), "bad request data"),
        (rule(data=[{"refId": "A", "relativeTimeRange": {"from": "10m", "to": 0}}]), "bad request data"),
        (rule(uid="bad uid"), "invalid alert rule: cannot create rule with UID 'bad uid': uid contains illegal "
                              "characters"),
        (rule(uid="x" * 41), "uid too long, max 40 characters"),
        (rule(title=""), "invalid alert rule: title is empty"),
        (rule(title="t" * 191), "invalid alert rule: name length should not be greater than 190"),
        (rule(data=[]), "invalid alert rule: no queries or expressions are found"),
        (rule(noDataState="Maybe"), "invalid alert rule: unknown NoData state option Maybe"),
        (rule(execErrState="Panic"), "invalid alert rule: unknown Error state option Panic"),
        (rule(condition="Z"), "invalid alert rule: condition Z does not exist, must be one of [A,C]"),
        (rule(labels={"__alert_rule_uid__": "x"}), "system reserved label __alert_rule_uid__ cannot be defined"),
        (rule(folderUID="missing"), "invalid alert rule: folder does not exist"),
        (rule(record={"metric": "x:y", "from": "A"}), "recording rules cannot be created on this instance"),
    ]
    for body, message in cases:
        answer = api("POST", RULES, body)
        assert answer.status_code == 400, message
        assert message in answer.json()["message"]
    api("POST", RULES, rule())
    duplicate = api("POST", RULES, rule(uid="r2"))
    assert duplicate.status_code == 400 and "rule title under the same organisation and folder" in \
        duplicate.json()["message"]


# -- rule groups -------------------------------------------------------------------------


def test_group_put_replaces_echoes_and_fills_defaults(env):
    emulator, api = env
    answer = put_group(api, "g", rule("a", "A"), rule("", "No uid"))

    assert answer.status_code == 200
    echo = answer.json()
    assert echo["title"] == "g" and echo["folderUid"] == FOLDER and echo["interval"] == 60
    assert [r["uid"] for r in echo["rules"]] == ["a", ""]  # the echo is not re-read: no generated uid
    stored = api("GET", f"{GROUPS}/{FOLDER}/rule-groups/g").json()
    assert [r["title"] for r in stored["rules"]] == ["A", "No uid"] and stored["rules"][1]["uid"]
    assert all("provenance" not in r for r in stored["rules"])  # the group read leaves provenance out
    listed = {r["title"]: r for r in api("GET", RULES).json()}
    assert listed["A"]["provenance"] == "api"
    model = stored["rules"][0]["data"][1]["model"]
    assert model["intervalMs"] == 1000 and model["maxDataPoints"] == 43200
    assert stored["rules"][0]["data"][0]["queryType"] == ""

    put_group(api, "g", rule("b", "B"))
    assert [r["uid"] for r in api("GET", f"{GROUPS}/{FOLDER}/rule-groups/g").json()["rules"]] == ["b"]
    assert "a" not in emulator.state.alert_rules


def test_group_put_moves_rules_from_other_groups_by_uid(env):
    emulator, api = env
    put_group(api, "old", rule("a", "A"), rule("b", "B"))

    put_group(api, "new", rule("a", "A"))

    assert [r.uid for r in emulator.rule_group(FOLDER, "new")] == ["a"]
    assert [r.uid for r in emulator.rule_group(FOLDER, "old")] == ["b"]


def test_group_validation(env):
    _, api = env
    assert put_group(api, "g", rule(), interval=45).json()["message"] == (
        "invalid alert rule: interval (45s) should be non-zero and divided exactly by scheduler interval: 10")
    assert put_group(api, "g", rule(), interval=0).status_code == 400
    assert put_group(api, "g" * 191, rule()).json()["message"] == (
        "invalid alert rule: rule group name length should not be greater than 190")
    assert "unique" in put_group(api, "g", rule("a", "Same"), rule("b", "Same")).json()["message"]
    assert api("PUT", f"{GROUPS}/nofolder/rule-groups/g", group(rule())).json()["message"] == (
        "invalid alert rule: folder does not exist")
    assert api("PUT", f"{GROUPS}/{FOLDER}/rule-groups/g", raw="title: g\n").json()["message"] == "bad request data"
    assert api("PUT", f"{GROUPS}/{FOLDER}/rule-groups/g", {"interval": 60.5, "rules": []}).status_code == 400


def test_group_provenance_rules(env):
    emulator, api = env
    put_group(api, "g", rule("a", "A"))
    assert put_group(api, "g", rule("a", "A2"), editable=True).status_code == 200  # api -> none is allowed
    assert emulator.state.alert_rules["a"].provenance == ""
    put_group(api, "g", rule("a", "A2"), editable=False)  # unchanged rule: provenance kept
    assert emulator.state.alert_rules["a"].provenance == ""
    emulator.seed_rule_group(FOLDER, "files", [{"title": "From file", "uid": "f"}], provenance="file")

    refused = put_group(api, "files", rule("f", "Changed"))

    assert refused.status_code == 409
    assert refused.json()["message"] == "cannot update with provided provenance 'api', needs 'file'"
    assert api("DELETE", f"{GROUPS}/{FOLDER}/rule-groups/files").status_code == 409


def test_group_get_and_delete(env):
    _, api = env
    missing = api("GET", f"{GROUPS}/{FOLDER}/rule-groups/none")
    assert missing.status_code == 404 and missing.json()["messageId"] == "alerting.alert-rule.notFound"
    put_group(api, "g", rule())
    assert api("DELETE", f"{GROUPS}/{FOLDER}/rule-groups/g").status_code == 204
    assert api("GET", f"{GROUPS}/{FOLDER}/rule-groups/g").status_code == 404
    assert api("DELETE", f"{GROUPS}/{FOLDER}/rule-groups/g").status_code == 404


def test_grafana_10_has_no_group_delete_and_keeps_legacy_bodies():
    emulator, api = make("10.4.0")
    try:
        put_group(api, "g", rule())
        assert api("DELETE", f"{GROUPS}/{FOLDER}/rule-groups/g").status_code == 404
        assert api("GET", f"{GROUPS}/{FOLDER}/rule-groups/none").json() == {"message": "rulegroup not found",
                                                                            "traceID": ""}
        stored = api("GET", f"{RULES}/r1").json()
        assert "record" not in stored and "keep_firing_for" not in stored
        emulator.set_token_permissions(TOKEN, role="Editor")
        assert put_group(api, "g", rule()).status_code == 403  # Editors may use the API from Grafana 11
    finally:
        emulator.stop()


def test_grafana_12_keeps_the_grafana_12_fields():
    emulator, api = make("12.1.0")
    try:
        put_group(api, "g", rule(keep_firing_for="10m", missingSeriesEvalsToResolve=1))
        stored = api("GET", f"{RULES}/r1").json()
        assert stored["keep_firing_for"] == "10m" and stored["missingSeriesEvalsToResolve"] == 1
        assert put_group(api, "g", rule(missingSeriesEvalsToResolve=0)).json()["message"] == (
            "invalid alert rule: field `missing_series_evals_to_resolve` must be greater than 0")
    finally:
        emulator.stop()


def test_grafana_11_drops_them(env):
    _, api = env
    put_group(api, "g", rule(keep_firing_for="10m", missingSeriesEvalsToResolve=1))
    stored = api("GET", f"{RULES}/r1").json()
    assert "keep_firing_for" not in stored and "missingSeriesEvalsToResolve" not in stored


def test_editors_may_write_rules_from_grafana_11_viewers_may_not(env):
    emulator, api = env
    emulator.set_token_permissions(TOKEN, role="Editor")
    assert put_group(api, "g", rule()).status_code == 200
    emulator.set_token_permissions(TOKEN, role="Viewer")
    denied = put_group(api, "g", rule())
    assert denied.status_code == 403 and "alert.provisioning:write" in denied.json()["message"]


# -- ruler proxy -------------------------------------------------------------------------


RULER_GROUP = {"name": "recording", "interval": "30s", "rules": [
    {"record": "job:up:sum", "expr": "sum by (job) (up)"},
    {"alert": "Down", "expr": "job:up:sum == 0", "for": "300s", "labels": {"severity": "critical"},
     "annotations": {"summary": "down"}}]}


@pytest.fixture
def ruler():
    emulator, api = make()
    emulator.add_ruler_datasource("mimir", "mimir")
    yield emulator, api
    emulator.stop()


def test_ruler_post_is_json_in_yaml_upstream_202_out(ruler):
    emulator, api = ruler
    answer = api("POST", "/api/ruler/mimir/api/v1/rules/ns", RULER_GROUP, subtype="mimir")

    assert answer.status_code == 202
    assert answer.json() == {"status": "success", "data": None, "errorType": "", "error": ""}
    upstream = emulator.state.upstream_log[-1]
    assert (upstream.method, upstream.path, upstream.content_type) == ("POST", "/config/v1/rules/ns",
                                                                       "application/yaml")
    sent = yaml.safe_load(upstream.body)
    assert sent["name"] == "recording" and sent["rules"][1]["for"] == "5m"  # durations as the ruler spells them
    namespace = api("GET", "/api/ruler/mimir/api/v1/rules/ns", subtype="mimir")
    assert namespace.status_code == 200
    assert namespace.json() == {"ns": [{"name": "recording", "interval": "30s", "rules": [
        RULER_GROUP["rules"][0], dict(RULER_GROUP["rules"][1], **{"for": "5m"})]}]}
    assert api("GET", "/api/ruler/mimir/api/v1/rules", subtype="mimir").json().keys() == {"ns"}
    assert api("GET", "/api/ruler/mimir/api/v1/rules/ns/recording", subtype="mimir").json()["name"] == "recording"


def test_ruler_refuses_yaml_bodies_and_grafana_payloads(ruler):
    _, api = ruler
    as_yaml = api("POST", "/api/ruler/mimir/api/v1/rules/ns", raw=yaml.safe_dump(RULER_GROUP), subtype="mimir")
    assert as_yaml.status_code == 400 and as_yaml.json()["message"] == "bad request data"
    grafana_rule = {"name": "g", "rules": [{"grafana_alert": {"title": "x", "condition": "A", "data": []}}]}
    answer = api("POST", "/api/ruler/mimir/api/v1/rules/ns", grafana_rule, subtype="mimir")
    assert answer.status_code == 500
    assert answer.json()["message"] == "unexpected backend type (lotex) for payload type (grafana)"
    mixed = copy.deepcopy(grafana_rule)
    mixed["rules"].append({"record": "a:b", "expr": "up"})
    assert api("POST", "/api/ruler/mimir/api/v1/rules/ns", mixed, subtype="mimir").status_code == 400
    number = dict(RULER_GROUP, interval=30)
    assert api("POST", "/api/ruler/mimir/api/v1/rules/ns", number, subtype="mimir").status_code == 400


def test_ruler_relays_the_ruler_s_refusals_and_404s(ruler):
    emulator, api = ruler
    empty = api("GET", "/api/ruler/mimir/api/v1/rules/nothing", subtype="mimir")
    assert empty.status_code == 404 and empty.json()["message"] == "no rule groups found\n"
    bad = {"name": "g", "rules": [{"record": "a:b", "alert": "Both", "expr": "up"}]}
    refused = api("POST", "/api/ruler/mimir/api/v1/rules/ns", bad, subtype="mimir")
    assert refused.status_code == 400 and "only one of 'record' and 'alert'" in refused.json()["message"]
    wrong_prefix = api("POST", "/api/ruler/mimir/api/v1/rules/ns", RULER_GROUP, subtype="cortex")
    assert wrong_prefix.status_code == 404 and wrong_prefix.json()["message"] == "404 page not found\n"
    assert emulator.state.upstream_log[-1].path == "/rules/ns"


def test_ruler_datasource_checks(ruler):
    emulator, api = ruler
    assert api("GET", "/api/ruler/nope/api/v1/rules").json()["message"] == "data source not found"
    emulator.seed_datasource("Tempo", "tempo", uid="tempo", url="http://tempo")
    wrong = api("GET", "/api/ruler/tempo/api/v1/rules")
    assert wrong.status_code == 400 and "unexpected datasource type 'tempo'" in wrong.json()["message"]
    emulator.seed_datasource("No URL", "prometheus", uid="nourl", url="")
    assert api("GET", "/api/ruler/nourl/api/v1/rules").json()["message"] == "URL for this data source is empty"
    emulator.add_ruler_datasource("prom", "prometheus")
    assert api("GET", "/api/ruler/prom/api/v1/rules/ns").json()["message"] == "404 page not found\n"


def test_ruler_loki_prefix_and_cortex_default(ruler):
    emulator, api = ruler
    emulator.add_ruler_datasource("loki", "loki")
    emulator.add_ruler_datasource("cortex", "cortex")
    assert api("POST", "/api/ruler/loki/api/v1/rules/ns", RULER_GROUP, subtype="mimir").status_code == 202
    assert emulator.state.upstream_log[-1].path == "/api/prom/rules/ns"
    assert api("POST", "/api/ruler/cortex/api/v1/rules/ns", RULER_GROUP).status_code == 202
    assert emulator.state.upstream_log[-1].path == "/rules/ns"


def test_ruler_delete_group_and_namespace(ruler):
    emulator, api = ruler
    api("POST", "/api/ruler/mimir/api/v1/rules/ns", RULER_GROUP, subtype="mimir")
    api("POST", "/api/ruler/mimir/api/v1/rules/ns", dict(RULER_GROUP, name="second"), subtype="mimir")

    deleted = api("DELETE", "/api/ruler/mimir/api/v1/rules/ns/recording", subtype="mimir")

    assert deleted.status_code == 202 and json.loads(deleted.json()["message"])["status"] == "success"
    assert list(emulator.ruler_groups("mimir", "ns")) == ["second"]
    assert api("DELETE", "/api/ruler/mimir/api/v1/rules/ns/recording", subtype="mimir").status_code == 404
    assert api("DELETE", "/api/ruler/mimir/api/v1/rules/ns", subtype="mimir").status_code == 202
    assert emulator.ruler_groups("mimir", "ns") == {}


def test_ruler_permissions(ruler):
    emulator, api = ruler
    emulator.set_token_permissions(TOKEN, role="Viewer")
    assert api("GET", "/api/ruler/mimir/api/v1/rules", subtype="mimir").status_code == 200
    denied = api("POST", "/api/ruler/mimir/api/v1/rules/ns", RULER_GROUP, subtype="mimir")
    assert denied.status_code == 403 and "alert.rules.external:write" in denied.json()["message"]
