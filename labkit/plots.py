"""plotly figures for the lab's metrics. Notebook charts come from here or from `labkit.dashboards`
(the same panels Grafana shows)."""

from __future__ import annotations

import os

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import plotly.io as pio


def setup_notebook_renderer() -> None:
    """Charts that show in JupyterLab and stay in papermill's executed copies."""
    pio.renderers.default = os.environ.get("LABKIT_PLOTLY_RENDERER", "notebook_connected+plotly_mimetype")


def _empty(title: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(
        title=title,
        annotations=[
            {
                "text": "no data yet: produce events and wait a window or two",
                "showarrow": False,
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
            }
        ],
    )
    return fig


def line(
    df: pd.DataFrame,
    y: str | list[str] | None = None,
    *,
    color: str | None = None,
    title: str = "",
    percent: bool = False,
    threshold: float | None = None,
) -> go.Figure:
    if df is None or df.empty:
        return _empty(title)
    if y is None:
        y = [c for c in df.columns if c not in ("time", "stream") and pd.api.types.is_numeric_dtype(df[c])]
    fig = px.line(df, x="time", y=y, color=color, title=title, markers=True)
    if percent:
        fig.update_yaxes(tickformat=".1%")
    if threshold is not None:
        fig.add_hline(y=threshold, line_dash="dash", line_color="red", annotation_text=f"threshold {threshold:g}")
    fig.update_layout(hovermode="x unified", legend_title_text="")
    return fig


def bars(
    df: pd.DataFrame, x: str, y: str, *, color: str | None = None, title: str = "", horizontal: bool = False
) -> go.Figure:
    if df is None or df.empty:
        return _empty(title)
    if horizontal:
        fig = px.bar(df, y=x, x=y, color=color, title=title, orientation="h")
        fig.update_yaxes(autorange="reversed")
    else:
        fig = px.bar(df, x=x, y=y, color=color, title=title)
    return fig


def status_counts(df: pd.DataFrame, title: str = "Events per HTTP status (10 s windows)") -> go.Figure:
    if df is None or df.empty:
        return _empty(title)
    df = df.assign(status_code=df["status_code"].astype(str))
    return px.bar(df, x="time", y="count", color="status_code", title=title)


def error_rate(df: pd.DataFrame, threshold: float = 0.05, title: str = "Error rate (4xx + 5xx share)") -> go.Figure:
    return line(
        df,
        ["error_rate", "rate_4xx", "rate_5xx"] if df is not None and not df.empty else None,
        title=title,
        percent=True,
        threshold=threshold,
    )


def latency(df: pd.DataFrame, title: str = "Latency percentiles (ms)") -> go.Figure:
    return line(df, ["p50", "p95", "p99"] if df is not None and not df.empty else None, title=title)


def active_users(df: pd.DataFrame, title: str = "Active users and sessions per window") -> go.Figure:
    return line(df, ["users", "sessions"] if df is not None and not df.empty else None, title=title)


def top_urls(df: pd.DataFrame, value: str = "errors", title: str = "Top failing URLs") -> go.Figure:
    return bars(df, "url", value, title=title, horizontal=True)
