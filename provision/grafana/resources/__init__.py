"""Resource kinds, in the order they are applied: a dashboard needs its folder first."""

from provision.grafana.resources.base import Kind
from provision.grafana.resources.dashboard import DASHBOARD
from provision.grafana.resources.datasource import DATASOURCE
from provision.grafana.resources.folder import FOLDER

KINDS: tuple[Kind, ...] = (FOLDER, DATASOURCE, DASHBOARD)
