"""The Grafana client on its own: credentials, URLs, error bodies, what is retried and what is not."""

from __future__ import annotations

import pytest
from grafana_emulator import GrafanaEmulator
from push_support import TOKEN

from provision.grafana.client import (
    ClientSettings, Credentials, CredentialsError, GrafanaClient, GrafanaError, error_message, plain_http_warning,
    url_problem,
)


@pytest.fixture(scope="module")
def emulator():
    with GrafanaEmulator(token=TOKEN) as g:
        yield g


@pytest.fixture
def client(emulator):
    emulator.reset()
    c = GrafanaClient(ClientSettings(url=emulator.url, retries=2, backoff_initial=0.001, backoff_max=0.01),
                      Credentials(token=TOKEN))
    yield c
    c.close()


@pytest.mark.parametrize("body, message", [
    ({"message": "Dashboard not found", "traceID": "abc"}, "Dashboard not found"),
    ({"status": "version-mismatch", "message": "The dashboard has been changed by someone else"},
     "The dashboard has been changed by someone else"),
    ({"message": "Invalid API key", "messageId": "api-key.invalid", "statusCode": 401, "traceID": ""},
     "Invalid API key"),
    ({"title": "Access denied", "message": "Permissions needed: dashboards:write", "accessErrorId": "ACE1"},
     "Permissions needed: dashboards:write"),
    ({"error": "old style error"}, "old style error"),
    ({"message": "Token revoked", "error": {"id": "ERR_TOKEN_REVOKED"}}, "Token revoked"),
    ({"messageId": "alerting.provenanceMismatch"}, "alerting.provenanceMismatch"),
    ({}, ""),
])
def test_error_message_reads_every_body_shape(body, message):
    assert error_message(body) == message


def test_credentials_come_from_the_environment():
    assert Credentials.from_env({"GRAFANA_TOKEN": " glsa_x ", "GRAFANA_USER": "u", "GRAFANA_PASSWORD": "p"}).token \
        == "glsa_x"
    basic = Credentials.from_env({"GRAFANA_USER": "u", "GRAFANA_PASSWORD": "p"})
    assert basic.header() == "Basic dTpw" and basic.source == "GRAFANA_USER/GRAFANA_PASSWORD"
    with pytest.raises(CredentialsError, match="GRAFANA_PASSWORD is not set"):
        Credentials.from_env({"GRAFANA_USER": "u"})
    with pytest.raises(CredentialsError, match="no Grafana credentials"):
        Credentials.from_env({})


@pytest.mark.parametrize("url, problem", [
    ("https://grafana.example.com", None),
    ("http://localhost:3000/grafana/", None),
    ("ftp://grafana", "must be an http:// or https:// URL"),
    ("https://", "must be an http:// or https:// URL"),
    ("https://u:p@grafana", "must not contain credentials"),
    ("https://grafana:99999", "is not a valid URL"),
    ("https://grafana/#x", "must not have a query or fragment"),
])
def test_url_problems(url, problem):
    found = url_problem(url)
    assert (found is None) if problem is None else (problem in found)


@pytest.mark.parametrize("url, warns", [
    ("http://localhost:3000", False), ("http://127.0.0.1:3000", False), ("http://[::1]:3000", False),
    ("https://grafana.example.com", False), ("http://grafana.example.com", True), ("http://10.0.0.5:3000", True),
])
def test_plain_http_warning(url, warns):
    assert bool(plain_http_warning(url)) == warns


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retried_statuses(client, emulator, status):
    emulator.fail_next(2, status, "/api/search")
    assert client.get("/api/search") == []
    assert emulator.count("GET", "/api/search") == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 412, 500])
def test_answers_that_are_not_retried(client, emulator, status):
    emulator.fail_next(1, status, "/api/search", body={"message": "nope", "status": "why"})
    with pytest.raises(GrafanaError) as raised:
        client.get("/api/search")
    assert (raised.value.status, raised.value.status_text) == (status, "why")
    assert raised.value.message.startswith("nope")
    assert emulator.count("GET", "/api/search") == 1


def test_writes_are_retried_and_the_last_answer_is_reported(client, emulator):
    emulator.fail_next(5, 503, "/api/folders", body={"message": "try later"})
    with pytest.raises(GrafanaError) as raised:
        client.post("/api/folders", {"uid": "f", "title": "F"})
    assert str(raised.value) == "503 try later (after 2 retries)"
    assert emulator.count("POST", "/api/folders") == 3
    emulator.clear_faults()
    emulator.drop_next(1, "/api/folders")
    assert client.post("/api/folders", {"uid": "f", "title": "F"})["uid"] == "f"


def test_non_json_answers_are_errors_not_crashes(client, emulator):
    emulator.fail_next(1, 200, "/api/search", body="<html>login page</html>")
    with pytest.raises(GrafanaError, match="expected JSON"):
        client.get("/api/search")
    emulator.fail_next(3, 502, "/api/search", body="<html>bad gateway</html>")
    with pytest.raises(GrafanaError) as raised:
        client.get("/api/search")
    assert raised.value.message.startswith("Bad Gateway")


def test_get_or_none_maps_404_only(client, emulator):
    assert client.get_or_none("/api/dashboards/uid/nope") is None
    emulator.fail_next(1, 403, "/api/dashboards/uid/nope")
    with pytest.raises(GrafanaError):
        client.get_or_none("/api/dashboards/uid/nope")


def test_org_id_header_and_user_agent(emulator):
    emulator.reset()
    c = GrafanaClient(ClientSettings(url=emulator.url, org_id=1), Credentials(token=TOKEN))
    c.get("/api/search")
    headers = {k.lower(): v for k, v in emulator.last("GET", "/api/search").headers.items()}
    assert headers["x-grafana-org-id"] == "1"
    assert headers["user-agent"].startswith("relaywatch/")
    assert headers["authorization"] == "<redacted>"  # the emulator logs it redacted; it was sent
    assert emulator.last("GET", "/api/search").auth_scheme == "Bearer"


def test_timeouts_are_retried_then_reported(emulator):
    emulator.reset()
    c = GrafanaClient(ClientSettings(url=emulator.url, read_timeout=0.2, retries=1, backoff_initial=0.001),
                      Credentials(token=TOKEN))
    emulator.slow_next(2, 0.6, "/api/search")
    with pytest.raises(GrafanaError) as raised:
        c.get("/api/search")
    assert raised.value.status is None
    assert str(raised.value).endswith("no answer within 0.2 s (after 1 retry)")
    emulator.slow_next(1, 0.6, "/api/search")
    assert c.get("/api/search") == []


def test_current_version_reads_the_message_as_written(client, emulator):
    from provision.grafana.versions import current_version, push_message

    emulator.seed_dashboard({"uid": "d", "title": "D"}, message=push_message("r1", "0" * 16))
    first = current_version(client, "d", 1)
    # the list says "Initial save" of every version 1: the version itself is read, and nothing else
    assert first.by_push and first.version == 1
    assert [r.path for r in emulator.log] == ["/api/dashboards/uid/d/versions/1"]

    emulator.fail_next(1, 404, "/api/dashboards/uid/d/versions/1")
    emulator.clear_log()
    assert current_version(client, "d", 1).message == "Initial save"  # no single-version endpoint: the list
    assert [r.path for r in emulator.log] == ["/api/dashboards/uid/d/versions/1", "/api/dashboards/uid/d/versions"]

    emulator.ui_edit("d", lambda board: board.update(title="E"), user="alice", message="retitled")
    emulator.clear_log()
    second = current_version(client, "d", 2)
    assert (second.created_by, second.message, second.by_push) == ("alice", "retitled", False)
    assert [r.path for r in emulator.log] == ["/api/dashboards/uid/d/versions"]
