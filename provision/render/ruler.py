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


def render_ruler_rule_groups(result: BuildResult) -> list[RulerRuleGroup]:
    config = result.context.config
    settings = config.rules["ruler"]
    datasource = settings["datasource_uid"] or config.grafana["datasource"]["uid"]
    options = rule_render_options(config)
    return [
        RulerRuleGroup(datasource, settings["namespace"], settings["subtype"], group.name,
                       render_group(group, **options))
        for group in prometheus_groups(config, result.groups)
    ]
