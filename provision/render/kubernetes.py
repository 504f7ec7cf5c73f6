"""build/kubernetes/: the rules as PrometheusRule objects for the Prometheus
Operator, the dashboards as ConfigMaps for Grafana's dashboard sidecar, and a
kustomization.yaml listing them (`kubectl apply -k build/kubernetes`).

- One PrometheusRule per rule file, `spec.groups` being that file's groups.
  The operator only loads objects its Prometheus `ruleSelector` (and
  `ruleNamespaceSelector`) match: rules.kubernetes.labels must carry them
  (kube-prometheus-stack selects `release: <helm release>`).
- One ConfigMap per dashboard, data key `<uid>.json`, labelled as the sidecar
  expects (`grafana_dashboard: "1"` by convention) and annotated with the
  folder title when the sidecar's folderAnnotation is in use.

Size: Kubernetes refuses a ConfigMap whose data exceeds 1 MiB. A dashboard
above that pretty-printed is stored compact; above it even compact, the build
fails naming the dashboard. Past 256 KiB, `kubectl apply` without
`--server-side` fails, because it copies the object into an annotation.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import yaml

from provision.build import dashboard_text
from provision.config import Config
from provision.definitions import DefinitionError
from provision.render import GENERATED_HEADER, KUBERNETES_DIR, file_stem, short_hash, yaml_text

if TYPE_CHECKING:
    from provision.build import BuildResult

RULE_API_VERSION = "monitoring.coreos.com/v1"
CONFIGMAP_DATA_LIMIT = 1024 * 1024  # bytes: the API server rejects larger ConfigMap data
CLIENT_SIDE_APPLY_LIMIT = 256 * 1024  # bytes: annotations, where client-side apply keeps a copy
NAME_LIMIT = 253


def render_kubernetes(result: BuildResult) -> dict[str, str]:
    config = result.context.config
    settings = config.rules["kubernetes"]
    files: dict[str, str] = {}
    for stem, rule_file in result.rule_files.items():
        obj = {
            "apiVersion": RULE_API_VERSION,
            "kind": "PrometheusRule",
            "metadata": _metadata(settings["name_prefix"] + stem, settings, settings["labels"]),
            "spec": {"groups": rule_file["groups"]},
        }
        files[f"{KUBERNETES_DIR}/prometheusrule-{file_stem(stem)}.yaml"] = yaml_text(obj)
    if settings["dashboards"]:
        for uid, dashboard in result.dashboards.items():
            files[f"{KUBERNETES_DIR}/configmap-dashboard-{file_stem(uid)}.yaml"] = _dashboard_configmap(
                uid, dashboard, config, result.notices)
    resources = sorted(path.rsplit("/", 1)[1] for path in files)
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": resources}
    files[f"{KUBERNETES_DIR}/kustomization.yaml"] = yaml_text(kustomization)
    return files


def _dashboard_configmap(uid: str, dashboard: dict, config: Config, notices: list[str]) -> str:
    settings = config.rules["kubernetes"]
    key = f"{uid}.json"
    text = dashboard_text(dashboard)
    if _size(key, text) > CONFIGMAP_DATA_LIMIT:
        text = json.dumps(dashboard, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if _size(key, text) > CONFIGMAP_DATA_LIMIT:
            raise DefinitionError(
                f"dashboard {uid}: {_size(key, text)} bytes of JSON even without whitespace, above the 1 MiB a "
                "ConfigMap holds; split the dashboard, or deliver it with provision push or file provisioning")
        notices.append(f"dashboard {uid}: stored without whitespace in its ConfigMap to stay under 1 MiB")
    if _size(key, text) > CLIENT_SIDE_APPLY_LIMIT:
        notices.append(f"dashboard {uid}: its ConfigMap holds {_size(key, text)} bytes; apply it with "
                       "kubectl apply --server-side (client-side apply copies it into a 256 KiB annotation)")
    metadata = _metadata(f"{settings['name_prefix']}dashboard-{uid}", settings,
                         {**settings["labels"], **settings["dashboard_labels"]})
    if settings["folder_annotation"]:
        metadata["annotations"] = {settings["folder_annotation"]: config.grafana["folder"]["title"]}
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {key: text}}
    return GENERATED_HEADER + yaml.dump(obj, Dumper=_BlockDumper, sort_keys=False, default_flow_style=False,
                                        allow_unicode=True, width=10_000)


def _metadata(name: str, settings: dict, labels: dict) -> dict:
    return {"name": object_name(name), "namespace": settings["namespace"], "labels": dict(sorted(labels.items()))}


def object_name(name: str) -> str:
    """A DNS-1123 subdomain (lowercase alphanumerics, - and .); a hash keeps altered names apart."""
    slug = re.sub(r"[^a-z0-9.-]+", "-", name.lower())
    slug = re.sub(r"-{2,}", "-", slug).strip("-.")
    if slug == name and len(slug) <= NAME_LIMIT:
        return slug
    digest = short_hash(name)
    return f"{slug[:NAME_LIMIT - len(digest) - 1].rstrip('-.')}-{digest}" if slug else digest


def _size(key: str, text: str) -> int:
    return len(key.encode()) + len(text.encode())


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings (the dashboard JSON) as literal blocks, readable in a diff."""


def _represent_str(dumper: yaml.SafeDumper, value: str):
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_BlockDumper.add_representer(str, _represent_str)
