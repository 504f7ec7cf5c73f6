"""The emulator core: lifecycle, identities and authentication, the request log,
fault injection, dispatch and the route table, health and identity endpoints."""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, unquote, urlsplit

from ._common import (
    ROLE_PERMISSIONS, ZERO_TIME, _DROP, ApiError, ApiResponse, GrafanaState, Identity,
    RecordedRequest, Request, Route, TokenRecord, UserRecord, _Fault, _json, _parse_version,
    err_a, err_c, err_d, fmt_time, gen_uid, slugify,
)


class EmulatorCore:
    """Everything but the resource handlers (see the mixins in this package)."""

    """In-process Grafana HTTP API on 127.0.0.1 (threaded).

    >>> with GrafanaEmulator(token="glsa_x") as g:
    ...     requests.get(g.url + "/api/search", headers=g.auth_headers())
    """

    def __init__(self, token: str | None = "glsa_emulator_token",
                 basic_auth: tuple[str, str] | None = ("admin", "secret"),
                 version: str = "11.5.0", *, commit: str = "emulator",
                 token_role: str = "Admin", token_permissions: Iterable[str] | None = None,
                 service_account_name: str = "relaywatch",
                 unique_titles: bool | None = None, versions_envelope: bool | None = None,
                 brute_force_protection: bool = True, max_login_attempts: int = 5,
                 lockout_seconds: float = 300.0, legacy_unauthorized_body: bool = False,
                 hide_version: bool = False, min_refresh_interval: str = "5s",
                 dashboard_quota: int | None = None, max_folder_ancestors: int | None = None,
                 latency: float = 0.0, now: Callable[[], _dt.datetime] | None = None,
                 port: int = 0):
        self.version = version
        self._bind_port = port
        self.version_tuple = _parse_version(version)
        self.commit = commit
        self.unique_titles = (self.version_tuple < (11, 3, 0)) if unique_titles is None \
            else unique_titles
        self.versions_envelope = (self.version_tuple >= (12, 0, 0)) \
            if versions_envelope is None else versions_envelope
        self.max_folder_ancestors = max_folder_ancestors if max_folder_ancestors is not None \
            else (3 if self.version_tuple >= (12, 0, 0) else 8)
        self.brute_force_protection = brute_force_protection
        self.max_login_attempts = max_login_attempts
        self.lockout_seconds = lockout_seconds
        self.legacy_unauthorized_body = legacy_unauthorized_body
        self.hide_version = hide_version
        self.min_refresh_interval = min_refresh_interval
        self.dashboard_quota = dashboard_quota
        self.latency = latency
        self.now = now or (lambda: _dt.datetime.now(_dt.timezone.utc))
        self._init_token = token
        self._init_basic = basic_auth
        self._init_token_role = token_role
        self._init_token_perms = frozenset(token_permissions) if token_permissions is not None \
            else None
        self._sa_name = service_account_name
        self._log: list[RecordedRequest] = []
        self._log_lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._fault_lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.routes: list[Route] = []
        self._register_routes()
        self.state = GrafanaState()
        self._seed_identities()

    # ---- lifecycle -------------------------------------------------------------------

    def start(self) -> "EmulatorCore":
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", self._bind_port), _Handler)
        server.emulator = self  # type: ignore[attr-defined]
        self._server = server
        # a short poll interval keeps stop() (shutdown) fast: one fixture per test
        self._thread = threading.Thread(target=server.serve_forever, kwargs={
            "poll_interval": 0.02}, name="grafana-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> "EmulatorCore":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("emulator not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        """Drop all state, the request log, injected faults and lockouts."""
        with self.state.lock:
            self.state = GrafanaState()
            self._seed_identities()
        self.clear_log()
        with self._fault_lock:
            self._faults.clear()

    @property
    def token(self) -> str | None:
        return self._init_token

    def auth_headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self._init_token}"}

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        return self._init_basic

    # ---- identities ------------------------------------------------------------------

    def _seed_identities(self) -> None:
        if self._init_basic:
            self.add_user(self._init_basic[0], self._init_basic[1], role="Admin",
                          email="admin@localhost", is_grafana_admin=True)
        if self._init_token:
            self.add_token(self._init_token, name=self._sa_name, role=self._init_token_role,
                           permissions=self._init_token_perms)

    def add_user(self, login: str, password: str | None = None, *, role: str = "Editor",
                 name: str = "", email: str = "", is_grafana_admin: bool = False) -> UserRecord:
        with self.state.lock:
            existing = self.state.user_by_login(login)
            if existing:
                return existing
            uid = self.state.next_user_id()
            rec = UserRecord(uid, login, password, name=name, email=email or login,
                             role=role, is_grafana_admin=is_grafana_admin, uid=gen_uid(),
                             created=self.now())
            self.state.users[uid] = rec
            return rec

    def add_token(self, token: str, *, name: str | None = None, role: str = "Admin",
                  permissions: Iterable[str] | None = None, expired: bool = False,
                  revoked: bool = False) -> TokenRecord:
        """A service-account token.  ``permissions`` (actions) overrides ``role``; e.g.
        ``role="Viewer"`` or ``permissions={"dashboards:read"}`` makes a read-only token."""
        with self.state.lock:
            sa_name = name or f"sa-{len(self.state.tokens) + 1}"
            login = f"sa-1-{slugify(sa_name)}"  # [belief] service-account login format
            user = self.state.user_by_login(login)
            if user is None:
                uid = self.state.next_user_id()
                user = UserRecord(uid, login, None, name=sa_name, email=login, role=role,
                                  is_service_account=True, uid=gen_uid(), created=self.now())
                self.state.users[uid] = user
            rec = TokenRecord(token, user.id, frozenset(permissions) if permissions is not None
                              else None, role, expired, revoked)
            self.state.tokens[token] = rec
            return rec

    def set_token_permissions(self, token: str, permissions: Iterable[str] | None = None,
                              role: str | None = None) -> None:
        with self.state.lock:
            rec = self.state.tokens[token]
            rec.permissions = frozenset(permissions) if permissions is not None else None
            if role is not None:
                rec.role = role

    def _identity_for_user(self, user: UserRecord, token: TokenRecord | None = None) -> Identity:
        return Identity(
            kind="service-account" if user.is_service_account else "user", id=user.id,
            login=user.login, name=user.name, email=user.email,
            role=token.role if token else user.role,
            permissions=token.permissions if token else None,
            is_grafana_admin=user.is_grafana_admin, uid=user.uid)

    def _system_identity(self, user: str | None = None) -> Identity:
        """Identity for seeds/UI edits: the named user (created as Editor if missing), the
        basic-auth admin, or an anonymous admin (createdBy -1 -> "Anonymous")."""
        if user:
            rec = self.state.user_by_login(user) or self.add_user(user, None, role="Editor")
            ident = self._identity_for_user(rec)
            ident.permissions = ROLE_PERMISSIONS["Admin"]
            return ident
        if self._init_basic and self.state.user_by_login(self._init_basic[0]):
            return self._identity_for_user(self.state.user_by_login(self._init_basic[0]))
        return Identity("user", -1, "Anonymous", role="Admin")

    # ---- authentication (reference 1.1 / 1.2) ----------------------------------------

    def _unauthorized(self, message_id: str = "auth.unauthorized",
                      message: str = "Unauthorized", status: int = 401) -> ApiError:
        if message_id == "auth.unauthorized" and self.legacy_unauthorized_body:
            return ApiError(err_a(401, "Unauthorized"))
        return ApiError(err_c(status, message_id, message))

    def _authenticate(self, req: Request) -> Identity:
        auth = req.header("Authorization") or ""
        if auth.startswith("Bearer "):
            return self._auth_token(req, auth[len("Bearer "):].strip())
        if auth[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
                login, sep, password = decoded.partition(":")
                if not sep:
                    raise ValueError
            except ValueError:
                raise self._unauthorized("basic-auth.invalid-decode",
                                         "Failed to decode basic auth header", 400) from None
            if login == "api_key":  # the API-key client also accepts basic api_key:<token>
                return self._auth_token(req, password)
            return self._auth_password(login, password)
        raise self._unauthorized()

    def _auth_token(self, req: Request, token: str) -> Identity:
        rec = self.state.tokens.get(token)
        if rec is None:
            raise self._unauthorized("api-key.invalid", "Invalid API key")
        if rec.revoked:
            raise self._unauthorized("api-key.revoked", "Revoked API key")
        if rec.expired:
            raise self._unauthorized("api-key.expired", "Expired API key")
        org = req.header("X-Grafana-Org-Id")
        if org and org.strip() != "1":
            raise self._unauthorized("api-key.organization-mismatch",
                                     "API key does not belong to the requested organization")
        return self._identity_for_user(self.state.users[rec.user_id], rec)

    def _auth_password(self, login: str, password: str) -> Identity:
        """``clients/password.go``: a login with too many recent failures is blocked even
        with the right password; only wrong passwords of existing users count."""
        now = time.monotonic()
        fails = [t for t in self.state.login_failures.get(login, [])
                 if now - t < self.lockout_seconds]
        self.state.login_failures[login] = fails
        if self.brute_force_protection and len(fails) >= self.max_login_attempts:
            raise self._unauthorized("login-attempt.blocked", "Invalid username or password")
        if not password:
            raise self._unauthorized("password-auth.empty", "Invalid username or password")
        user = self.state.user_by_login(login)
        if user is None or user.is_service_account or user.password != password:
            if user is not None and not user.is_service_account:
                fails.append(now)
            raise self._unauthorized("password-auth.failed", "Invalid username or password")
        return self._identity_for_user(user)

    # ---- request log -----------------------------------------------------------------

    @property
    def log(self) -> list[RecordedRequest]:
        with self._log_lock:
            return list(self._log)

    def clear_log(self) -> None:
        with self._log_lock:
            self._log.clear()

    def requests(self, method: str | None = None, path_prefix: str | None = None
                 ) -> list[RecordedRequest]:
        return [r for r in self.log
                if (method is None or r.method == method.upper())
                and (path_prefix is None or r.path.startswith(path_prefix))]

    def reads(self) -> list[RecordedRequest]:
        return [r for r in self.log if r.method in ("GET", "HEAD")]

    def writes(self) -> list[RecordedRequest]:
        return [r for r in self.log if r.method not in ("GET", "HEAD")]

    def count(self, method: str | None = None, path_prefix: str | None = None) -> int:
        return len(self.requests(method, path_prefix))

    def last(self, method: str | None = None, path_prefix: str | None = None
             ) -> RecordedRequest | None:
        found = self.requests(method, path_prefix)
        return found[-1] if found else None

    # ---- fault injection -------------------------------------------------------------

    def fail_next(self, n: int = 1, status: int = 503, path_prefix: str | None = None,
                  retry_after: int | float | str | None = None, *, method: str | None = None,
                  body: Any = None) -> None:
        """Answer the next ``n`` matching requests with ``status`` (default body
        ``{"message": <reason phrase>}``), adding ``Retry-After`` if given."""
        with self._fault_lock:
            self._faults.append(_Fault("fail", n, path_prefix, method, status, retry_after, body))

    def drop_next(self, n: int = 1, path_prefix: str | None = None, *,
                  method: str | None = None, after: bool = False) -> None:
        """Close the connection of the next ``n`` matching requests without answering.
        With ``after=True`` the request is processed first (a write lands) and only the
        answer is lost, as when a proxy or the network drops a response."""
        with self._fault_lock:
            self._faults.append(_Fault("drop", n, path_prefix, method, after=after))

    def slow_next(self, n: int, seconds: float, path_prefix: str | None = None, *,
                  method: str | None = None) -> None:
        """Delay the next ``n`` matching requests by ``seconds`` (on top of ``latency``)."""
        with self._fault_lock:
            self._faults.append(_Fault("slow", n, path_prefix, method, seconds=seconds))

    def clear_faults(self) -> None:
        with self._fault_lock:
            self._faults.clear()

    def _take_fault(self, kind: str, method: str, path: str) -> _Fault | None:
        with self._fault_lock:
            for f in self._faults:
                if f.kind == kind and f.remaining > 0 and f.matches(method, path):
                    f.remaining -= 1
                    if f.remaining == 0:
                        self._faults.remove(f)
                    return f
        return None

    # ---- dispatch --------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes
               ) -> ApiResponse | object:
        """Answer one HTTP request (also usable without a socket)."""
        method = method.upper()
        parts = urlsplit(target)
        path = parts.path or "/"
        query = parse_qs(parts.query, keep_blank_values=True)
        shown = {k: ("<redacted>" if k.lower() == "authorization" else v)
                 for k, v in headers.items()}
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        entry = RecordedRequest(method, path, query, shown, body, auth, time=time.time())
        with self._log_lock:
            self._log.append(entry)

        delay = self.latency
        slow = self._take_fault("slow", method, path)
        if slow:
            delay += slow.seconds
        if delay > 0:
            time.sleep(delay)
        drop = self._take_fault("drop", method, path)
        if drop and not drop.after:
            entry.dropped, entry.fault = True, "drop"
            return _DROP
        fail = self._take_fault("fail", method, path)
        if fail:
            resp = self._fault_response(fail)
            entry.fault = "fail"
        else:
            req = Request(self, method, path, query, dict(headers), body)
            with self.state.lock:
                try:
                    resp = self._route(req)
                except ApiError as e:
                    resp = e.response
            entry.identity = req.identity.login if req.identity else None
        entry.status = resp.status
        entry.response_body = resp.encode()
        if drop:
            entry.dropped, entry.fault = True, "drop-after"
            return _DROP
        return resp

    @staticmethod
    def _fault_response(f: _Fault) -> ApiResponse:
        headers = {}
        if f.retry_after is not None:
            headers["Retry-After"] = str(f.retry_after)
        if isinstance(f.body, (str, bytes)):
            return ApiResponse(f.status, headers=headers, raw=f.body)
        body = f.body if f.body is not None else {"message": HTTPStatus(f.status).phrase}
        headers["Content-Type"] = "application/json"
        return ApiResponse(f.status, body, headers)

    def _route(self, req: Request) -> ApiResponse:
        path = req.path.rstrip("/") or "/"
        method = "GET" if req.method == "HEAD" else req.method
        for route in self.routes:
            if route.method != method and not (route.method == "HEAD" and req.method == "HEAD"):
                continue
            m = route.regex.match(path)
            if not m:
                continue
            req.params = {k: unquote(v) for k, v in m.groupdict().items()}
            if route.auth != "none":
                req.identity = self._authenticate(req)
                if not route.allowed(req.identity):
                    return err_d(route.needed())
            return route.handler(req)
        return err_a(404, "Not found")

    def add_route(self, method: str, pattern: str, handler: Callable[[Request], ApiResponse],
                  permission: str | tuple | None = None, auth: str = "signed_in",
                  first: bool = True) -> Route:
        """Register a route (e.g. ``/api/v1/provisioning/alert-rules/{uid}``)."""
        route = Route(method.upper(), pattern, handler, permission, auth)
        if first:
            self.routes.insert(0, route)
        else:
            self.routes.append(route)
        return route

    def _register_routes(self) -> None:
        R = self.routes.append
        any_dash_write = ("any", ["dashboards:create", "dashboards:write"])
        R(Route("GET", "/api/health", self.h_health, auth="none"))
        R(Route("HEAD", "/api/health", self.h_health, auth="none"))
        R(Route("GET", "/healthz", self.h_healthz, auth="none"))
        R(Route("GET", "/api/user", self.h_user, auth="no_anonymous"))
        R(Route("GET", "/api/org", self.h_org, "orgs:read"))
        R(Route("GET", "/api/access-control/user/permissions", self.h_permissions))
        R(Route("GET", "/api/search", self.h_search))
        R(Route("POST", "/api/dashboards/db", self.h_dashboard_post, any_dash_write))
        R(Route("GET", "/api/dashboards/tags", self.h_dashboard_tags))
        R(Route("GET", "/api/dashboards/uid/{uid}", self.h_dashboard_get, "dashboards:read"))
        R(Route("DELETE", "/api/dashboards/uid/{uid}", self.h_dashboard_delete,
                "dashboards:delete"))
        R(Route("GET", "/api/dashboards/uid/{uid}/versions", self.h_versions_list,
                "dashboards:write"))
        R(Route("GET", "/api/dashboards/uid/{uid}/versions/{version}", self.h_version_get,
                "dashboards:write"))
        R(Route("POST", "/api/dashboards/uid/{uid}/restore", self.h_restore,
                "dashboards:write"))
        R(Route("GET", "/api/folders", self.h_folders_list, "folders:read"))
        R(Route("POST", "/api/folders", self.h_folder_create, "folders:create"))
        R(Route("GET", "/api/folders/{uid}", self.h_folder_get, "folders:read"))
        R(Route("PUT", "/api/folders/{uid}", self.h_folder_update, "folders:write"))
        R(Route("DELETE", "/api/folders/{uid}", self.h_folder_delete, "folders:delete"))
        R(Route("POST", "/api/folders/{uid}/move", self.h_folder_move, "folders:write"))
        R(Route("GET", "/api/datasources", self.h_ds_list, "datasources:read"))
        R(Route("POST", "/api/datasources", self.h_ds_create, "datasources:create"))
        R(Route("GET", "/api/datasources/uid/{uid}", self.h_ds_get_uid, "datasources:read"))
        R(Route("PUT", "/api/datasources/uid/{uid}", self.h_ds_update, "datasources:write"))
        R(Route("DELETE", "/api/datasources/uid/{uid}", self.h_ds_delete_uid,
                "datasources:delete"))
        R(Route("GET", "/api/datasources/name/{name}", self.h_ds_get_name, "datasources:read"))
        R(Route("DELETE", "/api/datasources/name/{name}", self.h_ds_delete_name,
                "datasources:delete"))
        R(Route("GET", "/api/datasources/{id}", self.h_ds_get_id, "datasources:read"))
        for route in self.alerting_routes():  # alerting.py: provisioning API and ruler proxy
            R(route)

    # ==================================================================================
    # Health, identity
    # ==================================================================================

    def h_health(self, req: Request) -> ApiResponse:
        """``apiHealthHandler``: no auth, pretty-printed sorted keys, 503 if DB failing."""
        data: dict[str, Any] = {"database": "ok" if self.state.database_ok else "failing"}
        if not self.hide_version:
            data["version"] = self.version
            data["commit"] = self.commit
        raw = json.dumps(data, indent=2, sort_keys=True)
        return ApiResponse(200 if self.state.database_ok else 503, raw=raw,
                           headers={"Content-Type": "application/json; charset=UTF-8"})

    def set_database_healthy(self, ok: bool) -> None:
        self.state.database_ok = ok

    def h_healthz(self, req: Request) -> ApiResponse:
        return ApiResponse(200, raw="Ok", headers={"Content-Type": "text/plain; charset=utf-8"})

    def h_user(self, req: Request) -> ApiResponse:
        """``GetSignedInUser``.  Service accounts: < 10.3 the SA's own user row, 10.3-11.2
        ``getUserID`` -> 403, >= 11.3 a profile built from the identity."""
        ident = req.identity
        assert ident is not None
        if ident.kind == "service-account":
            if self.version_tuple >= (11, 3, 0):
                return _json(200, {
                    "id": 0, "uid": f"service-account:{ident.id}", "email": ident.email,
                    "name": ident.name or ident.login, "login": ident.login, "theme": "",
                    "orgId": ident.org_id, "isGrafanaAdmin": ident.is_grafana_admin,
                    "isDisabled": False, "isExternal": False, "isExternallySynced": False,
                    "isGrafanaAdminExternallySynced": False, "authLabels": None,
                    "updatedAt": ZERO_TIME, "createdAt": ZERO_TIME, "avatarUrl": ""})
            if self.version_tuple >= (10, 3, 0):
                return err_a(403, "Endpoint only available for users")
        user = self.state.users[ident.id]
        email = user.email.strip().lower()
        return _json(200, {
            "id": user.id, "uid": user.uid, "email": user.email, "name": user.name,
            "login": user.login, "theme": "", "orgId": 1,
            "isGrafanaAdmin": user.is_grafana_admin, "isDisabled": False, "isExternal": False,
            "isExternallySynced": False, "isGrafanaAdminExternallySynced": False,
            "authLabels": [], "updatedAt": fmt_time(user.created),
            "createdAt": fmt_time(user.created),
            "avatarUrl": "/avatar/" + hashlib.md5(email.encode()).hexdigest()})

    def h_org(self, req: Request) -> ApiResponse:
        """``GetCurrentOrg``: works for users and service accounts (needs ``orgs:read``);
        the recommended credential check for a pusher."""
        return _json(200, {"id": 1, "name": "Main Org.", "address": {
            "address1": "", "address2": "", "city": "", "zipCode": "", "state": "",
            "country": ""}})

    def h_permissions(self, req: Request) -> ApiResponse:
        """``/api/access-control/user/permissions``: action -> scopes (scopes approximated)."""
        assert req.identity is not None
        scopes = {"dashboards": ["dashboards:*", "folders:*"], "folders": ["folders:*"],
                  "datasources": ["datasources:*"]}
        out = {}
        for action in sorted(req.identity.actions()):
            out[action] = scopes.get(action.split(":")[0].split(".")[0], [])
        return _json(200, out)



# --------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 makes bursts of parallel clients wait ~1 s


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "grafana-emulator"
    sys_version = ""
    # Headers and body go out in two writes; with Nagle on, the second waits for the
    # client's delayed ACK (~40 ms a request on keep-alive connections). Go's server,
    # like Grafana, does not stall so.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        emu: EmulatorCore = self.server.emulator  # type: ignore[attr-defined]
        body = self._read_body()
        result = emu.handle(self.command, self.path, dict(self.headers.items()), body)
        if result is _DROP:
            self.close_connection = True
            return
        assert isinstance(result, ApiResponse)
        payload = result.encode()
        self.send_response(result.status)
        headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                   "X-Frame-Options": "deny", **result.headers}
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _dispatch
