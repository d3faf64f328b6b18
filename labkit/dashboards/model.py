"""The model: a panel (id, title, Flux with Grafana's macros, kind, layout) and a dashboard (its panels and
variable), each defined once and rendered two ways: as Grafana JSON (labkit.dashboards.grafana) and as a plotly
figure from the same Flux run by labkit (labkit.dashboards.figures)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd

from labkit.dashboards.figures import panel_data, panel_figure
from labkit.dashboards.flux import substitute_macros
from labkit.dashboards.grafana import as_json, dashboard_builder, panel_builder
from labkit.settings import Settings


@dataclass(frozen=True)
class Panel:
    id: int
    title: str
    flux: str
    kind: str = "timeseries"  # timeseries | barchart | stat | table | bargauge
    unit: str | None = None
    description: str = ""
    grid: tuple[int, int, int, int] = (0, 0, 12, 8)  # x, y, w, h
    threshold: float | None = None
    stacked: bool = False

    # ---- Grafana (built with Grafana's own grafana-foundation-sdk) ------------------------------------
    def grafana_builder(self):
        """This panel as a grafana-foundation-sdk builder (the SDK's typed model of Grafana's panels)."""
        return panel_builder(self)

    def grafana(self) -> dict:
        """The panel's JSON, as Grafana stores it."""
        return as_json(self.grafana_builder().build())

    # ---- the same query, run by labkit -----------------------------------------------------------
    def render_flux(
        self,
        settings: Settings,
        start: datetime,
        stop: datetime,
        window: timedelta,
        stream: str | None = None,
        attendee: str | None = None,
    ) -> str:
        """Substitute Grafana's Flux macros exactly as its InfluxDB (Flux) datasource does."""
        return substitute_macros(self.flux, self.title, settings, start, stop, window, stream, attendee)

    def data(
        self,
        start: str | timedelta = "15m",
        settings: Settings | None = None,
        stream: str | None = None,
        attendee: str | None = None,
    ) -> pd.DataFrame:
        return panel_data(self, start, settings, stream, attendee)

    def figure(
        self,
        start: str | timedelta = "15m",
        settings: Settings | None = None,
        stream: str | None = None,
        attendee: str | None = None,
    ):
        return panel_figure(self, start, settings, stream, attendee)


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    panels: tuple[Panel, ...] = field(default_factory=tuple)
    refresh: str = "5s"
    variable: str = "stream"  # or "attendee": a workshop's dashboard (for_workshop)

    @property
    def slug(self) -> str:
        return self.uid

    def grafana_builder(self):
        """The dashboard as a grafana-foundation-sdk builder: stable uid, a `stream` variable (the topic)."""
        return dashboard_builder(self)

    def grafana(self) -> dict:
        """Dashboard JSON for file provisioning (grafana/dashboards/), as the SDK serialises it."""
        return as_json(self.grafana_builder().build())

    def panel(self, title_or_id: str | int) -> Panel:
        for p in self.panels:
            if title_or_id in (p.id, p.title):
                return p
        raise KeyError(title_or_id)

    def embed_url(self, panel_id: int, grafana_url: str, stream: str = "clickstream_events") -> str:
        return (
            f"{grafana_url}/d-solo/{self.uid}/{self.slug}?orgId=1&panelId={panel_id}"
            f"&refresh=5s&from=now-15m&to=now&var-stream={stream}"
        )
