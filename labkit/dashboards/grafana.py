"""Grafana's side: a panel or a dashboard as Grafana stores it, built with Grafana's own grafana-foundation-sdk
(the SDK's typed model of Grafana's panels), over the datasource the compose stack provisions."""

from __future__ import annotations

import json

from labkit.dashboards.flux import WORKSHOP_ATTENDEES, WORKSHOP_BUCKET

DATASOURCE_UID = "clickstream-influxdb"
DATASOURCE = {"type": "influxdb", "uid": DATASOURCE_UID}


def panel_builder(panel):
    """`panel` (a labkit.dashboards.Panel) as a grafana-foundation-sdk builder."""
    from grafana_foundation_sdk.builders import barchart, bargauge, stat, table, timeseries
    from grafana_foundation_sdk.builders import common as common_b
    from grafana_foundation_sdk.builders import dashboard as dash_b
    from grafana_foundation_sdk.models import common as common_m
    from grafana_foundation_sdk.models import dashboard as dash_m

    kinds = {
        "timeseries": timeseries.Panel,
        "stat": stat.Panel,
        "bargauge": bargauge.Panel,
        "barchart": barchart.Panel,
        "table": table.Panel,
    }
    x, y, w, h = panel.grid
    b = (
        kinds[panel.kind]()
        .id(panel.id)
        .title(panel.title)
        .description(panel.description)
        .datasource(dash_m.DataSourceRef(type_val=DATASOURCE["type"], uid=DATASOURCE_UID))
        .grid_pos(dash_m.GridPos(x=x, y=y, w=w, h=h))
        .with_target(_FluxTarget(panel.flux))
    )
    if panel.unit:
        b = b.unit(panel.unit)
    if panel.threshold is not None:
        b = b.thresholds(
            dash_b.ThresholdsConfig()
            .mode(dash_m.ThresholdsMode.ABSOLUTE)
            .steps([dash_m.Threshold(None, "green"), dash_m.Threshold(panel.threshold, "red")])
        )
    if panel.kind == "timeseries":
        b = b.legend(
            common_b.VizLegendOptions()
            .display_mode(common_m.LegendDisplayMode.LIST)
            .placement(common_m.LegendPlacement.BOTTOM)
            .show_legend(True)
        ).span_nulls(False)  # a missing window is a gap, as in the notebooks' charts
        if panel.threshold is not None:
            b = b.thresholds_style(
                common_b.GraphThresholdsStyleConfig().mode(common_m.GraphThresholdsStyleMode.LINE_AND_AREA)
            )
        if panel.stacked:
            b = (
                b.stacking(common_b.StackingConfig().mode(common_m.StackingMode.NORMAL).group("A"))
                .draw_style(common_m.GraphDrawStyle.BARS)
                .fill_opacity(80)
            )
    return b


def dashboard_builder(dashboard):
    """`dashboard` (a labkit.dashboards.Dashboard) as a grafana-foundation-sdk builder: stable uid, a `stream`
    variable (the topic), or an `attendee` one for a workshop's dashboard."""
    from grafana_foundation_sdk.builders import dashboard as dash_b
    from grafana_foundation_sdk.models import dashboard as dash_m

    b = (
        dash_b.Dashboard(dashboard.title)
        .uid(dashboard.uid)
        .tags(["clickstream-lab"])
        .timezone("browser")
        .editable()
        .refresh(dashboard.refresh)
        .time("now-15m", "now")
    )
    if dashboard.variable == "attendee":
        # The attendees are the buckets `labkit workshop create` made: <bucket>-aNN; the regex keeps aNN.
        b = b.with_variable(
            dash_b.QueryVariable("attendee")
            .label("Attendee")
            .datasource(dash_m.DataSourceRef(type_val=DATASOURCE["type"], uid=DATASOURCE_UID))
            .query(WORKSHOP_ATTENDEES)
            .regex(f"/^{WORKSHOP_BUCKET}-(a[0-9]+)$/")
            .refresh(dash_m.VariableRefresh.ON_DASHBOARD_LOAD)
            .sort(dash_m.VariableSort.ALPHABETICAL_ASC)
        )
    else:
        b = b.with_variable(
            dash_b.TextBoxVariable("stream")
            .label("Kafka topic")
            .default_value("clickstream_events")
            .current(dash_m.VariableOption(text="clickstream_events", value="clickstream_events"))
        )
    for p in dashboard.panels:
        b = b.with_panel(p.grafana_builder())
    return b


class _FluxTarget:
    """A Flux query target for the InfluxDB datasource. The SDK has typed queries for some datasources but
    not InfluxDB's; a builder only has to produce an object that serialises to the target's JSON."""

    def __init__(self, flux: str) -> None:
        self.flux = flux

    def build(self) -> _FluxTarget:
        return self

    def to_json(self) -> dict:
        return {"refId": "A", "datasource": DATASOURCE, "query": self.flux}


def as_json(model) -> dict:
    """A built SDK model as plain JSON, as the SDK serialises it (what Grafana stores)."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    return json.loads(json.dumps(model, cls=JSONEncoder))
