"""Dashboards as code: each panel is defined once (title, Flux with Grafana's macros, kind) and rendered
two ways: as Grafana dashboard JSON for the compose stack, and as a plotly figure in notebooks by
running the same Flux (macros substituted as Grafana's Flux datasource does) against InfluxDB.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from labkit.influx import LATE_EVENTS_FLUX
from labkit.paths import GRAFANA_DIR
from labkit.settings import Settings
from labkit.settings import get as get_settings
from labkit.timing import WINDOW_S

DATASOURCE_UID = "clickstream-influxdb"
DATASOURCE = {"type": "influxdb", "uid": DATASOURCE_UID}
ERROR_RATE_THRESHOLD = 0.05
# Attendees' buckets are <this>-aNN (labkit.workshop names them after the instructor's LABKIT_INFLUX_BUCKET,
# whose default this is).
WORKSHOP_BUCKET = Settings.model_fields["influx_bucket"].default
# The attendee variable's values: one row per attendee bucket, in the `_value` column Grafana reads.
WORKSHOP_ATTENDEES = f"""buckets()
  |> filter(fn: (r) => r.name =~ /^{WORKSHOP_BUCKET}-a[0-9]+$/)
  |> rename(columns: {{name: "_value"}})
  |> keep(columns: ["_value"])"""

_SOURCE = """from(bucket: v.defaultBucket)
  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)"""
_BASE = (
    _SOURCE
    + """
  |> filter(fn: (r) => r._measurement == "{m}" and r.stream == "${{stream}}")"""
)


def _q(measurement: str, rest: str = "") -> str:
    return _BASE.format(m=measurement) + ("\n" + rest if rest else "")


# late_events is derived from two measurements (labkit.influx.LATE_EVENTS_FLUX), so it filters by stream only
LATE_EVENTS = _SOURCE + '\n  |> filter(fn: (r) => r.stream == "${stream}")' + LATE_EVENTS_FLUX


def _top(measurement: str, field: str, n: int) -> str:
    """`field` summed per URL over the dashboard's range, the `n` largest first."""
    return _q(
        measurement,
        f'  |> filter(fn: (r) => r._field == "{field}")\n'
        '  |> group(columns: ["url"])\n  |> sum()\n  |> group()\n'
        f'  |> sort(columns: ["_value"], desc: true)\n  |> limit(n: {n})',
    )


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
        x, y, w, h = self.grid
        b = (
            kinds[self.kind]()
            .id(self.id)
            .title(self.title)
            .description(self.description)
            .datasource(dash_m.DataSourceRef(type_val=DATASOURCE["type"], uid=DATASOURCE_UID))
            .grid_pos(dash_m.GridPos(x=x, y=y, w=w, h=h))
            .with_target(_FluxTarget(self.flux))
        )
        if self.unit:
            b = b.unit(self.unit)
        if self.threshold is not None:
            b = b.thresholds(
                dash_b.ThresholdsConfig()
                .mode(dash_m.ThresholdsMode.ABSOLUTE)
                .steps([dash_m.Threshold(None, "green"), dash_m.Threshold(self.threshold, "red")])
            )
        if self.kind == "timeseries":
            b = b.legend(
                common_b.VizLegendOptions()
                .display_mode(common_m.LegendDisplayMode.LIST)
                .placement(common_m.LegendPlacement.BOTTOM)
                .show_legend(True)
            ).span_nulls(False)  # a missing window is a gap, as in the notebooks' charts
            if self.threshold is not None:
                b = b.thresholds_style(
                    common_b.GraphThresholdsStyleConfig().mode(common_m.GraphThresholdsStyleMode.LINE_AND_AREA)
                )
            if self.stacked:
                b = (
                    b.stacking(common_b.StackingConfig().mode(common_m.StackingMode.NORMAL).group("A"))
                    .draw_style(common_m.GraphDrawStyle.BARS)
                    .fill_opacity(80)
                )
        return b

    def grafana(self) -> dict:
        """The panel's JSON, as Grafana stores it."""
        return _json(self.grafana_builder().build())

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
        q = self.flux
        if "${attendee}" in q:
            if not attendee:
                raise ValueError(f"panel {self.title!r} is a workshop panel: name the attendee (e.g. 'a01')")
            q = q.replace("${attendee}", attendee)
        q = q.replace("${stream}", settings.scoped(stream or settings.topic))
        q = q.replace("v.timeRangeStart", _rfc3339(start)).replace("v.timeRangeStop", _rfc3339(stop))
        q = q.replace("v.windowPeriod", _go_duration(window))
        q = q.replace("v.defaultBucket", json.dumps(settings.influx_bucket))
        return q.replace("v.organization", json.dumps(settings.influx_org))

    def data(
        self,
        start: str | timedelta = "15m",
        settings: Settings | None = None,
        stream: str | None = None,
        attendee: str | None = None,
    ) -> pd.DataFrame:
        from labkit.influx import Influx

        settings = settings or get_settings()
        span = pd.Timedelta(start).to_pytimedelta() if isinstance(start, str) else start
        stop = datetime.now(UTC)
        # Grafana's interval: the range over ~1000 points, at least 10 s here (the window size)
        window = max(timedelta(seconds=WINDOW_S), span / 1000)
        with Influx(settings) as db:
            df = db.flux(self.render_flux(settings, stop - span, stop, window, stream, attendee))
        if not df.empty and "_time" in df.columns:
            df = df.rename(columns={"_time": "time"})
        return df

    def figure(
        self,
        start: str | timedelta = "15m",
        settings: Settings | None = None,
        stream: str | None = None,
        attendee: str | None = None,
    ):
        import plotly.express as px

        from labkit import plots

        df = self.data(start, settings, stream, attendee)
        if df.empty:
            return plots._empty(self.title)
        series = "_field" if "_field" in df.columns else None
        for tag in ("status_code", "url", "reason"):
            if tag in df.columns and df[tag].nunique() > 1:
                series = tag
        if self.kind in ("barchart", "bargauge", "table"):
            x = next((c for c in ("url", "reason", "status_code") if c in df.columns), df.columns[0])
            fig = px.bar(df, y=x, x="_value", orientation="h", title=self.title)
            fig.update_yaxes(autorange="reversed")
        elif self.kind == "stat":
            v = df["_value"].iloc[-1]
            fig = px.bar(
                x=[self.title],
                y=[v],
                title=f"{self.title}: {v:.2%}" if self.unit == "percentunit" else f"{self.title}: {v:,.0f}",
            )
        elif self.stacked:
            if series == "status_code":  # the lab's status colours, the same in every chart
                df = df.assign(status_code=df["status_code"].astype(str))
            fig = px.bar(
                df, x="time", y="_value", color=series, title=self.title, color_discrete_map=_colors(df, series)
            )
            fig.update_traces(width=plots.WINDOW.total_seconds() * 1000 * 0.9)
        else:
            keep = [c for c in ("time", "_value", series) if c]
            df = plots.with_gaps(df[keep], series)  # a missing window is a gap, not a line across it
            fig = px.line(
                df,
                x="time",
                y="_value",
                color=series,
                title=self.title,
                markers=True,
                color_discrete_map=_colors(df, series),
            )
            fig.update_traces(connectgaps=False)
        if self.unit == "percentunit":
            fig.update_yaxes(tickformat=".1%")
        if self.threshold is not None and self.kind == "timeseries":
            fig.add_hline(y=self.threshold, line_dash="dash", line_color="red")
        fig.update_layout(legend_title_text="")
        return fig


def _colors(df: pd.DataFrame, series: str | None) -> dict:
    from labkit import plots

    if series == "status_code":
        return {str(c): plots.status_color(c) for c in df["status_code"].dropna().unique()}
    if series == "_field":
        return plots.SERIES_COLORS
    return {}


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
        from grafana_foundation_sdk.builders import dashboard as dash_b
        from grafana_foundation_sdk.models import dashboard as dash_m

        b = (
            dash_b.Dashboard(self.title)
            .uid(self.uid)
            .tags(["clickstream-lab"])
            .timezone("browser")
            .editable()
            .refresh(self.refresh)
            .time("now-15m", "now")
        )
        if self.variable == "attendee":
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
        for p in self.panels:
            b = b.with_panel(p.grafana_builder())
        return b

    def grafana(self) -> dict:
        """Dashboard JSON for file provisioning (grafana/dashboards/), as the SDK serialises it."""
        return _json(self.grafana_builder().build())

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


class _FluxTarget:
    """A Flux query target for the InfluxDB datasource. The SDK has typed queries for some datasources but
    not InfluxDB's; a builder only has to produce an object that serialises to the target's JSON."""

    def __init__(self, flux: str) -> None:
        self.flux = flux

    def build(self) -> _FluxTarget:
        return self

    def to_json(self) -> dict:
        return {"refId": "A", "datasource": DATASOURCE, "query": self.flux}


def _json(model) -> dict:
    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    return json.loads(json.dumps(model, cls=JSONEncoder))


def _rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _go_duration(d: timedelta) -> str:
    """Go's time.Duration.String() for whole milliseconds (e.g. 10s, 1m30s, 250ms)."""
    ms = int(d.total_seconds() * 1000)
    if ms < 1000:
        return f"{ms}ms"
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s = rem / 1000
    sec = f"{s:g}s"
    return f"{h}h{m}m{sec}" if h else f"{m}m{sec}" if m else sec


ERRORS = Dashboard(
    "clickstream-errors",
    "Clickstream: error monitoring",
    (
        Panel(
            1,
            "Error rate",
            _q(
                "error_rate",
                '  |> filter(fn: (r) => r._field == "error_rate" or r._field == "rate_4xx" or r._field == "rate_5xx")',
            ),
            unit="percentunit",
            threshold=ERROR_RATE_THRESHOLD,
            grid=(0, 0, 16, 9),
            description="Share of 4xx and 5xx responses per 10 s window; red line: alert threshold",
        ),
        Panel(
            2,
            "Current error rate",
            _q("error_rate", '  |> filter(fn: (r) => r._field == "error_rate")\n  |> last()'),
            kind="stat",
            unit="percentunit",
            threshold=ERROR_RATE_THRESHOLD,
            grid=(16, 0, 8, 9),
        ),
        Panel(
            3,
            "4xx and 5xx by status",
            _q("http_counts", '  |> filter(fn: (r) => r.status_code >= "400")\n  |> group(columns: ["status_code"])'),
            stacked=True,
            grid=(0, 9, 12, 9),
            description="Error responses per status code per window",
        ),
        Panel(
            4,
            "Top failing URLs",
            _top("url_counts", "errors", 10),
            kind="bargauge",
            grid=(12, 9, 12, 9),
            description="4xx + 5xx responses per URL over the time range",
        ),
        Panel(
            5,
            "5xx per URL",
            _q(
                "url_counts",
                '  |> filter(fn: (r) => r._field == "errors_5xx")\n'
                '  |> group(columns: ["url"])\n  |> filter(fn: (r) => r._value > 0)',
            ),
            grid=(0, 18, 24, 8),
            description="Server errors per URL per window: where an incident lives",
        ),
    ),
)

ENGAGEMENT = Dashboard(
    "clickstream-engagement",
    "Clickstream: engagement",
    (
        Panel(
            1,
            "Events per URL",
            _top("url_counts", "count", 15),
            kind="bargauge",
            grid=(0, 0, 12, 10),
        ),
        Panel(2, "Active users and sessions", _q("active_users"), grid=(12, 0, 12, 10)),
        Panel(
            3,
            "Latency percentiles (whole site)",
            _q("latency", '  |> filter(fn: (r) => r.url == "ALL" and r._field != "count")'),
            unit="ms",
            grid=(0, 10, 12, 9),
        ),
        Panel(
            4,
            "Events per status",
            _q("http_counts", '  |> group(columns: ["status_code"])'),
            stacked=True,
            grid=(12, 10, 12, 9),
        ),
        Panel(
            5,
            "Dead letters by reason",
            _q("dlq_events", '  |> group(columns: ["reason"])\n  |> sum()\n  |> group()'),
            kind="bargauge",
            grid=(0, 19, 12, 8),
            description="Messages the job could not use, by reason",
        ),
        Panel(
            6,
            "Late events",
            LATE_EVENTS,
            grid=(12, 19, 12, 8),
            description="Valid events read after their window had closed (read minus counted), per window",
        ),
    ),
)


def for_workshop(d: Dashboard) -> Dashboard:
    """`d` for an instructor: the same panels over one attendee's bucket and topic, picked by a variable."""
    source = f'from(bucket: "{WORKSHOP_BUCKET}-${{attendee}}")'
    panels = tuple(
        replace(p, flux=p.flux.replace("from(bucket: v.defaultBucket)", source).replace(
            '"${stream}"', '"${attendee}.clickstream_events"'))
        for p in d.panels
    )  # fmt: skip
    return replace(d, uid=f"{d.uid}-workshop", title=f"{d.title} (workshop)", panels=panels, variable="attendee")


WORKSHOP_ERRORS = for_workshop(ERRORS)
DASHBOARDS = (ERRORS, ENGAGEMENT, WORKSHOP_ERRORS)


def write_grafana(dest: Path = GRAFANA_DIR / "dashboards") -> list[Path]:
    """Regenerate grafana/dashboards/*.json from the definitions above (`make dashboards`)."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for d in DASHBOARDS:
        p = dest / f"{d.uid}.json"
        p.write_text(json.dumps(d.grafana(), indent=2) + "\n")
        out.append(p)
    return out


def publish(dashboard: Dashboard, settings: Settings | None = None) -> str | None:
    """Docker mode: create or update `dashboard` in the running Grafana (its HTTP API, admin login from
    compose/.env); returns the dashboard's URL, or None when Grafana is not running (local mode)."""
    import httpx

    from labkit.errors import ServiceError
    from labkit.stack.docker import compose_env

    settings = settings or get_settings()
    password = compose_env().get("GRAFANA_ADMIN_PASSWORD")
    try:
        httpx.get(f"{settings.grafana_url}/api/health", timeout=2).raise_for_status()
    except httpx.HTTPError:
        return None
    r = httpx.post(
        f"{settings.grafana_url}/api/dashboards/db",
        json={"dashboard": dashboard.grafana(), "overwrite": True},
        auth=("admin", password or ""),
        timeout=10,
    )
    if r.status_code >= 400:
        raise ServiceError(f"Grafana refused the dashboard (HTTP {r.status_code}): {r.text[:200]}")
    return settings.grafana_url + r.json().get("url", "")
