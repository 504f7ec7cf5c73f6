"""Data sources (reference 5)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ._common import (
    MAX_UID_LEN, UID_RE, ApiError, ApiResponse, DatasourceRecord, Request, _json, _sorted_json,
    err_a, err_c, gen_uid,
)


class DatasourcesMixin:
    """Data-source handlers; mixed into ``GrafanaEmulator`` (uses ``self.state``)."""

    # ==================================================================================
    # Data sources (reference 5)
    # ==================================================================================

    _DS_FIELDS = {"uid": "str", "name": "str", "type": "str", "access": "str", "url": "str",
                  "user": "str", "database": "str", "basicAuth": "bool",
                  "basicAuthUser": "str", "withCredentials": "bool", "isDefault": "bool",
                  "jsonData": "any", "secureJsonData": "strmap", "apiVersion": "str"}
    _PLUGINS = {
        "prometheus": ("Prometheus",
                       "public/app/plugins/datasource/prometheus/img/prometheus_logo.svg"),
        "loki": ("Loki", "public/app/plugins/datasource/loki/img/loki_icon.svg"),
        "alertmanager": ("Alertmanager",
                         "public/app/plugins/datasource/alertmanager/img/logo.svg"),
        "tempo": ("Tempo", "public/app/plugins/datasource/tempo/img/tempo_logo.svg"),
        "testdata": ("TestData", "public/app/plugins/datasource/grafana-testdata-datasource/"
                                 "img/testdata.svg"),
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


    # ---- seeds (not HTTP, not logged) ----------------------------------------------

    def seed_datasource(self, name: str, type: str = "prometheus", **kwargs: Any
                        ) -> DatasourceRecord:
        return self.add_datasource(name, type, **kwargs)
