"""Dashboards: save algorithm (reference 3.1), get/delete, versions and restore, search."""

from __future__ import annotations

import base64
import copy
import json
import re
from typing import Any, Callable

from ._common import (
    DEFAULT_LIMIT, GENERAL_FOLDER_UID, MAX_UID_LEN, SEARCH_MAX_LIMIT, UID_RE, ZERO_TIME,
    ApiError, ApiResponse, DashboardRecord, FolderRecord, Identity, Request, VersionRecord,
    _byte_len, _json, _sorted_json, dashboard_url, err_a, err_b, fmt_time, folder_url, gen_uid,
    parse_gtime, slugify,
)


class DashboardsMixin:
    """Dashboard handlers; mixed into ``GrafanaEmulator`` (uses ``self.state``)."""

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
                raise ApiError(err_b(400, "name-match",
                                     "Dashboard name cannot be the same as folder"))
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
        parent_uid = it.parent_uid if isinstance(it, FolderRecord) else it.folder_uid
        parent = self.state.folders.get(parent_uid)
        if parent is not None:
            hit.update({"folderId": parent.id, "folderUid": parent.uid,
                        "folderTitle": parent.title,
                        "folderUrl": folder_url(parent.uid, parent.slug)})
        hit["sortMeta"] = 0
        return hit


    # ---- seeds and UI edits (not HTTP, not logged) -----------------------------------

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
