"""Folders (reference 4), nested folders included."""

from __future__ import annotations

from typing import Any

from ._common import (
    DEFAULT_LIMIT, GENERAL_FOLDER_UID, MAX_UID_LEN, UID_RE, ApiError, ApiResponse,
    DashboardRecord, FolderRecord, Identity, Request, _json, err_a, err_b, err_c, fmt_time,
    folder_url, gen_uid, slugify,
)


class FoldersMixin:
    """Folder handlers; mixed into ``GrafanaEmulator`` (uses ``self.state``)."""

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
                raise ApiError(err_c(400, "folder.circular-reference",
                                     "Circular reference detected"))
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


    # ---- seeds (not HTTP, not logged) ----------------------------------------------

    def seed_folder(self, title: str, uid: str = "", parent_uid: str = "", *,
                    user: str | None = None) -> FolderRecord:
        with self.state.lock:
            return self.create_folder(self._system_identity(user), title, uid, parent_uid)
