"""Shared vocabulary: responses and error shapes, Go-style body binding, Grafana
helpers (slugify, uids, times), state records, the request log entry, routes."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import random
import re
import threading
import uuid as _uuid
from typing import Any, Callable, Iterable


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
        self.alert_rules: dict[str, Any] = {}  # uid -> alerting.AlertRuleRecord
        self.rulers: dict[str, Any] = {}  # datasource uid -> alerting.RulerBackend
        self.upstream_log: list[Any] = []  # alerting.UpstreamRequest: what the ruler proxy sent on
        self.login_failures: dict[str, list[float]] = {}
        self.database_ok = True
        self._next_dash_id = 1  # dashboards and folders share the `dashboard` table ids
        self._next_version_id = 1
        self._next_ds_id = 1
        self._next_user_id = 1
        self._next_rule_id = 1

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

    def next_rule_id(self) -> int:
        self._next_rule_id += 1
        return self._next_rule_id - 1

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
    "alert.rules.external:read",
})
_EDITOR = _VIEWER | {
    "dashboards:create", "dashboards:write", "dashboards:delete", "folders:create",
    "folders:write", "folders:delete", "datasources:explore", "annotations:create",
    "annotations:write", "annotations:delete", "alert.rules:create", "alert.rules:write",
    "alert.rules:delete", "alert.instances:create", "alert.instances:write",
    "alert.notifications:write", "alert.rules.external:write",
    # Grafana 11+: Editors may use the provisioning API for rules (alerting RBAC, April 2024)
    "alert.provisioning.provenance:write",
}
_ADMIN = _EDITOR | {
    "datasources:create", "datasources:write", "datasources:delete", "datasources:id:read",
    "dashboards.permissions:read", "dashboards.permissions:write", "folders.permissions:read",
    "folders.permissions:write", "orgs:write", "org.users:read", "serviceaccounts:read",
    "alert.provisioning:read", "alert.provisioning:write", "alert.provisioning.secrets:read",
    "alert.rules.provisioning:read", "alert.rules.provisioning:write",
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
        if hasattr(self.permission, "allowed"):  # a composite evaluator (alerting.Any / All)
            return str(self.permission)
        if isinstance(self.permission, tuple):
            return "any of " + ", ".join(self.permission[1])
        return str(self.permission)

    def allowed(self, ident: Identity) -> bool:
        if self.permission is None:
            return True
        if hasattr(self.permission, "allowed"):
            return self.permission.allowed(ident)
        if isinstance(self.permission, tuple):
            return any(ident.can(a) for a in self.permission[1])
        return ident.can(self.permission)


_DROP = object()
