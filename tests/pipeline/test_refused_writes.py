"""A point InfluxDB refuses for what it holds does not wedge the job: the sink records the refusal (measurement,
stream, InfluxDB's message) and goes on. Before, a 4xx failed the job, which restarted into the same refusal
forever. The refusal here is real: the field already holds text in the shard, and the job writes numbers."""

from __future__ import annotations

import time
import uuid

import pytest

from labkit import stack as stack_mod
from labkit.influx import Influx
from labkit.jobs.custom import CustomMetric
from labkit.produce import produce

pytestmark = pytest.mark.stack

SQL = """SELECT window_end, CAST(COUNT(*) AS DOUBLE) AS v
FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(rowtime), INTERVAL '10' SECOND))
GROUP BY window_start, window_end"""


def test_points_influxdb_refuses_are_recorded_and_the_job_goes_on(settings, stack, unique_topic):
    from influxdb_client import InfluxDBClient, Point, WritePrecision
    from influxdb_client.client.write_api import SYNCHRONOUS

    metric = CustomMetric(f"refuse_{uuid.uuid4().hex[:6]}", SQL, topic=unique_topic, settings=settings)
    # the measurement is this test's own: a type conflict poisons a field for its whole shard, every series
    with InfluxDBClient(url=settings.influx, token=stack_mod.get(settings).influx_token("write"),
                        org=settings.influx_org) as client:  # fmt: skip
        client.write_api(write_options=SYNCHRONOUS).write(
            bucket=settings.influx_bucket,
            record=Point(metric.measurement)
            .tag("stream", unique_topic)
            .field("v", "text")
            .time(int(time.time() * 1000), WritePrecision.MS),
        )
    job = metric.deploy(backfill_s=None)
    try:
        produce(2_000, topic=unique_topic, seed=7, close_windows=True, progress=False, settings=settings)
        deadline, refused = time.monotonic() + 120, None
        while time.monotonic() < deadline:
            with Influx(settings) as db:
                rec = db.query("sink_rejections", start="-1h", stream=unique_topic)
            refused = rec[rec["measurement"] == metric.measurement] if not rec.empty else rec
            if not refused.empty:
                break
            time.sleep(2)
        assert refused is not None and not refused.empty, "the refusal was not recorded"
        assert int(refused["points"].sum()) >= 1
        assert "conflict" in " ".join(refused["message"]).lower(), list(refused["message"])
        assert set(refused["status"]) == {"422"}
        # the job went on: running, never restarted, and it keeps taking traffic
        time.sleep(3)
        assert job.state == "RUNNING" and job.restarts() == 0
        produce(500, topic=unique_topic, seed=8, close_windows=True, progress=False, settings=settings)
        time.sleep(5)
        assert job.state == "RUNNING" and job.restarts() == 0
    finally:
        job.cancel()
