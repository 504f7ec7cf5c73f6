"""The token and password never leave the process except in the Authorization header:
not in output (even --verbose), errors, exception text or files. Subprocesses, so
that everything the real command prints is searched."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from push_support import PASSWORD, TOKEN, USER, grafana, project  # noqa: F401 - fixtures

from provision.grafana.client import ClientSettings, Credentials, GrafanaClient, GrafanaError

SECRETS = (TOKEN, PASSWORD, base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())
PROVISION = [sys.executable, "-m", "provision.cli"]


def _run(project, *args: str, token: str | None = TOKEN, basic: bool = False, url: str | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRAFANA_", "RELAYWATCH_"))}
    if basic:
        env.update(GRAFANA_USER=USER, GRAFANA_PASSWORD=PASSWORD)
    elif token:
        env["GRAFANA_TOKEN"] = token
    if url:
        env["GRAFANA_URL"] = url
    return subprocess.run([*PROVISION, *args, "--config", str(project.config_path)], env=env, cwd=project.root,
                          capture_output=True, text=True, timeout=120)


def _assert_clean(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def _assert_no_file_holds_a_secret(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            _assert_clean(path.read_bytes().decode("utf-8", errors="replace"))


@pytest.mark.parametrize("basic", [False, True], ids=["token", "basic-auth"])
def test_secrets_never_printed_on_success_or_failure(project, grafana, basic):
    outputs = []

    def run(*args, **kwargs):
        proc = _run(project, *args, basic=basic, **kwargs)
        outputs.append((args, proc.returncode, proc.stdout, proc.stderr))
        return proc

    assert run("push", "--verbose").returncode == 0
    assert "http: GET /api/health -> 200" in outputs[-1][3]  # --verbose does log requests
    grafana.ui_edit("llm-gateway-overview", lambda d: d.update(title="Edited"))
    assert run("push", "--verbose").returncode == 1  # drifted
    assert run("diff", "--verbose", "--output", "json").returncode == 0
    assert run("history", "llm-gateway-overview", "--verbose").returncode == 0
    assert run("pull", "llm-gateway-overview", "--verbose", "--out", str(project.root / "pulled.json")).returncode == 0

    grafana.fail_next(50, 500, "/api/dashboards/uid/")  # every dashboard read fails: those dashboards fail
    assert run("push", "--verbose").returncode == 1
    grafana.clear_faults()
    grafana.fail_next(50, 503, "/api/search", body="<html>proxy says no</html>")  # retried, then gives up
    assert run("push", "--verbose").returncode == 1
    grafana.clear_faults()
    grafana.drop_next(50, "/api/folders")  # connection dropped, every time
    assert run("push", "--verbose").returncode == 1
    grafana.clear_faults()
    assert run("push", "--verbose", url="http://127.0.0.1:9").returncode == 1  # connection refused
    assert run("push", "--verbose", url="http://127.0.0.2:9").returncode == 1  # plain http, not localhost

    for args, code, stdout, stderr in outputs:
        assert "Traceback" not in stderr, (args, stderr)
        _assert_clean(stdout, stderr)
    assert any("connection refused" in err for *_, err in outputs)
    assert any("warning: sending Grafana credentials over plain http:// to 127.0.0.2" in err for *_, err in outputs)
    _assert_no_file_holds_a_secret(project.root)


def test_rejected_secrets_are_not_echoed(project, grafana):
    wrong_token = _run(project, "push", "--verbose", token=TOKEN + "x")
    wrong_password = subprocess.run(
        [*PROVISION, "push", "--verbose", "--config", str(project.config_path)], cwd=project.root,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("GRAFANA_")},
             "GRAFANA_USER": USER, "GRAFANA_PASSWORD": PASSWORD + "x"},
        capture_output=True, text=True, timeout=120)

    assert wrong_token.returncode == 1 and wrong_password.returncode == 1
    assert "401" in wrong_token.stderr and "401" in wrong_password.stderr
    for proc in (wrong_token, wrong_password):
        _assert_clean(proc.stdout, proc.stderr)
        assert PASSWORD + "x" not in proc.stderr and TOKEN + "x" not in proc.stderr


def test_credentials_in_the_url_are_refused_without_echoing_them(project, grafana):
    url = f"http://{USER}:{PASSWORD}@127.0.0.1:{grafana.port}"

    result = _run(project, "push", "--grafana-url", url)

    assert result.returncode == 2
    assert "must not contain credentials" in result.stderr
    _assert_clean(result.stdout, result.stderr)
    assert grafana.log == []


def test_objects_and_errors_do_not_show_secrets(grafana):
    token_creds = Credentials.from_env({"GRAFANA_TOKEN": TOKEN})
    basic_creds = Credentials.from_env({"GRAFANA_USER": USER, "GRAFANA_PASSWORD": PASSWORD})
    for creds in (token_creds, basic_creds):
        client = GrafanaClient(ClientSettings(url=grafana.url, retries=0), creds)
        texts = [repr(creds), str(creds), repr(client), repr(client.session.auth), repr(client.session.headers)]
        with pytest.raises(GrafanaError) as refused:
            client.get("/api/folders/none")  # 404: an answer with the credentials accepted
        texts += [str(refused.value), repr(refused.value)]
        _assert_clean(*texts)
    echo = GrafanaClient(ClientSettings(url=grafana.url, retries=0), token_creds)
    grafana.fail_next(1, 400, "/api/search", body={"message": f"bad header Bearer {TOKEN}"})
    with pytest.raises(GrafanaError) as echoed:
        echo.get("/api/search")
    assert TOKEN not in str(echoed.value) and "<redacted>" in str(echoed.value)
