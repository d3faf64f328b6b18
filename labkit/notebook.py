"""Helpers for the course notebooks: one call to get going, links to the UIs, Grafana or inline panels."""

from __future__ import annotations

import html

from labkit.settings import get as get_settings


def setup(start_stack: bool = True):
    """Plot renderer, then the stack (started if needed); returns the Stack. The notebook's context (settings,
    stack, addresses, tokens: labkit.context) is built here, once, and every helper below reuses it."""
    from labkit import context, plots

    plots.setup_notebook_renderer()
    st = context.of(get_settings()).stack
    if start_stack and not st.is_up():
        st.up()
    return st


def ensure_pipeline(settings=None):
    """The clickstream job, submitted if it is not running yet (resuming from its last checkpoint or
    savepoint), and back at the default parallelism if a drill (08) left it rescaled."""
    from labkit import jobs

    settings = settings or get_settings()
    job = jobs.running(settings=settings)
    if job is None:
        return jobs.submit_pipeline(settings)
    vertices = job.info().get("vertices", [])
    if vertices and max(v["parallelism"] for v in vertices) != settings.flink_parallelism and job.state == "RUNNING":
        location = job.stop()
        job = jobs.submit_pipeline(settings, savepoint=location)
    return job


class Links:
    def __init__(self, items: list[tuple[str, str, str]]) -> None:
        self.items = items

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(n)}</td><td><a href='{u}' target='_blank'>{html.escape(u)}</a></td>"
            f"<td>{html.escape(d)}</td></tr>"
            for n, u, d in self.items
        )
        return f"<table><tr><th>UI</th><th>address</th><th>what to look at</th></tr>{rows}</table>"

    def __repr__(self) -> str:
        return "\n".join(f"{n:10} {u:32} {d}" for n, u, d in self.items)


def doctor(topic: str | None = None, minutes: int = 15, settings=None):
    """Where did the events stop? The pipeline doctor (`labkit doctor --pipeline`): every link from the
    producer to the windows in InfluxDB, the first broken one named with what it saw and the fix."""
    from labkit.pipeline_doctor import diagnose

    return diagnose(topic, minutes, settings)


def links(settings=None) -> Links:
    s = settings or get_settings()
    items = [
        ("Flink", s.flink, "running jobs, checkpoints, watermarks, back pressure"),
        ("InfluxDB", s.influx + "/api/v2", "HTTP API only in local mode (no UI assets in the registry build)"),
    ]
    if s.mode == "docker":
        items.append(("Grafana", s.grafana_url, "dashboards: error monitoring, engagement (anonymous viewer)"))
    else:
        items.append(("Grafana", "(docker mode only)", "notebook 05 renders the same panels inline"))
    return Links(items)


def grafana_up(settings=None) -> bool:
    import httpx

    s = settings or get_settings()
    try:
        return httpx.get(f"{s.grafana_url}/api/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def panel(dashboard, panel_id: int, start: str = "15m", settings=None, height: int = 320):
    """The Grafana panel embedded when Grafana is up, else the same query rendered inline with plotly."""
    s = settings or get_settings()
    if grafana_up(s):
        from IPython.display import IFrame

        return IFrame(dashboard.embed_url(panel_id, s.grafana_url, s.topic), width="100%", height=height)
    return dashboard.panel(panel_id).figure(start, settings=s)
