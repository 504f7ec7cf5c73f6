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
  soft delete (``dashboardRestore``), library panels.

Layout: ``_common.py`` (error shapes A-E, Go-style body binding, slugify, state records,
request-log entry, ``Route``), ``core.py`` (lifecycle, auth, RBAC, request log, fault
injection, dispatch, **the route table** ``_register_routes``, health/user/org),
``dashboards.py`` / ``folders.py`` / ``datasources.py`` / ``alerting.py`` (one mixin per
resource family, one ``h_*`` handler per route; alerting: the provisioning API for
Grafana-managed rules and the ruler proxy with emulated Mimir/Cortex/Loki rulers, see its
docstring).  ``GrafanaEmulator`` below combines them.

Extension point: every route is one ``Route`` in ``GrafanaEmulator.routes`` (method,
pattern with ``{param}`` segments, handler, permission: an action, ``("any", [...])`` or a
composite ``alerting.Any_``/``All_`` evaluator).  A mixin returns its routes from a method
the route table calls (``alerting_routes``), or call ``add_route()`` on an instance; handlers take a ``Request`` (``params``, ``q()``,
``bind()``, ``identity``) and return an ``ApiResponse`` or raise ``ApiError``; ``err_a``..
``err_d`` and ``ApiResponse(status, raw=b"")`` (shape E) build error bodies.
"""


from __future__ import annotations

from typing import Any

from ._common import (  # noqa: F401 - public API
    ApiError, ApiResponse, DashboardRecord, DatasourceRecord, FolderRecord, GrafanaState,
    Identity, RecordedRequest, Request, Route, VersionRecord, bind, err_a, err_b, err_c,
    err_d, slugify,
)
from .alerting import AlertingMixin, AlertRuleRecord, RulerBackend, UpstreamRequest
from .core import EmulatorCore
from .dashboards import DashboardsMixin
from .datasources import DatasourcesMixin
from .folders import FoldersMixin

__all__ = [
    "AlertRuleRecord", "ApiError", "ApiResponse", "DashboardRecord", "DatasourceRecord", "FolderRecord",
    "GrafanaEmulator", "RulerBackend", "UpstreamRequest", "GrafanaState", "Identity", "RecordedRequest", "Request", "Route",
    "VersionRecord", "make_fixture", "slugify",
]


class GrafanaEmulator(DashboardsMixin, FoldersMixin, DatasourcesMixin, AlertingMixin, EmulatorCore):
    """In-process Grafana HTTP API on 127.0.0.1 (threaded).

    >>> with GrafanaEmulator(token="glsa_x") as g:
    ...     requests.get(g.url + "/api/search", headers=g.auth_headers())
    """


def make_fixture(name: str = "grafana", scope: str = "function", **kwargs: Any) -> Any:
    """A pytest fixture that yields a started emulator:
    ``grafana = make_fixture(token="glsa_x")`` in a conftest/test module."""
    import pytest  # only needed by callers that use it

    @pytest.fixture(name=name, scope=scope)
    def _fixture() -> Any:
        with GrafanaEmulator(**kwargs) as emu:
            yield emu

    return _fixture
