"""Alerting: the provisioning API for Grafana-managed rules (reference 6) and the ruler
proxy for data-source-managed rules (reference 7), with an emulated Mimir/Cortex/Loki ruler
behind Prometheus- and Loki-type data sources.

Followed from grafana/grafana: ``pkg/services/ngalert/api/api_provisioning.go`` (status codes,
``determineProvenance``: the header's presence decides, whatever its value),
``tooling/definitions/provisioning_alert_rules.go`` (the JSON keys), ``provisioning/alert_rules.go``
(``ReplaceRuleGroup``/``calcDelta``/``persistDelta``: replace semantics, rules moved in from
other groups by uid, unchanged rules skipped and their provenance kept, ``ensureNamespace``),
``provisioning/validation`` (``CanUpdateProvenanceInRuleGroup``), ``models/alert_rule.go``
(``ValidateAlertRule`` messages), ``models/alert_query.go`` (``PreSave``: ``intervalMs`` and
``maxDataPoints`` filled into every query model), ``store/alert_rule.go`` (title and group
name lengths), ``lotex_ruler.go`` / ``forking_ruler.go`` / ``util.go`` (prefixes, subtype,
``withReq`` error relaying, ``yamlExtractor``/``jsonExtractor``/``messageExtractor``).

Version-dependent behaviour (the emulator's ``version``):

* Grafana 12+: rules carry ``keep_firing_for`` (always) and ``missingSeriesEvalsToResolve``
  (when set); before 12 both are dropped on save and absent from answers.
* Grafana 11+: ``DELETE .../rule-groups/{group}`` exists (grafana/grafana#81860), rules carry
  ``notification_settings`` and ``record`` (null), a missing group is an errutil 404 and
  Editors may use the API (``alert.rules:*`` plus ``alert.provisioning.provenance:write``);
  before 11 the group DELETE route is missing (404), a missing group answers
  ``{"message": "rulegroup not found"}`` and only ``alert.provisioning:write`` (Admin) may write.

Deliberate differences from the reference document, with the reason:

* A ruler POST whose rules are all Grafana-managed (``grafana_alert``) answers **500**
  ``unexpected backend type (lotex) for payload type (grafana)``, not 400: the handler passes
  ``backendTypeDoesNotMatchPayloadTypeError`` to ``errorToResponse``, whose fallback is 500.
  A payload *mixing* both kinds fails JSON decoding (``PostableRuleGroupConfig.validate``):
  400 ``bad request data``.
* ``PUT /api/v1/provisioning/alert-rules/{uid}`` over a rule held with another provenance
  answers 500 ``{"message": "Internal Server Error"}``: the plain error goes through
  ``ErrOrFallback`` and a production build shows no more.
* The condition and refId checks (``condition C does not exist, must be one of [A,B]``) are
  the ruler API's wording; which Grafana versions run them on the provisioning path is
  [belief].

Not emulated: the export endpoints, quotas, per-folder RBAC scopes, notification settings
validation against contact points, the Grafana-managed ruler (``/api/ruler/grafana/...``).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import json
import re
from typing import Any, Callable

from ._common import (
    MAX_UID_LEN, UID_RE, ApiError, ApiResponse, Identity, Request, Route, _json, _sorted_json,
    bad_request_data, bind, err_a, err_c, fmt_time, gen_uid,
)

SCHEDULER_INTERVAL = 10
DEFAULT_GROUP_INTERVAL = 60  # a rule POSTed into a new group [belief: default evaluation interval]
MAX_NAME = 190
NO_DATA_STATES = ("Alerting", "NoData", "OK", "KeepLast")
EXEC_ERR_STATES = ("Alerting", "Error", "OK", "KeepLast")
RESERVED_LABELS = ("__alert_rule_uid__", "__alert_rule_namespace_uid__")
MODEL_DEFAULTS = {"maxDataPoints": 43200, "intervalMs": 1000}
EXPR_DATASOURCE = "__expr__"
PROVENANCE_HEADER = "X-Disable-Provenance"
UNIQUE_TITLE = ("a conflicting alert rule is found: rule title under the same organisation and folder "
                "should be unique")

# The ruler behind a data source: the API prefixes it serves (Mimir's legacy prefix is /api/v1/rules).
RULER_PREFIXES = {
    "mimir": ("/config/v1/rules", "/api/v1/rules"),
    "cortex": ("/rules", "/api/v1/rules"),
    "loki": ("/api/prom/rules", "/loki/api/v1/rules"),
    "prometheus": (),  # plain Prometheus has no ruler API
}
SUBTYPE_PREFIX = {"mimir": "/config/v1/rules", "cortex": "/rules", "prometheus": "/rules"}
ACCEPTED = json.dumps({"status": "success", "data": None, "errorType": "", "error": ""}).encode()


# --------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------

@dataclasses.dataclass
class AlertRuleRecord:
    """A Grafana-managed rule: ``content`` holds its fields as Grafana answers them (durations
    in Prometheus spelling, query models with defaults, keys per the emulated version)."""

    id: int
    uid: str
    folder_uid: str
    group: str
    index: int
    interval: int
    content: dict
    provenance: str = ""
    updated: _dt.datetime | None = None


@dataclasses.dataclass
class RulerBackend:
    """An emulated Mimir/Cortex/Loki ruler: namespace -> group name -> group (insertion order)."""

    kind: str
    namespaces: dict[str, dict[str, dict]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class UpstreamRequest:
    """What Grafana's ruler proxy sent to the ruler."""

    datasource_uid: str
    method: str
    path: str
    content_type: str
    body: str
    status: int = 0


class Any_:
    """``ac.EvalAny``: one of the evaluators (actions or nested evaluators) suffices."""

    def __init__(self, *evaluators: Any):
        self.evaluators = evaluators

    def allowed(self, ident: Identity) -> bool:
        return any(_allows(e, ident) for e in self.evaluators)

    def __str__(self) -> str:
        return "any(" + " ".join(str(e) for e in self.evaluators) + ")"


class All_(Any_):
    """``ac.EvalAll``."""

    def allowed(self, ident: Identity) -> bool:
        return all(_allows(e, ident) for e in self.evaluators)

    def __str__(self) -> str:
        return "all(" + " ".join(str(e) for e in self.evaluators) + ")"


def _allows(evaluator: Any, ident: Identity) -> bool:
    return ident.can(evaluator) if isinstance(evaluator, str) else evaluator.allowed(ident)


# --------------------------------------------------------------------------------------
# Durations (prometheus/common model.Duration; Go time.Duration for messages)
# --------------------------------------------------------------------------------------

_PROM_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_PROM_UNITS_MS = (31_536_000_000, 604_800_000, 86_400_000, 3_600_000, 60_000, 1000, 1)


def parse_prom_duration(text: Any) -> int | None:
    """``model.ParseDuration`` in milliseconds; None when invalid (as JSON: a decode error)."""
    if not isinstance(text, str):
        return None
    if text == "0":
        return 0
    m = _PROM_DURATION.match(text)
    if not text or not m:
        return None
    return sum(int(v) * unit for v, unit in zip(m.groups(), _PROM_UNITS_MS) if v)


def prom_duration(ms: int) -> str:
    """``model.Duration.String``: y, w, d only when exact; then h, m, s, ms."""
    if ms == 0:
        return "0s"
    out = ""
    for unit, size, exact in (("y", 31_536_000_000, True), ("w", 604_800_000, True), ("d", 86_400_000, True),
                              ("h", 3_600_000, False), ("m", 60_000, False), ("s", 1000, False),
                              ("ms", 1, False)):
        if exact and ms % size:
            continue
        value, ms = divmod(ms, size)
        if value:
            out += f"{value}{unit}"
    return out


def go_duration(seconds: int) -> str:
    """``time.Duration.String`` for whole seconds: 0s, 30s, 1m5s, 1h0m0s."""
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"


def _go_number(value: float) -> int | float:
    """Go's encoding/json writes a whole float64 without a fraction."""
    return int(value) if float(value).is_integer() else value


# --------------------------------------------------------------------------------------
# The mixin
# --------------------------------------------------------------------------------------

class AlertingMixin:
    """Alerting handlers; mixed into ``GrafanaEmulator`` (uses ``self.state``)."""

    grafana_managed_recording_rules = False  # feature flag grafanaManagedRecordingRules

    def alerting_routes(self) -> list[Route]:
        v11 = self.version_tuple >= (11, 0, 0)

        def provisioning(action: str, folder_scoped: Any = None) -> Any:
            # Before 11 only the organisation-wide provisioning action; since 11 also the
            # rules-only one and regular rule permissions plus the provenance action.
            if not v11:
                return f"alert.provisioning:{action}"
            extra = [folder_scoped] if folder_scoped else []
            return Any_(f"alert.provisioning:{action}", f"alert.rules.provisioning:{action}", *extra)

        group_write = All_("alert.rules:read", "folders:read", "alert.provisioning.provenance:write",
                           Any_("alert.rules:write", "alert.rules:create", "alert.rules:delete"))
        group_read = All_("alert.rules:read", "folders:read")
        base = "/api/v1/provisioning"
        routes = [
            Route("GET", f"{base}/alert-rules", self.h_rules_list, provisioning("read", group_read)),
            Route("GET", f"{base}/alert-rules/{{uid}}", self.h_rule_get, provisioning("read", group_read)),
            Route("POST", f"{base}/alert-rules", self.h_rule_post,
                  provisioning("write", All_("alert.rules:create", "alert.provisioning.provenance:write"))),
            Route("PUT", f"{base}/alert-rules/{{uid}}", self.h_rule_put,
                  provisioning("write", All_("alert.rules:write", "alert.provisioning.provenance:write"))),
            Route("DELETE", f"{base}/alert-rules/{{uid}}", self.h_rule_delete,
                  provisioning("write", All_("alert.rules:delete", "alert.provisioning.provenance:write"))),
            Route("GET", f"{base}/folder/{{folder}}/rule-groups/{{group}}", self.h_group_get,
                  provisioning("read", group_read)),
            Route("PUT", f"{base}/folder/{{folder}}/rule-groups/{{group}}", self.h_group_put,
                  provisioning("write", group_write)),
        ]
        if v11:
            routes.append(Route("DELETE", f"{base}/folder/{{folder}}/rule-groups/{{group}}", self.h_group_delete,
                                provisioning("write", All_("alert.rules:delete", "alert.rules:read", "folders:read",
                                                           "alert.provisioning.provenance:write"))))
        ruler = "/api/ruler/{ds}/api/v1/rules"
        read, write = "alert.rules.external:read", "alert.rules.external:write"
        routes += [
            Route("GET", ruler, self.h_ruler_get_all, read),
            Route("GET", f"{ruler}/{{namespace}}", self.h_ruler_get_namespace, read),
            Route("GET", f"{ruler}/{{namespace}}/{{group}}", self.h_ruler_get_group, read),
            Route("POST", f"{ruler}/{{namespace}}", self.h_ruler_post, write),
            Route("DELETE", f"{ruler}/{{namespace}}", self.h_ruler_delete_namespace, write),
            Route("DELETE", f"{ruler}/{{namespace}}/{{group}}", self.h_ruler_delete_group, write),
        ]
        return routes

    # ==================================================================================
    # Provisioning API: rules as Grafana answers them
    # ==================================================================================

    @staticmethod
    def _provenance(req: Request) -> str:
        """``determineProvenance``: the header's presence, whatever its value."""
        return "" if req.header(PROVENANCE_HEADER) is not None else "api"

    def _rule_dto(self, rec: AlertRuleRecord, *, with_provenance: bool = True) -> dict:
        c = rec.content
        dto: dict[str, Any] = {
            "id": rec.id, "uid": rec.uid, "orgID": 1, "folderUID": rec.folder_uid, "ruleGroup": rec.group,
            "title": c["title"], "condition": c["condition"], "data": copy.deepcopy(c["data"]),
            "updated": fmt_time(rec.updated), "noDataState": c["noDataState"], "execErrState": c["execErrState"],
            "for": c["for"],
        }
        if c["annotations"]:
            dto["annotations"] = dict(c["annotations"])
        if c["labels"]:
            dto["labels"] = dict(c["labels"])
        if with_provenance and rec.provenance:
            dto["provenance"] = rec.provenance
        dto["isPaused"] = c["isPaused"]
        if self.version_tuple >= (11, 0, 0):
            dto["notification_settings"] = copy.deepcopy(c.get("notification_settings"))
            dto["record"] = copy.deepcopy(c.get("record"))
        if self.version_tuple >= (12, 0, 0):
            dto["keep_firing_for"] = c.get("keep_firing_for", "0s")
            if c.get("missingSeriesEvalsToResolve") is not None:
                dto["missingSeriesEvalsToResolve"] = c["missingSeriesEvalsToResolve"]
        return dto

    def _group_rules(self, folder_uid: str, group: str) -> list[AlertRuleRecord]:
        return sorted((r for r in self.state.alert_rules.values()
                       if r.folder_uid == folder_uid and r.group == group), key=lambda r: (r.index, r.id))

    def _group_not_found(self) -> ApiError:
        if self.version_tuple >= (11, 0, 0):
            return ApiError(err_c(404, "alerting.alert-rule.notFound", "Not found"))
        return ApiError(err_a(404, "rulegroup not found", trace=True))

    # ---- decoding (web.Bind into ProvisionedAlertRule) --------------------------------

    _RULE_FIELDS = {"id": "int", "uid": "str", "orgID": "int", "folderUID": "str", "ruleGroup": "str",
                    "title": "str", "condition": "str", "data": "any", "updated": "str", "noDataState": "str",
                    "execErrState": "str", "for": "any", "keep_firing_for": "any", "annotations": "strmap",
                    "labels": "strmap", "provenance": "str", "isPaused": "bool", "notification_settings": "obj",
                    "record": "obj", "missingSeriesEvalsToResolve": "any"}

    def _decode_rule(self, raw: Any) -> dict:
        """One ``ProvisionedAlertRule`` as Go decodes it: type errors and unparseable durations
        (``"for": 300``) are decode errors -> 400 "bad request data"."""
        if not isinstance(raw, dict):
            raise bad_request_data()
        rule = bind(json.dumps(raw).encode(), self._RULE_FIELDS)
        for key in ("for", "keep_firing_for"):
            value = rule[key]
            if value is None:
                rule[key] = 0
            elif parse_prom_duration(value) is None:
                raise bad_request_data()
            else:
                rule[key] = parse_prom_duration(value)
        missing = rule["missingSeriesEvalsToResolve"]
        if missing is not None and (isinstance(missing, bool) or not isinstance(missing, int)):
            raise bad_request_data()
        if not isinstance(rule["data"], list):
            if rule["data"] is not None:
                raise bad_request_data()
            rule["data"] = []
        rule["data"] = [self._decode_query(q) for q in rule["data"]]
        rule["annotations"] = rule["annotations"] or {}
        rule["labels"] = rule["labels"] or {}
        return rule

    @staticmethod
    def _decode_query(raw: Any) -> dict:
        if not isinstance(raw, dict):
            raise bad_request_data()
        q = bind(json.dumps(raw).encode(), {"refId": "str", "queryType": "str", "relativeTimeRange": "obj",
                                            "datasourceUid": "str", "model": "any"})
        window = q["relativeTimeRange"] or {}
        for key in ("from", "to"):
            value = window.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise bad_request_data()  # ngalert Duration takes JSON numbers (seconds) only
        return {"refId": q["refId"], "queryType": q["queryType"], "datasourceUid": q["datasourceUid"],
                "relativeTimeRange": {"from": window.get("from", 0), "to": window.get("to", 0)},
                "model": q["model"]}

    def _stored_content(self, rule: dict) -> dict:
        """What Grafana keeps of a decoded rule and answers later (PreSave and the version's keys)."""
        data = []
        for q in rule["data"]:
            model = q["model"] if isinstance(q["model"], dict) else {}
            model = dict(model)
            for key, default in MODEL_DEFAULTS.items():
                value = model.get(key)
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value == 0:
                    model[key] = default
            query_type = model["queryType"] if isinstance(model.get("queryType"), str) else q["queryType"]
            data.append({"refId": q["refId"], "queryType": query_type,
                         "relativeTimeRange": {k: _go_number(v) for k, v in q["relativeTimeRange"].items()},
                         "datasourceUid": q["datasourceUid"], "model": _sorted_json(model)})
        recording = rule.get("record") is not None
        content = {
            "title": rule["title"], "condition": "" if recording else rule["condition"], "data": data,
            "noDataState": "" if recording else rule["noDataState"],
            "execErrState": "" if recording else rule["execErrState"],
            "for": prom_duration(0 if recording else rule["for"]), "annotations": dict(rule["annotations"]),
            "labels": dict(rule["labels"]), "isPaused": bool(rule["isPaused"]),
            "notification_settings": rule.get("notification_settings"), "record": rule.get("record"),
        }
        if self.version_tuple >= (12, 0, 0):
            content["keep_firing_for"] = prom_duration(0 if recording else rule["keep_firing_for"])
            content["missingSeriesEvalsToResolve"] = None if recording else rule["missingSeriesEvalsToResolve"]
        return content

    def _echo_rule(self, rule: dict) -> dict:
        """A decoded rule marshalled back as Go would (the PUT group echo)."""
        dto: dict[str, Any] = {
            "id": rule["id"], "uid": rule["uid"], "orgID": rule["orgID"], "folderUID": rule["folderUID"],
            "ruleGroup": rule["ruleGroup"], "title": rule["title"], "condition": rule["condition"],
            "data": [dict(q, relativeTimeRange={k: _go_number(v) for k, v in q["relativeTimeRange"].items()})
                     for q in rule["data"]],
            "updated": "0001-01-01T00:00:00Z", "noDataState": rule["noDataState"],
            "execErrState": rule["execErrState"], "for": prom_duration(rule["for"]),
        }
        if rule["annotations"]:
            dto["annotations"] = rule["annotations"]
        if rule["labels"]:
            dto["labels"] = rule["labels"]
        dto["isPaused"] = bool(rule["isPaused"])
        if self.version_tuple >= (11, 0, 0):
            dto["notification_settings"] = rule.get("notification_settings")
            dto["record"] = rule.get("record")
        if self.version_tuple >= (12, 0, 0):
            dto["keep_firing_for"] = prom_duration(rule["keep_firing_for"])
            if rule["missingSeriesEvalsToResolve"] is not None:
                dto["missingSeriesEvalsToResolve"] = rule["missingSeriesEvalsToResolve"]
        return dto

    # ---- validation (ValidateAlertRule, store lengths, ensureNamespace) ----------------

    def _invalid(self, message: str) -> ApiError:
        return ApiError(err_a(400, f"invalid alert rule: {message}", trace=True))

    def _check_interval(self, interval: int) -> None:
        if interval <= 0 or interval % SCHEDULER_INTERVAL:
            raise self._invalid(f"interval ({go_duration(interval)}) should be non-zero and divided exactly by "
                                f"scheduler interval: {SCHEDULER_INTERVAL}")

    def _check_uid(self, uid: str) -> None:
        if uid and not UID_RE.match(uid):
            raise self._invalid(f"cannot create rule with UID {uid!r}: uid contains illegal characters")
        if len(uid) > MAX_UID_LEN:
            raise self._invalid(f"cannot create rule with UID {uid!r}: uid too long, max 40 characters")

    def _check_folder(self, folder_uid: str) -> None:
        if not folder_uid:
            raise self._invalid("folderUID must be set")
        if folder_uid not in self.state.folders:
            raise self._invalid("folder does not exist")

    def _check_rule(self, rule: dict, group: str) -> None:
        self._check_uid(rule["uid"])
        if not rule["data"]:
            raise self._invalid("no queries or expressions are found")
        if not rule["title"]:
            raise self._invalid("title is empty")
        if rule.get("record") is not None:
            if not self.grafana_managed_recording_rules:
                raise self._invalid("recording rules cannot be created on this instance")
        else:
            if rule["execErrState"] not in EXEC_ERR_STATES:
                raise self._invalid(f"unknown Error state option {rule['execErrState']}")
            if rule["noDataState"] not in NO_DATA_STATES:
                raise self._invalid(f"unknown NoData state option {rule['noDataState']}")
            missing = rule["missingSeriesEvalsToResolve"]
            if self.version_tuple >= (12, 0, 0) and missing is not None and missing <= 0:
                raise self._invalid("field `missing_series_evals_to_resolve` must be greater than 0")
            self._check_condition(rule)
        for label in rule["labels"]:
            if label in RESERVED_LABELS:
                raise self._invalid(f"system reserved label {label} cannot be defined")
        if len(rule["title"]) > MAX_NAME:
            raise self._invalid(f"name length should not be greater than {MAX_NAME}")
        if len(group) > MAX_NAME:
            raise self._invalid(f"rule group name length should not be greater than {MAX_NAME}")

    def _check_condition(self, rule: dict) -> None:
        seen: dict[str, int] = {}
        for index, q in enumerate(rule["data"]):
            if not q["refId"]:
                raise self._invalid(f"refID is not specified for data query/expression at index {index}")
            if q["refId"] in seen:
                raise self._invalid(f"refID '{q['refId']}' is already used by query/expression at index "
                                    f"{seen[q['refId']]}")
            seen[q["refId"]] = index
        if rule["condition"] not in seen:
            raise self._invalid(f"condition {rule['condition']} does not exist, must be one of "
                                f"[{','.join(sorted(seen))}]")

    def _check_titles(self, folder_uid: str, after: dict[str, tuple[str, str]]) -> None:
        """Titles unique in a folder, over the rules as they would be (uid -> (folder, title))."""
        titles = [title for folder, title in after.values() if folder == folder_uid]
        if len(titles) != len(set(titles)):
            raise ApiError(err_a(400, UNIQUE_TITLE, trace=True))

    @staticmethod
    def _provenance_conflict(operation: str, provided: str, stored: str) -> ApiError:
        return ApiError(err_c(409, "alerting.provenanceMismatch",
                              f"cannot {operation} with provided provenance '{provided}', needs '{stored}'"))

    @staticmethod
    def _group_may_change(stored: str, provided: str) -> bool:
        """``CanUpdateProvenanceInRuleGroup``."""
        return stored == provided or stored == "" or (
            provided == "" and stored in ("api", "converted_prometheus"))

    # ==================================================================================
    # Provisioning API handlers
    # ==================================================================================

    def h_rules_list(self, req: Request) -> ApiResponse:
        rules = sorted(self.state.alert_rules.values(), key=lambda r: r.id)
        return _json(200, [self._rule_dto(r) for r in rules])

    def h_rule_get(self, req: Request) -> ApiResponse:
        rec = self.state.alert_rules.get(req.params["uid"])
        if rec is None:
            return ApiResponse(404, raw=b"")  # response.Empty(404)
        return _json(200, self._rule_dto(rec))

    def h_rule_post(self, req: Request) -> ApiResponse:
        rule = self._decode_rule(self._body(req))
        provenance = self._provenance(req)
        uid = rule["uid"] or gen_uid()
        self._check_rule(rule, rule["ruleGroup"])
        if not rule["ruleGroup"]:
            raise self._invalid("rule group name is empty")  # [belief]
        self._check_folder(rule["folderUID"])
        if uid in self.state.alert_rules:
            raise ApiError(err_a(400, UNIQUE_TITLE, trace=True))
        group = self._group_rules(rule["folderUID"], rule["ruleGroup"])
        interval = group[0].interval if group else DEFAULT_GROUP_INTERVAL
        after = {u: (r.folder_uid, r.content["title"]) for u, r in self.state.alert_rules.items()}
        after[uid] = (rule["folderUID"], rule["title"])
        self._check_titles(rule["folderUID"], after)
        rec = self._store(uid, rule, rule["folderUID"], rule["ruleGroup"], len(group) + 1, interval, provenance)
        return _json(201, self._rule_dto(rec))

    def h_rule_put(self, req: Request) -> ApiResponse:
        rule = self._decode_rule(self._body(req))
        provenance = self._provenance(req)
        rec = self.state.alert_rules.get(req.params["uid"])
        if rec is None:
            return ApiResponse(404, raw=b"")
        self._check_rule(rule, rule["ruleGroup"] or rec.group)
        self._check_folder(rule["folderUID"])
        if rec.provenance not in (provenance, ""):  # "cannot change provenance from 'api' to ''"
            return err_a(500, "Internal Server Error", trace=True)
        after = {u: (r.folder_uid, r.content["title"]) for u, r in self.state.alert_rules.items()}
        after[rec.uid] = (rule["folderUID"], rule["title"])
        self._check_titles(rule["folderUID"], after)
        # the interval of a rule is its group's; a single-rule PUT cannot change it
        rec = self._store(rec.uid, rule, rule["folderUID"], rule["ruleGroup"] or rec.group, rec.index,
                          rec.interval, provenance, existing=rec)
        return _json(200, self._rule_dto(rec))

    def h_rule_delete(self, req: Request) -> ApiResponse:
        provenance = self._provenance(req)
        rec = self.state.alert_rules.get(req.params["uid"])
        if rec is not None:
            if rec.provenance not in (provenance, ""):
                raise self._provenance_conflict("delete", provenance, rec.provenance)
            del self.state.alert_rules[rec.uid]
        return ApiResponse(204, raw=b"")  # idempotent: 204 for a missing rule too

    def h_group_get(self, req: Request) -> ApiResponse:
        folder_uid, name = req.params["folder"], req.params["group"]
        rules = self._group_rules(folder_uid, name)
        if not rules:
            raise self._group_not_found()
        # ApiAlertRuleGroupFromAlertRuleGroup passes the group's (unset) provenance to every rule
        return _json(200, {"title": name, "folderUid": folder_uid, "interval": rules[0].interval,
                           "rules": [self._rule_dto(r, with_provenance=False) for r in rules]})

    def h_group_put(self, req: Request) -> ApiResponse:
        folder_uid, name = req.params["folder"], req.params["group"]
        cmd = req.bind({"title": "str", "folderUid": "str", "interval": "int", "rules": "any"})
        if cmd["rules"] is not None and not isinstance(cmd["rules"], list):
            raise bad_request_data()
        rules = [self._decode_rule(r) for r in cmd["rules"] or []]
        provenance = self._provenance(req)
        self._check_interval(cmd["interval"])
        for rule in rules:
            self._check_uid(rule["uid"])
        self._check_folder(folder_uid)
        for rule in rules:
            self._check_rule(rule, name)
        self._replace_group(folder_uid, name, cmd["interval"], rules, provenance)
        echo = {"title": name, "folderUid": folder_uid, "interval": cmd["interval"],
                "rules": [self._echo_rule(r) for r in rules]}
        return _json(200, echo)

    def _replace_group(self, folder_uid: str, name: str, interval: int, rules: list[dict],
                       provenance: str) -> None:
        """``calcDelta`` + ``persistDelta``: rules absent from the body are deleted, rules with a
        known uid updated (moved here from another group if need be), the others inserted;
        a rule that would not change is left alone, provenance included."""
        st = self.state
        incoming = {r["uid"]: r for r in rules if r["uid"]}
        current = self._group_rules(folder_uid, name)
        deletes = [r for r in current if r.uid not in incoming]
        updates, inserts = [], []
        for index, rule in enumerate(rules, start=1):
            rec = st.alert_rules.get(rule["uid"]) if rule["uid"] else None
            if rec is None:
                inserts.append((index, rule))
            elif (rec.folder_uid, rec.group, rec.index, rec.interval, rec.content) != (
                    folder_uid, name, index, interval, self._stored_content(rule)):
                updates.append((index, rule, rec))
        for operation, recs in (("delete", deletes), ("update", [rec for _, _, rec in updates])):
            for rec in recs:
                if not self._group_may_change(rec.provenance, provenance):
                    raise self._provenance_conflict(operation, provenance, rec.provenance)
        gone = {rec.uid for rec in deletes}
        after = {u: (r.folder_uid, r.content["title"]) for u, r in st.alert_rules.items() if u not in gone}
        for index, rule in enumerate(rules, start=1):
            after[rule["uid"] or f"new-{index}"] = (folder_uid, rule["title"])
        self._check_titles(folder_uid, after)
        for rec in deletes:
            del st.alert_rules[rec.uid]
        for index, rule, rec in updates:
            self._store(rec.uid, rule, folder_uid, name, index, interval, provenance, existing=rec)
        for index, rule in inserts:
            self._store(rule["uid"] or gen_uid(), rule, folder_uid, name, index, interval, provenance)

    def h_group_delete(self, req: Request) -> ApiResponse:
        folder_uid, name = req.params["folder"], req.params["group"]
        provenance = self._provenance(req)
        rules = self._group_rules(folder_uid, name)
        if not rules:
            raise self._group_not_found()
        for rec in rules:
            if not self._group_may_change(rec.provenance, provenance):
                raise self._provenance_conflict("delete", provenance, rec.provenance)
        for rec in rules:
            del self.state.alert_rules[rec.uid]
        return ApiResponse(204, raw=b"")

    @staticmethod
    def _body(req: Request) -> Any:
        text = req.body.decode("utf-8", errors="replace").strip()
        if not text:
            return {}
        try:
            return json.JSONDecoder().raw_decode(text)[0]
        except ValueError:
            raise bad_request_data() from None

    def _store(self, uid: str, rule: dict, folder_uid: str, group: str, index: int, interval: int,
               provenance: str, existing: AlertRuleRecord | None = None) -> AlertRuleRecord:
        rec = existing or AlertRuleRecord(self.state.next_rule_id(), uid, folder_uid, group, index, interval, {})
        rec.folder_uid, rec.group, rec.index, rec.interval = folder_uid, group, index, interval
        rec.content = self._stored_content(rule)
        rec.provenance = provenance
        rec.updated = self.now()
        self.state.alert_rules[uid] = rec
        return rec

    # ---- seeds and out-of-band edits (not HTTP, not logged) -----------------------------

    def seed_rule_group(self, folder_uid: str, name: str, rules: list[dict], *, interval: int | None = None,
                        provenance: str = "") -> list[AlertRuleRecord]:
        """Store rules as another tool (or a person in the UI) would have: appended to the group
        if it exists (at its interval), else a new group (default interval 60 s). ``provenance``:
        "", "api" or "file". Each rule needs at least ``title``; the rest defaults to a firing
        math expression."""
        with self.state.lock:
            existing = self._group_rules(folder_uid, name)
            interval = interval or (existing[0].interval if existing else DEFAULT_GROUP_INTERVAL)
            stored = []
            for index, raw in enumerate(rules, start=len(existing) + 1):
                rule = self._decode_rule({**_default_rule(raw.get("title", f"rule {index}")), **raw})
                rec = self._store(rule["uid"] or gen_uid(), rule, folder_uid, name, index, interval, provenance)
                stored.append(rec)
            return stored

    def edit_alert_rule(self, uid: str, mutate: Callable[[dict], Any], *, via: str = "ui") -> AlertRuleRecord:
        """Change a stored rule as a person would: ``via="ui"`` refuses rules with a provenance
        (Grafana shows them read-only); ``via="api"`` keeps whatever provenance it has.
        ``mutate`` gets the rule as the API shows it and changes it in place."""
        with self.state.lock:
            rec = self.state.alert_rules[uid]
            if via == "ui" and rec.provenance:
                raise ValueError(f"rule {uid} has provenance {rec.provenance!r}: read-only in the UI")
            dto = self._rule_dto(rec)
            mutate(dto)
            rec.content = self._stored_content(self._decode_rule(dto))
            rec.updated = self.now()
            return rec

    def set_group_interval(self, folder_uid: str, name: str, interval: int) -> None:
        with self.state.lock:
            for rec in self._group_rules(folder_uid, name):
                rec.interval = interval

    def rule_group(self, folder_uid: str, name: str) -> list[AlertRuleRecord]:
        with self.state.lock:
            return self._group_rules(folder_uid, name)

    # ==================================================================================
    # Ruler proxy (reference 7)
    # ==================================================================================

    def add_ruler_datasource(self, uid: str, kind: str = "mimir", *, name: str = "",
                             url: str = "http://ruler.example:8080/prometheus") -> RulerBackend:
        """A data source with an emulated ruler behind it: ``kind`` mimir, cortex or
        prometheus (a Prometheus-type data source; plain Prometheus has no ruler API) or loki."""
        with self.state.lock:
            ds_type = "loki" if kind == "loki" else "prometheus"
            self.add_datasource(name or f"{kind} {uid}", ds_type, uid=uid, url=url)
            backend = RulerBackend(kind)
            self.state.rulers[uid] = backend
            return backend

    def seed_ruler_group(self, datasource_uid: str, namespace: str, group: dict) -> None:
        with self.state.lock:
            self.state.rulers[datasource_uid].namespaces.setdefault(namespace, {})[group["name"]] = \
                _ruler_stored(group)

    def ruler_groups(self, datasource_uid: str, namespace: str) -> dict[str, dict]:
        with self.state.lock:
            return copy.deepcopy(self.state.rulers[datasource_uid].namespaces.get(namespace, {}))

    def _ruler_prefix(self, req: Request) -> tuple[str, str]:
        """``getDatasourceByUID`` + ``validateAndGetPrefix``: (datasource uid, upstream prefix)."""
        ds = next((d for d in self.state.datasources.values() if d.uid == req.params["ds"]), None)
        if ds is None:
            raise ApiError(err_a(404, "data source not found", trace=True))
        if ds.type not in ("prometheus", "loki"):
            raise ApiError(err_a(400, f"unexpected datasource type '{ds.type}', expected loki, prometheus",
                                 trace=True))
        if not ds.url:
            raise ApiError(err_a(500, "URL for this data source is empty", trace=True))
        if ds.type == "loki":
            return ds.uid, "/api/prom/rules"
        return ds.uid, SUBTYPE_PREFIX.get(req.q("subtype"), "/rules")

    def _upstream(self, ds_uid: str, method: str, path: str, prefix: str,
                  group: dict | None = None) -> RulerAnswer:
        """Send a request on to the ruler (a POST carries the group as YAML) and get its answer."""
        entry = UpstreamRequest(ds_uid, method, path, "application/yaml" if group is not None else "",
                                _yaml(group).decode() if group is not None else "")
        self.state.upstream_log.append(entry)
        backend = self.state.rulers.get(ds_uid)
        if backend is None or prefix not in RULER_PREFIXES.get(backend.kind, ()):
            answer = RulerAnswer(404, TEXT, b"404 page not found\n")
        else:
            answer = _ruler_answer(backend, method, path[len(prefix):].strip("/"), group)
        entry.status = answer.status
        return answer

    @staticmethod
    def _relay(answer: RulerAnswer, extract: str) -> ApiResponse:
        """``withReq``: an upstream error's body (or its JSON ``message``) becomes the message;
        a success goes through the route's extractor (YAML -> JSON, JSON, or the body as a message)."""
        if answer.status >= 400:
            message = answer.raw.decode("utf-8", errors="replace")
            if answer.content_type.startswith("application/json"):
                try:
                    found = json.loads(answer.raw).get("message")
                    message = found if isinstance(found, str) else message
                except (ValueError, AttributeError):
                    pass
            elif answer.content_type.startswith("text/html"):
                message = "redacted html"
            return err_a(answer.status, message, trace=True)
        if extract == "message":
            return _json(answer.status, {"message": answer.raw.decode("utf-8", errors="replace")})
        if extract == "yaml":
            return _json(answer.status, answer.data)
        return _json(answer.status, json.loads(answer.raw))

    def h_ruler_get_all(self, req: Request) -> ApiResponse:
        ds, prefix = self._ruler_prefix(req)
        return self._relay(self._upstream(ds, "GET", prefix, prefix), "yaml")

    def h_ruler_get_namespace(self, req: Request) -> ApiResponse:
        ds, prefix = self._ruler_prefix(req)
        return self._relay(self._upstream(ds, "GET", f"{prefix}/{_quote(req.params['namespace'])}", prefix), "yaml")

    def h_ruler_get_group(self, req: Request) -> ApiResponse:
        ds, prefix = self._ruler_prefix(req)
        path = f"{prefix}/{_quote(req.params['namespace'])}/{_quote(req.params['group'])}"
        return self._relay(self._upstream(ds, "GET", path, prefix), "yaml")

    def h_ruler_post(self, req: Request) -> ApiResponse:
        group = self._decode_ruler_group(req)
        ds, prefix = self._ruler_prefix(req)
        if not group["rules"] or any("grafana_alert" in r for r in group["rules"]):
            return err_a(500, "unexpected backend type (lotex) for payload type (grafana)", trace=True)
        path = f"{prefix}/{_quote(req.params['namespace'])}"
        return self._relay(self._upstream(ds, "POST", path, prefix, group), "json")

    def h_ruler_delete_namespace(self, req: Request) -> ApiResponse:
        ds, prefix = self._ruler_prefix(req)
        return self._relay(self._upstream(ds, "DELETE", f"{prefix}/{_quote(req.params['namespace'])}", prefix),
                           "message")

    def h_ruler_delete_group(self, req: Request) -> ApiResponse:
        ds, prefix = self._ruler_prefix(req)
        path = f"{prefix}/{_quote(req.params['namespace'])}/{_quote(req.params['group'])}"
        return self._relay(self._upstream(ds, "DELETE", path, prefix), "message")

    _RULER_RULE_FIELDS = {"record": "str", "alert": "str", "expr": "str", "for": "any", "keep_firing_for": "any",
                          "labels": "strmap", "annotations": "strmap", "grafana_alert": "obj"}

    def _decode_ruler_group(self, req: Request) -> dict:
        """``web.Bind`` into ``PostableRuleGroupConfig``: JSON only (a YAML body is a decode
        error), durations as strings, no mixing of Grafana and data-source rules."""
        cmd = req.bind({"name": "str", "interval": "any", "rules": "any"})
        if cmd["rules"] is not None and not isinstance(cmd["rules"], list):
            raise bad_request_data()
        group: dict[str, Any] = {"name": cmd["name"]}
        if cmd["interval"] is not None:
            if parse_prom_duration(cmd["interval"]) is None:
                raise bad_request_data()
            if parse_prom_duration(cmd["interval"]):
                group["interval"] = prom_duration(parse_prom_duration(cmd["interval"]))
        rules = []
        for raw in cmd["rules"] or []:
            if not isinstance(raw, dict):
                raise bad_request_data()
            r = bind(json.dumps(raw).encode(), self._RULER_RULE_FIELDS)
            rule: dict[str, Any] = {}
            for key in ("record", "alert", "expr"):
                if r[key]:
                    rule[key] = r[key]
            for key in ("for", "keep_firing_for"):
                if r[key] is not None:
                    if parse_prom_duration(r[key]) is None:
                        raise bad_request_data()
                    rule[key] = prom_duration(parse_prom_duration(r[key]))
            for key in ("labels", "annotations"):
                if r[key]:
                    rule[key] = dict(r[key])
            if r["grafana_alert"] is not None:
                rule["grafana_alert"] = r["grafana_alert"]
            rules.append(rule)
        kinds = {"grafana_alert" in rule for rule in rules}
        if len(kinds) > 1:  # "cannot mix Grafana & Prometheus style rules"
            raise bad_request_data()
        group["rules"] = rules
        return group


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------

@dataclasses.dataclass
class RulerAnswer:
    status: int
    content_type: str
    raw: bytes
    data: Any = None  # the YAML answer's content, as Grafana's yamlExtractor decodes it


TEXT = "text/plain; charset=utf-8"


def _ruler_answer(backend: RulerBackend, method: str, rest: str, group: dict | None) -> RulerAnswer:
    """A Mimir-style ruler: YAML for reads, 202 with a JSON status for writes, plain-text 404s."""
    from urllib.parse import unquote

    parts = [unquote(p) for p in rest.split("/")] if rest else []
    spaces = backend.namespaces

    def found(data: Any) -> RulerAnswer:
        return RulerAnswer(200, "application/yaml", _yaml(data), data)

    if method == "GET" and not parts:
        return found({ns: list(groups.values()) for ns, groups in spaces.items() if groups})
    if method == "GET" and len(parts) == 1:
        groups = spaces.get(parts[0])
        return found({parts[0]: list(groups.values())}) if groups else RulerAnswer(404, TEXT, b"no rule groups found\n")
    if method == "GET" and len(parts) == 2:
        stored = spaces.get(parts[0], {}).get(parts[1])
        return found(stored) if stored else RulerAnswer(404, TEXT, b"group does not exist\n")
    if method == "POST" and len(parts) == 1 and group is not None:
        problem = _ruler_group_problem(group)
        if problem:
            return RulerAnswer(400, TEXT, f"invalid rules configuration: {problem}\n".encode())
        spaces.setdefault(parts[0], {})[group["name"]] = _ruler_stored(group)
        return RulerAnswer(202, "application/json", ACCEPTED)
    if method == "DELETE" and len(parts) == 1:
        if not spaces.pop(parts[0], None):
            return RulerAnswer(404, TEXT, b"no rule groups found\n")
        return RulerAnswer(202, "application/json", ACCEPTED)
    if method == "DELETE" and len(parts) == 2:
        groups = spaces.get(parts[0], {})
        if groups.pop(parts[1], None) is None:
            return RulerAnswer(404, TEXT, b"group does not exist\n")
        if not groups:
            spaces.pop(parts[0], None)
        return RulerAnswer(202, "application/json", ACCEPTED)
    return RulerAnswer(404, TEXT, b"404 page not found\n")


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def _default_rule(title: str) -> dict:
    """A complete rule for seeding: a math expression that always fires."""
    return {"title": title, "condition": "A", "noDataState": "NoData", "execErrState": "Error", "for": "0s",
            "data": [{"refId": "A", "datasourceUid": EXPR_DATASOURCE, "relativeTimeRange": {"from": 0, "to": 0},
                      "model": {"refId": "A", "type": "math", "expression": "1 == 1"}}]}


def _ruler_stored(group: dict) -> dict:
    """A group as the ruler keeps it (and Grafana's GettableRuleGroupConfig shows it)."""
    out: dict[str, Any] = {"name": group["name"]}
    interval = parse_prom_duration(group.get("interval")) if group.get("interval") else 0
    if interval:
        out["interval"] = prom_duration(interval)
    out["rules"] = []
    for rule in group.get("rules") or []:
        kept = {k: rule[k] for k in ("record", "alert", "expr", "labels", "annotations") if rule.get(k)}
        for key in ("for", "keep_firing_for"):
            if rule.get(key) is not None:
                kept[key] = prom_duration(parse_prom_duration(rule[key]) or 0)
        out["rules"].append(kept)
    return out


def _ruler_group_problem(group: dict) -> str:
    """The ruler's own validation (rulefmt), as Mimir words a few of its refusals."""
    if not group.get("name"):
        return "rule group name must not be empty"
    if not group.get("rules"):
        return f"rule group '{group['name']}' has no rules"
    for index, rule in enumerate(group["rules"]):
        if bool(rule.get("record")) == bool(rule.get("alert")):
            return f"group '{group['name']}', rule {index}: only one of 'record' and 'alert' must be set"
        if not rule.get("expr"):
            return f"group '{group['name']}', rule {index}: field 'expr' must be set in rule"
        if rule.get("record") and (rule.get("annotations") or rule.get("for")):
            return f"group '{group['name']}', rule {index}: invalid field 'annotations' or 'for' in recording rule"
    return ""


def _yaml(value: Any, indent: int = 0) -> bytes:
    """YAML text (block style, JSON-quoted scalars: a valid YAML subset) without a YAML library."""
    return (_yaml_lines(value, indent) + "\n").encode()


def _yaml_lines(value: Any, indent: int) -> str:
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return pad + "{}"
        lines = []
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{json.dumps(str(key))}:\n{_yaml_lines(item, indent + 2)}")
            else:
                lines.append(f"{pad}{json.dumps(str(key))}: {json.dumps(item)}")
        return "\n".join(lines)
    if isinstance(value, list):
        if not value:
            return pad + "[]"
        lines = []
        for item in value:
            inner = _yaml_lines(item, indent + 2)
            lines.append(f"{pad}- {inner.lstrip()}")
        return "\n".join(lines)
    return pad + json.dumps(value)
