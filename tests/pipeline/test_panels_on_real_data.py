"""Every Grafana panel's Flux query, macros substituted as Grafana does, returns rows from the real
InfluxDB filled by the real pipeline (Grafana itself runs only in the compose stack)."""

import time

import pytest
import yaml

from labkit import dashboards
from labkit.events import Scenario
from labkit.influx import Influx
from labkit.produce import produce
from labkit.verify import verify

pytestmark = pytest.mark.stack


def test_every_panel_returns_rows_and_renders_inline(settings, pipeline):
    topic, _ = pipeline
    summary = produce(
        30_000,
        topic=topic,
        seed=3,
        sim_rate=500,
        late_fraction=0.02,
        malformed_fraction=0.01,
        scenario=Scenario("incident", start_s=20, duration_s=20),
        close_windows=True,
        settings=settings,
    )
    assert verify(summary.ledger, settings=settings, wait_s=90).exact
    for board in dashboards.DASHBOARDS:
        if board.variable != "stream":
            continue  # the workshop board reads attendees' buckets: tests/cluster/test_workshop.py runs it
        for panel in board.panels:
            df = panel.data("30m", settings=settings, stream=topic)
            assert not df.empty, f"{board.uid} panel {panel.id} ({panel.title}) returned no rows"
            fig = panel.figure("30m", settings=settings, stream=topic)
            assert fig.data, f"{panel.title} rendered no traces"


def test_alert_query_runs(settings, stack):
    from pathlib import Path

    rule = yaml.safe_load((Path(dashboards.GRAFANA_DIR) / "provisioning/alerting/error-rate.yaml").read_text())
    query = rule["groups"][0]["rules"][0]["data"][0]["model"]["query"]
    with Influx(settings) as db:
        db.flux(query.replace('"clickstream"', f'"{settings.influx_bucket}"'))  # raises on a Flux error
    time.sleep(0)
