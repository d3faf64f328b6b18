"""plotly figures for the lab's metrics. Notebook charts come from here or from `labkit.dashboards`
(the same panels Grafana shows)."""

from __future__ import annotations

import os

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import plotly.io as pio

from labkit.timing import WINDOW_S

WINDOW = pd.Timedelta(seconds=WINDOW_S)

# One colour per status family, the same in every chart (and Grafana's palette names): 2xx green, 3xx blue,
# 4xx orange, 5xx red; codes within a family are shades of it.
FAMILY_COLORS = {"2xx": "#2ca02c", "3xx": "#1f77b4", "4xx": "#ff7f0e", "5xx": "#d62728"}
STATUS_COLORS = {
    "200": "#2ca02c",
    "201": "#98df8a",
    "204": "#5fbf5f",
    "301": "#1f77b4",
    "302": "#6baed6",
    "304": "#9ecae1",
    "400": "#ffbb78",
    "401": "#ff9f4a",
    "403": "#e377c2",
    "404": "#ff7f0e",
    "429": "#c4690d",
    "500": "#d62728",
    "502": "#a50f15",
    "503": "#ff6961",
}
SERIES_COLORS = {
    "error_rate": "#7f7f7f",
    "rate_4xx": FAMILY_COLORS["4xx"],
    "rate_5xx": FAMILY_COLORS["5xx"],
    "errors_4xx": FAMILY_COLORS["4xx"],
    "errors_5xx": FAMILY_COLORS["5xx"],
}
# A changelog's row kinds (notebook 10), the same in every chart, and a palette of their own: green, blue, orange and
# red already mean status classes here (a -U in 5xx red would read as an error, a +I in 2xx green as a success), so
# row kinds take colours no status, family or series uses: +I teal, -U (the row an update retracts) brown, +U
# (the row it adds) purple, -D (a delete) olive.
ROW_KIND_COLORS = {"+I": "#17becf", "-U": "#8c564b", "+U": "#9467bd", "-D": "#bcbd22"}
# Charts of quantities that are no status, series or row kind (how far a retry lands, how long an order takes)
# use neutral colours, for the same reason: in status orange or blue they would read as a status family.
NEUTRAL_BAR = "#708090"  # slate grey: a histogram's bars
BOUND_LINE = {"color": "black", "dash": "dash"}  # a limit the data is measured against (the join's bound)
PARTIAL_COLOR = "#bdbdbd"  # light grey: what the stream's start or end cut off (a session window)


def status_color(code) -> str:
    code = str(code)
    return STATUS_COLORS.get(code) or FAMILY_COLORS.get(code[:1] + "xx", "#7f7f7f")


def with_gaps(df: pd.DataFrame, by: str | None = None, step: pd.Timedelta = WINDOW) -> pd.DataFrame:
    """Every window between the first and the last, per series: a missing window becomes a NaN row, which
    plotly draws as a gap instead of a line across it."""
    if df is None or df.empty or "time" not in df.columns:
        return df
    times = pd.date_range(df["time"].min(), df["time"].max(), freq=step)
    if by is None and df["time"].duplicated().any():
        return df  # several series without a column that tells them apart: nothing to align
    if by is None:
        return df.set_index("time").reindex(times.union(df["time"])).rename_axis("time").reset_index()
    parts = []
    for key, g in df.groupby(by, sort=False):
        g = g.set_index("time").reindex(times.union(g["time"])).rename_axis("time").reset_index()
        g[by] = key
        parts.append(g)
    return pd.concat(parts, ignore_index=True)


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
    ys = [y] if isinstance(y, str) else list(y)
    colors = {k: v for k, v in SERIES_COLORS.items() if k in ys}
    fig = px.line(
        with_gaps(df, color), x="time", y=y, color=color, title=title, markers=True, color_discrete_map=colors
    )
    fig.update_traces(connectgaps=False)
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


def status_counts(df: pd.DataFrame, title: str = f"Events per HTTP status ({WINDOW_S} s windows)") -> go.Figure:
    if df is None or df.empty:
        return _empty(title)
    df = df.assign(status_code=df["status_code"].astype(str)).sort_values(["status_code", "time"])
    codes = sorted(df["status_code"].unique())
    fig = px.bar(
        df,
        x="time",
        y="count",
        color="status_code",
        title=title,
        color_discrete_map={c: status_color(c) for c in codes},
        category_orders={"status_code": codes},
    )
    # bars are one window wide, so a window without a point is an empty slot, not a stretched bar
    fig.update_traces(width=WINDOW.total_seconds() * 1000 * 0.9)
    return fig.update_layout(legend_title_text="status")


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


def event_time_picture(trace: pd.DataFrame, delay_s: float, title: str = "", max_points: int = 3000) -> go.Figure:
    """Event time against arrival for a run (labkit.eventtime.watermark_trace): the watermark line, the 10 s
    window bands, late events in red. On-time points are thinned to `max_points` (every late one is kept)."""
    if trace is None or trace.empty:
        return _empty(title or "event time vs arrival")
    late = trace[trace["late"]]
    ok = trace[~trace["late"]]
    if len(ok) > max_points:
        ok = ok.sample(max_points, random_state=0).sort_values("arrival")
    fig = go.Figure()
    lo, hi = trace["event_time"].min().floor(WINDOW), trace["event_time"].max().ceil(WINDOW)
    t = lo
    while t < min(hi, lo + 300 * WINDOW):  # window bands: alternate shading, each an event-time window
        if ((t - pd.Timestamp(0, tz="UTC")) // WINDOW) % 2 == 0:
            fig.add_hrect(y0=t, y1=t + WINDOW, fillcolor="#9ecae1", opacity=0.18, line_width=0, layer="below")
        t += WINDOW
    fig.add_scattergl(
        x=ok["arrival"], y=ok["event_time"], mode="markers", name="on time", marker={"size": 3, "color": "#1f77b4"}
    )
    wm = trace.dropna(subset=["watermark"])
    fig.add_scatter(
        x=wm["arrival"],
        y=wm["watermark"],
        mode="lines",
        name=f"watermark (newest event time − {delay_s:g} s, min over partitions)",
        line={"color": "black", "width": 2, "shape": "hv"},
    )
    fig.add_scatter(
        x=late["arrival"],
        y=late["event_time"],
        mode="markers",
        name=f"late ({len(late)}): behind the watermark on arrival",
        marker={"size": 8, "color": FAMILY_COLORS["5xx"], "symbol": "x"},
    )
    fig.update_layout(
        title=title or "Event time against arrival",
        xaxis_title="arrival (Kafka timestamp)",
        yaxis_title=f"event time (event_timestamp); bands = {WINDOW_S} s windows",
        legend={"orientation": "h", "y": -0.25},
        height=520,
    )
    return fig


def lag_timeline(frame: pd.DataFrame, marks: list[tuple] | None = None, title: str = "Consumer lag") -> go.Figure:
    """Consumer lag (messages) over time, with the moments of a drill marked."""
    if frame is None or frame.empty:
        return _empty(title)
    fig = px.line(frame, x="time", y="lag", title=title, markers=True)
    for i, (t, what) in enumerate(marks or []):
        fig.add_vline(x=t, line_dash="dot", line_color=FAMILY_COLORS["5xx"] if i % 2 == 0 else "#2ca02c")
        fig.add_annotation(x=t, y=1 - 0.08 * (i % 4), yref="paper", text=what, showarrow=False, xanchor="left")
    fig.update_yaxes(title="lag (messages not yet committed)", rangemode="tozero")
    return fig


def watermark_experiment(result: pd.DataFrame, title: str = "Watermark delay: late events vs waiting") -> go.Figure:
    from plotly.subplots import make_subplots

    if result is None or result.empty:
        return _empty(title)
    x = [f"{d} s" for d in result["delay_s"]]
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("late events (not in any window)", "seconds until a window's result appears")
    )
    fig.add_bar(x=x, y=result["late"], marker_color=FAMILY_COLORS["5xx"], name="late events", row=1, col=1)
    fig.add_bar(x=x, y=result["wait_s"], marker_color=FAMILY_COLORS["3xx"], name="wait (median)", row=1, col=2)
    fig.update_xaxes(title_text="watermark delay")
    return fig.update_layout(title=title, showlegend=False)


def alert_timeline(timeline, df: pd.DataFrame | None = None, title: str | None = None) -> go.Figure:
    """An alert rule replayed on a metric: the per-window value, the rule's reduced value, its threshold, and
    when the condition started to hold and when the alert fired."""
    ev = timeline.evaluations
    rule = timeline.rule
    title = title or f"Alert '{rule.title}' replayed on the data"
    if ev.empty:
        return _empty(title)
    fig = go.Figure()
    if df is not None and not df.empty and rule.field in df.columns:
        d = with_gaps(df[["time", rule.field]])
        fig.add_scatter(
            x=d["time"],
            y=d[rule.field],
            name=f"{rule.field} per window",
            mode="lines+markers",
            line={"color": "#7f7f7f"},
            connectgaps=False,
        )
    fig.add_scatter(
        x=ev["time"],
        y=ev["value"],
        name=f"mean over last {rule.lookback_s} s (what the rule compares)",
        line={"color": "#1f77b4", "width": 3},
    )
    fig.add_hline(
        y=rule.threshold,
        line_dash="dash",
        line_color=FAMILY_COLORS["5xx"],
        annotation_text=f"threshold {rule.threshold:g}",
    )
    firing = ev[ev["state"] == "firing"]
    if not firing.empty:
        fig.add_vrect(
            x0=firing["time"].min(), x1=firing["time"].max(), fillcolor=FAMILY_COLORS["5xx"], opacity=0.12, line_width=0
        )
    if timeline.started is not None:
        fig.add_vline(x=timeline.started, line_dash="dot", line_color=FAMILY_COLORS["4xx"])
        fig.add_annotation(
            x=timeline.started, y=1, yref="paper", text="condition holds", showarrow=False, xanchor="right"
        )
    if timeline.fired is not None:
        fig.add_vline(x=timeline.fired, line_dash="dot", line_color=FAMILY_COLORS["5xx"])
        fig.add_annotation(
            x=timeline.fired, y=0.92, yref="paper", text=f"FIRING (+{rule.for_s} s)", showarrow=False, xanchor="left"
        )
    return fig.update_layout(title=title, hovermode="x unified", legend={"orientation": "h", "y": -0.2})


def silent_windows(
    sent: pd.Series, written: pd.DataFrame, title: str = "Events sent per window, and what the job wrote"
):
    """Notebook 03's "break it" lab: per 10 s window, the events sent (grey) and the count the job wrote (blue).
    A window the job never wrote has no blue bar and is labelled so: a gap shows as a gap."""
    if sent is None or sent.empty:
        return _empty(title)
    got = written.set_index("window_end")["clicks"] if written is not None and not written.empty else pd.Series()
    fig = go.Figure()
    fig.add_bar(x=sent.index, y=sent.values, name="events sent", marker_color="#7f7f7f")
    fig.add_bar(x=got.index, y=got.values, name="count the job wrote", marker_color="#1f77b4")
    for w, n in sent.items():
        if w not in got.index:
            fig.add_annotation(x=w, y=n, text="not written", showarrow=False, yshift=10, font={"size": 10})
    fig.update_layout(title=title, barmode="group", xaxis_title="window end (event time)", yaxis_title="events")
    return fig


# ---- notebook 10: Flink SQL patterns ----------------------------------------------------------------------------
def retry_gaps(gaps: pd.Series, title: str = "How far behind its first copy a retry lands") -> go.Figure:
    """Histogram of the records between an event's first copy and its retry (offsets on one partition)."""
    if gaps is None or len(gaps) == 0:
        return _empty(title)
    fig = px.histogram(x=gaps, nbins=30, title=title, color_discrete_sequence=[NEUTRAL_BAR])
    fig.update_xaxes(title="records between the first copy and the retry (Kafka offsets)")
    fig.update_yaxes(title="retried events")
    return fig


def top_per_window(top: pd.DataFrame, by: str = "url", title: str = "The 3 busiest URLs of each minute") -> go.Figure:
    """Grouped bars: per window (window_start, epoch ms) the top rows' clicks, one colour per `by` value."""
    if top is None or top.empty:
        return _empty(title)
    df = top.assign(minute=pd.to_datetime(top["window_start"], unit="ms", utc=True))
    fig = px.bar(df, x="minute", y="clicks", color=by, barmode="group", title=title)
    fig.update_xaxes(title="one-minute window (start)")
    fig.update_yaxes(title="clicks in the window")
    fig.update_layout(legend_title_text=by)
    return fig


def session_timeline(
    clicks: pd.DataFrame, windows: pd.DataFrame, gap_ms: int, title: str = "Sessions and their session windows"
) -> go.Figure:
    """One row per session: its clicks (dots, at their event time) and its session windows (bars from the first
    click to the last, then a thin line for the gap that closes the window).

    A window the stream's start or end may have cut (`partial`, as patterns_reference.session_windows marks it;
    without that column, judged from the edges of `clicks`) is drawn in grey, with a legend entry that counts them:
    its length and clicks are not a whole session's."""
    if clicks is None or clicks.empty:
        return _empty(title)
    from labkit.patterns_reference import partial_sessions

    if "partial" in windows.columns:
        partial = windows["partial"].astype(bool)
    else:
        ts = clicks["event_timestamp"]
        partial = partial_sessions(windows, gap_ms, ts.min(), ts.max())
    n_partial = int(partial.sum())
    fig = go.Figure()
    t = lambda ms: pd.to_datetime(ms, unit="ms", utc=True)  # noqa: E731
    first_partial = True
    for i, (w, cut) in enumerate(zip(windows.itertuples(index=False), partial, strict=True)):
        color = PARTIAL_COLOR if cut else px.colors.qualitative.Plotly[i % 10]
        last = w.window_end - gap_ms
        legend = {"showlegend": bool(cut and first_partial), "legendgroup": "partial" if cut else None}
        first_partial = first_partial and not cut
        fig.add_scatter(x=[t(w.window_start), t(last)], y=[w.session_id] * 2, mode="lines",
                        line={"width": 10, "color": color}, opacity=0.6 if cut else 0.35,
                        hovertext=f"{w.clicks} clicks" + (" (cut by the stream's start/end)" if cut else ""),
                        name=f"cut by the stream's start/end ({n_partial})" if cut else "session window",
                        **legend)  # fmt: skip
        fig.add_scatter(x=[t(last), t(w.window_end)], y=[w.session_id] * 2, mode="lines",
                        line={"width": 2, "color": color, "dash": "dot"}, showlegend=False, name="gap",
                        legendgroup=legend["legendgroup"])  # fmt: skip
    fig.add_scatter(x=t(clicks["event_timestamp"]), y=clicks["session_id"], mode="markers", name="click",
                    marker={"size": 7, "color": "black"})  # fmt: skip
    fig.update_layout(
        title=title, xaxis_title="event time", yaxis_title="session", height=120 + 40 * clicks["session_id"].nunique()
    )
    return fig


def order_delays(minutes: pd.Series, within_min: float = 10, title: str = "From checkout to order") -> go.Figure:
    """Histogram of how long after a checkout its session's next order came (minutes), the join's bound marked."""
    if minutes is None or len(minutes) == 0:
        return _empty(title)
    fig = px.histogram(x=minutes, nbins=60, title=title, color_discrete_sequence=[NEUTRAL_BAR])
    fig.add_vline(x=within_min, line_dash=BOUND_LINE["dash"], line_color=BOUND_LINE["color"],
                  annotation_text=f"{within_min:g} minutes: the interval join's bound")  # fmt: skip
    fig.update_xaxes(title="minutes from the checkout click to the session's next order")
    fig.update_yaxes(title="checkouts", type="log")
    return fig


def changelog_steps(log: pd.DataFrame, value: str, title: str = "A changelog, row by row") -> go.Figure:
    """Each changelog row (x: its place in the changelog) with the value it carries, coloured by its kind."""
    if log is None or log.empty:
        return _empty(title)
    df = log.reset_index(drop=True).assign(row=lambda d: d.index + 1)
    fig = px.scatter(df, x="row", y=value, color="op", color_discrete_map=ROW_KIND_COLORS, title=title,
                     category_orders={"op": list(ROW_KIND_COLORS)})  # fmt: skip
    fig.add_scatter(x=df["row"], y=df[value], mode="lines", line={"color": "#c7c7c7", "width": 1}, showlegend=False)
    fig.update_xaxes(title="changelog row")
    fig.update_layout(legend_title_text="row kind")
    return fig


def funnel_stages(stages: dict[str, int], title: str = "Sessions through the shop's funnel") -> go.Figure:
    """A funnel: each stage's number of sessions, widest first."""
    if not stages:
        return _empty(title)
    fig = go.Figure(go.Funnel(y=list(stages), x=list(stages.values()), textinfo="value+percent initial"))
    fig.update_layout(title=title)
    return fig
