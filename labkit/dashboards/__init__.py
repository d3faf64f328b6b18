"""Dashboards as code: each panel is defined once (title, Flux with Grafana's macros, kind) and rendered
two ways: as Grafana dashboard JSON for the compose stack, and as a plotly figure in notebooks by
running the same Flux (macros substituted as Grafana's Flux datasource does) against InfluxDB.

model.py       Panel and Dashboard
flux.py        the panels' Flux (query helpers, the workshop's attendee query) and Grafana's macros substituted
grafana.py     Grafana JSON, built with grafana-foundation-sdk; the provisioned datasource
figures.py     a panel's data and plotly figure, from the same Flux run by labkit
boards.py      the lab's dashboards (ERRORS, ENGAGEMENT, the workshop's view)
publishing.py  grafana/dashboards/*.json written (`make dashboards`), a dashboard pushed to a running Grafana
"""

from labkit.dashboards.boards import (
    DASHBOARDS,
    ENGAGEMENT,
    ERROR_RATE_THRESHOLD,
    ERRORS,
    WORKSHOP_ERRORS,
    for_workshop,
)
from labkit.dashboards.flux import LATE_EVENTS, WORKSHOP_ATTENDEES, WORKSHOP_BUCKET, _go_duration, _q
from labkit.dashboards.grafana import DATASOURCE, DATASOURCE_UID
from labkit.dashboards.model import Dashboard, Panel
from labkit.dashboards.publishing import publish, write_grafana
from labkit.paths import GRAFANA_DIR

__all__ = [
    "DASHBOARDS",
    "DATASOURCE",
    "DATASOURCE_UID",
    "ENGAGEMENT",
    "ERRORS",
    "ERROR_RATE_THRESHOLD",
    "GRAFANA_DIR",
    "LATE_EVENTS",
    "WORKSHOP_ATTENDEES",
    "WORKSHOP_BUCKET",
    "WORKSHOP_ERRORS",
    "Dashboard",
    "Panel",
    "_go_duration",
    "_q",
    "for_workshop",
    "publish",
    "write_grafana",
]
