"""Faults on the way to Grafana: retried where a retry is right, reported where it is not,
and a re-run always converges."""

from __future__ import annotations

from push_support import BUILT, grafana, project, status_of, summary, writes  # noqa: F401 - fixtures


def _converged(project, grafana):
    """A re-run leaves nothing failed, and the run after it has nothing left to write."""
    again = project.run("push")
    assert again.exit_code == 0, again.stdout + again.stderr
    grafana.clear_log()
    settled = project.run("push")
    assert summary(settled.stdout)["unchanged"] == 3
    assert writes(grafana) == []


def test_5xx_bursts_are_retried(project, grafana):
    grafana.fail_next(2, 503, "/api/search")
    grafana.fail_next(1, 502, "/api/folders")
    grafana.fail_next(2, 504, "/api/dashboards/db")

    result = project.run("push")

    assert result.exit_code == 0, result.stdout + result.stderr
    assert summary(result.stdout)["created"] == 3
    assert [r.status for r in grafana.requests("GET", "/api/search")] == [503, 503, 200, 200]  # + search by uid
    assert grafana.count("POST", "/api/dashboards/db") == 4
    _converged(project, grafana)


def test_429_waits_for_retry_after(project, grafana, monkeypatch):
    import urllib3.util.retry

    slept = []
    monkeypatch.setattr(urllib3.util.retry.time, "sleep", slept.append)
    project.configure(backoff={"initial": 0.01, "max": 7})
    grafana.fail_next(1, 429, "/api/dashboards/db", retry_after=5)
    grafana.fail_next(1, 429, "/api/search", retry_after=3600)

    result = project.run("push")

    assert result.exit_code == 0, result.stdout + result.stderr
    assert 5 in slept  # as asked
    assert 7 in slept  # an hour, capped at grafana.backoff.max
    assert grafana.count("POST", "/api/dashboards/db") == 3


def test_dropped_connections_are_retried(project, grafana):
    grafana.drop_next(1, "/api/health")
    grafana.drop_next(2, "/api/search")
    grafana.drop_next(1, "/api/folders", method="POST")

    result = project.run("push")

    assert result.exit_code == 0, result.stdout + result.stderr
    assert summary(result.stdout)["created"] == 3
    _converged(project, grafana)


def test_a_write_whose_answer_was_lost_is_not_reported_as_a_conflict(project, grafana):
    """The save lands, the answer is lost, the retry meets a 412: that was us, not drift."""
    grafana.drop_next(2, "/api/dashboards/db", after=True)
    grafana.drop_next(1, "/api/folders", method="POST", after=True)

    result = project.run("push")

    assert result.exit_code == 0, result.stdout + result.stderr
    assert summary(result.stdout)["created"] == 3
    assert [r.status for r in grafana.requests("POST", "/api/folders")] == [200, 412]
    assert sorted(r.status for r in grafana.requests("POST", "/api/dashboards/db")) == [200, 200, 412, 412]
    for uid in BUILT:
        assert grafana.state.dashboards[uid].version == 1
    _converged(project, grafana)


def test_a_lost_answer_on_update_converges_too(project, grafana):
    assert project.run("push").exit_code == 0
    project.set("dashboards", {"refresh": "1m"})
    grafana.drop_next(1, "/api/dashboards/db", after=True)

    result = project.run("push")

    assert result.exit_code == 0, result.stdout + result.stderr
    assert summary(result.stdout)["updated"] == 2
    _converged(project, grafana)


def test_slow_answers_time_out_and_are_retried(project, grafana):
    project.configure(timeout={"connect": 2, "read": 0.3})
    grafana.slow_next(1, 1.0, "/api/search")

    result = project.run("push")

    assert result.exit_code == 0, result.stdout + result.stderr
    assert len([r for r in grafana.requests("GET", "/api/search") if "tag" in r.query]) == 2


def test_persistent_5xx_fails_that_resource_only_and_a_rerun_converges(project, grafana):
    project.configure(retries=1, concurrency=1)
    grafana.fail_next(2, 503, "/api/dashboards/db", method="POST")
    grafana.fail_next(1, 500, "/api/dashboards/db", method="POST", body={"message": "Failed to save dashboard"})

    result = project.run("push")

    assert result.exit_code == 1
    statuses = sorted(status_of(result.stdout, "dashboard", uid) for uid in BUILT)
    assert statuses == ["failed", "failed"]
    assert "503 Service Unavailable" in result.stdout and "500 Failed to save dashboard" in result.stdout
    assert grafana.count("POST", "/api/dashboards/db") == 3  # the 500 is an answer: not retried
    _converged(project, grafana)


def test_a_403_on_one_dashboard_does_not_stop_the_others(project, grafana):
    grafana.fail_next(1, 403, "/api/dashboards/db", body={"message": "Access denied to save dashboard"})

    result = project.run("push")

    assert result.exit_code == 1
    statuses = sorted(status_of(result.stdout, "dashboard", uid) for uid in BUILT)
    assert statuses == ["created", "failed"]
    assert "403 Access denied to save dashboard: the service account needs the Editor role" in result.stdout
    assert grafana.count("POST", "/api/dashboards/db") == 2
    _converged(project, grafana)


def test_a_400_is_reported_with_grafanas_message(project, grafana):
    grafana.fail_next(2, 400, "/api/dashboards/db", body={"message": "Dashboard title cannot be empty",
                                                          "status": "empty-name"})

    result = project.run("push")

    assert result.exit_code == 1
    assert result.stdout.count("failed: 400 Dashboard title cannot be empty") == 2
    assert status_of(result.stdout, "folder", "relaywatch") == "created"


def test_unreachable_grafana_is_one_clear_line(project, grafana):
    url = grafana.url
    grafana.stop()

    result = project.run("push", "--grafana-url", url)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == (f"error: cannot reach Grafana at {url}: "
                                                        "connection refused (after 3 retries)")


def test_unhealthy_grafana_stops_before_any_other_request(project, grafana):
    grafana.set_database_healthy(False)
    project.configure(retries=0)

    result = project.run("push")

    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: GET /api/health: 503 Grafana at {grafana.url} is unhealthy: its database check fails "
        "(Service Unavailable)")
    assert [r.path for r in grafana.log] == ["/api/health"]


def test_rejected_credentials_stop_the_run_and_name_the_variable(project, grafana):
    result = project.run("push", token="glsa_wrong")

    assert result.exit_code == 1
    assert "401 Invalid API key (credentials from GRAFANA_TOKEN rejected)" in result.stderr
    assert writes(grafana) == []
    assert grafana.count("GET", "/api/folders") == 1  # no retry of a 401
