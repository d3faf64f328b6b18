"""The notebooks' side: a panel's own Flux run by labkit against InfluxDB (macros substituted as Grafana does)
and drawn as a plotly figure, with the lab's colours and gaps for missing windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from labkit.settings import Settings
from labkit.settings import get as get_settings
from labkit.timing import WINDOW_S


def panel_data(
    panel,
    start: str | timedelta = "15m",
    settings: Settings | None = None,
    stream: str | None = None,
    attendee: str | None = None,
) -> pd.DataFrame:
    """`panel`'s query (a labkit.dashboards.Panel) over the last `start`, as a DataFrame (`_time` as `time`)."""
    from labkit.influx import Influx

    settings = settings or get_settings()
    span = pd.Timedelta(start).to_pytimedelta() if isinstance(start, str) else start
    stop = datetime.now(UTC)
    # Grafana's interval: the range over ~1000 points, at least the window length here
    window = max(timedelta(seconds=WINDOW_S), span / 1000)
    with Influx(settings) as db:
        df = db.flux(panel.render_flux(settings, stop - span, stop, window, stream, attendee))
    if not df.empty and "_time" in df.columns:
        df = df.rename(columns={"_time": "time"})
    return df


def panel_figure(
    panel,
    start: str | timedelta = "15m",
    settings: Settings | None = None,
    stream: str | None = None,
    attendee: str | None = None,
):
    """`panel`'s data drawn as its kind says (lines, stacked bars, bars, a stat)."""
    import plotly.express as px

    from labkit import plots

    df = panel.data(start, settings, stream, attendee)
    if df.empty:
        return plots._empty(panel.title)
    series = "_field" if "_field" in df.columns else None
    for tag in ("status_code", "url", "reason"):
        if tag in df.columns and df[tag].nunique() > 1:
            series = tag
    if panel.kind in ("barchart", "bargauge", "table"):
        x = next((c for c in ("url", "reason", "status_code") if c in df.columns), df.columns[0])
        fig = px.bar(df, y=x, x="_value", orientation="h", title=panel.title)
        fig.update_yaxes(autorange="reversed")
    elif panel.kind == "stat":
        v = df["_value"].iloc[-1]
        fig = px.bar(
            x=[panel.title],
            y=[v],
            title=f"{panel.title}: {v:.2%}" if panel.unit == "percentunit" else f"{panel.title}: {v:,.0f}",
        )
    elif panel.stacked:
        if series == "status_code":  # the lab's status colours, the same in every chart
            df = df.assign(status_code=df["status_code"].astype(str))
        fig = px.bar(df, x="time", y="_value", color=series, title=panel.title, color_discrete_map=_colors(df, series))
        fig.update_traces(width=plots.WINDOW.total_seconds() * 1000 * 0.9)
    else:
        keep = [c for c in ("time", "_value", series) if c]
        df = plots.with_gaps(df[keep], series)  # a missing window is a gap, not a line across it
        fig = px.line(
            df,
            x="time",
            y="_value",
            color=series,
            title=panel.title,
            markers=True,
            color_discrete_map=_colors(df, series),
        )
        fig.update_traces(connectgaps=False)
    if panel.unit == "percentunit":
        fig.update_yaxes(tickformat=".1%")
    if panel.threshold is not None and panel.kind == "timeseries":
        fig.add_hline(y=panel.threshold, line_dash="dash", line_color="red")
    fig.update_layout(legend_title_text="")
    return fig


def _colors(df: pd.DataFrame, series: str | None) -> dict:
    from labkit import plots

    if series == "status_code":
        return {str(c): plots.status_color(c) for c in df["status_code"].dropna().unique()}
    if series == "_field":
        return plots.SERIES_COLORS
    return {}
