"""Tests of the Grafana HTTP API emulator, over real HTTP with ``requests``."""

from __future__ import annotations

import base64
import re
import socket
import threading
import time

import pytest
import requests

from grafana_emulator import GrafanaEmulator, make_fixture, slugify

TOKEN = "glsa_test_token_0001"


@pytest.fixture
def grafana():
    with GrafanaEmulator(token=TOKEN, basic_auth=("admin", "secret"), version="11.5.0") as emu:
        yield emu


@pytest.fixture
def api(grafana):
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {TOKEN}"
    s.base = grafana.url  # type: ignore[attr-defined]
    yield s
    s.close()


def url(grafana, path):
    return grafana.url + path


def post_dash(grafana, dashboard, token=TOKEN, **extra):
    body = {"dashboard": dashboard, **extra}
    return requests.post(url(grafana, "/api/dashboards/db"), json=body,
                         headers={"Authorization": f"Bearer {token}"})


def get(grafana, path, token=TOKEN, **kw):
    return requests.get(url(grafana, path), headers={"Authorization": f"Bearer {token}"}, **kw)


# --------------------------------------------------------------------------------------
# Lifecycle
# --------------------------------------------------------------------------------------

def test_start_binds_loopback_free_port():
    emu = GrafanaEmulator().start()
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", emu.url)
        assert emu.port > 0
        assert requests.get(emu.url + "/api/health").status_code == 200
    finally:
        emu.stop()


def test_stop_refuses_connections():
    emu = GrafanaEmulator().start()
    port = emu.port
    emu.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1)
    with pytest.raises(RuntimeError):
        _ = emu.url


def test_fixed_port_option():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with GrafanaEmulator(port=port) as emu:
        assert emu.url == f"http://127.0.0.1:{port}"
        assert requests.get(emu.url + "/api/health").status_code == 200


def test_two_emulators_get_distinct_ports():
    with GrafanaEmulator() as a, GrafanaEmulator() as b:
        assert a.port != b.port
        post_dash(a, {"title": "only in a", "uid": "a1"}, token=a.token)
        assert get(b, "/api/dashboards/uid/a1", token=b.token).status_code == 404


grafana12 = make_fixture(name="grafana12", version="12.1.0", token=TOKEN)


def test_make_fixture_yields_started_emulator(grafana12):
    body = requests.get(grafana12.url + "/api/health").json()
    assert body["version"] == "12.1.0"


def test_reset_clears_state_log_faults_and_lockouts(grafana):
    post_dash(grafana, {"title": "x", "uid": "x"})
    grafana.fail_next(5, 503)
    grafana.reset()
    assert grafana.state.dashboards == {}
    assert grafana.log == []
    r = get(grafana, "/api/dashboards/uid/x")
    assert r.status_code == 404
    assert get(grafana, "/api/search").status_code == 200  # injected faults gone


# --------------------------------------------------------------------------------------
# Health
# --------------------------------------------------------------------------------------

def test_health_needs_no_auth_and_is_pretty_sorted(grafana):
    r = requests.get(url(grafana, "/api/health"))
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert r.json() == {"commit": "emulator", "database": "ok", "version": "11.5.0"}
    assert r.text.startswith('{\n  "commit": ')


def test_health_head_has_no_body(grafana):
    r = requests.head(url(grafana, "/api/health"))
    assert r.status_code == 200
    assert r.content == b""


def test_health_503_when_database_failing(grafana):
    grafana.set_database_healthy(False)
    r = requests.get(url(grafana, "/api/health"))
    assert r.status_code == 503
    assert r.json()["database"] == "failing"


def test_health_hide_version():
    with GrafanaEmulator(hide_version=True) as emu:
        assert requests.get(emu.url + "/api/health").json() == {"database": "ok"}


def test_healthz_plain_ok(grafana):
    r = requests.get(url(grafana, "/healthz"))
    assert (r.status_code, r.text) == (200, "Ok")


# --------------------------------------------------------------------------------------
# Authentication and authorisation
# --------------------------------------------------------------------------------------

UNAUTH = {"message": "Unauthorized", "messageId": "auth.unauthorized", "statusCode": 401,
          "traceID": ""}


def test_missing_credentials_401_auth_unauthorized(grafana):
    r = requests.get(url(grafana, "/api/search"))
    assert r.status_code == 401
    assert r.json() == UNAUTH


def test_unknown_scheme_is_like_missing_credentials(grafana):
    r = requests.get(url(grafana, "/api/search"), headers={"Authorization": "Token abc"})
    assert (r.status_code, r.json()) == (401, UNAUTH)


def test_legacy_unauthorized_body_option():
    with GrafanaEmulator(legacy_unauthorized_body=True) as emu:
        r = requests.get(emu.url + "/api/search")
        assert (r.status_code, r.json()) == (401, {"message": "Unauthorized"})


def test_unknown_token_401_api_key_invalid(grafana):
    r = get(grafana, "/api/search", token="glsa_nope")
    assert r.status_code == 401
    assert r.json() == {"message": "Invalid API key", "messageId": "api-key.invalid",
                        "statusCode": 401, "traceID": ""}


@pytest.mark.parametrize("flag,message_id,message", [
    ("expired", "api-key.expired", "Expired API key"),
    ("revoked", "api-key.revoked", "Revoked API key"),
])
def test_expired_and_revoked_tokens(grafana, flag, message_id, message):
    grafana.add_token("glsa_x", **{flag: True})
    r = get(grafana, "/api/search", token="glsa_x")
    assert r.status_code == 401
    assert (r.json()["messageId"], r.json()["message"]) == (message_id, message)


def test_token_bound_to_org_one(grafana):
    h = {"Authorization": f"Bearer {TOKEN}", "X-Grafana-Org-Id": "2"}
    r = requests.get(url(grafana, "/api/search"), headers=h)
    assert r.status_code == 401
    assert r.json()["messageId"] == "api-key.organization-mismatch"
    h["X-Grafana-Org-Id"] = "1"
    assert requests.get(url(grafana, "/api/search"), headers=h).status_code == 200


def test_basic_auth_ok_and_wrong_password(grafana):
    assert requests.get(url(grafana, "/api/search"), auth=("admin", "secret")).status_code == 200
    r = requests.get(url(grafana, "/api/search"), auth=("admin", "wrong"))
    assert r.status_code == 401
    assert r.json() == {"message": "Invalid username or password",
                        "messageId": "password-auth.failed", "statusCode": 401, "traceID": ""}


def test_basic_auth_lockout_after_five_failures_blocks_correct_password(grafana):
    for _ in range(5):
        assert requests.get(url(grafana, "/api/org"), auth=("admin", "bad")).status_code == 401
    r = requests.get(url(grafana, "/api/org"), auth=("admin", "secret"))
    assert r.status_code == 401
    assert r.json()["messageId"] == "login-attempt.blocked"
    # the token still works: only the password login is blocked
    assert get(grafana, "/api/org").status_code == 200


def test_basic_auth_four_failures_do_not_lock(grafana):
    for _ in range(4):
        requests.get(url(grafana, "/api/org"), auth=("admin", "bad"))
    assert requests.get(url(grafana, "/api/org"), auth=("admin", "secret")).status_code == 200


def test_lockout_can_be_disabled():
    with GrafanaEmulator(brute_force_protection=False) as emu:
        for _ in range(8):
            requests.get(emu.url + "/api/org", auth=("admin", "bad"))
        assert requests.get(emu.url + "/api/org", auth=("admin", "secret")).status_code == 200


def test_undecodable_basic_header_is_400(grafana):
    r = requests.get(url(grafana, "/api/org"), headers={"Authorization": "Basic %%%"})
    assert r.status_code == 400
    assert r.json()["messageId"] == "basic-auth.invalid-decode"


def test_basic_auth_with_api_key_user_uses_token(grafana):
    r = requests.get(url(grafana, "/api/search"), auth=("api_key", TOKEN))
    assert r.status_code == 200


def test_read_only_token_gets_rbac_403_on_write(grafana):
    grafana.add_token("glsa_ro", name="reader", role="Viewer")
    grafana.seed_dashboard({"title": "seeded", "uid": "s1"})
    assert get(grafana, "/api/dashboards/uid/s1", token="glsa_ro").status_code == 200
    r = post_dash(grafana, {"title": "nope"}, token="glsa_ro")
    assert r.status_code == 403
    body = r.json()
    assert set(body) == {"title", "message", "accessErrorId"}
    assert body["title"] == "Access denied"
    assert body["message"] == ("You'll need additional permissions to perform this action. "
                               "Permissions needed: any of dashboards:create, dashboards:write")
    assert re.fullmatch(r"ACE\d{10}", body["accessErrorId"])
    assert "nope" not in [d.title for d in grafana.state.dashboards.values()]


def test_explicit_permissions_create_only_token_cannot_update(grafana):
    grafana.add_token("glsa_c", name="creator", permissions={"dashboards:create",
                                                             "dashboards:read"})
    r = post_dash(grafana, {"title": "mine", "uid": "m1"}, token="glsa_c")
    assert r.status_code == 200
    r = post_dash(grafana, {"title": "mine2", "uid": "m1"}, token="glsa_c", overwrite=True)
    assert r.status_code == 403
    assert r.json() == {"message": "Access denied to save dashboard", "traceID": ""}


def test_set_token_permissions_changes_access(grafana):
    grafana.set_token_permissions(TOKEN, {"dashboards:read"})
    assert post_dash(grafana, {"title": "t"}).status_code == 403
    grafana.set_token_permissions(TOKEN, None, role="Admin")
    assert post_dash(grafana, {"title": "t"}).status_code == 200


def test_editor_cannot_create_datasource(grafana):
    grafana.add_token("glsa_ed", name="editor", role="Editor")
    r = requests.post(url(grafana, "/api/datasources"), json={"name": "p", "type": "prometheus"},
                      headers={"Authorization": "Bearer glsa_ed"})
    assert r.status_code == 403
    assert r.json()["message"].endswith("Permissions needed: datasources:create")


def test_unknown_api_route_404_without_auth(grafana):
    r = requests.get(url(grafana, "/api/nothing-here"))
    assert (r.status_code, r.json()) == (404, {"message": "Not found"})


# --------------------------------------------------------------------------------------
# /api/user, /api/org, permissions
# --------------------------------------------------------------------------------------

def test_user_endpoint_with_service_account_token_11_5(grafana):
    r = get(grafana, "/api/user")
    assert r.status_code == 200
    body = r.json()
    sa = grafana.state.tokens[TOKEN].user_id
    assert body["uid"] == f"service-account:{sa}"
    assert body["login"] == "sa-1-relaywatch" and body["id"] == 0
    assert body["authLabels"] is None


def test_user_endpoint_service_account_forbidden_between_10_3_and_11_2():
    with GrafanaEmulator(token=TOKEN, version="11.1.0") as emu:
        r = get(emu, "/api/user")
        assert (r.status_code, r.json()) == (403, {"message": "Endpoint only available for users"})


def test_user_endpoint_service_account_row_before_10_3():
    with GrafanaEmulator(token=TOKEN, version="10.2.3") as emu:
        body = get(emu, "/api/user").json()
        assert body["id"] == emu.state.tokens[TOKEN].user_id
        assert body["login"] == "sa-1-relaywatch"


def test_user_endpoint_basic_auth_profile(grafana):
    body = requests.get(url(grafana, "/api/user"), auth=("admin", "secret")).json()
    assert body["login"] == "admin" and body["isGrafanaAdmin"] is True
    assert body["email"] == "admin@localhost" and body["orgId"] == 1
    assert body["avatarUrl"].startswith("/avatar/")


def test_org_endpoint_works_for_token_and_basic(grafana):
    for kw in ({"headers": {"Authorization": f"Bearer {TOKEN}"}}, {"auth": ("admin", "secret")}):
        r = requests.get(url(grafana, "/api/org"), **kw)
        assert r.status_code == 200
        assert r.json()["id"] == 1 and r.json()["name"] == "Main Org."


def test_org_endpoint_needs_orgs_read(grafana):
    grafana.add_token("glsa_none", name="nobody", role="None")
    r = get(grafana, "/api/org", token="glsa_none")
    assert r.status_code == 403
    assert r.json()["message"].endswith("Permissions needed: orgs:read")


def test_permissions_endpoint_reflects_role(grafana):
    grafana.add_token("glsa_v", name="viewer", role="Viewer")
    perms = get(grafana, "/api/access-control/user/permissions", token="glsa_v").json()
    assert "dashboards:read" in perms and "dashboards:write" not in perms
    admin = get(grafana, "/api/access-control/user/permissions").json()
    assert "datasources:create" in admin


# --------------------------------------------------------------------------------------
# Body handling (reference 0.1)
# --------------------------------------------------------------------------------------

BAD = {"message": "bad request data", "traceID": ""}


def test_invalid_json_is_400_bad_request_data(grafana, api):
    r = api.post(url(grafana, "/api/dashboards/db"), data=b'{"dashboard": {',
                 headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()) == (400, BAD)


def test_json_decoded_regardless_of_content_type(grafana, api):
    r = api.post(url(grafana, "/api/dashboards/db"), data=b'{"dashboard": {"title": "t"}}',
                 headers={"Content-Type": "text/plain"})
    assert r.status_code == 200


def test_unknown_fields_ignored(grafana):
    r = post_dash(grafana, {"title": "t"}, whatever=1, nested={"x": 1})
    assert r.status_code == 200


def test_missing_required_dashboard_is_400(grafana, api):
    r = api.post(url(grafana, "/api/dashboards/db"), json={"overwrite": True})
    assert (r.status_code, r.json()) == (400, BAD)
    r = api.post(url(grafana, "/api/dashboards/db"))  # empty body: EOF ignored, then Required
    assert (r.status_code, r.json()) == (400, BAD)


@pytest.mark.parametrize("body", [
    {"dashboard": {"title": "t"}, "overwrite": "yes"},
    {"dashboard": {"title": "t"}, "message": 5},
    {"dashboard": {"title": "t"}, "folderId": 1.5},
    {"dashboard": [1, 2]},
    [{"dashboard": {"title": "t"}}],
])
def test_type_errors_are_400(grafana, api, body):
    r = api.post(url(grafana, "/api/dashboards/db"), json=body)
    assert (r.status_code, r.json()) == (400, BAD)


def test_go_decoder_quirks_trailing_bytes_and_case_insensitive_keys(grafana, api):
    r = api.post(url(grafana, "/api/dashboards/db"),
                 data=b'{"Dashboard": {"title": "t", "uid": "ci"}} trailing-garbage')
    assert r.status_code == 200
    assert "ci" in grafana.state.dashboards


# --------------------------------------------------------------------------------------
# POST /api/dashboards/db (reference 3.1)
# --------------------------------------------------------------------------------------

def test_create_returns_success_body(grafana):
    r = post_dash(grafana, {"title": "Relay Overview", "uid": "relay-ov"})
    assert r.status_code == 200
    body = r.json()
    assert body == {"folderUid": "", "id": body["id"], "slug": "relay-overview",
                    "status": "success", "uid": "relay-ov", "url": "/d/relay-ov/relay-overview",
                    "version": 1}
    assert isinstance(body["id"], int) and body["id"] > 0


def test_create_without_uid_generates_valid_uid(grafana):
    body = post_dash(grafana, {"title": "No uid"}).json()
    assert re.fullmatch(r"[a-z0-9]{14}", body["uid"])
    got = get(grafana, f"/api/dashboards/uid/{body['uid']}").json()
    assert got["dashboard"]["uid"] == body["uid"]


def _make_v3(grafana, uid="m"):
    post_dash(grafana, {"title": "v", "uid": uid})
    post_dash(grafana, {"title": "v", "uid": uid, "version": 1})
    r = post_dash(grafana, {"title": "v", "uid": uid, "version": 2})
    assert r.json()["version"] == 3


@pytest.mark.parametrize("version,overwrite,status,new_version", [
    (3, False, 200, 4),       # matching version
    (2, False, 412, None),    # stale
    (5, False, 412, None),    # ahead is a mismatch too
    ("absent", False, 412, None),
    (2, True, 200, 4),        # overwrite replaces the request version with the stored one
    ("absent", True, 200, 4),
    (99, True, 200, 4),
])
def test_version_overwrite_matrix(grafana, version, overwrite, status, new_version):
    _make_v3(grafana)
    dash = {"id": None, "uid": "m", "title": "v"}
    if version != "absent":
        dash["version"] = version
    r = post_dash(grafana, dash, overwrite=overwrite)
    assert r.status_code == status
    if status == 200:
        assert r.json()["version"] == new_version
        assert grafana.state.dashboards["m"].version == new_version
    else:
        assert r.json() == {"message": "The dashboard has been changed by someone else",
                            "status": "version-mismatch"}
        assert grafana.state.dashboards["m"].version == 3


def test_null_id_with_existing_uid_updates_same_row(grafana):
    first = post_dash(grafana, {"title": "a", "uid": "same"}).json()
    second = post_dash(grafana, {"id": None, "title": "b", "uid": "same"}, overwrite=True).json()
    assert second["id"] == first["id"] and second["version"] == 2
    assert len(grafana.state.dashboards) == 1


def test_unknown_numeric_id_is_404_not_found(grafana):
    r = post_dash(grafana, {"id": 4242, "title": "ghost", "uid": "ghost"})
    assert r.status_code == 404
    assert r.json() == {"message": "Dashboard not found", "status": "not-found"}


def test_id_and_uid_of_different_rows_is_400(grafana):
    a = post_dash(grafana, {"title": "a", "uid": "ua"}).json()
    post_dash(grafana, {"title": "b", "uid": "ub"})
    r = post_dash(grafana, {"id": a["id"], "uid": "ub", "title": "b", "version": 1})
    assert (r.status_code, r.json()) == (400, {"message": "A dashboard with the same uid already exists"})


def test_id_only_updates_and_keeps_uid(grafana):
    a = post_dash(grafana, {"title": "a", "uid": "keep"}).json()
    r = post_dash(grafana, {"id": a["id"], "title": "renamed", "version": 1})
    assert r.status_code == 200
    assert r.json()["uid"] == "keep" and r.json()["version"] == 2


def test_folder_not_found_is_400(grafana):
    r = post_dash(grafana, {"title": "t"}, folderUid="missing")
    assert (r.status_code, r.json()) == (400, {"message": "folder not found"})


def test_missing_folder_uid_moves_dashboard_to_root(grafana):
    grafana.seed_folder("Team", uid="team")
    post_dash(grafana, {"title": "t", "uid": "mv"}, folderUid="team")
    assert get(grafana, "/api/dashboards/uid/mv").json()["meta"]["folderUid"] == "team"
    r = post_dash(grafana, {"title": "t", "uid": "mv"}, overwrite=True)
    assert r.json()["folderUid"] == ""
    meta = get(grafana, "/api/dashboards/uid/mv").json()["meta"]
    assert (meta["folderUid"], meta["folderTitle"], meta["folderId"]) == ("", "General", 0)


def test_deprecated_folder_id_is_resolved(grafana):
    f = grafana.seed_folder("Team", uid="team")
    r = post_dash(grafana, {"title": "t"}, folderId=f.id)
    assert r.json()["folderUid"] == "team"
    assert post_dash(grafana, {"title": "t"}, folderId=999).status_code == 400


@pytest.mark.parametrize("title", ["", "   ", None])
def test_empty_title_400_empty_name(grafana, title):
    dash = {"uid": "e"} if title is None else {"title": title, "uid": "e"}
    r = post_dash(grafana, dash)
    assert (r.status_code, r.json()) == (400, {"message": "Dashboard title cannot be empty",
                                               "status": "empty-name"})


def test_title_too_long(grafana):
    r = post_dash(grafana, {"title": "x" * 5001})
    assert r.status_code == 400 and r.json()["status"] == "title-too-long"
    assert post_dash(grafana, {"title": "x" * 5000}).status_code == 200


def test_message_limit_500(grafana):
    r = post_dash(grafana, {"title": "t"}, message="m" * 501)
    assert (r.status_code, r.json()) == (400, {"message": "message too long, max 500 characters"})
    assert post_dash(grafana, {"title": "t"}, message="m" * 500).status_code == 200


@pytest.mark.parametrize("uid,message", [
    ("has space", "uid contains illegal characters"),
    ("dot.ted", "uid contains illegal characters"),
    ("x" * 41, "uid too long, max 40 characters"),
])
def test_uid_validation(grafana, uid, message):
    r = post_dash(grafana, {"title": "t", "uid": uid})
    assert (r.status_code, r.json()) == (400, {"message": message})


def test_uid_of_40_chars_with_dash_and_underscore_ok(grafana):
    uid = ("a-b_" * 10)[:40]
    assert post_dash(grafana, {"title": "t", "uid": uid}).json()["uid"] == uid


def test_is_folder_rejected(grafana):
    r = post_dash(grafana, {"title": "t"}, isFolder=True)
    assert (r.status_code, r.json()) == (400, {"message": "Use folders endpoint for saving folders."})


def test_dashboard_uid_equal_to_folder_uid_is_type_mismatch(grafana):
    grafana.seed_folder("F", uid="shared")
    r = post_dash(grafana, {"title": "t", "uid": "shared"}, overwrite=True)
    assert (r.status_code, r.json()) == (400, {"message": "Dashboard cannot be changed to a folder"})


def test_titles_not_unique_since_11_3(grafana):
    assert post_dash(grafana, {"title": "Same", "uid": "s1"}).status_code == 200
    assert post_dash(grafana, {"title": "Same", "uid": "s2"}).status_code == 200
    assert len(grafana.state.dashboards) == 2


def test_legacy_name_exists_mode():
    with GrafanaEmulator(token=TOKEN, version="11.2.0") as emu:
        first = post_dash(emu, {"title": "Same", "uid": "s1"}).json()
        r = post_dash(emu, {"title": "Same", "uid": "s2"})
        assert r.status_code == 412
        assert r.json() == {"message": "A dashboard with the same name in the folder already "
                                       "exists", "status": "name-exists"}
        # overwrite takes over the other dashboard's uid (the dangerous old behaviour)
        r = post_dash(emu, {"title": "Same", "uid": "s2"}, overwrite=True)
        assert r.json()["uid"] == first["uid"] and r.json()["version"] == 2


def test_legacy_name_match_with_folder():
    with GrafanaEmulator(token=TOKEN, unique_titles=True) as emu:
        emu.seed_folder("Ops", uid="ops")
        r = post_dash(emu, {"title": "Ops"})
        assert (r.status_code, r.json()) == (400, {"message": "Dashboard name cannot be the same "
                                                              "as folder", "status": "name-match"})


def test_created_and_updated_by_follow_identity(grafana):
    post_dash(grafana, {"title": "t", "uid": "who"})
    grafana.ui_edit("who", lambda d: d.update(title="edited in UI"), user="alice")
    meta = get(grafana, "/api/dashboards/uid/who").json()["meta"]
    assert (meta["createdBy"], meta["updatedBy"]) == ("sa-1-relaywatch", "alice")
    assert meta["version"] == 2
    requests.post(url(grafana, "/api/dashboards/db"), auth=("admin", "secret"),
                  json={"dashboard": {"title": "t", "uid": "who"}, "overwrite": True})
    assert get(grafana, "/api/dashboards/uid/who").json()["meta"]["updatedBy"] == "admin"


def test_ui_edit_makes_stale_push_fail(grafana):
    post_dash(grafana, {"title": "t", "uid": "race"})
    got = get(grafana, "/api/dashboards/uid/race").json()
    grafana.ui_edit("race", lambda d: d.update(title="changed"))
    dash = got["dashboard"]
    dash["title"] = "push"
    r = post_dash(grafana, dash)
    assert r.status_code == 412 and r.json()["status"] == "version-mismatch"
    assert grafana.state.dashboards["race"].title == "changed"


def test_provisioned_dashboard_cannot_be_saved_or_deleted(grafana):
    grafana.seed_dashboard({"title": "prov", "uid": "prov"},
                           provisioned={"name": "default", "external_id": "team/prov.json"})
    r = post_dash(grafana, {"title": "prov", "uid": "prov"}, overwrite=True)
    assert (r.status_code, r.json()) == (400, {"message": "Cannot save provisioned dashboard"})
    meta = get(grafana, "/api/dashboards/uid/prov").json()["meta"]
    assert meta["provisioned"] is True and meta["provisionedExternalId"] == "team/prov.json"
    r = requests.delete(url(grafana, "/api/dashboards/uid/prov"), headers=grafana.auth_headers())
    assert (r.status_code, r.json()) == (400, {"message": "provisioned dashboard cannot be deleted",
                                               "traceID": ""})


def test_provisioned_with_ui_updates_can_be_saved(grafana):
    grafana.seed_dashboard({"title": "prov", "uid": "prov"},
                           provisioned={"name": "d", "external_id": "p.json",
                                        "allow_ui_updates": True})
    assert post_dash(grafana, {"title": "p2", "uid": "prov"}, overwrite=True).status_code == 200
    assert get(grafana, "/api/dashboards/uid/prov").json()["meta"]["provisioned"] is False


def test_plugin_dashboard_needs_overwrite(grafana):
    grafana.seed_dashboard({"title": "plug", "uid": "plug"}, plugin_id="my-app")
    r = post_dash(grafana, {"title": "plug", "uid": "plug", "version": 1})
    assert (r.status_code, r.json()) == (412, {"message": "The dashboard belongs to plugin my-app.",
                                               "status": "plugin-dashboard"})
    assert post_dash(grafana, {"title": "plug", "uid": "plug"}, overwrite=True).status_code == 200


def test_quota_reached_on_create_only():
    with GrafanaEmulator(token=TOKEN, dashboard_quota=1) as emu:
        assert post_dash(emu, {"title": "1", "uid": "q1"}).status_code == 200
        r = post_dash(emu, {"title": "2", "uid": "q2"})
        assert (r.status_code, r.json()) == (403, {"message": "Quota reached"})


def test_short_refresh_silently_raised(grafana):
    post_dash(grafana, {"title": "r", "uid": "r1", "refresh": "1s"})
    post_dash(grafana, {"title": "r", "uid": "r2", "refresh": False})
    post_dash(grafana, {"title": "r", "uid": "r3", "refresh": "1m"})
    assert grafana.state.dashboards["r1"].data["refresh"] == "5s"
    assert grafana.state.dashboards["r2"].data["refresh"] is False
    assert grafana.state.dashboards["r3"].data["refresh"] == "1m"


# --------------------------------------------------------------------------------------
# GET / DELETE /api/dashboards/uid/:uid
# --------------------------------------------------------------------------------------

def test_get_dashboard_syncs_version_and_meta(grafana):
    grafana.seed_folder("Team A", uid="team-a")
    post_dash(grafana, {"title": "G", "uid": "g", "version": 77, "schemaVersion": 41,
                        "panels": []}, folderUid="team-a")
    r = get(grafana, "/api/dashboards/uid/g")
    assert r.status_code == 200
    body = r.json()
    assert list(body) == ["meta", "dashboard"]
    d, m = body["dashboard"], body["meta"]
    assert d["version"] == m["version"] == 1 and d["uid"] == "g" and isinstance(d["id"], int)
    assert list(d) == sorted(d)  # Go marshals the simplejson map with sorted keys
    assert m["folderUid"] == "team-a" and m["folderTitle"] == "Team A"
    assert m["folderUrl"] == "/dashboards/f/team-a/team-a"
    assert m["folderId"] == grafana.state.folders["team-a"].id
    assert m["url"] == "/d/g/g" and m["type"] == "db" and m["provisioned"] is False
    assert m["canSave"] is True and m["expires"] == "0001-01-01T00:00:00Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", m["updated"])


def test_get_unknown_dashboard_404(grafana):
    r = get(grafana, "/api/dashboards/uid/nope")
    assert (r.status_code, r.json()) == (404, {"message": "Dashboard not found", "traceID": ""})


def test_delete_dashboard(grafana):
    post_dash(grafana, {"title": "Doomed", "uid": "doomed"})
    r = requests.delete(url(grafana, "/api/dashboards/uid/doomed"), headers=grafana.auth_headers())
    assert r.status_code == 200
    assert r.json() == {"message": "Dashboard Doomed deleted", "title": "Doomed", "uid": "doomed"}
    assert get(grafana, "/api/dashboards/uid/doomed").status_code == 404
    assert "doomed" not in grafana.state.versions
    r = requests.delete(url(grafana, "/api/dashboards/uid/doomed"), headers=grafana.auth_headers())
    assert (r.status_code, r.json()) == (404, {"message": "Dashboard not found", "traceID": ""})


def test_delete_folder_through_dashboard_endpoint_is_400(grafana):
    grafana.seed_folder("F", uid="f")
    r = requests.delete(url(grafana, "/api/dashboards/uid/f"), headers=grafana.auth_headers())
    assert (r.status_code, r.json()) == (400, {"message": "Use folders endpoint for deleting folders."})


def test_dashboard_tags(grafana):
    post_dash(grafana, {"title": "a", "tags": ["llm", "prod"]})
    post_dash(grafana, {"title": "b", "tags": ["llm"]})
    assert get(grafana, "/api/dashboards/tags").json() == [{"term": "llm", "count": 2},
                                                           {"term": "prod", "count": 1}]


# --------------------------------------------------------------------------------------
# Versions and restore (reference 3.4)
# --------------------------------------------------------------------------------------

def _three_versions(grafana, uid="hist"):
    post_dash(grafana, {"title": "one", "uid": uid}, message="first push")
    post_dash(grafana, {"title": "two", "uid": uid, "version": 1}, message="second push")
    post_dash(grafana, {"title": "three", "uid": uid, "version": 2}, message="third push")


VERSION_KEYS = ["id", "dashboardId", "uid", "parentVersion", "restoredFrom", "version",
                "created", "message", "data", "createdBy"]


def test_versions_list_is_array_in_11(grafana):
    _three_versions(grafana)
    r = get(grafana, "/api/dashboards/uid/hist/versions")
    assert r.status_code == 200
    items = r.json()
    assert isinstance(items, list) and [i["version"] for i in items] == [3, 2, 1]
    assert all(list(i) == VERSION_KEYS for i in items)
    assert [i["message"] for i in items] == ["third push", "second push", "Initial save"]
    assert [i["parentVersion"] for i in items] == [2, 1, 0]
    assert all(i["uid"] == "hist" and i["data"] is None for i in items)
    assert items[0]["createdBy"] == "sa-1-relaywatch"
    assert items[0]["dashboardId"] == grafana.state.dashboards["hist"].id


def test_versions_limit_and_start_in_11(grafana):
    _three_versions(grafana)
    items = get(grafana, "/api/dashboards/uid/hist/versions", params={"limit": 1, "start": 1}).json()
    assert [i["version"] for i in items] == [2]


def test_versions_envelope_in_12_with_continue_token(grafana12):
    _three_versions(grafana12)
    body = get(grafana12, "/api/dashboards/uid/hist/versions").json()
    assert set(body) == {"continueToken", "versions"} and body["continueToken"] == ""
    assert [v["version"] for v in body["versions"]] == [3, 2, 1]
    page1 = get(grafana12, "/api/dashboards/uid/hist/versions", params={"limit": 2}).json()
    assert [v["version"] for v in page1["versions"]] == [3, 2] and page1["continueToken"]
    page2 = get(grafana12, "/api/dashboards/uid/hist/versions",
                params={"limit": 2, "continueToken": page1["continueToken"]}).json()
    assert [v["version"] for v in page2["versions"]] == [1] and page2["continueToken"] == ""


def test_versions_envelope_override():
    with GrafanaEmulator(token=TOKEN, version="11.5.0", versions_envelope=True) as emu:
        post_dash(emu, {"title": "x", "uid": "x"})
        assert "versions" in get(emu, "/api/dashboards/uid/x/versions").json()
    with GrafanaEmulator(token=TOKEN, version="12.0.0", versions_envelope=False) as emu:
        post_dash(emu, {"title": "x", "uid": "x"})
        assert isinstance(get(emu, "/api/dashboards/uid/x/versions").json(), list)


def test_versions_of_unknown_dashboard_404(grafana):
    r = get(grafana, "/api/dashboards/uid/none/versions")
    assert (r.status_code, r.json()) == (404, {"message": "Dashboard not found", "traceID": ""})


def test_versions_need_dashboards_write(grafana):
    grafana.add_token("glsa_ro", name="reader", role="Viewer")
    post_dash(grafana, {"title": "x", "uid": "x"})
    r = get(grafana, "/api/dashboards/uid/x/versions", token="glsa_ro")
    assert r.status_code == 403 and r.json()["message"].endswith("dashboards:write")


def test_get_single_version_has_data(grafana):
    _three_versions(grafana)
    body = get(grafana, "/api/dashboards/uid/hist/versions/2").json()
    assert list(body) == VERSION_KEYS
    assert body["version"] == 2 and body["data"]["title"] == "two"
    assert body["message"] == "second push"
    r = get(grafana, "/api/dashboards/uid/hist/versions/9")
    assert r.status_code == 500
    assert r.json()["message"] == (f"Dashboard version 9 not found for dashboardId "
                                   f"{grafana.state.dashboards['hist'].id}")


def test_restore_creates_new_version_from_old_json(grafana):
    _three_versions(grafana)
    r = requests.post(url(grafana, "/api/dashboards/uid/hist/restore"), json={"version": 1},
                      headers=grafana.auth_headers())
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "success" and body["version"] == 4 and body["uid"] == "hist"
    assert get(grafana, "/api/dashboards/uid/hist").json()["dashboard"]["title"] == "one"
    top = get(grafana, "/api/dashboards/uid/hist/versions").json()[0]
    assert (top["version"], top["restoredFrom"], top["message"]) == (4, 1, "Restored from version 1")
    stored = get(grafana, "/api/dashboards/uid/hist/versions/4").json()
    assert stored["message"] == "Restored from version 1"  # the row's own message, not rewritten
    assert stored["parentVersion"] == 3 and stored["data"]["version"] == 4


def test_restore_keeps_folder(grafana):
    grafana.seed_folder("F", uid="f")
    post_dash(grafana, {"title": "a", "uid": "rf"}, folderUid="f")
    post_dash(grafana, {"title": "b", "uid": "rf", "version": 1}, folderUid="f")
    requests.post(url(grafana, "/api/dashboards/uid/rf/restore"), json={"version": 1},
                  headers=grafana.auth_headers())
    assert grafana.state.dashboards["rf"].folder_uid == "f"


def test_restore_errors(grafana):
    _three_versions(grafana)
    h = grafana.auth_headers()
    r = requests.post(url(grafana, "/api/dashboards/uid/hist/restore"), json={"version": 42}, headers=h)
    assert (r.status_code, r.json()) == (404, {"message": "Dashboard version not found"})
    r = requests.post(url(grafana, "/api/dashboards/uid/hist/restore"), json={}, headers=h)
    assert (r.status_code, r.json()) == (400, BAD)
    r = requests.post(url(grafana, "/api/dashboards/uid/zzz/restore"), json={"version": 1}, headers=h)
    assert r.status_code == 404 and r.json()["message"] == "Dashboard not found"


# --------------------------------------------------------------------------------------
# Search (reference 3.5)
# --------------------------------------------------------------------------------------

def _search(grafana, **params):
    r = get(grafana, "/api/search", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def _seed_tree(grafana):
    grafana.seed_folder("Team", uid="team")
    grafana.seed_dashboard({"title": "Latency", "uid": "lat", "tags": ["llm", "prod"]},
                           folder_uid="team")
    grafana.seed_dashboard({"title": "Tokens", "uid": "tok", "tags": ["llm"]})
    grafana.seed_dashboard({"title": "Errors", "uid": "err", "tags": ["prod"]})


def test_search_hit_fields(grafana):
    _seed_tree(grafana)
    hits = {h["uid"]: h for h in _search(grafana)}
    lat, tok, team = hits["lat"], hits["tok"], hits["team"]
    assert list(lat) == ["id", "uid", "title", "uri", "url", "slug", "type", "tags", "isStarred",
                         "folderId", "folderUid", "folderTitle", "folderUrl", "sortMeta"]
    assert lat["type"] == "dash-db" and lat["uri"] == "db/latency" and lat["url"] == "/d/lat/latency"
    assert (lat["folderUid"], lat["folderTitle"], lat["folderUrl"]) == (
        "team", "Team", "/dashboards/f/team/team")
    assert lat["tags"] == ["llm", "prod"] and lat["isStarred"] is False
    assert "folderUid" not in tok and "folderId" not in tok
    assert team["type"] == "dash-folder" and team["url"] == "/dashboards/f/team/team"
    assert team["tags"] == []


def test_search_filters(grafana):
    _seed_tree(grafana)
    uids = lambda hits: sorted(h["uid"] for h in hits)  # noqa: E731
    assert uids(_search(grafana, type="dash-db")) == ["err", "lat", "tok"]
    assert uids(_search(grafana, type="dash-folder")) == ["team"]
    assert uids(_search(grafana, query="LAT")) == ["lat"]
    assert uids(_search(grafana, tag="llm")) == ["lat", "tok"]
    assert uids(_search(grafana, tag=["llm", "prod"])) == ["lat"]  # AND
    assert uids(_search(grafana, folderUIDs="team")) == ["lat"]
    assert uids(_search(grafana, folderUIDs="general", type="dash-db")) == ["err", "tok"]
    assert uids(_search(grafana, dashboardUIDs=["tok", "err"])) == ["err", "tok"]
    assert _search(grafana, starred="true") == []


def test_search_both_ids_and_uids_is_400(grafana):
    r = get(grafana, "/api/search", params={"dashboardIds": 1, "dashboardUIDs": "a"})
    assert (r.status_code, r.json()) == (400, {"message": "search supports UIDs or IDs, not both"})


def test_search_limit_above_5000_is_422(grafana):
    r = get(grafana, "/api/search", params={"limit": 5001})
    assert r.status_code == 422
    assert r.json() == {"message": "Limit is above maximum allowed (5000), use page parameter "
                                   "to access hits beyond limit"}
    assert get(grafana, "/api/search", params={"limit": 5000}).status_code == 200


def test_search_default_limit_1000_and_pages(grafana):
    for i in range(1003):
        grafana.seed_dashboard({"title": f"d{i:04d}", "uid": f"d{i:04d}"})
    first = _search(grafana)
    assert len(first) == 1000
    second = _search(grafana, page=2)
    assert len(second) == 3
    assert {h["uid"] for h in first} | {h["uid"] for h in second} == set(grafana.state.dashboards)


def test_search_paging_is_1_based_and_disjoint(grafana):
    for i in range(7):
        grafana.seed_dashboard({"title": f"p{i}", "uid": f"p{i}"})
    pages = [_search(grafana, limit=3, page=p) for p in (1, 2, 3, 4)]
    assert [len(p) for p in pages] == [3, 3, 1, 0]
    seen = [h["uid"] for p in pages for h in p]
    assert len(seen) == len(set(seen)) == 7
    assert _search(grafana, limit=3, page=0) == pages[0]  # page < 1 means 1


def test_search_folders_first_then_title(grafana):
    grafana.seed_dashboard({"title": "Alpha", "uid": "alpha"})
    grafana.seed_folder("Zulu", uid="zulu")
    assert [h["uid"] for h in _search(grafana)] == ["zulu", "alpha"]


# --------------------------------------------------------------------------------------
# Folders (reference 4)
# --------------------------------------------------------------------------------------

def create_folder(grafana, **body):
    return requests.post(url(grafana, "/api/folders"), json=body, headers=grafana.auth_headers())


def test_create_folder_dto(grafana):
    r = create_folder(grafana, uid="ops", title="Ops")
    assert r.status_code == 200
    body = r.json()
    assert body["uid"] == "ops" and body["title"] == "Ops" and body["orgId"] == 1
    assert body["url"] == "/dashboards/f/ops/ops" and body["version"] == 1
    assert body["createdBy"] == "sa-1-relaywatch" and body["canSave"] is True
    assert "parentUid" not in body and "parents" not in body
    assert get(grafana, "/api/folders/ops").json()["id"] == body["id"]


def test_folder_and_dashboard_ids_share_a_sequence(grafana):
    d = post_dash(grafana, {"title": "d"}).json()
    f = create_folder(grafana, title="f").json()
    assert f["id"] == d["id"] + 1


def test_create_folder_generates_uid(grafana):
    body = create_folder(grafana, title="No uid").json()
    assert re.fullmatch(r"[a-z0-9]{14}", body["uid"])


def test_duplicate_folder_uid_is_412(grafana):
    create_folder(grafana, uid="dup", title="A")
    r = create_folder(grafana, uid="dup", title="B")
    assert (r.status_code, r.json()) == (412, {"message": "the folder has been changed by "
                                                          "someone else",
                                               "status": "version-mismatch"})


def test_folder_uid_of_dashboard_is_400(grafana):
    post_dash(grafana, {"title": "d", "uid": "taken"})
    r = create_folder(grafana, uid="taken", title="F")
    assert r.status_code == 400
    assert r.json()["message"] == "Dashboard cannot be changed to a folder"


@pytest.mark.parametrize("body,message", [
    ({"title": ""}, "folder title cannot be empty"),
    ({"title": "  "}, "folder title cannot be empty"),
    ({"title": "general"}, "A folder with that name already exists"),
    ({"title": "x", "uid": "general"}, "invalid uid for folder provided"),
    ({"title": "x", "uid": "bad uid"}, "uid contains illegal characters"),
    ({"title": "x", "uid": "y" * 41}, "uid too long, max 40 characters"),
])
def test_folder_create_validation(grafana, body, message):
    r = create_folder(grafana, **body)
    assert r.status_code == 400 and r.json()["message"] == message


def test_folder_titles_not_unique_since_11_3(grafana):
    assert create_folder(grafana, title="Same").status_code == 200
    assert create_folder(grafana, title="Same").status_code == 200


def test_legacy_folder_title_uniqueness():
    with GrafanaEmulator(token=TOKEN, version="11.1.0") as emu:
        create_folder(emu, title="Same")
        r = create_folder(emu, title="Same")
        assert r.status_code == 409
        assert "same name already exists" in r.json()["message"]


def test_nested_folders(grafana):
    create_folder(grafana, uid="p", title="Parent")
    r = create_folder(grafana, uid="c", title="Child", parentUid="p")
    assert r.status_code == 200
    body = r.json()
    assert body["parentUid"] == "p"
    assert [p["uid"] for p in body["parents"]] == ["p"]
    root = get(grafana, "/api/folders").json()
    assert [f["uid"] for f in root] == ["p"]
    assert get(grafana, "/api/folders", params={"parentUid": "p"}).json() == [
        {"id": body["id"], "uid": "c", "title": "Child", "parentUid": "p"}]
    hit = [h for h in _search(grafana, type="dash-folder") if h["uid"] == "c"][0]
    assert hit["folderUid"] == "p"


def test_nested_folder_parent_missing_is_404(grafana):
    r = create_folder(grafana, title="Orphan", parentUid="missing")
    assert (r.status_code, r.json()) == (404, {"message": "folder not found", "status": "not-found"})


@pytest.mark.parametrize("version,levels", [("11.5.0", 9), ("12.1.0", 4)])
def test_folder_max_depth(version, levels):
    with GrafanaEmulator(token=TOKEN, version=version) as emu:
        parent = ""
        for i in range(levels):
            r = create_folder(emu, uid=f"l{i}", title=f"L{i}", parentUid=parent)
            assert r.status_code == 200, (i, r.text)
            parent = f"l{i}"
        r = create_folder(emu, uid="too-deep", title="X", parentUid=parent)
        assert r.status_code == 400
        assert r.json() == {"message": "Maximum nested folder depth reached",
                            "messageId": "folder.maximum-depth-reached"}


def test_folder_list_paging(grafana):
    for t in "edcba":
        grafana.seed_folder(t.upper(), uid=t)
    assert [f["uid"] for f in get(grafana, "/api/folders", params={"limit": 2, "page": 2}).json()] \
        == ["c", "d"]
    assert len(get(grafana, "/api/folders").json()) == 5


def test_get_unknown_folder_404(grafana):
    r = get(grafana, "/api/folders/nope")
    assert (r.status_code, r.json()) == (404, {"message": "folder not found", "status": "not-found"})


def put_folder(grafana, uid, **body):
    return requests.put(url(grafana, f"/api/folders/{uid}"), json=body,
                        headers=grafana.auth_headers())


def test_update_folder_version_rules(grafana):
    create_folder(grafana, uid="f", title="Old")
    r = put_folder(grafana, "f", title="New", version=1)
    assert r.status_code == 200 and r.json()["version"] == 2 and r.json()["title"] == "New"
    r = put_folder(grafana, "f", title="Stale", version=1)
    assert (r.status_code, r.json()) == (412, {"message": "the folder has been changed by "
                                                          "someone else",
                                               "status": "version-mismatch"})
    r = put_folder(grafana, "f", title="Forced", version=1, overwrite=True)
    assert r.status_code == 200 and r.json()["version"] == 3
    r = put_folder(grafana, "f", version=3)  # no title: keeps the old one
    assert r.json()["title"] == "Forced"
    assert put_folder(grafana, "nope", title="x", version=1).status_code == 404


def test_delete_folder_deletes_contents(grafana):
    create_folder(grafana, uid="top", title="Top")
    create_folder(grafana, uid="sub", title="Sub", parentUid="top")
    post_dash(grafana, {"title": "in top", "uid": "d1"}, folderUid="top")
    post_dash(grafana, {"title": "in sub", "uid": "d2"}, folderUid="sub")
    post_dash(grafana, {"title": "root", "uid": "d3"})
    r = requests.delete(url(grafana, "/api/folders/top"), headers=grafana.auth_headers())
    assert (r.status_code, r.json()) == (200, {"message": "Folder deleted"})
    assert get(grafana, "/api/dashboards/uid/d1").status_code == 404
    assert get(grafana, "/api/dashboards/uid/d2").status_code == 404
    assert get(grafana, "/api/dashboards/uid/d3").status_code == 200
    assert get(grafana, "/api/folders/sub").status_code == 404
    r = requests.delete(url(grafana, "/api/folders/top"), headers=grafana.auth_headers())
    assert r.status_code == 404


def test_delete_folder_old_body():
    with GrafanaEmulator(token=TOKEN, version="9.5.0") as emu:
        f = create_folder(emu, uid="f", title="Old").json()
        r = requests.delete(emu.url + "/api/folders/f", headers=emu.auth_headers())
        assert r.json() == {"id": f["id"], "message": "Folder Old deleted", "title": "Old"}


def test_move_folder(grafana):
    create_folder(grafana, uid="a", title="A")
    create_folder(grafana, uid="b", title="B")
    r = requests.post(url(grafana, "/api/folders/b/move"), json={"parentUid": "a"},
                      headers=grafana.auth_headers())
    assert r.status_code == 200 and r.json()["parentUid"] == "a"
    r = requests.post(url(grafana, "/api/folders/a/move"), json={"parentUid": "b"},
                      headers=grafana.auth_headers())
    assert r.status_code == 400 and r.json()["messageId"] == "folder.circular-reference"


# --------------------------------------------------------------------------------------
# Data sources (reference 5)
# --------------------------------------------------------------------------------------

def ds_post(grafana, **body):
    return requests.post(url(grafana, "/api/datasources"), json=body,
                         headers=grafana.auth_headers())


def ds_put(grafana, uid, **body):
    return requests.put(url(grafana, f"/api/datasources/uid/{uid}"), json=body,
                        headers=grafana.auth_headers())


def test_create_datasource(grafana):
    r = ds_post(grafana, name="Prom", type="prometheus", uid="prom", access="proxy",
                url="http://127.0.0.1:9091", jsonData={"httpMethod": "POST"},
                secureJsonData={"basicAuthPassword": "s3cret"})
    assert r.status_code == 200
    body = r.json()
    assert body["message"] == "Datasource added" and body["name"] == "Prom"
    ds = body["datasource"]
    assert ds["id"] == body["id"] and ds["uid"] == "prom" and ds["version"] == 1
    assert ds["secureJsonFields"] == {"basicAuthPassword": True}
    assert "s3cret" not in r.text
    assert ds["typeLogoUrl"].endswith("prometheus_logo.svg")
    assert get(grafana, "/api/datasources/uid/prom").json() == ds


def test_datasource_conflicts(grafana):
    ds_post(grafana, name="Prom", type="prometheus", uid="prom")
    r = ds_post(grafana, name="Prom", type="prometheus")
    assert (r.status_code, r.json()) == (409, {"message": "data source with the same name already "
                                                          "exists", "traceID": ""})
    r = ds_post(grafana, name="Other", type="prometheus", uid="prom")
    assert (r.status_code, r.json()) == (409, {"message": "data source with the same uid already "
                                                          "exists", "traceID": ""})


@pytest.mark.parametrize("body", [{"type": "prometheus"}, {"name": "x"}, {"name": "", "type": "p"}])
def test_datasource_required_fields(grafana, body):
    r = ds_post(grafana, **body)
    assert (r.status_code, r.json()) == (400, BAD)


def test_datasource_invalid_url_and_uid(grafana):
    r = ds_post(grafana, name="x", type="prometheus", url="http://[::1")
    assert (r.status_code, r.json()) == (400, {"message": "Validation error, invalid URL",
                                               "traceID": ""})
    r = ds_post(grafana, name="x", type="prometheus", uid="bad uid!")
    assert r.status_code == 400
    assert r.json() == {"message": "Invalid datasource UID.", "messageId": "datasource.uidInvalid",
                        "statusCode": 400, "traceID": ""}


def test_datasource_get_by_name_and_404(grafana):
    grafana.seed_datasource("My Prom", uid="mp")
    assert get(grafana, "/api/datasources/name/My%20Prom").json()["uid"] == "mp"
    for path in ("/api/datasources/uid/nope", "/api/datasources/name/nope"):
        r = get(grafana, path)
        assert (r.status_code, r.json()) == (404, {"message": "Data source not found"})


def test_datasource_list_sorted_with_list_fields(grafana):
    grafana.seed_datasource("zeta", uid="z")
    grafana.seed_datasource("Alpha", uid="a", type="loki")
    items = get(grafana, "/api/datasources").json()
    assert [i["name"] for i in items] == ["Alpha", "zeta"]
    assert items[0]["typeName"] == "Loki" and "secureJsonFields" not in items[0]


def test_datasource_update_version_rules(grafana):
    ds_post(grafana, name="P", type="prometheus", uid="p", url="http://a")
    r = ds_put(grafana, "p", name="P", type="prometheus", url="http://b", version=1)
    assert r.status_code == 200 and r.json()["datasource"]["version"] == 2
    assert r.json()["message"] == "Datasource updated"
    r = ds_put(grafana, "p", name="P", type="prometheus", url="http://c", version=1)  # stale
    assert r.status_code == 409
    assert r.json() == {"message": "Datasource has already been updated by someone else. Please "
                                   "reload and try again", "traceID": ""}
    assert grafana.state.datasources["p"].url == "http://b"
    r = ds_put(grafana, "p", name="P", type="prometheus", version=10)  # ahead is allowed
    assert r.json()["datasource"]["version"] == 11
    r = ds_put(grafana, "p", name="P", type="prometheus")  # version 0: unconditional, -> 1
    assert r.status_code == 200 and r.json()["datasource"]["version"] == 1


def test_datasource_update_keeps_omitted_url_and_secrets(grafana):
    ds_post(grafana, name="P", type="prometheus", uid="p", url="http://a", user="bob",
            secureJsonData={"password": "pw"})
    ds = ds_put(grafana, "p", name="P", type="prometheus", version=1).json()["datasource"]
    assert ds["url"] == "http://a"  # zero-valued string columns are not written
    assert ds["user"] == ""  # ... except `user` (MustCols)
    assert ds["secureJsonFields"] == {"password": True}


def test_datasource_update_name_clash_and_404(grafana):
    ds_post(grafana, name="A", type="prometheus", uid="a")
    ds_post(grafana, name="B", type="prometheus", uid="b")
    r = ds_put(grafana, "b", name="A", type="prometheus")
    assert r.status_code == 409
    assert r.json()["message"] == ("Failed to update datasource: data source with the same name "
                                   "already exists")
    assert ds_put(grafana, "nope", name="N", type="prometheus").status_code == 404


def test_read_only_datasource(grafana):
    grafana.seed_datasource("Provisioned", uid="prov", read_only=True)
    r = ds_put(grafana, "prov", name="Provisioned", type="prometheus")
    assert (r.status_code, r.json()) == (403, {"message": "Cannot update read-only data source"})
    r = requests.delete(url(grafana, "/api/datasources/uid/prov"), headers=grafana.auth_headers())
    assert (r.status_code, r.json()) == (403, {"message": "Cannot delete read-only data source"})
    assert get(grafana, "/api/datasources/uid/prov").json()["readOnly"] is True


def test_delete_datasource(grafana):
    ds = grafana.seed_datasource("P", uid="p")
    grafana.seed_datasource("Q", uid="q")
    r = requests.delete(url(grafana, "/api/datasources/uid/p"), headers=grafana.auth_headers())
    assert (r.status_code, r.json()) == (200, {"id": ds.id, "message": "Data source deleted"})
    assert get(grafana, "/api/datasources/uid/p").status_code == 404
    r = requests.delete(url(grafana, "/api/datasources/name/Q"), headers=grafana.auth_headers())
    assert r.status_code == 200 and "q" not in grafana.state.datasources


def test_only_one_default_datasource(grafana):
    ds_post(grafana, name="A", type="prometheus", uid="a", isDefault=True)
    ds_post(grafana, name="B", type="prometheus", uid="b", isDefault=True)
    assert [d.uid for d in grafana.state.datasources.values() if d.is_default] == ["b"]


# --------------------------------------------------------------------------------------
# Fault injection
# --------------------------------------------------------------------------------------

def test_503_burst_then_success(grafana):
    grafana.fail_next(2, 503, path_prefix="/api/search")
    codes = [get(grafana, "/api/search").status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    assert get(grafana, "/api/org").status_code == 200
    entries = grafana.requests("GET", "/api/search")
    assert [(e.status, e.fault) for e in entries] == [(503, "fail"), (503, "fail"), (200, None)]


def test_429_with_retry_after(grafana):
    grafana.fail_next(1, 429, retry_after=7)
    r = post_dash(grafana, {"title": "t"})
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "7"
    assert r.json() == {"message": "Too Many Requests"}
    assert grafana.state.dashboards == {}  # the failed request changed nothing
    assert post_dash(grafana, {"title": "t"}).status_code == 200


def test_fail_next_filters_by_prefix_and_method(grafana):
    grafana.fail_next(1, 502, path_prefix="/api/folders", method="POST")
    assert get(grafana, "/api/folders").status_code == 200
    assert get(grafana, "/api/search").status_code == 200
    assert create_folder(grafana, title="x").status_code == 502
    assert create_folder(grafana, title="x").status_code == 200


def test_fail_next_custom_body_and_before_auth(grafana):
    grafana.fail_next(1, 503, body="upstream connect error")
    r = requests.get(url(grafana, "/api/search"))  # no credentials at all
    assert (r.status_code, r.text) == (503, "upstream connect error")


def test_dropped_connection(grafana):
    grafana.drop_next(1, path_prefix="/api/dashboards")
    with pytest.raises(requests.exceptions.ConnectionError):
        post_dash(grafana, {"title": "t", "uid": "dropped"})
    assert post_dash(grafana, {"title": "t", "uid": "dropped"}).status_code == 200
    first = grafana.requests("POST", "/api/dashboards")[0]
    assert first.dropped and first.status is None and first.fault == "drop"


def test_dropped_connection_on_reused_session(grafana, api):
    assert api.get(url(grafana, "/api/search")).status_code == 200
    grafana.drop_next(1)
    with pytest.raises(requests.exceptions.ConnectionError):
        api.get(url(grafana, "/api/search"))
    assert api.get(url(grafana, "/api/search")).status_code == 200


def test_slow_next_and_latency(grafana):
    grafana.slow_next(1, 0.3)
    t0 = time.monotonic()
    get(grafana, "/api/search")
    assert time.monotonic() - t0 >= 0.3
    t0 = time.monotonic()
    get(grafana, "/api/search")
    assert time.monotonic() - t0 < 0.25
    grafana.latency = 0.05
    t0 = time.monotonic()
    for _ in range(3):
        get(grafana, "/api/search")
    assert time.monotonic() - t0 >= 0.15


def test_clear_faults(grafana):
    grafana.fail_next(3, 500)
    grafana.clear_faults()
    assert get(grafana, "/api/search").status_code == 200


# --------------------------------------------------------------------------------------
# Request log
# --------------------------------------------------------------------------------------

def test_request_log_records_and_redacts(grafana):
    post_dash(grafana, {"title": "Logged", "uid": "lg"}, message="why")
    get(grafana, "/api/search", params={"tag": ["a", "b"], "limit": 5})
    requests.get(url(grafana, "/api/org"), auth=("admin", "secret"))
    post, search, org = grafana.log
    assert (post.method, post.path, post.status) == ("POST", "/api/dashboards/db", 200)
    assert post.json["message"] == "why" and post.json["dashboard"]["uid"] == "lg"
    assert post.headers["Authorization"] == "<redacted>"
    assert TOKEN not in repr(post)
    assert post.authorization == f"Bearer {TOKEN}" and post.auth_scheme == "Bearer"
    assert post.identity == "sa-1-relaywatch"
    assert post.response_json["uid"] == "lg"
    assert search.query == {"tag": ["a", "b"], "limit": ["5"]}
    assert org.auth_scheme == "Basic" and org.identity == "admin"
    assert base64.b64decode(org.authorization.split()[1]) == b"admin:secret"


def test_reads_writes_count_last_clear(grafana):
    get(grafana, "/api/search")
    post_dash(grafana, {"title": "a"})
    post_dash(grafana, {"title": "b"})
    requests.head(url(grafana, "/api/health"))
    assert [r.method for r in grafana.reads()] == ["GET", "HEAD"]
    assert [r.method for r in grafana.writes()] == ["POST", "POST"]
    assert grafana.count("POST", "/api/dashboards") == 2
    assert grafana.count("GET") == 1 and grafana.count() == 4
    assert grafana.last("POST").json["dashboard"]["title"] == "b"
    grafana.clear_log()
    assert grafana.log == [] and grafana.count() == 0


def test_seed_and_ui_edit_are_not_logged(grafana):
    grafana.seed_folder("F", uid="f")
    grafana.seed_dashboard({"title": "d", "uid": "d"})
    grafana.ui_edit("d", lambda d: None)
    assert grafana.log == []


def test_unauthenticated_and_missing_requests_are_logged(grafana):
    requests.get(url(grafana, "/api/search"))
    requests.get(url(grafana, "/api/nope"), headers=grafana.auth_headers())
    assert [(r.status, r.identity) for r in grafana.log] == [(401, None), (404, None)]


# --------------------------------------------------------------------------------------
# Direct state, seeds, concurrency, helpers
# --------------------------------------------------------------------------------------

def test_state_access_and_seed_helpers(grafana):
    f = grafana.seed_folder("Team", uid="team")
    d = grafana.seed_dashboard({"title": "Seeded", "uid": "seeded"}, folder_uid="team",
                               message="seed", user="bob")
    assert grafana.state.dashboards["seeded"] is d and d.folder_uid == f.uid
    assert grafana.state.versions["seeded"][0].message == "seed"
    meta = get(grafana, "/api/dashboards/uid/seeded").json()["meta"]
    assert meta["createdBy"] == "bob"
    rec = grafana.ui_edit("seeded", lambda data: {**data, "title": "New title"}, user="carol",
                          message="ui")
    assert rec.version == 2 and grafana.state.dashboards["seeded"].title == "New title"
    assert grafana.state.versions["seeded"][-1].created_by == grafana.state.user_by_login("carol").id


def test_concurrent_creates_get_unique_ids(grafana):
    results = []

    def worker(i):
        results.append(post_dash(grafana, {"title": f"c{i}", "uid": f"c{i}"}).json()["id"])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 20 and len(set(results)) == 20


def test_concurrent_overwrites_produce_consecutive_versions(grafana):
    post_dash(grafana, {"title": "c", "uid": "same"})

    def worker():
        post_dash(grafana, {"title": "c", "uid": "same"}, overwrite=True)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [v.version for v in grafana.state.versions["same"]] == list(range(1, 12))


@pytest.mark.parametrize("title,slug", [
    ("Relay Overview", "relay-overview"),
    ("LLM Gateway: Latency (P95)", "llm-gateway3a-latency-p95"),
    ("Ünïcode & more", "uenicode-and-more"),
    ("...", None),
])
def test_slugify_matches_grafana(title, slug):
    got = slugify(title)
    if slug is None:
        assert re.fullmatch(r"[0-9a-f-]{36}", got)  # empty slug -> SHA1 UUID
    else:
        assert got == slug


def test_korean_title_slug_falls_back_to_uuid(grafana):
    body = post_dash(grafana, {"title": "릴레이 대시보드 개요 화면입니다", "uid": "ko"}).json()
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}",
                        body["slug"])
    assert body["url"] == f"/d/ko/{body['slug']}"
