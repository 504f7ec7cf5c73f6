"""A Grafana HTTP API emulator for relaywatch's tests (standard library only).

Behaviour followed: **Grafana 11.3+ / 12.x** (default ``version="11.5.0"``): dashboard and
folder titles are *not* unique (grafana/grafana PR #90687).  Behaviour that changed across
versions is keyed on the configured ``version`` and can be overridden:

* ``unique_titles`` (default: on below 11.3) -- the legacy 412 ``name-exists`` /
  400 ``name-match`` dashboard rules and the 409 folder-title rule of Grafana <= 11.2.
* ``versions_envelope`` (default: on from 12.0) -- ``GET .../versions`` returns
  ``{"continueToken": "...", "versions": [...]}`` instead of a bare JSON array.
* ``GET /api/user`` with a service-account token: full profile of the service-account
  row (< 10.3), 403 ``Endpoint only available for users`` (10.3 - 11.2), minimal profile
  built from the identity (>= 11.3).
* nested-folder depth: at most 8 ancestors (< 12, legacy store) or 3 (>= 12, k8s
  ``MaxNestedFolderDepth = 4``).
* ``DELETE /api/folders/:uid`` body: ``{"message": "Folder deleted"}`` (>= 10) or the
  old ``{"id", "message": "Folder <t> deleted", "title"}``.

Written from ``/work/shared/reference/grafana-http-api.md`` and checked against Grafana's
own source (grafana/grafana): ``pkg/api/dashboard.go``, ``pkg/api/apierrors/{dashboard,
folder}.go``, ``pkg/services/dashboards/errors.go``, ``.../service/dashboard_service.go``
(``BuildSaveDashboardCommand``, ``ValidateDashboardBeforeSave``,
``ValidateBasicDashboardProperties``), ``.../models.go`` (``NewDashboardFromJson``),
``pkg/api/search.go``, ``pkg/services/search/model/model.go``, ``pkg/api/folder.go``,
``pkg/services/folder/folderimpl/folder.go`` (``Create``/``legacyUpdate``/``toFolderError``),
``pkg/api/datasources.go``, ``pkg/services/datasources/{errors.go,service/store.go}``,
``pkg/api/user.go``, ``pkg/api/response/response.go``, ``pkg/middleware/auth.go``,
``pkg/services/contexthandler`` (``writeErrOrFallback``), ``pkg/services/authn/{authnimpl,
clients}`` (``auth.unauthorized``, ``api-key.*``, ``password-auth.failed``,
``login-attempt.blocked``), ``pkg/services/accesscontrol/middleware.go`` (RBAC deny body),
``pkg/infra/slugify/slugify.go``, ``pkg/api/http_server.go`` (``apiHealthHandler``),
``pkg/api/api.go`` (route permissions).  Each surprising rule carries its source below.

Deliberate differences from the reference document, with the reason:

* Missing/unknown-scheme credentials give 401 ``{"message": "Unauthorized",
  "messageId": "auth.unauthorized", "statusCode": 401, "traceID": ""}``: the authn service
  returns ``errCantAuthenticateReq`` and the context handler stores *every* authn error in
  ``LookupTokenErr``, which ``notAuthorized`` renders as an errutil body.  Pass
  ``legacy_unauthorized_body=True`` for the bare ``{"message": "Unauthorized"}``.
* ``POST /api/folders`` with a uid that already names a folder gives **412**
  ``version-mismatch`` (folder service ``Create`` -> ``ValidateDashboardBeforeSave`` ->
  ``ErrDashboardVersionMismatch`` -> ``toFolderError``), not the 409 the reference lists;
  a uid naming a *dashboard* gives 400 ``Dashboard cannot be changed to a folder``.
* Dashboard version items use the real key ``uid`` (``DashboardVersionMeta``), not
  ``dashboardUID``; list items carry ``"data": null`` (the 11.x list query does not load
  the JSON), the single-version endpoint carries the full JSON.
* Not emulated: per-folder/per-dashboard permissions (RBAC is by action only), stars,
  soft delete (``dashboardRestore``), library panels, alerting (extension point below).

Extension point: every route is one ``Route`` in ``GrafanaEmulator.routes`` (method,
pattern, handler, permission).  ``add_route()`` registers more (a later task adds
``/api/v1/provisioning/...`` and ``/api/ruler/...``); handlers take a ``Request`` and
return an ``ApiResponse`` or raise ``ApiError``.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime as _dt
import hashlib
import json
import random
import re
import threading
import time
import uuid as _uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = [
    "ApiError", "ApiResponse", "DashboardRecord", "DatasourceRecord", "FolderRecord",
    "GrafanaEmulator", "GrafanaState", "Identity", "RecordedRequest", "Request", "Route",
    "VersionRecord", "make_fixture", "slugify",
]

ZERO_TIME = "0001-01-01T00:00:00Z"
UID_RE = re.compile(r"^[a-zA-Z0-9\-_]*$")  # pkg/util/shortid_generator.go IsValidShortUID
MAX_UID_LEN = 40
SEARCH_MAX_LIMIT = 5000
DEFAULT_LIMIT = 1000
GENERAL_FOLDER_UID = "general"


# --------------------------------------------------------------------------------------
# Responses and error shapes (reference section 0.2)
# --------------------------------------------------------------------------------------

class ApiResponse:
    """A response: ``body`` is JSON-encoded unless ``raw`` (bytes/str) is given."""

    __slots__ = ("status", "body", "headers", "raw")

    def __init__(self, status: int, body: Any = None, headers: dict | None = None,
                 raw: bytes | str | None = None):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.raw = raw

    def encode(self) -> bytes:
        if self.raw is not None:
            return self.raw.encode() if isinstance(self.raw, str) else self.raw
        if self.body is None:
            return b""
        return json.dumps(self.body, separators=(",", ":"), ensure_ascii=False).encode()


class ApiError(Exception):
    """Raise from a handler to answer with ``response``."""

    def __init__(self, response: ApiResponse):
        super().__init__(response.status)
        self.response = response


def _json(status: int, body: Any) -> ApiResponse:
    return ApiResponse(status, body, {"Content-Type": "application/json"})


def err_a(status: int, message: str, trace: bool = False) -> ApiResponse:
    """Shape A, ``response.Error``: ``traceID`` appears when Go passed an error value."""
    body: dict[str, Any] = {"message": message}
    if trace:
        body["traceID"] = ""
    return _json(status, body)


def err_b(status: int, status_str: str, message: str) -> ApiResponse:
    """Shape B, ``DashboardErr.Body()`` / folder helpers (no traceID)."""
    return _json(status, {"message": message, "status": status_str})


def err_c(status: int, message_id: str, message: str) -> ApiResponse:
    """Shape C, errutil ``PublicError`` written by ``response.Err``/``writeErrOrFallback``."""
    return _json(status, {"message": message, "messageId": message_id,
                          "statusCode": status, "traceID": ""})


def err_d(needed: str) -> ApiResponse:
    """Shape D, RBAC middleware ``deny``; accessErrorId is ``ACE`` + 10 digits."""
    ace = "ACE" + "".join(random.choice("0123456789") for _ in range(10))
    return _json(403, {
        "accessErrorId": ace,
        "message": "You'll need additional permissions to perform this action. "
                   f"Permissions needed: {needed}",
        "title": "Access denied",
    })


def bad_request_data() -> ApiError:
    return ApiError(err_a(400, "bad request data", trace=True))


# --------------------------------------------------------------------------------------
# Small Grafana helpers
# --------------------------------------------------------------------------------------

_SLUG_REPLACE = {" ": "-", "&": "and", "@": "at", "©": "c", "®": "r", "Æ": "ae", "ß": "ss",
                 "æ": "ae", "ç": "c", "ø": "o", "ü": "ue", "ý": "y", "þ": "p", "ÿ": "y",
                 "œ": "oe", "Œ": "oe", "™": "tm"}
for _chars, _rep in (("àáâäåãā", "a"), ("èéêëē", "e"), ("ìíîïī", "i"), ("òóôõöō", "o"),
                     ("ùúûū", "u")):
    for _c in _chars:
        _SLUG_REPLACE[_c] = _rep
_CYR = "абвгдежзийклмнопрстуфхцчшщъыьэюяё"
_CYR_LAT = ["a", "b", "v", "g", "d", "e", "zh", "z", "i", "j", "k", "l", "m", "n", "o", "p",
            "r", "s", "t", "u", "f", "h", "c", "ch", "sh", "sch", "-", "y", "-", "je", "ju",
            "ja", "jo"]
_SLUG_REPLACE.update(dict(zip(_CYR, _CYR_LAT)))
_SLUG_OMIT = set(",\"'\n\r\x00?.()")


def slugify(value: str) -> str:
    """``pkg/infra/slugify.Slugify``: lower-case, replace/omit/hex-encode, and fall back to
    a SHA1 UUID (``uuid.NewSHA1(NameSpaceOID, value)``) if empty or longer than 50 bytes.
    The replacement table is a subset of Grafana's (Latin-1, Cyrillic)."""
    out = []
    for ch in value.strip().lower():
        if ch in _SLUG_REPLACE:
            out.append(_SLUG_REPLACE[ch])
        elif "a" <= ch <= "z" or "0" <= ch <= "9" or ch in "_-":
            out.append(ch)
        elif ch in _SLUG_OMIT:
            continue
        else:
            out.append(ch.encode("utf-8").hex())
    slug = "".join(out)
    if not slug or len(slug) > 50:
        slug = str(_uuid.uuid5(_uuid.NAMESPACE_OID, value))
    return slug


def dashboard_url(uid: str, slug: str) -> str:
    return f"/d/{uid}/{slug}"


def folder_url(uid: str, slug: str) -> str:
    return f"/dashboards/f/{uid}/{slug}"


def gen_uid() -> str:
    """Server-generated uid (Grafana 11+ emits 14-char ids; clients must not assume)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return random.choice("abcdef") + "".join(random.choice(alphabet) for _ in range(13))


def fmt_time(t: _dt.datetime | None) -> str:
    if t is None:
        return ZERO_TIME
    return t.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_DUR_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_GTIME_UNITS = {"d": 86400, "w": 604800, "M": 2592000, "y": 31536000}


def parse_gtime(s: str) -> float | None:
    """``gtime.ParseDuration``: ``<int><d|w|M|y>`` or a Go ``time.ParseDuration`` string."""
    m = re.fullmatch(r"(\d+)([dwMy])", s)
    if m:
        return int(m.group(1)) * _GTIME_UNITS[m.group(2)]
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", s)
    if not parts or "".join(a + b for a, b in parts) != s:
        return None
    return sum(float(a) * _DUR_UNITS[b] for a, b in parts)


def _byte_len(s: str) -> int:
    return len(s.encode("utf-8"))


def _sorted_json(v: Any) -> Any:
    """Go marshals ``map`` (simplejson/DynMap) keys in sorted order."""
    if isinstance(v, dict):
        return {k: _sorted_json(v[k]) for k in sorted(v)}
    if isinstance(v, list):
        return [_sorted_json(x) for x in v]
    return v


def _parse_version(v: str) -> tuple[int, int, int]:
    nums = [int(x) for x in re.findall(r"\d+", v.split("-")[0].split("+")[0])[:3]]
    while len(nums) < 3:
        nums.append(0)
    return nums[0], nums[1], nums[2]


# --------------------------------------------------------------------------------------
# Body binding (reference 0.1, pkg/web/binding.go + encoding/json semantics)
# --------------------------------------------------------------------------------------

def _check_type(kind: str, v: Any) -> bool:
    if v is None:
        return True  # JSON null leaves the Go zero value
    if kind == "str":
        return isinstance(v, str)
    if kind == "int":
        return isinstance(v, int) and not isinstance(v, bool)
    if kind == "bool":
        return isinstance(v, bool)
    if kind == "obj":
        return isinstance(v, dict)
    if kind == "strmap":
        return isinstance(v, dict) and all(x is None or isinstance(x, str) for x in v.values())
    return True  # "any"


_ZERO = {"str": "", "int": 0, "bool": False, "obj": None, "strmap": None, "any": None}


def bind(body: bytes, fields: dict[str, str], required: Iterable[str] = ()) -> dict[str, Any]:
    """Decode like ``web.Bind``: JSON whatever the Content-Type, the first JSON value only
    (Go's Decoder ignores trailing bytes), empty body allowed, keys matched exactly or else
    case-insensitively, unknown keys ignored, type errors -> 400 "bad request data", then
    ``binding:"Required"`` fields must be non-zero."""
    text = body.decode("utf-8", errors="replace").lstrip()
    data: Any = None
    if text:
        try:
            data, _ = json.JSONDecoder().raw_decode(text)
        except ValueError:
            raise bad_request_data() from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise bad_request_data()
    out: dict[str, Any] = {name: _ZERO[kind] for name, kind in fields.items()}
    present: set[str] = set()
    lower = {name.lower(): name for name in fields}
    for key, value in data.items():
        name = key if key in fields else lower.get(key.lower())
        if name is None:
            continue
        if not _check_type(fields[name], value):
            raise bad_request_data()
        present.add(name)
        out[name] = _ZERO[fields[name]] if value is None else value
    out["_present"] = present
    for name in required:
        if out.get(name) in (None, "", 0, False):
            raise bad_request_data()
    return out


# --------------------------------------------------------------------------------------
# State records
# --------------------------------------------------------------------------------------

@dataclasses.dataclass
class Identity:
    kind: str  # "user" | "service-account"
    id: int
    login: str
    name: str = ""
    email: str = ""
    role: str = "Admin"  # Admin | Editor | Viewer | None
    permissions: frozenset | None = None  # explicit action set overrides the role
    is_grafana_admin: bool = False
    org_id: int = 1
    uid: str = ""

    def actions(self) -> frozenset:
        if self.permissions is not None:
            return frozenset(self.permissions)
        return ROLE_PERMISSIONS.get(self.role, frozenset())

    def can(self, action: str) -> bool:
        return action in self.actions()


@dataclasses.dataclass
class UserRecord:
    id: int
    login: str
    password: str | None
    name: str = ""
    email: str = ""
    role: str = "Admin"
    is_grafana_admin: bool = False
    is_service_account: bool = False
    uid: str = ""
    created: _dt.datetime | None = None


@dataclasses.dataclass
class TokenRecord:
    token: str
    user_id: int
    permissions: frozenset | None = None
    role: str = "Admin"
    expired: bool = False
    revoked: bool = False


@dataclasses.dataclass
class DashboardRecord:
    id: int
    uid: str
    title: str
    slug: str
    data: dict
    version: int
    folder_uid: str = ""
    created: _dt.datetime | None = None
    updated: _dt.datetime | None = None
    created_by: int = -1
    updated_by: int = -1
    tags: list = dataclasses.field(default_factory=list)
    plugin_id: str = ""
    provisioned: dict | None = None  # {"name", "external_id", "allow_ui_updates", "path"}
    is_folder: bool = False


@dataclasses.dataclass
class VersionRecord:
    id: int
    dashboard_id: int
    dashboard_uid: str
    parent_version: int
    restored_from: int
    version: int
    created: _dt.datetime
    created_by: int
    message: str
    data: dict


@dataclasses.dataclass
class FolderRecord:
    id: int
    uid: str
    title: str
    description: str = ""
    parent_uid: str = ""
    version: int = 1
    created: _dt.datetime | None = None
    updated: _dt.datetime | None = None
    created_by: int = -1
    updated_by: int = -1
    is_folder: bool = True

    @property
    def slug(self) -> str:
        return slugify(self.title)


@dataclasses.dataclass
class DatasourceRecord:
    id: int
    uid: str
    name: str
    type: str
    access: str = ""
    url: str = ""
    user: str = ""
    database: str = ""
    basic_auth: bool = False
    basic_auth_user: str = ""
    with_credentials: bool = False
    is_default: bool = False
    json_data: Any = dataclasses.field(default_factory=dict)
    secure_json_data: dict = dataclasses.field(default_factory=dict)
    version: int = 1
    read_only: bool = False
    api_version: str = ""


class GrafanaState:
    """Everything the emulator stores; tests may read and edit it directly (hold ``lock``
    while requests are in flight)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.dashboards: dict[str, DashboardRecord] = {}
        self.versions: dict[str, list[VersionRecord]] = {}
        self.folders: dict[str, FolderRecord] = {}
        self.datasources: dict[str, DatasourceRecord] = {}
        self.users: dict[int, UserRecord] = {}
        self.tokens: dict[str, TokenRecord] = {}
        self.login_failures: dict[str, list[float]] = {}
        self.database_ok = True
        self._next_dash_id = 1  # dashboards and folders share the `dashboard` table ids
        self._next_version_id = 1
        self._next_ds_id = 1
        self._next_user_id = 1

    def next_dashboard_id(self) -> int:
        self._next_dash_id += 1
        return self._next_dash_id - 1

    def next_version_id(self) -> int:
        self._next_version_id += 1
        return self._next_version_id - 1

    def next_ds_id(self) -> int:
        self._next_ds_id += 1
        return self._next_ds_id - 1

    def next_user_id(self) -> int:
        self._next_user_id += 1
        return self._next_user_id - 1

    def user_by_login(self, login: str) -> UserRecord | None:
        for u in self.users.values():
            if u.login == login or (u.email and u.email == login):
                return u
        return None

    def login_of(self, user_id: int) -> str:
        u = self.users.get(user_id) if user_id > 0 else None
        return u.login if u else "Anonymous"


# RBAC: basic-role action sets (approximation of Grafana's fixed roles; by action only).
_VIEWER = frozenset({
    "dashboards:read", "folders:read", "datasources:read", "datasources:query", "orgs:read",
    "annotations:read", "alert.rules:read", "alert.instances:read", "alert.notifications:read",
})
_EDITOR = _VIEWER | {
    "dashboards:create", "dashboards:write", "dashboards:delete", "folders:create",
    "folders:write", "folders:delete", "datasources:explore", "annotations:create",
    "annotations:write", "annotations:delete", "alert.rules:create", "alert.rules:write",
    "alert.rules:delete", "alert.instances:create", "alert.instances:write",
    "alert.notifications:write",
}
_ADMIN = _EDITOR | {
    "datasources:create", "datasources:write", "datasources:delete", "datasources:id:read",
    "dashboards.permissions:read", "dashboards.permissions:write", "folders.permissions:read",
    "folders.permissions:write", "orgs:write", "org.users:read", "serviceaccounts:read",
    "alert.provisioning:read", "alert.provisioning:write", "alert.provisioning.secrets:read",
}
ROLE_PERMISSIONS = {"Admin": frozenset(_ADMIN), "Editor": frozenset(_EDITOR),
                    "Viewer": _VIEWER, "None": frozenset()}


# --------------------------------------------------------------------------------------
# Request log, faults, routing
# --------------------------------------------------------------------------------------

@dataclasses.dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict
    headers: dict  # Authorization value replaced by "<redacted>"
    body: bytes
    authorization: str | None = dataclasses.field(default=None, repr=False)
    status: int | None = None
    dropped: bool = False
    fault: str | None = None  # "fail" | "drop" when an injected fault answered
    identity: str | None = None  # login of the authenticated identity
    response_body: bytes = b""
    time: float = 0.0

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    @property
    def response_json(self) -> Any:
        try:
            return json.loads(self.response_body) if self.response_body else None
        except ValueError:
            return None

    @property
    def auth_scheme(self) -> str | None:
        return self.authorization.split(" ", 1)[0] if self.authorization else None


@dataclasses.dataclass
class _Fault:
    kind: str  # fail | drop | slow
    remaining: int
    path_prefix: str | None = None
    method: str | None = None
    status: int = 503
    retry_after: Any = None
    body: Any = None
    seconds: float = 0.0
    after: bool = False  # drop: answer lost after the request was processed

    def matches(self, method: str, path: str) -> bool:
        return ((self.path_prefix is None or path.startswith(self.path_prefix))
                and (self.method is None or self.method.upper() == method))


class Request:
    """What a route handler sees."""

    def __init__(self, emulator: "GrafanaEmulator", method: str, path: str,
                 query: dict[str, list[str]], headers: dict[str, str], body: bytes):
        self.emulator = emulator
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.params: dict[str, str] = {}
        self.identity: Identity | None = None

    def header(self, name: str) -> str | None:
        for k, v in self.headers.items():
            if k.lower() == name.lower():
                return v
        return None

    def q(self, name: str, default: str = "") -> str:
        vals = self.query.get(name)
        return vals[0] if vals else default

    def q_all(self, name: str) -> list[str]:
        return list(self.query.get(name, []))

    def q_int(self, name: str) -> int:
        """``ctx.QueryInt``: ``strconv.Atoi``, errors give 0."""
        try:
            return int(self.q(name).strip() or "0")
        except ValueError:
            return 0

    def q_bool(self, name: str) -> bool:
        return self.q(name) in ("1", "t", "T", "TRUE", "true", "True")

    def bind(self, fields: dict[str, str], required: Iterable[str] = ()) -> dict[str, Any]:
        return bind(self.body, fields, required)


@dataclasses.dataclass
class Route:
    method: str
    pattern: str  # "/api/dashboards/uid/{uid}" ; {name} matches one path segment
    handler: Callable[[Request], ApiResponse]
    permission: str | tuple | None = None  # action, ("any", [actions]) or None
    auth: str = "signed_in"  # "none" | "signed_in" | "no_anonymous"
    regex: re.Pattern = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        parts = []
        for seg in self.pattern.strip("/").split("/"):
            m = re.fullmatch(r"\{(\w+)\}", seg)
            parts.append(f"(?P<{m.group(1)}>[^/]+)" if m else re.escape(seg))
        self.regex = re.compile("^/" + "/".join(parts) + "$")

    def needed(self) -> str:
        if isinstance(self.permission, tuple):
            return "any of " + ", ".join(self.permission[1])
        return str(self.permission)

    def allowed(self, ident: Identity) -> bool:
        if self.permission is None:
            return True
        if isinstance(self.permission, tuple):
            return any(ident.can(a) for a in self.permission[1])
        return ident.can(self.permission)


_DROP = object()


# --------------------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------------------

class GrafanaEmulator:
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
                 latency: float = 0.0, now: Callable[[], _dt.datetime] | None = None):
        self.version = version
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

    def start(self) -> "GrafanaEmulator":
        if self._server is not None:
            return self
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.emulator = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="grafana-emulator",
                                        daemon=True)
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

    def __enter__(self) -> "GrafanaEmulator":
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

    # ==================================================================================
    # Dashboards (reference 3.1 - 3.4)
    # ==================================================================================

    def _lookup_uid(self, uid: str) -> DashboardRecord | FolderRecord | None:
        """Dashboards and folders share the legacy ``dashboard`` table (one uid space)."""
        return self.state.dashboards.get(uid) or self.state.folders.get(uid)

    def _lookup_id(self, id_: int) -> DashboardRecord | FolderRecord | None:
        for rec in list(self.state.dashboards.values()) + list(self.state.folders.values()):
            if rec.id == id_:
                return rec
        return None

    def h_dashboard_post(self, req: Request) -> ApiResponse:
        cmd = req.bind({"dashboard": "obj", "overwrite": "bool", "message": "str",
                        "folderUid": "str", "folderId": "int", "isFolder": "bool",
                        "userId": "int"}, required=["dashboard"])
        assert req.identity is not None
        rec = self.save_dashboard(req.identity, cmd["dashboard"], folder_uid=cmd["folderUid"],
                                  folder_id=cmd["folderId"], overwrite=cmd["overwrite"],
                                  message=cmd["message"], is_folder=cmd["isFolder"])
        return self._save_response(rec)

    def _save_response(self, rec: DashboardRecord) -> ApiResponse:
        return _json(200, {"folderUid": rec.folder_uid, "id": rec.id, "slug": rec.slug,
                           "status": "success", "uid": rec.uid,
                           "url": dashboard_url(rec.uid, rec.slug), "version": rec.version})

    def save_dashboard(self, ident: Identity, dashboard: dict, *, folder_uid: str = "",
                       folder_id: int = 0, overwrite: bool = False, message: str = "",
                       is_folder: bool = False, restored_from: int = 0,
                       check_permissions: bool = True) -> DashboardRecord:
        """The ``POST /api/dashboards/db`` algorithm (reference 3.1); raises ``ApiError``."""
        with self.state.lock:
            return self._save_dashboard(ident, copy.deepcopy(dashboard), folder_uid, folder_id,
                                        overwrite, message, is_folder, restored_from,
                                        check_permissions)

    def _save_dashboard(self, ident: Identity, data: dict, folder_uid: str, folder_id: int,
                        overwrite: bool, message: str, is_folder: bool, restored_from: int,
                        check_permissions: bool) -> DashboardRecord:
        st = self.state
        if is_folder:
            raise ApiError(err_a(400, "Use folders endpoint for saving folders."))
        # NewDashboardFromJson (pkg/services/dashboards/models.go)
        update = False
        dash_id = 0
        raw_id = data.get("id")
        if isinstance(raw_id, (int, float)) and not isinstance(raw_id, bool):
            dash_id, update = int(raw_id), True
        uid = ""
        if isinstance(data.get("uid"), str):
            uid, update = data["uid"], True
        raw_ver = data.get("version")
        if update and isinstance(raw_ver, (int, float)) and not isinstance(raw_ver, bool):
            version = int(raw_ver)
        else:
            version = 0
            data["version"] = 0
        title = data["title"] if isinstance(data.get("title"), str) else ""
        # postDashboard: quota on new dashboards
        if dash_id == 0 and self.dashboard_quota is not None \
                and len(st.dashboards) >= self.dashboard_quota:
            raise ApiError(err_a(403, "Quota reached"))
        # SaveDashboard: a too-short (or unparsable) refresh is silently raised
        refresh = data.get("refresh")
        if isinstance(refresh, str) and refresh not in ("", "auto") and self.min_refresh_interval:
            d, lo = parse_gtime(refresh), parse_gtime(self.min_refresh_interval)
            if d is None or (lo is not None and d < lo):
                data["refresh"] = self.min_refresh_interval
        # BuildSaveDashboardCommand: trim + ValidateBasicDashboardProperties
        title = title.strip()
        data["title"] = title
        uid = uid.strip()
        if isinstance(data.get("uid"), str) or uid:
            data["uid"] = uid
        if title == "":
            raise ApiError(err_b(400, "empty-name", "Dashboard title cannot be empty"))
        if _byte_len(title) > 5000:
            raise ApiError(err_b(400, "title-too-long",
                                 "Dashboard title cannot contain more than 5 000 characters"))
        if _byte_len(message) > 500:
            raise ApiError(err_a(400, "message too long, max 500 characters"))
        if not UID_RE.match(uid):
            raise ApiError(err_a(400, "uid contains illegal characters"))
        if len(uid) > MAX_UID_LEN:
            raise ApiError(err_a(400, "uid too long, max 40 characters"))
        # Folder resolution: folderUid wins, else folderId; "" / 0 = General.
        if folder_uid:
            if folder_uid not in st.folders:
                raise ApiError(err_a(400, "folder not found"))
        elif folder_id:
            f = self._lookup_id(folder_id)
            if not isinstance(f, FolderRecord):
                raise ApiError(err_a(400, "folder not found"))
            folder_uid = f.uid
        # ValidateDashboardBeforeSave
        existing: DashboardRecord | FolderRecord | None = None
        by_id = None
        if dash_id > 0:
            by_id = self._lookup_id(dash_id)
            if by_id is None:
                raise ApiError(err_b(404, "not-found", "Dashboard not found"))
            if uid == "":
                uid = by_id.uid
                data["uid"] = uid
        by_uid = self._lookup_uid(uid) if uid else None
        parent_changed = False
        if by_id is not None or by_uid is not None:
            if by_id is not None and by_uid is not None and by_id.id != by_uid.id:
                raise ApiError(err_a(400, "A dashboard with the same uid already exists"))
            existing = by_id or by_uid
            assert existing is not None
            dash_id = existing.id
            data["id"] = dash_id
            if existing.is_folder:
                raise ApiError(err_a(400, "Dashboard cannot be changed to a folder"))
            assert isinstance(existing, DashboardRecord)
            parent_changed = folder_uid != existing.folder_uid
            if version != existing.version:
                if overwrite:
                    version = existing.version
                else:
                    raise ApiError(err_b(412, "version-mismatch",
                                         "The dashboard has been changed by someone else"))
            if existing.plugin_id and not overwrite:
                raise ApiError(err_b(412, "plugin-dashboard",
                                     f"The dashboard belongs to plugin {existing.plugin_id}."))
        if self.unique_titles:
            dash_id, uid, version, parent_changed, existing = self._legacy_title_check(
                data, title, folder_uid, dash_id, uid, version, overwrite, parent_changed,
                existing)
        if check_permissions:
            if parent_changed and not ident.can("dashboards:create"):
                raise ApiError(err_a(403, "Access denied to save dashboard", trace=True))
        if isinstance(existing, DashboardRecord) and existing.provisioned \
                and not existing.provisioned.get("allow_ui_updates"):
            raise ApiError(err_a(400, "Cannot save provisioned dashboard"))
        if check_permissions:
            needed = "dashboards:write" if existing else "dashboards:create"
            if not ident.can(needed):
                raise ApiError(err_a(403, "Access denied to save dashboard", trace=True))
        return self._store_dashboard(ident, data, existing, uid, title, version, folder_uid,
                                     message, restored_from)

    def _legacy_title_check(self, data: dict, title: str, folder_uid: str, dash_id: int,
                            uid: str, version: int, overwrite: bool, parent_changed: bool,
                            existing: Any) -> tuple:
        """Grafana <= 11.2 ``getExistingDashboardByTitleAndFolder`` (issue #57526)."""
        slug = slugify(title)
        for f in self.state.folders.values():
            if f.slug == slug:
                raise ApiError(err_b(400, "name-match", "Dashboard name cannot be the same as folder"))
        for other in self.state.dashboards.values():
            if other.slug == slug and other.folder_uid == folder_uid and other.id != dash_id:
                if dash_id == 0:
                    parent_changed = True
                if not overwrite:
                    raise ApiError(err_b(412, "name-exists", "A dashboard with the same name in "
                                                             "the folder already exists"))
                data["id"], data["uid"], data["version"] = other.id, other.uid, other.version
                return other.id, other.uid, other.version, parent_changed, other
        return dash_id, uid, version, parent_changed, existing

    def _store_dashboard(self, ident: Identity, data: dict, existing: Any, uid: str,
                         title: str, version: int, folder_uid: str, message: str,
                         restored_from: int) -> DashboardRecord:
        """``saveDashboard`` in ``database.go``: new -> version 1, update -> stored + 1; one
        ``dashboard_version`` row with ``parentVersion`` = the (synced) request version."""
        st = self.state
        now = self.now()
        user_id = ident.id if ident.id > 0 else -1
        parent_version = version
        raw_tags = data.get("tags")
        tags = list(raw_tags) if isinstance(raw_tags, list) and all(
            isinstance(t, str) for t in raw_tags) else []
        if existing is None:
            uid = uid or gen_uid()
            while self._lookup_uid(uid) is not None and not data.get("uid"):
                uid = gen_uid()
            data["uid"] = uid
            data["version"] = 1
            rec = DashboardRecord(st.next_dashboard_id(), uid, title, slugify(title), data, 1,
                                  folder_uid, now, now, user_id, user_id, tags)
            st.dashboards[uid] = rec
            st.versions[uid] = []
        else:
            rec = existing
            data["version"] = existing.version + 1
            rec.version = existing.version + 1
            rec.data, rec.title, rec.slug = data, title, slugify(title)
            rec.folder_uid, rec.updated, rec.updated_by, rec.tags = folder_uid, now, user_id, tags
        st.versions.setdefault(rec.uid, []).append(VersionRecord(
            st.next_version_id(), rec.id, rec.uid, parent_version, restored_from, rec.version,
            now, user_id, message, copy.deepcopy(data)))
        return rec

    def _dashboard_or_404(self, uid: str) -> DashboardRecord:
        rec = self.state.dashboards.get(uid)
        if rec is None:
            raise ApiError(err_a(404, "Dashboard not found", trace=True))
        return rec

    def h_dashboard_get(self, req: Request) -> ApiResponse:
        """``GetDashboard``: JSON with id/uid/version synced from the DB, plus ``meta``."""
        uid = req.params["uid"]
        rec = self._dashboard_or_404(uid)
        ident = req.identity
        assert ident is not None
        data = copy.deepcopy(rec.data)
        data["id"], data["uid"], data["version"] = rec.id, rec.uid, rec.version
        folder = self.state.folders.get(rec.folder_uid) if rec.folder_uid else None
        prov = rec.provisioned or {}
        can_save = ident.can("dashboards:write")
        meta = {
            "type": "db", "canSave": can_save, "canEdit": can_save,
            "canAdmin": ident.can("dashboards.permissions:write"), "canStar": True,
            "canDelete": ident.can("dashboards:delete"), "slug": rec.slug,
            "url": dashboard_url(rec.uid, rec.slug), "expires": ZERO_TIME,
            "created": fmt_time(rec.created), "updated": fmt_time(rec.updated),
            "updatedBy": self.state.login_of(rec.updated_by),
            "createdBy": self.state.login_of(rec.created_by), "version": rec.version,
            "hasAcl": False, "isFolder": False, "folderId": folder.id if folder else 0,
            "folderUid": folder.uid if folder else "",
            "folderTitle": folder.title if folder else "General",
            "folderUrl": folder_url(folder.uid, folder.slug) if folder else "",
            "provisioned": bool(rec.provisioned) and not prov.get("allow_ui_updates", False),
            "provisionedExternalId": prov.get("external_id", ""),
            "annotationsPermissions": {
                k: {"canAdd": ident.can("annotations:create"),
                    "canEdit": ident.can("annotations:write"),
                    "canDelete": ident.can("annotations:delete")}
                for k in ("dashboard", "organization")},
            "publicDashboardAccessToken": "", "publicDashboardUid": "",
            "publicDashboardEnabled": False,
        }
        return _json(200, {"meta": meta, "dashboard": _sorted_json(data)})

    def h_dashboard_delete(self, req: Request) -> ApiResponse:
        uid = req.params["uid"]
        if uid in self.state.folders:
            return err_a(400, "Use folders endpoint for deleting folders.")
        rec = self._dashboard_or_404(uid)
        if rec.provisioned:
            return err_a(400, "provisioned dashboard cannot be deleted", trace=True)
        self._delete_dashboard(rec)
        return _json(200, {"message": f"Dashboard {rec.title} deleted", "title": rec.title,
                           "uid": rec.uid})

    def _delete_dashboard(self, rec: DashboardRecord) -> None:
        self.state.dashboards.pop(rec.uid, None)
        self.state.versions.pop(rec.uid, None)

    def h_dashboard_tags(self, req: Request) -> ApiResponse:
        counts: dict[str, int] = {}
        for d in self.state.dashboards.values():
            for t in d.tags:
                counts[t] = counts.get(t, 0) + 1
        return _json(200, [{"term": t, "count": c} for t, c in sorted(counts.items())])

    # ---- versions --------------------------------------------------------------------

    def _version_meta(self, v: VersionRecord, list_item: bool) -> dict:
        msg = v.message
        if list_item:  # GetDashboardVersions rewrites messages for display
            if v.restored_from == v.version:
                msg = "Initial save (created by migration)"
            if v.restored_from > 0:
                msg = f"Restored from version {v.restored_from}"
            if v.parent_version == 0:
                msg = "Initial save"
        return {"id": v.id, "dashboardId": v.dashboard_id, "uid": v.dashboard_uid,
                "parentVersion": v.parent_version, "restoredFrom": v.restored_from,
                "version": v.version, "created": fmt_time(v.created), "message": msg,
                "data": None if list_item else _sorted_json(v.data),
                "createdBy": self.state.login_of(v.created_by)}

    def h_versions_list(self, req: Request) -> ApiResponse:
        rec = self._dashboard_or_404(req.params["uid"])
        rows = sorted(self.state.versions.get(rec.uid, []), key=lambda v: -v.version)
        limit = req.q_int("limit") or DEFAULT_LIMIT
        start = req.q_int("start")
        token = req.q("continueToken")
        if token and self.versions_envelope:
            try:
                start = int(json.loads(base64.urlsafe_b64decode(token.encode()))["o"])
            except (ValueError, KeyError, TypeError):
                return err_a(400, "invalid continue token", trace=True)
        page = rows[start:start + limit] if limit > 0 else rows[start:]
        items = [self._version_meta(v, True) for v in page]
        if not self.versions_envelope:
            return _json(200, items)
        nxt = ""
        if start + len(page) < len(rows):
            nxt = base64.urlsafe_b64encode(json.dumps({"o": start + len(page)}).encode()
                                           ).decode()
        return _json(200, {"continueToken": nxt, "versions": items})

    def h_version_get(self, req: Request) -> ApiResponse:
        rec = self._dashboard_or_404(req.params["uid"])
        try:
            wanted = int(req.params["version"])
        except ValueError:
            wanted = 0
        for v in self.state.versions.get(rec.uid, []):
            if v.version == wanted:
                return _json(200, self._version_meta(v, False))
        return err_a(500, f"Dashboard version {wanted} not found for dashboardId {rec.id}",
                     trace=True)

    def h_restore(self, req: Request) -> ApiResponse:
        """``RestoreDashboardVersion``: re-save version N with current version/uid/folder."""
        cmd = req.bind({"version": "int"}, required=["version"])
        rec = self._dashboard_or_404(req.params["uid"])
        found = next((v for v in self.state.versions.get(rec.uid, [])
                      if v.version == cmd["version"]), None)
        if found is None:
            return err_a(404, "Dashboard version not found")
        data = copy.deepcopy(found.data)
        data["version"], data["uid"] = rec.version, rec.uid
        assert req.identity is not None
        saved = self._save_dashboard(req.identity, data, rec.folder_uid, 0, False,
                                     f"Restored from version {found.version}", False,
                                     found.version, True)
        return self._save_response(saved)

    # ---- search (reference 3.5) ------------------------------------------------------

    def h_search(self, req: Request) -> ApiResponse:
        limit, page = req.q_int("limit"), req.q_int("page")
        if limit > SEARCH_MAX_LIMIT:
            return err_a(422, "Limit is above maximum allowed (5000), use page parameter to "
                              "access hits beyond limit")
        db_ids = [int(x) for x in req.q_all("dashboardIds") if re.fullmatch(r"-?\d+", x)]
        db_uids = req.q_all("dashboardUIDs") or req.q_all("dashboardUID")
        folder_ids = [int(x) for x in req.q_all("folderIds") if re.fullmatch(r"-?\d+", x)]
        folder_uids = req.q_all("folderUIDs")
        if (db_ids and db_uids) or (folder_ids and folder_uids):
            return err_a(400, "search supports UIDs or IDs, not both")
        query = req.q("query").lower()
        tags = req.q_all("tag")
        typ = req.q("type")
        items: list[DashboardRecord | FolderRecord] = []
        if typ != "dash-db":
            items.extend(self.state.folders.values())
        if typ != "dash-folder":
            items.extend(self.state.dashboards.values())

        def parent_of(it: Any) -> str:
            return it.parent_uid if isinstance(it, FolderRecord) else it.folder_uid

        def keep(it: Any) -> bool:
            if query and query not in it.title.lower():
                return False
            if tags and (isinstance(it, FolderRecord) or not set(tags) <= set(it.tags)):
                return False
            if db_uids and it.uid not in db_uids:
                return False
            if db_ids and it.id not in db_ids:
                return False
            if folder_uids:
                p = parent_of(it)
                if not (p in folder_uids or (p == "" and GENERAL_FOLDER_UID in folder_uids)):
                    return False
            if folder_ids:
                p = parent_of(it)
                pid = self.state.folders[p].id if p in self.state.folders else 0
                if pid not in folder_ids:
                    return False
            if req.q("starred") == "true":
                return False  # stars are not emulated: nobody has any
            if req.q("permission") == "Edit" and req.identity and not req.identity.can(
                    "folders:write" if isinstance(it, FolderRecord) else "dashboards:write"):
                return False
            return True

        hits = [it for it in items if keep(it)]
        desc = req.q("sort") == "alpha-desc"
        hits.sort(key=lambda it: (it.title.lower(), it.id), reverse=desc)
        if limit < 1:
            limit = DEFAULT_LIMIT
        if page < 1:
            page = 1
        hits = hits[(page - 1) * limit: page * limit]
        if not req.q("sort"):  # sortedHits: folders first, then title (within the page)
            hits.sort(key=lambda it: (not isinstance(it, FolderRecord), it.title.lower()))
        return _json(200, [self._hit(it) for it in hits])

    def _hit(self, it: DashboardRecord | FolderRecord) -> dict:
        is_folder = isinstance(it, FolderRecord)
        hit: dict[str, Any] = {
            "id": it.id, "uid": it.uid, "title": it.title, "uri": "db/" + it.slug,
            "url": folder_url(it.uid, it.slug) if is_folder else dashboard_url(it.uid, it.slug),
            "slug": "", "type": "dash-folder" if is_folder else "dash-db",
            "tags": [] if is_folder else sorted(it.tags), "isStarred": False}
        parent = self.state.folders.get(it.parent_uid if is_folder else it.folder_uid)  # type: ignore[union-attr]
        if parent is not None:
            hit.update({"folderId": parent.id, "folderUid": parent.uid,
                        "folderTitle": parent.title,
                        "folderUrl": folder_url(parent.uid, parent.slug)})
        hit["sortMeta"] = 0
        return hit

    # ==================================================================================
    # Folders (reference 4)
    # ==================================================================================

    def _folder_404(self) -> ApiError:
        return ApiError(err_b(404, "not-found", "folder not found"))

    def _ancestors(self, uid: str) -> list[FolderRecord]:
        """Parents of ``uid`` from the root down (``GetParents``)."""
        out: list[FolderRecord] = []
        seen = set()
        f = self.state.folders.get(uid)
        while f is not None and f.parent_uid and f.parent_uid not in seen:
            seen.add(f.parent_uid)
            parent = self.state.folders.get(f.parent_uid)
            if parent is None:
                break
            out.insert(0, parent)
            f = parent
        return out

    def _folder_dto(self, f: FolderRecord, ident: Identity, with_parents: bool = True) -> dict:
        dto: dict[str, Any] = {
            "id": f.id, "uid": f.uid, "orgId": 1, "title": f.title,
            "url": folder_url(f.uid, f.slug), "hasAcl": False,
            "canSave": ident.can("folders:write"), "canEdit": ident.can("folders:write"),
            "canAdmin": ident.can("folders.permissions:write"),
            "canDelete": ident.can("folders:delete"),
            "createdBy": self.state.login_of(f.created_by), "created": fmt_time(f.created),
            "updatedBy": self.state.login_of(f.updated_by), "updated": fmt_time(f.updated),
            "version": f.version}
        if f.parent_uid:
            dto["parentUid"] = f.parent_uid
        if with_parents:
            parents = [self._folder_dto(p, ident, False) for p in self._ancestors(f.uid)]
            if parents:
                dto["parents"] = parents
        return dto

    def h_folders_list(self, req: Request) -> ApiResponse:
        parent = req.q("parentUid")
        if parent and parent not in self.state.folders:
            raise self._folder_404()
        limit = req.q_int("limit")
        page = req.q_int("page")
        limit = limit if limit > 0 else DEFAULT_LIMIT
        page = page if page > 0 else 1
        kids = sorted((f for f in self.state.folders.values() if f.parent_uid == parent),
                      key=lambda f: (f.title.lower(), f.id))
        out = []
        for f in kids[(page - 1) * limit: page * limit]:
            hit: dict[str, Any] = {"id": f.id, "uid": f.uid, "title": f.title}
            if f.parent_uid:
                hit["parentUid"] = f.parent_uid
            out.append(hit)
        return _json(200, out)

    def h_folder_get(self, req: Request) -> ApiResponse:
        f = self.state.folders.get(req.params["uid"])
        if f is None:
            raise self._folder_404()
        assert req.identity is not None
        return _json(200, self._folder_dto(f, req.identity))

    def h_folder_create(self, req: Request) -> ApiResponse:
        cmd = req.bind({"uid": "str", "title": "str", "description": "str",
                        "parentUid": "str"})
        assert req.identity is not None
        f = self.create_folder(req.identity, cmd["title"], cmd["uid"], cmd["parentUid"],
                               cmd["description"])
        return _json(200, self._folder_dto(f, req.identity))

    def create_folder(self, ident: Identity, title: str, uid: str = "", parent_uid: str = "",
                      description: str = "") -> FolderRecord:
        """Folder service ``Create`` (legacy + nested store); raises ``ApiError``."""
        # Order of checks: Create -> BuildSaveDashboardCommand (title, "General", uid) ->
        # ValidateDashboardBeforeSave -> nestedFolderCreate/validateParent (parent, depth).
        # DashboardErr values reach ToFolderErrorResponse's first branch (with traceID).
        st = self.state
        uid = (uid or "").strip()
        parent_uid = parent_uid or ""
        if uid == GENERAL_FOLDER_UID:
            raise ApiError(err_a(400, "invalid uid for folder provided"))
        title = (title or "").strip()
        if not title:
            raise ApiError(err_a(400, "folder title cannot be empty"))
        if title.lower() == "general":
            raise ApiError(err_a(400, "A folder with that name already exists", trace=True))
        if not UID_RE.match(uid):
            raise ApiError(err_a(400, "uid contains illegal characters", trace=True))
        if len(uid) > MAX_UID_LEN:
            raise ApiError(err_a(400, "uid too long, max 40 characters", trace=True))
        if uid:
            other = self._lookup_uid(uid)
            if isinstance(other, DashboardRecord):
                raise ApiError(err_a(400, "Dashboard cannot be changed to a folder", trace=True))
            if other is not None:  # version 0 != stored -> ErrFolderVersionMismatch
                raise ApiError(err_b(412, "version-mismatch",
                                     "the folder has been changed by someone else"))
        if self.unique_titles:
            self._legacy_folder_title_check(title, parent_uid, None)
        if parent_uid:
            if parent_uid not in st.folders:
                raise self._folder_404()
            if uid and uid == parent_uid:
                raise ApiError(err_a(400, "folder cannot be parent of itself"))
            if len(self._ancestors(parent_uid)) + 1 > self.max_folder_ancestors:
                raise ApiError(_json(400, {"message": "Maximum nested folder depth reached",
                                           "messageId": "folder.maximum-depth-reached"}))
        uid = uid or gen_uid()
        now = self.now()
        user_id = ident.id if ident.id > 0 else -1
        f = FolderRecord(st.next_dashboard_id(), uid, title, description, parent_uid, 1, now,
                         now, user_id, user_id)
        st.folders[uid] = f
        return f

    def _legacy_folder_title_check(self, title: str, parent_uid: str, self_uid: str | None
                                   ) -> None:
        slug = slugify(title)
        clash = any(f.slug == slug and f.uid != self_uid and f.parent_uid == parent_uid
                    for f in self.state.folders.values()) or any(
            d.slug == slug and d.folder_uid == "" for d in self.state.dashboards.values())
        if clash:
            raise ApiError(err_a(409, "a folder or dashboard in the general folder with the "
                                      "same name already exists"))

    def h_folder_update(self, req: Request) -> ApiResponse:
        """``legacyUpdate``: empty/absent title keeps the old one; ``version`` must equal the
        stored one unless ``overwrite``; success bumps the version."""
        cmd = req.bind({"uid": "str", "title": "str", "description": "str", "version": "int",
                        "overwrite": "bool"})
        st = self.state
        uid = req.params["uid"]
        f = st.folders.get(uid)
        if f is None:  # also when the uid names a dashboard (legacyUpdate: !IsFolder)
            raise self._folder_404()
        title = (cmd["title"] or f.title).strip()
        new_uid = cmd["uid"] or f.uid
        if title.lower() == "general":
            raise ApiError(err_a(400, "A folder with that name already exists", trace=True))
        if not UID_RE.match(new_uid):
            raise ApiError(err_a(400, "uid contains illegal characters", trace=True))
        if len(new_uid) > MAX_UID_LEN:
            raise ApiError(err_a(400, "uid too long, max 40 characters", trace=True))
        if new_uid != f.uid and self._lookup_uid(new_uid) is not None:
            raise ApiError(err_a(409, "a folder/dashboard with the same uid already exists"))
        if cmd["version"] != f.version and not cmd["overwrite"]:
            raise ApiError(err_b(412, "version-mismatch",
                                 "the folder has been changed by someone else"))
        if self.unique_titles:
            self._legacy_folder_title_check(title, f.parent_uid, f.uid)
        assert req.identity is not None
        if new_uid != f.uid:
            st.folders.pop(f.uid)
            for d in st.dashboards.values():
                if d.folder_uid == f.uid:
                    d.folder_uid = new_uid
            for child in st.folders.values():
                if child.parent_uid == f.uid:
                    child.parent_uid = new_uid
            f.uid = new_uid
            st.folders[new_uid] = f
        f.title = title
        if "description" in cmd["_present"]:
            f.description = cmd["description"]
        f.version += 1
        f.updated = self.now()
        f.updated_by = req.identity.id if req.identity.id > 0 else -1
        return _json(200, self._folder_dto(f, req.identity))

    def h_folder_move(self, req: Request) -> ApiResponse:
        cmd = req.bind({"parentUid": "str"})
        st = self.state
        f = st.folders.get(req.params["uid"])
        if f is None:
            raise self._folder_404()
        new_parent = cmd["parentUid"]
        if new_parent:
            if new_parent not in st.folders:
                raise self._folder_404()
            chain = [p.uid for p in self._ancestors(new_parent)] + [new_parent]
            if f.uid in chain:
                raise ApiError(err_c(400, "folder.circular-reference", "Circular reference detected"))
            height = self._height(f.uid)
            if len(chain) + height > self.max_folder_ancestors:
                raise ApiError(err_c(400, "folder.maximum-depth-reached",
                                     "Maximum nested folder depth reached"))
        f.parent_uid = new_parent
        f.version += 1
        f.updated = self.now()
        assert req.identity is not None
        return _json(200, self._folder_dto(f, req.identity))

    def _height(self, uid: str) -> int:
        kids = [c for c in self.state.folders.values() if c.parent_uid == uid]
        return 0 if not kids else 1 + max(self._height(c.uid) for c in kids)

    def h_folder_delete(self, req: Request) -> ApiResponse:
        """Deletes the folder, its subfolders and every dashboard in them."""
        st = self.state
        f = st.folders.get(req.params["uid"])
        if f is None:
            raise self._folder_404()
        doomed = [f.uid]
        i = 0
        while i < len(doomed):
            doomed.extend(c.uid for c in st.folders.values() if c.parent_uid == doomed[i])
            i += 1
        for d in [d for d in st.dashboards.values() if d.folder_uid in doomed]:
            self._delete_dashboard(d)
        for uid in doomed:
            st.folders.pop(uid, None)
        if self.version_tuple >= (10, 0, 0):
            return _json(200, {"message": "Folder deleted"})
        return _json(200, {"id": f.id, "message": f"Folder {f.title} deleted", "title": f.title})

    # ==================================================================================
    # Data sources (reference 5)
    # ==================================================================================

    _DS_FIELDS = {"uid": "str", "name": "str", "type": "str", "access": "str", "url": "str",
                  "user": "str", "database": "str", "basicAuth": "bool",
                  "basicAuthUser": "str", "withCredentials": "bool", "isDefault": "bool",
                  "jsonData": "any", "secureJsonData": "strmap", "apiVersion": "str"}
    _PLUGINS = {
        "prometheus": ("Prometheus", "public/app/plugins/datasource/prometheus/img/prometheus_logo.svg"),
        "loki": ("Loki", "public/app/plugins/datasource/loki/img/loki_icon.svg"),
        "alertmanager": ("Alertmanager",
                         "public/app/plugins/datasource/alertmanager/img/logo.svg"),
        "tempo": ("Tempo", "public/app/plugins/datasource/tempo/img/tempo_logo.svg"),
        "testdata": ("TestData", "public/app/plugins/datasource/grafana-testdata-datasource/img/testdata.svg"),
    }

    def _ds_dto(self, ds: DatasourceRecord) -> dict:
        dto = {"id": ds.id, "uid": ds.uid, "orgId": 1, "name": ds.name, "type": ds.type,
               "typeLogoUrl": self._PLUGINS.get(ds.type, ("", "public/img/icn-datasource.svg"))[1],
               "access": ds.access, "url": ds.url, "user": ds.user, "database": ds.database,
               "basicAuth": ds.basic_auth, "basicAuthUser": ds.basic_auth_user,
               "withCredentials": ds.with_credentials, "isDefault": ds.is_default,
               "jsonData": _sorted_json(ds.json_data),
               "secureJsonFields": {k: True for k, v in sorted(ds.secure_json_data.items()) if v},
               "version": ds.version, "readOnly": ds.read_only}
        if ds.api_version:
            dto["apiVersion"] = ds.api_version
        return dto

    @staticmethod
    def _valid_url(url: str) -> bool:
        """``datasource.ValidateURL``: must parse as a URL (``http://`` is assumed)."""
        if any(c.isspace() or ord(c) < 32 for c in url):
            return False
        try:
            parts = urlsplit(url if "://" in url else "http://" + url)
            _ = parts.port
        except ValueError:
            return False
        return True

    def _ds_by(self, *, uid: str | None = None, name: str | None = None,
               id_: int | None = None) -> DatasourceRecord:
        for ds in self.state.datasources.values():
            if (uid is not None and ds.uid == uid) or (name is not None and ds.name == name) \
                    or (id_ is not None and ds.id == id_):
                return ds
        raise ApiError(err_a(404, "Data source not found"))

    def h_ds_list(self, req: Request) -> ApiResponse:
        out = []
        for ds in sorted(self.state.datasources.values(), key=lambda d: d.name.lower()):
            name, logo = self._PLUGINS.get(ds.type, (ds.type, "public/img/icn-datasource.svg"))
            out.append({"id": ds.id, "uid": ds.uid, "orgId": 1, "name": ds.name,
                        "type": ds.type, "typeName": name, "typeLogoUrl": logo,
                        "access": ds.access, "url": ds.url, "user": ds.user,
                        "database": ds.database, "basicAuth": ds.basic_auth,
                        "isDefault": ds.is_default, "jsonData": _sorted_json(ds.json_data),
                        "readOnly": ds.read_only})
        return _json(200, out)

    def h_ds_get_uid(self, req: Request) -> ApiResponse:
        return _json(200, self._ds_dto(self._ds_by(uid=req.params["uid"])))

    def h_ds_get_name(self, req: Request) -> ApiResponse:
        return _json(200, self._ds_dto(self._ds_by(name=req.params["name"])))

    def h_ds_get_id(self, req: Request) -> ApiResponse:
        try:
            id_ = int(req.params["id"])
        except ValueError:
            return err_a(400, "id is invalid")
        return _json(200, self._ds_dto(self._ds_by(id_=id_)))

    def h_ds_create(self, req: Request) -> ApiResponse:
        cmd = req.bind(self._DS_FIELDS, required=["name", "type"])
        if cmd["url"] and not self._valid_url(cmd["url"]):
            return err_a(400, "Validation error, invalid URL", trace=True)
        uid = cmd["uid"]
        if uid and (not UID_RE.match(uid) or len(uid) > MAX_UID_LEN):
            return err_c(400, "datasource.uidInvalid", "Invalid datasource UID.")
        for ds in self.state.datasources.values():
            if ds.name == cmd["name"]:
                return err_a(409, "data source with the same name already exists", trace=True)
            if uid and ds.uid == uid:
                return err_a(409, "data source with the same uid already exists", trace=True)
        ds = self.add_datasource(
            cmd["name"], cmd["type"], uid=uid, access=cmd["access"], url=cmd["url"],
            user=cmd["user"], database=cmd["database"], basic_auth=cmd["basicAuth"],
            basic_auth_user=cmd["basicAuthUser"], with_credentials=cmd["withCredentials"],
            is_default=cmd["isDefault"], json_data=cmd["jsonData"],
            secure_json_data=cmd["secureJsonData"], api_version=cmd["apiVersion"])
        return _json(200, {"datasource": self._ds_dto(ds), "id": ds.id,
                           "message": "Datasource added", "name": ds.name})

    def add_datasource(self, name: str, type: str = "prometheus", *, uid: str = "",
                       access: str = "proxy", url: str = "", user: str = "",
                       database: str = "", basic_auth: bool = False, basic_auth_user: str = "",
                       with_credentials: bool = False, is_default: bool = False,
                       json_data: Any = None, secure_json_data: dict | None = None,
                       read_only: bool = False, api_version: str = "", version: int = 1
                       ) -> DatasourceRecord:
        """Store a data source directly (also the seed helper; ``read_only`` = provisioned)."""
        with self.state.lock:
            uid = uid or gen_uid()
            ds = DatasourceRecord(self.state.next_ds_id(), uid, name, type, access, url, user,
                                  database, basic_auth, basic_auth_user, with_credentials,
                                  is_default, json_data if json_data is not None else {},
                                  {k: v for k, v in (secure_json_data or {}).items()},
                                  version, read_only, api_version)
            if is_default:
                for other in self.state.datasources.values():
                    other.is_default = False
            self.state.datasources[uid] = ds
            return ds

    def h_ds_update(self, req: Request) -> ApiResponse:
        """``UpdateDataSourceByUID`` + ``store.UpdateDataSource``: a non-zero ``version``
        must be >= the stored one, the stored version becomes ``version + 1`` (so 0 -> 1);
        xorm skips zero-valued string columns (url, database, ...), except ``user``."""
        cmd = req.bind(self._DS_FIELDS | {"version": "int"}, required=["name", "type"])
        if not self._valid_url(cmd["url"]):
            return err_a(400, "Validation error, invalid URL", trace=True)
        ds = self._ds_by(uid=req.params["uid"])
        if ds.read_only:
            return err_a(403, "Cannot update read-only data source")
        for other in self.state.datasources.values():
            if other is not ds and other.name == cmd["name"]:
                return err_a(409, "Failed to update datasource: data source with the same name "
                                  "already exists", trace=True)
        if cmd["version"] != 0 and ds.version > cmd["version"]:
            return err_a(409, "Datasource has already been updated by someone else. Please "
                              "reload and try again", trace=True)
        ds.name, ds.type = cmd["name"], cmd["type"]
        for attr, key in (("access", "access"), ("url", "url"), ("database", "database"),
                          ("basic_auth_user", "basicAuthUser"), ("api_version", "apiVersion")):
            if cmd[key]:
                setattr(ds, attr, cmd[key])
        ds.user = cmd["user"]
        ds.basic_auth, ds.with_credentials = cmd["basicAuth"], cmd["withCredentials"]
        ds.json_data = cmd["jsonData"] if cmd["jsonData"] is not None else {}
        if cmd["secureJsonData"]:
            ds.secure_json_data.update(cmd["secureJsonData"])
        ds.version = cmd["version"] + 1
        ds.is_default = cmd["isDefault"]
        if ds.is_default:
            for other in self.state.datasources.values():
                if other is not ds:
                    other.is_default = False
        return _json(200, {"datasource": self._ds_dto(ds), "id": ds.id,
                           "message": "Datasource updated", "name": cmd["name"]})

    def _ds_delete(self, ds: DatasourceRecord) -> ApiResponse:
        if ds.read_only:
            return err_a(403, "Cannot delete read-only data source")
        self.state.datasources.pop(ds.uid, None)
        return _json(200, {"id": ds.id, "message": "Data source deleted"})

    def h_ds_delete_uid(self, req: Request) -> ApiResponse:
        return self._ds_delete(self._ds_by(uid=req.params["uid"]))

    def h_ds_delete_name(self, req: Request) -> ApiResponse:
        return self._ds_delete(self._ds_by(name=req.params["name"]))

    # ==================================================================================
    # Seed helpers and direct manipulation for tests
    # ==================================================================================

    def seed_folder(self, title: str, uid: str = "", parent_uid: str = "", *,
                    user: str | None = None) -> FolderRecord:
        with self.state.lock:
            return self.create_folder(self._system_identity(user), title, uid, parent_uid)

    def seed_dashboard(self, dashboard: dict, folder_uid: str = "", *, message: str = "",
                       user: str | None = None, provisioned: dict | None = None,
                       plugin_id: str = "", overwrite: bool = True) -> DashboardRecord:
        """Save ``dashboard`` as ``user`` through the real algorithm; ``provisioned`` =
        ``{"name": ..., "external_id": "file.json", "allow_ui_updates": False}``."""
        with self.state.lock:
            rec = self.save_dashboard(self._system_identity(user), dashboard,
                                      folder_uid=folder_uid, overwrite=overwrite,
                                      message=message, check_permissions=False)
            if provisioned is not None:
                rec.provisioned = dict(provisioned)
            if plugin_id:
                rec.plugin_id = plugin_id
            return rec

    def seed_datasource(self, name: str, type: str = "prometheus", **kwargs: Any
                        ) -> DatasourceRecord:
        return self.add_datasource(name, type, **kwargs)

    def ui_edit(self, uid: str, mutate_fn: Callable[[dict], Any] | None = None, *,
                user: str = "alice", message: str = "") -> DashboardRecord:
        """Simulate a save from the Grafana UI by another user: load the current JSON, let
        ``mutate_fn`` change it (in place or by returning a new dict), save it with the
        current version (so the next stale push gets 412)."""
        with self.state.lock:
            rec = self.state.dashboards[uid]
            data = copy.deepcopy(rec.data)
            data["id"], data["uid"], data["version"] = rec.id, rec.uid, rec.version
            if mutate_fn is not None:
                res = mutate_fn(data)
                if isinstance(res, dict):
                    data = res
            return self.save_dashboard(self._system_identity(user), data,
                                       folder_uid=rec.folder_uid, message=message,
                                       check_permissions=False)


# --------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "grafana-emulator"
    sys_version = ""

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
        emu: GrafanaEmulator = self.server.emulator  # type: ignore[attr-defined]
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


def make_fixture(name: str = "grafana", scope: str = "function", **kwargs: Any) -> Any:
    """A pytest fixture that yields a started emulator:
    ``grafana = make_fixture(token="glsa_x")`` in a conftest/test module."""
    import pytest  # only needed by callers that use it

    @pytest.fixture(name=name, scope=scope)
    def _fixture() -> Any:
        with GrafanaEmulator(**kwargs) as emu:
            yield emu

    return _fixture
