"""Invalid input sends nothing to Grafana: not a write, not even /api/health."""

from __future__ import annotations

import yaml
from push_support import grafana, project  # noqa: F401 - fixtures

BROKEN_QUERY = '''
from provision.panels import row, timeseries
from provision.rules import Query


def dashboards(ctx):
    return ctx.dashboard(uid="broken", title="Broken", description="A query that does not parse.",
                         rows=[row("r", timeseries("bad", Query("sum(rate(x[5m])"), unit="short", description="d"))])
'''


def test_a_query_that_does_not_parse_sends_nothing(project, grafana):
    (project.root / "dashboards" / "broken.py").write_text(BROKEN_QUERY)

    for args in (["push"], ["push", "--dry-run"], ["diff"]):
        result = project.run(*args)
        assert result.exit_code == 1, args
        assert "invalid: dashboards/broken.json" in result.stderr
        assert "PromQL does not parse" in result.stderr
        assert result.stderr.strip().endswith("the build is invalid; nothing was sent to Grafana")
    assert grafana.log == []


def test_a_failing_definition_sends_nothing(project, grafana):
    (project.root / "dashboards" / "oops.py").write_text("def dashboards(ctx):\n    return 1 / 0\n")

    result = project.run("push")

    assert result.exit_code == 1
    assert "oops.py:2: ZeroDivisionError" in result.stderr
    assert "Traceback" not in result.stderr
    assert grafana.log == []


def test_config_problems_exit_2_and_send_nothing(project, grafana):
    data = yaml.safe_load(project.config_path.read_text())
    data["grafana"]["concurrency"] = 0
    data["grafana"]["folder"] = {"uid": "general", "title": "Root"}
    project.config_path.write_text(yaml.safe_dump(data))

    result = project.run("push")

    assert result.exit_code == 2
    assert "grafana.concurrency" in result.stderr
    assert grafana.log == []


def test_reserved_folder_uid_is_a_config_error(project, grafana):
    project.configure(folder={"uid": "general", "title": "Root"})

    result = project.run("push")

    assert result.exit_code == 2
    assert "grafana.folder.uid: 'general' is reserved" in result.stderr
    assert grafana.log == []


def test_bad_urls_and_tls_options_exit_2(project, grafana, tmp_path):
    cases = [
        (["--grafana-url", "ftp://grafana"], "must be an http:// or https:// URL"),
        (["--grafana-url", "https://grafana?x=1"], "must not have a query"),
        (["--ca-cert", str(tmp_path / "missing.pem")], "no such file"),
        (["--ca-cert", str(project.config_path), "--insecure-skip-tls-verify"], "contradict"),
    ]
    for extra, message in cases:
        result = project.run("push", *extra)
        assert result.exit_code == 2, extra
        assert message in result.stderr
    assert grafana.log == []


def test_missing_credentials_exit_2_and_send_nothing(project, grafana):
    for args in (["push"], ["diff"], ["history", "x"], ["rollback", "x"], ["pull", "x"]):
        result = project.run(*args, token=None)
        assert result.exit_code == 2, args
        assert "set GRAFANA_TOKEN" in result.stderr
    half = project.run("push", token=None, env={"GRAFANA_USER": "someone"})
    assert half.exit_code == 2 and "GRAFANA_PASSWORD is not set" in half.stderr
    assert grafana.log == []
