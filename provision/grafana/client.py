"""The Grafana HTTP client: one session, auth from the environment, timeouts, retries, errors.

Credentials come from the environment only (GRAFANA_TOKEN, or GRAFANA_USER and
GRAFANA_PASSWORD) and never appear in a message, a log line or a repr: the
Authorization header is added by an auth object that hides its value, every
text that leaves this module passes through `redact`, and URLs carrying
user:password are refused.

Retries (urllib3's Retry, tuned): connection errors, dropped connections, read
timeouts, 429, 502, 503 and 504, with exponential backoff and jitter, honouring
Retry-After (capped). Other 4xx and 500 are answers, not accidents: no retry.
Writes are retried too; the resource modules make a retried write that had in
fact succeeded converge (a 412/409 on the retry is checked against Grafana).
"""

from __future__ import annotations

import base64
import os
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from provision import __version__

RETRY_STATUSES = frozenset({429, 502, 503, 504})
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
TOKEN_ENV, USER_ENV, PASSWORD_ENV, URL_ENV = "GRAFANA_TOKEN", "GRAFANA_USER", "GRAFANA_PASSWORD", "GRAFANA_URL"
REDACTED = "<redacted>"

Log = Callable[[str], None]


class GrafanaError(Exception):
    """Grafana answered with an error (`status`), or could not be reached (`status` None).

    `message` is Grafana's own wording, read from whichever error body shape the
    server used; `status_text` and `message_id` are its optional discriminators
    (e.g. "version-mismatch", "api-key.invalid").
    """

    def __init__(self, status: int | None, message: str, *, status_text: str = "", message_id: str = "",
                 method: str = "", path: str = ""):
        super().__init__(status, message)
        self.status = status
        self.message = message
        self.status_text = status_text
        self.message_id = message_id
        self.method = method
        self.path = path

    def __str__(self) -> str:
        return f"{self.status} {self.message}" if self.status else self.message


class CredentialsError(Exception):
    """The environment holds no usable credentials (a usage error, exit 2)."""


@dataclass(frozen=True)
class Credentials:
    """A service account token (Bearer) or a user and password (basic auth)."""

    token: str | None = field(default=None, repr=False)
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Credentials:
        env = os.environ if environ is None else environ
        token = env.get(TOKEN_ENV, "").strip()
        if token:
            return cls(token=token)
        user, password = env.get(USER_ENV, ""), env.get(PASSWORD_ENV, "")
        if user and password:
            return cls(user=user, password=password)
        if user or password:
            missing = PASSWORD_ENV if user else USER_ENV
            raise CredentialsError(f"{missing} is not set: basic auth needs both {USER_ENV} and {PASSWORD_ENV}")
        raise CredentialsError(
            f"no Grafana credentials: set {TOKEN_ENV} (a service account token) or {USER_ENV} and {PASSWORD_ENV}"
        )

    @property
    def source(self) -> str:
        """Where the credentials came from, by name only."""
        return TOKEN_ENV if self.token else f"{USER_ENV}/{PASSWORD_ENV}"

    def header(self) -> str:
        if self.token:
            return f"Bearer {self.token}"
        raw = f"{self.user}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def secrets(self) -> tuple[str, ...]:
        """Every form in which a secret could leak: raw values and the encoded header."""
        values = [self.token, self.password]
        if not self.token:
            values.append(self.header().split(" ", 1)[1])
        return tuple(v for v in values if v)


class _HeaderAuth(requests.auth.AuthBase):
    """Sets Authorization per request, so the secret is in no session attribute
    or repr; being set also stops requests from falling back to ~/.netrc."""

    def __init__(self, credentials: Credentials):
        self._credentials = credentials

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._credentials.header()
        return request

    def __repr__(self) -> str:
        return f"<auth from {self._credentials.source}>"


@dataclass(frozen=True)
class ClientSettings:
    url: str
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    retries: int = 4
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    verify: bool | str = True  # False, True, or a CA bundle path
    org_id: int | None = None

    @classmethod
    def from_config(cls, grafana: Mapping[str, Any], *, url: str, verify: bool | str = True) -> ClientSettings:
        timeout, backoff = grafana["timeout"], grafana["backoff"]
        return cls(
            url=url,
            connect_timeout=float(timeout["connect"]),
            read_timeout=float(timeout["read"]),
            retries=int(grafana["retries"]),
            backoff_initial=float(backoff["initial"]),
            backoff_max=float(backoff["max"]),
            verify=verify,
            org_id=grafana.get("org_id"),
        )


def url_problem(url: str) -> str | None:
    """Why `url` cannot be used as Grafana's base URL, or None. Never echoes a password."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    if parts.username or parts.password:
        return (f"must not contain credentials; set {TOKEN_ENV}, or {USER_ENV} and {PASSWORD_ENV}, "
                "in the environment instead")
    if parts.query or parts.fragment:
        return "must not have a query or fragment"
    return None


def plain_http_warning(url: str) -> str | None:
    """A warning when credentials would cross the network unencrypted."""
    parts = urlsplit(url)
    if parts.scheme == "http" and (parts.hostname or "").lower() not in LOCAL_HOSTS:
        return (f"warning: sending Grafana credentials over plain http:// to {parts.hostname}; "
                "anyone on the path can read them: use https://")
    return None


class GrafanaClient:
    """JSON over HTTP to one Grafana; methods return the decoded body or raise GrafanaError."""

    def __init__(self, settings: ClientSettings, credentials: Credentials | None, *, log: Log | None = None):
        self.settings = settings
        self.base_url = settings.url.rstrip("/")
        self._secrets = credentials.secrets() if credentials else ()
        self._credentials_source = credentials.source if credentials else ""
        self._log = log
        self.session = requests.Session()
        adapter = HTTPAdapter(max_retries=_retry_policy(settings, self._note), pool_maxsize=64)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.verify = settings.verify
        if settings.verify is False:  # the CLI has warned once; not once per request
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self.session.headers.update({"Accept": "application/json", "User-Agent": f"relaywatch/{__version__}"})
        if settings.org_id is not None:
            self.session.headers["X-Grafana-Org-Id"] = str(settings.org_id)
        if credentials:
            self.session.auth = _HeaderAuth(credentials)

    def __repr__(self) -> str:
        return f"GrafanaClient({self.base_url!r})"

    def close(self) -> None:
        self.session.close()

    # -- requests ------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def get_or_none(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET, with None for a 404."""
        try:
            return self.get(path, params)
        except GrafanaError as exc:
            if exc.status == 404:
                return None
            raise

    def post(self, path: str, body: Any, *, params: Mapping[str, Any] | None = None,
             headers: Mapping[str, str] | None = None) -> Any:
        return self.request("POST", path, body=body, params=params, headers=headers)

    def put(self, path: str, body: Any, *, headers: Mapping[str, str] | None = None) -> Any:
        return self.request("PUT", path, body=body, headers=headers)

    def delete(self, path: str, *, params: Mapping[str, Any] | None = None,
               headers: Mapping[str, str] | None = None) -> Any:
        return self.request("DELETE", path, params=params, headers=headers)

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None,
                headers: Mapping[str, str] | None = None) -> Any:
        started = time.monotonic()
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                params=params,
                json=body,
                headers=dict(headers) if headers else None,
                timeout=(self.settings.connect_timeout, self.settings.read_timeout),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            retried = 0 if isinstance(exc, requests.exceptions.SSLError) else self.settings.retries
            reason = self.redact(_connection_reason(exc, self.settings)) + _after_retries(retried)
            self._note(f"{method} {path}: {reason}")
            raise GrafanaError(None, f"cannot reach Grafana at {self.base_url}: {reason}",
                               method=method, path=path) from None
        elapsed = (time.monotonic() - started) * 1000
        self._note(f"{method} {response.request.path_url} -> {response.status_code} ({elapsed:.0f} ms)")
        if response.status_code >= 400:
            raise self._error(response, method, path)
        if 300 <= response.status_code < 400:
            raise GrafanaError(response.status_code,
                               f"redirected to {response.headers.get('Location', '?')}: is {self.base_url} "
                               "Grafana's root URL?", method=method, path=path)
        return self._json(response, method, path)

    # -- helpers -------------------------------------------------------------

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def _note(self, line: str) -> None:
        if self._log:
            self._log(self.redact(line))

    def _json(self, response: requests.Response, method: str, path: str) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("Content-Type", "unknown content").split(";")[0]
            raise GrafanaError(response.status_code,
                               f"expected JSON, got {kind}: is {self.base_url} Grafana's root URL?",
                               method=method, path=path) from None

    def _error(self, response: requests.Response, method: str, path: str) -> GrafanaError:
        status_text = message_id = ""
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            message = error_message(body) or response.reason or "error"
            status_text = str(body.get("status") or "")
            message_id = str(body.get("messageId") or "")
        else:
            first_line = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
            message = first_line if first_line and not first_line.startswith("<") else (response.reason or "error")
        if response.status_code == 401 and self._credentials_source:
            message += f" (credentials from {self._credentials_source} rejected)"
        retried = getattr(response.raw, "retries", None)
        message += _after_retries(len(retried.history) if retried else 0)
        return GrafanaError(response.status_code, self.redact(message), status_text=status_text,
                            message_id=message_id, method=method, path=path)


def error_message(body: Mapping[str, Any]) -> str:
    """Grafana's message from any of its error body shapes: legacy {message}, {status, message},
    errutil {message, messageId}, RBAC {title, message}, and the old {error}."""
    for key in ("message", "error", "title"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, dict) and isinstance(value.get("message"), str):
            return value["message"]
    message_id = body.get("messageId")
    return str(message_id) if message_id else ""


def _retry_policy(settings: ClientSettings, note: Log) -> Retry:
    """urllib3's Retry with backoff from the first retry, jitter, a cap on Retry-After,
    and a note per retry (for --verbose)."""
    initial, maximum, total = settings.backoff_initial, settings.backoff_max, settings.retries

    class Policy(Retry):
        RETRY_AFTER_STATUS_CODES = RETRY_STATUSES

        def get_backoff_time(self) -> float:
            attempt = len(self.history)
            if attempt == 0:
                return 0.0
            ceiling = min(maximum, initial * 2 ** (attempt - 1))
            return ceiling / 2 + random.uniform(0, ceiling / 2)  # "equal jitter": spread clients out

        def parse_retry_after(self, retry_after: str) -> float:
            return min(super().parse_retry_after(retry_after), maximum)

        def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
            retry = super().increment(method, url, response, error, _pool, _stacktrace)
            cause = f"{response.status}" if response is not None and response.status else type(error).__name__
            note(f"{method} {url}: {cause}; retry {len(retry.history)} of {total}")
            return retry

    return Policy(
        total=total, connect=total, read=total, status=total, other=0, redirect=0,
        status_forcelist=RETRY_STATUSES, allowed_methods=None, raise_on_status=False,
        raise_on_redirect=False, respect_retry_after_header=True,
    )


def _after_retries(count: int) -> str:
    return f" (after {count} {'retry' if count == 1 else 'retries'})" if count else ""


def _connection_reason(exc: requests.RequestException, settings: ClientSettings) -> str:
    if isinstance(exc, requests.exceptions.SSLError):
        detail = re.search(r"\[SSL[^\]]*\] ([^(')]+)", str(exc))
        return f"TLS error: {detail.group(1).strip() if detail else 'handshake failed'} (see --ca-cert)"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"no connection within {settings.connect_timeout:g} s"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return f"no answer within {settings.read_timeout:g} s"
    text = str(exc)
    if "Read timed out" in text:  # a read timeout that outlived its retries arrives wrapped
        return f"no answer within {settings.read_timeout:g} s"
    errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if errno:
        return errno.group(1).strip().lower()
    if "RemoteDisconnected" in text or "Connection aborted" in text or "ProtocolError" in text:
        return "the connection was closed without an answer"
    if "Name or service not known" in text or "NameResolution" in text:
        return "host name not found"
    return type(exc).__name__
