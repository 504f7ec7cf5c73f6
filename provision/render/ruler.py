"""Data-source-managed rule groups for a Mimir or Cortex ruler behind Grafana:
each group as the JSON body of `POST /api/ruler/{datasourceUid}/api/v1/rules/{namespace}`.

The body is the Prometheus rule-group mapping itself (name, interval, rules with
record/alert, expr, for, keep_firing_for, labels, annotations); Grafana converts
it to YAML for the ruler. Recording rules are included: the ruler evaluates them
and writes the series the dashboards read. When Grafana evaluates the alerts
(rules.target includes grafana) the alerts are left out here, as in build/rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from provision.build import prometheus_groups, rule_render_options
from provision.rules import render_group

if TYPE_CHECKING:
    from provision.build import BuildResult
    from provision.config import Config


@dataclass(frozen=True)
class RulerNamespace:
    """Where relaywatch's ruler groups live: a namespace of the ruler behind a Grafana
    datasource. The namespace is relaywatch's own; push --prune empties it of groups no
    longer built and touches nothing outside it."""

    datasource_uid: str
    namespace: str
    subtype: str  # Grafana's ?subtype= for a Prometheus-type datasource: mimir, cortex or prometheus

    @classmethod
    def from_config(cls, config: Config) -> RulerNamespace:
        settings = config.rules["ruler"]
        return cls(settings["datasource_uid"] or config.grafana["datasource"]["uid"], settings["namespace"],
                   settings["subtype"])


@dataclass(frozen=True)
class RulerRuleGroup:
    """The desired state of one ruler rule group: where it lives and the POST body."""

    datasource_uid: str
    namespace: str
    subtype: str  # Grafana's ?subtype= for a Prometheus-type datasource: mimir, cortex or prometheus
    name: str
    body: dict

    @property
    def key(self) -> str:
        return f"{self.datasource_uid}/{self.namespace}/{self.name}"

    @property
    def where(self) -> RulerNamespace:
        return RulerNamespace(self.datasource_uid, self.namespace, self.subtype)


def render_ruler_rule_groups(result: BuildResult) -> list[RulerRuleGroup]:
    config = result.context.config
    where = RulerNamespace.from_config(config)
    options = rule_render_options(config)
    return [
        RulerRuleGroup(where.datasource_uid, where.namespace, where.subtype, group.name,
                       render_group(group, **options))
        for group in prometheus_groups(config, result.groups)
    ]
