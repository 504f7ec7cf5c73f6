"""Resource kinds, in the order they are applied: a dashboard needs its folder first,
and so does a Grafana rule group."""

from provision.grafana.resources.base import Kind
from provision.grafana.resources.dashboard import DASHBOARD
from provision.grafana.resources.datasource import DATASOURCE
from provision.grafana.resources.folder import FOLDER
from provision.grafana.resources.rule_group_grafana import GRAFANA_RULE_GROUP
from provision.grafana.resources.rule_group_ruler import RULER_RULE_GROUP

KINDS: tuple[Kind, ...] = (FOLDER, DATASOURCE, DASHBOARD, GRAFANA_RULE_GROUP, RULER_RULE_GROUP)
