"""Load relaywatch.yaml, check it against config.schema.json and return a Config.

Defaults live here, in one place; the file only needs what differs from them.
A missing file is fine (everything defaults); an invalid one raises ConfigError
carrying one line per problem, each naming the key path.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from provision.promql import duration_seconds

DEFAULT_CONFIG_NAME = "relaywatch.yaml"

# The source document's price table, USD per million tokens.
DEFAULT_PRICING: dict[str, dict[str, float]] = {
    "gpt-4.1": {"input": 8.00, "output": 32.00},
    "claude-sonnet-4.5": {"input": 15.00, "output": 75.00},
    "gemini-2.5-flash": {"input": 2.50, "output": 10.00},
    "deepseek-v3.2": {"input": 0.42, "output": 1.68},
}

DEFAULTS: dict[str, Any] = {
    "profile": "holysheep",
    "custom_profile": None,
    "profile_options": {},
    "selector": {},
    "scrape_interval": "15s",
    "rules": {
        "interval": "30s",
        "window": "5m",
        "target": "files",
        "files": {"directory": "/etc/prometheus/rules/relaywatch"},
        "grafana": {
            "interval": None,
            "no_data_state": "OK",
            "exec_err_state": "Error",
            "missing_series_evals_to_resolve": 1,
            "editable_in_ui": False,
            "overrides": {},
        },
        "ruler": {"datasource_uid": None, "namespace": "relaywatch", "subtype": "mimir"},
        "kubernetes": {
            "enabled": False,
            "namespace": "monitoring",
            "name_prefix": "relaywatch-",
            "labels": {"app.kubernetes.io/managed-by": "relaywatch"},
            "dashboards": True,
            "dashboard_labels": {"grafana_dashboard": "1"},
            "folder_annotation": "grafana_folder",
        },
        "provisioning": {
            "enabled": False,
            "dashboards_path": "/var/lib/grafana/dashboards/relaywatch",
            "allow_ui_updates": False,
            "disable_deletion": False,
        },
    },
    "grafana": {
        "url": "http://localhost:3000",
        "managed_tag": "relaywatch",
        "concurrency": 4,
        "timeout": {"connect": 5.0, "read": 30.0},
        "retries": 4,
        "backoff": {"initial": 0.5, "max": 30.0},
        "org_id": None,
        "folder": {"uid": "relaywatch", "title": "LLM Gateway", "parent_uid": None},
        "datasource": {
            "uid": "prometheus",
            "name": "Prometheus",
            "url": "http://localhost:9090",
            "manage": False,
        },
    },
    "dashboards": {
        "refresh": "30s",
        "time_from": "now-6h",
        "timezone": "browser",
        "tags": ["llm-gateway"],
    },
    "alerts": {
        "runbook_base_url": "https://github.com/relaywatch/relaywatch/blob/main/docs/runbooks.md",
        "labels": {},
        "min_request_rate": 0.01,
        "error_ratio": {"warning": 0.05, "critical": 0.20, "warning_for": "10m", "critical_for": "5m"},
        "latency_p95": {"threshold_seconds": 5.0, "for": "5m"},
        "rate_limited_ratio": {"threshold": 0.05, "for": "5m"},
        "auth_failure_ratio": {"threshold": 0.01, "for": "5m"},
        "metrics_absent": {"for": "5m"},
        "target_down": {"for": "5m", "lookback": "6h"},
        "traffic_stopped": {"for": "5m", "lookback": "1h"},
        "spend_over_budget": {"for": "30m", "window": "6h"},
        "token_spike": {"factor": 5.0, "min_tokens_per_second": 100.0, "baseline": "3h", "for": "5m"},
    },
    "pricing": DEFAULT_PRICING,
    "cost": {"monthly_budget_usd": None, "timezone": "utc"},
    "paths": {
        "dashboards": "dashboards",
        "alerts": "alerts",
        "build": "build",
        "runbooks": "docs/runbooks.md",
    },
    "lint": {},
    # Availability is on by default. A relay in front of several vendor APIs sees about 1% of
    # timeouts and upstream 5xx on a normal day; 98.5% leaves a third of the budget above that,
    # so healthy traffic stays quiet. Latency depends on answer length and on the profile's
    # buckets, so it is off until a threshold and target are chosen (docs/slo.md).
    "slo": {
        "period": "30d",
        "per_model": False,
        "long_window_interval": "2m",
        "availability": {"target": 0.985, "count_rate_limited": False},
        "latency": {"target": None, "threshold_seconds": None},
    },
    "simulate": {
        # 9464: the port OpenTelemetry's in-process Prometheus exporters use by default, in the
        # exporter range; away from Prometheus (9090), Alertmanager (9093), Grafana (3000) and
        # the gateways themselves (vLLM and prometheus_client examples 8000, LiteLLM 4000).
        "host": "127.0.0.1",
        "port": 9464,
        "seed": 1,
        "arrivals": "poisson",
        "scenario": "healthy",
        "timeout_seconds": 30.0,
        "token_spread": 0.5,
        "statuses": {"500": 0.002, "502": 0.001, "429": 0.004, "401": 0.0005, "timeout": 0.001, "error": 0.0005},
        "faults": {
            "model": None,
            "error_ratio": 0.3,
            "timeout_ratio": 0.2,
            "rate_limited_ratio": 0.4,
            "unauthorized_ratio": 0.6,
            "latency_factor": 6.0,
            "token_factor": 10.0,
        },
        "models": None,
    },
}

# Sections whose user value replaces the default wholesale instead of being merged
# key by key: a price table lists the models a team uses, not additions to ours.
REPLACED_SECTIONS = {"pricing", "selector", "custom_profile", "lint"}


class ConfigError(Exception):
    """An unusable configuration; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Config:
    """The effective configuration: the file merged over DEFAULTS."""

    data: dict[str, Any]
    root: Path
    source: Path | None = None
    notices: list[str] = field(default_factory=list, compare=False)

    def section(self, name: str) -> dict[str, Any]:
        return self.data[name]

    @property
    def profile(self) -> str:
        return self.data["profile"]

    @property
    def selector(self) -> dict[str, str]:
        return self.data["selector"]

    @property
    def pricing(self) -> dict[str, dict[str, float]]:
        return self.data["pricing"]

    @property
    def grafana(self) -> dict[str, Any]:
        return self.data["grafana"]

    @property
    def alerts(self) -> dict[str, Any]:
        return self.data["alerts"]

    @property
    def rules(self) -> dict[str, Any]:
        return self.data["rules"]

    def path(self, name: str) -> Path:
        """A configured path (dashboards, alerts, build, runbooks), relative to the root."""
        return (self.root / self.data["paths"][name]).resolve()

    def name(self) -> str:
        return str(self.source) if self.source else "(defaults)"


def load_config(path: str | Path | None = None, *, overrides: dict[str, Any] | None = None) -> Config:
    """Read the config file (or defaults when `path` is None and no relaywatch.yaml exists).

    `path` given explicitly must exist. Definitions are looked up next to the file.
    """
    if path is None:
        candidate = Path.cwd() / DEFAULT_CONFIG_NAME
        if not candidate.exists():
            return from_mapping({}, root=Path.cwd(), overrides=overrides)
        path = candidate
    path = Path(path)
    if not path.is_file():
        raise ConfigError([f"{path}: config file not found"])
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}:{_yaml_position(exc)} not valid YAML: {_yaml_reason(exc)}"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from None
    if raw is None:
        raw = {}
    return from_mapping(raw, root=path.resolve().parent, source=path, overrides=overrides)


def from_mapping(
    raw: Any,
    *,
    root: Path,
    source: Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Config:
    """Validate a parsed config mapping and merge it over the defaults."""
    name = str(source) if source else "config"
    if not isinstance(raw, dict):
        raise ConfigError([f"{name}: the top level must be a mapping of settings, got {_type_name(raw)}"])
    problems = [f"{name}: {line}" for line in schema_problems(raw)]
    if problems:
        raise ConfigError(problems)
    data = _merge(copy.deepcopy(DEFAULTS), raw)
    for dotted, value in (overrides or {}).items():
        _set_dotted(data, dotted, value)
    problems = [f"{name}: {line}" for line in _consistency_problems(data)]
    if problems:
        raise ConfigError(problems)
    return Config(data=data, root=root, source=source)


def schema_problems(raw: dict[str, Any]) -> list[str]:
    """One line per schema violation, as `key.path: what is wrong`, in document order."""
    validator = jsonschema.Draft202012Validator(config_schema())
    errors = sorted(validator.iter_errors(raw), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{_key_path(err.absolute_path)}: {_describe(err)}" for err in errors]


def config_schema() -> dict[str, Any]:
    text = resources.files("provision").joinpath("schemas/config.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def _consistency_problems(data: dict[str, Any]) -> list[str]:
    """Rules that span several keys, which JSON Schema cannot express well."""
    problems = []
    ratio = data["alerts"]["error_ratio"]
    if ratio["warning"] > ratio["critical"]:
        problems.append(
            "alerts.error_ratio: warning threshold "
            f"{ratio['warning']} is above the critical threshold {ratio['critical']}"
        )
    spike, window = data["alerts"]["token_spike"], data["rules"]["window"]
    if duration_seconds(spike["baseline"]) <= duration_seconds(window):
        problems.append(f"alerts.token_spike.baseline: {spike['baseline']} must be longer than rules.window "
                        f"({window}), the rate it compares against its baseline")
    folder = data["grafana"]["folder"]
    if folder["uid"] == "general":
        problems.append("grafana.folder.uid: 'general' is reserved for Grafana's root folder; pick another uid")
    if folder.get("parent_uid") == folder["uid"]:
        problems.append("grafana.folder.parent_uid: a folder cannot be its own parent")
    targets = data["rules"]["target"]
    for target in [targets] if isinstance(targets, str) else targets:
        if target not in RULE_TARGETS:
            problems.append(f"rules.target: unknown target {target!r}; expected one of {', '.join(RULE_TARGETS)}")
    problems += _rule_delivery_problems(data["rules"])
    problems += _slo_problems(data["slo"])
    return problems


# The slowest burn-rate alert looks back 3 days; Prometheus forgets a recorded sample after 5 minutes.
SLO_MIN_PERIOD, SLO_MAX_LONG_INTERVAL = "3d", "5m"


def _slo_problems(slo: dict[str, Any]) -> list[str]:
    """SLO settings that are well-formed but unusable (the latency threshold is checked against the profile later)."""
    problems = []
    if duration_seconds(slo["period"]) < duration_seconds(SLO_MIN_PERIOD):
        problems.append(f"slo.period: {slo['period']} is shorter than {SLO_MIN_PERIOD}, the long window of the "
                        "slowest burn-rate alert; use at least 3d (28d or 30d is usual)")
    if duration_seconds(slo["long_window_interval"]) >= duration_seconds(SLO_MAX_LONG_INTERVAL):
        problems.append(f"slo.long_window_interval: {slo['long_window_interval']} is too long: Prometheus stops "
                        f"returning a recorded sample after {SLO_MAX_LONG_INTERVAL}; use at most 4m")
    latency = slo["latency"]
    if latency["target"] is not None and latency["threshold_seconds"] is None:
        problems.append("slo.latency.threshold_seconds: required when slo.latency.target is set "
                        "(a bucket boundary of the latency histogram, in seconds)")
    return problems


def _rule_delivery_problems(rules: dict[str, Any]) -> list[str]:
    problems = []
    if rules["ruler"]["subtype"] == "loki":
        problems.append("rules.ruler.subtype: 'loki' cannot run relaywatch's rules: they are PromQL over Prometheus "
                        "metrics and a Loki ruler evaluates LogQL; use mimir or cortex")
    interval = rules["grafana"]["interval"]
    if interval and (duration_seconds(interval) % 10 or duration_seconds(interval) < 10):
        problems.append(f"rules.grafana.interval: {interval} is not a multiple of 10s, "
                        "the step of Grafana's alert scheduler")
    return problems


def rule_targets(config: "Config") -> tuple[str, ...]:
    """rules.target as a tuple, whether the file gave one target or a list."""
    targets = config.rules["target"]
    return (targets,) if isinstance(targets, str) else tuple(targets)


RULE_TARGETS = ("files", "grafana", "ruler")


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    for key, value in override.items():
        if key in REPLACED_SECTIONS or not isinstance(value, dict) or not isinstance(base.get(key), dict):
            base[key] = copy.deepcopy(value)
        else:
            base[key] = _merge(base[key], value)
    return base


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def _key_path(path) -> str:
    parts = [f"[{p}]" if isinstance(p, int) else str(p) for p in path]
    return ".".join(parts).replace(".[", "[") or "(top level)"


def _describe(err: jsonschema.ValidationError) -> str:
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(set(err.instance) - set(allowed))
        hint = f"; expected one of: {', '.join(allowed)}" if allowed else ""
        return f"unknown key{'s' if len(extra) > 1 else ''} {', '.join(map(repr, extra))}{hint}"
    if err.validator == "pattern":
        description = err.schema.get("description")
        return f"{err.instance!r} is not valid" + (f" ({description})" if description else f" (must match {err.validator_value})")
    if err.validator == "type":
        return f"expected {err.validator_value}, got {_type_name(err.instance)} {err.instance!r}"
    if err.validator == "required":
        return err.message.replace("is a required property", "is required")
    return err.message


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "null", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _yaml_position(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f"{mark.line + 1}:{mark.column + 1}:" if mark else ""


def _yaml_reason(exc: yaml.YAMLError) -> str:
    return str(getattr(exc, "problem", None) or exc).strip()
